use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tapwire_model::{segment, Exchange};

/// A place that holds recordings or snapshots could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    /// The URL names a scheme this build cannot reach.
    #[error("{url}: {scheme}:// storage is not available in this build yet; use a local directory (a path or file:///…)")]
    Unsupported {
        /// The URL as given.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// The URL or path is malformed.
    #[error("{url}: {reason}")]
    Invalid {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The store refused an operation.
    #[error("{op} {url}/{key}: {source}")]
    Store {
        /// What was being done.
        op: &'static str,
        /// The location.
        url: String,
        /// The object.
        key: String,
        /// The store's error.
        #[source]
        source: Box<object_store::Error>,
    },
    /// A segment in the location is corrupt.
    #[error("{url}/{key}: {source}")]
    Segment {
        /// The location.
        url: String,
        /// The segment.
        key: String,
        /// Why it could not be read.
        #[source]
        source: Box<segment::BytesError>,
    },
}

/// Largest decompressed segment read into memory (segments rotate at 64 MiB).
const MAX_SEGMENT: usize = 256 << 20;

/// A directory or object-store prefix, opened from a URL or a path.
#[derive(Clone)]
pub struct Location {
    store: Arc<dyn ObjectStore>,
    url: String,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Location").field("url", &self.url).finish()
    }
}

impl Location {
    /// Opens `spec`: a path, or a `file://` URL. A local directory is
    /// created when missing, so that writers need no set-up.
    pub fn open(spec: &str) -> Result<Self, LocationError> {
        let invalid = |reason: String| LocationError::Invalid {
            url: spec.to_owned(),
            reason,
        };
        let path: PathBuf = match spec.split_once("://") {
            Some(("file", rest)) => PathBuf::from(rest),
            Some((scheme, _)) => {
                return Err(LocationError::Unsupported {
                    url: spec.to_owned(),
                    scheme: scheme.to_owned(),
                })
            }
            None => PathBuf::from(spec),
        };
        if path.as_os_str().is_empty() {
            return Err(invalid("empty path".to_owned()));
        }
        std::fs::create_dir_all(&path)
            .map_err(|e| invalid(format!("cannot create directory: {e}")))?;
        let abs = std::fs::canonicalize(&path).map_err(|e| invalid(e.to_string()))?;
        let store = LocalFileSystem::new_with_prefix(&abs).map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            store: Arc::new(store),
            url: format!("file://{}", abs.display()),
        })
    }

    /// Opens a local directory.
    pub fn local(dir: &Path) -> Result<Self, LocationError> {
        Self::open(&dir.to_string_lossy())
    }

    /// The location as a URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn err(
        &self,
        op: &'static str,
        key: &Key,
    ) -> impl FnOnce(object_store::Error) -> LocationError + '_ {
        let key = key.to_string();
        move |source| LocationError::Store {
            op,
            url: self.url.clone(),
            key,
            source: Box::new(source),
        }
    }

    /// Keys below `prefix` (recursively), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Key>, LocationError> {
        let p = (!prefix.is_empty()).then(|| Key::from(prefix));
        let mut keys: Vec<Key> = self
            .store
            .list(p.as_ref())
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(self.err("list", &p.clone().unwrap_or_default()))?;
        keys.sort();
        Ok(keys)
    }

    /// Reads one object whole.
    pub async fn get(&self, key: &Key) -> Result<Bytes, LocationError> {
        let r = self.store.get(key).await.map_err(self.err("read", key))?;
        r.bytes().await.map_err(self.err("read", key))
    }

    /// True when `key` exists.
    pub async fn exists(&self, key: &Key) -> Result<bool, LocationError> {
        match self.store.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err("stat", key)(e)),
        }
    }

    /// Writes one object; it appears whole or not at all.
    pub async fn put(&self, key: &Key, data: Bytes) -> Result<(), LocationError> {
        self.store
            .put(key, PutPayload::from_bytes(data))
            .await
            .map(drop)
            .map_err(self.err("write", key))
    }

    /// Deletes one object.
    pub async fn delete(&self, key: &Key) -> Result<(), LocationError> {
        self.store
            .delete(key)
            .await
            .map_err(self.err("delete", key))
    }

    /// Every exchange in the segments below `prefix`, ordered by start time.
    pub async fn read_exchanges(&self, prefix: &str) -> Result<Vec<Exchange>, LocationError> {
        let mut all = Vec::new();
        for key in self.list(prefix).await? {
            if !key.as_ref().ends_with(segment::SUFFIX) {
                continue;
            }
            let bytes = self.get(&key).await?;
            let exchanges =
                segment::decode(&bytes, MAX_SEGMENT).map_err(|source| LocationError::Segment {
                    url: self.url.clone(),
                    key: key.to_string(),
                    source: Box::new(source),
                })?;
            all.extend(exchanges);
        }
        all.sort_by(|a, b| a.start.cmp(&b.start).then(a.id.cmp(&b.id)));
        Ok(all)
    }
}

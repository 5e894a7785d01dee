use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tapwire_model::{segment, Exchange};

use crate::http::HyperConnector;

/// A place that holds recordings or snapshots could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    /// The URL names a scheme tapwire does not know.
    #[error("{url}: unknown storage scheme {scheme}://; use a directory, file://, s3://, gs:// or az://")]
    Unsupported {
        /// The URL as given.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// The object store client could not be configured (credentials,
    /// region, endpoint).
    #[error("{url}: {source}; see docs/storage.md for the environment each store reads")]
    Config {
        /// The URL as given.
        url: String,
        /// The builder's error.
        #[source]
        source: Box<object_store::Error>,
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
    /// Opens `spec`: a path, a `file://` URL, or an object store URL
    /// (`s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`)
    /// configured by the store's standard environment (`AWS_*`, `GOOGLE_*`,
    /// `AZURE_*`). A local directory is created when missing, so that
    /// writers need no set-up.
    pub fn open(spec: &str) -> Result<Self, LocationError> {
        Self::open_with(spec, &[])
    }

    /// Like [`open`](Self::open), with object store settings given as
    /// `(key, value)` pairs on top of the environment, e.g.
    /// `("aws_endpoint", "http://127.0.0.1:9000")`; keys are those of the
    /// environment variables, in lower case.
    pub fn open_with(spec: &str, config: &[(&str, &str)]) -> Result<Self, LocationError> {
        let invalid = |reason: String| LocationError::Invalid {
            url: spec.to_owned(),
            reason,
        };
        let path: PathBuf = match spec.split_once("://") {
            Some(("file", rest)) => PathBuf::from(rest),
            Some((scheme @ ("s3" | "s3a" | "gs" | "az" | "azure"), rest)) => {
                return Self::cloud(spec, scheme, rest, config)
            }
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

    fn cloud(
        spec: &str,
        scheme: &str,
        rest: &str,
        settings: &[(&str, &str)],
    ) -> Result<Self, LocationError> {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(LocationError::Invalid {
                url: spec.to_owned(),
                reason: format!("expected {scheme}://BUCKET[/PREFIX]"),
            });
        }
        let root = format!("{scheme}://{bucket}");
        let config = |source| LocationError::Config {
            url: spec.to_owned(),
            source: Box::new(source),
        };
        let unknown = |key: &str| LocationError::Invalid {
            url: spec.to_owned(),
            reason: format!("unknown {scheme} setting {key:?}"),
        };
        // The three builders share their shape but no trait.
        macro_rules! build {
            ($builder:ty) => {
                Arc::new(
                    settings
                        .iter()
                        .try_fold(<$builder>::from_env(), |b, (k, v)| {
                            Ok(b.with_config(k.parse().map_err(|_| unknown(k))?, *v))
                        })?
                        .with_url(root)
                        .with_http_connector(HyperConnector)
                        .build()
                        .map_err(config)?,
                )
            };
        }
        let store: Arc<dyn ObjectStore> = match scheme {
            "s3" | "s3a" => build!(AmazonS3Builder),
            "gs" => build!(GoogleCloudStorageBuilder),
            _ => build!(MicrosoftAzureBuilder),
        };
        let prefix = prefix.trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            store
        } else {
            Arc::new(PrefixStore::new(store, prefix))
        };
        Ok(Self {
            store,
            url: spec.trim_end_matches('/').to_owned(),
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

    /// Every exchange in the segments below `prefix`, ordered by start time;
    /// an exchange stored twice (a batch retried under a new name) is
    /// returned once.
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
        all.dedup_by(|a, b| a.id == b.id);
        Ok(all)
    }
}

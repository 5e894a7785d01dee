//! Snapshots: an immutable, named selection of recorded exchanges with a
//! manifest that summarises its traffic by key (`service:host:port`).

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path as Key;
use serde::{Deserialize, Serialize};
use tapwire_model::{segment, Direction, Exchange};

use crate::{Filter, Location, LocationError};

/// Version of the manifest schema written by this build.
pub const MANIFEST_VERSION: u32 = 1;

const ROOT: &str = "snapshots";
const MANIFEST: &str = "manifest.json";
const EXCHANGES: &str = "exchanges.jsonl.zst";

/// A snapshot could not be made, found or stored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The selection matched nothing.
    #[error(
        "no exchanges match {0}; check the service name and time window with `tapwire inspect`"
    )]
    Empty(String),
    /// No snapshot has that id or name.
    #[error("no snapshot {0:?}; list them with `tapwire snapshot ls`")]
    NotFound(String),
    /// An id prefix or name matches several snapshots.
    #[error("{query:?} matches {count} snapshots; use more of the id")]
    Ambiguous {
        /// What was asked for.
        query: String,
        /// How many matched.
        count: usize,
    },
    /// The manifest is not valid.
    #[error("snapshot {id}: bad manifest: {reason}")]
    Manifest {
        /// Which snapshot.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The filter expression is malformed.
    #[error(transparent)]
    Filter(#[from] crate::FilterError),
    /// The store failed.
    #[error(transparent)]
    Location(#[from] LocationError),
}

/// Latency summary in microseconds (nearest-rank percentiles).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Slowest.
    pub max: u64,
}

impl Latency {
    fn of(mut us: Vec<u64>) -> Self {
        if us.is_empty() {
            return Self::default();
        }
        us.sort_unstable();
        let rank = |q: f64| us[((q * us.len() as f64).ceil() as usize).clamp(1, us.len()) - 1];
        Self {
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            max: us[us.len() - 1],
        }
    }
}

/// Traffic of one key in a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficStats {
    /// Exchanges.
    pub count: u64,
    /// Request (or client) body bytes on the wire.
    pub request_bytes: u64,
    /// Response (or server) body bytes on the wire.
    pub response_bytes: u64,
    /// Latency summary.
    pub latency_us: Latency,
    /// Exchanges per protocol.
    pub protocols: BTreeMap<String, u64>,
    /// Responses per status code (`error` when there was none).
    pub statuses: BTreeMap<String, u64>,
}

/// What a snapshot holds and how it was selected. Stored as
/// `snapshots/<id>/manifest.json`; see `docs/specs/snapshot.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Schema version.
    pub v: u32,
    /// Unique id (a UUIDv7).
    pub id: String,
    /// Human name; not necessarily unique.
    pub name: String,
    /// When the snapshot was made.
    pub created: DateTime<Utc>,
    /// Where the exchanges were read from.
    pub source: String,
    /// The selection that made it.
    pub selection: Selection,
    /// Services present.
    pub services: Vec<String>,
    /// Start of the first exchange.
    pub start: DateTime<Utc>,
    /// End of the last exchange.
    pub end: DateTime<Utc>,
    /// Exchanges in the snapshot.
    pub exchanges: u64,
    /// Inbound traffic (becomes tests), by `service:host:port`.
    pub inbound: BTreeMap<String, TrafficStats>,
    /// Outbound traffic (becomes mocks), by `service:host:port`.
    pub outbound: BTreeMap<String, TrafficStats>,
    /// Compressed size of the stored exchanges.
    pub bytes: u64,
}

/// How exchanges were chosen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// Only this service (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Exchanges starting at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Exchanges starting before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// Filter expression (see `Filter`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub filter: String,
}

impl Selection {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.service {
            parts.push(format!("service {s}"));
        }
        if let Some(t) = self.since {
            parts.push(format!("since {}", t.to_rfc3339()));
        }
        if let Some(t) = self.until {
            parts.push(format!("until {}", t.to_rfc3339()));
        }
        if !self.filter.is_empty() {
            parts.push(format!("filter {:?}", self.filter));
        }
        if parts.is_empty() {
            "the recording (it is empty)".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// A manifest and its exchanges.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// What it holds.
    pub manifest: Manifest,
    /// The exchanges, ordered by start time.
    pub exchanges: Vec<Exchange>,
}

impl Snapshot {
    /// Inbound exchanges (the requests a replay sends).
    pub fn inbound(&self) -> impl Iterator<Item = &Exchange> {
        self.exchanges
            .iter()
            .filter(|e| e.direction == Direction::Inbound)
    }

    /// Outbound exchanges (what the responder answers with).
    pub fn outbound(&self) -> impl Iterator<Item = &Exchange> {
        self.exchanges
            .iter()
            .filter(|e| e.direction == Direction::Outbound)
    }
}

fn stats<'a>(exchanges: impl Iterator<Item = &'a Exchange>) -> BTreeMap<String, TrafficStats> {
    let mut by_key: BTreeMap<String, (TrafficStats, Vec<u64>)> = BTreeMap::new();
    for e in exchanges {
        let (s, lat) = by_key.entry(e.key()).or_default();
        let (req, resp) = e.wire_bytes();
        s.count += 1;
        s.request_bytes += req;
        s.response_bytes += resp;
        *s.protocols.entry(e.protocol.to_string()).or_default() += 1;
        if e.tcp.is_none() {
            let status = e
                .response
                .as_ref()
                .map_or_else(|| "error".to_owned(), |r| r.status.to_string());
            *s.statuses.entry(status).or_default() += 1;
        }
        lat.push(e.duration_us);
    }
    by_key
        .into_iter()
        .map(|(k, (mut s, lat))| {
            s.latency_us = Latency::of(lat);
            (k, s)
        })
        .collect()
}

/// Selects exchanges from a recording and summarises them. The snapshot's
/// id is fresh; its `bytes` is filled in when it is stored.
pub fn build(
    exchanges: Vec<Exchange>,
    selection: Selection,
    name: Option<String>,
    source: &str,
) -> Result<Snapshot, SnapshotError> {
    let filter = Filter::parse(&selection.filter)?;
    let chosen: Vec<Exchange> = exchanges
        .into_iter()
        .filter(|e| {
            selection
                .service
                .as_deref()
                .is_none_or(|s| e.service.name == s)
        })
        .filter(|e| selection.since.is_none_or(|t| e.start >= t))
        .filter(|e| selection.until.is_none_or(|t| e.start < t))
        .filter(|e| filter.matches(e))
        .collect();
    let (Some(first), Some(last)) = (chosen.first(), chosen.last()) else {
        return Err(SnapshotError::Empty(selection.describe()));
    };
    let end = chosen
        .iter()
        .map(|e| {
            e.start
                + chrono::Duration::microseconds(i64::try_from(e.duration_us).unwrap_or(i64::MAX))
        })
        .max()
        .unwrap_or(last.start);
    let mut services: Vec<String> = chosen.iter().map(|e| e.service.name.clone()).collect();
    services.sort();
    services.dedup();
    let id = uuid::Uuid::now_v7().to_string();
    let manifest = Manifest {
        v: MANIFEST_VERSION,
        name: name.unwrap_or_else(|| {
            format!(
                "{}-{}",
                services.join("+"),
                first.start.format("%Y%m%d-%H%M%S")
            )
        }),
        id,
        created: Utc::now(),
        source: source.to_owned(),
        selection,
        services,
        start: first.start,
        end,
        exchanges: chosen.len() as u64,
        inbound: stats(chosen.iter().filter(|e| e.direction == Direction::Inbound)),
        outbound: stats(chosen.iter().filter(|e| e.direction == Direction::Outbound)),
        bytes: 0,
    };
    Ok(Snapshot {
        manifest,
        exchanges: chosen,
    })
}

/// Snapshots kept under `snapshots/` of a location.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    loc: Location,
}

fn key(id: &str, file: &str) -> Key {
    Key::from(format!("{ROOT}/{id}/{file}"))
}

impl SnapshotStore {
    /// The snapshots of `loc`.
    pub fn new(loc: Location) -> Self {
        Self { loc }
    }

    /// Where the snapshots are.
    pub fn location(&self) -> &Location {
        &self.loc
    }

    /// Stores a snapshot: exchanges first, then the manifest, so a snapshot
    /// is listed only once it is complete. Returns the stored manifest.
    pub async fn save(&self, snap: &mut Snapshot) -> Result<Manifest, SnapshotError> {
        let data = Bytes::from(segment::encode(&snap.exchanges));
        snap.manifest.bytes = data.len() as u64;
        let id = snap.manifest.id.clone();
        self.loc.put(&key(&id, EXCHANGES), data).await?;
        let manifest =
            serde_json::to_vec_pretty(&snap.manifest).map_err(|e| SnapshotError::Manifest {
                id: id.clone(),
                reason: e.to_string(),
            })?;
        self.loc.put(&key(&id, MANIFEST), manifest.into()).await?;
        Ok(snap.manifest.clone())
    }

    /// Every complete snapshot, oldest first.
    pub async fn list(&self) -> Result<Vec<Manifest>, SnapshotError> {
        let mut out = Vec::new();
        for k in self.loc.list(ROOT).await? {
            if k.filename() == Some(MANIFEST) {
                out.push(self.read_manifest(&k).await?);
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn read_manifest(&self, k: &Key) -> Result<Manifest, SnapshotError> {
        let bytes = self.loc.get(k).await?;
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| SnapshotError::Manifest {
            id: k.to_string(),
            reason: e.to_string(),
        })?;
        if m.v > MANIFEST_VERSION {
            return Err(SnapshotError::Manifest {
                id: m.id,
                reason: format!(
                    "version {} is newer than this build understands; upgrade tapwire",
                    m.v
                ),
            });
        }
        Ok(m)
    }

    /// Finds a snapshot by id, unique id prefix, or name (the newest of that
    /// name).
    pub async fn resolve(&self, query: &str) -> Result<Manifest, SnapshotError> {
        let all = self.list().await?;
        if let Some(m) = all.iter().find(|m| m.id == query) {
            return Ok(m.clone());
        }
        let by_prefix: Vec<&Manifest> = all.iter().filter(|m| m.id.starts_with(query)).collect();
        match by_prefix.as_slice() {
            [one] => return Ok((*one).clone()),
            [] => {}
            many => {
                return Err(SnapshotError::Ambiguous {
                    query: query.to_owned(),
                    count: many.len(),
                })
            }
        }
        all.into_iter()
            .rev()
            .find(|m| m.name == query)
            .ok_or_else(|| SnapshotError::NotFound(query.to_owned()))
    }

    /// Loads a snapshot with its exchanges.
    pub async fn load(&self, query: &str) -> Result<Snapshot, SnapshotError> {
        let manifest = self.resolve(query).await?;
        let exchanges = self
            .loc
            .read_exchanges(&format!("{ROOT}/{}", manifest.id))
            .await?;
        if exchanges.len() as u64 != manifest.exchanges {
            return Err(SnapshotError::Manifest {
                id: manifest.id,
                reason: format!(
                    "manifest lists {} exchanges but {} were stored",
                    manifest.exchanges,
                    exchanges.len()
                ),
            });
        }
        Ok(Snapshot {
            manifest,
            exchanges,
        })
    }

    /// Deletes a snapshot; the manifest goes first so it stops being listed.
    pub async fn remove(&self, query: &str) -> Result<Manifest, SnapshotError> {
        let m = self.resolve(query).await?;
        self.loc.delete(&key(&m.id, MANIFEST)).await?;
        self.loc.delete(&key(&m.id, EXCHANGES)).await?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapwire_model::{Protocol, Request, Response, Service, Upstream};

    fn ex(svc: &str, dir: Direction, host: &str, path: &str, us: u64) -> Exchange {
        let mut e = Exchange::new(
            dir,
            Protocol::Http1,
            Service {
                name: svc.into(),
                ..Service::default()
            },
            Upstream {
                host: host.into(),
                port: 443,
            },
        );
        e.duration_us = us;
        e.request = Some(Request {
            method: "GET".into(),
            path: path.into(),
            ..Request::default()
        });
        e.response = Some(Response {
            status: 200,
            ..Response::default()
        });
        e
    }

    #[tokio::test]
    async fn create_store_list_load_remove() {
        let dir = tempfile::tempdir().unwrap();
        let all = vec![
            ex("orders", Direction::Inbound, "127.0.0.1", "/orders/1", 100),
            ex("orders", Direction::Outbound, "payments", "/p/1", 40),
            ex("orders", Direction::Outbound, "payments", "/p/2", 60),
            ex("users", Direction::Inbound, "127.0.0.1", "/u", 5),
        ];
        let sel = Selection {
            service: Some("orders".into()),
            ..Selection::default()
        };
        let mut snap = build(all, sel, Some("nightly".into()), "file:///rec").unwrap();
        assert_eq!(snap.manifest.exchanges, 3);
        assert_eq!(snap.manifest.services, ["orders"]);
        let out = &snap.manifest.outbound["orders:payments:443"];
        assert_eq!(
            (out.count, out.latency_us.p50, out.latency_us.max),
            (2, 40, 60)
        );
        assert_eq!(snap.manifest.inbound["orders:127.0.0.1:443"].count, 1);

        let store = SnapshotStore::new(Location::local(dir.path()).unwrap());
        let saved = store.save(&mut snap).await.unwrap();
        assert!(saved.bytes > 0);
        assert_eq!(store.list().await.unwrap(), vec![saved.clone()]);
        let loaded = store.load("nightly").await.unwrap();
        assert_eq!(loaded, snap);
        assert_eq!(
            store.load(&saved.id[..8]).await.unwrap().manifest.id,
            saved.id
        );
        store.remove(&saved.id).await.unwrap();
        assert!(matches!(
            store.load("nightly").await,
            Err(SnapshotError::NotFound(_))
        ));
    }

    #[test]
    fn empty_selection_says_what_was_asked() {
        let sel = Selection {
            service: Some("nope".into()),
            ..Selection::default()
        };
        let e = build(
            vec![ex("orders", Direction::Inbound, "h", "/", 1)],
            sel,
            None,
            "x",
        )
        .unwrap_err();
        assert!(e.to_string().contains("service nope"), "{e}");
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let l = Latency::of((1..=100).collect());
        assert_eq!((l.p50, l.p95, l.p99, l.max), (50, 95, 99, 100));
    }
}

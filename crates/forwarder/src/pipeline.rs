//! What happens to one batch between the wire and the store: decode,
//! filter, redact, partition, write.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use tapwire_dlp::{Redacted, RedactedBatch, Redactor};
use tapwire_filter::Rules;
use tapwire_model::{ingest, segment, Exchange};
use tapwire_store::{Location, LocationError};

use crate::metrics::Metrics;

/// Writing a batch to the store failed; the sender should retry.
#[derive(Debug, thiserror::Error)]
#[error("storing batch {batch}: {source}")]
pub struct StoreError {
    /// The batch id.
    pub batch: String,
    /// The store's error.
    #[source]
    pub source: LocationError,
}

/// Filter rules, redactor and store, shared by every request.
pub struct Pipeline {
    /// Which exchanges are kept.
    pub rules: Rules,
    /// Redacts what is kept.
    pub redactor: Redactor,
    /// Where segments go.
    pub store: Location,
    pub(crate) metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("rules", &self.rules.origin)
            .field("store", &self.store.url())
            .finish_non_exhaustive()
    }
}

/// The object key of one batch's exchanges in one partition. Service names
/// are reduced to `[A-Za-z0-9._-]` so that they are safe path segments.
pub fn partition_key(e: &Exchange, batch: &str) -> String {
    let service: String = e
        .service
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let service = if service.is_empty() || service.chars().all(|c| c == '.') {
        "unknown".to_owned()
    } else {
        service
    };
    format!(
        "service={service}/date={}/hour={}/{batch}{}",
        e.start.format("%Y-%m-%d"),
        e.start.format("%H"),
        segment::SUFFIX
    )
}

/// Filtered and redacted exchanges, grouped by the object they go to.
pub(crate) struct Prepared {
    pub(crate) received: u64,
    pub(crate) filtered: u64,
    pub(crate) redactions: u64,
    pub(crate) objects: BTreeMap<String, RedactedBatch>,
}

impl Pipeline {
    /// A pipeline; metrics are registered by the server.
    pub fn new(rules: Rules, redactor: Redactor, store: Location, metrics: Arc<Metrics>) -> Self {
        Self {
            rules,
            redactor,
            store,
            metrics,
        }
    }

    /// Decodes, filters and redacts one batch (CPU work; run off the I/O
    /// threads).
    pub(crate) fn prepare(
        &self,
        batch: &str,
        body: &[u8],
    ) -> Result<Prepared, segment::BytesError> {
        let exchanges = segment::decode(body, ingest::MAX_BATCH_RAW_BYTES)?;
        let received = exchanges.len() as u64;
        let mut filtered = 0;
        let mut redactions = 0;
        let mut groups: BTreeMap<String, Vec<Redacted<Exchange>>> = BTreeMap::new();
        // Counted per batch, then added to the metrics once per label.
        let mut by_rule: BTreeMap<&str, u64> = BTreeMap::new();
        let mut by_category: BTreeMap<String, u64> = BTreeMap::new();
        for e in exchanges {
            let d = self.rules.decide(&e);
            if !d.keep {
                filtered += 1;
                *by_rule.entry(self.rules.rule_name(d)).or_default() += 1;
                continue;
            }
            let key = partition_key(&e, batch);
            let (clean, report) = self.redactor.redact_with_report(e);
            redactions += report.findings.len() as u64;
            for f in report.findings {
                *by_category.entry(f.category).or_default() += 1;
            }
            groups.entry(key).or_default().push(clean);
        }
        for (rule, n) in by_rule {
            self.metrics.filtered(rule, n);
        }
        for (category, n) in by_category {
            self.metrics.redacted(&category, n);
        }
        let objects = groups
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().collect::<RedactedBatch>()))
            .collect();
        Ok(Prepared {
            received,
            filtered,
            redactions,
            objects,
        })
    }

    /// Writes prepared objects. Only redacted batches can reach this point:
    /// the store is written from `RedactedBatch` and nothing else.
    pub(crate) async fn store(
        &self,
        batch: &str,
        objects: BTreeMap<String, RedactedBatch>,
    ) -> Result<Vec<String>, StoreError> {
        let mut written = Vec::with_capacity(objects.len());
        for (key, exchanges) in objects {
            let data = Bytes::from(segment::encode(exchanges.get()));
            let size = data.len() as u64;
            self.store
                .put(&key.as_str().into(), data)
                .await
                .map_err(|source| StoreError {
                    batch: batch.to_owned(),
                    source,
                })?;
            self.metrics.stored(exchanges.len() as u64, size);
            written.push(key);
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapwire_model::{Direction, Protocol, Service, Upstream};

    #[test]
    fn partition_keys_are_hive_style_and_safe() {
        let mut e = Exchange::new(
            Direction::Inbound,
            Protocol::Http1,
            Service {
                name: "orders/../x y".into(),
                ..Service::default()
            },
            Upstream {
                host: "h".into(),
                port: 1,
            },
        );
        e.start = "2026-12-01T07:08:09Z".parse().unwrap();
        assert_eq!(
            partition_key(&e, "b1"),
            "service=orders_.._x_y/date=2026-12-01/hour=07/b1.jsonl.zst"
        );
        e.service.name = "..".into();
        assert!(partition_key(&e, "b").starts_with("service=unknown/"));
    }
}

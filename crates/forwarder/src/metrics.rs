//! The forwarder's Prometheus metrics, under `tapwire_forwarder_`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// How a batch request ended (bounded label).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabels {
    pub(crate) outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RuleLabels {
    pub(crate) rule: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CategoryLabels {
    pub(crate) category: String,
}

/// Every metric the forwarder exports.
#[derive(Debug, Default)]
pub struct Metrics {
    batches: Family<OutcomeLabels, Counter>,
    received: Counter,
    received_bytes: Counter,
    filtered: Family<RuleLabels, Counter>,
    redactions: Family<CategoryLabels, Counter>,
    stored: Counter,
    stored_bytes: Counter,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> std::sync::Arc<Self> {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("tapwire_forwarder");
        r.register(
            "batches",
            "Batch requests by outcome (accepted, unauthorized, forbidden, bad_request, too_large, unsupported, store_error)",
            m.batches.clone(),
        );
        r.register(
            "exchanges_received",
            "Exchanges received in accepted batches",
            m.received.clone(),
        );
        r.register(
            "batch_bytes_received",
            "Compressed batch bytes received",
            m.received_bytes.clone(),
        );
        r.register(
            "exchanges_filtered",
            "Exchanges dropped by filter rules, by rule",
            m.filtered.clone(),
        );
        r.register(
            "redactions",
            "Values redacted, by category",
            m.redactions.clone(),
        );
        r.register(
            "exchanges_stored",
            "Exchanges written to storage",
            m.stored.clone(),
        );
        r.register(
            "stored_bytes",
            "Compressed segment bytes written to storage",
            m.stored_bytes.clone(),
        );
        std::sync::Arc::new(m)
    }

    pub(crate) fn batch(&self, outcome: &'static str) {
        self.batches.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub(crate) fn received(&self, exchanges: u64, bytes: u64) {
        self.received.inc_by(exchanges);
        self.received_bytes.inc_by(bytes);
    }

    pub(crate) fn filtered(&self, rule: &str, n: u64) {
        self.filtered
            .get_or_create(&RuleLabels {
                rule: rule.to_owned(),
            })
            .inc_by(n);
    }

    pub(crate) fn redacted(&self, category: &str, n: u64) {
        self.redactions
            .get_or_create(&CategoryLabels {
                category: category.to_owned(),
            })
            .inc_by(n);
    }

    pub(crate) fn stored(&self, exchanges: u64, bytes: u64) {
        self.stored.inc_by(exchanges);
        self.stored_bytes.inc_by(bytes);
    }

    /// Exchanges written to storage so far.
    pub fn stored_total(&self) -> u64 {
        self.stored.get()
    }
}

//! Mock metrics (served by the shared admin listener, `tapwire_admin`).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::results::{MockAccuracy, Outcome};

/// Labels of `tapwire_mock_requests_total`. `key` is a recorded traffic key
/// or `unrecorded`, so the set is bounded by the snapshot.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) key: String,
    pub(crate) outcome: String,
}

/// The mock's metrics.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    requests: Family<RequestLabels, Counter>,
    accuracy: Gauge<f64, AtomicU64>,
}

impl Metrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            accuracy: Gauge::default(),
        };
        m.accuracy.set(1.0);
        registry.register(
            "tapwire_mock_requests",
            "Requests answered by the mock, by traffic key and outcome (hit, miss, passthrough)",
            m.requests.clone(),
        );
        registry.register(
            "tapwire_mock_accuracy_ratio",
            "Hits divided by all requests (hits, misses and passthroughs) since start",
            m.accuracy.clone(),
        );
        m
    }

    pub(crate) fn observe(&self, key: &str, outcome: Outcome, acc: &MockAccuracy) {
        self.requests
            .get_or_create(&RequestLabels {
                key: key.to_owned(),
                outcome: outcome.as_str().to_owned(),
            })
            .inc();
        self.accuracy.set(acc.ratio());
    }
}

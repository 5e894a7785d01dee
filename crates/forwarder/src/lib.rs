//! The forwarder (`tapwire forwarder`): the in-cluster service that proxies
//! and the eBPF agent send captures to.
//!
//! Each batch (the ingest protocol, `tapwire_model::ingest`, specified in
//! `docs/specs/ingest.md`) is authenticated by API key, decoded, passed
//! through the filter rules, redacted by the data-loss-prevention engine and
//! written to object storage as one segment per partition
//! (`service=…/date=…/hour=…/<batch id>.jsonl.zst`). The forwarder keeps no
//! state of its own, so replicas scale behind one Service; a batch delivered
//! twice lands on the same object names and overwrites itself.

mod metrics;
mod pipeline;
mod server;

pub use metrics::Metrics;
pub use pipeline::{partition_key, Pipeline, StoreError};
pub use server::{start, ForwarderConfig, RunningForwarder, StartError};

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use std::sync::{Arc, OnceLock};

    use crate::{Metrics, Pipeline};

    fn pipeline() -> &'static Pipeline {
        static P: OnceLock<Pipeline> = OnceLock::new();
        P.get_or_init(|| {
            let dir = std::env::temp_dir().join("tapwire-fuzz-store");
            let store = tapwire_store::Location::local(&dir).expect("temp store");
            let key = tapwire_dlp::RedactionKey::new(&[7; 32]).expect("key");
            let redactor = tapwire_dlp::Redactor::new(&tapwire_dlp::DlpConfig::default(), key)
                .expect("default policy");
            let metrics = Metrics::register(&mut prometheus_client::registry::Registry::default());
            Pipeline::new(
                tapwire_filter::Rules::standard(),
                redactor,
                store,
                Arc::clone(&metrics),
            )
        })
    }

    /// Runs a batch body through decode, filter, redaction and partitioning
    /// (everything but the write); returns how many objects it would write.
    pub fn prepare(body: &[u8]) -> Option<usize> {
        pipeline()
            .prepare("00000000-0000-7000-8000-000000000000", body)
            .ok()
            .map(|p| p.objects.len())
    }
}

//! The ingest protocol, version 1: how proxies (and later the eBPF agent)
//! hand batches of exchanges to a forwarder. Specified in
//! `docs/specs/ingest.md`; both ends use these names so they cannot drift.
//!
//! A batch is `POST`ed to [`PATH`] over HTTP/1.1 or HTTP/2 (TLS optional).
//! Its body is one segment ([`crate::segment::encode`]: zstd JSON Lines),
//! it carries the API key as a bearer token, and [`BATCH_ID`] names it so
//! that a retried batch replaces itself in storage instead of duplicating.

/// Where batches are posted.
pub const PATH: &str = "/v1/batches";
/// The body's media type.
pub const CONTENT_TYPE: &str = "application/vnd.tapwire.segment.v1+zstd";
/// Header naming the batch (a UUID chosen by the sender, kept across
/// retries).
pub const BATCH_ID: &str = "tapwire-batch-id";
/// Largest compressed batch a forwarder accepts.
pub const MAX_BATCH_BYTES: usize = 32 << 20;
/// Largest decompressed batch a forwarder accepts.
pub const MAX_BATCH_RAW_BYTES: usize = 256 << 20;

/// The forwarder's answer to an accepted batch (JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Accepted {
    /// The batch id as received.
    pub batch: String,
    /// Exchanges in the batch.
    pub received: u64,
    /// Exchanges written to storage.
    pub stored: u64,
    /// Exchanges the filter rules dropped.
    pub filtered: u64,
    /// Values redacted by data-loss prevention.
    pub redactions: u64,
    /// Objects written (one per partition the batch touched).
    pub objects: Vec<String>,
}

/// The forwarder's answer to a refused batch (JSON, any 4xx or 5xx).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Refused {
    /// What went wrong and what to do about it.
    pub error: String,
}

/// Whether a sender should try a refused batch again: server-side trouble
/// and throttling yes, a batch or key the forwarder rejected no.
pub fn retryable(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

//! Live counters a front end can draw a progress bar from.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters updated while a replay runs; read them from another thread.
#[derive(Debug, Default)]
pub struct Progress {
    /// Requests that got an answer or an error.
    pub done: AtomicU64,
    /// Of those, requests that failed an assertion or got no answer.
    pub failed: AtomicU64,
    /// Expected number of requests, when known up front (0 when not).
    pub total: AtomicU64,
    /// Expected run time in milliseconds, when known up front (0 when not).
    pub duration_ms: AtomicU64,
}

impl Progress {
    pub(crate) fn record(&self, failed: bool) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

//! Shared helpers for tapwire's tests: free ports, the `tapwire` binary and
//! the in-process proxy started and stopped cleanly, real upstreams (Python,
//! nginx, gRPC) and clients, a test CA, capture and metric readers, and
//! network namespaces for tests with real iptables.
//!
//! Every wait here has a deadline, so a broken proxy fails a test instead of
//! hanging it. Helpers panic with a message that says what went wrong: they
//! are for tests only.

pub mod captures;
pub mod cloud;
pub mod curl;
pub mod data;
pub mod forwarder;
pub mod http;
pub mod inprocess;
pub mod java;
pub mod k8s;
pub mod metrics;
pub mod mock;
pub mod net;
pub mod netns;
pub mod nginx;
pub mod process;
pub mod python;
pub mod replay;
pub mod require;
pub mod tapwire;
pub mod tls;

pub use captures::{read_captures, wait_for_captures};
pub use curl::{curl, CurlOutput};
pub use data::{pattern, sha256_hex};
pub use http::{HttpConn, RawResponse};
pub use metrics::MetricsText;
pub use net::{free_port, wait_for_port};
pub use process::run_with_timeout;
pub use python::PyServer;
pub use require::{require_python_modules, require_root, require_tool, require_tools};
pub use tapwire::TapwireProcess;
pub use tls::TestCa;

/// Path of a file shipped in this crate (`py/upstream.py`, `java/HttpsGet.java`).
pub fn support_file(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

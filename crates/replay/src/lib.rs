//! Replays a snapshot's recorded inbound requests against a new build of a
//! service under a load shape, checks the answers against the recording and
//! reports (JSON, HTML, JUnit).
//!
//! The entry point is [`run`] with a [`ReplayConfig`]; write the outcome
//! with [`Report::write`]. The user guide is `docs/replay.md`.

mod check;
mod config;
mod conn;
pub mod diff;
mod endpoint;
#[doc(hidden)]
pub mod fuzzing;
mod goal;
mod html;
mod mock_admin;
mod noise;
mod progress;
mod report;
mod run;
mod tls;

use std::path::PathBuf;

pub use check::Problem;
pub use config::{LoadFile, Mode, ReplayConfig, Stage, StageError};
pub use endpoint::{endpoint_key, path_template};
pub use goal::{Goal, GoalError, GoalResult, LatencyStat, Metric, Op};
pub use noise::{EndpointNoise, Noise};
pub use progress::Progress;
pub use report::{
    Assertions, ClusterEvent, ClusterFacts, ContainerLog, EndpointStats, Failure, Percentiles,
    Report, Second, Summary, MAX_FAILURES, REPORT_JSON, REPORT_VERSION,
};
pub use run::run;
/// The mock responder's accuracy, as [`Report::mock`] holds it (defined in
/// `tapwire-mock`, re-exported so report readers need one crate).
pub use tapwire_mock::MockAccuracy;

/// Why a replay could not run or report. Failed assertions are not errors:
/// they are in the [`Report`].
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The configuration is unusable; the message names the setting.
    #[error("{0}")]
    Config(String),
    /// The snapshot holds nothing to send.
    #[error("snapshot {0} has no inbound HTTP requests to replay")]
    NoRequests(String),
    /// `--key` left nothing to send; the message lists what there is.
    #[error("no inbound request of snapshot {snapshot} has a key selected by --key {selectors}; its inbound keys are {known}")]
    NoneSelected {
        /// Snapshot name.
        snapshot: String,
        /// The selectors given, space-separated.
        selectors: String,
        /// The snapshot's inbound traffic keys, comma-separated.
        known: String,
    },
    /// A file could not be read or written.
    #[error("cannot {op} {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// TLS for an `https://` target could not be set up (`--cacert`
    /// unreadable or empty, no system roots).
    #[error("cannot set up TLS for the target")]
    Tls {
        /// Why.
        #[source]
        source: tapwire_ca::CaError,
    },
    /// The mock responder's results file (`--mock-results`) could not be read.
    #[error(transparent)]
    MockResults(#[from] tapwire_mock::ResultsError),
    /// A store location (`--report-to`) could not be read or written.
    #[error(transparent)]
    Store(#[from] tapwire_store::LocationError),
    /// A bug in tapwire.
    #[error("internal error: {0}")]
    Internal(String),
}

//! Tapwire's mock responder: it answers a service's outbound calls from the responses recorded in a snapshot.
//!
//! A [`Responder`] indexes a snapshot's outbound exchanges by request
//! [`Signature`] and answers each request with the next recorded response
//! of its sequence (see `docs/mock.md`), or explains the miss. A
//! [`MockServer`] puts it behind a forward proxy (HTTP_PROXY/HTTPS_PROXY,
//! with TLS terminated by leaves from tapwire's CA), reverse listeners mapped
//! per recorded host, and an admin port (which also answers
//! [`ACCURACY_PATH`] with the running counts). Every answer is logged as a
//! [`ResultRecord`]; [`summarize`] turns a results file into a
//! [`MockAccuracy`].

mod config;
#[doc(hidden)]
pub mod fuzzing;
mod metrics;
mod responder;
mod results;
mod server;
mod signature;

pub use config::{Mapping, MappingError, MockConfig, Timing, TimingError};
pub use responder::{Answer, Recorded, Responder, ResponderConfig, DEFAULT_SCOPE_HEADERS};
pub use results::{
    read_results, summarize, MockAccuracy, Outcome, ResultRecord, ResultsError, ResultsWriter,
};
pub use server::{
    MockServer, RunningMock, StartError, ACCURACY_PATH, MOCK_HEADER, TRUNCATED_HEADER,
};
pub use signature::{
    host_port, BodyKey, JsonPath, JsonPathError, MatchConfig, RequestView, Signature,
};

//! The tapwire Kubernetes operator: a mutating admission webhook that adds
//! the capture sidecar to annotated workloads' pods.
//!
//! The decision is a pure function over an `AdmissionReview`
//! ([`admission::mutate`]); [`cluster`] holds what is read from and written
//! to the API server; [`server`] runs the HTTPS listener.

pub mod admission;
pub mod annotations;
pub mod certs;
pub mod cluster;
pub mod inject;
pub mod replay;
pub mod server;

pub use admission::{mutate, Outcome, PodContext};
pub use annotations::{ProxyType, SidecarSpec};
pub use cluster::{Cluster, SidecarSecret, WebhookConfigName};
pub use inject::{InjectorConfig, PROXY_UID};
pub use server::{start, start_with, OperatorConfig, RunningOperator, StartError};

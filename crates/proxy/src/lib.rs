//! The capture proxy: sits beside a service, passes its traffic through
//! unchanged, and copies each exchange off the request path into a bounded
//! capture queue.
//!
//! Listeners: the inbound reverse proxy (default 4143) in front of the app,
//! the outbound forward proxy (default 4140, absolute-form HTTP and CONNECT,
//! with optional TLS interception), and the admin server (default 4145:
//! `/metrics`, `/healthz`, `/readyz`). In transparent mode both traffic
//! listeners take connections redirected by iptables instead (see
//! [`transparent`]).

mod appconn;
mod body;
mod capture;
mod chunked;
mod config;
mod error;
mod forward;
#[doc(hidden)]
pub mod fuzzing;
mod hop;
mod inbound;
mod io;
mod lane;
mod metrics;
mod outbound;
mod server;
mod sink;
mod sniff;
pub mod transparent;
mod tunnel;
mod uplink;

pub use capture::{CaptureQueue, CaptureReceiver, Captured};
pub use config::{Mode, ProxyConfig, ProxyProtocol, Wire};
pub use metrics::{DropReason, Handoff, Metrics};
pub use server::{Proxy, RunningProxy, StartError};
pub use sink::{CaptureSink, SegmentDirSink, SinkError};
pub use uplink::{ForwarderSink, UplinkConfig, UplinkError};

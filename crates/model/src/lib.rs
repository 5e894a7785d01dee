//! The record of one captured exchange, and the codecs that store and move it.
//!
//! An [`Exchange`] is one HTTP request with its response, or one opaque TCP
//! flow when the protocol was not understood. Everything downstream of capture
//! (storage, snapshots, mocks, replay) works on exchanges. The on-disk forms
//! are specified in `docs/specs/exchange.md`.

mod body;
mod exchange;
pub mod har;
mod headers;
pub mod ingest;
pub mod jsonl;
mod line;
pub mod segment;
mod selector;
pub mod view;
mod wire_text;

pub use body::Body;
pub use exchange::{
    Direction, Exchange, ExchangeId, Protocol, Request, Response, Service, TcpFlow, TlsInfo,
    Upstream,
};
pub use headers::Headers;
pub use selector::{is_selector, selects};

/// Version of the exchange JSON schema written by this build (`"v"` field).
pub const SCHEMA_VERSION: u32 = 1;

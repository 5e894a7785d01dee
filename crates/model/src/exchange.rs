use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Body, Headers};

/// Unique id of an exchange: a UUIDv7, so ids sort by capture time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExchangeId(pub uuid::Uuid);

impl ExchangeId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }
}

impl Default for ExchangeId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ExchangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which way the exchange crossed the service's boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// A call into the service; replayed as a test request.
    Inbound,
    /// A call the service made to a dependency; served back as a mock.
    Outbound,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        })
    }
}

/// The application protocol the proxy understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    /// HTTP/1.0 or HTTP/1.1.
    #[serde(rename = "http/1.1")]
    Http1,
    /// HTTP/2 (cleartext prior knowledge or ALPN `h2`).
    #[serde(rename = "h2")]
    Http2,
    /// gRPC: HTTP/2 with `content-type: application/grpc*`.
    #[serde(rename = "grpc")]
    Grpc,
    /// An opaque TCP flow (including TLS not intercepted).
    #[serde(rename = "tcp")]
    Tcp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Http1 => "http/1.1",
            Protocol::Http2 => "h2",
            Protocol::Grpc => "grpc",
            Protocol::Tcp => "tcp",
        })
    }
}

/// Who the service is. Outside Kubernetes only `name` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Logical service name (Kubernetes `app` label, or `--service`).
    pub name: String,
    /// Kubernetes namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Pod name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Node the pod ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Cluster name, as configured at install.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// The host and port the exchange was addressed to (for inbound, the app;
/// for outbound, the dependency as the app named it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Host name or IP literal (no brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// TLS facts of the client-side connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsInfo {
    /// Server name the client asked for in its ClientHello.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// Protocol agreed by ALPN (or offered, when not intercepted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alpn: Vec<String>,
    /// True when tapwire terminated the TLS session and saw plaintext.
    pub intercepted: bool,
}

/// An HTTP request as the service received or sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Method, as sent (`GET`, `POST`, …).
    pub method: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Host and optional port, from the request target or `Host`/`:authority`.
    pub authority: String,
    /// Path, without the query.
    pub path: String,
    /// Raw query string without `?`; absent when the target had none.
    #[serde(default)]
    pub query: Option<String>,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Header fields in wire order (hop-by-hop ones included).
    #[serde(default)]
    pub headers: Headers,
    /// Body as captured.
    #[serde(default)]
    pub body: Body,
    /// Trailer fields (HTTP/2 and chunked HTTP/1.1).
    #[serde(default)]
    pub trailers: Headers,
}

impl Request {
    /// Path plus `?query` when there is one.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{}", self.path, q),
            None => self.path.clone(),
        }
    }

    /// The full URL, `scheme://authority/path?query`.
    pub fn url(&self) -> String {
        format!(
            "{}://{}{}",
            self.scheme,
            self.authority,
            self.path_and_query()
        )
    }
}

/// An HTTP response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Header fields in wire order.
    #[serde(default)]
    pub headers: Headers,
    /// Body as captured.
    #[serde(default)]
    pub body: Body,
    /// Trailer fields (gRPC status lives here).
    #[serde(default)]
    pub trailers: Headers,
}

/// An opaque TCP flow: the bytes each side sent, each captured up to the limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpFlow {
    /// Bytes from the client to the server.
    pub client_bytes: Body,
    /// Bytes from the server to the client.
    pub server_bytes: Body,
}

/// One captured exchange. See `docs/specs/exchange.md` for the JSON form;
/// it is written through [`crate::view::ExchangeView`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// Schema version; readers reject versions they do not know.
    pub v: u32,
    /// Unique, time-ordered id.
    pub id: ExchangeId,
    /// When the request's first byte reached the proxy.
    pub start: DateTime<Utc>,
    /// Time from `start` until the response's last byte (or the flow's end),
    /// in microseconds.
    pub duration_us: u64,
    /// Inbound to the service, or outbound from it.
    pub direction: Direction,
    /// The service that owns this exchange.
    pub service: Service,
    /// Protocol understood by the proxy.
    pub protocol: Protocol,
    /// Address of the client side of the connection.
    #[serde(default)]
    pub client_addr: Option<SocketAddr>,
    /// Address of the server side as the client saw it (the proxy listener,
    /// or the original destination in transparent mode).
    #[serde(default)]
    pub server_addr: Option<SocketAddr>,
    /// Where the exchange was addressed.
    pub upstream: Upstream,
    /// TLS facts, when the client spoke TLS.
    #[serde(default)]
    pub tls: Option<TlsInfo>,
    /// The HTTP request (absent for TCP flows).
    #[serde(default)]
    pub request: Option<Request>,
    /// The HTTP response (absent for TCP flows, and when the upstream failed).
    #[serde(default)]
    pub response: Option<Response>,
    /// The TCP flow (only for `protocol: tcp`).
    #[serde(default)]
    pub tcp: Option<TcpFlow>,
    /// What went wrong, when the exchange did not complete normally
    /// (upstream unreachable, client went away, …).
    #[serde(default)]
    pub error: Option<String>,
    /// Free-form labels (`proxy_mode`, `k8s_*`, user tags).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl Exchange {
    /// A new exchange with a fresh id, starting now, with no payload yet.
    pub fn new(
        direction: Direction,
        protocol: Protocol,
        service: Service,
        upstream: Upstream,
    ) -> Self {
        Self {
            v: crate::SCHEMA_VERSION,
            id: ExchangeId::new(),
            start: Utc::now(),
            duration_us: 0,
            direction,
            service,
            protocol,
            client_addr: None,
            server_addr: None,
            upstream,
            tls: None,
            request: None,
            response: None,
            tcp: None,
            error: None,
            tags: BTreeMap::new(),
        }
    }

    /// The traffic key used by snapshots and selectors: `service:host:port`.
    pub fn key(&self) -> String {
        format!(
            "{}:{}:{}",
            self.service.name, self.upstream.host, self.upstream.port
        )
    }

    /// Request plus response body bytes as they crossed the wire.
    pub fn wire_bytes(&self) -> (u64, u64) {
        match (&self.request, &self.response, &self.tcp) {
            (_, _, Some(t)) => (t.client_bytes.size, t.server_bytes.size),
            (req, resp, None) => (
                req.as_ref().map_or(0, |r| r.body.size),
                resp.as_ref().map_or(0, |r| r.body.size),
            ),
        }
    }
}

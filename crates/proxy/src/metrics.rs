use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tapwire_model::Direction;

/// Direction label (bounded: two values).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub(crate) enum Dir {
    Inbound,
    Outbound,
}

impl From<Direction> for Dir {
    fn from(d: Direction) -> Self {
        match d {
            Direction::Inbound => Dir::Inbound,
            Direction::Outbound => Dir::Outbound,
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DirLabels {
    pub(crate) direction: Dir,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) direction: Dir,
    pub(crate) protocol: Proto,
}

/// Protocol label (bounded).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub(crate) enum Proto {
    Http1,
    H2,
    Grpc,
    Tcp,
}

impl From<tapwire_model::Protocol> for Proto {
    fn from(p: tapwire_model::Protocol) -> Self {
        match p {
            tapwire_model::Protocol::Http1 => Proto::Http1,
            tapwire_model::Protocol::Http2 => Proto::H2,
            tapwire_model::Protocol::Grpc => Proto::Grpc,
            tapwire_model::Protocol::Tcp => Proto::Tcp,
        }
    }
}

/// Why a capture was dropped (bounded).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum DropReason {
    /// The capture queue was full: the sink is slower than the traffic.
    QueueFull,
    /// The sink failed to store the capture.
    SinkError,
    /// The sink had stopped (proxy shutting down) with captures undelivered.
    SinkClosed,
    /// The forwarder was unreachable for so long that the uplink buffer
    /// filled; the oldest batches went.
    ForwarderOverflow,
    /// The forwarder refused a batch for good (bad API key, bad batch).
    ForwarderRejected,
}

impl DropReason {
    /// Every reason, for totals.
    pub const ALL: [DropReason; 5] = [
        DropReason::QueueFull,
        DropReason::SinkError,
        DropReason::SinkClosed,
        DropReason::ForwarderOverflow,
        DropReason::ForwarderRejected,
    ];
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DropLabels {
    pub(crate) reason: DropReason,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ErrorLabels {
    pub(crate) direction: Dir,
    pub(crate) kind: ErrorKind,
}

/// Kind of proxying error (bounded).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// Upstream refused, could not be resolved, or its TLS failed.
    Connect,
    /// Upstream did not accept a connection in time.
    Timeout,
    /// Upstream broke the exchange after accepting it.
    Protocol,
    /// Client sent a request that could not be parsed (400).
    Malformed,
    /// Client sent a head larger than allowed (431).
    HeaderTooLarge,
    /// Client's TLS handshake with the proxy failed.
    TlsHandshake,
    /// Client connection failed mid-exchange.
    Io,
}

/// Why a connection left the HTTP/1.1 fast lane for the general
/// HTTP path (bounded). The general path then serves the connection to its
/// end, so each connection counts at most once.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Handoff {
    /// HTTP/2 with prior knowledge (h2c).
    Http2,
    /// A version other than HTTP/1.1.
    Version,
    /// A request target that is not origin-form (absolute-form, `*`).
    Target,
    /// `Expect` (100-continue).
    Expect,
    /// A protocol upgrade (WebSocket, h2c upgrade).
    Upgrade,
    /// Body framing the lane does not relay: `Content-Length` and
    /// `Transfer-Encoding` together or repeated, a coding other than
    /// `chunked`, or `Connection` naming a framing field.
    Framing,
    /// No `Host` field, or more than one.
    Host,
    /// A head that does not parse, has more fields than allowed, or was
    /// cut off: the general path answers it (400, 431).
    Unparsed,
    /// A head larger than `--max-header-bytes` (431 from the general path).
    TooLarge,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct HandoffLabels {
    pub(crate) reason: Handoff,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ListenerLabels {
    pub(crate) listener: Listener,
}

/// Listener label (bounded).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub(crate) enum Listener {
    Inbound,
    Outbound,
}

/// Counters touched by every request, resolved once per direction so the
/// request path does no label hashing or map locking.
#[derive(Debug, Default)]
pub(crate) struct DirCounters {
    requests: [Counter; 4],
    pub(crate) request_bytes: Counter,
    pub(crate) response_bytes: Counter,
}

impl DirCounters {
    fn resolve(m: &Metrics, direction: Dir) -> Self {
        let requests = [Proto::Http1, Proto::H2, Proto::Grpc, Proto::Tcp].map(|protocol| {
            m.requests
                .get_or_create(&RequestLabels {
                    direction,
                    protocol,
                })
                .clone()
        });
        Self {
            requests,
            request_bytes: m
                .request_bytes
                .get_or_create(&DirLabels { direction })
                .clone(),
            response_bytes: m
                .response_bytes
                .get_or_create(&DirLabels { direction })
                .clone(),
        }
    }

    /// The request counter for `p`.
    pub(crate) fn requests(&self, p: tapwire_model::Protocol) -> &Counter {
        &self.requests[match Proto::from(p) {
            Proto::Http1 => 0,
            Proto::H2 => 1,
            Proto::Grpc => 2,
            Proto::Tcp => 3,
        }]
    }
}

/// Every metric the proxy exports, registered once.
#[derive(Debug, Default)]
pub struct Metrics {
    pub(crate) inbound: DirCounters,
    pub(crate) outbound: DirCounters,
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) request_bytes: Family<DirLabels, Counter>,
    pub(crate) response_bytes: Family<DirLabels, Counter>,
    pub(crate) upstream_errors: Family<ErrorLabels, Counter>,
    pub(crate) downstream_errors: Family<ErrorLabels, Counter>,
    pub(crate) connections: Family<ListenerLabels, Counter>,
    pub(crate) fast_lane_requests: Counter,
    pub(crate) fast_lane_handoffs: Family<HandoffLabels, Counter>,
    pub(crate) open_connections: Family<ListenerLabels, Gauge>,
    pub(crate) captures_queued: Counter,
    pub(crate) captures_written: Counter,
    pub(crate) captures_dropped: Family<DropLabels, Counter>,
    pub(crate) captures_truncated: Counter,
    pub(crate) queue_depth: Gauge<i64, AtomicI64Compat>,
    pub(crate) tls_intercepted: Counter,
    pub(crate) forwarder_batches_sent: Counter,
    pub(crate) forwarder_exchanges_sent: Counter,
    pub(crate) forwarder_send_failures: Counter,
    pub(crate) forwarder_buffered: Gauge<i64, AtomicI64Compat>,
}

/// Gauge storage; named so the struct above reads plainly.
pub(crate) type AtomicI64Compat = std::sync::atomic::AtomicI64;

impl Metrics {
    /// Creates the metrics and registers them under `tapwire_proxy_`.
    pub fn register(registry: &mut Registry) -> std::sync::Arc<Self> {
        let mut m = Self::default();
        m.inbound = DirCounters::resolve(&m, Dir::Inbound);
        m.outbound = DirCounters::resolve(&m, Dir::Outbound);
        let r = registry.sub_registry_with_prefix("tapwire_proxy");
        r.register(
            "requests",
            "Requests proxied, by direction and protocol",
            m.requests.clone(),
        );
        r.register(
            "request_body_bytes",
            "Request body bytes passed through",
            m.request_bytes.clone(),
        );
        r.register(
            "response_body_bytes",
            "Response body bytes passed through",
            m.response_bytes.clone(),
        );
        r.register(
            "upstream_errors",
            "Failures talking to upstreams, by kind",
            m.upstream_errors.clone(),
        );
        r.register(
            "downstream_errors",
            "Failures of client connections, by kind",
            m.downstream_errors.clone(),
        );
        r.register(
            "connections",
            "Client connections accepted",
            m.connections.clone(),
        );
        r.register(
            "fast_lane_requests",
            "HTTP/1.1 requests relayed by the fast lane",
            m.fast_lane_requests.clone(),
        );
        r.register(
            "fast_lane_handoffs",
            "Connections handed from the fast lane to the general HTTP path, by reason",
            m.fast_lane_handoffs.clone(),
        );
        r.register(
            "open_connections",
            "Client connections currently open",
            m.open_connections.clone(),
        );
        r.register(
            "captures_queued",
            "Captures put on the capture queue",
            m.captures_queued.clone(),
        );
        r.register(
            "captures_written",
            "Captures stored by the sink",
            m.captures_written.clone(),
        );
        r.register(
            "captures_dropped",
            "Captures lost, by reason; the app's traffic was not affected",
            m.captures_dropped.clone(),
        );
        r.register(
            "captures_truncated",
            "Captures whose body exceeded the capture limit",
            m.captures_truncated.clone(),
        );
        r.register(
            "capture_queue_depth",
            "Captures waiting for the sink",
            m.queue_depth.clone(),
        );
        r.register(
            "tls_intercepted",
            "TLS sessions terminated for interception",
            m.tls_intercepted.clone(),
        );
        r.register(
            "forwarder_batches_sent",
            "Capture batches the forwarder accepted",
            m.forwarder_batches_sent.clone(),
        );
        r.register(
            "forwarder_exchanges_sent",
            "Captures the forwarder accepted",
            m.forwarder_exchanges_sent.clone(),
        );
        r.register(
            "forwarder_send_failures",
            "Attempts to deliver a batch that will be retried",
            m.forwarder_send_failures.clone(),
        );
        r.register(
            "forwarder_buffered",
            "Captures waiting to be delivered to the forwarder",
            m.forwarder_buffered.clone(),
        );
        std::sync::Arc::new(m)
    }

    /// Counts `n` captures dropped for `reason`.
    pub(crate) fn count_dropped(&self, reason: DropReason, n: u64) {
        self.captures_dropped
            .get_or_create(&DropLabels { reason })
            .inc_by(n);
    }

    /// Total captures dropped for every reason.
    pub fn dropped_total(&self) -> u64 {
        DropReason::ALL.into_iter().map(|r| self.dropped(r)).sum()
    }

    /// Captures the forwarder accepted so far.
    pub fn forwarded(&self) -> u64 {
        self.forwarder_exchanges_sent.get()
    }

    /// The per-request counters of `d`.
    pub(crate) fn dir(&self, d: Direction) -> &DirCounters {
        match d {
            Direction::Inbound => &self.inbound,
            Direction::Outbound => &self.outbound,
        }
    }

    /// Total captures dropped for `reason` so far.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.captures_dropped
            .get_or_create(&DropLabels { reason })
            .get()
    }

    /// Requests the HTTP/1.1 fast lane relayed so far.
    pub fn fast_lane_requests(&self) -> u64 {
        self.fast_lane_requests.get()
    }

    /// Connections handed to the general HTTP path for `reason`.
    pub fn handoffs(&self, reason: Handoff) -> u64 {
        self.fast_lane_handoffs
            .get_or_create(&HandoffLabels { reason })
            .get()
    }

    /// Total captures the sink stored so far.
    pub fn written(&self) -> u64 {
        self.captures_written.get()
    }
}

/// Label values are written in snake_case, as Prometheus conventions ask.
macro_rules! snake_labels {
    ($($ty:ident { $($variant:ident => $text:literal),+ $(,)? })+) => {
        $(
            impl EncodeLabelValue for $ty {
                fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
                    use std::fmt::Write as _;
                    encoder.write_str(match self { $($ty::$variant => $text),+ })
                }
            }
        )+
    };
}

snake_labels! {
    Dir { Inbound => "inbound", Outbound => "outbound" }
    Proto { Http1 => "http1", H2 => "h2", Grpc => "grpc", Tcp => "tcp" }
    DropReason {
        QueueFull => "queue_full",
        SinkError => "sink_error",
        SinkClosed => "sink_closed",
        ForwarderOverflow => "forwarder_overflow",
        ForwarderRejected => "forwarder_rejected",
    }
    ErrorKind {
        Connect => "connect",
        Timeout => "timeout",
        Protocol => "protocol",
        Malformed => "malformed",
        HeaderTooLarge => "header_too_large",
        TlsHandshake => "tls_handshake",
        Io => "io",
    }
    Listener { Inbound => "inbound", Outbound => "outbound" }
    Handoff {
        Http2 => "http2",
        Version => "version",
        Target => "target",
        Expect => "expect",
        Upgrade => "upgrade",
        Framing => "framing",
        Host => "host",
        Unparsed => "unparsed",
        TooLarge => "too_large",
    }
}

use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use crossbeam_queue::ArrayQueue;
use http::HeaderMap;
use tapwire_model::view::{ExchangeView, Fields, RequestView, ResponseView, Tags};
use tapwire_model::{
    Body, Direction, Exchange, ExchangeId, Headers, Protocol, Request, Response, Service, TcpFlow,
    TlsInfo, Upstream,
};

use crate::metrics::{DropLabels, DropReason, Metrics};

/// Bytes captured from one body or one direction of a flow: the first
/// `limit` bytes as shared `Bytes` handles (no copy on the request path),
/// plus the true size.
#[derive(Debug, Default)]
pub(crate) struct BodyCapture {
    chunks: Vec<Bytes>,
    kept: usize,
    pub(crate) size: u64,
    pub(crate) trailers: Option<HeaderMap>,
    /// False when the stream ended early (peer went away, error).
    pub(crate) complete: bool,
}

impl BodyCapture {
    /// Records one chunk, keeping at most `limit` bytes overall.
    pub(crate) fn push(&mut self, chunk: &Bytes, limit: usize) {
        self.size += chunk.len() as u64;
        if self.kept < limit && !chunk.is_empty() {
            let take = chunk.len().min(limit - self.kept);
            self.chunks.push(chunk.slice(..take));
            self.kept += take;
        }
    }

    /// Records bytes that are not in a `Bytes` (raw TCP copies).
    pub(crate) fn push_slice(&mut self, data: &[u8], limit: usize) {
        self.size += data.len() as u64;
        if self.kept < limit && !data.is_empty() {
            let take = data.len().min(limit - self.kept);
            self.chunks.push(Bytes::copy_from_slice(&data[..take]));
            self.kept += take;
        }
    }

    pub(crate) fn truncated(&self) -> bool {
        (self.kept as u64) < self.size
    }

    /// The kept bytes as one buffer (no copy when there is one chunk).
    pub(crate) fn bytes(&self) -> Bytes {
        match self.chunks.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => {
                let mut b = BytesMut::with_capacity(self.kept);
                for c in many {
                    b.extend_from_slice(c);
                }
                b.freeze()
            }
        }
    }

    /// The kept bytes as the stored body.
    fn body(&self) -> Body {
        Body {
            data: self.bytes(),
            size: self.size,
            truncated: self.truncated(),
        }
    }
}

/// The request head as it arrived (before hop-by-hop headers were removed).
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) method: http::Method,
    pub(crate) scheme: &'static str,
    pub(crate) authority: String,
    pub(crate) path_and_query: String,
    pub(crate) version: http::Version,
    pub(crate) headers: HeaderMap,
}

/// The response head as the upstream sent it.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) status: http::StatusCode,
    pub(crate) version: http::Version,
    pub(crate) headers: HeaderMap,
}

/// What was seen on the wire, before redaction. Deliberately not
/// `Serialize`: it becomes an [`Exchange`] only inside the sink thread, so
/// the request path pays for nothing but reference-count bumps.
#[derive(Debug)]
pub struct Captured {
    pub(crate) id: ExchangeId,
    pub(crate) start: DateTime<Utc>,
    pub(crate) duration: Duration,
    pub(crate) direction: Direction,
    pub(crate) protocol: Protocol,
    pub(crate) service: Arc<Service>,
    pub(crate) client_addr: Option<SocketAddr>,
    pub(crate) server_addr: Option<SocketAddr>,
    pub(crate) upstream: Upstream,
    pub(crate) tls: Option<TlsInfo>,
    pub(crate) tags: Vec<(&'static str, String)>,
    pub(crate) error: Option<String>,
    pub(crate) payload: Payload,
}

// Http is the common case; boxing it would add an allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Payload {
    Http {
        heads: Heads,
        request_body: BodyCapture,
        response_body: BodyCapture,
    },
    Tcp {
        client: BodyCapture,
        server: BodyCapture,
    },
}

/// The heads of an HTTP exchange, as each path has them.
// Boxing the typed heads would add an allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Heads {
    /// Read by hyper on the general path.
    Typed {
        request: RequestHead,
        response: Option<ResponseHead>,
    },
    /// Relayed by the HTTP/1.1 fast lane: the raw bytes that arrived,
    /// parsed into fields on the sink thread.
    Raw {
        request: Bytes,
        response: Option<Bytes>,
    },
}

impl Heads {
    fn has_response(&self) -> bool {
        match self {
            Heads::Typed { response, .. } => response.is_some(),
            Heads::Raw { response, .. } => response.is_some(),
        }
    }
}

impl Payload {
    /// An HTTP exchange whose bodies are still to come.
    pub(crate) fn http(heads: Heads) -> Self {
        Payload::Http {
            heads,
            request_body: BodyCapture::default(),
            response_body: BodyCapture::default(),
        }
    }

    /// The request and response bodies, or the client and server bytes.
    fn bodies(&self) -> [&BodyCapture; 2] {
        match self {
            Payload::Http {
                request_body,
                response_body,
                ..
            } => [request_body, response_body],
            Payload::Tcp { client, server } => [client, server],
        }
    }

    /// Which bodies ended early, for the `incomplete` tag.
    fn incomplete(&self) -> [Option<&'static str>; 2] {
        let [a, b] = self.bodies();
        match self {
            Payload::Http { heads, .. } => [
                (!a.complete).then_some("request"),
                (heads.has_response() && !b.complete).then_some("response"),
            ],
            Payload::Tcp { .. } => [
                (!a.complete).then_some("client"),
                (!b.complete).then_some("server"),
            ],
        }
    }
}

/// Common facts of an exchange known when it starts.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub(crate) direction: Direction,
    pub(crate) service: Arc<Service>,
    pub(crate) client_addr: Option<SocketAddr>,
    pub(crate) server_addr: Option<SocketAddr>,
    pub(crate) tls: Option<TlsInfo>,
}

impl Captured {
    pub(crate) fn new(
        origin: &Origin,
        protocol: Protocol,
        upstream: Upstream,
        payload: Payload,
    ) -> Self {
        Self {
            id: ExchangeId::new(),
            start: Utc::now(),
            duration: Duration::ZERO,
            direction: origin.direction,
            protocol,
            service: origin.service.clone(),
            client_addr: origin.client_addr,
            server_addr: origin.server_addr,
            upstream,
            tls: origin.tls.clone(),
            tags: Vec::new(),
            error: None,
            payload,
        }
    }

    /// True when any body was cut at the capture limit.
    pub(crate) fn truncated(&self) -> bool {
        self.payload.bodies().iter().any(|b| b.truncated())
    }

    /// Converts the raw capture into the stored record. Runs on the sink
    /// thread, never on the request path.
    pub fn into_exchange(self) -> Exchange {
        if matches!(
            self.payload,
            Payload::Http {
                heads: Heads::Raw { .. },
                ..
            }
        ) {
            return self.with_view(|v| v.to_exchange());
        }
        // Built field by field: `Exchange::new` would read the clock and
        // draw a fresh id only for both to be overwritten.
        let mut ex = Exchange {
            v: tapwire_model::SCHEMA_VERSION,
            id: self.id,
            start: self.start,
            duration_us: u64::try_from(self.duration.as_micros()).unwrap_or(u64::MAX),
            direction: self.direction,
            service: (*self.service).clone(),
            protocol: self.protocol,
            client_addr: self.client_addr,
            server_addr: self.server_addr,
            upstream: self.upstream,
            tls: self.tls,
            request: None,
            response: None,
            tcp: None,
            error: self.error,
            tags: self
                .tags
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        };
        let incomplete = self.payload.incomplete();
        let incomplete: Vec<&str> = incomplete.into_iter().flatten().collect();
        if !incomplete.is_empty() {
            ex.tags.insert("incomplete".into(), incomplete.join(","));
        }
        match self.payload {
            Payload::Http {
                heads: Heads::Typed { request, response },
                request_body,
                response_body,
            } => {
                ex.request = Some(typed_request(request, request_body));
                ex.response = response.map(|head| typed_response(head, response_body));
            }
            Payload::Http {
                heads: Heads::Raw { .. },
                ..
            } => {} // written from its view above
            Payload::Tcp { client, server } => {
                ex.tcp = Some(TcpFlow {
                    client_bytes: client.body(),
                    server_bytes: server.body(),
                });
            }
        }
        ex
    }
}

fn typed_request(head: RequestHead, body: BodyCapture) -> Request {
    let (path, query) = match head.path_and_query.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (head.path_and_query, None),
    };
    Request {
        method: head.method.to_string(),
        scheme: head.scheme.to_owned(),
        authority: head.authority,
        path,
        query,
        version: version(head.version).to_owned(),
        headers: headers(&head.headers),
        trailers: trailers(&body),
        body: body.body(),
    }
}

fn typed_response(head: ResponseHead, body: BodyCapture) -> Response {
    Response {
        status: head.status.as_u16(),
        version: version(head.version).to_owned(),
        headers: headers(&head.headers),
        trailers: trailers(&body),
        body: body.body(),
    }
}

fn trailers(body: &BodyCapture) -> Headers {
    body.trailers.as_ref().map(headers).unwrap_or_default()
}

impl Captured {
    /// Hands `f` the capture as it is written: straight from the raw heads
    /// when the fast lane relayed it, else through [`Captured::into_exchange`].
    pub(crate) fn with_view<R>(self, f: impl FnOnce(&ExchangeView<'_>) -> R) -> R {
        if let Payload::Http {
            heads: Heads::Raw { request, response },
            request_body,
            response_body,
        } = &self.payload
        {
            return self.raw_view(
                request,
                response.as_deref(),
                [request_body, response_body],
                f,
            );
        }
        f(&self.into_exchange().view())
    }

    /// The view of an exchange the HTTP/1.1 fast lane relayed: its heads
    /// are the raw bytes that crossed the wire, parsed again here on the
    /// sink thread so that the request path only moved bytes (the lane
    /// parsed these very bytes before relaying them, so they parse). The
    /// authority is the `Host` field (the lane requires exactly one), else
    /// the upstream.
    fn raw_view<R>(
        &self,
        request: &[u8],
        response: Option<&[u8]>,
        [request_body, response_body]: [&BodyCapture; 2],
        f: impl FnOnce(&ExchangeView<'_>) -> R,
    ) -> R {
        let (method, target, minor, req_fields) = parse_fields(request, |slots| {
            let (req, _) = request_head(request, slots)?;
            Ok((
                req.method.unwrap_or_default(),
                req.path.unwrap_or_default(),
                req.version,
                pairs(req.headers),
            ))
        })
        .unwrap_or_default();
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let authority = match req_fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            Some((_, v)) => String::from_utf8_lossy(v),
            None => self.upstream.to_string().into(),
        };
        let response = response.map(|head| {
            parse_fields(head, |slots| {
                let (resp, _) = response_head(head, slots)?;
                Ok((
                    resp.code.unwrap_or_default(),
                    resp.version,
                    pairs(resp.headers),
                ))
            })
            .unwrap_or_default()
        });
        let (req_body, resp_body) = (request_body.body(), response_body.body());
        let (req_trailers, resp_trailers) = (trailers(request_body), trailers(response_body));

        let incomplete: Vec<&str> = self.payload.incomplete().into_iter().flatten().collect();
        let incomplete = incomplete.join(",");
        let mut tags: Vec<(&str, &str)> = self.tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if !incomplete.is_empty() {
            tags.push(("incomplete", &incomplete));
        }
        Tags::sort(&mut tags);

        f(&ExchangeView {
            v: tapwire_model::SCHEMA_VERSION,
            id: self.id,
            start: self.start,
            duration_us: u64::try_from(self.duration.as_micros()).unwrap_or(u64::MAX),
            direction: self.direction,
            service: &self.service,
            protocol: self.protocol,
            client_addr: self.client_addr,
            server_addr: self.server_addr,
            upstream: &self.upstream,
            tls: self.tls.as_ref(),
            request: Some(RequestView {
                method,
                scheme: "http",
                authority: &authority,
                path,
                query,
                version: minor_version(minor),
                headers: Fields::Raw(&req_fields),
                body: &req_body,
                trailers: Fields::Owned(&req_trailers),
            }),
            response: response
                .as_ref()
                .map(|(status, minor, fields)| ResponseView {
                    status: *status,
                    version: minor_version(*minor),
                    headers: Fields::Raw(fields),
                    body: &resp_body,
                    trailers: Fields::Owned(&resp_trailers),
                }),
            tcp: None,
            error: self.error.as_deref(),
            tags: Tags::Sorted(&tags),
        })
    }
}

/// Field names and values as they are in the head.
fn pairs<'b>(fields: &[httparse::Header<'b>]) -> Vec<(&'b str, &'b [u8])> {
    fields.iter().map(|f| (f.name, f.value)).collect()
}

fn minor_version(minor: Option<u8>) -> &'static str {
    match minor {
        Some(0) => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

/// Most heads have fewer fields than this; they parse with the field
/// slots on the stack.
const STACK_FIELDS: usize = 64;

/// Runs an `httparse` parse of `head` with field slots on the stack, and
/// again with as many slots as `head` could hold when it has more fields.
/// The slots are left uninitialised (httparse writes those it fills): this
/// runs twice per exchange on the request path and twice on the sink.
pub(crate) fn parse_fields<'b, R>(
    head: &'b [u8],
    mut parse: impl FnMut(&mut [MaybeUninit<httparse::Header<'b>>]) -> Result<R, httparse::Error>,
) -> Result<R, httparse::Error> {
    let mut small = [MaybeUninit::uninit(); STACK_FIELDS];
    match parse(&mut small) {
        Err(httparse::Error::TooManyHeaders) => {
            // A field line is at least "a:\r\n".
            let mut big = vec![MaybeUninit::uninit(); head.len() / 4 + 1];
            parse(&mut big)
        }
        r => r,
    }
}

/// Parses a request head into `fields` (see [`parse_fields`]).
pub(crate) fn request_head<'h, 'b>(
    head: &'b [u8],
    fields: &'h mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<(httparse::Request<'h, 'b>, httparse::Status<usize>), httparse::Error> {
    let mut req = httparse::Request::new(&mut []);
    let status = req.parse_with_uninit_headers(head, fields)?;
    Ok((req, status))
}

/// Parses a response head into `fields` (see [`parse_fields`]).
pub(crate) fn response_head<'h, 'b>(
    head: &'b [u8],
    fields: &'h mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<(httparse::Response<'h, 'b>, httparse::Status<usize>), httparse::Error> {
    let mut resp = httparse::Response::new(&mut []);
    let status = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, head, fields)?;
    Ok((resp, status))
}

fn headers(map: &HeaderMap) -> Headers {
    Headers::from_pairs(map.iter().map(|(n, v)| (n.as_str(), v.as_bytes())))
}

pub(crate) fn version(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// State shared by both ends of the capture queue.
#[derive(Debug)]
struct QueueCore {
    /// Boxed: the queue allocates and writes all its slots up front, and a
    /// `Captured` is 840 bytes, so the default 10,000 slots held 8 MiB
    /// resident in an idle proxy; boxed, an empty slot is 16 bytes.
    queue: ArrayQueue<Box<Captured>>,
    /// The writer thread, to wake it early when a backlog builds.
    writer: Mutex<Option<std::thread::Thread>>,
    /// True while the writer is parked.
    sleeping: AtomicBool,
    /// Set once the writer has stopped taking captures.
    closed: AtomicBool,
    /// Producers between their `closed` check and their push.
    offering: AtomicUsize,
    /// Backlog at which a producer wakes the writer before its timer does.
    wake_at: usize,
}

/// The producer side of the bounded capture queue. Offering never blocks
/// and never wakes the writer on its own: the writer drains on a short
/// timer and is woken early only when a backlog builds, so a request costs
/// a lock-free push rather than a thread wake-up. When the queue is full
/// the capture is dropped and counted.
#[derive(Debug, Clone)]
pub struct CaptureQueue {
    core: Arc<QueueCore>,
    metrics: Arc<Metrics>,
    limit: usize,
}

/// The consumer side, owned by the writer thread.
#[derive(Debug)]
pub struct CaptureReceiver {
    core: Arc<QueueCore>,
}

impl CaptureQueue {
    /// A queue holding at most `capacity` captures, and its consumer end.
    pub fn new(capacity: usize, limit: usize, metrics: Arc<Metrics>) -> (Self, CaptureReceiver) {
        let capacity = capacity.max(1);
        let core = Arc::new(QueueCore {
            queue: ArrayQueue::new(capacity),
            writer: Mutex::new(None),
            sleeping: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            offering: AtomicUsize::new(0),
            wake_at: (capacity / 2).clamp(1, 256),
        });
        (
            Self {
                core: core.clone(),
                metrics,
                limit,
            },
            CaptureReceiver { core },
        )
    }

    /// Bytes of each body to keep.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    fn dropped(&self, reason: DropReason) {
        self.metrics
            .captures_dropped
            .get_or_create(&DropLabels { reason })
            .inc();
    }

    /// Hands a finished capture to the writer, or drops it if the queue is full.
    pub(crate) fn offer(&self, c: Captured) {
        if c.truncated() {
            self.metrics.captures_truncated.inc();
        }
        let core = &self.core;
        core.offering.fetch_add(1, Ordering::SeqCst);
        if core.closed.load(Ordering::SeqCst) {
            core.offering.fetch_sub(1, Ordering::SeqCst);
            return self.dropped(DropReason::SinkClosed);
        }
        match core.queue.push(Box::new(c)) {
            Ok(()) => {
                self.metrics.captures_queued.inc();
                self.metrics.queue_depth.inc();
                if core.queue.len() >= core.wake_at && core.sleeping.swap(false, Ordering::AcqRel) {
                    if let Some(t) = core
                        .writer
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .as_ref()
                    {
                        t.unpark();
                    }
                }
            }
            Err(_) => self.dropped(DropReason::QueueFull),
        }
        core.offering.fetch_sub(1, Ordering::SeqCst);
    }
}

impl CaptureReceiver {
    /// Registers the calling thread as the writer that producers may wake.
    pub(crate) fn attach(&self) {
        *self.core.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::thread::current());
    }

    /// Takes the oldest capture, if any.
    pub(crate) fn pop(&self) -> Option<Captured> {
        self.core.queue.pop().map(|c| *c)
    }

    /// Sleeps until `timeout` passes or a producer sees a backlog.
    pub(crate) fn wait(&self, timeout: Duration) {
        let core = &self.core;
        core.sleeping.store(true, Ordering::Release);
        if core.queue.len() < core.wake_at {
            std::thread::park_timeout(timeout);
        }
        core.sleeping.store(false, Ordering::Release);
    }

    /// Stops taking captures: later offers are dropped and counted, and
    /// every offer already under way has landed when this returns.
    pub(crate) fn close(&self) {
        self.core.closed.store(true, Ordering::SeqCst);
        while self.core.offering.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
    }
}

/// Measures an exchange from its first byte.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock(Instant);

impl Clock {
    pub(crate) fn start() -> Self {
        Self(Instant::now())
    }

    pub(crate) fn elapsed(self) -> Duration {
        self.0.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use prometheus_client::registry::Registry;

    use super::*;

    /// Resident memory of this process, in bytes (Linux).
    fn rss() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
        let pages: usize = statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .expect("resident pages");
        pages * 4096
    }

    fn next(rng: &mut fastrand::Rng) -> u64 {
        rng.u64(..)
    }

    fn pick<'a>(rng: &mut fastrand::Rng, from: &[&'a str]) -> &'a str {
        from[next(rng) as usize % from.len()]
    }

    /// Field lines of mixed-case names and values that are text, text with
    /// bytes that are not UTF-8, escapes, or empty; appended to `head`, and
    /// as the decoded list the exchange must hold.
    fn field_lines(rng: &mut fastrand::Rng, head: &mut Vec<u8>, most: u64) -> Headers {
        let names = [
            "Host",
            "host",
            "Content-Type",
            "X-Trace-ID",
            "accept",
            "ETag",
        ];
        let mut decoded = Headers::new();
        for _ in 0..next(rng) % (most + 1) {
            let name = pick(rng, &names);
            let value: Vec<u8> = match next(rng) % 4 {
                0 => Vec::new(),
                1 => b"caf\xe9 \xff\x80 ok".to_vec(),
                2 => "na\u{ef}ve \"quoted\" \\ path/".as_bytes().to_vec(),
                _ => format!("v{}", next(rng) % 1000).into_bytes(),
            };
            head.extend_from_slice(format!("{name}: ").as_bytes());
            head.extend_from_slice(&value);
            head.extend_from_slice(b"\r\n");
            decoded.push(
                name.to_ascii_lowercase(),
                String::from_utf8_lossy(&value).into_owned(),
            );
        }
        head.extend_from_slice(b"\r\n");
        decoded
    }

    /// A body cut at `limit`, maybe unfinished, maybe with trailers.
    fn body(rng: &mut fastrand::Rng, limit: usize) -> BodyCapture {
        let mut b = BodyCapture {
            complete: !next(rng).is_multiple_of(5),
            ..BodyCapture::default()
        };
        let data: &[u8] = match next(rng) % 3 {
            0 => b"",
            1 => "{\"a\":\"\u{e9}\\n\"}".as_bytes(),
            _ => &[0xff, 0x00, 0x80, b'x'],
        };
        for chunk in data.chunks(3) {
            b.push(&Bytes::copy_from_slice(chunk), limit);
        }
        if next(rng).is_multiple_of(4) {
            let mut t = HeaderMap::new();
            t.append("grpc-status", http::HeaderValue::from_static("0"));
            b.trailers = Some(t);
        }
        b
    }

    /// A capture the fast lane could have made, and the exchange it must
    /// become, built here field by field from the same parts.
    fn raw_case(rng: &mut fastrand::Rng) -> (Captured, Exchange) {
        let method = pick(rng, &["GET", "POST", "DELETE"]);
        let target = pick(rng, &["/", "/a/b?x=1&y=%20", "/q?", "/caf%C3%A9?x=y"]);
        let req_version = pick(rng, &["HTTP/1.0", "HTTP/1.1"]);
        let mut req_head = format!("{method} {target} {req_version}\r\n").into_bytes();
        let req_fields = field_lines(rng, &mut req_head, 5);
        let upstream = Upstream {
            host: pick(rng, &["app", "::1"]).to_owned(),
            port: 8080,
        };
        let status = 200 + (next(rng) % 300) as u16;
        let resp_version = pick(rng, &["HTTP/1.0", "HTTP/1.1"]);
        let mut resp_head = format!("{resp_version} {status} Whatever\r\n").into_bytes();
        let resp_fields = field_lines(rng, &mut resp_head, 4);
        let answered = !next(rng).is_multiple_of(4);
        let limit = 1 + next(rng) as usize % 8;
        let origin = Origin {
            direction: Direction::Inbound,
            service: Arc::new(Service {
                name: "svc".into(),
                ..Service::default()
            }),
            client_addr: Some(SocketAddr::from(([10, 1, 2, 3], 50_000))),
            server_addr: None,
            tls: None,
        };
        let mut c = Captured::new(
            &origin,
            Protocol::Http1,
            upstream.clone(),
            Payload::Http {
                heads: Heads::Raw {
                    request: Bytes::from(req_head),
                    response: answered.then(|| Bytes::from(resp_head)),
                },
                request_body: body(rng, limit),
                response_body: body(rng, limit),
            },
        );
        c.duration = Duration::from_micros(next(rng) % 100_000);
        for _ in 0..next(rng) % 4 {
            let k = pick(rng, &["proxy_mode", "zeta", "incomplete", "alpha"]);
            c.tags.push((k, format!("t{}", next(rng) % 10)));
        }
        if next(rng).is_multiple_of(3) {
            c.error = Some("upstream went away".into());
        }

        let Payload::Http {
            request_body,
            response_body,
            ..
        } = &c.payload
        else {
            panic!("built as an HTTP capture above");
        };
        let stored = |b: &BodyCapture| Body {
            data: b.bytes(),
            size: b.size,
            truncated: b.truncated(),
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target.to_owned(), None),
        };
        let mut tags: BTreeMap<String, String> = c
            .tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let incomplete: Vec<&str> = c.payload.incomplete().into_iter().flatten().collect();
        if !incomplete.is_empty() {
            tags.insert("incomplete".into(), incomplete.join(","));
        }
        let ex = Exchange {
            v: tapwire_model::SCHEMA_VERSION,
            id: c.id,
            start: c.start,
            duration_us: c.duration.as_micros() as u64,
            direction: c.direction,
            service: (*c.service).clone(),
            protocol: c.protocol,
            client_addr: c.client_addr,
            server_addr: c.server_addr,
            upstream: upstream.clone(),
            tls: None,
            request: Some(Request {
                method: method.to_owned(),
                scheme: "http".into(),
                authority: req_fields
                    .get("host")
                    .map_or_else(|| upstream.to_string(), str::to_owned),
                path,
                query,
                version: req_version.to_owned(),
                headers: req_fields,
                body: stored(request_body),
                trailers: trailers(request_body),
            }),
            response: answered.then(|| Response {
                status,
                version: resp_version.to_owned(),
                headers: resp_fields,
                body: stored(response_body),
                trailers: trailers(response_body),
            }),
            tcp: None,
            error: c.error.clone(),
            tags,
        };
        (c, ex)
    }

    #[test]
    fn raw_captures_are_written_as_their_exchanges() {
        let mut rng = fastrand::Rng::with_seed(0x5eed_1234_abcd_ef01);
        for i in 0..3_000 {
            let (c, expected) = raw_case(&mut rng);
            let mut line = Vec::new();
            c.with_view(|v| tapwire_model::jsonl::encode_view_into(&mut line, v));
            assert_eq!(
                String::from_utf8_lossy(&line),
                String::from_utf8_lossy(&tapwire_model::jsonl::encode(&expected)),
                "case {i}"
            );
        }
        // The same cases as owned exchanges, for sinks that keep them.
        let mut rng = fastrand::Rng::with_seed(0x5eed_1234_abcd_ef01);
        for i in 0..3_000 {
            let (c, expected) = raw_case(&mut rng);
            assert_eq!(c.into_exchange(), expected, "case {i}");
        }
    }

    #[test]
    fn an_empty_queue_costs_little_memory() {
        // The queue writes every slot when it is made; with captures stored
        // in place, 100,000 slots were 81 MiB resident at once.
        let metrics = Metrics::register(&mut Registry::default());
        let before = rss();
        let (queue, rx) = CaptureQueue::new(100_000, 1024, metrics);
        let grown = rss().saturating_sub(before);
        assert!(
            grown < 40 << 20,
            "an empty queue of 100,000 captures took {} MiB",
            grown >> 20
        );
        drop((queue, rx));
    }
}

//! The HTTP/1.1 fast lane: plaintext HTTP/1.1 to the app behind the
//! inbound listener, and to the original destination of a connection
//! redirected in transparent mode.
//!
//! Nearly every request an app receives is plain: HTTP/1.1, an
//! origin-form target, one `Host`, a body framed by `Content-Length`,
//! `chunked`, or nothing. For those the lane reads the head with
//! `httparse`, writes it to the connection's own app connection without
//! its hop-by-hop fields, and relays both bodies as the bytes they are,
//! decoding only their framing: enough to know where a message ends and
//! which bytes to copy into the capture. The capture keeps both heads as
//! raw bytes; the sink thread parses them into fields
//! ([`crate::capture::Heads::Raw`]).
//!
//! Everything else (`Expect`, upgrades, HTTP/1.0, absolute-form targets,
//! h2c, heads that do not parse or are too large) is handed, with the bytes
//! read so far, to the general path, hyper's server and client, which
//! serves the connection from then on exactly as it would have from the
//! start. Each hand-off is counted by reason.
//!
//! Why by hand: hyper's server and client cost about three times nginx's
//! user-space time per request on this path (docs/benchmarks.md), most of
//! it turning bytes into typed requests and back; no crate offers an
//! HTTP/1.1 relay that forwards bytes as they are while exposing the
//! framing to a capture.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tapwire_model::{Protocol, Upstream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::appconn;
use crate::body::{Pending, Slot};
use crate::capture::{
    parse_fields, request_head, response_head, BodyCapture, Captured, Clock, Heads, Origin, Payload,
};
use crate::chunked::Chunked;
use crate::error::ProxyError;
use crate::forward::{count_upstream_error, upstream_error};
use crate::hop;
use crate::metrics::{Dir, ErrorKind, ErrorLabels, Handoff, HandoffLabels};
use crate::server::{Shared, HEADER_READ_TIMEOUT};

/// Bytes a read asks for at least.
const READ_SIZE: usize = 16 * 1024;

/// Longest chunk-size line (digits and extensions) accepted in a body.
const MAX_CHUNK_LINE: usize = 4096;

/// A body part at most this long is copied behind its head so that both
/// go out in one write; longer ones go out as a second buffer.
const COALESCE: usize = 16 * 1024;

/// Serves `client` in the lane, sending its requests to `app`, until it
/// closes, or until a request needs the general path; then returns the
/// bytes read and not yet relayed, for that path to read first.
pub(crate) async fn run<S>(
    client: &mut S,
    origin: &Origin,
    shared: &Arc<Shared>,
    app: SocketAddr,
) -> Option<Bytes>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut lane = Lane {
        origin,
        shared,
        upstream: Upstream {
            host: app.ip().to_string(),
            port: app.port(),
        },
        app_addr: app,
        buf: BytesMut::new(),
        resp: BytesMut::new(),
        up: Vec::new(),
        down: Vec::new(),
        app: None,
        stop: shared.stop.clone(),
    };
    loop {
        let req = match lane.next_request(client).await {
            Next::Request(req) => req,
            Next::Closed => return None,
            Next::Handoff(reason) => {
                shared
                    .metrics()
                    .fast_lane_handoffs
                    .get_or_create(&HandoffLabels { reason })
                    .inc();
                tracing::debug!(peer = ?origin.client_addr, ?reason, "connection handed to the general HTTP path");
                return Some(lane.buf.freeze());
            }
        };
        if !lane.exchange(client, req).await || *lane.stop.borrow() {
            return None;
        }
    }
}

/// One client connection in the lane.
struct Lane<'a> {
    origin: &'a Origin,
    shared: &'a Shared,
    /// Where requests go (the app, or a redirected connection's original
    /// destination), as recorded.
    upstream: Upstream,
    app_addr: SocketAddr,
    /// Client bytes read and not yet relayed.
    buf: BytesMut,
    /// App bytes read and not yet relayed.
    resp: BytesMut,
    /// The request head as written to the app (kept for a retry).
    up: Vec<u8>,
    /// The response head as written to the client.
    down: Vec<u8>,
    /// This connection's own app connection, idle between requests.
    app: Option<TcpStream>,
    stop: watch::Receiver<bool>,
}

enum Next {
    Request(Req),
    Closed,
    Handoff(Handoff),
}

/// What the lane needs to know of a request head it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Req {
    head_len: usize,
    body: Framing,
    /// The client asked to close the connection after this exchange.
    close: bool,
    /// `HEAD`: the response has no body whatever its fields say.
    head_method: bool,
    /// Safe to send again on a fresh connection (RFC 9110 §9.2.2).
    idempotent: bool,
    protocol: Protocol,
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the sender closes (responses only).
    UntilClose,
}

/// The part of a request body still to come from the client.
enum Rest {
    Length(u64),
    Chunked(Chunked),
}

impl Lane<'_> {
    /// Reads until a whole request head is buffered, the client leaves, or
    /// the request is one for the general path.
    async fn next_request<S: AsyncRead + Unpin>(&mut self, client: &mut S) -> Next {
        let config = &self.shared.config;
        let mut deadline = None;
        loop {
            if !self.buf.is_empty() {
                match parse_request(&self.buf, &mut self.up, config.max_header_fields()) {
                    Ok(Some(req)) if req.head_len <= config.max_header_bytes => {
                        return Next::Request(req)
                    }
                    Ok(Some(_)) => return Next::Handoff(Handoff::TooLarge),
                    Ok(None) if self.buf.len() > config.max_header_bytes => {
                        return Next::Handoff(Handoff::TooLarge)
                    }
                    Ok(None) => {}
                    Err(reason) => return Next::Handoff(reason),
                }
            }
            reserve(&mut self.buf);
            let read = if self.buf.is_empty() {
                // Idle between requests: a shutdown closes the connection.
                if *self.stop.borrow() {
                    return Next::Closed;
                }
                tokio::select! {
                    r = client.read_buf(&mut self.buf) => r,
                    Ok(()) = self.stop.changed() => return Next::Closed,
                }
            } else {
                // A head has begun: it must be complete in time.
                let at = *deadline.get_or_insert_with(|| Instant::now() + HEADER_READ_TIMEOUT);
                match tokio::time::timeout_at(at, client.read_buf(&mut self.buf)).await {
                    Ok(r) => r,
                    Err(_) => {
                        self.downstream_error(
                            ErrorKind::Timeout,
                            &format!(
                                "no complete request head within {}s",
                                HEADER_READ_TIMEOUT.as_secs()
                            ),
                        );
                        return Next::Closed;
                    }
                }
            };
            match read {
                Ok(0) if self.buf.is_empty() => return Next::Closed,
                // Cut off inside a head: the general path reports it.
                Ok(0) => return Next::Handoff(Handoff::Unparsed),
                Ok(_) => {}
                Err(e) => {
                    self.downstream_error(ErrorKind::Io, &e.to_string());
                    return Next::Closed;
                }
            }
        }
    }

    /// Relays one exchange. Returns whether the client connection can carry
    /// another request.
    async fn exchange<S>(&mut self, client: &mut S, req: Req) -> bool
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let shared = self.shared;
        let queue = &shared.queue;
        let limit = queue.limit();
        let counters = shared.metrics().dir(self.origin.direction);
        counters.requests(req.protocol).inc();
        shared.metrics().fast_lane_requests.inc();
        let clock = Clock::start();
        let head = self.buf.split_to(req.head_len).freeze();
        let pending = Pending::new(
            Captured::new(
                self.origin,
                req.protocol,
                self.upstream.clone(),
                Payload::http(Heads::Raw {
                    request: head,
                    response: None,
                }),
            ),
            clock,
            queue.clone(),
        );

        // The body bytes already read go out with the head.
        let mut req_body = BodyCapture::default();
        let (first, rest) = match self.buffered_body(req.body, &mut req_body, limit) {
            Ok(split) => split,
            Err(e) => {
                counters.request_bytes.inc_by(req_body.size);
                pending.set_body(Slot::Request, req_body);
                let msg = format!("bad chunked request body: {e}");
                pending.set_error(msg.clone());
                self.downstream_error(ErrorKind::Malformed, &msg);
                let err = ProxyError::BadRequest(msg);
                let _ = client.write_all(&error_bytes(&err, true)).await;
                return false;
            }
        };
        req_body.complete = rest.is_none();
        let close = req.close || *self.stop.borrow();
        let how = ResponseHow {
            head_method: req.head_method,
            close,
            limit,
            max_head: shared.config.max_header_bytes.max(64 * 1024),
        };

        let (mut app, reused) = match self.app.take().filter(idle_and_open) {
            Some(app) => (app, true),
            None => match self.connect().await {
                Ok(app) => (app, false),
                Err(err) => {
                    return self
                        .fail(client, &pending, req_body, &err, rest.is_none())
                        .await
                }
            },
        };

        let Some(rest) = rest else {
            // The whole request is here: send it, relay the answer, and
            // send it once more on a fresh connection if a kept-alive one
            // turns out to have been closed under it.
            let mut retried = false;
            let relayed = loop {
                let relayed = send_and_relay(
                    &mut app,
                    client,
                    &self.up,
                    &first,
                    &mut self.resp,
                    &mut self.down,
                    &how,
                )
                .await;
                let closed_under = matches!(relayed, Err(Unanswered::Closed));
                if retried || !reused || !req.idempotent || !closed_under {
                    break relayed;
                }
                retried = true;
                pending.tag("retried", "upstream closed the connection before answering");
                app = match self.connect().await {
                    Ok(app) => app,
                    Err(err) => return self.fail(client, &pending, req_body, &err, true).await,
                };
            };
            return self
                .finish(client, app, &pending, req_body, relayed, true)
                .await;
        };

        // The body is still arriving: stream it to the app while relaying
        // whatever the app answers, which may come before the body ends.
        if let Err(e) = write_two(&mut app, &self.up, &first).await {
            let relayed = Err(Unanswered::Failed(format!("sending the request: {e}")));
            return self
                .finish(client, app, &pending, req_body, relayed, false)
                .await;
        }
        let (relayed, sent) = {
            let (mut from_client, mut to_client) = tokio::io::split(&mut *client);
            let (mut from_app, mut to_app) = app.split();
            let send = send_rest(
                &mut from_client,
                &mut to_app,
                &mut self.buf,
                rest,
                &mut req_body,
                limit,
            );
            let relay = relay_response(
                &mut from_app,
                &mut to_client,
                &mut self.resp,
                &mut self.down,
                &how,
            );
            tokio::pin!(send, relay);
            let mut sent = None;
            let relayed = loop {
                tokio::select! {
                    s = &mut send, if sent.is_none() => match s {
                        // The app may answer without reading everything
                        // (413 and the like): keep relaying its answer.
                        Ok(()) | Err(SendFail::App(_)) => sent = Some(s),
                        Err(e) => break Err(e),
                    },
                    r = &mut relay => break Ok(r),
                }
            };
            (relayed, sent)
        };
        match relayed {
            Ok(relayed) => {
                let whole = matches!(sent, Some(Ok(())));
                req_body.complete = whole;
                if let Some(Err(SendFail::App(e))) = &sent {
                    tracing::debug!(error = %e, "the app stopped reading the request body");
                }
                self.finish(client, app, &pending, req_body, relayed, whole)
                    .await
            }
            Err(fail) => {
                // The client is gone or sent bad framing: the app saw part
                // of a request and its connection cannot be reused.
                req_body.complete = false;
                counters.request_bytes.inc_by(req_body.size);
                pending.set_body(Slot::Request, req_body);
                let msg = fail.to_string();
                pending.set_error(msg.clone());
                if let SendFail::Malformed(_) = fail {
                    self.downstream_error(ErrorKind::Malformed, &msg);
                    let err = ProxyError::BadRequest(msg);
                    let _ = client.write_all(&error_bytes(&err, true)).await;
                } else {
                    self.downstream_error(ErrorKind::Io, &msg);
                }
                false
            }
        }
    }

    /// Takes the body bytes already buffered: the part that goes out with
    /// the head, and what is still to come.
    fn buffered_body(
        &mut self,
        framing: Framing,
        cap: &mut BodyCapture,
        limit: usize,
    ) -> Result<(Bytes, Option<Rest>), crate::chunked::ChunkError> {
        match framing {
            Framing::None | Framing::UntilClose => Ok((Bytes::new(), None)),
            Framing::Length(n) => {
                let have = usize::try_from(n).unwrap_or(usize::MAX).min(self.buf.len());
                let part = self.buf.split_to(have).freeze();
                cap.push(&part, limit);
                let left = n - have as u64;
                Ok((part, (left > 0).then_some(Rest::Length(left))))
            }
            Framing::Chunked => {
                let mut dec = Chunked::new(MAX_CHUNK_LINE, self.shared.config.max_header_bytes);
                let part = take_chunked(&mut dec, &mut self.buf, cap, limit)?;
                Ok((part, (!dec.is_done()).then_some(Rest::Chunked(dec))))
            }
        }
    }

    async fn connect(&self) -> Result<TcpStream, ProxyError> {
        let timeout = self.shared.config.connect_timeout;
        appconn::connect(self.app_addr, timeout).await.map_err(|e| {
            upstream_error(
                e.is_connect(),
                e.to_string(),
                self.upstream.to_string(),
                timeout,
            )
        })
    }

    /// Records the outcome of a relayed exchange and keeps the app
    /// connection when it is reusable. `whole` says the request body was
    /// read to its end.
    async fn finish<S>(
        &mut self,
        client: &mut S,
        app: TcpStream,
        pending: &Pending,
        req_body: BodyCapture,
        relayed: Result<Relayed, Unanswered>,
        whole: bool,
    ) -> bool
    where
        S: AsyncWrite + Unpin,
    {
        let counters = self.shared.metrics().dir(self.origin.direction);
        match relayed {
            Ok(r) => {
                counters.request_bytes.inc_by(req_body.size);
                counters.response_bytes.inc_by(r.body.size);
                pending.set_body(Slot::Request, req_body);
                pending.set_raw_response(r.head);
                pending.set_body(Slot::Response, r.body);
                if r.app_reusable && whole {
                    self.app = Some(app);
                }
                r.client_open && whole
            }
            Err(Unanswered::ClientGone) => {
                counters.request_bytes.inc_by(req_body.size);
                pending.set_body(Slot::Request, req_body);
                pending.set_error("the client went away before the response".to_owned());
                false
            }
            Err(Unanswered::Closed) => {
                let err = upstream_error(
                    false,
                    "the app closed the connection before answering".to_owned(),
                    self.upstream.to_string(),
                    self.shared.config.connect_timeout,
                );
                self.fail(client, pending, req_body, &err, whole).await
            }
            Err(Unanswered::Failed(reason)) => {
                let err = upstream_error(
                    false,
                    reason,
                    self.upstream.to_string(),
                    self.shared.config.connect_timeout,
                );
                self.fail(client, pending, req_body, &err, whole).await
            }
        }
    }

    /// Answers a request the app did not: counted, logged, recorded, and
    /// reported to the client with a body that says which host failed.
    /// The connection stays open when the request was read to its end.
    async fn fail<S>(
        &mut self,
        client: &mut S,
        pending: &Pending,
        req_body: BodyCapture,
        err: &ProxyError,
        whole: bool,
    ) -> bool
    where
        S: AsyncWrite + Unpin,
    {
        let counters = self.shared.metrics().dir(self.origin.direction);
        counters.request_bytes.inc_by(req_body.size);
        pending.set_body(Slot::Request, req_body);
        count_upstream_error(self.shared, self.origin.direction, err);
        pending.set_error(err.to_string());
        let keep = whole && !*self.stop.borrow();
        client.write_all(&error_bytes(err, !keep)).await.is_ok() && keep
    }

    fn downstream_error(&self, kind: ErrorKind, msg: &str) {
        self.shared
            .metrics()
            .downstream_errors
            .get_or_create(&ErrorLabels {
                direction: Dir::from(self.origin.direction),
                kind,
            })
            .inc();
        match kind {
            ErrorKind::Io => {
                tracing::debug!(side = "downstream", peer = ?self.origin.client_addr, error = %msg, "client connection ended with an error")
            }
            _ => {
                tracing::warn!(side = "downstream", peer = ?self.origin.client_addr, error = %msg, ?kind, "rejected request from client")
            }
        }
    }
}

/// An idle app connection is reused unless the app closed it (or sent
/// something unasked) meanwhile; the check costs no system call while
/// nothing arrived.
fn idle_and_open(app: &TcpStream) -> bool {
    matches!(app.try_read(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// Keeps room for one read.
fn reserve(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < READ_SIZE / 4 {
        buf.reserve(READ_SIZE);
    }
}

/// Reads a request head from `buf`. `Ok(None)`: not complete yet. On
/// success `up` holds the head to send to the app.
fn parse_request(buf: &[u8], up: &mut Vec<u8>, max_fields: usize) -> Result<Option<Req>, Handoff> {
    let parsed = parse_fields(buf, |fields| {
        let (req, status) = request_head(buf, fields)?;
        Ok(match status {
            httparse::Status::Complete(_) if req.headers.len() > max_fields => {
                Err(Handoff::Unparsed)
            }
            httparse::Status::Complete(n) => plan_request(&req, n, up).map(Some),
            httparse::Status::Partial => Ok(None),
        })
    });
    match parsed {
        Ok(plan) => plan,
        Err(httparse::Error::Version) if buf.starts_with(b"PRI * HTTP/2") => Err(Handoff::Http2),
        Err(httparse::Error::Version) => Err(Handoff::Version),
        Err(_) => Err(Handoff::Unparsed),
    }
}

/// Decides whether the lane takes a parsed request, and writes the head
/// the app gets into `up`: the client's, field for field and in order,
/// without hop-by-hop fields (`TE: trailers` excepted, and
/// `Transfer-Encoding`, since the chunked bytes are relayed as they are).
fn plan_request(
    req: &httparse::Request<'_, '_>,
    head_len: usize,
    up: &mut Vec<u8>,
) -> Result<Req, Handoff> {
    if req.version != Some(1) {
        return Err(Handoff::Version);
    }
    let method = req.method.unwrap_or_default();
    let path = req.path.unwrap_or_default();
    if !path.starts_with('/') {
        return Err(Handoff::Target);
    }
    let mut body = Framing::None;
    let (mut framings, mut hosts) = (0, 0);
    let mut close = false;
    let mut grpc = false;
    let mut named: Vec<&[u8]> = Vec::new();
    for f in req.headers.iter() {
        let (n, v) = (f.name, f.value);
        if n.eq_ignore_ascii_case("content-length") {
            framings += 1;
            body = Framing::Length(content_length(v).ok_or(Handoff::Framing)?);
        } else if n.eq_ignore_ascii_case("transfer-encoding") {
            framings += 1;
            if !v.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(Handoff::Framing);
            }
            body = Framing::Chunked;
        } else if n.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if n.eq_ignore_ascii_case("expect") {
            return Err(Handoff::Expect);
        } else if n.eq_ignore_ascii_case("upgrade") {
            return Err(Handoff::Upgrade);
        } else if n.eq_ignore_ascii_case("connection") {
            for t in hop::tokens(v) {
                if t.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if t.eq_ignore_ascii_case(b"upgrade") {
                    return Err(Handoff::Upgrade);
                } else if [&b"content-length"[..], b"transfer-encoding", b"host"]
                    .iter()
                    .any(|f| t.eq_ignore_ascii_case(f))
                {
                    // Dropping a framing field would desynchronise the app.
                    return Err(Handoff::Framing);
                } else if !t.eq_ignore_ascii_case(b"keep-alive") {
                    named.push(t);
                }
            }
        } else if n.eq_ignore_ascii_case("content-type") {
            grpc = v.starts_with(b"application/grpc");
        }
    }
    if framings > 1 {
        return Err(Handoff::Framing);
    }
    if hosts != 1 {
        return Err(Handoff::Host);
    }
    up.clear();
    for part in [method.as_bytes(), b" ", path.as_bytes(), b" HTTP/1.1\r\n"] {
        up.extend_from_slice(part);
    }
    let mut te_trailers = false;
    for f in req.headers.iter() {
        let keep = if f.name.eq_ignore_ascii_case("transfer-encoding") {
            true
        } else if f.name.eq_ignore_ascii_case("te") {
            if hop::asks_trailers(f.value) && !te_trailers {
                te_trailers = true;
                write_field(up, f.name.as_bytes(), b"trailers");
            }
            false
        } else {
            !hop::is_hop_name(f.name)
                && !named
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(f.name.as_bytes()))
        };
        if keep {
            write_field(up, f.name.as_bytes(), f.value);
        }
    }
    up.extend_from_slice(b"\r\n");
    Ok(Req {
        head_len,
        body,
        close,
        head_method: method == "HEAD",
        idempotent: matches!(
            method,
            "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
        ),
        protocol: if grpc {
            Protocol::Grpc
        } else {
            Protocol::Http1
        },
    })
}

fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    for part in [name, b": ", value, b"\r\n"] {
        out.extend_from_slice(part);
    }
}

/// A `Content-Length` value: digits only, as RFC 9110 §8.6 has it.
fn content_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Feeds `buf` to a chunked decoder: the framed bytes that belong to this
/// message are taken out of `buf` and returned, their payload copied into
/// `cap`, and the trailers too once the body ends.
fn take_chunked(
    dec: &mut Chunked,
    buf: &mut BytesMut,
    cap: &mut BodyCapture,
    limit: usize,
) -> Result<Bytes, crate::chunked::ChunkError> {
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let used = dec.feed(buf, |r| ranges.push(r))?;
    let part = buf.split_to(used).freeze();
    for r in ranges {
        cap.push(&part.slice(r), limit);
    }
    if dec.is_done() {
        cap.trailers = trailer_map(dec.trailers());
    }
    Ok(part)
}

/// Trailer field lines as a header map, `None` when there are none.
fn trailer_map(raw: &[u8]) -> Option<http::HeaderMap> {
    if raw.is_empty() {
        return None;
    }
    // parse_headers wants the final empty line.
    let mut section = raw.to_vec();
    section.extend_from_slice(b"\r\n");
    let mut map = http::HeaderMap::new();
    // Trailers are rare: slots for as many fields as the section can hold.
    let mut fields = vec![httparse::EMPTY_HEADER; section.len() / 4 + 1];
    if let Ok(httparse::Status::Complete((_, parsed))) =
        httparse::parse_headers(&section, &mut fields)
    {
        for f in parsed {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(f.name.as_bytes()),
                http::HeaderValue::from_bytes(f.value),
            ) {
                map.append(n, v);
            }
        }
    }
    Some(map)
}

/// Why a request body could not be streamed to its end.
#[derive(Debug, thiserror::Error)]
enum SendFail {
    #[error("the client closed the connection before the end of the request body")]
    ClientGone,
    #[error("reading the request body: {0}")]
    ClientIo(io::Error),
    #[error("bad chunked request body: {0}")]
    Malformed(crate::chunked::ChunkError),
    #[error("sending the request body to the app: {0}")]
    App(io::Error),
}

/// Streams the rest of a request body from the client to the app.
async fn send_rest<R, W>(
    client: &mut R,
    app: &mut W,
    buf: &mut BytesMut,
    rest: Rest,
    cap: &mut BodyCapture,
    limit: usize,
) -> Result<(), SendFail>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match rest {
        Rest::Length(mut left) => {
            while left > 0 {
                reserve(buf);
                if client.read_buf(buf).await.map_err(SendFail::ClientIo)? == 0 {
                    return Err(SendFail::ClientGone);
                }
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                let part = buf.split_to(take).freeze();
                cap.push(&part, limit);
                left -= take as u64;
                app.write_all(&part).await.map_err(SendFail::App)?;
            }
        }
        Rest::Chunked(mut dec) => {
            while !dec.is_done() {
                reserve(buf);
                if client.read_buf(buf).await.map_err(SendFail::ClientIo)? == 0 {
                    return Err(SendFail::ClientGone);
                }
                let part = take_chunked(&mut dec, buf, cap, limit).map_err(SendFail::Malformed)?;
                app.write_all(&part).await.map_err(SendFail::App)?;
            }
        }
    }
    Ok(())
}

/// How a response is to be relayed.
struct ResponseHow {
    head_method: bool,
    /// The client connection closes after this exchange.
    close: bool,
    limit: usize,
    max_head: usize,
}

/// A response relayed to the client (completely or not: see its body's
/// `complete`).
struct Relayed {
    head: Bytes,
    body: BodyCapture,
    app_reusable: bool,
    /// The client connection can carry another request.
    client_open: bool,
}

/// Why no response reached the client.
#[derive(Debug)]
enum Unanswered {
    /// The app closed or reset the connection before sending a byte: the
    /// request may be sent again if it is idempotent.
    Closed,
    /// The app's answer was not a usable response.
    Failed(String),
    /// The client went away first.
    ClientGone,
}

async fn send_and_relay<S: AsyncRead + AsyncWrite + Unpin>(
    app: &mut TcpStream,
    client: &mut S,
    head: &[u8],
    body: &[u8],
    resp: &mut BytesMut,
    down: &mut Vec<u8>,
    how: &ResponseHow,
) -> Result<Relayed, Unanswered> {
    match write_two(app, head, body).await {
        Ok(()) => relay_response(app, client, resp, down, how).await,
        Err(e) if is_reset(&e) => Err(Unanswered::Closed),
        Err(e) => Err(Unanswered::Failed(format!("sending the request: {e}"))),
    }
}

fn is_reset(e: &io::Error) -> bool {
    use io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    matches!(e.kind(), ConnectionReset | BrokenPipe | ConnectionAborted)
}

/// Reads the app's response and relays it to the client: interim (1xx)
/// heads as they are, then the final head without hop-by-hop fields and
/// the body as its bytes.
async fn relay_response<R, W>(
    app: &mut R,
    client: &mut W,
    buf: &mut BytesMut,
    down: &mut Vec<u8>,
    how: &ResponseHow,
) -> Result<Relayed, Unanswered>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    buf.clear();
    let mut received = false;
    let plan = loop {
        if !buf.is_empty() {
            match parse_response(buf, down, how).map_err(Unanswered::Failed)? {
                Some(Resp::Interim(n)) => {
                    let interim = buf.split_to(n);
                    client
                        .write_all(&interim)
                        .await
                        .map_err(|_| Unanswered::ClientGone)?;
                    continue;
                }
                Some(Resp::Final(plan)) => break plan,
                None if buf.len() > how.max_head => {
                    return Err(Unanswered::Failed(format!(
                        "response head larger than {} bytes",
                        how.max_head
                    )))
                }
                None => {}
            }
        }
        reserve(buf);
        match app.read_buf(buf).await {
            Ok(0) if !received => return Err(Unanswered::Closed),
            Ok(0) => {
                return Err(Unanswered::Failed(
                    "the app closed the connection inside the response head".to_owned(),
                ))
            }
            Ok(_) => received = true,
            Err(e) if !received && is_reset(&e) => return Err(Unanswered::Closed),
            Err(e) => return Err(Unanswered::Failed(format!("reading the response: {e}"))),
        }
    };

    let head = buf.split_to(plan.head_len).freeze();
    let mut body = BodyCapture::default();
    let mut out = Relayed {
        head,
        body: BodyCapture::default(),
        app_reusable: plan.keep_alive,
        client_open: !plan.close,
    };
    // The head goes out with the first part of the body.
    let mut head_out = Some(std::mem::take(down));
    let mut dec =
        (plan.body == Framing::Chunked).then(|| Chunked::new(MAX_CHUNK_LINE, how.max_head));
    let mut left = match plan.body {
        Framing::Length(n) => n,
        _ => 0,
    };
    loop {
        // Take what belongs to this body from `buf`.
        let (part, done) = match plan.body {
            Framing::None => (Bytes::new(), true),
            Framing::Length(_) => {
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                let part = buf.split_to(take).freeze();
                body.push(&part, how.limit);
                left -= take as u64;
                (part, left == 0)
            }
            Framing::Chunked => {
                let Some(dec) = dec.as_mut() else { break };
                match take_chunked(dec, buf, &mut body, how.limit) {
                    Ok(part) => (part, dec.is_done()),
                    Err(e) if head_out.is_some() => {
                        return Err(Unanswered::Failed(format!(
                            "bad chunked response body: {e}"
                        )))
                    }
                    Err(e) => {
                        tracing::warn!(side = "upstream", error = %e, "bad chunked response body; closing the client connection");
                        out.client_open = false;
                        out.app_reusable = false;
                        break;
                    }
                }
            }
            Framing::UntilClose => {
                let part = buf.split().freeze();
                body.push(&part, how.limit);
                (part, false)
            }
        };
        let written = match head_out.take() {
            Some(mut h) => {
                let r = if part.len() <= COALESCE {
                    h.extend_from_slice(&part);
                    client.write_all(&h).await
                } else {
                    write_two(client, &h, &part).await
                };
                h.clear();
                *down = h;
                r
            }
            None if part.is_empty() => Ok(()),
            None => client.write_all(&part).await,
        };
        if written.is_err() {
            out.client_open = false;
            out.app_reusable = false;
            break;
        }
        if done {
            body.complete = true;
            break;
        }
        reserve(buf);
        match app.read_buf(buf).await {
            Ok(0) if plan.body == Framing::UntilClose => {
                body.complete = true;
                break;
            }
            Ok(0) | Err(_) => {
                // Cut short: the client must see the connection close to
                // know its response is incomplete.
                out.client_open = false;
                out.app_reusable = false;
                break;
            }
            Ok(_) => {}
        }
    }
    if !buf.is_empty() {
        // More than the response announced: the connection is out of step.
        out.app_reusable = false;
        buf.clear();
    }
    out.body = body;
    Ok(out)
}

enum Resp {
    /// A 1xx head of this many bytes, to pass on as it is.
    Interim(usize),
    Final(ResponsePlan),
}

struct ResponsePlan {
    head_len: usize,
    body: Framing,
    keep_alive: bool,
    /// The client connection closes after this response.
    close: bool,
}

/// Reads a response head from `buf` and, for a final one, writes the head
/// for the client into `down`.
fn parse_response(
    buf: &[u8],
    down: &mut Vec<u8>,
    how: &ResponseHow,
) -> Result<Option<Resp>, String> {
    let parsed = parse_fields(buf, |fields| {
        let (resp, status) = response_head(buf, fields)?;
        Ok(match status {
            httparse::Status::Complete(n) => plan_response(&resp, n, down, how).map(Some),
            httparse::Status::Partial => Ok(None),
        })
    });
    parsed.map_err(|e| format!("malformed response head: {e}"))?
}

fn plan_response(
    resp: &httparse::Response<'_, '_>,
    head_len: usize,
    down: &mut Vec<u8>,
    how: &ResponseHow,
) -> Result<Resp, String> {
    let code = resp.code.unwrap_or_default();
    if code == 101 {
        return Err("the app switched protocols without being asked to".to_owned());
    }
    if (100..200).contains(&code) {
        return Ok(Resp::Interim(head_len));
    }
    let http10 = resp.version == Some(0);
    let mut keep_alive = !http10;
    let mut length = None;
    let mut codings = false;
    let mut chunked = false;
    let mut named: Vec<&[u8]> = Vec::new();
    let mut dated = false;
    for f in resp.headers.iter() {
        let (n, v) = (f.name, f.value);
        if n.eq_ignore_ascii_case("date") {
            dated = true;
        } else if n.eq_ignore_ascii_case("content-length") {
            let l = content_length(v).ok_or_else(|| {
                format!("invalid Content-Length {:?}", String::from_utf8_lossy(v))
            })?;
            if length.is_some_and(|prev| prev != l) {
                return Err("conflicting Content-Length values".to_owned());
            }
            length = Some(l);
        } else if n.eq_ignore_ascii_case("transfer-encoding") {
            codings = true;
            chunked = hop::tokens(v)
                .last()
                .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
        } else if n.eq_ignore_ascii_case("connection") {
            for t in hop::tokens(v) {
                if t.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive |= http10;
                } else {
                    named.push(t);
                }
            }
        }
    }
    let body = if how.head_method || code == 204 || code == 304 {
        Framing::None
    } else if codings {
        // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3).
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else {
        length.map_or(Framing::UntilClose, Framing::Length)
    };
    if codings && length.is_some() || body == Framing::UntilClose {
        keep_alive = false;
    }
    let close = how.close || body == Framing::UntilClose;

    down.clear();
    let mut status = itoa::Buffer::new();
    for part in [
        &b"HTTP/1.1 "[..],
        status.format(code).as_bytes(),
        b" ",
        resp.reason.unwrap_or_default().as_bytes(),
        b"\r\n",
    ] {
        down.extend_from_slice(part);
    }
    for f in resp.headers.iter() {
        let n = f.name;
        let keep = if n.eq_ignore_ascii_case("transfer-encoding") {
            true
        } else if n.eq_ignore_ascii_case("content-length") {
            !codings
        } else {
            !hop::is_hop_name(n) && !named.iter().any(|t| t.eq_ignore_ascii_case(n.as_bytes()))
        };
        if keep {
            write_field(down, n.as_bytes(), f.value);
        }
    }
    if !dated {
        // A recipient forwarding a response without Date adds one
        // (RFC 9110 §6.6.1).
        let now = httpdate::fmt_http_date(std::time::SystemTime::now());
        write_field(down, b"date", now.as_bytes());
    }
    if close {
        down.extend_from_slice(b"connection: close\r\n");
    }
    down.extend_from_slice(b"\r\n");
    Ok(Resp::Final(ResponsePlan {
        head_len,
        body,
        keep_alive,
        close,
    }))
}

/// Writes `a` then `b`, in one system call when the stream takes both.
async fn write_two<W: AsyncWrite + Unpin>(w: &mut W, a: &[u8], b: &[u8]) -> io::Result<()> {
    let (mut a, mut b) = (a, b);
    while !a.is_empty() || !b.is_empty() {
        let n = if a.is_empty() {
            w.write(b).await?
        } else if b.is_empty() {
            w.write(a).await?
        } else {
            w.write_vectored(&[IoSlice::new(a), IoSlice::new(b)])
                .await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_a = n.min(a.len());
        a = &a[from_a..];
        b = b.get(n - from_a..).unwrap_or_default();
    }
    Ok(())
}

/// The bytes of the response that reports `err` to the client.
fn error_bytes(err: &ProxyError, close: bool) -> Vec<u8> {
    let body = err.body();
    let mut out = format!(
        "HTTP/1.1 {}\r\ncontent-type: {}\r\nx-tapwire-error: {}\r\ncontent-length: {}\r\n",
        err.status(),
        ProxyError::CONTENT_TYPE,
        err.kind(),
        body.len()
    );
    if close {
        out.push_str("connection: close\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(raw: &str) -> (Result<Option<Req>, Handoff>, String) {
        let mut up = Vec::new();
        let r = parse_request(raw.as_bytes(), &mut up, 100);
        (r, String::from_utf8(up).unwrap())
    }

    fn how(head_method: bool, close: bool) -> ResponseHow {
        ResponseHow {
            head_method,
            close,
            limit: 1024,
            max_head: 64 * 1024,
        }
    }

    /// The plan and the client's head, less the `date` the lane adds to
    /// a response that has none (checked here).
    fn response(raw: &str, how: &ResponseHow) -> (ResponsePlan, String) {
        let mut down = Vec::new();
        let Ok(Some(Resp::Final(plan))) = parse_response(raw.as_bytes(), &mut down, how) else {
            panic!("not a final response: {raw:?}")
        };
        let text = String::from_utf8(down).unwrap();
        let added = text
            .split_inclusive("\r\n")
            .filter(|l| l.starts_with("date: "));
        let dated = raw.contains("\r\nDate: ");
        assert_eq!(added.count(), usize::from(!dated), "{text:?}");
        let text = text
            .split_inclusive("\r\n")
            .filter(|l| !l.starts_with("date: "))
            .collect();
        (plan, text)
    }

    #[test]
    fn the_app_gets_the_head_without_hop_by_hop_fields() {
        let raw = "POST /a?b=1 HTTP/1.1\r\nHost: shop\r\nConnection: keep-alive, X-Hop\r\n\
                   X-Hop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic x\r\n\
                   TE: gzip, trailers\r\nTransfer-Encoding: chunked\r\nAccept: a\r\nAccept: b\r\n\r\n";
        let (req, up) = request(&format!("{raw}5\r\nhello"));
        let req = req.unwrap().unwrap();
        assert_eq!(
            up,
            "POST /a?b=1 HTTP/1.1\r\nHost: shop\r\nTE: trailers\r\n\
             Transfer-Encoding: chunked\r\nAccept: a\r\nAccept: b\r\n\r\n"
        );
        assert_eq!((req.head_len, req.body), (raw.len(), Framing::Chunked));
        assert!(!req.close && !req.idempotent && !req.head_method);
    }

    #[test]
    fn lengths_close_and_methods_are_read() {
        let (req, _) = request(
            "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nConnection: close\r\n\r\n",
        );
        let req = req.unwrap().unwrap();
        assert_eq!(req.body, Framing::Length(12));
        assert!(req.close && req.idempotent);
        let (req, _) =
            request("HEAD / HTTP/1.1\r\nHost: a\r\nContent-Type: application/grpc+proto\r\n\r\n");
        let req = req.unwrap().unwrap();
        assert!(req.head_method);
        assert_eq!((req.body, req.protocol), (Framing::None, Protocol::Grpc));
        assert_eq!(
            request("GET / HTTP/1.1\r\nHost: a\r\n").0,
            Ok(None),
            "partial"
        );
    }

    #[test]
    fn requests_for_the_general_path_say_why() {
        for (raw, why) in [
            ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Handoff::Http2),
            ("GET / HTTP/1.0\r\nHost: a\r\n\r\n", Handoff::Version),
            ("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", Handoff::Target),
            ("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", Handoff::Target),
            ("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", Handoff::Target),
            ("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", Handoff::Expect),
            ("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", Handoff::Upgrade),
            ("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n", Handoff::Upgrade),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", Handoff::Framing),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", Handoff::Framing),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Handoff::Framing),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", Handoff::Framing),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,1\r\n\r\n", Handoff::Framing),
            ("GET / HTTP/1.1\r\nHost: a\r\nConnection: Transfer-Encoding\r\n\r\n", Handoff::Framing),
            ("GET / HTTP/1.1\r\n\r\n", Handoff::Host),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Handoff::Host),
            ("GET / HTTP/1.1\r\nHo st: a\r\n\r\n", Handoff::Unparsed),
            ("\x01\x02garbage\r\n\r\n", Handoff::Unparsed),
        ] {
            assert_eq!(request(raw).0, Err(why), "{raw:?}");
        }
        // More fields than allowed: hyper answers 431 per the config.
        let mut many = "GET / HTTP/1.1\r\nHost: a\r\n".to_owned();
        for i in 0..150 {
            many.push_str(&format!("X-{i}: v\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(request(&many).0, Err(Handoff::Unparsed));
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        let (p, down) = response(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nSet-Cookie: a\r\nSet-Cookie: b\r\nDate: Wed, 02 Dec 2026 03:00:00 GMT\r\n\r\nhello",
            &how(false, false),
        );
        assert_eq!(
            (p.body, p.keep_alive, p.close),
            (Framing::Length(5), true, false)
        );
        assert_eq!(
            down,
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: a\r\nSet-Cookie: b\r\nDate: Wed, 02 Dec 2026 03:00:00 GMT\r\n\r\n"
        );
        assert_eq!(
            p.head_len,
            down.len() + "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\n".len()
        );

        // Transfer-Encoding wins over Content-Length, which is dropped.
        let (p, down) = response(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            &how(false, false),
        );
        assert_eq!((p.body, p.keep_alive), (Framing::Chunked, false));
        assert_eq!(
            down,
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        );

        // No length: until close, and the client is told.
        let (p, down) = response("HTTP/1.0 200 OK\r\nServer: x\r\n\r\n", &how(false, false));
        assert_eq!(
            (p.body, p.keep_alive, p.close),
            (Framing::UntilClose, false, true)
        );
        assert_eq!(
            down,
            "HTTP/1.1 200 OK\r\nServer: x\r\nconnection: close\r\n\r\n"
        );

        // HTTP/1.0 with keep-alive and a length stays open.
        let (p, _) = response(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            &how(false, false),
        );
        assert_eq!((p.body, p.keep_alive), (Framing::Length(0), true));

        // HEAD, 204 and 304 have no body whatever the fields say.
        for (raw, head) in [
            ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true),
            ("HTTP/1.1 204 No Content\r\n\r\n", false),
            (
                "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
            ),
        ] {
            assert_eq!(
                response(raw, &how(head, false)).0.body,
                Framing::None,
                "{raw:?}"
            );
        }
        // The client asked to close.
        let (p, down) = response(
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            &how(false, true),
        );
        assert!(p.close && p.keep_alive);
        assert!(down.ends_with("connection: close\r\n\r\n"));
    }

    #[test]
    fn interim_and_unusable_responses() {
        let mut down = Vec::new();
        let h = how(false, false);
        let interim = "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n";
        assert!(matches!(
            parse_response(format!("{interim}HTTP/1.1 200").as_bytes(), &mut down, &h),
            Ok(Some(Resp::Interim(n))) if n == interim.len()
        ));
        for bad in [
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/9.9 200 OK\r\n\r\n",
        ] {
            assert!(
                parse_response(bad.as_bytes(), &mut down, &h).is_err(),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_response(b"HTTP/1.1 200 OK\r\n", &mut down, &h),
            Ok(None)
        ));
    }

    #[tokio::test]
    async fn two_buffers_go_out_whole_even_one_byte_at_a_time() {
        let (mut a, mut b) = tokio::io::duplex(1);
        let writer = async move {
            write_two(&mut a, b"head;", b"body").await.unwrap();
        };
        let reader = async move {
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((), got) = tokio::join!(writer, reader);
        assert_eq!(got, b"head;body");
    }

    #[test]
    fn error_responses_say_what_failed_and_may_close() {
        let err = ProxyError::UpstreamUnreachable {
            target: "127.0.0.1:9".into(),
            reason: "refused".into(),
        };
        let text = String::from_utf8(error_bytes(&err, true)).unwrap();
        let body = "tapwire: upstream 127.0.0.1:9 unreachable: refused\n";
        assert_eq!(
            text,
            format!(
                "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain; charset=utf-8\r\n\
                 x-tapwire-error: upstream-unreachable\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            )
        );
    }
}

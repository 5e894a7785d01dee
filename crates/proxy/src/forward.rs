//! Forwarding one HTTP request to its upstream while capturing it: shared by
//! the inbound listener, the outbound listener, tunnels and transparently
//! redirected connections.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tapwire_model::{Protocol, Upstream};
use tower_service::Service;

use crate::appconn::{AppSlot, AppTarget, Lease, Leased, SendError};
use crate::body::{full, Pending, ProxyBody, Slot, TeeBody};
use crate::capture::{Captured, Clock, Heads, Origin, Payload, RequestHead, ResponseHead};
use crate::error::{chain, ProxyError};
use crate::hop;
use crate::metrics::{Dir, ErrorKind, ErrorLabels};
use crate::server::Shared;
use crate::ProxyConfig;

/// Request body type sent upstream: the client's body streamed through a
/// tee, or, for a retry, the captured copy of a body that already ended.
pub(crate) type UpBody = Either<TeeBody<Incoming>, Full<Bytes>>;

/// Where one request goes and how it is recorded.
#[derive(Debug)]
pub(crate) struct Hop {
    /// Scheme recorded for the request (`http` or `https`).
    pub(crate) scheme: &'static str,
    /// Authority recorded for the request.
    pub(crate) authority: String,
    /// Upstream recorded for the exchange.
    pub(crate) upstream: Upstream,
    /// Absolute URI handed to the client.
    pub(crate) target: Uri,
}

/// Connects every request to one fixed address, whatever its URI says: the
/// inbound side always talks to the app, and keeping the request's own
/// authority in the URI preserves `:authority` for HTTP/2 apps.
#[derive(Debug, Clone)]
pub(crate) struct FixedConnector {
    inner: HttpConnector,
    target: Uri,
}

type ConnectFuture = Pin<
    Box<
        dyn Future<
                Output = Result<
                    TokioIo<tokio::net::TcpStream>,
                    <HttpConnector as Service<Uri>>::Error,
                >,
            > + Send,
    >,
>;

impl Service<Uri> for FixedConnector {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = <HttpConnector as Service<Uri>>::Error;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, _dst: Uri) -> Self::Future {
        Box::pin(self.inner.call(self.target.clone()))
    }
}

fn http_connector(connect_timeout: Duration) -> HttpConnector {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    c.set_connect_timeout(Some(connect_timeout));
    c.enforce_http(false);
    c
}

/// The pooled-client settings every upstream client shares.
fn client_builder(config: &ProxyConfig) -> hyper_util::client::legacy::Builder {
    let mut b = Client::builder(TokioExecutor::new());
    b.pool_idle_timeout(Duration::from_secs(90))
        .http1_preserve_header_case(true)
        .http1_title_case_headers(false)
        .http1_max_headers(config.max_header_fields());
    b
}

/// The upstream clients, built once per proxy and shared by all connections.
#[derive(Debug, Clone)]
pub(crate) struct Clients {
    /// The app behind the inbound listener.
    pub(crate) app: FixedClients,
    pub(crate) http: Client<HttpConnector, UpBody>,
    pub(crate) https: Client<hyper_rustls::HttpsConnector<HttpConnector>, UpBody>,
}

impl Clients {
    pub(crate) fn new(config: &ProxyConfig, tls: Arc<rustls::ClientConfig>) -> Self {
        let b = client_builder(config);
        Self {
            app: FixedClients::new(config.app_addr, config, &tls),
            http: b.build(http_connector(config.connect_timeout)),
            https: b.build(tapwire_ca::https_connector(&tls, config.connect_timeout)),
        }
    }
}

/// Clients that send every request to one address, whatever authority the
/// request names: the app behind the inbound listener, or the original
/// destination of a connection redirected in transparent mode. The
/// request's own authority stays in the URI, so the upstream sees the
/// `Host` or `:authority` the client sent, and over TLS the certificate is
/// checked against that name while the connection goes to the address.
#[derive(Debug, Clone)]
pub(crate) struct FixedClients {
    addr: SocketAddr,
    h1: Client<FixedConnector, UpBody>,
    h2: Client<FixedConnector, UpBody>,
    https: Client<hyper_rustls::HttpsConnector<FixedConnector>, UpBody>,
}

impl FixedClients {
    /// Clients for `addr`; `tls` (with the ALPN list replaced by h2 and
    /// http/1.1) for requests that were TLS on the client side.
    pub(crate) fn new(addr: SocketAddr, config: &ProxyConfig, tls: &rustls::ClientConfig) -> Self {
        let fixed = FixedConnector {
            inner: http_connector(config.connect_timeout),
            target: Uri::try_from(format!("http://{addr}")).unwrap_or_default(),
        };
        let mut tls = tls.clone();
        tls.alpn_protocols.clear();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(fixed.clone());
        let b = client_builder(config);
        Self {
            addr,
            h1: b.build(fixed.clone()),
            h2: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build(fixed),
            https: b.build(https),
        }
    }
}

/// Forwards `req` to the fixed address of `clients`, recording the
/// authority the client used (`Host` or `:authority`, else the address) and
/// the address as the upstream. `scheme` is `https` for requests that
/// arrived over intercepted TLS: they are sent over TLS, as HTTP/1.1 or h2
/// as ALPN decides; plaintext requests keep the client's version (h2c
/// prior knowledge stays h2c).
///
/// With `own` (the inbound listener), plaintext HTTP/1.x requests that are
/// not upgrades go over the inbound connection's own app connection
/// instead of the pool (see [`crate::appconn`]).
pub(crate) async fn forward_fixed(
    req: Request<Incoming>,
    scheme: &'static str,
    clients: &FixedClients,
    origin: &Origin,
    shared: &Shared,
    own: Option<&AppSlot>,
) -> Response<ProxyBody> {
    let addr = clients.addr;
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| addr.to_string());
    let pq = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let target = Uri::builder()
        .scheme(scheme)
        .authority(authority.as_str())
        .path_and_query(pq)
        .build()
        .or_else(|_| {
            Uri::builder()
                .scheme(scheme)
                .authority(addr.to_string())
                .path_and_query(pq)
                .build()
        })
        .unwrap_or_default();
    let hop = Hop {
        scheme,
        authority,
        upstream: Upstream {
            host: addr.ip().to_string(),
            port: addr.port(),
        },
        target,
    };
    if scheme == "https" {
        forward(
            Via::Pool(&clients.https),
            req,
            hop,
            origin,
            shared,
            Some(Version::HTTP_11),
        )
        .await
    } else if req.version() == Version::HTTP_2 {
        forward(Via::Pool(&clients.h2), req, hop, origin, shared, None).await
    } else if let (Some(slot), false) = (own, hop::is_upgrade(req.headers())) {
        let target = AppTarget {
            addr,
            connect_timeout: shared.config.connect_timeout,
            max_headers: shared.config.max_header_fields(),
        };
        let via: Via<'_, FixedConnector> = Via::Own(slot, target);
        forward(via, req, hop, origin, shared, None).await
    } else {
        forward(Via::Pool(&clients.h1), req, hop, origin, shared, None).await
    }
}

/// How a request reaches its upstream.
pub(crate) enum Via<'a, C> {
    /// A pooled client (shared by every connection).
    Pool(&'a Client<C, UpBody>),
    /// The inbound connection's own connection to the app.
    Own(&'a AppSlot, AppTarget),
}

/// Why sending a request upstream failed.
#[derive(Debug)]
enum SendFailure {
    Pool(hyper_util::client::legacy::Error),
    Own(SendError),
}

impl SendFailure {
    fn is_connect(&self) -> bool {
        match self {
            Self::Pool(e) => e.is_connect(),
            Self::Own(e) => e.is_connect(),
        }
    }

    fn reason(&self) -> String {
        match self {
            Self::Pool(e) => chain(e),
            Self::Own(e) => e.to_string(),
        }
    }

    fn retry_safe(&self, method: &http::Method) -> Option<&'static str> {
        match self {
            Self::Pool(e) => retry_safe(e, method),
            Self::Own(e) => e.retry_safe(method),
        }
    }
}

impl<C> Via<'_, C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    async fn send(
        &self,
        req: Request<UpBody>,
    ) -> Result<(Response<Incoming>, Option<Lease>), SendFailure> {
        match self {
            Via::Pool(client) => client
                .request(req)
                .await
                .map(|r| (r, None))
                .map_err(SendFailure::Pool),
            Via::Own(slot, target) => {
                // On its own connection a request goes in origin form, with
                // the Host header the pooled client would have added.
                let (mut parts, body) = req.into_parts();
                if !parts.headers.contains_key(header::HOST) {
                    if let Some(v) = parts
                        .uri
                        .authority()
                        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
                    {
                        parts.headers.insert(header::HOST, v);
                    }
                }
                parts.uri = parts
                    .uri
                    .path_and_query()
                    .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()));
                slot.send(*target, Request::from_parts(parts, body))
                    .await
                    .map(|(r, lease)| (r, Some(lease)))
                    .map_err(SendFailure::Own)
            }
        }
    }
}

fn protocol_of<B>(req: &Request<B>) -> Protocol {
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"));
    match (req.version(), grpc) {
        (_, true) => Protocol::Grpc,
        (Version::HTTP_2, false) => Protocol::Http2,
        _ => Protocol::Http1,
    }
}

/// Forwards `req` through `client` to `hop.target`, streaming both bodies and
/// capturing the exchange. Never fails: upstream problems become 502/504
/// responses that say which host failed.
pub(crate) async fn forward<C>(
    via: Via<'_, C>,
    mut req: Request<Incoming>,
    hop: Hop,
    origin: &Origin,
    shared: &Shared,
    send_version: Option<Version>,
) -> Response<ProxyBody>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let clock = Clock::start();
    let queue = &shared.queue;
    let counters = queue.metrics().dir(origin.direction);
    let protocol = protocol_of(&req);
    counters.requests(protocol).inc();

    let upgrade = req.version() <= Version::HTTP_11 && hop::is_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

    let (mut parts, body) = req.into_parts();
    let head = RequestHead {
        method: parts.method.clone(),
        scheme: hop.scheme,
        authority: hop.authority,
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned()),
        version: parts.version,
        headers: parts.headers.clone(),
    };
    let method = parts.method.clone();
    let target = hop.target;
    let prepare = |parts: &mut http::request::Parts| {
        hop::strip(&mut parts.headers, upgrade);
        parts.uri = target.clone();
        if let Some(v) = send_version {
            parts.version = v;
        }
    };
    prepare(&mut parts);
    let target_name = hop.upstream.to_string();
    let captured = Captured::new(
        origin,
        protocol,
        hop.upstream,
        Payload::http(Heads::Typed {
            request: head,
            response: None,
        }),
    );
    let pending = Pending::new(captured, clock, queue.clone());
    let body = TeeBody::new(
        body,
        Slot::Request,
        pending.clone(),
        counters.request_bytes.clone(),
    );

    let mut attempt = via
        .send(Request::from_parts(parts, Either::Left(body)))
        .await;
    // A pooled connection that has just received GOAWAY may be handed out
    // once more before the pool drops it, so a retry can meet the same
    // refusal; a few attempts ride out one connection rotation.
    for _ in 0..MAX_RETRIES {
        let Err(e) = &attempt else { break };
        let Some(why) = e.retry_safe(&method) else {
            break;
        };
        let Some((mut parts, body)) = pending.replayable_request() else {
            break;
        };
        prepare(&mut parts);
        tracing::debug!(upstream = %target_name, reason = why, "retrying a request the upstream did not process");
        pending.tag("retried", why);
        attempt = via
            .send(Request::from_parts(parts, Either::Right(Full::new(body))))
            .await;
    }

    match attempt {
        Ok((mut resp, lease)) => {
            pending.set_response(ResponseHead {
                status: resp.status(),
                version: resp.version(),
                headers: resp.headers().clone(),
            });
            let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
            if let (true, Some(client_upgrade)) = (switching, client_upgrade) {
                let proto = resp
                    .headers()
                    .get(header::UPGRADE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("unknown")
                    .to_owned();
                pending.tag("upgrade", proto.clone());
                let upstream_upgrade = hyper::upgrade::on(&mut resp);
                tokio::spawn(splice_upgrade(
                    client_upgrade,
                    upstream_upgrade,
                    target_name,
                    proto,
                ));
                hop::strip(resp.headers_mut(), true);
            } else {
                hop::strip(resp.headers_mut(), false);
            }
            let (parts, body) = resp.into_parts();
            let body = TeeBody::new(
                body,
                Slot::Response,
                pending,
                counters.response_bytes.clone(),
            );
            let body = match lease {
                Some(lease) => Leased::new(body, lease).map_err(Into::into).boxed(),
                None => body.map_err(Into::into).boxed(),
            };
            Response::from_parts(parts, body)
        }
        Err(e) => {
            let err = upstream_error(
                e.is_connect(),
                e.reason(),
                target_name,
                shared.config.connect_timeout,
            );
            count_upstream_error(shared, origin.direction, &err);
            pending.set_error(err.to_string());
            error_response(&err)
        }
    }
}

/// The error for a request its upstream did not answer: `connect` when
/// no connection was opened, `reason` the flattened cause.
pub(crate) fn upstream_error(
    connect: bool,
    reason: String,
    target: String,
    connect_timeout: Duration,
) -> ProxyError {
    if connect && reason.contains("timed out") {
        ProxyError::UpstreamTimeout {
            target,
            secs: connect_timeout.as_secs(),
        }
    } else if connect {
        ProxyError::UpstreamUnreachable { target, reason }
    } else {
        ProxyError::UpstreamFailed { target, reason }
    }
}

/// Counts and logs a request its upstream did not answer.
pub(crate) fn count_upstream_error(
    shared: &Shared,
    direction: tapwire_model::Direction,
    err: &ProxyError,
) {
    let kind = match err {
        ProxyError::UpstreamTimeout { .. } => ErrorKind::Timeout,
        ProxyError::UpstreamUnreachable { .. } => ErrorKind::Connect,
        _ => ErrorKind::Protocol,
    };
    shared
        .metrics()
        .upstream_errors
        .get_or_create(&ErrorLabels {
            direction: Dir::from(direction),
            kind,
        })
        .inc();
    tracing::warn!(side = %err.side(), direction = %direction, error = %err, "proxying failed");
}

/// The response sent when the proxy itself could not complete a request.
pub(crate) fn error_response(err: &ProxyError) -> Response<ProxyBody> {
    let mut resp = Response::new(full(err.body()));
    *resp.status_mut() = err.status();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(ProxyError::CONTENT_TYPE),
    );
    h.insert("x-tapwire-error", HeaderValue::from_static(err.kind()));
    resp
}

async fn splice_upgrade(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    target: String,
    proto: String,
) {
    match tokio::try_join!(client, upstream) {
        Ok((c, u)) => {
            let mut c = TokioIo::new(c);
            let mut u = TokioIo::new(u);
            if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut u).await {
                tracing::debug!(upstream = %target, protocol = %proto, error = %e, "upgraded connection ended with an error");
            }
        }
        Err(e) => {
            tracing::warn!(upstream = %target, protocol = %proto, error = %e, "protocol upgrade failed");
        }
    }
}

/// Forwards to an external upstream (outbound calls), choosing the plain or
/// TLS client by the hop's scheme. Requests are handed over as HTTP/1.1 and
/// the upstream connection negotiates its own version (ALPN for https);
/// hyper translates between the two sides.
pub(crate) async fn forward_external(
    req: Request<Incoming>,
    hop: Hop,
    origin: &Origin,
    shared: &Shared,
) -> Response<ProxyBody> {
    let v = Some(Version::HTTP_11);
    if hop.scheme == "https" {
        forward(
            Via::Pool(&shared.clients.https),
            req,
            hop,
            origin,
            shared,
            v,
        )
        .await
    } else {
        forward(Via::Pool(&shared.clients.http), req, hop, origin, shared, v).await
    }
}

/// How many times a request the upstream did not process is sent again.
const MAX_RETRIES: usize = 3;

/// Whether a failed request may be sent again, and why. An HTTP/2 stream
/// refused by the upstream, or cut off by its GOAWAY, was never processed
/// (RFC 9113 §6.8, §8.7), so any method is safe; a connection closed
/// before the response is only retried for idempotent methods
/// (RFC 9110 §9.2.2).
fn retry_safe(
    e: &hyper_util::client::legacy::Error,
    method: &http::Method,
) -> Option<&'static str> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h2e) = s.downcast_ref::<h2::Error>() {
            if h2e.is_go_away() && h2e.is_remote() {
                return Some("upstream sent GOAWAY before processing the stream");
            }
            if h2e.reason() == Some(h2::Reason::REFUSED_STREAM) {
                return Some("upstream refused the stream");
            }
            return None;
        }
        if let Some(he) = s.downcast_ref::<hyper::Error>() {
            if he.is_incomplete_message() && method.is_idempotent() {
                return Some("upstream closed the connection before answering");
            }
        }
        source = s.source();
    }
    None
}

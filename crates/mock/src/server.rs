//! Listeners: the forward proxy (absolute-form and CONNECT), the reverse
//! listeners mapped per recorded host, and the admin port.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, BufReader};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::metrics::Metrics;
use crate::responder::{Answer, Recorded, Responder};
use crate::results::{MockAccuracy, Outcome, ResultRecord, ResultsError, ResultsWriter};
use crate::signature::RequestView;
use crate::{MockConfig, Timing};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Body of every response the mock sends.
pub(crate) type MockBody = BoxBody<Bytes, BoxError>;

/// Header set on every answer that is not a recorded response.
pub const MOCK_HEADER: &str = "x-tapwire-mock";
/// Header set when the recorded body was truncated at capture.
pub const TRUNCATED_HEADER: &str = "x-tapwire-truncated";

/// Admin path answering the running [`MockAccuracy`] as JSON, in the form
/// `report.json`'s `mock` section has.
pub const ACCURACY_PATH: &str = "/accuracy";

/// How long a client of a tunnel or reverse listener may take to send its first byte.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the mock could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error(transparent)]
    Bind(#[from] tapwire_admin::BindError),
    /// Passthrough TLS could not be configured.
    #[error("cannot configure TLS for passthrough: {0}")]
    Tls(#[from] tapwire_ca::CaError),
    /// The results file could not be created.
    #[error(transparent)]
    Results(#[from] ResultsError),
}

/// Where requests on one connection go when they do not say themselves.
#[derive(Debug)]
struct Target {
    host: String,
    port: u16,
    scheme: &'static str,
}

type PassClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

#[derive(Debug)]
struct Shared {
    responder: Arc<Responder>,
    leaf: Option<Arc<tapwire_ca::LeafIssuer>>,
    timing: Timing,
    passthrough: Option<PassClient>,
    results: Option<ResultsWriter>,
    metrics: Metrics,
    /// Recorded traffic keys: the only values of the `key` label.
    known_keys: std::collections::HashSet<String>,
    accuracy: Mutex<MockAccuracy>,
    max_body: usize,
    stop: watch::Receiver<bool>,
}

impl Shared {
    fn accuracy(&self) -> MockAccuracy {
        *self
            .accuracy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The counts so far as `GET /accuracy` answers them.
    fn accuracy_json(&self) -> String {
        // Serializing four integers and a float cannot fail; should it
        // ever, the reader is told rather than handed a wrong count.
        serde_json::to_string(&self.accuracy()).unwrap_or_else(|e| {
            serde_json::json!({ "error": format!("cannot encode the counts: {e}") }).to_string()
        })
    }

    fn record(
        &self,
        key: &str,
        method: &str,
        path: &str,
        outcome: Outcome,
        answer: Option<&Recorded>,
        reason: Option<&str>,
    ) {
        let acc = {
            let mut a = self
                .accuracy
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            a.add(outcome);
            *a
        };
        let known = answer.is_some() || self.known_keys.contains(key);
        self.metrics
            .observe(if known { key } else { "unrecorded" }, outcome, &acc);
        tracing::debug!(
            key,
            method,
            path,
            outcome = outcome.as_str(),
            "mock answered"
        );
        if let Some(w) = &self.results {
            w.write(&ResultRecord {
                time: Utc::now(),
                key: key.to_owned(),
                method: method.to_owned(),
                path: path.to_owned(),
                outcome,
                exchange: answer.map(|a| a.id),
                reason: reason.map(str::to_owned),
            });
        }
    }
}

/// Entry point: [`MockServer::start`].
#[derive(Debug)]
pub struct MockServer;

/// A started mock: its bound addresses and a handle to stop it.
#[derive(Debug)]
pub struct RunningMock {
    /// Forward proxy address, when enabled.
    pub forward_addr: Option<SocketAddr>,
    /// Reverse listener addresses, in `maps` order.
    pub map_addrs: Vec<SocketAddr>,
    /// Admin address, when enabled.
    pub admin_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    shared: Arc<Shared>,
}

impl MockServer {
    /// Binds every listener of `config` and serves `responder` until
    /// [`RunningMock::shutdown`]. Metrics are registered in `registry`.
    pub async fn start(
        config: MockConfig,
        responder: Arc<Responder>,
        mut registry: Registry,
    ) -> Result<RunningMock, StartError> {
        let metrics = Metrics::register(&mut registry);
        let passthrough = if config.passthrough {
            // ALPN is left empty: the connector offers h2 and http/1.1 itself.
            let tls = tapwire_ca::client_config(config.extra_ca.as_deref(), Vec::new())?;
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_connect_timeout(Some(Duration::from_secs(10)));
            let conn = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config((*tls).clone())
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(http);
            Some(Client::builder(TokioExecutor::new()).build(conn))
        } else {
            None
        };
        let forward = match config.forward_port {
            Some(p) => Some(
                tapwire_admin::bind(SocketAddr::new(config.bind, p), "forward proxy", "--port")
                    .await?,
            ),
            None => None,
        };
        let mut maps = Vec::new();
        for m in &config.maps {
            let what = format!("reverse ({}:{})", m.host, m.port);
            maps.push((
                tapwire_admin::bind(SocketAddr::new(config.bind, m.listen_port), what, "--map")
                    .await?,
                m.clone(),
            ));
        }
        let admin = match config.admin_port {
            Some(p) => Some(
                tapwire_admin::bind(SocketAddr::new(config.bind, p), "admin", "--admin-port")
                    .await?,
            ),
            None => None,
        };
        let results = match &config.results {
            Some(p) => Some(ResultsWriter::create(p)?),
            None => None,
        };
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            leaf: config
                .ca
                .clone()
                .map(|ca| Arc::new(tapwire_ca::LeafIssuer::new(ca))),
            timing: config.timing,
            passthrough,
            results,
            metrics,
            known_keys: responder.keys().into_iter().collect(),
            accuracy: Mutex::new(MockAccuracy::default()),
            max_body: config.max_body_bytes,
            stop: stop_rx.clone(),
            responder,
        });
        let mut tasks = JoinSet::new();
        let forward_addr = forward.as_ref().and_then(|l| l.local_addr().ok());
        if let Some(l) = forward {
            tasks.spawn(accept_loop(l, None, shared.clone()));
        }
        let mut map_addrs = Vec::new();
        for (l, m) in maps {
            if let Ok(a) = l.local_addr() {
                map_addrs.push(a);
            }
            let scheme = m.scheme.unwrap_or_else(|| {
                match shared.responder.recorded_scheme(&m.host, m.port) {
                    Some("https") => "https",
                    _ => "http",
                }
            });
            let target = Arc::new(Target {
                host: m.host,
                port: m.port,
                scheme,
            });
            tasks.spawn(accept_loop(l, Some(target), shared.clone()));
        }
        let admin_addr = admin.as_ref().and_then(|l| l.local_addr().ok());
        if let Some(l) = admin {
            let counts = shared.clone();
            let accuracy: tapwire_admin::Extra = Arc::new(move |path| {
                (path == ACCURACY_PATH).then(|| ("application/json", counts.accuracy_json()))
            });
            tasks.spawn(tapwire_admin::serve_with(
                l,
                Arc::new(registry),
                // Listeners are bound and the snapshot loaded before this port opens.
                tapwire_admin::always_ready(),
                Some(accuracy),
                stop_rx,
            ));
        }
        tracing::info!(
            forward = ?forward_addr,
            maps = ?map_addrs,
            admin = ?admin_addr,
            recorded = shared.responder.len(),
            passthrough = shared.passthrough.is_some(),
            "mock listening"
        );
        Ok(RunningMock {
            forward_addr,
            map_addrs,
            admin_addr,
            stop,
            tasks,
            shared,
        })
    }
}

impl RunningMock {
    /// Counts so far (what the admin port's `GET /accuracy` answers).
    pub fn accuracy(&self) -> MockAccuracy {
        self.shared.accuracy()
    }

    /// Stops accepting, lets open requests finish for up to `grace`,
    /// flushes the results file, and returns the final counts.
    pub async fn shutdown(mut self, grace: Duration) -> MockAccuracy {
        tapwire_admin::drain(&self.stop, &mut self.tasks, grace).await;
        if let Some(w) = &self.shared.results {
            if let Err(e) = w.flush() {
                tracing::error!(error = %e, "results file is incomplete");
            }
        }
        self.accuracy()
    }
}

async fn accept_loop(listener: TcpListener, target: Option<Arc<Target>>, shared: Arc<Shared>) {
    let mut stop = shared.stop.clone();
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (stream, _peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (shared, target) = (shared.clone(), target.clone());
        conns.spawn(async move {
            match target {
                // Forward proxy: requests name their target (or CONNECT).
                None => serve_http(TokioIo::new(stream), None, shared).await,
                Some(t) => serve_stream(stream, t, shared).await,
            }
        });
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// Serves a stream whose requests all go to `target`: TLS (terminated with
/// a leaf for the SNI, else the target host) when the client starts a TLS
/// handshake, plaintext HTTP otherwise.
async fn serve_stream<S>(io: S, target: Arc<Target>, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut io = BufReader::new(io);
    let first = match tokio::time::timeout(FIRST_BYTE_TIMEOUT, io.fill_buf()).await {
        Ok(Ok(b)) if !b.is_empty() => b[0],
        _ => return,
    };
    if first != 0x16 {
        return serve_http(TokioIo::new(io), Some(target), shared).await;
    }
    let Some(issuer) = shared.leaf.clone() else {
        tracing::warn!(side = "downstream", host = %target.host, "client speaks TLS but the mock has no CA; pass --ca-dir");
        return;
    };
    let start = match tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io)
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(side = "downstream", host = %target.host, error = %e, "client TLS handshake failed");
            return;
        }
    };
    let hello = start.client_hello();
    let offered: Vec<Vec<u8>> = hello
        .alpn()
        .map(|it| it.map(<[u8]>::to_vec).collect())
        .unwrap_or_default();
    let alpn: Vec<Vec<u8>> = [b"h2".as_slice(), b"http/1.1".as_slice()]
        .into_iter()
        .filter(|p| offered.iter().any(|o| o == p))
        .map(<[u8]>::to_vec)
        .collect();
    let config = match issuer.server_config_for(&target.host, alpn) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(side = "internal", host = %target.host, error = %e, "cannot mint a leaf certificate");
            return;
        }
    };
    match start.into_stream(config).await {
        Ok(tls) => {
            let target = Arc::new(Target {
                host: target.host.clone(),
                port: target.port,
                scheme: "https",
            });
            serve_http(TokioIo::new(tls), Some(target), shared).await
        }
        Err(e) => {
            tracing::warn!(side = "downstream", host = %target.host, error = %e, "client TLS handshake failed; does it trust the tapwire CA?")
        }
    }
}

async fn serve_http<I>(io: I, target: Option<Arc<Target>>, shared: Arc<Shared>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let mut stop = shared.stop.clone();
    let svc = {
        let shared = shared.clone();
        hyper::service::service_fn(move |req| {
            let (target, shared) = (target.clone(), shared.clone());
            async move { Ok::<_, Infallible>(handle(req, target, shared).await) }
        })
    };
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    b.http2().timer(TokioTimer::new());
    let conn = b.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    let res = tokio::select! {
        r = conn.as_mut() => r,
        Ok(()) = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = res {
        tracing::debug!(side = "downstream", error = %e, "client connection ended with an error");
    }
}

fn full(b: impl Into<Bytes>) -> MockBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn plain(status: StatusCode, mock: &'static str, msg: String) -> Response<MockBody> {
    let mut r = Response::new(full(msg));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(MOCK_HEADER, HeaderValue::from_static(mock));
    r
}

async fn handle(
    req: Request<Incoming>,
    target: Option<Arc<Target>>,
    shared: Arc<Shared>,
) -> Response<MockBody> {
    if req.method() == Method::CONNECT && target.is_none() {
        return connect(req, shared);
    }
    let target = match target {
        Some(t) => t,
        None => match target_of(&req) {
            Some(t) => Arc::new(t),
            None => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    "error",
                    "tapwire mock: the forward proxy port needs absolute-form targets such as http://host/path (set HTTP_PROXY), or use a --map listener\n".into(),
                )
            }
        },
    };
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, shared.max_body).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "error",
                format!("tapwire mock: cannot read the request body: {e}\n"),
            )
        }
    };
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let path = parts.uri.path().to_owned();
    let view = RequestView {
        method: parts.method.as_str(),
        host: &target.host,
        port: target.port,
        path: &path,
        query: parts.uri.query(),
        headers: &headers,
        body: &body,
        body_truncated: false,
    };
    match shared.responder.respond(&view) {
        Answer::Hit(rec) => {
            shared.record(
                &rec.key,
                parts.method.as_str(),
                &path,
                Outcome::Hit,
                Some(&rec),
                None,
            );
            let delay = shared.timing.delay(rec.duration);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            recorded_response(&rec, trailers_wanted(parts.version, &parts.headers))
        }
        Answer::Miss { key, reason } => match &shared.passthrough {
            Some(client) => {
                shared.record(
                    &key,
                    parts.method.as_str(),
                    &path,
                    Outcome::Passthrough,
                    None,
                    Some(&reason),
                );
                pass(client, parts, body, &target).await
            }
            None => {
                shared.record(
                    &key,
                    parts.method.as_str(),
                    &path,
                    Outcome::Miss,
                    None,
                    Some(&reason),
                );
                // The reason may quote recorded values: it goes to the client and
                // the results file, not to the log.
                tracing::info!(key = %key, method = %parts.method, path = %path, "mock miss");
                plain(
                    StatusCode::NOT_FOUND,
                    "miss",
                    format!(
                        "tapwire mock miss: no recorded response matches {} {}://{}:{}{}\n{reason}\n",
                        parts.method, target.scheme, target.host, target.port, path
                    ),
                )
            }
        },
    }
}

/// The target of an absolute-form request (or an origin-form one with `Host`).
fn target_of(req: &Request<Incoming>) -> Option<Target> {
    let https = req
        .uri()
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("https"));
    let auth = match req.uri().authority() {
        Some(a) => a.clone(),
        None => req
            .headers()
            .get(header::HOST)?
            .to_str()
            .ok()?
            .parse::<http::uri::Authority>()
            .ok()?,
    };
    Some(Target {
        host: auth
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase(),
        port: auth.port_u16().unwrap_or(if https { 443 } else { 80 }),
        scheme: if https { "https" } else { "http" },
    })
}

fn connect(mut req: Request<Incoming>, shared: Arc<Shared>) -> Response<MockBody> {
    let Some(auth) = req.uri().authority().cloned() else {
        return plain(
            StatusCode::BAD_REQUEST,
            "error",
            "CONNECT needs a host:port target\n".into(),
        );
    };
    let host = auth
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = auth.port_u16().unwrap_or(443);
    if !shared.responder.knows_host(&host, port) && shared.passthrough.is_none() {
        let key = shared.responder.key_for(&host, port);
        let reason = format!(
            "no traffic to {} was recorded",
            crate::signature::host_port(&host, port)
        );
        shared.record(
            &key,
            "CONNECT",
            auth.as_str(),
            Outcome::Miss,
            None,
            Some(&reason),
        );
        return plain(
            StatusCode::BAD_GATEWAY,
            "miss",
            format!("tapwire mock miss: {reason}\n"),
        );
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let target = Arc::new(Target {
        host,
        port,
        scheme: "http",
    });
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => serve_stream(TokioIo::new(up), target, shared).await,
            Err(e) => {
                tracing::debug!(side = "downstream", error = %e, "client left before the tunnel opened")
            }
        }
    });
    Response::new(full(""))
}

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// True for fields that describe one connection (RFC 9110 §7.6.1), and
/// content-length, which hyper recomputes from the body it sends.
fn is_hop(name: &HeaderName, connection_tokens: &[String]) -> bool {
    [
        header::CONNECTION,
        KEEP_ALIVE,
        PROXY_CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::CONTENT_LENGTH,
    ]
    .contains(name)
        || connection_tokens
            .iter()
            .any(|t| name.as_str().eq_ignore_ascii_case(t))
}

fn tokens<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    values
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// How a client can take trailers: always on HTTP/2 (its framing carries
/// them), on HTTP/1.1 only when it sent `TE: trailers` (RFC 9110 §10.1.4)
/// and then in a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrailersWanted {
    /// No trailers can be delivered: a plain length-delimited body.
    No,
    /// HTTP/2: trailers follow the data in a final HEADERS frame.
    Http2,
    /// HTTP/1.1 with `TE: trailers`: a chunked body announced by `Trailer`.
    Chunked,
}

/// How the client of a request with this `version` and these headers can take trailers.
pub(crate) fn trailers_wanted(version: http::Version, headers: &HeaderMap) -> TrailersWanted {
    if version == http::Version::HTTP_2 {
        return TrailersWanted::Http2;
    }
    let te = tokens(
        headers
            .get_all(header::TE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    // `trailers` takes no parameters; a `;q=…` on it is tolerated anyway.
    if version == http::Version::HTTP_11
        && te
            .iter()
            .any(|t| t.split(';').next().is_some_and(|n| n.trim() == "trailers"))
    {
        TrailersWanted::Chunked
    } else {
        TrailersWanted::No
    }
}

/// Fields that may not be sent as trailers (RFC 9110 §6.5.1: framing,
/// routing, authentication, content handling) on top of the hop-by-hop ones.
fn forbidden_in_trailers(name: &HeaderName) -> bool {
    [
        header::AUTHORIZATION,
        header::CACHE_CONTROL,
        header::CONTENT_ENCODING,
        header::CONTENT_RANGE,
        header::CONTENT_TYPE,
        header::HOST,
        header::MAX_FORWARDS,
        header::SET_COOKIE,
    ]
    .contains(name)
        || is_hop(name, &[])
}

/// The recorded trailers that can be sent (grouped by name, first-seen order).
fn recorded_trailers(trailers: &tapwire_model::Headers) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (n, v) in &trailers.0 {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(n.as_bytes()),
            HeaderValue::from_str(v),
        ) else {
            continue;
        };
        if !forbidden_in_trailers(&name) {
            out.append(name, value);
        }
    }
    out
}

/// A recorded body followed by recorded trailers. Its length is left
/// unknown on purpose: on HTTP/1.1 that makes hyper use chunked coding,
/// the only one that can carry trailers.
#[derive(Debug)]
struct BodyWithTrailers {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl http_body::Body for BodyWithTrailers {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let frame = match self.data.take() {
            Some(d) => Some(http_body::Frame::data(d)),
            None => self.trailers.take().map(http_body::Frame::trailers),
        };
        std::task::Poll::Ready(frame.map(Ok))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }
}

/// The recorded response, minus hop-by-hop fields and content-length, with
/// its recorded trailers when the client can take them (`wanted`).
pub(crate) fn recorded_response(rec: &Recorded, wanted: TrailersWanted) -> Response<MockBody> {
    let resp = &rec.response;
    let conn = tokens(resp.headers.get_all("connection"));
    let trailers = match wanted {
        TrailersWanted::No => HeaderMap::new(),
        _ => recorded_trailers(&resp.trailers),
    };
    let body = if trailers.is_empty() {
        full(resp.body.data.clone())
    } else {
        BodyWithTrailers {
            data: Some(resp.body.data.clone()).filter(|d| !d.is_empty()),
            trailers: Some(trailers.clone()),
        }
        .boxed()
    };
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let h = r.headers_mut();
    for (n, v) in &resp.headers.0 {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(n.as_bytes()),
            HeaderValue::from_str(v),
        ) else {
            continue;
        };
        if !is_hop(&name, &conn) {
            h.append(name, value);
        }
    }
    if resp.body.truncated {
        h.insert(TRUNCATED_HEADER, HeaderValue::from_static("true"));
    }
    if wanted == TrailersWanted::Chunked && !trailers.is_empty() {
        // hyper sends only the trailer fields that `Trailer` announces.
        let names: Vec<&str> = trailers.keys().map(HeaderName::as_str).collect();
        if let Ok(v) = HeaderValue::from_str(&names.join(", ")) {
            h.insert(header::TRAILER, v);
        }
    }
    r
}

fn strip_hop(h: &mut HeaderMap) {
    let conn = tokens(
        h.get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let names: Vec<HeaderName> = h.keys().filter(|n| is_hop(n, &conn)).cloned().collect();
    for n in names {
        h.remove(n);
    }
}

/// Forwards a miss to the real host.
async fn pass(
    client: &PassClient,
    parts: http::request::Parts,
    body: Bytes,
    target: &Target,
) -> Response<MockBody> {
    let host = if target.host.contains(':') {
        format!("[{}]", target.host)
    } else {
        target.host.clone()
    };
    let pq = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let uri = match Uri::builder()
        .scheme(target.scheme)
        .authority(format!("{host}:{}", target.port))
        .path_and_query(pq)
        .build()
    {
        Ok(u) => u,
        Err(e) => {
            return plain(
                StatusCode::BAD_REQUEST,
                "error",
                format!("tapwire mock: bad target: {e}\n"),
            )
        }
    };
    let mut out = Request::new(Full::new(body));
    *out.method_mut() = parts.method;
    *out.uri_mut() = uri;
    *out.headers_mut() = parts.headers;
    strip_hop(out.headers_mut());
    out.headers_mut().remove(header::HOST);
    match client.request(out).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop(&mut parts.headers);
            Response::from_parts(parts, body.map_err(BoxError::from).boxed())
        }
        Err(e) => {
            tracing::warn!(side = "upstream", host = %target.host, port = target.port, error = %e, "passthrough failed");
            plain(
                StatusCode::BAD_GATEWAY,
                "passthrough-error",
                format!(
                    "tapwire mock: passthrough to {}:{} failed (upstream side): {e}\n",
                    target.host, target.port
                ),
            )
        }
    }
}

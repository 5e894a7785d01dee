//! The ingest listener: authenticates, bounds and answers batch requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use prometheus_client::registry::Registry;
use subtle::ConstantTimeEq as _;
use tapwire_model::ingest;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::metrics::Metrics;
use crate::pipeline::Pipeline;

/// How the forwarder listens and what it accepts.
#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    /// The ingest listener.
    pub listen: SocketAddr,
    /// Metrics and health, when set.
    pub admin: Option<SocketAddr>,
    /// API keys accepted as bearer tokens (several, so keys can rotate).
    pub api_keys: Vec<String>,
    /// TLS for the ingest listener; plain HTTP (h1 and h2c) without it.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// The forwarder could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not bind.
    #[error(transparent)]
    Bind(#[from] tapwire_admin::BindError),
    /// No API key was configured.
    #[error("no API key configured: set --api-key, --api-key-file or TAPWIRE_API_KEY; proxies send it with --forwarder-api-key")]
    NoApiKey,
}

/// A started forwarder.
#[derive(Debug)]
pub struct RunningForwarder {
    /// The bound ingest address.
    pub addr: SocketAddr,
    /// The bound admin address.
    pub admin_addr: Option<SocketAddr>,
    /// Its metrics.
    pub metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl RunningForwarder {
    /// Stops accepting, lets requests in flight finish (up to `grace`).
    pub async fn shutdown(mut self, grace: Duration) {
        tapwire_admin::drain(&self.stop, &mut self.tasks, grace).await;
    }
}

struct Shared {
    pipeline: Arc<Pipeline>,
    keys: Vec<String>,
    metrics: Arc<Metrics>,
}

/// Starts the listeners. `pipeline` is built by the caller with `metrics`
/// from [`Metrics::register`] on `registry`.
pub async fn start(
    config: ForwarderConfig,
    pipeline: Pipeline,
    registry: Registry,
) -> Result<RunningForwarder, StartError> {
    if config.api_keys.iter().all(|k| k.is_empty()) {
        return Err(StartError::NoApiKey);
    }
    let listener = tapwire_admin::bind(config.listen, "ingest", "--listen").await?;
    let admin = match config.admin {
        Some(a) => Some(tapwire_admin::bind(a, "admin", "--admin-listen").await?),
        None => None,
    };
    let addr = listener.local_addr().unwrap_or(config.listen);
    let admin_addr = admin.as_ref().and_then(|l| l.local_addr().ok());
    let metrics = pipeline.metrics.clone();
    let shared = Arc::new(Shared {
        pipeline: Arc::new(pipeline),
        keys: config
            .api_keys
            .into_iter()
            .filter(|k| !k.is_empty())
            .collect(),
        metrics: metrics.clone(),
    });
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    if let Some(l) = admin {
        tasks.spawn(tapwire_admin::serve(
            l,
            Arc::new(registry),
            tapwire_admin::always_ready(),
            stop_rx.clone(),
        ));
    }
    tasks.spawn(accept_loop(listener, config.tls, shared, stop_rx));
    tracing::info!(%addr, admin = ?admin_addr, "forwarder listening");
    Ok(RunningForwarder {
        addr,
        admin_addr,
        metrics,
        stop,
        tasks,
    })
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = tls.map(|mut c| {
        let cfg = Arc::make_mut(&mut c);
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(c)
    });
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "ingest accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (shared, acceptor, stop) = (shared.clone(), acceptor.clone(), stop.clone());
        conns.spawn(async move {
            match acceptor {
                Some(a) => match a.accept(stream).await {
                    Ok(tls) => serve(TokioIo::new(tls), peer, shared, stop).await,
                    Err(e) => tracing::warn!(%peer, error = %e, "ingest TLS handshake failed"),
                },
                None => serve(TokioIo::new(stream), peer, shared, stop).await,
            }
        });
        while conns.try_join_next().is_some() {}
    }
    while conns.join_next().await.is_some() {}
}

/// Serves one connection; on shutdown, finishes requests in flight and
/// closes it.
async fn serve<I>(io: I, peer: SocketAddr, shared: Arc<Shared>, mut stop: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(&shared, req).await) }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        Ok(()) = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "ingest connection ended with an error");
    }
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(bytes)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn refuse(
    shared: &Shared,
    outcome: &'static str,
    status: StatusCode,
    error: String,
) -> Response<Full<Bytes>> {
    shared.metrics.batch(outcome);
    tracing::warn!(outcome, %status, %error, "batch refused");
    let mut resp = json(status, &ingest::Refused { error });
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"tapwire\""),
        );
    }
    resp
}

/// Checks the bearer token in constant time against every accepted key.
fn authorized(
    headers: &HeaderMap,
    keys: &[String],
) -> Result<(), (StatusCode, &'static str, String)> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err((
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing API key: send `Authorization: Bearer KEY` (tapwire proxy --forwarder-api-key KEY)".to_owned(),
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or_default();
    let ok = keys.iter().fold(false, |ok, k| {
        ok | bool::from(k.as_bytes().ct_eq(token.as_bytes()))
    });
    if ok {
        Ok(())
    } else {
        Err((
            StatusCode::FORBIDDEN,
            "forbidden",
            "API key not accepted: check that the proxy's --forwarder-api-key matches one of the forwarder's keys".to_owned(),
        ))
    }
}

async fn handle(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() != ingest::PATH {
        return refuse(
            shared,
            "not_found",
            StatusCode::NOT_FOUND,
            format!(
                "no such endpoint {}; batches go to POST {}",
                req.uri().path(),
                ingest::PATH
            ),
        );
    }
    if req.method() != Method::POST {
        return refuse(
            shared,
            "bad_request",
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} {} is not allowed; use POST", req.method(), ingest::PATH),
        );
    }
    if let Err((status, outcome, why)) = authorized(req.headers(), &shared.keys) {
        return refuse(shared, outcome, status, why);
    }
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype != ingest::CONTENT_TYPE {
        return refuse(
            shared,
            "unsupported",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content-type {ctype:?} is not supported; send {} (ingest protocol v1)",
                ingest::CONTENT_TYPE
            ),
        );
    }
    let batch = match req
        .headers()
        .get(ingest::BATCH_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| uuid::Uuid::parse_str(v).ok())
    {
        Some(id) => id.to_string(),
        None => {
            return refuse(
                shared,
                "bad_request",
                StatusCode::BAD_REQUEST,
                format!(
                    "missing or malformed {} header: a UUID naming the batch is required",
                    ingest::BATCH_ID
                ),
            )
        }
    };
    let body = match Limited::new(req.into_body(), ingest::MAX_BATCH_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return refuse(
                shared,
                "too_large",
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "batch {batch} exceeds {} bytes; send smaller batches",
                    ingest::MAX_BATCH_BYTES
                ),
            )
        }
        Err(e) => {
            return refuse(
                shared,
                "bad_request",
                StatusCode::BAD_REQUEST,
                format!("batch {batch}: body could not be read: {e}"),
            )
        }
    };
    let size = body.len() as u64;
    let pipeline = shared.pipeline.clone();
    let id = batch.clone();
    let prepared = tokio::task::spawn_blocking(move || pipeline.prepare(&id, &body)).await;
    let prepared = match prepared {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            return refuse(
                shared,
                "bad_request",
                StatusCode::BAD_REQUEST,
                format!("batch {batch} is not a valid segment: {e}"),
            )
        }
        Err(e) => {
            return refuse(
                shared,
                "internal",
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("batch {batch}: processing failed: {e}"),
            )
        }
    };
    let (received, filtered, redactions) =
        (prepared.received, prepared.filtered, prepared.redactions);
    let stored: u64 = prepared.objects.values().map(|b| b.len() as u64).sum();
    match shared.pipeline.store(&batch, prepared.objects).await {
        Ok(objects) => {
            shared.metrics.batch("accepted");
            shared.metrics.received(received, size);
            tracing::debug!(%batch, received, stored, filtered, redactions, "batch stored");
            json(
                StatusCode::OK,
                &ingest::Accepted {
                    batch,
                    received,
                    stored,
                    filtered,
                    redactions,
                    objects,
                },
            )
        }
        Err(e) => refuse(
            shared,
            "store_error",
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{e}; the batch will be retried"),
        ),
    }
}

//! The admin listener every tapwire server shares: Prometheus `/metrics`,
//! `/healthz` (and `/livez`) for liveness, `/readyz` for readiness, plus
//! any read-only routes a server adds with [`serve_with`].

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How every server stops: signals `stop`, lets its tasks finish for up to
/// `grace`, then aborts the ones still running.
pub async fn drain(
    stop: &watch::Sender<bool>,
    tasks: &mut tokio::task::JoinSet<()>,
    grace: std::time::Duration,
) {
    let _ = stop.send(true);
    let _ = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    tasks.abort_all();
}

/// A listener could not be bound; says which one and the flag that moves it.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for the {what} listener: {source}; is another process using the port? choose another with {flag}")]
pub struct BindError {
    /// Which listener (`inbound`, `admin`, `webhook`, …).
    pub what: String,
    /// The address.
    pub addr: std::net::SocketAddr,
    /// The flag that sets it.
    pub flag: String,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

/// Binds a TCP listener, or says which one failed and how to move it.
pub async fn bind(
    addr: std::net::SocketAddr,
    what: impl Into<String>,
    flag: impl Into<String>,
) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).await.map_err(|source| BindError {
        what: what.into(),
        addr,
        flag: flag.into(),
        source,
    })
}

/// Answers `/readyz`: `Ok` when ready, or why not.
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// A readiness check that always passes.
pub fn always_ready() -> Readiness {
    Arc::new(|| Ok(()))
}

/// Extra routes of one server's admin listener: given a request path, the
/// content type and body to answer `200 OK` with, or `None` when the path is
/// not one of them. Consulted after the standard paths, which it cannot
/// replace.
pub type Extra = Arc<dyn Fn(&str) -> Option<(&'static str, String)> + Send + Sync>;

/// The standard paths, for the `404` answer.
const STANDARD: &str = "/metrics, /healthz or /readyz";

fn respond(
    registry: &Registry,
    ready: &Readiness,
    extra: Option<&Extra>,
    path: &str,
) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match path {
        "/metrics" => {
            let mut out = String::new();
            match prometheus_client::encoding::text::encode(&mut out, registry) {
                Ok(()) => (
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    out,
                ),
                Err(e) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    format!("encoding metrics failed: {e}\n"),
                ),
            }
        }
        "/healthz" | "/livez" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        "/readyz" => match ready() {
            Ok(()) => (StatusCode::OK, "text/plain", "ready\n".to_owned()),
            Err(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("{why}\n"),
            ),
        },
        other => match extra.and_then(|x| x(other)) {
            Some((ctype, body)) => (StatusCode::OK, ctype, body),
            None => (
                StatusCode::NOT_FOUND,
                "text/plain",
                format!("not found: try {STANDARD}\n"),
            ),
        },
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    // A content type an extra route gave that is not a valid header value
    // is a bug in that server; answer without one rather than fail.
    if let Ok(v) = HeaderValue::from_str(ctype) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// Serves the admin endpoints on `listener` until `stop` changes.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    ready: Readiness,
    stop: watch::Receiver<bool>,
) {
    serve_with(listener, registry, ready, None, stop).await;
}

/// [`serve`], plus the server's own routes in `extra` (e.g. the mock's
/// `/accuracy`).
pub async fn serve_with(
    listener: TcpListener,
    registry: Arc<Registry>,
    ready: Readiness,
    extra: Option<Extra>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                continue;
            }
        };
        let (registry, ready, extra) = (registry.clone(), ready.clone(), extra.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let r = respond(&registry, &ready, extra.as_ref(), req.uri().path());
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    async fn get(extra: Option<&Extra>, path: &str) -> (StatusCode, String, String) {
        let resp = respond(&Registry::default(), &always_ready(), extra, path);
        let status = resp.status();
        let ctype = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = resp.into_body().collect().await.map(|b| b.to_bytes());
        let body = String::from_utf8_lossy(&body.unwrap_or_default()).into_owned();
        (status, ctype, body)
    }

    #[tokio::test]
    async fn extra_routes_answer_after_the_standard_ones() {
        let extra: Extra = Arc::new(|path| match path {
            "/accuracy" => Some(("application/json", "{\"hit\":1}".to_owned())),
            // Cannot shadow a standard path: those are matched first.
            "/healthz" => Some(("text/plain", "shadowed".to_owned())),
            _ => None,
        });
        let (status, ctype, body) = get(Some(&extra), "/accuracy").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (ctype.as_str(), body.as_str()),
            ("application/json", "{\"hit\":1}")
        );
        assert_eq!(get(Some(&extra), "/healthz").await.2, "ok\n");
        let (status, _, body) = get(Some(&extra), "/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("/metrics, /healthz or /readyz"), "{body}");
        // Without extras the server answers as before.
        assert_eq!(get(None, "/accuracy").await.0, StatusCode::NOT_FOUND);
    }
}

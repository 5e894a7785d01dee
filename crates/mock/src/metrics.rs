//! Mock metrics and the admin listener (`/metrics`, `/healthz`, `/readyz`).

use std::convert::Infallible;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::results::{MockAccuracy, Outcome};

/// Labels of `tapwire_mock_requests_total`. `key` is a recorded traffic key
/// or `unrecorded`, so the set is bounded by the snapshot.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) key: String,
    pub(crate) outcome: String,
}

/// The mock's metrics.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    requests: Family<RequestLabels, Counter>,
    accuracy: Gauge<f64, AtomicU64>,
}

impl Metrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            accuracy: Gauge::default(),
        };
        m.accuracy.set(1.0);
        registry.register(
            "tapwire_mock_requests",
            "Requests answered by the mock, by traffic key and outcome (hit, miss, passthrough)",
            m.requests.clone(),
        );
        registry.register(
            "tapwire_mock_accuracy_ratio",
            "Hits divided by all requests (hits, misses and passthroughs) since start",
            m.accuracy.clone(),
        );
        m
    }

    pub(crate) fn observe(&self, key: &str, outcome: Outcome, acc: &MockAccuracy) {
        self.requests
            .get_or_create(&RequestLabels {
                key: key.to_owned(),
                outcome: outcome.as_str().to_owned(),
            })
            .inc();
        self.accuracy.set(acc.ratio());
    }
}

fn respond(registry: &Registry, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match req.uri().path() {
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
        // Listeners are bound and the snapshot loaded before this port opens.
        "/readyz" => (StatusCode::OK, "text/plain", "ready\n".to_owned()),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics, /healthz or /readyz\n".to_owned(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    resp
}

pub(crate) async fn serve_admin(
    listener: TcpListener,
    registry: Arc<Registry>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let r = respond(&registry, &req);
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

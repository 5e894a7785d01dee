//! The operator process: the HTTPS webhook listener, the admin listener, and
//! the start-up work of publishing the webhook's CA.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::core::admission::AdmissionResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::admission::{self, Outcome, PodContext};
use crate::certs::ServingCert;
use crate::cluster::{Cluster, SidecarSecret, WebhookConfigName};
use crate::inject::InjectorConfig;
use crate::replay::webhook::{SnapshotCatalog, WebhookContext};

/// The API server sends at most 3 MiB objects; leave room for the review around it.
const MAX_BODY: usize = 8 << 20;
/// How long the secret sync may hold up an admission answer.
const SECRET_SYNC_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything the operator needs to run.
#[derive(Debug)]
pub struct OperatorConfig {
    /// The HTTPS webhook listener.
    pub listen: SocketAddr,
    /// Metrics and health, when set.
    pub admin: Option<SocketAddr>,
    /// The operator's own namespace (never injected).
    pub namespace: String,
    /// What to inject.
    pub injector: InjectorConfig,
    /// What the per-namespace sidecar Secret holds.
    pub secret: SidecarSecret,
    /// The serving certificate.
    pub cert: ServingCert,
    /// The MutatingWebhookConfiguration whose `caBundle` to keep current
    /// (`None` when cert-manager injects it).
    pub webhook_configs: Vec<WebhookConfigName>,
    /// Where the TrafficReplay validation looks snapshots up (`None`: the
    /// snapshot checks are skipped with a warning in the response).
    pub snapshots: Option<Arc<dyn SnapshotCatalog + Send + Sync>>,
}

/// The operator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not bind.
    #[error(transparent)]
    Bind(#[from] tapwire_admin::BindError),
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// The operator's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    admissions: Family<OutcomeLabel, Counter>,
    ca_bundle_published: Gauge,
    secret_sync_failures: Counter,
}

impl Metrics {
    fn register(registry: &mut Registry) -> Arc<Self> {
        let m = Arc::new(Self::default());
        registry.register(
            "tapwire_operator_admissions",
            "Pod admissions by outcome (injected, unchanged, removed, skipped, invalid, refused, error)",
            m.admissions.clone(),
        );
        registry.register(
            "tapwire_operator_ca_bundle_published",
            "1 once the webhook configuration carries the serving CA",
            m.ca_bundle_published.clone(),
        );
        registry.register(
            "tapwire_operator_secret_sync_failures",
            "Failed writes of a namespace's tapwire-sidecar Secret",
            m.secret_sync_failures.clone(),
        );
        m
    }

    /// Admissions with this outcome so far.
    pub fn admissions(&self, outcome: Outcome) -> u64 {
        self.admissions
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .get()
    }
}

struct Shared {
    cfg: OperatorConfig,
    cluster: Option<Cluster>,
    metrics: Arc<Metrics>,
}

/// A running operator.
#[derive(Debug)]
pub struct RunningOperator {
    /// The bound webhook address.
    pub addr: SocketAddr,
    /// The bound admin address.
    pub admin_addr: Option<SocketAddr>,
    /// Its metrics.
    pub metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl RunningOperator {
    /// Stops accepting and lets answers in flight finish (up to `grace`).
    pub async fn shutdown(mut self, grace: Duration) {
        tapwire_admin::drain(&self.stop, &mut self.tasks, grace).await;
    }
}

/// Binds the listeners and starts serving; publishes the CA in the background.
pub async fn start(
    cfg: OperatorConfig,
    cluster: Option<Cluster>,
) -> Result<RunningOperator, StartError> {
    start_with(cfg, cluster, Registry::default()).await
}

/// As [`start`], serving `registry`'s metrics (the replay controller's,
/// say) besides the operator's own on the admin port.
pub async fn start_with(
    cfg: OperatorConfig,
    cluster: Option<Cluster>,
    mut registry: Registry,
) -> Result<RunningOperator, StartError> {
    let listener = tapwire_admin::bind(cfg.listen, "webhook", "--listen").await?;
    let addr = listener.local_addr().unwrap_or(cfg.listen);
    let metrics = Metrics::register(&mut registry);
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let published = Arc::new(AtomicBool::new(cfg.webhook_configs.is_empty()));
    if let (false, Some(cluster)) = (cfg.webhook_configs.is_empty(), cluster.clone()) {
        tasks.spawn(publish_ca(
            cluster,
            cfg.webhook_configs.clone(),
            cfg.cert.ca_pem.clone(),
            published.clone(),
            metrics.clone(),
            stop_rx.clone(),
        ));
    } else {
        metrics.ca_bundle_published.set(1);
    }
    let mut admin_addr = None;
    if let Some(a) = cfg.admin {
        let l = tapwire_admin::bind(a, "admin", "--admin-port").await?;
        admin_addr = l.local_addr().ok();
        let ready_flag = published.clone();
        let ready: tapwire_admin::Readiness = Arc::new(move || {
            if ready_flag.load(Ordering::Relaxed) {
                Ok(())
            } else {
                Err("the webhook configuration does not carry the serving CA yet".into())
            }
        });
        tasks.spawn(tapwire_admin::serve(
            l,
            Arc::new(registry),
            ready,
            stop_rx.clone(),
        ));
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg.cert.tls.clone());
    let shared = Arc::new(Shared {
        cfg,
        cluster,
        metrics: metrics.clone(),
    });
    tasks.spawn(accept_loop(listener, acceptor, shared, stop_rx));
    Ok(RunningOperator {
        addr,
        admin_addr,
        metrics,
        stop,
        tasks,
    })
}

/// Keeps trying to put the CA into the webhook configuration: it may not
/// exist yet when the operator starts (Helm creates both in one release).
async fn publish_ca(
    cluster: Cluster,
    mut pending: Vec<WebhookConfigName>,
    ca_pem: String,
    published: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let mut wait = Duration::from_millis(500);
    loop {
        let mut left = Vec::new();
        for config in pending {
            match cluster.patch_ca_bundle(&config, &ca_pem).await {
                Ok(n) => tracing::info!(%config, webhooks = n, "published the webhook CA"),
                Err(e) => {
                    tracing::warn!(%config, error = %e, retry_in = ?wait, "cannot publish the webhook CA yet");
                    left.push(config);
                }
            }
        }
        if left.is_empty() {
            published.store(true, Ordering::Relaxed);
            metrics.ca_bundle_published.set(1);
            return;
        }
        pending = left;
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "webhook accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (acceptor, shared) = (acceptor.clone(), shared.clone());
        conns.spawn(async move {
            let tls = match acceptor.accept(stream).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "webhook TLS handshake failed");
                    return;
                }
            };
            let svc = service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(req, &shared).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), svc)
                .await;
        });
        while conns.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.into())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn handle(req: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::POST, "/mutate") => {}
        (&Method::POST, path @ ("/validate-trafficreplay" | "/default-trafficreplay")) => {
            let validating = path == "/validate-trafficreplay";
            return replay_review(req, shared, validating).await;
        }
        (_, "/healthz") => return text(StatusCode::OK, "ok\n"),
        (_, "/mutate") => {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "POST an AdmissionReview to /mutate\n",
            )
        }
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                "not found: the webhook is POST /mutate\n",
            )
        }
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            shared
                .metrics
                .admissions
                .get_or_create(&OutcomeLabel {
                    outcome: Outcome::Error.as_str(),
                })
                .inc();
            return text(
                StatusCode::BAD_REQUEST,
                format!("cannot read the AdmissionReview (limit {MAX_BODY} bytes): {e}\n"),
            );
        }
    };
    let response = review(&body, shared).await;
    let mut r = Response::new(Full::new(Bytes::from(admission::encode_review(response))));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

/// The TrafficReplay webhooks: defaulting and validation.
async fn replay_review(
    req: Request<Incoming>,
    shared: &Shared,
    validating: bool,
) -> Response<Full<Bytes>> {
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("cannot read the AdmissionReview (limit {MAX_BODY} bytes): {e}\n"),
            )
        }
    };
    let ctx = WebhookContext {
        catalog: shared.cfg.snapshots.clone(),
        client: shared.cluster.as_ref().map(Cluster::client),
    };
    let response = if validating {
        ctx.validate_review(&body).await
    } else {
        ctx.default_review(&body)
    };
    let mut r = Response::new(Full::new(Bytes::from(admission::encode_review(response))));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

async fn review(body: &[u8], shared: &Shared) -> AdmissionResponse {
    let count = |o: Outcome| {
        shared
            .metrics
            .admissions
            .get_or_create(&OutcomeLabel {
                outcome: o.as_str(),
            })
            .inc();
    };
    let req = match admission::parse_review(body) {
        Ok(r) => r,
        Err(resp) => {
            count(Outcome::Error);
            tracing::warn!(bytes = body.len(), "unusable AdmissionReview");
            return *resp;
        }
    };
    let namespace = req.namespace.clone().unwrap_or_default();
    let ctx = match (&shared.cluster, &req.object) {
        (Some(c), Some(pod)) => c.pod_context(&namespace, pod).await,
        _ => PodContext::default(),
    };
    let mut decision = admission::mutate(&req, &ctx, &shared.cfg.injector, &shared.cfg.namespace);
    if decision.outcome == Outcome::Injected && !req.dry_run {
        if let Some(cluster) = &shared.cluster {
            let synced = tokio::time::timeout(
                SECRET_SYNC_TIMEOUT,
                cluster.ensure_sidecar_secret(&namespace, &shared.cfg.secret),
            )
            .await;
            let failure = match synced {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("no answer within {SECRET_SYNC_TIMEOUT:?}")),
            };
            if let Some(why) = failure {
                shared.metrics.secret_sync_failures.inc();
                tracing::warn!(namespace, error = %why, "cannot write the tapwire-sidecar Secret");
                let w = format!(
                    "tapwire could not write Secret {namespace}/tapwire-sidecar ({why}); the sidecar starts once it exists"
                );
                decision.warnings.push(w.clone());
                decision
                    .response
                    .warnings
                    .get_or_insert_with(Vec::new)
                    .push(w);
            }
        }
    }
    count(decision.outcome);
    tracing::info!(
        namespace,
        pod = %decision.pod_name,
        outcome = decision.outcome.as_str(),
        warnings = decision.warnings.len(),
        dry_run = req.dry_run,
        "pod admission"
    );
    if !decision.warnings.is_empty() && !req.dry_run {
        if let Some(cluster) = shared.cluster.clone() {
            let object = ctx.workload.clone().unwrap_or_else(|| ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(decision.pod_name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            });
            let reason = match decision.outcome {
                Outcome::Invalid => "InvalidSidecarAnnotation",
                Outcome::Refused => "SidecarNotInjected",
                _ => "SidecarInjectionWarning",
            };
            let message = decision.warnings.join("; ");
            // Off the answer's path: an Event is worth less than a prompt admission.
            tokio::spawn(async move { cluster.warn(&object, reason, &message).await });
        }
    }
    decision.response
}

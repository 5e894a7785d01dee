//! The `TrafficReplay` controller: a state machine driven by `status.phase`,
//! one step per reconcile, wrapped in a finalizer so that a replay deleted
//! half-way still gives the workload back its own pod template.
//!
//! Steps (see `docs/cluster-replay.md`): `Pending` saves the workload's pod
//! template in the annotation [`SAVED_SPEC`]; `StartingMocks` runs the
//! responder and routes the workload's outbound calls to it; `WaitingForWorkload`
//! waits for the rollout; `Running` runs the generator Job; `CleaningUp`
//! restores and deletes per `spec.cleanup`; then `Complete` or `Failed`.
//! Every wait is bounded by `spec.timeout`, measured from `status.startedAt`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    Container, EnvFromSource, EnvVar, Event, EventSource, ObjectReference, Pod, PodTemplateSpec,
    ResourceRequirements, Secret, SecretEnvSource, Service, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, OwnerReference, Time};
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, Controller};
use kube::{Client, Resource, ResourceExt};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde_json::json;

use tapwire_replay::{ClusterEvent, ClusterFacts, ContainerLog, Report, REPORT_JSON};
use tapwire_store::Location;

use super::crd::{Cleanup, Phase, ReplayMode, SummaryStatus, TrafficReplay, TrafficReplayStatus};
use super::workload::{self, Workload, WorkloadKind};
use crate::cluster::MANAGER;
use crate::inject::{
    autopilot_resources, default_sidecar_resources, port, proxy_env, trust_env, CA_DIR, TRUST_DIR,
};

/// The finalizer that makes deletion restore the workload first.
pub const FINALIZER: &str = "tapwire.dev/replay-cleanup";
/// Annotation on the `TrafficReplay` holding the workload's pod template
/// (JSON) as it was before the replay changed anything.
pub const SAVED_SPEC: &str = "tapwire.dev/saved-spec";
/// Label on everything the controller creates: the replay's name.
pub const REPLAY_LABEL: &str = "tapwire.dev/replay";
/// The responder's forward-proxy port (`tapwire mock --port`).
pub const RESPONDER_PORT: u16 = 4140;
/// The responder's admin port (`/readyz`).
pub const RESPONDER_ADMIN_PORT: u16 = 4146;

const TRUST_VOLUME: &str = "tapwire-replay-ca";
const REPORT_DIR: &str = "/tapwire-report";
/// How long reading the generator's report from the store may take; the
/// reconcile must not hang on a slow or unreachable store.
const REPORT_TIMEOUT: Duration = Duration::from_secs(10);
const API_VERSION: &str = "tapwire.dev/v1alpha1";
/// The most Events a report keeps (the latest).
const MAX_EVENTS: usize = 200;
/// Pods of the workload whose logs go into the report.
pub const LOG_PODS: usize = 5;
/// Lines kept from the end of each container's log.
const LOG_LINES: i64 = 200;
/// Bytes read at most from each container's log.
const LOG_BYTES: i64 = 256 * 1024;

/// What the controller needs besides the API server.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// The tapwire image for the responder and the generator (pin a digest).
    pub image: String,
    /// The store URL both read snapshots from (`gs://…`, `s3://…`, `az://…`);
    /// the generator uploads its report below it ([`report_location`]).
    pub store: String,
    /// GKE Autopilot: requests equal limits, ephemeral-storage declared.
    pub autopilot: bool,
    /// The operator's own namespace, recorded as a label on created objects.
    pub namespace: String,
    /// The timeout when `spec.timeout` is unset.
    pub default_timeout: Duration,
    /// How often a waiting step looks again.
    pub poll: Duration,
    /// Resources of the responder and generator containers.
    pub resources: ResourceRequirements,
    /// Reconcile only the replays in this namespace (all namespaces when unset).
    pub watch_namespace: Option<String>,
    /// A Secret in the operator's namespace holding the store's credentials
    /// (`storage.secretName`): copied next to each replay as
    /// [`store_secret_name`] and given to the responder and generator as
    /// environment. Pods cannot read Secrets of another namespace.
    pub store_secret: Option<String>,
    /// More environment for the store client (`AWS_REGION`, …), copied
    /// into the same Secret.
    pub store_env: Vec<(String, String)>,
}

impl ControllerConfig {
    /// Defaults: 15 minute timeout, 5 second poll, the sidecar's resources.
    pub fn new(image: impl Into<String>, store: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            store: store.into(),
            autopilot: false,
            namespace: "tapwire".into(),
            default_timeout: Duration::from_secs(15 * 60),
            poll: Duration::from_secs(5),
            resources: default_sidecar_resources(),
            watch_namespace: None,
            store_secret: None,
            store_env: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabel {
    verdict: String,
}

/// The controller's metrics, registered next to the operator's.
#[derive(Debug, Default)]
pub struct ControllerMetrics {
    reconcile_failures: Counter,
    replays: Family<VerdictLabel, Counter>,
}

impl ControllerMetrics {
    /// Registers `tapwire_operator_replay_reconcile_failures_total` and
    /// `tapwire_operator_replays_total{verdict}` in `registry`.
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let m = Arc::new(Self::default());
        registry.register(
            "tapwire_operator_replay_reconcile_failures",
            "TrafficReplay reconciles that failed and were retried (API server or store errors)",
            m.reconcile_failures.clone(),
        );
        registry.register(
            "tapwire_operator_replays",
            "Finished TrafficReplays by the Ready condition's reason (Passed, MissedGoals, Error)",
            m.replays.clone(),
        );
        m
    }

    /// Reconciles that failed so far.
    pub fn reconcile_failures(&self) -> u64 {
        self.reconcile_failures.get()
    }

    /// Replays that finished with `verdict` so far.
    pub fn replays(&self, verdict: &str) -> u64 {
        self.replays
            .get_or_create(&VerdictLabel {
                verdict: verdict.to_owned(),
            })
            .get()
    }
}

/// What every reconcile shares.
pub struct Context {
    /// The API server.
    pub client: Client,
    /// Settings.
    pub config: ControllerConfig,
    /// Failures and verdicts.
    pub metrics: Arc<ControllerMetrics>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context whose metrics are registered nowhere (tests).
    pub fn new(client: Client, config: ControllerConfig) -> Self {
        Self::with_metrics(client, config, Arc::default())
    }

    /// A context counting into `metrics`.
    pub fn with_metrics(
        client: Client,
        config: ControllerConfig,
        metrics: Arc<ControllerMetrics>,
    ) -> Self {
        Self {
            client,
            config,
            metrics,
        }
    }
}

/// Why a reconcile failed; it is retried after [`error_policy`]'s delay.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("api server: {0}")]
    Kube(#[source] kube::Error),
    /// JSON that could not be built or read.
    #[error("json: {0}")]
    Json(#[source] serde_json::Error),
    /// The finalizer could not be added or removed, or its step failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// A `TrafficReplay` without a namespace (cannot happen for a namespaced kind).
    #[error("trafficreplay has no namespace")]
    NoNamespace,
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Self::Kube(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Json(e)
    }
}

/// Runs the controller until its watch stream ends, counting into `metrics`.
pub async fn run(client: Client, config: ControllerConfig, metrics: Arc<ControllerMetrics>) {
    fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let ns = config.watch_namespace.clone();
    let ns = ns.as_deref();
    let owned = watcher::Config::default().labels(REPLAY_LABEL);
    let stream = Controller::new(
        api::<TrafficReplay>(&client, ns),
        watcher::Config::default(),
    )
    .owns(api::<Deployment>(&client, ns), owned.clone())
    .owns(api::<Job>(&client, ns), owned)
    .run(
        reconcile,
        error_policy,
        Arc::new(Context::with_metrics(client.clone(), config, metrics)),
    );
    drain(stream).await;
}

type Item = Result<
    (ObjectRef<TrafficReplay>, Action),
    kube::runtime::controller::Error<Error, watcher::Error>,
>;

// `futures` is not a dependency of this crate; `WatchStreamExt` has `Stream`
// as its supertrait, which is enough to poll the controller's stream.
async fn drain<S: kube::runtime::WatchStreamExt<Item = Item>>(stream: S) {
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        match item {
            Ok((obj, _)) => tracing::debug!(replay = %obj, "reconciled"),
            Err(e) => tracing::warn!(error = %e, "reconcile failed"),
        }
    }
}

/// Counts the failure and retries in 10 seconds.
pub fn error_policy(replay: Arc<TrafficReplay>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failures.inc();
    tracing::warn!(replay = %replay.name_any(), error = %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(10))
}

/// One step of the replay's state machine, inside the finalizer.
pub async fn reconcile(replay: Arc<TrafficReplay>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = replay.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<TrafficReplay> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, replay, |event| async {
        match event {
            Finalizer::Apply(r) => Step::new(&r, &ctx)?.apply().await,
            Finalizer::Cleanup(r) => Step::new(&r, &ctx)?.on_delete().await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

struct Step<'a> {
    replay: &'a TrafficReplay,
    ctx: &'a Context,
    ns: String,
    name: String,
    workload_ns: String,
    status: TrafficReplayStatus,
}

/// The names of the objects a replay creates.
pub fn responder_name(replay: &str) -> String {
    format!("{replay}-responder")
}

/// The Secret with the store's credentials next to a replay.
pub fn store_secret_name(replay: &str) -> String {
    format!("{replay}-store")
}

/// The generator Job's name.
pub fn generator_name(replay: &str) -> String {
    format!("{replay}-generator")
}

/// Where the generator uploads its report (`tapwire replay --report-to`):
/// `<store>/reports/<namespace>/<replay>`, holding `report.json`,
/// `report.html` and `junit.xml`.
pub fn report_location(store: &str, namespace: &str, replay: &str) -> String {
    format!(
        "{}/reports/{namespace}/{replay}",
        store.trim_end_matches('/')
    )
}

/// The report's headline figures, as `status.summary` holds them.
pub fn summary_of(report: &Report) -> SummaryStatus {
    let s = &report.summary;
    SummaryStatus {
        requests: s.requests,
        pass_rate: s.assertions.pass_rate,
        p50_ms: s.latency_ms.p50,
        p95_ms: s.latency_ms.p95,
        p99_ms: s.latency_ms.p99,
        mock_accuracy: report.mock.as_ref().map(|m| m.ratio()),
    }
}

impl<'a> Step<'a> {
    fn new(replay: &'a TrafficReplay, ctx: &'a Context) -> Result<Self, Error> {
        let ns = replay.namespace().ok_or(Error::NoNamespace)?;
        Ok(Self {
            workload_ns: replay
                .spec
                .workload
                .namespace
                .clone()
                .unwrap_or_else(|| ns.clone()),
            ns,
            name: replay.name_any(),
            status: replay.status.clone().unwrap_or_default(),
            replay,
            ctx,
        })
    }

    fn mode(&self) -> ReplayMode {
        self.replay.spec.mode.unwrap_or(ReplayMode::FullReplay)
    }

    fn kind(&self) -> Option<WorkloadKind> {
        WorkloadKind::parse(self.replay.spec.workload.kind.as_deref())
    }

    /// The workload, `None` when it is gone or its kind is not one tapwire replays against.
    async fn workload(&self) -> Result<Option<Workload>, Error> {
        let Some(kind) = self.kind() else {
            return Ok(None);
        };
        Ok(Workload::get(
            &self.ctx.client,
            kind,
            &self.workload_ns,
            &self.replay.spec.workload.name,
        )
        .await?)
    }

    /// `Deployment shop/orders`, for messages.
    fn workload_label(&self) -> String {
        format!(
            "{} {}/{}",
            self.replay
                .spec
                .workload
                .kind
                .as_deref()
                .unwrap_or("Deployment"),
            self.workload_ns,
            self.replay.spec.workload.name
        )
    }

    fn poll(&self) -> Action {
        Action::requeue(self.ctx.config.poll)
    }

    async fn apply(mut self) -> Result<Action, Error> {
        match self.status.phase.unwrap_or(Phase::Pending) {
            Phase::Pending => self.pending().await,
            Phase::StartingMocks => self.starting_mocks().await,
            Phase::WaitingForWorkload => self.waiting().await,
            Phase::Running => self.running().await,
            Phase::CleaningUp => self.cleaning_up().await,
            Phase::Complete | Phase::Failed => Ok(Action::await_change()),
        }
    }

    // ── steps ──────────────────────────────────────────────────────────

    async fn pending(&mut self) -> Result<Action, Error> {
        if self.kind().is_none() {
            return self
                .fail(format!(
                    "spec.workload.kind {:?} is not a workload tapwire replays against; use Deployment, StatefulSet or DaemonSet",
                    self.replay.spec.workload.kind.as_deref().unwrap_or_default()
                ))
                .await;
        }
        let Some(workload) = self.workload().await? else {
            return self
                .fail(format!("workload {} not found", self.workload_label()))
                .await;
        };
        let template = workload.template();
        // Always overwritten here: nothing has been changed yet, so the
        // workload's current template is the one to restore.
        let saved = serde_json::to_string(&template)?;
        Api::<TrafficReplay>::namespaced(self.ctx.client.clone(), &self.ns)
            .patch(
                &self.name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {SAVED_SPEC: saved}}})),
            )
            .await?;
        self.status.started_at = Some(Time(now()));
        self.status.phase = Some(if self.mode().needs_responder() {
            Phase::StartingMocks
        } else {
            Phase::WaitingForWorkload
        });
        self.status.message = Some("saved the workload's pod template".into());
        self.save_status().await?;
        Ok(self.poll())
    }

    async fn starting_mocks(&mut self) -> Result<Action, Error> {
        if let Some(why) = self.expired("starting the responder") {
            return self.fail_after_start(why).await;
        }
        let Some(saved) = self.saved_template()? else {
            return self
                .fail_after_start("the saved pod template is missing".into())
                .await;
        };
        if let Err(why) = self.ensure_store_secret().await? {
            return self.fail_after_start(why).await;
        }
        let responder = self.apply_object(&self.responder_deployment()).await?;
        self.apply_object(&self.responder_service()).await?;
        let routed = route_to_responder(
            saved,
            &format!("{}.{}.svc", responder_name(&self.name), self.ns),
            &self.name,
        );
        self.replace_template(&routed).await?;
        let available = responder
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0);
        if available > 0 {
            set_condition(
                &mut self.status,
                "MocksReady",
                "True",
                "Available",
                "the responder is answering",
            );
            self.status.phase = Some(Phase::WaitingForWorkload);
            self.status.message = Some("waiting for the workload's rollout".into());
        } else {
            set_condition(
                &mut self.status,
                "MocksReady",
                "False",
                "Starting",
                "the responder has no available replica yet",
            );
            self.status.message = Some("waiting for the responder".into());
        }
        self.save_status().await?;
        Ok(self.poll())
    }

    async fn waiting(&mut self) -> Result<Action, Error> {
        if let Some(why) = self.expired("waiting for the workload's rollout") {
            return self.fail_after_start(why).await;
        }
        let Some(workload) = self.workload().await? else {
            return self
                .fail_after_start("the workload was deleted".into())
                .await;
        };
        if workload.rolled_out() {
            self.status.phase = Some(Phase::Running);
            self.status.message = Some(if self.mode().needs_generator() {
                "running the generator".into()
            } else {
                "serving mocks until the timeout (responder-only)".into()
            });
            self.save_status().await?;
        }
        Ok(self.poll())
    }

    async fn running(&mut self) -> Result<Action, Error> {
        if !self.mode().needs_generator() {
            if self.expired("").is_some() {
                return self
                    .finish(
                        "Passed",
                        "responder-only: the mocks were served for the whole timeout".into(),
                    )
                    .await;
            }
            return Ok(self.poll());
        }
        if let Some(why) = self.expired("running the generator") {
            return self.fail_after_start(why).await;
        }
        let jobs: Api<Job> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        let job_name = generator_name(&self.name);
        let job = match jobs.get_opt(&job_name).await? {
            Some(job) => job,
            None => {
                if let Err(why) = self.ensure_store_secret().await? {
                    return self.fail_after_start(why).await;
                }
                let Some(target) = self.target().await? else {
                    return self
                        .fail_after_start(format!(
                            "no Service in {} selects the workload's pods",
                            self.workload_ns
                        ))
                        .await;
                };
                self.apply_object(&self.generator_job(&target)).await?
            }
        };
        let status = job.status.unwrap_or_default();
        let failed = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Failed" && c.status == "True");
        if status.succeeded.unwrap_or(0) > 0 {
            let logs = self.generator_logs(&job_name).await?.1;
            let (report, clause) = self.read_report().await;
            return self
                .finish_with(
                    "Passed",
                    format!("the generator passed{clause}; {logs}"),
                    report,
                )
                .await;
        }
        if failed {
            let (code, logs) = self.generator_logs(&job_name).await?;
            return match code {
                Some(1) => {
                    let (report, clause) = self.read_report().await;
                    self.finish_with(
                        "MissedGoals",
                        format!(
                            "the generator missed a goal or an assertion (exit 1){clause}; {logs}"
                        ),
                        report,
                    )
                    .await
                }
                other => {
                    let code = other.map_or("unknown".into(), |c| c.to_string());
                    self.fail_after_start(format!(
                        "the generator failed (exit code {code}); {logs}"
                    ))
                    .await
                }
            };
        }
        Ok(self.poll())
    }

    async fn cleaning_up(&mut self) -> Result<Action, Error> {
        let cleanup = self.replay.spec.cleanup.unwrap_or(Cleanup::Inventory);
        match cleanup {
            Cleanup::None => {}
            Cleanup::Inventory => {
                self.restore().await?;
                self.delete_created().await?;
            }
            Cleanup::All => {
                self.delete_created().await?;
                if let Some(kind) = self.kind() {
                    ignore_missing(
                        workload::delete(
                            &self.ctx.client,
                            kind,
                            &self.workload_ns,
                            &self.replay.spec.workload.name,
                        )
                        .await,
                    )?;
                }
            }
        }
        let ready = self
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .cloned();
        let reason = ready
            .as_ref()
            .map_or("Error", |c| c.reason.as_str())
            .to_owned();
        let failed = reason == "Error";
        self.status.phase = Some(if failed {
            Phase::Failed
        } else {
            Phase::Complete
        });
        self.status.finished_at = Some(Time(now()));
        self.save_status().await?;
        self.ctx
            .metrics
            .replays
            .get_or_create(&VerdictLabel {
                verdict: reason.clone(),
            })
            .inc();
        let message = self.status.message.clone().unwrap_or_default();
        let kind = if reason == "Passed" {
            "Normal"
        } else {
            "Warning"
        };
        let event_reason = if failed { "Failed" } else { reason.as_str() };
        self.event(kind, event_reason, &message).await;
        Ok(Action::await_change())
    }

    /// Deletion before the end: restore and delete, whatever `spec.cleanup`
    /// says, since the responder the workload points at is going away.
    async fn on_delete(self) -> Result<Action, Error> {
        let done = matches!(
            self.status.phase,
            None | Some(Phase::Pending) | Some(Phase::Complete) | Some(Phase::Failed)
        );
        if !done {
            self.restore().await?;
            self.delete_created().await?;
        }
        Ok(Action::await_change())
    }

    // ── transitions ───────────────────────────────────────────────────

    /// Ends the replay before anything was changed.
    async fn fail(&mut self, why: String) -> Result<Action, Error> {
        set_condition(&mut self.status, "Ready", "False", "Error", &why);
        self.status.phase = Some(Phase::CleaningUp);
        self.status.message = Some(why);
        self.save_status().await?;
        Ok(Action::requeue(Duration::from_millis(100)))
    }

    /// Ends the replay with reason `Error`, after collecting the workload's Events.
    async fn fail_after_start(&mut self, why: String) -> Result<Action, Error> {
        self.finish("Error", why).await
    }

    async fn finish(&mut self, reason: &str, message: String) -> Result<Action, Error> {
        self.finish_with(reason, message, None).await
    }

    /// Ends the replay with `reason`. The workload's Events go into the
    /// message; with the generator's `report`, they and the workload's logs
    /// also go into the report, which is uploaded again.
    async fn finish_with(
        &mut self,
        reason: &str,
        message: String,
        report: Option<(Report, Location)>,
    ) -> Result<Action, Error> {
        let facts = self.cluster_facts(report.is_some()).await?;
        let mut message = format!("{message}; {}", facts_sentence(&facts));
        if let Some((mut report, location)) = report {
            report.cluster = Some(facts);
            let upload = tokio::time::timeout(REPORT_TIMEOUT, report.upload(&location)).await;
            let failed = match upload {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("no answer within {}s", REPORT_TIMEOUT.as_secs())),
            };
            if let Some(why) = failed {
                tracing::warn!(replay = %self.name, error = %why, "cannot add the cluster's events and logs to the report");
                message.push_str(&format!(
                    " (the workload's events and logs could not be added to the report: {})",
                    bounded(&why, 300)
                ));
            }
        }
        let status = if reason == "Passed" { "True" } else { "False" };
        set_condition(&mut self.status, "Ready", status, reason, &message);
        self.status.phase = Some(Phase::CleaningUp);
        self.status.message = Some(message);
        self.save_status().await?;
        Ok(Action::requeue(Duration::from_millis(100)))
    }

    // ── helpers ───────────────────────────────────────────────────────

    fn timeout(&self) -> Result<Duration, String> {
        match &self.replay.spec.timeout {
            None => Ok(self.ctx.config.default_timeout),
            Some(t) => {
                parse_duration(t).ok_or_else(|| format!("spec.timeout {t:?} is not a duration"))
            }
        }
    }

    /// `Some(why)` once the timeout has passed since `startedAt`.
    fn expired(&self, doing: &str) -> Option<String> {
        let timeout = match self.timeout() {
            Ok(t) => t,
            Err(e) => return Some(e),
        };
        let started = self.status.started_at.as_ref()?.0;
        let elapsed = now().as_millisecond() - started.as_millisecond();
        (elapsed >= i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX)).then(|| {
            format!(
                "timed out after {} while {doing}",
                self.replay
                    .spec
                    .timeout
                    .clone()
                    .unwrap_or_else(|| format!("{}s", timeout.as_secs()))
            )
        })
    }

    fn saved_template(&self) -> Result<Option<PodTemplateSpec>, Error> {
        match self.replay.annotations().get(SAVED_SPEC) {
            Some(s) => Ok(Some(serde_json::from_str(s)?)),
            None => Ok(None),
        }
    }

    async fn replace_template(&self, template: &PodTemplateSpec) -> Result<(), kube::Error> {
        let Some(kind) = self.kind() else {
            return Ok(());
        };
        workload::replace_template(
            &self.ctx.client,
            kind,
            &self.workload_ns,
            &self.replay.spec.workload.name,
            template,
        )
        .await
    }

    async fn restore(&self) -> Result<(), Error> {
        // Without `startedAt`, `Pending` never wrote the annotation: it is
        // not the controller's and must not be put on the workload.
        if self.status.started_at.is_none() {
            return Ok(());
        }
        if let Some(saved) = self.saved_template()? {
            ignore_missing(self.replace_template(&saved).await)?;
        }
        Ok(())
    }

    async fn delete_created(&self) -> Result<(), Error> {
        let client = &self.ctx.client;
        let dp = DeleteParams::background();
        let responder = responder_name(&self.name);
        ignore_missing(
            Api::<Deployment>::namespaced(client.clone(), &self.ns)
                .delete(&responder, &dp)
                .await
                .map(drop),
        )?;
        ignore_missing(
            Api::<Service>::namespaced(client.clone(), &self.ns)
                .delete(&responder, &dp)
                .await
                .map(drop),
        )?;
        ignore_missing(
            Api::<Job>::namespaced(client.clone(), &self.ns)
                .delete(&generator_name(&self.name), &dp)
                .await
                .map(drop),
        )?;
        // The credentials Secret is not deleted here: it is owned by the
        // TrafficReplay and goes with it, so the operator needs no right to
        // delete Secrets.
        Ok(())
    }

    fn uses_store_secret(&self) -> bool {
        self.ctx.config.store_secret.is_some() || !self.ctx.config.store_env.is_empty()
    }

    /// Copies the store's credentials next to the replay. `Err(why)` when
    /// the Secret named by `storage.secretName` cannot be found.
    async fn ensure_store_secret(&self) -> Result<Result<(), String>, Error> {
        if !self.uses_store_secret() {
            return Ok(Ok(()));
        }
        let mut data: BTreeMap<String, ByteString> = BTreeMap::new();
        if let Some(source) = &self.ctx.config.store_secret {
            let ns = &self.ctx.config.namespace;
            match Api::<Secret>::namespaced(self.ctx.client.clone(), ns)
                .get_opt(source)
                .await?
            {
                Some(secret) => data.extend(secret.data.unwrap_or_default()),
                None => {
                    return Ok(Err(format!(
                        "the store's credentials Secret {ns}/{source} (storage.secretName) does not exist"
                    )))
                }
            }
        }
        for (k, v) in &self.ctx.config.store_env {
            data.insert(k.clone(), ByteString(v.clone().into_bytes()));
        }
        let secret = Secret {
            metadata: self.meta(store_secret_name(&self.name), "store-credentials"),
            data: Some(data),
            type_: Some("Opaque".into()),
            ..Default::default()
        };
        self.apply_object(&secret).await?;
        Ok(Ok(()))
    }

    /// The store's credentials as environment, when there are any.
    fn store_env_from(&self) -> Option<Vec<EnvFromSource>> {
        self.uses_store_secret().then(|| {
            vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: store_secret_name(&self.name),
                    optional: Some(false),
                }),
                ..Default::default()
            }]
        })
    }

    /// `http://<service>.<ns>.svc:<port>` for the workload's Service.
    async fn target(&self) -> Result<Option<String>, Error> {
        let labels = self
            .saved_template()?
            .and_then(|t| t.metadata)
            .and_then(|m| m.labels)
            .unwrap_or_default();
        let services = Api::<Service>::namespaced(self.ctx.client.clone(), &self.workload_ns)
            .list(&ListParams::default())
            .await?;
        Ok(services.items.into_iter().find_map(|s| {
            let spec = s.spec?;
            let selector = spec.selector.filter(|s| !s.is_empty())?;
            if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                return None;
            }
            let port = spec.ports?.first()?.port;
            Some(format!(
                "http://{}.{}.svc:{port}",
                s.metadata.name?, self.workload_ns
            ))
        }))
    }

    /// Reads the report the generator uploaded into `status.report` and
    /// `status.summary`. A report that cannot be read within
    /// [`REPORT_TIMEOUT`] leaves both unset: the verdict still comes from
    /// the exit code, and the returned clause (for the message) says why.
    /// Returns the report and where it lives, when it could be read.
    async fn read_report(&mut self) -> (Option<(Report, Location)>, String) {
        let url = report_location(&self.ctx.config.store, &self.ns, &self.name);
        let fetch = async {
            let location = Location::open(&url)?;
            let report = Report::fetch(&location).await?;
            Ok::<_, tapwire_replay::ReplayError>((report, location))
        };
        let why = match tokio::time::timeout(REPORT_TIMEOUT, fetch).await {
            Ok(Ok((report, location))) => {
                self.status.summary = Some(summary_of(&report));
                self.status.report = Some(format!("{url}/{REPORT_JSON}"));
                return (Some((report, location)), String::new());
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!(
                "{url}/{REPORT_JSON}: no answer within {}s",
                REPORT_TIMEOUT.as_secs()
            ),
        };
        tracing::warn!(replay = %self.name, error = %why, "cannot read the generator's report");
        (
            None,
            format!(" (its report could not be read: {})", bounded(&why, 300)),
        )
    }

    /// The generator's exit code and a sentence about its logs.
    async fn generator_logs(&self, job: &str) -> Result<(Option<i32>, String), Error> {
        let pods: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        let list = pods
            .list(&ListParams::default().labels(&format!("job-name={job}")))
            .await?;
        let Some(pod) = list.items.into_iter().next() else {
            return Ok((
                None,
                "the generator's pod is gone; its logs are unavailable".into(),
            ));
        };
        let terminated = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.first())
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.terminated.clone());
        let code = terminated.as_ref().map(|t| t.exit_code);
        let params = LogParams {
            tail_lines: Some(20),
            ..LogParams::default()
        };
        let logs = match pods.logs(&pod.name_any(), &params).await {
            Ok(text) => format!("generator log tail: {}", bounded(&text, 1500)),
            Err(e) => match terminated.and_then(|t| t.message) {
                Some(m) => format!("generator termination message: {}", bounded(&m, 1500)),
                None => format!("the generator's logs are unavailable ({e})"),
            },
        };
        Ok((code, logs))
    }

    /// What the cluster said about the workload since `startedAt`: its
    /// Events (those of its pods included), and with `logs`, the tail of
    /// each container's log in up to [`LOG_PODS`] of its pods.
    async fn cluster_facts(&self, logs: bool) -> Result<ClusterFacts, Error> {
        let since = self.status.started_at.as_ref().map(|t| t.0);
        let list = Api::<Event>::namespaced(self.ctx.client.clone(), &self.workload_ns)
            .list(&ListParams::default())
            .await?;
        let prefix = self.replay.spec.workload.name.as_str();
        let mut events: Vec<ClusterEvent> = list
            .items
            .into_iter()
            .filter(|e| {
                e.involved_object
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .filter_map(|e| {
                let at = e
                    .last_timestamp
                    .as_ref()
                    .or(e.first_timestamp.as_ref())
                    .map(|t| t.0)
                    .or_else(|| e.event_time.as_ref().map(|t| t.0));
                if let (Some(since), Some(at)) = (since, at) {
                    if at < since {
                        return None;
                    }
                }
                Some(ClusterEvent {
                    time: at.and_then(chrono_time),
                    kind: e.type_.unwrap_or_default(),
                    reason: e.reason.unwrap_or_default(),
                    object: format!(
                        "{}/{}",
                        e.involved_object.kind.unwrap_or_default(),
                        e.involved_object.name.unwrap_or_default()
                    ),
                    message: bounded(e.message.as_deref().unwrap_or(""), 1000),
                    count: e.count.unwrap_or(1),
                })
            })
            .collect();
        events.sort_by_key(|e| e.time);
        if events.len() > MAX_EVENTS {
            events.drain(..events.len() - MAX_EVENTS);
        }
        let logs = if logs {
            self.workload_logs(since).await?
        } else {
            Vec::new()
        };
        Ok(ClusterFacts {
            workload: self.workload_label(),
            events,
            logs,
        })
    }

    /// The tail of each container's log since `since`, in the workload's pods.
    async fn workload_logs(
        &self,
        since: Option<k8s_openapi::jiff::Timestamp>,
    ) -> Result<Vec<ContainerLog>, Error> {
        let labels = self
            .saved_template()?
            .and_then(|t| t.metadata)
            .and_then(|m| m.labels)
            .unwrap_or_default();
        if labels.is_empty() {
            return Ok(Vec::new());
        }
        let selector = labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let pods: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.workload_ns);
        let list = pods.list(&ListParams::default().labels(&selector)).await?;
        let mut out = Vec::new();
        for pod in list.items.iter().take(LOG_PODS) {
            let name = pod.name_any();
            let containers = pod.spec.iter().flat_map(|s| s.containers.iter());
            for c in containers {
                let params = LogParams {
                    container: Some(c.name.clone()),
                    since_time: since,
                    tail_lines: Some(LOG_LINES),
                    limit_bytes: Some(LOG_BYTES),
                    ..LogParams::default()
                };
                let (lines, error) = match pods.logs(&name, &params).await {
                    Ok(text) => (text.lines().map(str::to_owned).collect(), None),
                    Err(e) => (Vec::new(), Some(bounded(&e.to_string(), 300))),
                };
                out.push(ContainerLog {
                    pod: name.clone(),
                    container: c.name.clone(),
                    lines,
                    error,
                });
            }
        }
        Ok(out)
    }

    async fn save_status(&mut self) -> Result<(), Error> {
        self.status.observed_generation = self.replay.metadata.generation;
        if self.replay.status.as_ref() == Some(&self.status) {
            return Ok(());
        }
        let body = json!({
            "apiVersion": API_VERSION,
            "kind": "TrafficReplay",
            "status": self.status,
        });
        Api::<TrafficReplay>::namespaced(self.ctx.client.clone(), &self.ns)
            .patch_status(
                &self.name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(body),
            )
            .await?;
        Ok(())
    }

    async fn apply_object<K>(&self, object: &K) -> Result<K, Error>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let mut value = serde_json::to_value(object)?;
        let dt = K::DynamicType::default();
        value["apiVersion"] = K::api_version(&dt).into();
        value["kind"] = K::kind(&dt).into();
        let name = object.meta().name.clone().unwrap_or_default();
        Ok(Api::<K>::namespaced(self.ctx.client.clone(), &self.ns)
            .patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(value),
            )
            .await?)
    }

    async fn event(&self, type_: &str, reason: &str, message: &str) {
        let reference = ObjectReference {
            api_version: Some(API_VERSION.into()),
            kind: Some("TrafficReplay".into()),
            name: Some(self.name.clone()),
            namespace: Some(self.ns.clone()),
            uid: self.replay.metadata.uid.clone(),
            ..Default::default()
        };
        let t = Time(now());
        let event = Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}.", self.name)),
                namespace: Some(self.ns.clone()),
                ..Default::default()
            },
            involved_object: reference,
            reason: Some(reason.into()),
            message: Some(bounded(message, 1000)),
            type_: Some(type_.into()),
            source: Some(EventSource {
                component: Some(MANAGER.into()),
                host: None,
            }),
            reporting_component: Some(MANAGER.into()),
            reporting_instance: Some(MANAGER.into()),
            first_timestamp: Some(t.clone()),
            last_timestamp: Some(t),
            count: Some(1),
            ..Default::default()
        };
        if let Err(e) = Api::<Event>::namespaced(self.ctx.client.clone(), &self.ns)
            .create(&PostParams::default(), &event)
            .await
        {
            tracing::warn!(error = %e, replay = %self.name, reason, "could not record an Event");
        }
    }

    // ── objects ───────────────────────────────────────────────────────

    fn meta(&self, name: String, component: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.ns.clone()),
            labels: Some(self.labels(component)),
            owner_references: Some(vec![OwnerReference {
                api_version: API_VERSION.into(),
                kind: "TrafficReplay".into(),
                name: self.name.clone(),
                uid: self.replay.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        }
    }

    fn labels(&self, component: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (REPLAY_LABEL.to_owned(), self.name.clone()),
            (
                "app.kubernetes.io/component".to_owned(),
                component.to_owned(),
            ),
            (
                "app.kubernetes.io/managed-by".to_owned(),
                MANAGER.to_owned(),
            ),
            (
                "tapwire.dev/operator-namespace".to_owned(),
                self.ctx.config.namespace.clone(),
            ),
        ])
    }

    fn selector(&self, component: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (REPLAY_LABEL.to_owned(), self.name.clone()),
            (
                "app.kubernetes.io/component".to_owned(),
                component.to_owned(),
            ),
        ])
    }

    fn resources(&self) -> ResourceRequirements {
        let mut r = self.ctx.config.resources.clone();
        if self.ctx.config.autopilot {
            autopilot_resources(&mut r);
        }
        r
    }

    fn responder_deployment(&self) -> Deployment {
        let name = responder_name(&self.name);
        let spec = &self.replay.spec;
        let mut args = vec![
            "mock".into(),
            "--snapshot".into(),
            spec.snapshot.clone(),
            "--store".into(),
            self.ctx.config.store.clone(),
            "--bind".into(),
            "0.0.0.0".into(),
            "--port".into(),
            RESPONDER_PORT.to_string(),
            "--admin-port".into(),
            RESPONDER_ADMIN_PORT.to_string(),
            "--ca-dir".into(),
            CA_DIR.into(),
            "--log-format".into(),
            "json".into(),
        ];
        args.extend(key_flags(spec.mocks.as_deref()));
        let container = Container {
            name: "responder".into(),
            image: Some(self.ctx.config.image.clone()),
            args: Some(args),
            ports: Some(vec![
                port("proxy", RESPONDER_PORT),
                port("admin", RESPONDER_ADMIN_PORT),
            ]),
            readiness_probe: Some(k8s_openapi::api::core::v1::Probe {
                http_get: Some(k8s_openapi::api::core::v1::HTTPGetAction {
                    path: Some("/readyz".into()),
                    port: k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(
                        RESPONDER_ADMIN_PORT.into(),
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            resources: Some(self.resources()),
            env_from: self.store_env_from(),
            volume_mounts: Some(vec![VolumeMount {
                name: "tapwire-ca".into(),
                mount_path: CA_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            }]),
            ..Default::default()
        };
        serde_json::from_value(json!({
            "metadata": self.meta(name, "responder"),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": self.selector("responder")},
                "template": {
                    "metadata": {"labels": self.labels("responder")},
                    "spec": {
                        "containers": [container],
                        "volumes": [secret_volume("tapwire-ca", &[("ca.crt", "ca.crt"), ("ca.key", "ca.key")])],
                    }
                }
            }
        }))
        .unwrap_or_default()
    }

    fn responder_service(&self) -> Service {
        serde_json::from_value(json!({
            "metadata": self.meta(responder_name(&self.name), "responder"),
            "spec": {
                "selector": self.selector("responder"),
                // Kubernetes before 1.21 has no default for `protocol` in server-side
                // apply: the ports list is keyed by port and protocol.
                "ports": [
                    {"name": "proxy", "port": RESPONDER_PORT, "targetPort": RESPONDER_PORT, "protocol": "TCP"},
                    // The generator reads the responder's accuracy here (`/accuracy`).
                    {"name": "admin", "port": RESPONDER_ADMIN_PORT, "targetPort": RESPONDER_ADMIN_PORT, "protocol": "TCP"},
                ],
            }
        }))
        .unwrap_or_default()
    }

    fn generator_job(&self, target: &str) -> Job {
        let spec = &self.replay.spec;
        let mut args: Vec<String> = vec![
            "replay".into(),
            "--snapshot".into(),
            spec.snapshot.clone(),
            "--target".into(),
            target.into(),
            "--store".into(),
            self.ctx.config.store.clone(),
            "--report-dir".into(),
            REPORT_DIR.into(),
            "--report-to".into(),
            report_location(&self.ctx.config.store, &self.ns, &self.name),
            "--no-progress".into(),
            "--log-format".into(),
            "json".into(),
        ];
        args.extend(key_flags(spec.tests.as_deref()));
        if self.mode().needs_responder() {
            // The responder's counts at the end of the run become the
            // report's mock accuracy.
            args.push("--mock-admin".into());
            args.push(format!(
                "http://{}.{}.svc:{RESPONDER_ADMIN_PORT}",
                responder_name(&self.name),
                self.ns
            ));
        }
        if let Some(tag) = &spec.build_tag {
            args.push("--build-tag".into());
            args.push(tag.clone());
        }
        if let Some(t) = &spec.test {
            let mut flag = |name: &str, value: String| {
                args.push(format!("--{name}"));
                args.push(value);
            };
            if let Some(v) = t.vus {
                flag("vus", v.to_string());
            }
            if let Some(v) = t.rps {
                flag("rps", v.to_string());
            }
            if let Some(v) = &t.duration {
                flag("duration", v.clone());
            }
            if let Some(v) = t.iterations {
                flag("iterations", v.to_string());
            }
            for s in &t.stages {
                flag("stage", format!("{}:{}", s.duration, s.target));
            }
            for h in &t.assert_headers {
                flag("assert-header", h.clone());
            }
            for p in &t.ignore_paths {
                flag("ignore-path", p.clone());
            }
            for g in &t.goals {
                flag("fail-if", g.clone());
            }
        }
        let container = Container {
            name: "generator".into(),
            image: Some(self.ctx.config.image.clone()),
            args: Some(args),
            resources: Some(self.resources()),
            env_from: self.store_env_from(),
            // The summary goes to stdout: on failure its tail becomes the
            // termination message, readable without the kubelet's log API.
            termination_message_policy: Some("FallbackToLogsOnError".into()),
            volume_mounts: Some(vec![VolumeMount {
                name: "report".into(),
                mount_path: REPORT_DIR.into(),
                ..Default::default()
            }]),
            ..Default::default()
        };
        serde_json::from_value(json!({
            "metadata": self.meta(generator_name(&self.name), "generator"),
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {"labels": self.labels("generator")},
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [container],
                        "volumes": [{"name": "report", "emptyDir": {}}],
                    }
                }
            }
        }))
        .unwrap_or_default()
    }
}

/// The workload's pod template with its outbound calls sent to the
/// responder at `host` and the tapwire CA trusted. Pure: always computed
/// from the saved template, so applying it twice changes nothing.
pub fn route_to_responder(
    mut template: PodTemplateSpec,
    host: &str,
    replay: &str,
) -> PodTemplateSpec {
    template
        .metadata
        .get_or_insert_with(Default::default)
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(REPLAY_LABEL.to_owned(), replay.to_owned());
    let Some(spec) = template.spec.as_mut() else {
        return template;
    };
    let mut env = proxy_env(&format!("http://{host}:{RESPONDER_PORT}"));
    env.extend(trust_env(TRUST_DIR));
    for c in &mut spec.containers {
        let vars = c.env.get_or_insert_with(Vec::new);
        // The replay's routing wins over the app's own proxy settings:
        // a call that bypassed the responder would reach a real dependency.
        vars.retain(|e| !env.iter().any(|(k, _)| e.name == *k));
        vars.extend(env.iter().map(|(k, v)| EnvVar {
            name: (*k).into(),
            value: Some(v.clone()),
            value_from: None,
        }));
        let mounts = c.volume_mounts.get_or_insert_with(Vec::new);
        mounts.retain(|m| m.name != TRUST_VOLUME);
        mounts.push(VolumeMount {
            name: TRUST_VOLUME.into(),
            mount_path: TRUST_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        });
    }
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    volumes.retain(|v| v.name != TRUST_VOLUME);
    volumes.push(secret_volume(
        TRUST_VOLUME,
        &[("ca.crt", "ca.crt"), ("ca-bundle.crt", "ca-bundle.crt")],
    ));
    template
}

/// `90s`, `15m`, `1h30m`, `500ms`: a sum of numbers with units.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" | "msec" => Duration::from_millis(n),
            "s" | "sec" | "secs" => Duration::from_secs(n),
            "m" | "min" | "mins" => Duration::from_secs(n.checked_mul(60)?),
            "h" | "hr" | "hrs" => Duration::from_secs(n.checked_mul(3600)?),
            "d" | "days" => Duration::from_secs(n.checked_mul(86_400)?),
            _ => return None,
        };
        total = total.checked_add(unit)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

fn set_condition(
    status: &mut TrafficReplayStatus,
    type_: &str,
    value: &str,
    reason: &str,
    message: &str,
) {
    let existing = status.conditions.iter().position(|c| c.type_ == type_);
    let since = existing
        .map(|i| &status.conditions[i])
        .filter(|c| c.status == value)
        .map(|c| c.last_transition_time.clone());
    let condition = Condition {
        type_: type_.into(),
        status: value.into(),
        reason: reason.into(),
        message: bounded(message, 1000),
        last_transition_time: since.unwrap_or_else(|| Time(now())),
        observed_generation: None,
    };
    match existing {
        Some(i) => status.conditions[i] = condition,
        None => status.conditions.push(condition),
    }
}

/// The sidecar Secret's keys as an optional volume: plain-HTTP mocks still
/// work in a namespace without the Secret.
fn secret_volume(name: &str, items: &[(&str, &str)]) -> Volume {
    let mut v = crate::inject::secret_volume(name, items);
    if let Some(s) = v.secret.as_mut() {
        s.optional = Some(true);
    }
    v
}

/// `--key` flags for a `spec.mocks` or `spec.tests` list; none when it
/// selects everything (`*`) or is unset.
fn key_flags(selectors: Option<&[String]>) -> Vec<String> {
    match selectors {
        Some(list) if !list.iter().any(|s| s == "*") => list
            .iter()
            .flat_map(|s| ["--key".to_owned(), s.clone()])
            .collect(),
        _ => Vec::new(),
    }
}

fn ignore_missing(r: Result<(), kube::Error>) -> Result<(), Error> {
    match r {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other.map_err(Error::Kube),
    }
}

fn bounded(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// `12 workload events (warnings: BackOff: …)`, for status messages.
fn facts_sentence(facts: &ClusterFacts) -> String {
    let warnings: Vec<String> = facts
        .events
        .iter()
        .filter(|e| e.kind == "Warning")
        .take(3)
        .map(|e| format!("{}: {}", e.reason, bounded(&e.message, 200)))
        .collect();
    let mut s = format!("{} workload events", facts.events.len());
    if !warnings.is_empty() {
        s.push_str(&format!(" (warnings: {})", warnings.join("; ")));
    }
    s
}

fn chrono_time(t: k8s_openapi::jiff::Timestamp) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().try_into().ok()?)
}

fn now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("20s"), Some(Duration::from_secs(20)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("15"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("5x"), None);
    }

    #[test]
    fn routing_is_idempotent_and_overrides_the_apps_proxy() {
        let t: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "orders"}},
            "spec": {"containers": [{"name": "app", "image": "x", "env": [{"name": "HTTP_PROXY", "value": "http://old:1"}]}]}
        }))
        .unwrap();
        let once = route_to_responder(t, "r-responder.shop.svc", "r");
        let twice = route_to_responder(once.clone(), "r-responder.shop.svc", "r");
        assert_eq!(once, twice);
        let env = once.spec.unwrap().containers[0].env.clone().unwrap();
        let proxies: Vec<_> = env.iter().filter(|e| e.name == "HTTP_PROXY").collect();
        assert_eq!(proxies.len(), 1);
        assert_eq!(
            proxies[0].value.as_deref(),
            Some("http://r-responder.shop.svc:4140")
        );
    }
}

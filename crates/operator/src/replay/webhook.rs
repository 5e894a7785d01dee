//! The `TrafficReplay` admission webhooks: defaulting ([`default`]) and
//! validation ([`validate`]), pure functions over an `AdmissionRequest`.
//!
//! What validation needs from outside the request (the snapshot's traffic
//! keys, whether the workload exists) is looked up beforehand by the async
//! [`prefetch`] and handed in as [`Facts`], so the decision itself stays
//! synchronous and testable on recorded JSON.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::Client;
use serde_json::{json, Value};

use super::crd::{Cleanup, Phase, ReplayMode, TrafficReplay, TrafficReplaySpec};
use super::workload::{Workload, WorkloadKind};

/// The HTTP-style code put in the `Status` of a refusal (Unprocessable Entity).
pub const INVALID_CODE: u16 = 422;
/// The timeout a replay gets when it names none.
pub const DEFAULT_TIMEOUT: &str = "15m";
/// How long the prefetch may take altogether (the API server gives the whole
/// webhook call a few seconds).
pub const PREFETCH_TIMEOUT: Duration = Duration::from_secs(3);

/// What a snapshot holds, as validation needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotFacts {
    /// The snapshot's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Inbound exchanges (future test requests) per `service:host:port`.
    pub inbound: BTreeMap<String, u64>,
    /// Outbound exchanges (future mocks) per `service:host:port`.
    pub outbound: BTreeMap<String, u64>,
}

impl SnapshotFacts {
    fn from_manifest(m: &tapwire_store::Manifest) -> Self {
        Self {
            id: m.id.clone(),
            name: m.name.clone(),
            inbound: m
                .inbound
                .iter()
                .map(|(k, s)| (k.clone(), s.count))
                .collect(),
            outbound: m
                .outbound
                .iter()
                .map(|(k, s)| (k.clone(), s.count))
                .collect(),
        }
    }
}

/// A future returned by [`SnapshotCatalog::refresh`].
pub type RefreshFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Where snapshots are looked up by id, unique id prefix or name.
///
/// `snapshot` is synchronous so that validation stays pure; a catalog backed
/// by remote storage loads what it knows in `refresh`, which the async
/// layer awaits before deciding.
pub trait SnapshotCatalog: Send + Sync + std::fmt::Debug {
    /// The snapshot with this id, unique id prefix or name (the newest of
    /// that name), if the catalog knows it.
    fn snapshot(&self, name_or_id: &str) -> Option<SnapshotFacts>;

    /// Brings what `snapshot` answers up to date. In-memory catalogs have
    /// nothing to do.
    fn refresh(&self) -> RefreshFuture<'_> {
        Box::pin(async { Ok(()) })
    }
}

/// A fixed set of snapshots (tests, and callers that already hold manifests).
#[derive(Debug, Clone, Default)]
pub struct StaticCatalog(pub Vec<SnapshotFacts>);

impl SnapshotCatalog for StaticCatalog {
    fn snapshot(&self, q: &str) -> Option<SnapshotFacts> {
        resolve(&self.0, q)
    }
}

/// Same resolution rules as `tapwire_store::SnapshotStore::resolve`: exact
/// id, then a unique id prefix, then the newest (last listed) of that name.
fn resolve(all: &[SnapshotFacts], q: &str) -> Option<SnapshotFacts> {
    if q.is_empty() {
        return None;
    }
    if let Some(s) = all.iter().find(|s| s.id == q) {
        return Some(s.clone());
    }
    let prefixed: Vec<&SnapshotFacts> = all.iter().filter(|s| s.id.starts_with(q)).collect();
    if let [one] = prefixed.as_slice() {
        return Some((*one).clone());
    }
    all.iter().rev().find(|s| s.name == q).cloned()
}

/// The snapshots of a tapwire store (`file://`, `s3://`, `gs://`, `az://`),
/// listed again on every `refresh`.
#[derive(Debug)]
pub struct StoreCatalog {
    store: tapwire_store::SnapshotStore,
    known: RwLock<Vec<SnapshotFacts>>,
}

impl StoreCatalog {
    /// A catalog over the snapshots of this store.
    pub fn new(store: tapwire_store::SnapshotStore) -> Self {
        Self {
            store,
            known: RwLock::new(Vec::new()),
        }
    }

    /// Opens the store at `url` (as `--storage` takes it).
    pub fn open(url: &str) -> Result<Self, tapwire_store::LocationError> {
        Ok(Self::new(tapwire_store::SnapshotStore::new(
            tapwire_store::Location::open(url)?,
        )))
    }
}

impl SnapshotCatalog for StoreCatalog {
    fn snapshot(&self, q: &str) -> Option<SnapshotFacts> {
        let known = self.known.read().unwrap_or_else(|p| p.into_inner());
        resolve(&known, q)
    }

    fn refresh(&self) -> RefreshFuture<'_> {
        Box::pin(async move {
            // `list` is oldest first, which `resolve` relies on for names.
            let manifests = self.store.list().await.map_err(|e| e.to_string())?;
            let facts = manifests.iter().map(SnapshotFacts::from_manifest).collect();
            *self.known.write().unwrap_or_else(|p| p.into_inner()) = facts;
            Ok(())
        })
    }
}

/// What could be found out about something validation refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T> {
    /// It exists, and this is what is known about it.
    Found(T),
    /// It does not exist.
    Missing,
    /// It could not be checked (no catalog, no cluster access, a timeout):
    /// the check is skipped with this reason as a warning.
    Unchecked(String),
}

/// What the async layer found out before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The snapshot `spec.snapshot` names.
    pub snapshot: Lookup<SnapshotFacts>,
    /// Whether the workload `spec.workload` names exists.
    pub workload: Lookup<()>,
}

impl Default for Facts {
    fn default() -> Self {
        Self {
            snapshot: Lookup::Unchecked("no snapshot catalog is configured".into()),
            workload: Lookup::Unchecked("the operator has no cluster access".into()),
        }
    }
}

impl Facts {
    /// Facts from a catalog lookup and a known workload existence (tests
    /// and callers that already know).
    pub fn from_catalog(
        catalog: &dyn SnapshotCatalog,
        spec: &TrafficReplaySpec,
        workload_exists: bool,
    ) -> Self {
        Self {
            snapshot: catalog
                .snapshot(&spec.snapshot)
                .map_or(Lookup::Missing, Lookup::Found),
            workload: if workload_exists {
                Lookup::Found(())
            } else {
                Lookup::Missing
            },
        }
    }
}

/// Looks up what [`validate`] needs: the snapshot in `catalog` (refreshed
/// first) and the workload through `client`. Lookups that fail or take too
/// long become [`Lookup::Unchecked`].
pub async fn prefetch(
    req: &AdmissionRequest<TrafficReplay>,
    catalog: Option<&dyn SnapshotCatalog>,
    client: Option<&Client>,
) -> Facts {
    let mut facts = Facts::default();
    let Some(replay) = req.object.as_ref() else {
        return facts;
    };
    let spec = &replay.spec;
    let snapshot = async {
        match catalog {
            None => Lookup::Unchecked("no snapshot catalog is configured (--storage)".into()),
            Some(c) => match c.refresh().await {
                Ok(()) => c
                    .snapshot(&spec.snapshot)
                    .map_or(Lookup::Missing, Lookup::Found),
                Err(e) => Lookup::Unchecked(format!("cannot list snapshots: {e}")),
            },
        }
    };
    let namespace = spec
        .workload
        .namespace
        .clone()
        .or_else(|| req.namespace.clone())
        .unwrap_or_default();
    let kind = spec.workload.kind.as_deref().unwrap_or("Deployment");
    let workload = async {
        match client {
            None => Lookup::Unchecked("the operator has no cluster access".into()),
            Some(c) => match workload_exists(c, kind, &namespace, &spec.workload.name).await {
                Ok(Some(true)) => Lookup::Found(()),
                Ok(Some(false)) => Lookup::Missing,
                // An unknown kind is reported by validation itself.
                Ok(None) => Lookup::Unchecked(format!("unknown kind {kind}")),
                Err(e) => Lookup::Unchecked(format!("cannot read the workload: {e}")),
            },
        }
    };
    let both = async { tokio::join!(snapshot, workload) };
    match tokio::time::timeout(PREFETCH_TIMEOUT, both).await {
        Ok((s, w)) => {
            facts.snapshot = s;
            facts.workload = w;
        }
        Err(_) => {
            let why = format!("lookups took longer than {PREFETCH_TIMEOUT:?}");
            facts.snapshot = Lookup::Unchecked(why.clone());
            facts.workload = Lookup::Unchecked(why);
        }
    }
    facts
}

/// Whether the workload exists; `None` for a kind tapwire does not replay against.
pub async fn workload_exists(
    client: &Client,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<bool>, kube::Error> {
    let Some(kind) = WorkloadKind::parse(Some(kind)) else {
        return Ok(None);
    };
    let found = Workload::get(client, kind, namespace, name)
        .await?
        .is_some();
    Ok(Some(found))
}

/// Parses an `AdmissionReview` for a `TrafficReplay`; an unusable one yields
/// the refusal that says why.
pub fn parse_review(
    body: &[u8],
) -> Result<AdmissionRequest<TrafficReplay>, Box<AdmissionResponse>> {
    let review: AdmissionReview<TrafficReplay> = serde_json::from_slice(body).map_err(|e| {
        Box::new(AdmissionResponse::invalid(format!(
            "not an AdmissionReview for a TrafficReplay: {e}"
        )))
    })?;
    review.try_into().map_err(|e| {
        Box::new(AdmissionResponse::invalid(format!(
            "the AdmissionReview has no request: {e}"
        )))
    })
}

/// The defaulting webhook: a JSON patch that fills in what the spec leaves
/// out (see docs/cluster-replay.md). Applying it to its own result
/// changes nothing.
pub fn default(req: &AdmissionRequest<TrafficReplay>) -> AdmissionResponse {
    let response = AdmissionResponse::from(req);
    let Some(replay) = req.object.as_ref() else {
        return response;
    };
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return response;
    }
    let Ok(before) = serde_json::to_value(replay) else {
        return response.deny("cannot read the TrafficReplay");
    };
    let mut after = before.clone();
    let spec = &mut after["spec"];
    if !spec.is_object() {
        return response;
    }
    let fill = |obj: &mut Value, key: &str, value: Value| {
        if obj.get(key).is_none_or(Value::is_null) {
            obj[key] = value;
        }
    };
    fill(spec, "mode", json!("full-replay"));
    fill(spec, "cleanup", json!("inventory"));
    fill(spec, "timeout", json!(DEFAULT_TIMEOUT));
    fill(spec, "mocks", json!(["*"]));
    fill(spec, "tests", json!(["*"]));
    if spec["workload"].is_object() {
        fill(&mut spec["workload"], "kind", json!("Deployment"));
        if let Some(ns) = req
            .namespace
            .clone()
            .or_else(|| replay.metadata.namespace.clone())
        {
            fill(&mut spec["workload"], "namespace", json!(ns));
        }
    }
    let mode: Option<ReplayMode> = serde_json::from_value(spec["mode"].clone()).ok();
    if mode.is_none_or(ReplayMode::needs_generator) {
        fill(spec, "test", json!({}));
        let test = &mut spec["test"];
        if test.is_object() {
            let has = |k: &str| {
                test.get(k)
                    .is_some_and(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
            };
            // Stages set both the shape and the length of a run.
            let shaped = has("vus") || has("rps") || has("stages");
            let bounded = has("duration") || has("iterations") || has("stages");
            if !shaped {
                test["vus"] = json!(1);
            }
            if !bounded {
                test["iterations"] = json!(1);
            }
        }
    }
    if after == before {
        return response;
    }
    match response
        .clone()
        .with_patch(json_patch::diff(&before, &after))
    {
        Ok(r) => r,
        Err(e) => response.deny(format!("tapwire could not encode its patch: {e}")),
    }
}

/// The validating webhook: refuses a `TrafficReplay` that cannot run, with
/// every problem named by its field (several are numbered `(1) … (2) …`).
pub fn validate(req: &AdmissionRequest<TrafficReplay>, facts: &Facts) -> AdmissionResponse {
    let mut response = AdmissionResponse::from(req);
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return response;
    }
    let Some(replay) = req.object.as_ref() else {
        return refuse(
            response,
            vec!["the request carries no TrafficReplay".into()],
        );
    };
    if req.operation == Operation::Update {
        if let Some(old) = req.old_object.as_ref() {
            if old.spec == replay.spec {
                // Metadata or finalizer changes: what was admitted stays
                // admitted, even if its snapshot has since been deleted.
                return response;
            }
            let phase = old.status.as_ref().and_then(|s| s.phase);
            if phase.is_some_and(|p| p != Phase::Pending) {
                return refuse(
                    response,
                    vec![
                        "spec is immutable once a replay starts; create a new TrafficReplay".into(),
                    ],
                );
            }
        }
    }
    let (problems, warnings) = check(replay, req.namespace.as_deref(), facts);
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    if problems.is_empty() {
        response
    } else {
        refuse(response, problems)
    }
}

fn refuse(mut response: AdmissionResponse, problems: Vec<String>) -> AdmissionResponse {
    // Messages contain `;` themselves, so several are numbered.
    let text = match problems.as_slice() {
        [one] => one.clone(),
        many => many
            .iter()
            .enumerate()
            .map(|(i, p)| format!("({}) {p}", i + 1))
            .collect::<Vec<_>>()
            .join(" "),
    };
    response = response.deny(format!("invalid TrafficReplay: {text}"));
    response.result.code = INVALID_CODE;
    response.result.reason = "Invalid".into();
    response
}

/// A duration as the spec takes it: compact humantime (`30s`, `5m`, `1h30m`,
/// `500ms`), not zero. Spaces are refused although humantime accepts them,
/// so that the form matches what Kubernetes and Go tools write.
fn parse_duration(text: &str) -> Option<Duration> {
    if text.is_empty() || text.contains(char::is_whitespace) {
        return None;
    }
    humantime::parse_duration(text)
        .ok()
        .filter(|d| !d.is_zero())
}

fn bad_duration(field: &str, text: &str) -> String {
    format!("{field}: {text:?} is not a duration; use 30s, 5m or 1h")
}

/// How many of `keys` the selectors pick (see [`tapwire_model::selects`]).
fn selected<'a>(keys: impl Iterator<Item = &'a String>, selectors: &[String]) -> u64 {
    keys.filter(|k| tapwire_model::selects(selectors, k))
        .count() as u64
}

fn check(
    replay: &TrafficReplay,
    namespace: Option<&str>,
    facts: &Facts,
) -> (Vec<String>, Vec<String>) {
    let spec = &replay.spec;
    let mut problems = Vec::new();
    let mut warnings = Vec::new();

    if spec.snapshot.trim().is_empty() {
        problems.push("spec.snapshot: must name a snapshot (its id or name)".to_owned());
    }
    if spec.workload.name.trim().is_empty() {
        problems.push("spec.workload.name: must name the workload under test".to_owned());
    }
    let kind = spec.workload.kind.as_deref().unwrap_or("Deployment");
    let kind_ok = WorkloadKind::parse(Some(kind)).is_some();
    if !kind_ok {
        problems.push(format!(
            "spec.workload.kind: {kind:?} is not a workload tapwire replays against; use Deployment, StatefulSet or DaemonSet"
        ));
    }
    let ns = spec
        .workload
        .namespace
        .as_deref()
        .or(namespace)
        .unwrap_or("default");
    match &facts.workload {
        Lookup::Missing if kind_ok => problems.push(format!(
            "spec.workload: {kind} {ns}/{} does not exist",
            spec.workload.name
        )),
        Lookup::Unchecked(why) if kind_ok => warnings.push(format!(
            "tapwire did not check that {kind} {ns}/{} exists: {why}",
            spec.workload.name
        )),
        _ => {}
    }

    if let Some(t) = &spec.timeout {
        if parse_duration(t).is_none() {
            problems.push(bad_duration("spec.timeout", t));
        }
    }
    let mut selectors_ok = true;
    for (field, list) in [("spec.mocks", &spec.mocks), ("spec.tests", &spec.tests)] {
        for (i, s) in list.iter().flatten().enumerate() {
            if !tapwire_model::is_selector(s) {
                selectors_ok = false;
                problems.push(format!(
                    "{field}[{i}]: {s:?} is not a selector; use service:host:port (e.g. orders:payments.svc:8080) or *"
                ));
            }
        }
    }

    if let Some(test) = &spec.test {
        if test.vus.is_some() && test.rps.is_some() {
            problems.push(
                "spec.test: vus and rps are both set; choose vus (closed model) or rps (open model)"
                    .to_owned(),
            );
        }
        if let Some(rps) = test.rps {
            if !(rps > 0.0 && rps.is_finite()) {
                problems.push(format!("spec.test.rps: {rps} must be greater than 0"));
            }
        }
        if test.vus == Some(0) {
            problems.push("spec.test.vus: 0 must be at least 1".to_owned());
        }
        if test.iterations == Some(0) {
            problems.push("spec.test.iterations: 0 must be at least 1".to_owned());
        }
        if let Some(d) = &test.duration {
            if parse_duration(d).is_none() {
                problems.push(bad_duration("spec.test.duration", d));
            }
        }
        for (i, stage) in test.stages.iter().enumerate() {
            if parse_duration(&stage.duration).is_none() {
                problems.push(bad_duration(
                    &format!("spec.test.stages[{i}].duration"),
                    &stage.duration,
                ));
            }
            if !(stage.target >= 0.0 && stage.target.is_finite()) {
                problems.push(format!(
                    "spec.test.stages[{i}].target: {} must be 0 or more",
                    stage.target
                ));
            }
        }
        for (i, g) in test.goals.iter().enumerate() {
            if let Err(e) = g.parse::<tapwire_replay::Goal>() {
                problems.push(format!("spec.test.goals[{i}]: {e}"));
            }
        }
    }

    let mode = spec.mode.unwrap_or(ReplayMode::FullReplay);
    match &facts.snapshot {
        Lookup::Missing if !spec.snapshot.trim().is_empty() => problems.push(format!(
            "spec.snapshot: no snapshot {:?} in the store (by id, id prefix or name); list them with `tapwire snapshot ls`",
            spec.snapshot
        )),
        Lookup::Found(snap) if mode.needs_generator() && selectors_ok => {
            let tests = spec.tests.clone().unwrap_or_else(|| vec!["*".into()]);
            let mode_name = match mode {
                ReplayMode::GeneratorOnly => "generator-only",
                _ => "full-replay",
            };
            if snap.inbound.is_empty() {
                problems.push(format!(
                    "spec.mode: {mode_name} replays inbound traffic, but snapshot {:?} has none; use responder-only or another snapshot",
                    spec.snapshot
                ));
            } else if selected(snap.inbound.keys(), &tests) == 0 {
                let known: Vec<&str> = snap.inbound.keys().map(String::as_str).collect();
                problems.push(format!(
                    "spec.tests: no inbound traffic of snapshot {:?} matches {:?}; it has {}",
                    spec.snapshot,
                    tests,
                    known.join(", ")
                ));
            }
        }
        Lookup::Unchecked(why) => warnings.push(format!(
            "tapwire did not check snapshot {:?}: {why}",
            spec.snapshot
        )),
        _ => {}
    }
    // Cleanup `all` deletes the workload: worth a word, never a refusal.
    if spec.cleanup == Some(Cleanup::All) {
        warnings.push(format!(
            "spec.cleanup: all deletes {kind} {ns}/{} when the replay ends",
            spec.workload.name
        ));
    }
    (problems, warnings)
}

/// Everything the server needs to answer the two webhooks.
#[derive(Clone, Default)]
pub struct WebhookContext {
    /// Where snapshots are looked up (`None`: snapshot checks are skipped
    /// with a warning).
    pub catalog: Option<Arc<dyn SnapshotCatalog + Send + Sync>>,
    /// The API server, for workload existence (`None`: skipped with a warning).
    pub client: Option<Client>,
}

impl std::fmt::Debug for WebhookContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookContext")
            .field("catalog", &self.catalog)
            .field("client", &self.client.is_some())
            .finish()
    }
}

impl WebhookContext {
    /// Answers a `POST /default-trafficreplay` body.
    pub fn default_review(&self, body: &[u8]) -> AdmissionResponse {
        match parse_review(body) {
            Ok(req) => default(&req),
            Err(resp) => *resp,
        }
    }

    /// Answers a `POST /validate-trafficreplay` body.
    pub async fn validate_review(&self, body: &[u8]) -> AdmissionResponse {
        let req = match parse_review(body) {
            Ok(r) => r,
            Err(resp) => return *resp,
        };
        let facts = prefetch(
            &req,
            self.catalog.as_deref().map(|c| c as _),
            self.client.as_ref(),
        )
        .await;
        let response = validate(&req, &facts);
        tracing::info!(
            namespace = req.namespace.as_deref().unwrap_or_default(),
            name = %req.name,
            operation = ?req.operation,
            allowed = response.allowed,
            dry_run = req.dry_run,
            "trafficreplay validation"
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_compact_and_nonzero() {
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("5 minutes"), None);
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn selectors() {
        for ok in ["*", "orders:payments.svc:8080", "orders:10.0.0.1:443"] {
            assert!(tapwire_model::is_selector(ok), "{ok}");
        }
        for bad in [
            "orders",
            "orders:8080",
            "orders:host:http",
            ":h:1",
            "o:*:1",
            "a:b:70000",
        ] {
            assert!(!tapwire_model::is_selector(bad), "{bad}");
        }
    }

    #[test]
    fn resolve_like_the_store() {
        let s = |id: &str, name: &str| SnapshotFacts {
            id: id.into(),
            name: name.into(),
            ..Default::default()
        };
        let all = vec![s("0190-aa", "orders"), s("0190-ab", "orders")];
        assert_eq!(
            resolve(&all, "0190-ab").map(|f| f.id),
            Some("0190-ab".into())
        );
        // An ambiguous prefix that is no name resolves to nothing.
        assert_eq!(resolve(&all, "0190-a"), None);
        assert_eq!(
            resolve(&all, "orders").map(|f| f.id),
            Some("0190-ab".into())
        );
        assert_eq!(resolve(&all, "nope"), None);
        assert_eq!(resolve(&all, ""), None);
    }
}

//! The mutating webhook's decision: a pure function from an
//! `AdmissionRequest` for a Pod (plus what the owner workload says) to an
//! `AdmissionResponse`. Talking to the API server happens around it, in
//! `cluster.rs` and `server.rs`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};

use crate::annotations::{self, Request};
use crate::inject::{self, Identity, InjectorConfig};

/// Namespaces the operator never touches, besides its own.
pub const EXCLUDED_NAMESPACES: [&str; 2] = ["kube-system", "kube-public"];

/// What the pod's owner workload contributes.
#[derive(Debug, Clone, Default)]
pub struct PodContext {
    /// Annotations of the owner chain (outermost first, so nearer owners win).
    pub workload_annotations: BTreeMap<String, String>,
    /// The outermost owner (Deployment, StatefulSet, ...), for Events and the service name.
    pub workload: Option<ObjectReference>,
    /// Why the owner could not be read, if it could not (reported as a warning).
    pub lookup_error: Option<String>,
}

/// What the webhook did, for metrics, logs and follow-up work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The sidecar was added (or re-added with new settings).
    Injected,
    /// Already injected with these settings: nothing to change.
    Unchanged,
    /// `inject: "false"` removed what tapwire had added.
    Removed,
    /// Not asked for, or in an excluded namespace, or not a CREATE.
    Skipped,
    /// Bad annotation values: admitted unchanged, with warnings.
    Invalid,
    /// Asked for, but not possible here (e.g. transparent on Autopilot): admitted unchanged, with warnings.
    Refused,
    /// The request itself was unusable.
    Error,
}

impl Outcome {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Injected => "injected",
            Self::Unchanged => "unchanged",
            Self::Removed => "removed",
            Self::Skipped => "skipped",
            Self::Invalid => "invalid",
            Self::Refused => "refused",
            Self::Error => "error",
        }
    }
}

/// The webhook's answer and what follows from it.
#[derive(Debug)]
pub struct Decision {
    /// The response to send (always `allowed: true`: tapwire never blocks a pod).
    pub response: AdmissionResponse,
    /// What happened.
    pub outcome: Outcome,
    /// Warnings also sent as an Event.
    pub warnings: Vec<String>,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name, or its generateName.
    pub pod_name: String,
}

/// Decides what to do with one pod admission.
pub fn mutate(
    req: &AdmissionRequest<Pod>,
    ctx: &PodContext,
    cfg: &InjectorConfig,
    own_namespace: &str,
) -> Decision {
    let namespace = req.namespace.clone().unwrap_or_default();
    let mut decision = Decision {
        response: AdmissionResponse::from(req),
        outcome: Outcome::Skipped,
        warnings: Vec::new(),
        namespace: namespace.clone(),
        pod_name: String::new(),
    };
    let Some(pod) = req.object.as_ref() else {
        decision.outcome = Outcome::Error;
        return decision;
    };
    decision.pod_name = pod
        .metadata
        .name
        .clone()
        .or_else(|| pod.metadata.generate_name.clone())
        .unwrap_or_default();
    if req.operation != Operation::Create
        || namespace == own_namespace
        || EXCLUDED_NAMESPACES.contains(&namespace.as_str())
    {
        return decision;
    }
    let mut merged = ctx.workload_annotations.clone();
    merged.extend(pod.metadata.annotations.clone().unwrap_or_default());
    let mut patched = pod.clone();
    match annotations::parse(&merged) {
        Request::Nothing => return decision,
        Request::Invalid(problems) => {
            decision.outcome = Outcome::Invalid;
            decision.warnings = problems
                .into_iter()
                .map(|p| format!("tapwire sidecar not injected: {p}"))
                .collect();
        }
        Request::Remove => {
            if inject::remove(&mut patched) {
                decision.outcome = Outcome::Removed;
            }
        }
        Request::Inject(spec) => {
            let id = Identity {
                service: spec
                    .service
                    .clone()
                    .unwrap_or_else(|| service_name(pod, ctx)),
            };
            match inject::inject(&mut patched, &spec, cfg, &id) {
                Ok(()) if patched == *pod => decision.outcome = Outcome::Unchanged,
                Ok(()) => decision.outcome = Outcome::Injected,
                Err(why) => {
                    decision.outcome = Outcome::Refused;
                    decision
                        .warnings
                        .push(format!("tapwire sidecar not injected: {why}"));
                }
            }
        }
    }
    if let Some(e) = &ctx.lookup_error {
        decision.warnings.push(format!(
            "tapwire could not read the pod's owner ({e}); only the pod's own annotations were used"
        ));
    }
    if !decision.warnings.is_empty() {
        decision.response.warnings = Some(decision.warnings.clone());
    }
    if matches!(decision.outcome, Outcome::Injected | Outcome::Removed) {
        let before = serde_json::to_value(pod);
        let after = serde_json::to_value(&patched);
        match (before, after) {
            (Ok(b), Ok(a)) => {
                let patch = json_patch::diff(&b, &a);
                match decision.response.clone().with_patch(patch) {
                    Ok(r) => decision.response = r,
                    Err(e) => {
                        decision.outcome = Outcome::Error;
                        decision
                            .warnings
                            .push(format!("tapwire could not encode its patch: {e}"));
                    }
                }
            }
            _ => decision.outcome = Outcome::Error,
        }
    }
    decision
}

/// The service name for captures: the app label, else the workload's name,
/// else the pod's generateName without its trailing dash.
fn service_name(pod: &Pod, ctx: &PodContext) -> String {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    for key in ["app.kubernetes.io/name", "app"] {
        if let Some(v) = labels.get(key).filter(|v| !v.is_empty()) {
            return v.clone();
        }
    }
    if let Some(name) = ctx.workload.as_ref().and_then(|w| w.name.clone()) {
        return name;
    }
    pod.metadata
        .name
        .clone()
        .or_else(|| {
            pod.metadata
                .generate_name
                .as_ref()
                .map(|g| g.trim_end_matches('-').to_owned())
        })
        .unwrap_or_else(|| "app".to_owned())
}

/// Parses an `AdmissionReview` body; an unusable one yields the response
/// that says why (still allowing: a broken request must not block pods).
pub fn parse_review(body: &[u8]) -> Result<AdmissionRequest<Pod>, Box<AdmissionResponse>> {
    let review: kube::core::admission::AdmissionReview<Pod> = serde_json::from_slice(body)
        .map_err(|e| {
            Box::new(AdmissionResponse::invalid(format!(
                "not an AdmissionReview for a Pod: {e}"
            )))
        })?;
    TryInto::<AdmissionRequest<Pod>>::try_into(review).map_err(|e| {
        Box::new(AdmissionResponse::invalid(format!(
            "the AdmissionReview has no request: {e}"
        )))
    })
}

/// The wire form of a response: an `AdmissionReview` whose `patch` is
/// base64 text, as the API specifies (kube-core serializes the bytes as a
/// JSON array of numbers, which Go's decoder happens to accept too).
pub fn encode_review(response: AdmissionResponse) -> Vec<u8> {
    use base64::Engine as _;
    let patch = response.patch.clone();
    let mut review = match serde_json::to_value(response.into_review()) {
        Ok(v) => v,
        Err(_) => return Vec::new(),
    };
    if let Some(p) = patch {
        review["response"]["patch"] =
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(p));
    }
    serde_json::to_vec(&review).unwrap_or_default()
}

//! An injected pod passes GKE Autopilot's admission rules
//! (`tapwire_autopilot`, the checker behind `tapwire autopilot check`) when
//! the operator runs with `--autopilot`, and fails them without it.

use k8s_openapi::api::core::v1::{Pod, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::core::admission::AdmissionRequest;
use tapwire_autopilot::{check, CheckOptions, Manifests, Violation};
use tapwire_operator::admission::{self, Outcome, PodContext};
use tapwire_operator::InjectorConfig;

const DEPLOYMENT_POD: &str = include_str!("fixtures/deployment-pod.json");

/// The recorded pod, with Autopilot-ready resources on the app's own
/// containers, so only what tapwire adds is on trial.
fn request() -> AdmissionRequest<Pod> {
    let mut req = admission::parse_review(DEPLOYMENT_POD.as_bytes()).expect("review");
    let fixed: std::collections::BTreeMap<String, Quantity> = [
        ("cpu", "250m"),
        ("memory", "256Mi"),
        ("ephemeral-storage", "100Mi"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Quantity(v.to_owned())))
    .collect();
    let spec = req
        .object
        .as_mut()
        .and_then(|p| p.spec.as_mut())
        .expect("spec");
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        c.resources = Some(ResourceRequirements {
            requests: Some(fixed.clone()),
            limits: Some(fixed.clone()),
            ..Default::default()
        });
    }
    req
}

fn injected(cfg: &InjectorConfig, annotations: &[(&str, &str)]) -> Pod {
    let req = request();
    let ctx = PodContext {
        workload_annotations: annotations
            .iter()
            .map(|(k, v)| (format!("sidecar.tapwire.dev/{k}"), (*v).to_owned()))
            .collect(),
        ..Default::default()
    };
    let d = admission::mutate(&req, &ctx, cfg, "tapwire");
    assert_eq!(d.outcome, Outcome::Injected, "{:?}", d.warnings);
    let mut doc = serde_json::to_value(req.object.as_ref().expect("pod")).expect("json");
    let patch: json_patch::Patch =
        serde_json::from_slice(d.response.patch.as_deref().expect("patch")).expect("patch");
    json_patch::patch(&mut doc, &patch).expect("applies");
    serde_json::from_value(doc).expect("pod")
}

fn violations(pod: &Pod, allow_net_admin: bool) -> Vec<Violation> {
    let text = serde_json::to_string(pod).expect("json");
    let manifests = Manifests::parse(&text).expect("parses");
    check(
        &manifests.workloads,
        &CheckOptions {
            allow_net_admin,
            ..Default::default()
        },
    )
}

#[test]
fn autopilot_injection_passes_the_checker() {
    let mut cfg = InjectorConfig::new("registry.example/tapwire:1");
    cfg.autopilot = true;
    let pod = injected(
        &cfg,
        &[
            ("inject", "true"),
            ("proxy-type", "dual"),
            ("tls-out", "true"),
            ("memory-limit", "1Gi"),
        ],
    );
    assert_eq!(violations(&pod, false), []);

    // Transparent on a cluster that allows NET_ADMIN.
    cfg.allow_net_admin = true;
    let pod = injected(&cfg, &[("inject", "true")]);
    assert_eq!(violations(&pod, true), []);
    // The same pod on a cluster that does not: the init container is named.
    let v = violations(&pod, false);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].container.as_deref(), Some("tapwire-init"));
    assert!(
        v[0].to_string()
            .contains("autogke-default-linux-capabilities")
            && v[0].message.contains("NET_ADMIN"),
        "{}",
        v[0]
    );
}

#[test]
fn without_autopilot_the_sidecar_fails_the_checker_as_expected() {
    let cfg = InjectorConfig::new("registry.example/tapwire:1");
    let pod = injected(&cfg, &[("inject", "true"), ("proxy-type", "dual")]);
    let v = violations(&pod, false);
    assert!(!v.is_empty());
    assert!(
        v.iter()
            .all(|v| v.container.as_deref() == Some("tapwire-proxy")),
        "{v:#?}"
    );
    assert!(
        v.iter()
            .any(|v| v.to_string().contains("autogke-pod-limit-constraints")),
        "{v:#?}"
    );
}

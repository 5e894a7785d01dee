//! The webhook decision on `AdmissionReview` JSON recorded from a real API
//! server (kube-local, Kubernetes 1.20): the Pod a ReplicaSet controller
//! creates for a Deployment whose template has its own init container.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::core::admission::AdmissionRequest;
use serde_json::Value;
use tapwire_operator::admission::{self, Outcome, PodContext};
use tapwire_operator::annotations::STATUS;
use tapwire_operator::inject::{InjectorConfig, INIT_CONTAINER, PROXY_CONTAINER};

const DEPLOYMENT_POD: &str = include_str!("fixtures/deployment-pod.json");
const REINVOKED_POD: &str = include_str!("fixtures/reinvoked-pod.json");

fn cfg() -> InjectorConfig {
    let mut c = InjectorConfig::new("registry.example/tapwire:1");
    c.forwarder_url = Some("http://tapwire-forwarder.tapwire.svc:4150".into());
    c
}

fn request(fixture: &str) -> AdmissionRequest<Pod> {
    admission::parse_review(fixture.as_bytes()).expect("recorded review parses")
}

fn ctx(annotations: &[(&str, &str)]) -> PodContext {
    PodContext {
        workload_annotations: annotations
            .iter()
            .map(|(k, v)| (format!("sidecar.tapwire.dev/{k}"), (*v).to_owned()))
            .collect(),
        ..Default::default()
    }
}

/// Applies the decision's patch to the request's object, as the API server does.
fn patched(req: &AdmissionRequest<Pod>, d: &admission::Decision) -> Pod {
    let mut doc = serde_json::to_value(req.object.as_ref().expect("object")).expect("json");
    if let Some(p) = &d.response.patch {
        let patch: json_patch::Patch = serde_json::from_slice(p).expect("patch is a JSON patch");
        json_patch::patch(&mut doc, &patch).expect("patch applies");
    }
    serde_json::from_value(doc).expect("still a pod")
}

fn names(cs: &[Container]) -> Vec<&str> {
    cs.iter().map(|c| c.name.as_str()).collect()
}

fn container<'a>(pod: &'a Pod, name: &str) -> &'a Container {
    let spec = pod.spec.as_ref().expect("spec");
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn args(c: &Container) -> String {
    c.args.clone().unwrap_or_default().join(" ")
}

fn resources(c: &Container) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let r = c.resources.clone().unwrap_or_default();
    let m =
        |q: Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            q.unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect()
        };
    (m(r.requests), m(r.limits))
}

#[test]
fn transparent_goes_after_the_workloads_own_init_containers() {
    let req = request(DEPLOYMENT_POD);
    let d = admission::mutate(&req, &ctx(&[("inject", "true")]), &cfg(), "tapwire");
    assert_eq!(d.outcome, Outcome::Injected);
    assert!(d.response.allowed);
    let pod = patched(&req, &d);
    let spec = pod.spec.as_ref().expect("spec");
    assert_eq!(
        names(spec.init_containers.as_deref().unwrap_or_default()),
        ["migrate", INIT_CONTAINER]
    );
    assert_eq!(names(&spec.containers), ["app", PROXY_CONTAINER]);
    let init = container(&pod, INIT_CONTAINER);
    assert_eq!(
        args(init),
        "init --proxy-uid 1477 --in-port 4143 --out-port 4140 --ignore-inbound-ports 4145"
    );
    let caps = init
        .security_context
        .clone()
        .and_then(|s| s.capabilities)
        .expect("caps");
    assert_eq!(
        caps.add,
        Some(vec!["NET_ADMIN".to_owned(), "NET_RAW".to_owned()])
    );
    let proxy = container(&pod, PROXY_CONTAINER);
    assert!(
        args(proxy).starts_with("proxy --mode transparent --proxy-protocol http --bind 0.0.0.0")
    );
    let sc = proxy.security_context.clone().expect("security context");
    assert_eq!(
        (sc.run_as_user, sc.run_as_non_root),
        (Some(1477), Some(true))
    );
    let env: Vec<_> = proxy
        .env
        .iter()
        .flatten()
        .map(|e| e.name.as_str())
        .collect();
    for want in [
        "TAPWIRE_SERVICE",
        "TAPWIRE_POD_NAMESPACE",
        "TAPWIRE_POD_NAME",
        "TAPWIRE_NODE_NAME",
        "TAPWIRE_FORWARDER_URL",
        "TAPWIRE_API_KEY",
    ] {
        assert!(env.contains(&want), "{want} missing from {env:?}");
    }
    // The service name comes from the pod's app label.
    let service = proxy
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "TAPWIRE_SERVICE")
        .expect("service");
    assert_eq!(service.value.as_deref(), Some("transparent"));
    // No tls-out: the CA is not mounted at all.
    assert!(!spec
        .volumes
        .iter()
        .flatten()
        .any(|v| v.name == "tapwire-ca"));
}

#[test]
fn insert_init_first_puts_tapwire_init_first() {
    let req = request(DEPLOYMENT_POD);
    let d = admission::mutate(
        &req,
        &ctx(&[("inject", "true"), ("insert-init-first", "true")]),
        &cfg(),
        "tapwire",
    );
    let pod = patched(&req, &d);
    let init = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.clone())
        .expect("init");
    assert_eq!(names(&init), [INIT_CONTAINER, "migrate"]);
}

#[test]
fn each_proxy_type_gets_its_listeners() {
    let req = request(DEPLOYMENT_POD);
    for (ty, has_init, want_in_args) in [
        ("dual", false, "--mode dual --proxy-protocol http"),
        ("reverse", false, "--mode reverse"),
        ("forward", false, "--mode forward"),
        ("transparent", true, "--mode transparent"),
    ] {
        let d = admission::mutate(
            &req,
            &ctx(&[
                ("inject", "true"),
                ("proxy-type", ty),
                ("proxy-port", "8080"),
            ]),
            &cfg(),
            "tapwire",
        );
        assert_eq!(d.outcome, Outcome::Injected, "{ty}");
        let pod = patched(&req, &d);
        let init = pod
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.clone())
            .unwrap_or_default();
        assert_eq!(
            init.iter().any(|c| c.name == INIT_CONTAINER),
            has_init,
            "{ty}"
        );
        let proxy = container(&pod, PROXY_CONTAINER);
        assert!(args(proxy).contains(want_in_args), "{ty}: {}", args(proxy));
        let reverse_target = args(proxy).contains("--app-host 127.0.0.1 --app-port 8080");
        assert_eq!(reverse_target, matches!(ty, "dual" | "reverse"), "{ty}");
        let ports: Vec<_> = proxy
            .ports
            .iter()
            .flatten()
            .filter_map(|p| p.name.clone())
            .collect();
        assert_eq!(
            ports.contains(&"tapwire-in".to_owned()),
            ty != "forward",
            "{ty}"
        );
        // App containers are not touched unless asked.
        let app = container(&pod, "app");
        assert!(app.env.is_none(), "{ty}");
    }
}

#[test]
fn proxy_and_trust_variables_are_opt_in_and_never_override_the_app() {
    let req = request(DEPLOYMENT_POD);
    let d = admission::mutate(
        &req,
        &ctx(&[
            ("inject", "true"),
            ("proxy-type", "dual"),
            ("proxy-env", "true"),
            ("tls-out", "true"),
            ("tls-trust-env", "true"),
        ]),
        &cfg(),
        "tapwire",
    );
    let pod = patched(&req, &d);
    let app = container(&pod, "app");
    let env: BTreeMap<_, _> = app
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.as_str(), e.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(env["HTTPS_PROXY"], "http://127.0.0.1:4140");
    assert_eq!(env["NO_PROXY"], "localhost,127.0.0.1,::1");
    assert_eq!(env["SSL_CERT_FILE"], "/etc/tapwire/trust/ca-bundle.crt");
    // The app mounts the certificate-only volume; the key never reaches it.
    let mounts: Vec<_> = app
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.name.as_str())
        .filter(|n| n.starts_with("tapwire"))
        .collect();
    assert_eq!(mounts, ["tapwire-ca-cert"]);
    let spec = pod.spec.as_ref().expect("spec");
    let trust = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "tapwire-ca-cert")
        .expect("trust volume");
    let keys: Vec<_> = trust
        .secret
        .as_ref()
        .and_then(|s| s.items.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.key)
        .collect();
    assert!(!keys.iter().any(|k| k.ends_with(".key")), "{keys:?}");
    // The sidecar has the key, for minting leaves.
    let proxy = container(&pod, PROXY_CONTAINER);
    assert!(args(proxy).contains("--tls-out"));
    assert!(proxy
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| m.name == "tapwire-ca"));
}

#[test]
fn reinvocation_does_not_inject_twice() {
    let req = request(DEPLOYMENT_POD);
    let c = ctx(&[("inject", "true"), ("tls-out", "true")]);
    let first = admission::mutate(&req, &c, &cfg(), "tapwire");
    let mut again = req.clone();
    again.object = Some(patched(&req, &first));
    let second = admission::mutate(&again, &c, &cfg(), "tapwire");
    assert_eq!(second.outcome, Outcome::Unchanged);
    assert!(second.response.patch.is_none());
}

#[test]
fn the_recorded_reinvocation_is_left_alone() {
    // The API server's second call in the kube-local run, with the sidecar
    // already in place (that run's workload asked for tls-out and used a
    // forwarder and cluster name; its settings hash is in the status).
    let req = request(REINVOKED_POD);
    let pod = req.object.clone().expect("object");
    assert!(pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(STATUS)));
    let mut c = cfg();
    c.image = "registry.example/tapwire@sha256:0000000000000000000000000000000000000000000000000000000000000000".into();
    c.cluster = Some("kube-local".into());
    let d = admission::mutate(
        &req,
        &ctx(&[("inject", "true"), ("tls-out", "true")]),
        &c,
        "tapwire",
    );
    assert_eq!(d.outcome, Outcome::Unchanged, "{:?}", d.warnings);
}

#[test]
fn changed_settings_reinject_cleanly() {
    let req = request(DEPLOYMENT_POD);
    let first = admission::mutate(&req, &ctx(&[("inject", "true")]), &cfg(), "tapwire");
    let mut again = req.clone();
    again.object = Some(patched(&req, &first));
    let d = admission::mutate(
        &again,
        &ctx(&[("inject", "true"), ("proxy-type", "dual")]),
        &cfg(),
        "tapwire",
    );
    assert_eq!(d.outcome, Outcome::Injected);
    let pod = patched(&again, &d);
    let spec = pod.spec.as_ref().expect("spec");
    assert_eq!(names(&spec.containers), ["app", PROXY_CONTAINER]);
    assert_eq!(
        names(spec.init_containers.as_deref().unwrap_or_default()),
        ["migrate"]
    );
}

#[test]
fn inject_false_removes_exactly_what_tapwire_added() {
    let req = request(DEPLOYMENT_POD);
    let original = req.object.clone().expect("object");
    let first = admission::mutate(
        &req,
        &ctx(&[
            ("inject", "true"),
            ("proxy-type", "dual"),
            ("proxy-env", "true"),
            ("tls-out", "true"),
            ("tls-trust-env", "true"),
        ]),
        &cfg(),
        "tapwire",
    );
    let mut injected = req.clone();
    injected.object = Some(patched(&req, &first));
    let d = admission::mutate(&injected, &ctx(&[("inject", "false")]), &cfg(), "tapwire");
    assert_eq!(d.outcome, Outcome::Removed);
    let restored = patched(&injected, &d);
    assert_eq!(
        serde_json::to_value(&restored).expect("json"),
        serde_json::to_value(&original).expect("json")
    );
    // Removal of a pod tapwire never touched changes nothing.
    let d = admission::mutate(&req, &ctx(&[("inject", "false")]), &cfg(), "tapwire");
    assert_eq!(d.outcome, Outcome::Skipped);
    assert!(d.response.patch.is_none());
}

#[test]
fn bad_values_admit_the_pod_unchanged_with_warnings() {
    let req = request(DEPLOYMENT_POD);
    let d = admission::mutate(
        &req,
        &ctx(&[
            ("inject", "true"),
            ("proxy-type", "sideways"),
            ("memory-limit", "lots"),
        ]),
        &cfg(),
        "tapwire",
    );
    assert_eq!(d.outcome, Outcome::Invalid);
    assert!(d.response.allowed);
    assert!(d.response.patch.is_none());
    let warnings = d.response.warnings.clone().unwrap_or_default().join("\n");
    assert!(
        warnings.contains("sidecar.tapwire.dev/proxy-type: \"sideways\" is not valid"),
        "{warnings}"
    );
    assert!(
        warnings.contains("sidecar.tapwire.dev/memory-limit: \"lots\""),
        "{warnings}"
    );
    // The wire form carries them for kubectl to print.
    let review = serde_json::to_value(d.response.into_review()).expect("json");
    assert!(review["response"]["warnings"]
        .as_array()
        .is_some_and(|w| w.len() == 2));
}

#[test]
fn pod_annotations_win_over_the_workloads() {
    let mut req = request(DEPLOYMENT_POD);
    let pod = req.object.as_mut().expect("object");
    pod.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert("sidecar.tapwire.dev/proxy-type".into(), "forward".into());
    let d = admission::mutate(
        &req,
        &ctx(&[("inject", "true"), ("proxy-type", "dual")]),
        &cfg(),
        "tapwire",
    );
    let pod = patched(&req, &d);
    assert!(args(container(&pod, PROXY_CONTAINER)).contains("--mode forward"));
}

#[test]
fn autopilot_equal_requests_and_limits_and_no_net_admin() {
    let req = request(DEPLOYMENT_POD);
    let mut c = cfg();
    c.autopilot = true;
    // Transparent needs NET_ADMIN: refused with a message that says what to do.
    let d = admission::mutate(&req, &ctx(&[("inject", "true")]), &c, "tapwire");
    assert_eq!(d.outcome, Outcome::Refused);
    assert!(d.response.patch.is_none());
    let w = d.warnings.join("\n");
    assert!(
        w.contains("allow-net-admin") && w.contains("proxy-type: dual"),
        "{w}"
    );

    let d = admission::mutate(
        &req,
        &ctx(&[
            ("inject", "true"),
            ("proxy-type", "dual"),
            ("cpu-limit", "2"),
        ]),
        &c,
        "tapwire",
    );
    assert_eq!(d.outcome, Outcome::Injected);
    let pod = patched(&req, &d);
    let (requests, limits) = resources(container(&pod, PROXY_CONTAINER));
    assert_eq!(requests, limits);
    assert_eq!(
        requests.get("cpu").map(String::as_str),
        Some("100m"),
        "requests win, as on Autopilot"
    );
    assert!(requests.contains_key("ephemeral-storage"));

    // On a cluster that allows NET_ADMIN, transparent works and stays equal.
    c.allow_net_admin = true;
    let d = admission::mutate(&req, &ctx(&[("inject", "true")]), &c, "tapwire");
    assert_eq!(d.outcome, Outcome::Injected);
    let pod = patched(&req, &d);
    for name in [PROXY_CONTAINER, INIT_CONTAINER] {
        let (requests, limits) = resources(container(&pod, name));
        assert_eq!(requests, limits, "{name}");
        assert_eq!(requests.len(), 3, "{name}: cpu, memory, ephemeral-storage");
    }
}

#[test]
fn without_autopilot_requests_and_limits_follow_annotations() {
    let req = request(DEPLOYMENT_POD);
    let d = admission::mutate(
        &req,
        &ctx(&[
            ("inject", "true"),
            ("cpu-limit", "2"),
            ("memory-request", "256Mi"),
        ]),
        &cfg(),
        "tapwire",
    );
    let pod = patched(&req, &d);
    let (requests, limits) = resources(container(&pod, PROXY_CONTAINER));
    assert_eq!(requests["memory"], "256Mi");
    assert_eq!(limits["cpu"], "2");
    assert_ne!(requests, limits);
}

#[test]
fn excluded_namespaces_and_other_operations_are_skipped() {
    for ns in ["kube-system", "tapwire"] {
        let mut req = request(DEPLOYMENT_POD);
        req.namespace = Some(ns.into());
        let d = admission::mutate(&req, &ctx(&[("inject", "true")]), &cfg(), "tapwire");
        assert_eq!(d.outcome, Outcome::Skipped, "{ns}");
    }
    let mut req = request(DEPLOYMENT_POD);
    req.operation = kube::core::admission::Operation::Update;
    let d = admission::mutate(&req, &ctx(&[("inject", "true")]), &cfg(), "tapwire");
    assert_eq!(d.outcome, Outcome::Skipped);
}

#[test]
fn unusable_reviews_get_a_clear_answer() {
    for body in [
        "",
        "{}",
        "not json",
        r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
    ] {
        let err = admission::parse_review(body.as_bytes()).expect_err(body);
        assert!(!err.allowed);
        assert!(
            err.result.message.contains("AdmissionReview"),
            "{}",
            err.result.message
        );
    }
    let mut v: Value = serde_json::from_str(DEPLOYMENT_POD).expect("json");
    v["request"]["object"]["spec"] = Value::String("nonsense".into());
    assert!(admission::parse_review(v.to_string().as_bytes()).is_err());
}

//! The TrafficReplay webhooks behind a real API server (kube-local,
//! Kubernetes 1.20): the CRD applied, the operator in-process with its
//! webhooks registered by URL, a file store holding snapshots. Bad replays
//! are refused by the API server with the webhook's message; a good one
//! comes back with its defaults filled in; and the replay controller runs a
//! replay those webhooks admitted, then restores the workload.
//!
//! Needs `KUBECONFIG` pointing at a kube-local cluster; skips without it
//! outside CI, fails in CI.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::{json, Value};
use tapwire_operator::replay::controller::{self, ControllerConfig};
use tapwire_operator::replay::crd::{Cleanup, Phase, ReplayMode, TrafficReplay};
use tapwire_operator::replay::webhook::{SnapshotCatalog, StoreCatalog};
use tapwire_operator::{certs, Cluster, InjectorConfig, OperatorConfig, SidecarSecret};

/// Writes a snapshot manifest where `SnapshotStore` looks for it.
fn write_snapshot(
    root: &std::path::Path,
    id: &str,
    name: &str,
    inbound: &[&str],
    outbound: &[&str],
) {
    let stats = |keys: &[&str]| -> Value {
        keys.iter()
            .map(|k| {
                (
                    (*k).to_owned(),
                    json!({"count": 3, "request_bytes": 10, "response_bytes": 20,
                           "latency_us": {"p50": 1, "p95": 2, "p99": 3, "max": 4},
                           "protocols": {"http1": 3}, "statuses": {"200": 3}}),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let manifest = json!({
        "v": 1, "id": id, "name": name,
        "created": "2026-01-01T00:00:00Z", "source": "file:///recording",
        "selection": {"service": "orders"}, "services": ["orders"],
        "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:01:00Z",
        "exchanges": 3 * (inbound.len() + outbound.len()),
        "inbound": stats(inbound), "outbound": stats(outbound), "bytes": 100
    });
    // The manifest must be one the store accepts.
    let _: tapwire_store::Manifest = serde_json::from_value(manifest.clone()).expect("manifest");
    let dir = root.join("snapshots").join(id);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).expect("write manifest");
}

fn replay(name: &str, spec: Value) -> TrafficReplay {
    serde_json::from_value(json!({
        "apiVersion": "tapwire.dev/v1alpha1",
        "kind": "TrafficReplay",
        "metadata": {"name": name},
        "spec": spec
    }))
    .expect("replay")
}

fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn api_server_defaults_and_refuses_traffic_replays() {
    if !tapwire_test_support::k8s::require_cluster() {
        return;
    }
    let client = Client::try_default().await.expect("kube client");
    let tag = format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let ns_name = format!("tapwire-replay-{tag}");
    let config_name = format!("tapwire-replay-{tag}");
    tapwire_test_support::k8s::install_crds(&client).await;

    let store = tempfile::tempdir().expect("tmp");
    let snap_id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    write_snapshot(
        store.path(),
        snap_id,
        "orders-friday",
        &["orders:orders:8080"],
        &["orders:payments.svc:443"],
    );
    write_snapshot(
        store.path(),
        "0193a1b2-c3d4-7e5f-8a9b-ffffffffffff",
        "outbound-only",
        &[],
        &["orders:payments.svc:443"],
    );
    let url = format!("file://{}", store.path().display());
    let catalog: Arc<dyn SnapshotCatalog + Send + Sync> =
        Arc::new(StoreCatalog::open(&url).expect("store"));

    let cert = certs::generate(&["127.0.0.1".to_owned()]).expect("cert");
    let ca_bundle = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(cert.ca_pem.as_bytes())
    };
    let running = tapwire_operator::start(
        OperatorConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            admin: None,
            namespace: "tapwire".into(),
            injector: InjectorConfig::new("registry.example/tapwire:1"),
            secret: SidecarSecret::default(),
            cert,
            webhook_configs: Vec::new(),
            snapshots: Some(catalog),
        },
        Some(Cluster::new(client.clone(), Duration::from_secs(2))),
    )
    .await
    .expect("operator starts");

    // What the chart renders, addressed by URL: kube-local has no Services.
    let rules = json!([{"apiGroups": ["tapwire.dev"], "apiVersions": ["v1alpha1"],
        "operations": ["CREATE", "UPDATE"], "resources": ["trafficreplays"], "scope": "Namespaced"}]);
    let selector = json!({"matchLabels": {"tapwire-replay-e2e": tag}});
    let mwc: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": config_name},
        "webhooks": [{
            "name": "default.trafficreplay.tapwire.dev",
            "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Fail", "timeoutSeconds": 10, "reinvocationPolicy": "Never",
            "clientConfig": {"url": format!("https://{}/default-trafficreplay", running.addr), "caBundle": ca_bundle},
            "rules": rules, "namespaceSelector": selector
        }]
    }))
    .expect("mwc");
    let vwc: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": config_name},
        "webhooks": [{
            "name": "validate.trafficreplay.tapwire.dev",
            "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Fail", "timeoutSeconds": 10,
            "clientConfig": {"url": format!("https://{}/validate-trafficreplay", running.addr), "caBundle": ca_bundle},
            "rules": rules, "namespaceSelector": selector
        }]
    }))
    .expect("vwc");
    let mwcs = Api::<MutatingWebhookConfiguration>::all(client.clone());
    let vwcs = Api::<ValidatingWebhookConfiguration>::all(client.clone());
    mwcs.create(&PostParams::default(), &mwc)
        .await
        .expect("create mwc");
    vwcs.create(&PostParams::default(), &vwc)
        .await
        .expect("create vwc");

    let namespaces = Api::<Namespace>::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": ns_name, "labels": {"tapwire-replay-e2e": tag}}
    }))
    .expect("ns");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create ns");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "orders"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "orders"}},
            "template": {"metadata": {"labels": {"app": "orders"}},
                "spec": {"containers": [{"name": "app", "image": "example/orders:1"}]}}}
    }))
    .expect("deployment");
    Api::<Deployment>::namespaced(client.clone(), &ns_name)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create deployment");
    let replays = Api::<TrafficReplay>::namespaced(client.clone(), &ns_name);

    // The API server picks webhook configurations up through an informer.
    let good = replay(
        "good",
        json!({"snapshot": "orders-friday", "workload": {"name": "orders"}}),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let created = loop {
        let got = replays
            .create(&PostParams::default(), &good)
            .await
            .expect("the good replay is admitted");
        if got.spec.mode.is_some() || Instant::now() > deadline {
            break got;
        }
        // Created before the webhooks were live: try again.
        replays
            .delete("good", &DeleteParams::default())
            .await
            .expect("delete");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let spec = &created.spec;
    assert_eq!(spec.mode, Some(ReplayMode::FullReplay));
    assert_eq!(spec.cleanup, Some(Cleanup::Inventory));
    assert_eq!(spec.timeout.as_deref(), Some("15m"));
    assert_eq!(spec.workload.kind.as_deref(), Some("Deployment"));
    assert_eq!(spec.workload.namespace.as_deref(), Some(ns_name.as_str()));
    assert_eq!(spec.mocks, Some(vec!["*".to_owned()]));
    assert_eq!(spec.tests, Some(vec!["*".to_owned()]));
    let test = spec.test.clone().expect("test defaulted");
    assert_eq!((test.vus, test.iterations), (Some(1), Some(1)));

    // Each bad replay is refused with a message naming its field.
    let bad: [(&str, Value, &str); 8] = [
        (
            "unknown-snapshot",
            json!({"snapshot": "no-such", "workload": {"name": "orders"}}),
            "spec.snapshot: no snapshot \"no-such\"",
        ),
        (
            "missing-workload",
            json!({"snapshot": snap_id, "workload": {"name": "ghost"}}),
            "does not exist",
        ),
        (
            "no-inbound",
            json!({"snapshot": "outbound-only", "workload": {"name": "orders"}}),
            "spec.mode: full-replay replays inbound traffic, but snapshot \"outbound-only\" has none",
        ),
        (
            "bad-timeout",
            json!({"snapshot": snap_id, "workload": {"name": "orders"}, "timeout": "5 minutes"}),
            "spec.timeout: \"5 minutes\" is not a duration; use 30s, 5m or 1h",
        ),
        (
            "bad-goal",
            json!({"snapshot": snap_id, "workload": {"name": "orders"}, "test": {"goals": ["latency.p99 200ms"]}}),
            "spec.test.goals[0]:",
        ),
        (
            "vus-and-rps",
            json!({"snapshot": snap_id, "workload": {"name": "orders"}, "test": {"vus": 2, "rps": 5.0}}),
            "spec.test: vus and rps are both set",
        ),
        (
            "bad-selector",
            json!({"snapshot": snap_id, "workload": {"name": "orders"}, "tests": ["orders"]}),
            "spec.tests[0]: \"orders\" is not a selector",
        ),
        (
            "bad-kind",
            json!({"snapshot": snap_id, "workload": {"name": "orders", "kind": "CronJob"}}),
            "spec.workload.kind: \"CronJob\"",
        ),
    ];
    for (name, spec, want) in bad {
        let err = replays
            .create(&PostParams::default(), &replay(name, spec))
            .await
            .expect_err(name);
        let msg = api_message(&err);
        assert!(
            msg.contains(want),
            "{name}: {msg:?} should contain {want:?}"
        );
        if let kube::Error::Api(s) = &err {
            assert_eq!(s.code, 422, "{name}: {s:?}");
        }
    }

    // Once the controller has started it, the spec is frozen.
    let status = Patch::Merge(json!({"status": {"phase": "Running"}}));
    replays
        .patch_status("good", &PatchParams::default(), &status)
        .await
        .expect("set phase");
    let err = replays
        .patch(
            "good",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"timeout": "30m"}})),
        )
        .await
        .expect_err("spec change after start");
    assert!(
        api_message(&err).contains("spec is immutable once a replay starts"),
        "{err}"
    );
    // Metadata still changes (finalizers, labels).
    replays
        .patch(
            "good",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"seen": "yes"}}})),
        )
        .await
        .expect("label change after start");

    // The controller runs a replay these webhooks admitted and defaulted.
    // The workload has no Service, so the replay fails once the rollout is
    // done; the workload comes back as it was, and status says why.
    replays
        .delete("good", &DeleteParams::default())
        .await
        .expect("delete the replay whose phase was set by hand");
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns_name);
    let original = deployments.get("orders").await.expect("get workload");
    replays
        .create(
            &PostParams::default(),
            &replay(
                "run",
                json!({"snapshot": "orders-friday", "workload": {"name": "orders"},
                       "mocks": ["orders:payments.svc:443"], "timeout": "30s"}),
            ),
        )
        .await
        .expect("the replay to run is admitted");
    let mut config = ControllerConfig::new("registry.example/tapwire:1", &url);
    config.poll = Duration::from_millis(500);
    config.watch_namespace = Some(ns_name.clone());
    let metrics = Arc::new(controller::ControllerMetrics::default());
    let kubelet = tokio::spawn(tapwire_test_support::k8s::make_pods_ready(Api::namespaced(
        client.clone(),
        &ns_name,
    )));
    let controller = tokio::spawn(controller::run(client.clone(), config, metrics.clone()));
    let (mut responder_args, mut routed) = (Vec::new(), false);
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let r = replays.get("run").await.expect("get replay");
        let phase = r.status.as_ref().and_then(|s| s.phase);
        if matches!(phase, Some(Phase::Failed | Phase::Complete)) {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "the replay did not finish: {:?}",
            r.status
        );
        if let Some(d) = deployments.get_opt("run-responder").await.expect("get") {
            responder_args = d
                .spec
                .and_then(|s| s.template.spec)
                .and_then(|s| s.containers.first().and_then(|c| c.args.clone()))
                .unwrap_or_default();
        }
        routed |= serde_json::to_string(&deployments.get("orders").await.expect("get").spec)
            .expect("json")
            .contains("run-responder");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let window = ["--key".to_owned(), "orders:payments.svc:443".to_owned()];
    assert!(
        responder_args.windows(2).any(|w| w == window),
        "the responder serves only spec.mocks: {responder_args:?}"
    );
    assert!(routed, "the workload was never routed to the responder");
    let status = done.status.clone().expect("status");
    assert_eq!(status.phase, Some(Phase::Failed));
    let message = status.message.clone().unwrap_or_default();
    assert!(message.contains("no Service in"), "{message}");
    let restored = deployments.get("orders").await.expect("get workload");
    assert_eq!(
        serde_json::to_value(restored.spec.as_ref().map(|s| &s.template)).expect("json"),
        serde_json::to_value(original.spec.as_ref().map(|s| &s.template)).expect("json"),
        "the workload's template is restored"
    );
    assert!(deployments
        .get_opt("run-responder")
        .await
        .expect("get")
        .is_none());
    assert_eq!(metrics.replays("Error"), 1);
    controller.abort();
    kubelet.abort();

    running.shutdown(Duration::from_secs(2)).await;
    let _ = mwcs.delete(&config_name, &DeleteParams::default()).await;
    let _ = vwcs.delete(&config_name, &DeleteParams::default()).await;
    let _ = namespaces.delete(&ns_name, &DeleteParams::default()).await;
}

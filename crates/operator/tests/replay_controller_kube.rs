//! The TrafficReplay controller against a real API server and controller
//! manager (`shared/tools/kube-local`). No kubelet runs there, so the test
//! marks the responder's and the workload's pods Ready itself; the
//! generator's pod never runs, the replay times out, and the workload must
//! come back exactly as it was.
//!
//! Needs `KUBECONFIG` pointing at a kube-local cluster (`.ci/run` starts
//! one); skips without it outside CI, fails in CI.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Namespace, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{json, Value};
use tapwire_operator::replay::controller::{self, ControllerConfig};
use tapwire_operator::replay::TrafficReplay;

fn template_of(d: &Deployment) -> Value {
    serde_json::to_value(&d.spec.as_ref().expect("spec").template).expect("json")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_that_times_out_restores_the_workload_on_a_real_api_server() {
    if !tapwire_test_support::k8s::require_cluster() {
        return;
    }
    let client = Client::try_default().await.expect("kube client");
    tapwire_test_support::k8s::install_crds(&client).await;
    let tag = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default()
    );
    let ns_name = format!("tw-replay-ctl-{tag}");
    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns_name}})).expect("ns"),
        )
        .await
        .expect("create namespace");

    // In a task, so that the namespace is deleted even when an assertion fails.
    let run = tokio::spawn({
        let (client, ns_name) = (client.clone(), ns_name.clone());
        async move {
            tokio::time::timeout(Duration::from_secs(120), scenario(&client, &ns_name))
                .await
                .expect("the scenario took over 120s");
        }
    });
    let result = run.await;
    // A replay left behind by a failed run would hold the namespace in
    // Terminating forever: no controller is left to run its finalizer.
    let replays = Api::<TrafficReplay>::namespaced(client.clone(), &ns_name);
    for r in replays
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
    {
        let release = json!({"metadata": {"finalizers": null}});
        let _ = replays
            .patch(
                &r.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&release),
            )
            .await;
    }
    if let Err(e) = namespaces
        .delete(&ns_name, &DeleteParams::background())
        .await
    {
        eprintln!("could not delete namespace {ns_name}: {e}");
    }
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn scenario(client: &Client, ns: &str) {
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    let original = deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "orders"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "orders"}},
                    "template": {"metadata": {"labels": {"app": "orders"}}, "spec": {"containers": [
                        {"name": "app", "image": "example/orders:1", "ports": [{"containerPort": 8080}],
                         "env": [{"name": "MODE", "value": "prod"}]}
                    ]}}
                }
            }))
            .expect("deployment"),
        )
        .await
        .expect("create workload");
    Api::<Service>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "orders"},
                "spec": {"selector": {"app": "orders"}, "ports": [{"port": 8080}]}
            }))
            .expect("service"),
        )
        .await
        .expect("create service");
    let replays = Api::<TrafficReplay>::namespaced(client.clone(), ns);
    replays
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "tapwire.dev/v1alpha1", "kind": "TrafficReplay",
                "metadata": {"name": "nightly"},
                "spec": {"snapshot": "snap-1", "workload": {"name": "orders"}, "timeout": "20s"}
            }))
            .expect("replay"),
        )
        .await
        .expect("create replay");

    let kubelet = tokio::spawn(tapwire_test_support::k8s::make_pods_ready(Api::namespaced(
        client.clone(),
        ns,
    )));
    let mut config = ControllerConfig::new("registry.example/tapwire:1", "gs://bucket/tapwire");
    config.autopilot = true;
    config.poll = Duration::from_secs(1);
    config.watch_namespace = Some(ns.to_owned());
    let metrics = std::sync::Arc::new(controller::ControllerMetrics::default());
    let operator = tokio::spawn(controller::run(client.clone(), config, metrics.clone()));

    // Watch it work: the responder, the routed workload, the generator.
    let (mut saw_responder, mut saw_routed, mut saw_job) = (false, false, false);
    let jobs = Api::<Job>::namespaced(client.clone(), ns);
    let done = loop {
        let r = replays.get("nightly").await.expect("get replay");
        let phase = r.status.as_ref().and_then(|s| s.phase);
        if matches!(
            phase,
            Some(tapwire_operator::replay::crd::Phase::Failed)
                | Some(tapwire_operator::replay::crd::Phase::Complete)
        ) {
            break r;
        }
        saw_responder |= deployments
            .get_opt("nightly-responder")
            .await
            .expect("get responder")
            .is_some_and(|d| {
                d.owner_references()
                    .iter()
                    .any(|o| o.kind == "TrafficReplay")
            });
        saw_routed |= template_of(&deployments.get("orders").await.expect("get workload"))
            .to_string()
            .contains("http://nightly-responder.");
        saw_job |= jobs
            .get_opt("nightly-generator")
            .await
            .expect("get job")
            .is_some();
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(saw_responder, "no responder Deployment owned by the replay");
    assert!(
        saw_routed,
        "the workload was never routed to the responder: {:?}",
        done.status
    );
    assert!(saw_job, "no generator Job");

    let status = done.status.clone().expect("status");
    assert_eq!(
        status.phase,
        Some(tapwire_operator::replay::crd::Phase::Failed)
    );
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready condition");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "Error")
    );
    let message = status.message.clone().unwrap_or_default();
    assert!(message.contains("timed out after 20s"), "{message}");
    assert!(status.finished_at.is_some());
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "MocksReady" && c.status == "True"),
        "{status:?}"
    );

    // Restored exactly, and what the replay created is gone.
    let restored = deployments.get("orders").await.expect("get workload");
    assert_eq!(template_of(&restored), template_of(&original));
    assert!(deployments
        .get_opt("nightly-responder")
        .await
        .expect("get")
        .is_none());
    assert!(Api::<Service>::namespaced(client.clone(), ns)
        .get_opt("nightly-responder")
        .await
        .expect("get")
        .is_none());

    // An Event says why.
    let events = Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default().fields("involvedObject.name=nightly"))
        .await
        .expect("events");
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Failed")
                && e.message.as_deref().unwrap_or("").contains("timed out")),
        "{:?}",
        events.items
    );

    // Counted by verdict.
    assert_eq!(metrics.replays("Error"), 1);
    assert_eq!(metrics.replays("Passed"), 0);

    // The finalizer lets go once the controller has seen the deletion.
    replays
        .delete("nightly", &DeleteParams::default())
        .await
        .expect("delete replay");
    let deadline = Instant::now() + Duration::from_secs(20);
    while replays.get_opt("nightly").await.expect("get").is_some() {
        assert!(Instant::now() < deadline, "the finalizer was not removed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    operator.abort();
    kubelet.abort();
}

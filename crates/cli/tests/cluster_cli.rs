//! `tapwire cluster replay|replays|report` against a real API server
//! (kube-local): the CLI creates TrafficReplays, follows them and exits
//! with their verdict. The controller's part (status) is played here by the
//! test, writing status the way the controller does (status subresource).
//!
//! Needs KUBECONFIG (`.ci/with-kube-local.sh` sets it); skips without it
//! outside CI, fails in CI.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_tapwire");

fn tapwire(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("tapwire runs")
}

/// Writes status as the controller does, once the resource exists.
async fn finish(client: Client, ns: String, name: String, reason: &'static str) {
    let api = Api::<tapwire_operator::replay::TrafficReplay>::namespaced(client, &ns);
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.get_opt(&name).await.expect("get").is_none() {
        assert!(Instant::now() < deadline, "{name} never created");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A moment in Running first, so --wait sees a phase change.
    let status = |phase: &str, done: bool| {
        let mut s = json!({"apiVersion": "tapwire.dev/v1alpha1", "kind": "TrafficReplay",
            "status": {"phase": phase, "message": format!("{phase} for the test")}});
        if done {
            s["status"]["conditions"] = json!([{"type": "Ready", "status": if reason == "Passed" {"True"} else {"False"},
                "reason": reason, "message": "from the test", "lastTransitionTime": "2026-12-01T00:00:00Z"}]);
            s["status"]["summary"] = json!({"requests": 40, "passRate": if reason == "Passed" {1.0} else {0.9},
                "p50Ms": 1.5, "p95Ms": 3.0, "p99Ms": 4.25, "mockAccuracy": 1.0});
            s["status"]["report"] = json!("s3://reports/shop/x/report.json");
        }
        s
    };
    let pp = PatchParams::apply("tapwire-operator").force();
    api.patch_status(&name, &pp, &Patch::Apply(status("Running", false)))
        .await
        .expect("status");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    api.patch_status(&name, &pp, &Patch::Apply(status("Complete", true)))
        .await
        .expect("status");
}

#[tokio::test(flavor = "multi_thread")]
async fn create_follow_list_and_report_replays() {
    if !tapwire_test_support::k8s::require_cluster() {
        return;
    }
    let client = Client::try_default().await.expect("client");
    tapwire_test_support::k8s::install_crds(&client).await;
    let ns = format!("tapwire-cli-{:x}", std::process::id());
    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("ns"),
        )
        .await
        .expect("create ns");

    // --wait follows the replay and exits 0 on Passed, 1 on MissedGoals.
    for (name, reason, code) in [("passes", "Passed", 0), ("misses", "MissedGoals", 1)] {
        let writer = tokio::spawn(finish(client.clone(), ns.clone(), name.into(), reason));
        let args = [
            "cluster",
            "replay",
            "orders",
            "--snapshot",
            "orders-snap",
            "-n",
            &ns,
            "--name",
            name,
            "--vus",
            "2",
            "--fail-if",
            "latency.p99 > 200ms",
            "--wait",
            "--wait-timeout",
            "60s",
        ]
        .map(str::to_owned);
        let out = tokio::task::spawn_blocking(move || {
            tapwire(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await
        .expect("cli");
        writer.await.expect("status writer");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{name}: {stdout}\n{stderr}");
        assert!(
            stderr.contains(&format!("trafficreplay.tapwire.dev/{name} created")),
            "{stderr}"
        );
        assert!(
            stdout.contains(&format!(
                "condition Ready={} ({reason})",
                if code == 0 { "True" } else { "False" }
            )),
            "{stdout}"
        );
        assert!(
            stdout.contains("p99 4.2 ms") || stdout.contains("p99 4.3 ms"),
            "{stdout}"
        );
        assert!(
            stdout.contains("report: s3://reports/shop/x/report.json"),
            "{stdout}"
        );
    }

    // The spec the CLI wrote is the one the flags asked for.
    let api = Api::<tapwire_operator::replay::TrafficReplay>::namespaced(client.clone(), &ns);
    let r = api.get("passes").await.expect("get");
    let test = r.spec.test.clone().expect("test");
    assert_eq!(
        (test.vus, test.goals.clone()),
        (Some(2), vec!["latency.p99 > 200ms".to_owned()])
    );
    assert_eq!(r.spec.workload.namespace.as_deref(), Some(ns.as_str()));

    // replays lists both; report prints one and exits with its verdict.
    let out = tapwire(&["cluster", "replays", "-n", &ns]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        table.contains("passes") && table.contains("misses") && table.contains("Complete"),
        "{table}"
    );
    assert!(
        table.contains("100.00%") && table.contains("90.00%"),
        "{table}"
    );
    let out = tapwire(&["cluster", "report", "misses", "-n", &ns]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("pass rate 90.00%"));
    let out = tapwire(&["cluster", "report", "nope", "-n", &ns]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no TrafficReplay nope in namespace"));

    // A created replay without --wait returns at once and says how to follow it.
    let out = tapwire(&["cluster", "replay", "orders", "--snapshot", "s", "-n", &ns]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("follow it with: tapwire cluster report orders-replay-"));

    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
}

#[test]
fn without_a_cluster_the_error_says_what_to_do() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new(BIN)
        .args(["cluster", "replays"])
        .env("KUBECONFIG", dir.path().join("missing"))
        .env("HOME", dir.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no cluster configured"), "{err}");
}

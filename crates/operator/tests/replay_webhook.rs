//! The TrafficReplay webhooks' decisions on `AdmissionReview` JSON recorded
//! from a real API server (kube-local, Kubernetes 1.20; see
//! `replay_webhook_kube.rs`, which produced them). The validating fixtures
//! carry the spec as the defaulting webhook left it.

use json_patch::Patch;
use kube::core::admission::{AdmissionRequest, AdmissionResponse};
use serde_json::{json, Value};
use tapwire_operator::replay::crd::TrafficReplay;
use tapwire_operator::replay::webhook::{
    self, Facts, Lookup, SnapshotCatalog, SnapshotFacts, StaticCatalog,
};

const SNAP_ID: &str = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/replay-{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn request(name: &str) -> AdmissionRequest<TrafficReplay> {
    webhook::parse_review(fixture(name).as_bytes()).expect("recorded review parses")
}

/// The recorded review with its object's spec changed by `edit`.
fn edited(name: &str, edit: impl FnOnce(&mut Value)) -> AdmissionRequest<TrafficReplay> {
    let mut review: Value = serde_json::from_str(&fixture(name)).expect("json");
    edit(&mut review["request"]["object"]["spec"]);
    webhook::parse_review(review.to_string().as_bytes()).expect("edited review parses")
}

/// What the store in `replay_webhook_kube.rs` holds.
fn catalog() -> StaticCatalog {
    let keys = |ks: &[&str]| ks.iter().map(|k| ((*k).to_owned(), 3)).collect();
    StaticCatalog(vec![
        SnapshotFacts {
            id: SNAP_ID.into(),
            name: "orders-friday".into(),
            inbound: keys(&["orders:orders:8080"]),
            outbound: keys(&["orders:payments.svc:443"]),
        },
        SnapshotFacts {
            id: "0193a1b2-c3d4-7e5f-8a9b-ffffffffffff".into(),
            name: "outbound-only".into(),
            inbound: keys(&[]),
            outbound: keys(&["orders:payments.svc:443"]),
        },
    ])
}

fn facts(req: &AdmissionRequest<TrafficReplay>, workload_exists: bool) -> Facts {
    let spec = &req.object.as_ref().expect("object").spec;
    Facts::from_catalog(&catalog(), spec, workload_exists)
}

fn validate(req: &AdmissionRequest<TrafficReplay>) -> AdmissionResponse {
    webhook::validate(req, &facts(req, true))
}

#[track_caller]
fn assert_refused(resp: &AdmissionResponse, want: &str) {
    assert!(!resp.allowed, "should be refused: {resp:?}");
    assert_eq!(resp.result.code, 422);
    assert!(
        resp.result.message.contains(want),
        "{:?} should contain {want:?}",
        resp.result.message
    );
}

/// Applies the response's patch to the request's object, as the API server does.
fn patched(req: &AdmissionRequest<TrafficReplay>, resp: &AdmissionResponse) -> TrafficReplay {
    let mut doc = serde_json::to_value(req.object.as_ref().expect("object")).expect("json");
    if let Some(p) = &resp.patch {
        let patch: Patch = serde_json::from_slice(p).expect("a JSON patch");
        json_patch::patch(&mut doc, &patch).expect("patch applies");
    }
    serde_json::from_value(doc).expect("still a TrafficReplay")
}

#[test]
fn defaults_fill_what_the_spec_leaves_out() {
    let req = request("create-raw");
    let resp = webhook::default(&req);
    assert!(resp.allowed);
    let got = patched(&req, &resp);
    // What the real API server stored after this webhook ran.
    let stored = request("create").object.expect("object");
    assert_eq!(got.spec, stored.spec);
    let spec = serde_json::to_value(&got.spec).expect("json");
    assert_eq!(
        spec,
        json!({
            "snapshot": "orders-friday",
            "workload": {"kind": "Deployment", "name": "orders", "namespace": req.namespace.clone().expect("ns")},
            "mode": "full-replay",
            "test": {"vus": 1, "iterations": 1},
            "mocks": ["*"],
            "tests": ["*"],
            "cleanup": "inventory",
            "timeout": "15m"
        })
    );
}

#[test]
fn defaulting_is_idempotent() {
    let req = request("create");
    let resp = webhook::default(&req);
    assert!(resp.allowed);
    assert!(resp.patch.is_none(), "a defaulted spec needs no patch");
}

#[test]
fn defaults_keep_what_the_user_chose() {
    let req = edited("create-raw", |s| {
        s["mode"] = json!("responder-only");
        s["timeout"] = json!("1h");
        s["workload"]["namespace"] = json!("shop");
        s["workload"]["kind"] = json!("StatefulSet");
    });
    let got = patched(&req, &webhook::default(&req));
    assert_eq!(got.spec.timeout.as_deref(), Some("1h"));
    assert_eq!(got.spec.workload.namespace.as_deref(), Some("shop"));
    assert_eq!(got.spec.workload.kind.as_deref(), Some("StatefulSet"));
    // No generator runs: no load shape is invented.
    assert_eq!(got.spec.test, None);

    let req = edited("create-raw", |s| {
        s["test"] = json!({"rps": 20.0, "duration": "1m"})
    });
    let test = patched(&req, &webhook::default(&req))
        .spec
        .test
        .expect("test");
    assert_eq!((test.vus, test.iterations), (None, None));
    let req = edited("create-raw", |s| {
        s["test"] = json!({"stages": [{"duration": "30s", "target": 5.0}]})
    });
    let test = patched(&req, &webhook::default(&req))
        .spec
        .test
        .expect("test");
    assert_eq!((test.vus, test.iterations), (None, None));
    let req = edited("create-raw", |s| s["test"] = json!({"vus": 4}));
    let test = patched(&req, &webhook::default(&req))
        .spec
        .test
        .expect("test");
    assert_eq!((test.vus, test.iterations), (Some(4), Some(1)));
}

#[test]
fn a_good_replay_is_admitted() {
    let resp = validate(&request("create"));
    assert!(resp.allowed, "{resp:?}");
    assert_eq!(resp.warnings, None);
}

#[test]
fn selected_tests_are_admitted_when_they_match() {
    let req = edited("create", |s| s["tests"] = json!(["orders:orders:8080"]));
    assert!(validate(&req).allowed);
}

#[test]
fn unknown_snapshot() {
    assert_refused(
        &validate(&request("create-unknown-snapshot")),
        "spec.snapshot: no snapshot \"no-such\" in the store",
    );
}

#[test]
fn missing_workload() {
    let req = request("create-missing-workload");
    let ns = req.namespace.clone().expect("ns");
    assert_refused(
        &webhook::validate(&req, &facts(&req, false)),
        &format!("spec.workload: Deployment {ns}/ghost does not exist"),
    );
}

#[test]
fn generator_modes_need_inbound_traffic() {
    assert_refused(
        &validate(&request("create-no-inbound")),
        "spec.mode: full-replay replays inbound traffic, but snapshot \"outbound-only\" has none",
    );
    let req = edited("create-no-inbound", |s| s["mode"] = json!("generator-only"));
    assert_refused(&validate(&req), "spec.mode: generator-only replays inbound");
    // The responder alone needs no inbound traffic.
    let req = edited("create-no-inbound", |s| s["mode"] = json!("responder-only"));
    assert!(validate(&req).allowed);
}

#[test]
fn test_selectors_must_match_inbound_traffic() {
    let req = edited("create", |s| s["tests"] = json!(["orders:orders:9090"]));
    assert_refused(
        &validate(&req),
        "spec.tests: no inbound traffic of snapshot \"orders-friday\" matches [\"orders:orders:9090\"]; it has orders:orders:8080",
    );
}

#[test]
fn malformed_timeout() {
    assert_refused(
        &validate(&request("create-bad-timeout")),
        "spec.timeout: \"5 minutes\" is not a duration; use 30s, 5m or 1h",
    );
}

#[test]
fn malformed_test_and_stage_durations() {
    let req = edited("create", |s| {
        s["test"] = json!({"duration": "forever",
            "stages": [{"duration": "30s", "target": 5.0}, {"duration": "1 min", "target": 0.0}]})
    });
    let resp = validate(&req);
    assert_refused(&resp, "spec.test.duration: \"forever\" is not a duration");
    assert_refused(
        &resp,
        "spec.test.stages[1].duration: \"1 min\" is not a duration",
    );
    assert!(!resp.result.message.contains("stages[0]"));
}

#[test]
fn malformed_goal() {
    assert_refused(
        &validate(&request("create-bad-goal")),
        "spec.test.goals[0]:",
    );
    let req = edited("create", |s| {
        s["test"]["goals"] = json!(["latency.p99 > 200ms", "speed > 3"])
    });
    let resp = validate(&req);
    assert_refused(&resp, "spec.test.goals[1]:");
    assert!(!resp.result.message.contains("goals[0]"));
}

#[test]
fn vus_and_rps_together() {
    assert_refused(
        &validate(&request("create-vus-and-rps")),
        "spec.test: vus and rps are both set",
    );
}

#[test]
fn rps_must_be_positive() {
    for rps in [0.0, -3.0] {
        let req = edited("create", |s| {
            s["test"] = json!({"rps": rps, "iterations": 1})
        });
        assert_refused(&validate(&req), "spec.test.rps:");
    }
}

#[test]
fn malformed_selector() {
    assert_refused(
        &validate(&request("create-bad-selector")),
        "spec.tests[0]: \"orders\" is not a selector; use service:host:port",
    );
    let req = edited("create", |s| s["mocks"] = json!(["*", "payments:443"]));
    assert_refused(
        &validate(&req),
        "spec.mocks[1]: \"payments:443\" is not a selector",
    );
}

#[test]
fn unknown_workload_kind() {
    assert_refused(
        &validate(&request("create-bad-kind")),
        "spec.workload.kind: \"CronJob\" is not a workload tapwire replays against",
    );
}

#[test]
fn several_problems_are_reported_together() {
    let req = edited("create", |s| {
        s["timeout"] = json!("soon");
        s["test"] = json!({"vus": 2, "rps": 1.0});
        s["tests"] = json!(["x"]);
    });
    let resp = validate(&req);
    for want in ["spec.timeout:", "spec.test: vus and rps", "spec.tests[0]:"] {
        assert_refused(&resp, want);
    }
    assert!(
        resp.result.message.contains("(3) "),
        "{}",
        resp.result.message
    );
    assert!(!resp.result.message.contains("(4) "));
}

#[test]
fn spec_is_immutable_once_started() {
    assert_refused(
        &validate(&request("update-started")),
        "spec is immutable once a replay starts; create a new TrafficReplay",
    );
}

#[test]
fn spec_may_change_while_pending() {
    let mut review: Value = serde_json::from_str(&fixture("update-started")).expect("json");
    review["request"]["oldObject"]["status"] = json!({"phase": "Pending"});
    let req = webhook::parse_review(review.to_string().as_bytes()).expect("parses");
    assert!(validate(&req).allowed);
}

#[test]
fn metadata_changes_after_start_are_admitted_unchecked() {
    let req = request("update-labels");
    // Even with the snapshot gone since: finalizers must still come off.
    let gone = Facts {
        snapshot: Lookup::Missing,
        workload: Lookup::Missing,
    };
    assert!(webhook::validate(&req, &gone).allowed);
}

#[test]
fn without_a_catalog_snapshot_checks_are_skipped_with_a_warning() {
    let req = request("create-unknown-snapshot");
    let resp = webhook::validate(&req, &Facts::default());
    assert!(resp.allowed, "{resp:?}");
    let warnings = resp.warnings.unwrap_or_default().join("\n");
    assert!(
        warnings.contains("did not check snapshot \"no-such\""),
        "{warnings}"
    );
}

#[test]
fn store_catalog_reads_manifests() {
    // The recorded manifests of `replay_webhook_kube.rs`, through the real store.
    let dir = tempfile::tempdir().expect("tmp");
    let manifest = json!({
        "v": 1, "id": SNAP_ID, "name": "orders-friday",
        "created": "2026-01-01T00:00:00Z", "source": "file:///recording",
        "selection": {}, "services": ["orders"],
        "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:01:00Z",
        "exchanges": 2, "bytes": 1,
        "inbound": {"orders:orders:8080": {"count": 2, "request_bytes": 0, "response_bytes": 0,
            "latency_us": {"p50": 1, "p95": 1, "p99": 1, "max": 1}, "protocols": {}, "statuses": {}}},
        "outbound": {}
    });
    let snap_dir = dir.path().join("snapshots").join(SNAP_ID);
    std::fs::create_dir_all(&snap_dir).expect("mkdir");
    std::fs::write(snap_dir.join("manifest.json"), manifest.to_string()).expect("write");
    let catalog =
        webhook::StoreCatalog::open(&format!("file://{}", dir.path().display())).expect("store");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    assert_eq!(
        catalog.snapshot("orders-friday"),
        None,
        "nothing before refresh"
    );
    rt.block_on(catalog.refresh()).expect("refresh");
    let got = catalog.snapshot("orders-friday").expect("by name");
    assert_eq!(got.id, SNAP_ID);
    assert_eq!(got.inbound.get("orders:orders:8080"), Some(&2));
    assert_eq!(
        catalog.snapshot("0193a1b2").map(|s| s.id),
        Some(SNAP_ID.into())
    );
}

#[test]
fn unusable_reviews_are_refused_with_a_reason() {
    let err = webhook::parse_review(b"{}").expect_err("not a review");
    assert!(!err.allowed);
    assert!(err.result.message.contains("TrafficReplay"));
}

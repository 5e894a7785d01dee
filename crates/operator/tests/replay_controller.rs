//! The TrafficReplay controller against a mock API server (`tower_test`):
//! each test calls `reconcile` once for one phase, scripts the requests it
//! expects in order, and checks what the controller sent.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::Client;
use serde_json::{json, Value};
use tapwire_operator::replay::controller::{
    reconcile, Context, ControllerConfig, FINALIZER, SAVED_SPEC,
};
use tapwire_operator::replay::TrafficReplay;
use tower_test::mock;

const REPLAYS: &str = "/apis/tapwire.dev/v1alpha1/namespaces/shop/trafficreplays/nightly";
const ORDERS: &str = "/apis/apps/v1/namespaces/shop/deployments/orders";
const RESPONDER: &str = "/apis/apps/v1/namespaces/shop/deployments/nightly-responder";
const RESPONDER_SVC: &str = "/api/v1/namespaces/shop/services/nightly-responder";
const JOB: &str = "/apis/batch/v1/namespaces/shop/jobs/nightly-generator";
const EVENTS: &str = "/api/v1/namespaces/shop/events";

/// One expected request: method, path (without the query), and the answer.
struct Expect(Method, &'static str, StatusCode, Value);

/// A request the controller made: its path with query, and its JSON body.
#[derive(Debug)]
struct Seen {
    uri: String,
    body: Value,
}

fn template() -> Value {
    json!({
        "metadata": {"labels": {"app": "orders"}},
        "spec": {"containers": [{"name": "app", "image": "example/orders:1", "ports": [{"containerPort": 8080}]}]}
    })
}

fn workload(status: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "orders", "namespace": "shop", "uid": "uid-orders", "generation": 2},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "orders"}}, "template": template()},
        "status": status,
    })
}

fn replay(status: Value, extra_meta: Value) -> Value {
    let mut meta = json!({
        "name": "nightly", "namespace": "shop", "uid": "uid-nightly", "generation": 1,
        "finalizers": [FINALIZER],
        "annotations": {SAVED_SPEC: template().to_string()},
    });
    if let (Some(m), Some(extra)) = (meta.as_object_mut(), extra_meta.as_object()) {
        for (k, v) in extra {
            m.insert(k.clone(), v.clone());
        }
    }
    json!({
        "apiVersion": "tapwire.dev/v1alpha1", "kind": "TrafficReplay",
        "metadata": meta,
        "spec": {"snapshot": "snap-1", "workload": {"name": "orders"}, "timeout": "20s",
                 "test": {"vus": 2, "goals": ["latency.p99 > 200ms"]}},
        "status": status,
    })
}

fn started_now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})
}

fn config() -> ControllerConfig {
    config_with_store("gs://bucket/tapwire")
}

fn config_with_store(store: &str) -> ControllerConfig {
    let mut c = ControllerConfig::new("registry.example/tapwire:1", store);
    c.autopilot = true;
    c
}

/// Runs one reconcile of `object` against the script; returns its result
/// and what was sent.
async fn run(object: Value, script: Vec<Expect>) -> (Action, Vec<Seen>) {
    run_with(config(), object, script).await
}

/// [`run`] with the given controller settings.
async fn run_with(
    config: ControllerConfig,
    object: Value,
    script: Vec<Expect>,
) -> (Action, Vec<Seen>) {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        for Expect(method, path, status, answer) in script {
            let (req, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
                .await
                .unwrap_or_else(|_| panic!("no request; expected {method} {path}"))
                .expect("the controller made no request");
            let uri = req.uri().to_string();
            assert_eq!(
                (req.method(), uri.split('?').next().unwrap_or_default()),
                (&method, path),
                "unexpected request (full uri {uri})"
            );
            let bytes = req.into_body().collect_bytes().await.expect("body");
            let body = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).expect("request body is JSON")
            };
            send.send_response(
                Response::builder()
                    .status(status)
                    .body(Body::from(match &answer {
                        // A pod log is plain text.
                        Value::String(text) => text.clone().into_bytes(),
                        other => serde_json::to_vec(other).expect("json"),
                    }))
                    .expect("response"),
            );
            seen.push(Seen { uri, body });
        }
        // Nothing more is asked for.
        let extra = tokio::time::timeout(Duration::from_millis(200), handle.next_request()).await;
        if let Ok(Some((req, _))) = extra {
            panic!("unexpected extra request {} {}", req.method(), req.uri());
        }
        seen
    });
    let replay: TrafficReplay = serde_json::from_value(object).expect("replay");
    let ctx = Arc::new(Context::new(client, config));
    let action = reconcile(Arc::new(replay), ctx).await.expect("reconcile");
    (action, server.await.expect("server script"))
}

fn status_of(seen: &Seen) -> &Value {
    assert!(
        seen.uri.contains("/status?") && seen.uri.contains("fieldManager=tapwire-operator"),
        "{}",
        seen.uri
    );
    assert!(seen.uri.contains("force=true"), "{}", seen.uri);
    &seen.body["status"]
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

fn env_of(template: &Value, name: &str) -> Option<String> {
    template["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn a_new_replay_gets_the_finalizer_first() {
    let mut object = replay(Value::Null, json!({}));
    object["metadata"]["finalizers"] = Value::Null;
    let (_, seen) = run(
        object.clone(),
        vec![Expect(Method::PATCH, REPLAYS, StatusCode::OK, object)],
    )
    .await;
    let ops = seen[0].body.to_string();
    assert!(ops.contains(FINALIZER), "{ops}");
}

#[tokio::test]
async fn pending_saves_the_template_before_changing_anything() {
    let mut object = replay(Value::Null, json!({}));
    object["metadata"]["annotations"] = json!({});
    let (_, seen) = run(
        object.clone(),
        vec![
            Expect(Method::GET, ORDERS, StatusCode::OK, workload(json!({}))),
            Expect(Method::PATCH, REPLAYS, StatusCode::OK, object.clone()),
            Expect(Method::PATCH, STATUS, StatusCode::OK, object),
        ],
    )
    .await;
    let saved: Value = serde_json::from_str(
        seen[1].body["metadata"]["annotations"][SAVED_SPEC]
            .as_str()
            .expect("saved spec"),
    )
    .expect("json");
    assert_eq!(saved, template());
    let status = status_of(&seen[2]);
    assert_eq!(status["phase"], "StartingMocks");
    assert!(status["startedAt"].is_string(), "{status}");
}

#[tokio::test]
async fn a_missing_workload_fails_without_touching_anything() {
    let object = replay(Value::Null, json!({}));
    let (_, seen) = run(
        object.clone(),
        vec![
            Expect(Method::GET, ORDERS, StatusCode::NOT_FOUND, not_found()),
            Expect(Method::PATCH, STATUS, StatusCode::OK, object),
        ],
    )
    .await;
    let status = status_of(&seen[1]);
    assert_eq!(status["phase"], "CleaningUp");
    let ready = condition(status, "Ready");
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&json!("False"), &json!("Error"))
    );
    assert!(ready["message"]
        .as_str()
        .unwrap_or("")
        .contains("not found"));
}

const STATUS: &str = "/apis/tapwire.dev/v1alpha1/namespaces/shop/trafficreplays/nightly/status";

#[tokio::test]
async fn starting_mocks_creates_the_responder_and_routes_the_workload() {
    let object = replay(
        json!({"phase": "StartingMocks", "startedAt": started_now()}),
        json!({}),
    );
    let (_, seen) = run(
        object.clone(),
        vec![
            Expect(
                Method::PATCH,
                RESPONDER,
                StatusCode::OK,
                json!({"metadata": {"name": "nightly-responder"}, "status": {"availableReplicas": 1}}),
            ),
            Expect(Method::PATCH, RESPONDER_SVC, StatusCode::OK, json!({"metadata": {"name": "nightly-responder"}})),
            Expect(Method::PATCH, ORDERS, StatusCode::OK, workload(json!({}))),
            Expect(Method::PATCH, STATUS, StatusCode::OK, object),
        ],
    )
    .await;
    // The responder: applied, owned by the replay, a forward proxy on 0.0.0.0.
    assert!(
        seen[0].uri.contains("fieldManager=tapwire-operator"),
        "{}",
        seen[0].uri
    );
    let d = &seen[0].body;
    assert_eq!(d["kind"], "Deployment");
    let owner = &d["metadata"]["ownerReferences"][0];
    assert_eq!(
        (&owner["kind"], &owner["uid"]),
        (&json!("TrafficReplay"), &json!("uid-nightly"))
    );
    assert_eq!(d["metadata"]["labels"]["tapwire.dev/replay"], "nightly");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    let args = args_of(d);
    for want in [
        &["mock", "--snapshot", "snap-1"][..],
        &["--store", "gs://bucket/tapwire"],
        &["--bind", "0.0.0.0", "--port", "4140"],
    ] {
        assert!(has(&args, want), "{want:?} not in {args:?}");
    }
    // Autopilot: requests equal limits, ephemeral-storage included.
    let r = &c["resources"];
    assert_eq!(r["requests"], r["limits"]);
    assert!(r["requests"]["ephemeral-storage"].is_string(), "{r}");
    assert_eq!(seen[1].body["kind"], "Service");
    assert_eq!(seen[1].body["spec"]["ports"][0]["port"], 4140);
    // The workload: its template replaced by the routed one.
    let ops = seen[2].body.as_array().expect("json patch");
    assert_eq!(
        (&ops[0]["op"], &ops[0]["path"]),
        (&json!("replace"), &json!("/spec/template"))
    );
    let t = &ops[0]["value"];
    assert_eq!(
        env_of(t, "HTTPS_PROXY").as_deref(),
        Some("http://nightly-responder.shop.svc:4140")
    );
    assert_eq!(
        env_of(t, "SSL_CERT_FILE").as_deref(),
        Some("/etc/tapwire/trust/ca-bundle.crt")
    );
    assert_eq!(
        t["spec"]["volumes"][0]["secret"]["secretName"],
        "tapwire-sidecar"
    );
    let status = status_of(&seen[3]);
    assert_eq!(status["phase"], "WaitingForWorkload");
    assert_eq!(condition(status, "MocksReady")["status"], "True");
}

#[tokio::test]
async fn the_rollout_gates_the_generator() {
    let object = replay(
        json!({"phase": "WaitingForWorkload", "startedAt": started_now()}),
        json!({}),
    );
    // Not rolled out: nothing written.
    let (action, _) = run(
        object.clone(),
        vec![Expect(
            Method::GET,
            ORDERS,
            StatusCode::OK,
            workload(json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0})),
        )],
    )
    .await;
    assert_ne!(action, Action::await_change());
    let (_, seen) = run(
        object.clone(),
        vec![
            Expect(
                Method::GET,
                ORDERS,
                StatusCode::OK,
                workload(json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1})),
            ),
            Expect(Method::PATCH, STATUS, StatusCode::OK, object),
        ],
    )
    .await;
    assert_eq!(status_of(&seen[1])["phase"], "Running");
}

#[tokio::test]
async fn running_starts_the_generator_against_the_workloads_service() {
    let object = replay(
        json!({"phase": "Running", "startedAt": started_now()}),
        json!({}),
    );
    let services = json!({"kind": "ServiceList", "apiVersion": "v1", "metadata": {}, "items": [
        {"metadata": {"name": "other"}, "spec": {"selector": {"app": "other"}, "ports": [{"port": 80}]}},
        {"metadata": {"name": "orders"}, "spec": {"selector": {"app": "orders"}, "ports": [{"port": 8080}]}},
    ]});
    let (_, seen) = run(
        object,
        vec![
            Expect(Method::GET, JOB, StatusCode::NOT_FOUND, not_found()),
            Expect(
                Method::GET,
                "/api/v1/namespaces/shop/services",
                StatusCode::OK,
                services,
            ),
            Expect(
                Method::PATCH,
                JOB,
                StatusCode::OK,
                json!({"metadata": {"name": "nightly-generator"}, "status": {"active": 1}}),
            ),
        ],
    )
    .await;
    let job = &seen[2].body;
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["spec"]["backoffLimit"], 0);
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    let args = args_of(job);
    for want in [
        &["replay", "--snapshot", "snap-1"][..],
        &["--target", "http://orders.shop.svc:8080"],
        &["--vus", "2"],
        &["--fail-if", "latency.p99 > 200ms"],
        &["--report-dir", "/tapwire-report"],
        &["--report-to", "gs://bucket/tapwire/reports/shop/nightly"],
    ] {
        assert!(has(&args, want), "{want:?} not in {args:?}");
    }
    assert_eq!(c["resources"]["requests"], c["resources"]["limits"]);
}

fn pods(exit: i32) -> Value {
    json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [{
        "metadata": {"name": "nightly-generator-abc"},
        "status": {"containerStatuses": [{"name": "generator", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": exit, "message": "p99 250ms > 200ms"}}}]}
    }]})
}

fn events() -> Value {
    json!({"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": [{
        "metadata": {"name": "orders.1"}, "involvedObject": {"kind": "Pod", "name": "orders-5f-x"},
        "type": "Warning", "reason": "FailedScheduling", "message": "no nodes available",
        "lastTimestamp": "2099-01-01T00:00:00Z"
    }]})
}

fn no_logs() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 400, "message": "no kubelet"})
}

fn finished_job(condition: &str) -> Value {
    let (succeeded, failed) = if condition == "Complete" {
        (1, 0)
    } else {
        (0, 1)
    };
    json!({"metadata": {"name": "nightly-generator"}, "status": {
        "succeeded": succeeded, "failed": failed,
        "conditions": [{"type": condition, "status": "True"}]}})
}

/// Runs the generator-finished reconcile with an empty store; returns
/// the status written.
async fn generator_ends(job: Value, exit: i32) -> Value {
    let store = tempfile::tempdir().expect("tempdir");
    let status = generator_ends_with(
        &format!("file://{}", store.path().display()),
        job,
        exit,
        false,
    )
    .await;
    // No report uploaded: the verdict stands, and the message says so.
    assert!(status.get("summary").is_none(), "{status}");
    assert!(status.get("report").is_none(), "{status}");
    if exit <= 1 {
        let message = status["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("its report could not be read") && message.contains("report.json"),
            "{message}"
        );
    }
    status
}

/// The workload's pods, as the controller lists them for their logs.
fn workload_pods() -> Value {
    json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [{
        "metadata": {"name": "orders-5f-x", "labels": {"app": "orders"}},
        "spec": {"containers": [{"name": "app", "image": "example/orders:1"}]}
    }]})
}

/// Runs the generator-finished reconcile against `store`; returns the
/// status written. With `report`, the store holds the generator's report
/// and the workload's logs are read for it.
async fn generator_ends_with(store: &str, job: Value, exit: i32, report: bool) -> Value {
    let object = replay(
        json!({"phase": "Running", "startedAt": started_now()}),
        json!({}),
    );
    let mut script = vec![
        Expect(Method::GET, JOB, StatusCode::OK, job),
        Expect(
            Method::GET,
            "/api/v1/namespaces/shop/pods",
            StatusCode::OK,
            pods(exit),
        ),
        Expect(
            Method::GET,
            "/api/v1/namespaces/shop/pods/nightly-generator-abc/log",
            StatusCode::BAD_REQUEST,
            no_logs(),
        ),
        Expect(Method::GET, EVENTS, StatusCode::OK, events()),
    ];
    if report {
        script.push(Expect(
            Method::GET,
            "/api/v1/namespaces/shop/pods",
            StatusCode::OK,
            workload_pods(),
        ));
        script.push(Expect(
            Method::GET,
            "/api/v1/namespaces/shop/pods/orders-5f-x/log",
            StatusCode::OK,
            json!("listening on :8080\nGET /orders 200 <ok>\n"),
        ));
    }
    script.push(Expect(
        Method::PATCH,
        STATUS,
        StatusCode::OK,
        object.clone(),
    ));
    let (_, seen) = run_with(config_with_store(store), object, script).await;
    assert!(
        seen[1].uri.contains("job-name%3Dnightly-generator"),
        "{}",
        seen[1].uri
    );
    if report {
        assert!(
            seen[4].uri.contains("labelSelector=app%3Dorders"),
            "{}",
            seen[4].uri
        );
        assert!(
            seen[5].uri.contains("container=app") && seen[5].uri.contains("sinceTime="),
            "{}",
            seen[5].uri
        );
    }
    let status = status_of(seen.last().expect("status patch")).clone();
    assert_eq!(status["phase"], "CleaningUp");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("FailedScheduling: no nodes available"),
        "{message}"
    );
    status
}

/// Runs the CleaningUp reconcile (inventory); returns the final status and the Event.
async fn cleanup(status: Value, delete_answer: StatusCode) -> (Value, Value) {
    let object = replay(status, json!({}));
    let (action, seen) = run(
        object.clone(),
        vec![
            Expect(Method::PATCH, ORDERS, StatusCode::OK, workload(json!({}))),
            Expect(
                Method::DELETE,
                RESPONDER,
                delete_answer,
                if delete_answer == StatusCode::OK {
                    json!({"metadata": {}})
                } else {
                    not_found()
                },
            ),
            Expect(
                Method::DELETE,
                RESPONDER_SVC,
                StatusCode::OK,
                json!({"metadata": {}}),
            ),
            Expect(Method::DELETE, JOB, StatusCode::OK, json!({"metadata": {}})),
            Expect(Method::PATCH, STATUS, StatusCode::OK, object),
            Expect(
                Method::POST,
                EVENTS,
                StatusCode::CREATED,
                json!({"metadata": {"name": "e"}, "involvedObject": {}}),
            ),
        ],
    )
    .await;
    assert_eq!(action, Action::await_change());
    // Restored: the saved template, exactly.
    let ops = seen[0].body.as_array().expect("json patch");
    assert_eq!(ops[0]["value"], template());
    assert!(
        seen[1].body.to_string().contains("Background"),
        "{}",
        seen[1].body
    );
    let status = status_of(&seen[4]).clone();
    assert!(status["finishedAt"].is_string());
    let event = seen[5].body.clone();
    assert_eq!(event["involvedObject"]["kind"], "TrafficReplay");
    (status, event)
}

#[tokio::test]
async fn a_passing_generator_restores_the_workload_and_completes() {
    let status = generator_ends(finished_job("Complete"), 0).await;
    let ready = condition(&status, "Ready");
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&json!("True"), &json!("Passed"))
    );
    let (done, event) = cleanup(status, StatusCode::OK).await;
    assert_eq!(done["phase"], "Complete");
    assert_eq!(
        (&event["type"], &event["reason"]),
        (&json!("Normal"), &json!("Passed"))
    );
}

#[tokio::test]
async fn the_uploaded_report_fills_the_summary() {
    let store = tempfile::tempdir().expect("tempdir");
    let dir = store.path().join("reports/shop/nightly");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let report = json!({
        "v": 1, "snapshot_id": "snap-1", "snapshot_name": "nightly",
        "target": "http://orders.shop.svc:8080", "load": "2 VUs",
        "started": "2026-01-01T00:00:00Z", "duration_s": 3.0,
        "summary": {"requests": 120, "errors": 0, "error_rate": 0.0, "late_sends": 0, "dropped_sends": 0,
            "assertions": {"checked": 120, "passed": 114, "failed": 6, "pass_rate": 0.95},
            "latency_ms": {"p50": 4.5, "p90": 9.0, "p95": 12.0, "p99": 250.0, "max": 300.0},
            "throughput_rps": 40.0},
        "endpoints": [], "throughput": [], "failures": [], "goals": [],
        "mock": {"total": 4, "hit": 3, "miss": 1, "passthrough": 0, "other": 0, "hit_rate": 0.75},
        "passed": false,
    });
    std::fs::write(dir.join("report.json"), report.to_string()).expect("write");
    let url = format!("file://{}", store.path().display());
    let status = generator_ends_with(&url, finished_job("Failed"), 1, true).await;
    assert_eq!(condition(&status, "Ready")["reason"], "MissedGoals");
    assert_eq!(
        status["summary"],
        json!({"requests": 120, "passRate": 0.95, "p50Ms": 4.5, "p95Ms": 12.0, "p99Ms": 250.0, "mockAccuracy": 0.75})
    );
    assert_eq!(
        status["report"],
        format!("{url}/reports/shop/nightly/report.json")
    );
    let message = status["message"].as_str().unwrap_or_default();
    assert!(!message.contains("could not be read"), "{message}");
    assert!(!message.contains("could not be added"), "{message}");
    // The workload's Events and logs went into the report, uploaded again.
    let stored: Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report.json"))
            .expect("json");
    let cluster = &stored["cluster"];
    assert_eq!(cluster["workload"], "Deployment shop/orders");
    assert_eq!(cluster["events"][0]["reason"], "FailedScheduling");
    assert_eq!(cluster["events"][0]["object"], "Pod/orders-5f-x");
    assert_eq!(
        cluster["logs"][0],
        json!({"pod": "orders-5f-x", "container": "app", "lines": ["listening on :8080", "GET /orders 200 <ok>"]})
    );
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    assert!(
        html.contains("GET /orders 200 &lt;ok&gt;"),
        "the log line is in the HTML report"
    );
}

#[tokio::test]
async fn a_missed_goal_completes_with_missed_goals() {
    let status = generator_ends(finished_job("Failed"), 1).await;
    assert_eq!(condition(&status, "Ready")["reason"], "MissedGoals");
    // Objects already gone are fine.
    let (done, event) = cleanup(status, StatusCode::NOT_FOUND).await;
    assert_eq!(done["phase"], "Complete");
    assert_eq!(
        (&event["type"], &event["reason"]),
        (&json!("Warning"), &json!("MissedGoals"))
    );
}

#[tokio::test]
async fn a_generator_error_restores_and_fails() {
    let status = generator_ends(finished_job("Failed"), 2).await;
    let ready = condition(&status, "Ready");
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&json!("False"), &json!("Error"))
    );
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.contains("exit code 2"), "{message}");
    // Without the log API, the termination message stands in.
    assert!(message.contains("p99 250ms > 200ms"), "{message}");
    let (done, event) = cleanup(status, StatusCode::OK).await;
    assert_eq!(done["phase"], "Failed");
    assert_eq!(condition(&done, "Ready")["reason"], "Error");
    assert_eq!(
        (&event["type"], &event["reason"]),
        (&json!("Warning"), &json!("Failed"))
    );
}

#[tokio::test]
async fn a_timeout_restores_and_fails_with_the_reason() {
    let object = replay(
        json!({"phase": "WaitingForWorkload", "startedAt": "2020-01-01T00:00:00Z"}),
        json!({}),
    );
    let (_, seen) = run(
        object.clone(),
        vec![
            Expect(Method::GET, EVENTS, StatusCode::OK, events()),
            Expect(Method::PATCH, STATUS, StatusCode::OK, object),
        ],
    )
    .await;
    let status = status_of(&seen[1]).clone();
    let message = status["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.contains("timed out after 20s while waiting for the workload's rollout"),
        "{message}"
    );
    assert_eq!(condition(&status, "Ready")["reason"], "Error");
    let (done, event) = cleanup(status, StatusCode::OK).await;
    assert_eq!(done["phase"], "Failed");
    assert!(
        event["message"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out"),
        "{event}"
    );
}

#[tokio::test]
async fn cleanup_none_leaves_everything() {
    let mut object = replay(
        json!({"phase": "CleaningUp", "startedAt": started_now(), "conditions": [
            {"type": "Ready", "status": "True", "reason": "Passed", "message": "ok", "lastTransitionTime": "2020-01-01T00:00:00Z"}]}),
        json!({}),
    );
    object["spec"]["cleanup"] = json!("none");
    let (_, seen) = run(
        object.clone(),
        vec![
            Expect(Method::PATCH, STATUS, StatusCode::OK, object),
            Expect(
                Method::POST,
                EVENTS,
                StatusCode::CREATED,
                json!({"metadata": {"name": "e"}, "involvedObject": {}}),
            ),
        ],
    )
    .await;
    assert_eq!(status_of(&seen[0])["phase"], "Complete");
}

#[tokio::test]
async fn deleting_a_replay_mid_way_restores_the_workload_and_removes_the_finalizer() {
    let object = replay(
        json!({"phase": "Running", "startedAt": started_now()}),
        json!({"deletionTimestamp": "2026-01-01T00:00:00Z"}),
    );
    let (_, seen) = run(
        object.clone(),
        vec![
            Expect(Method::PATCH, ORDERS, StatusCode::OK, workload(json!({}))),
            Expect(
                Method::DELETE,
                RESPONDER,
                StatusCode::OK,
                json!({"metadata": {}}),
            ),
            Expect(
                Method::DELETE,
                RESPONDER_SVC,
                StatusCode::OK,
                json!({"metadata": {}}),
            ),
            Expect(Method::DELETE, JOB, StatusCode::NOT_FOUND, not_found()),
            Expect(Method::PATCH, REPLAYS, StatusCode::OK, object),
        ],
    )
    .await;
    assert_eq!(seen[0].body[0]["value"], template());
    let ops = seen[4].body.to_string();
    assert!(
        ops.contains("remove") && ops.contains("/metadata/finalizers"),
        "{ops}"
    );
}

#[tokio::test]
async fn deleting_a_finished_replay_only_removes_the_finalizer() {
    let object = replay(
        json!({"phase": "Complete", "startedAt": started_now()}),
        json!({"deletionTimestamp": "2026-01-01T00:00:00Z"}),
    );
    let (_, seen) = run(
        object.clone(),
        vec![Expect(Method::PATCH, REPLAYS, StatusCode::OK, object)],
    )
    .await;
    assert!(seen[0].body.to_string().contains("/metadata/finalizers"));
}

#[tokio::test]
async fn a_replay_that_failed_before_starting_restores_nothing() {
    // An annotation the controller did not write (no startedAt) is never
    // applied to the workload.
    let object = replay(
        json!({"phase": "CleaningUp", "conditions": [
            {"type": "Ready", "status": "False", "reason": "Error", "message": "workload kind StatefulSet is not supported yet", "lastTransitionTime": "2020-01-01T00:00:00Z"}]}),
        json!({}),
    );
    let (_, seen) = run(
        object.clone(),
        vec![
            Expect(
                Method::DELETE,
                RESPONDER,
                StatusCode::NOT_FOUND,
                not_found(),
            ),
            Expect(
                Method::DELETE,
                RESPONDER_SVC,
                StatusCode::NOT_FOUND,
                not_found(),
            ),
            Expect(Method::DELETE, JOB, StatusCode::NOT_FOUND, not_found()),
            Expect(Method::PATCH, STATUS, StatusCode::OK, object),
            Expect(
                Method::POST,
                EVENTS,
                StatusCode::CREATED,
                json!({"metadata": {"name": "e"}, "involvedObject": {}}),
            ),
        ],
    )
    .await;
    assert_eq!(status_of(&seen[3])["phase"], "Failed");
    assert_eq!(seen[4].body["reason"], "Failed");
}

const STATEFULSET: &str = "/apis/apps/v1/namespaces/shop/statefulsets/orders";

#[tokio::test]
async fn a_statefulset_is_saved_and_waited_for_through_its_own_api() {
    let mut object = replay(Value::Null, json!({}));
    object["metadata"]["annotations"] = json!({});
    object["spec"]["workload"]["kind"] = json!("StatefulSet");
    let set = |status: Value| {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "orders", "namespace": "shop", "generation": 4},
            "spec": {"replicas": 2, "serviceName": "orders", "selector": {"matchLabels": {"app": "orders"}}, "template": template()},
            "status": status,
        })
    };
    let (_, seen) = run(
        object.clone(),
        vec![
            Expect(
                Method::GET,
                STATEFULSET,
                StatusCode::OK,
                set(json!({"replicas": 2})),
            ),
            Expect(Method::PATCH, REPLAYS, StatusCode::OK, object.clone()),
            Expect(Method::PATCH, STATUS, StatusCode::OK, object.clone()),
        ],
    )
    .await;
    let saved: Value = serde_json::from_str(
        seen[1].body["metadata"]["annotations"][SAVED_SPEC]
            .as_str()
            .expect("saved spec"),
    )
    .expect("json");
    assert_eq!(saved, template());

    object["status"] = json!({"phase": "WaitingForWorkload", "startedAt": started_now()});
    // One replica still on the old revision: keep waiting.
    let (action, _) = run(
        object.clone(),
        vec![Expect(
            Method::GET,
            STATEFULSET,
            StatusCode::OK,
            set(json!({"observedGeneration": 4, "replicas": 2, "updatedReplicas": 1, "readyReplicas": 2,
                       "currentRevision": "orders-1", "updateRevision": "orders-2"})),
        )],
    )
    .await;
    assert_ne!(action, Action::await_change());
    let (_, seen) = run(
        object.clone(),
        vec![
            Expect(
                Method::GET,
                STATEFULSET,
                StatusCode::OK,
                set(json!({"observedGeneration": 4, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
                           "currentRevision": "orders-2", "updateRevision": "orders-2"})),
            ),
            Expect(Method::PATCH, STATUS, StatusCode::OK, object),
        ],
    )
    .await;
    assert_eq!(status_of(&seen[1])["phase"], "Running");
}

fn args_of(object: &Value) -> Vec<String> {
    object["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect()
}

fn has(args: &[String], want: &[&str]) -> bool {
    args.windows(want.len()).any(|w| w == want)
}

fn with_credentials() -> ControllerConfig {
    let mut c = config();
    c.namespace = "tapwire".into();
    c.store_secret = Some("store-creds".into());
    c.store_env = vec![("AWS_REGION".into(), "eu-west-1".into())];
    c
}

const SOURCE_SECRET: &str = "/api/v1/namespaces/tapwire/secrets/store-creds";
const STORE_SECRET: &str = "/api/v1/namespaces/shop/secrets/nightly-store";

#[tokio::test]
async fn selectors_stages_and_store_credentials_reach_the_responder_and_the_generator() {
    let mut object = replay(
        json!({"phase": "StartingMocks", "startedAt": started_now()}),
        json!({}),
    );
    object["spec"]["mocks"] = json!(["orders:payments.svc:443", "orders:stock.svc:80"]);
    object["spec"]["tests"] = json!(["*"]);
    object["spec"]["buildTag"] = json!("v2.3.1");
    object["spec"]["test"]["stages"] =
        json!([{"duration": "30s", "target": 5.0}, {"duration": "1m", "target": 5.0}]);
    let source = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "store-creds"},
                        "data": {"AWS_ACCESS_KEY_ID": "QUtJQQ==", "AWS_SECRET_ACCESS_KEY": "c2VjcmV0"}});
    let (_, seen) = run_with(
        with_credentials(),
        object.clone(),
        vec![
            Expect(Method::GET, SOURCE_SECRET, StatusCode::OK, source.clone()),
            Expect(Method::PATCH, STORE_SECRET, StatusCode::OK, json!({"metadata": {"name": "nightly-store"}})),
            Expect(
                Method::PATCH,
                RESPONDER,
                StatusCode::OK,
                json!({"metadata": {"name": "nightly-responder"}, "status": {"availableReplicas": 1}}),
            ),
            Expect(Method::PATCH, RESPONDER_SVC, StatusCode::OK, json!({"metadata": {"name": "nightly-responder"}})),
            Expect(Method::PATCH, ORDERS, StatusCode::OK, workload(json!({}))),
            Expect(Method::PATCH, STATUS, StatusCode::OK, object.clone()),
        ],
    )
    .await;
    // The credentials, copied next to the replay and owned by it.
    let secret = &seen[1].body;
    assert_eq!(secret["kind"], "Secret");
    assert_eq!(
        secret["metadata"]["ownerReferences"][0]["uid"],
        "uid-nightly"
    );
    assert_eq!(secret["data"]["AWS_ACCESS_KEY_ID"], "QUtJQQ==");
    assert_eq!(secret["data"]["AWS_REGION"], "ZXUtd2VzdC0x"); // base64("eu-west-1")
    let responder = &seen[2].body;
    let args = args_of(responder);
    assert!(
        has(&args, &["--key", "orders:payments.svc:443"]),
        "{args:?}"
    );
    assert!(has(&args, &["--key", "orders:stock.svc:80"]), "{args:?}");
    let c = &responder["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["envFrom"][0]["secretRef"]["name"], "nightly-store");
    // The responder's admin port is reachable for the generator.
    assert_eq!(seen[3].body["spec"]["ports"][1]["port"], 4146);

    object["status"] = json!({"phase": "Running", "startedAt": started_now()});
    let services = json!({"kind": "ServiceList", "apiVersion": "v1", "metadata": {}, "items": [
        {"metadata": {"name": "orders"}, "spec": {"selector": {"app": "orders"}, "ports": [{"port": 8080}]}},
    ]});
    let (_, seen) = run_with(
        with_credentials(),
        object,
        vec![
            Expect(Method::GET, JOB, StatusCode::NOT_FOUND, not_found()),
            Expect(Method::GET, SOURCE_SECRET, StatusCode::OK, source),
            Expect(
                Method::PATCH,
                STORE_SECRET,
                StatusCode::OK,
                json!({"metadata": {"name": "nightly-store"}}),
            ),
            Expect(
                Method::GET,
                "/api/v1/namespaces/shop/services",
                StatusCode::OK,
                services,
            ),
            Expect(
                Method::PATCH,
                JOB,
                StatusCode::OK,
                json!({"metadata": {"name": "nightly-generator"}, "status": {"active": 1}}),
            ),
        ],
    )
    .await;
    let job = &seen[4].body;
    let args = args_of(job);
    for want in [
        &["--stage", "30s:5"][..],
        &["--stage", "1m:5"],
        &["--mock-admin", "http://nightly-responder.shop.svc:4146"],
        &["--build-tag", "v2.3.1"],
    ] {
        assert!(has(&args, want), "{want:?} not in {args:?}");
    }
    // `*` selects every inbound key: no filter.
    assert!(!args.iter().any(|a| a == "--key"), "{args:?}");
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["envFrom"][0]["secretRef"]["name"], "nightly-store");
}

#[tokio::test]
async fn a_missing_credentials_secret_fails_the_replay_and_says_which() {
    let object = replay(
        json!({"phase": "StartingMocks", "startedAt": started_now()}),
        json!({}),
    );
    let (_, seen) = run_with(
        with_credentials(),
        object.clone(),
        vec![
            Expect(
                Method::GET,
                SOURCE_SECRET,
                StatusCode::NOT_FOUND,
                not_found(),
            ),
            Expect(Method::GET, EVENTS, StatusCode::OK, events()),
            Expect(Method::PATCH, STATUS, StatusCode::OK, object),
        ],
    )
    .await;
    let status = status_of(&seen[2]);
    assert_eq!(status["phase"], "CleaningUp");
    let ready = condition(status, "Ready");
    assert_eq!(ready["reason"], "Error");
    let message = ready["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("tapwire/store-creds") && message.contains("storage.secretName"),
        "{message}"
    );
}

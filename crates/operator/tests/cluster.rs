//! The operator's API calls against a mock API server (`tower_test`): each
//! test scripts the requests it expects, in order, and what the server says.

use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::client::Body;
use kube::Client;
use serde_json::{json, Value};
use tapwire_operator::{Cluster, SidecarSecret};
use tower_test::mock::{self, Handle};

type ApiHandle = Handle<Request<Body>, Response<Body>>;

fn cluster() -> (Cluster, ApiHandle) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    (Cluster::new(client, Duration::from_secs(2)), handle)
}

/// Expects one request; returns its method, path+query and JSON body, and answers.
async fn expect(
    handle: &mut ApiHandle,
    status: StatusCode,
    answer: Value,
) -> (Method, String, Value) {
    let (req, send) = handle
        .next_request()
        .await
        .expect("the operator made no request");
    let method = req.method().clone();
    let uri = req.uri().to_string();
    let bytes = req.into_body().collect_bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("request body is JSON")
    };
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&answer).expect("json")))
            .expect("response"),
    );
    (method, uri, body)
}

fn owned_pod(kind: &str, name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"generateName": format!("{name}-"), "namespace": "shop", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u-1", "controller": true}
        ]},
        "spec": {"containers": [{"name": "app", "image": "x"}]}
    }))
    .expect("pod")
}

fn object(
    kind: &str,
    api_version: &str,
    name: &str,
    annotations: Value,
    owner: Option<(&str, &str)>,
) -> Value {
    let mut v = json!({
        "apiVersion": api_version, "kind": kind,
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"), "annotations": annotations},
    });
    if let Some((k, n)) = owner {
        v["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": k, "name": n, "uid": format!("uid-{n}"), "controller": true}]);
    }
    v
}

#[tokio::test]
async fn a_deployments_annotations_reach_its_pods_through_the_replicaset() {
    let (cluster, mut handle) = cluster();
    let pod = owned_pod("ReplicaSet", "orders-7d9");
    let server = tokio::spawn(async move {
        let (m, uri, _) = expect(
            &mut handle,
            StatusCode::OK,
            object(
                "ReplicaSet",
                "apps/v1",
                "orders-7d9",
                json!({"sidecar.tapwire.dev/proxy-type": "forward"}),
                Some(("Deployment", "orders")),
            ),
        )
        .await;
        assert_eq!(
            (m, uri.as_str()),
            (
                Method::GET,
                "/apis/apps/v1/namespaces/shop/replicasets/orders-7d9"
            )
        );
        let (m, uri, _) = expect(
            &mut handle,
            StatusCode::OK,
            object("Deployment", "apps/v1", "orders", json!({"sidecar.tapwire.dev/inject": "true", "sidecar.tapwire.dev/proxy-type": "dual"}), None),
        )
        .await;
        assert_eq!(
            (m, uri.as_str()),
            (
                Method::GET,
                "/apis/apps/v1/namespaces/shop/deployments/orders"
            )
        );
    });
    let ctx = cluster.pod_context("shop", &pod).await;
    server.await.expect("server script");
    assert_eq!(ctx.lookup_error, None);
    let a = &ctx.workload_annotations;
    assert_eq!(a["sidecar.tapwire.dev/inject"], "true");
    // The nearer owner (the ReplicaSet) wins over the Deployment.
    assert_eq!(a["sidecar.tapwire.dev/proxy-type"], "forward");
    let w = ctx.workload.expect("workload");
    assert_eq!(
        (w.kind.as_deref(), w.name.as_deref()),
        (Some("Deployment"), Some("orders"))
    );
}

#[tokio::test]
async fn statefulsets_daemonsets_and_jobs_are_read_directly() {
    for (kind, path, api) in [
        (
            "StatefulSet",
            "/apis/apps/v1/namespaces/shop/statefulsets/db",
            "apps/v1",
        ),
        (
            "DaemonSet",
            "/apis/apps/v1/namespaces/shop/daemonsets/db",
            "apps/v1",
        ),
        ("Job", "/apis/batch/v1/namespaces/shop/jobs/db", "batch/v1"),
    ] {
        let (cluster, mut handle) = cluster();
        let pod = owned_pod(kind, "db");
        let server = tokio::spawn(async move {
            let (_, uri, _) = expect(
                &mut handle,
                StatusCode::OK,
                object(
                    kind,
                    api,
                    "db",
                    json!({"sidecar.tapwire.dev/inject": "true"}),
                    None,
                ),
            )
            .await;
            uri
        });
        let ctx = cluster.pod_context("shop", &pod).await;
        assert_eq!(server.await.expect("script"), path);
        assert_eq!(
            ctx.workload_annotations["sidecar.tapwire.dev/inject"], "true",
            "{kind}"
        );
    }
}

#[tokio::test]
async fn an_unreadable_owner_is_reported_not_fatal() {
    let (cluster, mut handle) = cluster();
    let pod = owned_pod("ReplicaSet", "orders-7d9");
    let server = tokio::spawn(async move {
        expect(
            &mut handle,
            StatusCode::FORBIDDEN,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
                   "message": "replicasets.apps \"orders-7d9\" is forbidden: User \"system:serviceaccount:tapwire:operator\" cannot get resource"}),
        )
        .await;
    });
    let ctx = cluster.pod_context("shop", &pod).await;
    server.await.expect("script");
    let e = ctx.lookup_error.expect("error reported");
    assert!(
        e.contains("ReplicaSet orders-7d9") && e.contains("forbidden"),
        "{e}"
    );
    assert!(ctx.workload_annotations.is_empty());
}

#[tokio::test]
async fn the_sidecar_secret_is_server_side_applied() {
    let (cluster, mut handle) = cluster();
    let server = tokio::spawn(async move {
        expect(
            &mut handle,
            StatusCode::OK,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tapwire-sidecar"}}),
        )
        .await
    });
    let contents = SidecarSecret {
        api_key: Some("k-123".into()),
        ca_cert: Some("CERT".into()),
        ..Default::default()
    };
    cluster
        .ensure_sidecar_secret("shop", &contents)
        .await
        .expect("applied");
    let (m, uri, body) = server.await.expect("script");
    assert_eq!(m, Method::PATCH);
    assert!(
        uri.starts_with("/api/v1/namespaces/shop/secrets/tapwire-sidecar?"),
        "{uri}"
    );
    assert!(
        uri.contains("fieldManager=tapwire-operator") && uri.contains("force=true"),
        "{uri}"
    );
    assert_eq!(body["kind"], "Secret");
    assert_eq!(body["data"]["api-key"], "ay0xMjM="); // base64("k-123")
    assert!(
        body["data"].get("ca.key").is_none(),
        "absent values are not written"
    );
}

#[tokio::test]
async fn the_ca_bundle_goes_into_every_webhook_of_the_configuration() {
    let (cluster, mut handle) = cluster();
    let server = tokio::spawn(async move {
        let (m, uri, _) = expect(
            &mut handle,
            StatusCode::OK,
            json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                   "metadata": {"name": "tapwire-sidecar-injector"},
                   "webhooks": [
                     {"name": "a.tapwire.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None", "clientConfig": {"url": "https://127.0.0.1/mutate"}},
                     {"name": "b.tapwire.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None", "clientConfig": {"url": "https://127.0.0.1/mutate"}}]}),
        )
        .await;
        assert_eq!((m, uri.as_str()), (Method::GET, "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/tapwire-sidecar-injector"));
        let (m, _, body) = expect(&mut handle, StatusCode::OK, json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration", "metadata": {"name": "x"}})).await;
        assert_eq!(m, Method::PATCH);
        body
    });
    let n = cluster
        .patch_ca_bundle(
            &tapwire_operator::WebhookConfigName::Mutating("tapwire-sidecar-injector".into()),
            "PEM",
        )
        .await
        .expect("patched");
    let body = server.await.expect("script");
    assert_eq!(n, 2);
    assert_eq!(
        body,
        json!([
            {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": "UEVN"},
            {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": "UEVN"}
        ])
    );
}

#[tokio::test]
async fn warnings_become_events_on_the_workload() {
    let (cluster, mut handle) = cluster();
    let server = tokio::spawn(async move {
        expect(
            &mut handle,
            StatusCode::CREATED,
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "orders.1"}}),
        )
        .await
    });
    let object = ObjectReference {
        api_version: Some("apps/v1".into()),
        kind: Some("Deployment".into()),
        name: Some("orders".into()),
        namespace: Some("shop".into()),
        ..Default::default()
    };
    cluster
        .warn(&object, "InvalidSidecarAnnotation", "bad proxy-type")
        .await;
    let (m, uri, body) = server.await.expect("script");
    assert_eq!(
        (m, uri.as_str()),
        (Method::POST, "/api/v1/namespaces/shop/events?")
    );
    assert_eq!(body["type"], "Warning");
    assert_eq!(body["reason"], "InvalidSidecarAnnotation");
    assert_eq!(body["involvedObject"]["name"], "orders");
    assert_eq!(body["metadata"]["generateName"], "orders.");
}

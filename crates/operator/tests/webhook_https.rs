//! The webhook listener answers real HTTPS `AdmissionReview` requests on
//! loopback, from curl, trusting only the operator's generated CA.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tapwire_operator::{certs, InjectorConfig, OperatorConfig, Outcome, SidecarSecret};
use tapwire_test_support::require;

const DEPLOYMENT_POD: &str = include_str!("fixtures/deployment-pod.json");

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (body.to_owned(), code.to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn https_admission_reviews_from_curl() {
    if !require::require_tool("curl") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let cert = certs::generate(&["127.0.0.1".into(), "localhost".into()]).expect("cert");
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, &cert.ca_pem).expect("write ca");
    let running = tapwire_operator::start(
        OperatorConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            admin: Some("127.0.0.1:0".parse().expect("addr")),
            namespace: "tapwire".into(),
            injector: InjectorConfig::new("registry.example/tapwire:1"),
            secret: SidecarSecret::default(),
            cert,
            webhook_configs: Vec::new(),
            snapshots: None,
        },
        None,
    )
    .await
    .expect("starts");
    let url = format!("https://localhost:{}/mutate", running.addr.port());
    let ca = ca.to_str().expect("utf-8 path");

    // The recorded review with the workload's annotations moved onto the pod.
    let mut review: Value = serde_json::from_str(DEPLOYMENT_POD).expect("json");
    review["request"]["object"]["metadata"]["annotations"] = serde_json::json!({"sidecar.tapwire.dev/inject": "true", "sidecar.tapwire.dev/proxy-type": "dual"});
    let body_file = dir.path().join("review.json");
    std::fs::write(&body_file, review.to_string()).expect("write");
    let data = format!("@{}", body_file.display());
    let (body, code) = tokio::task::spawn_blocking({
        let (url, ca, data) = (url.clone(), ca.to_owned(), data.clone());
        move || {
            curl(&[
                "--cacert",
                &ca,
                "-H",
                "content-type: application/json",
                "--data-binary",
                &data,
                &url,
            ])
        }
    })
    .await
    .expect("curl");
    assert_eq!(code, "200", "{body}");
    let answer: Value = serde_json::from_str(&body).expect("an AdmissionReview comes back");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    let response = &answer["response"];
    assert_eq!(response["uid"], review["request"]["uid"]);
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    use base64::Engine as _;
    let patch = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().expect("patch"))
        .expect("base64");
    let patch: Value = serde_json::from_slice(&patch).expect("json patch");
    assert!(patch.to_string().contains("tapwire-proxy"));

    // Wrong method and wrong paths say what the endpoint is.
    let (body, code) = tokio::task::spawn_blocking({
        let (url, ca) = (url.clone(), ca.to_owned());
        move || curl(&["--cacert", &ca, &url])
    })
    .await
    .expect("curl");
    assert_eq!(code, "405");
    assert!(body.contains("POST an AdmissionReview"));

    // Garbage gets an AdmissionReview that says why, and is counted.
    let (body, code) = tokio::task::spawn_blocking({
        let (url, ca) = (url.clone(), ca.to_owned());
        move || curl(&["--cacert", &ca, "--data-binary", "{not json", &url])
    })
    .await
    .expect("curl");
    assert_eq!(code, "200");
    assert!(body.contains("not an AdmissionReview"), "{body}");
    assert_eq!(running.metrics.admissions(Outcome::Injected), 1);
    assert_eq!(running.metrics.admissions(Outcome::Error), 1);

    // A client that does not trust the CA cannot talk to it.
    let (_, code) = tokio::task::spawn_blocking({
        let url = url.clone();
        move || curl(&["--data-binary", "{}", &url])
    })
    .await
    .expect("curl");
    assert_eq!(code, "000");

    let admin = running.admin_addr.expect("admin");
    let (metrics, _) =
        tokio::task::spawn_blocking(move || curl(&[&format!("http://{admin}/metrics")]))
            .await
            .expect("curl");
    assert!(
        metrics.contains("tapwire_operator_admissions_total{outcome=\"injected\"} 1"),
        "{metrics}"
    );
    running.shutdown(Duration::from_secs(1)).await;
}

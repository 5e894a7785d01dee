//! A real Kubernetes API server for tests (kube-local, started by
//! `.ci/with-kube-local.sh`): whether one is configured, and tapwire's CRDs
//! installed in it.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};

/// True when `KUBECONFIG` names a file; see [`crate::require::unmet`] otherwise.
pub fn require_cluster() -> bool {
    match std::env::var("KUBECONFIG") {
        Ok(p) if Path::new(&p).exists() => true,
        _ => crate::require::unmet(
            "KUBECONFIG does not point at a cluster: run the tests through .ci/with-kube-local.sh, or eval \"$(shared/tools/kube-local start)\"",
        ),
    }
}

/// Server-side applies every CRD committed under `charts/tapwire/crds/` and
/// waits until each is Established.
pub async fn install_crds(client: &kube::Client) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/tapwire/crds");
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("the chart's crds directory") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read a CRD");
        let crd: CustomResourceDefinition = serde_norway::from_str(&text).expect("a CRD");
        let name = crd.metadata.name.clone().expect("CRD name");
        api.patch(
            &name,
            &PatchParams::apply("tapwire-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("apply the CRD");
        names.push(name);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for name in names {
        loop {
            let got = api.get(&name).await.expect("get the CRD");
            let established = got.status.and_then(|s| s.conditions).is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if established {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "CRD {name} not Established within 30s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Stands in for the kubelet, which kube-local does not run: marks every
/// pod Running and Ready, except the pods of Jobs (those never run) and
/// pods being deleted. Loops until aborted.
pub async fn make_pods_ready(pods: Api<k8s_openapi::api::core::v1::Pod>) {
    use kube::api::ListParams;
    use kube::ResourceExt as _;
    loop {
        if let Ok(list) = pods.list(&ListParams::default()).await {
            for p in list.items {
                if p.labels().contains_key("job-name") || p.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                let ready = p
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                if ready {
                    continue;
                }
                let now = k8s_openapi::jiff::Timestamp::now()
                    .strftime("%Y-%m-%dT%H:%M:%SZ")
                    .to_string();
                let patch = serde_json::json!({"status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": now}
                ]}});
                let _ = pods
                    .patch_status(
                        &p.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

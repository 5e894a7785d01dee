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

//! Replays in the cluster: the `TrafficReplay` resource, its webhooks and
//! its controller.

pub mod controller;
pub mod crd;
pub mod webhook;
pub mod workload;

pub use crd::{TrafficReplay, TrafficReplaySpec, TrafficReplayStatus};

/// The CRD as YAML, exactly as committed under `charts/tapwire/crds/`.
pub fn crd_yaml() -> Result<String, serde_norway::Error> {
    use kube::CustomResourceExt as _;
    let mut crd = TrafficReplay::crd();
    crd.metadata.labels = Some(std::collections::BTreeMap::from([(
        "app.kubernetes.io/part-of".to_owned(),
        "tapwire".to_owned(),
    )]));
    let body = serde_norway::to_string(&crd)?;
    Ok(format!(
        "# Generated from crates/operator/src/replay/crd.rs by `tapwire operator crd`; do not edit.\n{body}"
    ))
}

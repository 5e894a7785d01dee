//! The workload a replay runs against: a Deployment, a StatefulSet or a
//! DaemonSet. All three carry their pods' template at `/spec/template`,
//! which is all the controller changes; they differ in how a finished
//! rollout shows in their status.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::Client;
use serde_json::json;

/// The kinds a replay can target, as `spec.workload.kind` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// `apps/v1` Deployment (the default).
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
    /// `apps/v1` DaemonSet.
    DaemonSet,
}

impl WorkloadKind {
    /// Every kind, in the order messages list them.
    pub const ALL: [WorkloadKind; 3] = [Self::Deployment, Self::StatefulSet, Self::DaemonSet];

    /// The kind named by `spec.workload.kind` (`Deployment` when unset).
    pub fn parse(kind: Option<&str>) -> Option<Self> {
        let kind = kind.unwrap_or("Deployment");
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// The kind's name, as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "Deployment",
            Self::StatefulSet => "StatefulSet",
            Self::DaemonSet => "DaemonSet",
        }
    }
}

impl std::fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A workload as read from the API server.
#[derive(Debug, Clone)]
pub enum Workload {
    /// A Deployment.
    Deployment(Deployment),
    /// A StatefulSet.
    StatefulSet(StatefulSet),
    /// A DaemonSet.
    DaemonSet(DaemonSet),
}

impl Workload {
    /// Reads the workload; `None` when it does not exist.
    pub async fn get(
        client: &Client,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Self>, kube::Error> {
        Ok(match kind {
            WorkloadKind::Deployment => Api::<Deployment>::namespaced(client.clone(), namespace)
                .get_opt(name)
                .await?
                .map(Self::Deployment),
            WorkloadKind::StatefulSet => Api::<StatefulSet>::namespaced(client.clone(), namespace)
                .get_opt(name)
                .await?
                .map(Self::StatefulSet),
            WorkloadKind::DaemonSet => Api::<DaemonSet>::namespaced(client.clone(), namespace)
                .get_opt(name)
                .await?
                .map(Self::DaemonSet),
        })
    }

    /// Its pods' template.
    pub fn template(&self) -> PodTemplateSpec {
        match self {
            Self::Deployment(d) => d.spec.as_ref().map(|s| s.template.clone()),
            Self::StatefulSet(s) => s.spec.as_ref().map(|s| s.template.clone()),
            Self::DaemonSet(d) => d.spec.as_ref().map(|s| s.template.clone()),
        }
        .unwrap_or_default()
    }

    /// Whether its latest spec is rolled out: every pod runs the current
    /// template and is available.
    pub fn rolled_out(&self) -> bool {
        match self {
            Self::Deployment(d) => deployment_rolled_out(d),
            Self::StatefulSet(s) => statefulset_rolled_out(s),
            Self::DaemonSet(d) => daemonset_rolled_out(d),
        }
    }
}

/// Whether the Deployment's latest spec is fully rolled out and available.
pub fn deployment_rolled_out(d: &Deployment) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(s) = d.status.as_ref() else {
        return false;
    };
    s.observed_generation >= d.metadata.generation
        && s.updated_replicas.unwrap_or(0) == want
        && s.available_replicas.unwrap_or(0) == want
        && s.replicas.unwrap_or(0) == want
}

/// Whether every replica of the StatefulSet runs the current revision and is ready.
pub fn statefulset_rolled_out(set: &StatefulSet) -> bool {
    let want = set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(s) = set.status.as_ref() else {
        return false;
    };
    let revision_current = match (&s.current_revision, &s.update_revision) {
        (Some(current), Some(update)) => current == update,
        // Older API servers fill neither; the counts below still hold.
        _ => true,
    };
    s.observed_generation >= set.metadata.generation
        && revision_current
        && s.updated_replicas.unwrap_or(0) == want
        && s.ready_replicas.unwrap_or(0) == want
        && s.replicas == want
}

/// Whether every node the DaemonSet should run on runs its current pod, available.
pub fn daemonset_rolled_out(d: &DaemonSet) -> bool {
    let Some(s) = d.status.as_ref() else {
        return false;
    };
    s.observed_generation >= d.metadata.generation
        && s.updated_number_scheduled.unwrap_or(0) == s.desired_number_scheduled
        && s.number_available.unwrap_or(0) == s.desired_number_scheduled
}

/// Replaces the workload's pod template (a JSON patch of `/spec/template`).
pub async fn replace_template(
    client: &Client,
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
    template: &PodTemplateSpec,
) -> Result<(), kube::Error> {
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/template", "value": template}
    ]))
    .map_err(kube::Error::SerdeError)?;
    let patch = Patch::<()>::Json(patch);
    let params = PatchParams::default();
    match kind {
        WorkloadKind::Deployment => {
            Api::<Deployment>::namespaced(client.clone(), namespace)
                .patch(name, &params, &patch)
                .await?;
        }
        WorkloadKind::StatefulSet => {
            Api::<StatefulSet>::namespaced(client.clone(), namespace)
                .patch(name, &params, &patch)
                .await?;
        }
        WorkloadKind::DaemonSet => {
            Api::<DaemonSet>::namespaced(client.clone(), namespace)
                .patch(name, &params, &patch)
                .await?;
        }
    }
    Ok(())
}

/// Deletes the workload (`cleanup: all`) in the background.
pub async fn delete(
    client: &Client,
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
) -> Result<(), kube::Error> {
    let dp = DeleteParams::background();
    match kind {
        WorkloadKind::Deployment => {
            Api::<Deployment>::namespaced(client.clone(), namespace)
                .delete(name, &dp)
                .await?;
        }
        WorkloadKind::StatefulSet => {
            Api::<StatefulSet>::namespaced(client.clone(), namespace)
                .delete(name, &dp)
                .await?;
        }
        WorkloadKind::DaemonSet => {
            Api::<DaemonSet>::namespaced(client.clone(), namespace)
                .delete(name, &dp)
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_with_deployment_by_default() {
        assert_eq!(WorkloadKind::parse(None), Some(WorkloadKind::Deployment));
        assert_eq!(
            WorkloadKind::parse(Some("StatefulSet")),
            Some(WorkloadKind::StatefulSet)
        );
        assert_eq!(
            WorkloadKind::parse(Some("DaemonSet")),
            Some(WorkloadKind::DaemonSet)
        );
        assert_eq!(WorkloadKind::parse(Some("CronJob")), None);
        assert_eq!(WorkloadKind::parse(Some("deployment")), None);
    }

    #[test]
    fn a_statefulset_is_rolled_out_when_every_replica_runs_the_update_revision() {
        let set = |current: &str, ready: i32| -> StatefulSet {
            serde_json::from_value(json!({
                "metadata": {"name": "db", "generation": 3},
                "spec": {"replicas": 2, "serviceName": "db", "selector": {}, "template": {}},
                "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2,
                           "readyReplicas": ready, "currentRevision": current, "updateRevision": "db-2"}
            }))
            .expect("statefulset")
        };
        assert!(statefulset_rolled_out(&set("db-2", 2)));
        assert!(!statefulset_rolled_out(&set("db-1", 2)));
        assert!(!statefulset_rolled_out(&set("db-2", 1)));
    }

    #[test]
    fn a_daemonset_is_rolled_out_when_every_node_runs_the_current_pod() {
        let ds = |observed: i64, updated: i32, available: i32| -> DaemonSet {
            serde_json::from_value(json!({
                "metadata": {"name": "agent", "generation": 2},
                "spec": {"selector": {}, "template": {}},
                "status": {"observedGeneration": observed, "desiredNumberScheduled": 3,
                           "currentNumberScheduled": 3, "numberMisscheduled": 0, "numberReady": 3,
                           "updatedNumberScheduled": updated, "numberAvailable": available}
            }))
            .expect("daemonset")
        };
        assert!(daemonset_rolled_out(&ds(2, 3, 3)));
        assert!(!daemonset_rolled_out(&ds(1, 3, 3)));
        assert!(!daemonset_rolled_out(&ds(2, 2, 3)));
        assert!(!daemonset_rolled_out(&ds(2, 3, 2)));
    }
}

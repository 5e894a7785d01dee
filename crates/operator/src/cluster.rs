//! What the operator reads from and writes to the API server: owner
//! workloads' annotations, the per-namespace sidecar Secret, warning Events,
//! and the webhook configuration's `caBundle`.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use k8s_openapi::ByteString;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;

use crate::admission::PodContext;
use crate::inject::SIDECAR_SECRET;

/// The field manager for everything the operator applies.
pub const MANAGER: &str = "tapwire-operator";

/// What the sidecar Secret in each injected namespace holds.
#[derive(Debug, Clone, Default)]
pub struct SidecarSecret {
    /// The forwarder API key (`api-key`).
    pub api_key: Option<String>,
    /// The interception CA certificate (`ca.crt`).
    pub ca_cert: Option<String>,
    /// The interception CA key (`ca.key`), mounted only into the sidecar.
    pub ca_key: Option<String>,
    /// The CA plus the operator's system roots (`ca-bundle.crt`), for apps
    /// whose trust variables replace rather than extend their roots.
    pub ca_bundle: Option<String>,
}

impl SidecarSecret {
    /// The Secret's contents from the API key and the interception CA
    /// directory (`ca.crt`, `ca.key`, as `tapwire ca init` and the chart
    /// write them). The bundle adds this machine's system roots to the CA.
    pub fn new(api_key: Option<String>, ca_dir: Option<&std::path::Path>) -> std::io::Result<Self> {
        let mut s = Self {
            api_key,
            ..Self::default()
        };
        if let Some(dir) = ca_dir {
            let read = |name: &str| {
                let path = dir.join(name);
                std::fs::read_to_string(&path).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
                })
            };
            let cert = read("ca.crt")?;
            let mut bundle = cert.clone();
            let roots = rustls_native_certs::load_native_certs();
            for der in roots.certs {
                bundle.push_str(&pem("CERTIFICATE", der.as_ref()));
            }
            s.ca_key = Some(read("ca.key")?);
            s.ca_bundle = Some(bundle);
            s.ca_cert = Some(cert);
        }
        Ok(s)
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64_encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A webhook configuration whose `caBundle` the operator keeps current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookConfigName {
    /// A MutatingWebhookConfiguration.
    Mutating(String),
    /// A ValidatingWebhookConfiguration.
    Validating(String),
}

impl std::fmt::Display for WebhookConfigName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Mutating(n) => write!(f, "mutatingwebhookconfiguration/{n}"),
            Self::Validating(n) => write!(f, "validatingwebhookconfiguration/{n}"),
        }
    }
}

/// An API server connection with the operator's operations on it.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
    lookup_timeout: Duration,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").finish_non_exhaustive()
    }
}

impl Cluster {
    /// Wraps a client; each owner lookup is bounded by `lookup_timeout` so
    /// the webhook answers within the API server's deadline.
    pub fn new(client: Client, lookup_timeout: Duration) -> Self {
        Self {
            client,
            lookup_timeout,
        }
    }

    /// The underlying client, for callers with their own API work.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Follows the pod's controller owners (ReplicaSet → Deployment, Job,
    /// StatefulSet, DaemonSet) and merges their annotations. Never fails:
    /// an owner that cannot be read is reported in `lookup_error`.
    pub async fn pod_context(&self, namespace: &str, pod: &Pod) -> PodContext {
        let mut ctx = PodContext::default();
        let mut chain: Vec<(BTreeMap<String, String>, ObjectReference)> = Vec::new();
        let mut next = controller_of(&pod.metadata.owner_references);
        // Two hops cover every supported workload (Deployment → ReplicaSet → Pod).
        for _ in 0..2 {
            let Some(owner) = next.take() else { break };
            let got =
                tokio::time::timeout(self.lookup_timeout, self.owner(namespace, &owner)).await;
            match got {
                Ok(Ok(Some((meta, reference)))) => {
                    next = controller_of(&meta.owner_references);
                    chain.push((meta.annotations.unwrap_or_default(), reference));
                }
                Ok(Ok(None)) => break,
                Ok(Err(e)) => {
                    ctx.lookup_error = Some(format!("{} {}: {e}", owner.kind, owner.name));
                    break;
                }
                Err(_) => {
                    ctx.lookup_error = Some(format!(
                        "{} {}: no answer within {:?}",
                        owner.kind, owner.name, self.lookup_timeout
                    ));
                    break;
                }
            }
        }
        // Outermost first, so the nearer owner's values win on merge.
        for (annotations, reference) in chain.into_iter().rev() {
            if ctx.workload.is_none() {
                ctx.workload = Some(reference);
            }
            ctx.workload_annotations.extend(annotations);
        }
        ctx
    }

    async fn owner(
        &self,
        ns: &str,
        owner: &OwnerReference,
    ) -> Result<Option<(ObjectMeta, ObjectReference)>, kube::Error> {
        let meta = match owner.kind.as_str() {
            "ReplicaSet" => {
                Api::<ReplicaSet>::namespaced(self.client.clone(), ns)
                    .get(&owner.name)
                    .await?
                    .metadata
            }
            "Deployment" => {
                Api::<Deployment>::namespaced(self.client.clone(), ns)
                    .get(&owner.name)
                    .await?
                    .metadata
            }
            "StatefulSet" => {
                Api::<StatefulSet>::namespaced(self.client.clone(), ns)
                    .get(&owner.name)
                    .await?
                    .metadata
            }
            "DaemonSet" => {
                Api::<DaemonSet>::namespaced(self.client.clone(), ns)
                    .get(&owner.name)
                    .await?
                    .metadata
            }
            "Job" => {
                Api::<Job>::namespaced(self.client.clone(), ns)
                    .get(&owner.name)
                    .await?
                    .metadata
            }
            // CronJobs, Argo Rollouts and others: their annotations are not
            // read; the pod template's own annotations still apply.
            _ => return Ok(None),
        };
        let reference = ObjectReference {
            api_version: Some(owner.api_version.clone()),
            kind: Some(owner.kind.clone()),
            name: Some(owner.name.clone()),
            namespace: Some(ns.to_owned()),
            uid: Some(owner.uid.clone()),
            ..Default::default()
        };
        Ok(Some((meta, reference)))
    }

    /// Creates or updates the `tapwire-sidecar` Secret in `namespace`
    /// (server-side apply, so repeated calls are cheap no-ops).
    pub async fn ensure_sidecar_secret(
        &self,
        namespace: &str,
        contents: &SidecarSecret,
    ) -> Result<(), kube::Error> {
        let mut data = BTreeMap::new();
        for (key, value) in [
            ("api-key", &contents.api_key),
            ("ca.crt", &contents.ca_cert),
            ("ca.key", &contents.ca_key),
            ("ca-bundle.crt", &contents.ca_bundle),
        ] {
            if let Some(v) = value {
                data.insert(key.to_owned(), ByteString(v.clone().into_bytes()));
            }
        }
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(SIDECAR_SECRET.into()),
                namespace: Some(namespace.into()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_owned(),
                    MANAGER.to_owned(),
                )])),
                ..Default::default()
            },
            type_: Some("Opaque".into()),
            data: Some(data),
            ..Default::default()
        };
        let mut value = serde_json::to_value(&secret).map_err(kube::Error::SerdeError)?;
        value["apiVersion"] = "v1".into();
        value["kind"] = "Secret".into();
        Api::<Secret>::namespaced(self.client.clone(), namespace)
            .patch(
                SIDECAR_SECRET,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(value),
            )
            .await
            .map(drop)
    }

    /// Records a Warning Event about `object` (best effort: a failure is logged).
    pub async fn warn(&self, object: &ObjectReference, reason: &str, message: &str) {
        let namespace = object.namespace.clone().unwrap_or_default();
        let now = chrono_now();
        let event = Event {
            metadata: ObjectMeta {
                generate_name: Some(format!(
                    "{}.",
                    object
                        .name
                        .as_deref()
                        .unwrap_or("pod")
                        .trim_end_matches('-')
                )),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: object.clone(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some("Warning".into()),
            source: Some(EventSource {
                component: Some(MANAGER.into()),
                host: None,
            }),
            reporting_component: Some(MANAGER.into()),
            reporting_instance: Some(MANAGER.into()),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: None::<MicroTime>,
            count: Some(1),
            ..Default::default()
        };
        if let Err(e) = Api::<Event>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &event)
            .await
        {
            tracing::warn!(error = %e, namespace, reason, "could not record an Event");
        }
    }

    /// Puts `ca_pem` into every webhook of the named configuration.
    pub async fn patch_ca_bundle(
        &self,
        config: &WebhookConfigName,
        ca_pem: &str,
    ) -> Result<usize, kube::Error> {
        let count = match config {
            WebhookConfigName::Mutating(name) => {
                Api::<MutatingWebhookConfiguration>::all(self.client.clone())
                    .get(name)
                    .await?
                    .webhooks
                    .map_or(0, |w| w.len())
            }
            WebhookConfigName::Validating(name) => {
                Api::<ValidatingWebhookConfiguration>::all(self.client.clone())
                    .get(name)
                    .await?
                    .webhooks
                    .map_or(0, |w| w.len())
            }
        };
        let bundle = serde_json::Value::String(base64_encode(ca_pem.as_bytes()));
        let ops: Vec<serde_json::Value> = (0..count)
            .map(|i| {
                serde_json::json!({
                    "op": "add",
                    "path": format!("/webhooks/{i}/clientConfig/caBundle"),
                    "value": bundle,
                })
            })
            .collect();
        if ops.is_empty() {
            return Ok(0);
        }
        let patch: json_patch::Patch = serde_json::from_value(serde_json::Value::Array(ops))
            .map_err(kube::Error::SerdeError)?;
        let params = PatchParams::default();
        match config {
            WebhookConfigName::Mutating(name) => {
                Api::<MutatingWebhookConfiguration>::all(self.client.clone())
                    .patch(name, &params, &Patch::<()>::Json(patch))
                    .await?;
            }
            WebhookConfigName::Validating(name) => {
                Api::<ValidatingWebhookConfiguration>::all(self.client.clone())
                    .patch(name, &params, &Patch::<()>::Json(patch))
                    .await?;
            }
        }
        Ok(count)
    }
}

fn controller_of(owners: &Option<Vec<OwnerReference>>) -> Option<OwnerReference> {
    owners
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .cloned()
}

fn chrono_now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

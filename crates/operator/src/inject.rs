//! Adding the capture sidecar to a pod, and taking it out again.
//!
//! Pure functions over `Pod`: the admission handler turns the difference
//! into a JSON patch. What was added is written to the
//! `sidecar.tapwire.dev/status` annotation, so a later `inject: "false"` (or a
//! changed spec) removes exactly that and nothing the user wrote.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, KeyToPath,
    ObjectFieldSelector, Pod, PodSpec, Probe, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::annotations::{ProxyType, SidecarSpec, STATUS};

/// The sidecar container's name.
pub const PROXY_CONTAINER: &str = "tapwire-proxy";
/// The transparent-mode init container's name.
pub const INIT_CONTAINER: &str = "tapwire-init";
/// The per-namespace Secret the sidecar reads (API key, CA) — see `cluster.rs`.
pub const SIDECAR_SECRET: &str = "tapwire-sidecar";
/// The UID the sidecar runs as; `tapwire init` exempts its traffic from the redirect.
pub const PROXY_UID: i64 = 1477;
/// The sidecar's admin port (metrics, health); never redirected.
pub const ADMIN_PORT: u16 = 4145;

const DATA_VOLUME: &str = "tapwire-data";
const CA_VOLUME: &str = "tapwire-ca";
const TRUST_VOLUME: &str = "tapwire-ca-cert";
/// Where the CA (certificate and key) is mounted for tapwire's own containers.
pub(crate) const CA_DIR: &str = "/etc/tapwire/ca";
/// Where app containers find the CA certificate to trust.
pub(crate) const TRUST_DIR: &str = "/etc/tapwire/trust";
const DATA_DIR: &str = "/var/lib/tapwire";

/// Installation-wide settings for what gets injected.
#[derive(Debug, Clone, Serialize)]
pub struct InjectorConfig {
    /// The tapwire image for the sidecar and init containers.
    pub image: String,
    /// Where sidecars send captures; without it they write to an emptyDir.
    pub forwarder_url: Option<String>,
    /// Stamped on every capture.
    pub cluster: Option<String>,
    /// GKE Autopilot: requests equal limits everywhere, no NET_ADMIN unless allowed.
    pub autopilot: bool,
    /// The Autopilot cluster allows NET_ADMIN (`--workload-policies=allow-net-admin`).
    pub allow_net_admin: bool,
    /// Sidecar resources before annotation overrides.
    pub sidecar_resources: ResourceRequirements,
}

impl InjectorConfig {
    /// Settings with the built-in sidecar resources.
    pub fn new(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            forwarder_url: None,
            cluster: None,
            autopilot: false,
            allow_net_admin: false,
            sidecar_resources: default_sidecar_resources(),
        }
    }
}

/// The sidecar's resources when nothing else is said: small requests, a
/// memory limit that bounds the capture buffers.
pub fn default_sidecar_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(quantities(&[
            ("cpu", "100m"),
            ("memory", "128Mi"),
            ("ephemeral-storage", "100Mi"),
        ])),
        limits: Some(quantities(&[
            ("memory", "512Mi"),
            ("ephemeral-storage", "1Gi"),
        ])),
        ..Default::default()
    }
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
        .collect()
}

/// Who the pod is, for the captures' service identity.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// The service name stamped on captures.
    pub service: String,
}

/// What the operator added to a pod (the status annotation's content).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Added {
    /// Format version.
    pub v: u32,
    /// Hash of the spec and settings that produced it.
    pub hash: String,
    /// Containers added.
    pub containers: Vec<String>,
    /// Init containers added.
    pub init_containers: Vec<String>,
    /// Volumes added.
    pub volumes: Vec<String>,
    /// Environment variables added, per app container.
    #[serde(default)]
    pub env: BTreeMap<String, Vec<String>>,
    /// Volume mounts added, per app container.
    #[serde(default)]
    pub mounts: BTreeMap<String, Vec<String>>,
}

/// Why a sidecar could not be injected (the pod is admitted unchanged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Transparent mode on Autopilot without NET_ADMIN.
    #[error("sidecar.tapwire.dev/proxy-type transparent needs the NET_ADMIN capability for its iptables init container, which GKE Autopilot refuses unless the cluster was created with --workload-policies=allow-net-admin; on such a cluster set allowNetAdmin: true in the tapwire chart, otherwise use sidecar.tapwire.dev/proxy-type: dual with sidecar.tapwire.dev/proxy-env: \"true\"")]
    AutopilotNetAdmin,
    /// The pod already has a container with one of tapwire's names, not added by tapwire.
    #[error("the pod already has a container named {0} that tapwire did not add; rename it or remove it")]
    NameTaken(String),
    /// The pod has no spec.
    #[error("the pod has no spec")]
    NoSpec,
}

/// The status a pod carries, if tapwire injected it.
pub fn added(pod: &Pod) -> Option<Added> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(STATUS)
        .and_then(|s| serde_json::from_str(s).ok())
}

/// Removes what tapwire added; `true` when something changed.
pub fn remove(pod: &mut Pod) -> bool {
    let Some(added) = added(pod) else {
        return false;
    };
    if let Some(spec) = pod.spec.as_mut() {
        spec.containers
            .retain(|c| !added.containers.contains(&c.name));
        if let Some(init) = spec.init_containers.as_mut() {
            init.retain(|c| !added.init_containers.contains(&c.name));
        }
        if spec.init_containers.as_ref().is_some_and(Vec::is_empty) {
            spec.init_containers = None;
        }
        if let Some(v) = spec.volumes.as_mut() {
            v.retain(|v| !added.volumes.contains(&v.name));
        }
        if spec.volumes.as_ref().is_some_and(Vec::is_empty) {
            spec.volumes = None;
        }
        for c in &mut spec.containers {
            if let (Some(names), Some(env)) = (added.env.get(&c.name), c.env.as_mut()) {
                env.retain(|e| !names.contains(&e.name));
            }
            if c.env.as_ref().is_some_and(Vec::is_empty) {
                c.env = None;
            }
            if let (Some(names), Some(m)) = (added.mounts.get(&c.name), c.volume_mounts.as_mut()) {
                m.retain(|m| !names.contains(&m.name));
            }
            if c.volume_mounts.as_ref().is_some_and(Vec::is_empty) {
                c.volume_mounts = None;
            }
        }
    }
    if let Some(a) = pod.metadata.annotations.as_mut() {
        a.remove(STATUS);
    }
    if pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(BTreeMap::is_empty)
    {
        pod.metadata.annotations = None;
    }
    true
}

/// Injects the sidecar per `spec`. Idempotent: a pod already injected with
/// the same spec and settings is left exactly as it is; one injected with
/// different ones is first restored, then injected again.
pub fn inject(
    pod: &mut Pod,
    spec: &SidecarSpec,
    cfg: &InjectorConfig,
    id: &Identity,
) -> Result<(), Refused> {
    if spec.proxy_type == ProxyType::Transparent && cfg.autopilot && !cfg.allow_net_admin {
        return Err(Refused::AutopilotNetAdmin);
    }
    let hash = spec_hash(spec, cfg, id);
    if added(pod).is_some_and(|a| a.hash == hash) {
        return Ok(());
    }
    let mut candidate = pod.clone();
    remove(&mut candidate);
    let pod_spec = candidate.spec.as_mut().ok_or(Refused::NoSpec)?;
    for name in [PROXY_CONTAINER, INIT_CONTAINER] {
        let taken = pod_spec.containers.iter().any(|c| c.name == name)
            || pod_spec
                .init_containers
                .iter()
                .flatten()
                .any(|c| c.name == name);
        if taken {
            return Err(Refused::NameTaken(name.to_owned()));
        }
    }
    let mut added = Added {
        v: 1,
        hash,
        ..Added::default()
    };
    add_app_settings(pod_spec, spec, &mut added);
    pod_spec.containers.push(proxy_container(spec, cfg, id));
    added.containers.push(PROXY_CONTAINER.to_owned());
    if spec.proxy_type == ProxyType::Transparent {
        let init = init_container(spec, cfg);
        let list = pod_spec.init_containers.get_or_insert_with(Vec::new);
        if spec.init_first {
            list.insert(0, init);
        } else {
            list.push(init);
        }
        added.init_containers.push(INIT_CONTAINER.to_owned());
    }
    let volumes = pod_spec.volumes.get_or_insert_with(Vec::new);
    let mut add_volume = |v: Volume| {
        added.volumes.push(v.name.clone());
        volumes.push(v);
    };
    add_volume(Volume {
        name: DATA_VOLUME.into(),
        empty_dir: Some(Default::default()),
        ..Default::default()
    });
    if spec.tls_out {
        add_volume(secret_volume(
            CA_VOLUME,
            &[("ca.crt", "ca.crt"), ("ca.key", "ca.key")],
        ));
    }
    if spec.trust_env {
        add_volume(secret_volume(
            TRUST_VOLUME,
            &[("ca.crt", "ca.crt"), ("ca-bundle.crt", "ca-bundle.crt")],
        ));
    }
    let status = serde_json::to_string(&added).unwrap_or_default();
    candidate
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(STATUS.to_owned(), status);
    *pod = candidate;
    Ok(())
}

fn spec_hash(spec: &SidecarSpec, cfg: &InjectorConfig, id: &Identity) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&(spec, cfg, &id.service)).unwrap_or_default());
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Env and mounts for the app's own containers (all opt-in).
fn add_app_settings(pod_spec: &mut PodSpec, spec: &SidecarSpec, added: &mut Added) {
    let mut env: Vec<(&str, String)> = Vec::new();
    if spec.proxy_env && spec.proxy_type.has_forward_listener() {
        env.extend(proxy_env(&format!("http://127.0.0.1:{}", spec.out_port)));
    }
    if spec.trust_env {
        env.extend(trust_env(TRUST_DIR));
    }
    for c in &mut pod_spec.containers {
        let existing: Vec<String> = c.env.iter().flatten().map(|e| e.name.clone()).collect();
        let mut names = Vec::new();
        for (k, v) in &env {
            // The app's own setting wins; tapwire never overrides it.
            if !existing.iter().any(|e| e == k) {
                c.env.get_or_insert_with(Vec::new).push(EnvVar {
                    name: (*k).to_owned(),
                    value: Some(v.clone()),
                    value_from: None,
                });
                names.push((*k).to_owned());
            }
        }
        if !names.is_empty() {
            added.env.insert(c.name.clone(), names);
        }
        if spec.trust_env {
            c.volume_mounts
                .get_or_insert_with(Vec::new)
                .push(VolumeMount {
                    name: TRUST_VOLUME.into(),
                    mount_path: TRUST_DIR.into(),
                    read_only: Some(true),
                    ..Default::default()
                });
            added
                .mounts
                .insert(c.name.clone(), vec![TRUST_VOLUME.to_owned()]);
        }
    }
}

/// The variables that send an app's HTTP and HTTPS calls through the
/// forward proxy at `url` (loopback excepted).
pub fn proxy_env(url: &str) -> Vec<(&'static str, String)> {
    let mut env: Vec<(&'static str, String)> =
        ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]
            .into_iter()
            .map(|k| (k, url.to_owned()))
            .collect();
    for k in ["NO_PROXY", "no_proxy"] {
        env.push((k, "localhost,127.0.0.1,::1".to_owned()));
    }
    env
}

/// The variables that make common runtimes trust tapwire's CA, for a
/// volume with `ca.crt` and `ca-bundle.crt` (the CA plus public roots)
/// mounted at `dir`.
pub fn trust_env(dir: &str) -> Vec<(&'static str, String)> {
    let bundle = format!("{dir}/ca-bundle.crt");
    let mut env: Vec<(&'static str, String)> =
        ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"]
            .into_iter()
            .map(|k| (k, bundle.clone()))
            .collect();
    env.push(("NODE_EXTRA_CA_CERTS", format!("{dir}/ca.crt")));
    env
}

/// A volume of the chosen keys of the namespace's [`SIDECAR_SECRET`].
pub(crate) fn secret_volume(name: &str, items: &[(&str, &str)]) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(SIDECAR_SECRET.into()),
            items: Some(
                items
                    .iter()
                    .map(|(k, p)| KeyToPath {
                        key: (*k).into(),
                        path: (*p).into(),
                        mode: None,
                    })
                    .collect(),
            ),
            // The sidecar runs as a non-root UID and must read the key; only
            // the sidecar mounts this volume (app containers get the
            // certificate-only one).
            default_mode: Some(0o444),
            optional: Some(false),
        }),
        ..Default::default()
    }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                api_version: None,
            }),
            ..Default::default()
        }),
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn proxy_container(spec: &SidecarSpec, cfg: &InjectorConfig, id: &Identity) -> Container {
    let mut args: Vec<String> = vec![
        "proxy".into(),
        "--mode".into(),
        spec.proxy_type.as_str().into(),
        "--proxy-protocol".into(),
        spec.protocol.as_str().into(),
        "--bind".into(),
        "0.0.0.0".into(),
        "--in-port".into(),
        spec.in_port.to_string(),
        "--out-port".into(),
        spec.out_port.to_string(),
        "--admin-port".into(),
        ADMIN_PORT.to_string(),
    ];
    if matches!(spec.proxy_type, ProxyType::Dual | ProxyType::Reverse) {
        args.extend([
            "--app-host".into(),
            spec.app_host.to_string(),
            "--app-port".into(),
            spec.app_port.to_string(),
        ]);
    }
    if spec.tls_out {
        args.push("--tls-out".into());
    }
    let mut envs = vec![
        env("TAPWIRE_SERVICE", id.service.clone()),
        field_env("TAPWIRE_POD_NAMESPACE", "metadata.namespace"),
        field_env("TAPWIRE_POD_NAME", "metadata.name"),
        field_env("TAPWIRE_NODE_NAME", "spec.nodeName"),
        env("TAPWIRE_LOG_FORMAT", "json"),
        env("HOME", DATA_DIR),
    ];
    if let Some(c) = &cfg.cluster {
        envs.push(env("TAPWIRE_CLUSTER", c.clone()));
    }
    match &cfg.forwarder_url {
        Some(url) => {
            envs.push(env("TAPWIRE_FORWARDER_URL", url.clone()));
            envs.push(EnvVar {
                name: "TAPWIRE_API_KEY".into(),
                value: None,
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: SIDECAR_SECRET.into(),
                        key: "api-key".into(),
                        optional: Some(false),
                    }),
                    ..Default::default()
                }),
            });
        }
        None => envs.push(env("TAPWIRE_OUT", format!("{DATA_DIR}/captures"))),
    }
    let mut mounts = vec![VolumeMount {
        name: DATA_VOLUME.into(),
        mount_path: DATA_DIR.into(),
        ..Default::default()
    }];
    if spec.tls_out {
        envs.push(env("TAPWIRE_CA_DIR", CA_DIR));
        mounts.push(VolumeMount {
            name: CA_VOLUME.into(),
            mount_path: CA_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        });
    }
    let mut ports = Vec::new();
    if spec.proxy_type != ProxyType::Forward {
        ports.push(port("tapwire-in", spec.in_port));
    }
    ports.push(port("tapwire-admin", ADMIN_PORT));
    Container {
        name: PROXY_CONTAINER.into(),
        image: Some(cfg.image.clone()),
        args: Some(args),
        env: Some(envs),
        ports: Some(ports),
        volume_mounts: Some(mounts),
        resources: Some(sidecar_resources(spec, cfg)),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/readyz".into()),
                port: IntOrString::Int(i32::from(ADMIN_PORT)),
                ..Default::default()
            }),
            period_seconds: Some(5),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            run_as_user: Some(PROXY_UID),
            run_as_group: Some(PROXY_UID),
            run_as_non_root: Some(true),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                add: None,
                drop: Some(vec!["ALL".into()]),
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A named TCP container port (`protocol` set: it is part of the list's key
/// in server-side apply, with no default before Kubernetes 1.21).
pub(crate) fn port(name: &str, p: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: i32::from(p),
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

/// Annotation overrides on top of the installation's sidecar resources; on
/// Autopilot, requests and limits are made equal (requests win, as Autopilot
/// itself does) and ephemeral-storage is always declared.
fn sidecar_resources(spec: &SidecarSpec, cfg: &InjectorConfig) -> ResourceRequirements {
    let mut r = cfg.sidecar_resources.clone();
    for ((resource, kind), v) in &spec.resources {
        let map = if kind == "limits" {
            r.limits.get_or_insert_with(BTreeMap::new)
        } else {
            r.requests.get_or_insert_with(BTreeMap::new)
        };
        map.insert(resource.clone(), Quantity(v.clone()));
    }
    if cfg.autopilot {
        equalize(&mut r, &default_sidecar_resources());
    }
    r
}

/// Makes requests equal limits for cpu, memory and ephemeral-storage,
/// falling back to `defaults` for a resource given in neither.
fn equalize(r: &mut ResourceRequirements, defaults: &ResourceRequirements) {
    let mut out = BTreeMap::new();
    for res in ["cpu", "memory", "ephemeral-storage"] {
        let pick = |rr: &ResourceRequirements| {
            rr.requests
                .as_ref()
                .and_then(|m| m.get(res))
                .or_else(|| rr.limits.as_ref().and_then(|m| m.get(res)))
                .cloned()
        };
        if let Some(q) = pick(r).or_else(|| pick(defaults)) {
            out.insert(res.to_owned(), q);
        }
    }
    r.requests = Some(out.clone());
    r.limits = Some(out);
}

fn init_container(spec: &SidecarSpec, cfg: &InjectorConfig) -> Container {
    let inbound_ignore = match spec.ignore_inbound_ports.as_deref() {
        Some("*") => "*".to_owned(),
        Some(list) => format!("{ADMIN_PORT},{list}"),
        None => ADMIN_PORT.to_string(),
    };
    let mut args: Vec<String> = vec![
        "init".into(),
        "--proxy-uid".into(),
        PROXY_UID.to_string(),
        "--in-port".into(),
        spec.in_port.to_string(),
        "--out-port".into(),
        spec.out_port.to_string(),
        "--ignore-inbound-ports".into(),
        inbound_ignore,
    ];
    for (flag, v) in [
        ("--ignore-src-ips", &spec.ignore_src_ips),
        ("--ignore-dst-ips", &spec.ignore_dst_ips),
        ("--ignore-outbound-ports", &spec.ignore_outbound_ports),
    ] {
        if let Some(v) = v {
            args.extend([flag.to_owned(), v.clone()]);
        }
    }
    // A short-lived container: small, and equal requests and limits so it
    // passes Autopilot as it is.
    let fixed = quantities(&[
        ("cpu", "100m"),
        ("memory", "64Mi"),
        ("ephemeral-storage", "10Mi"),
    ]);
    Container {
        name: INIT_CONTAINER.into(),
        image: Some(cfg.image.clone()),
        args: Some(args),
        resources: Some(ResourceRequirements {
            requests: Some(fixed.clone()),
            limits: Some(fixed),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            // iptables needs root and NET_ADMIN (NET_RAW for its raw sockets).
            run_as_user: Some(0),
            run_as_non_root: Some(false),
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            capabilities: Some(Capabilities {
                add: Some(vec!["NET_ADMIN".into(), "NET_RAW".into()]),
                drop: Some(vec!["ALL".into()]),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Sets requests equal to limits (including ephemeral-storage) on every
/// container tapwire creates, for Autopilot; exposed for the operator's other
/// workloads (replay responder and generator).
pub fn autopilot_resources(r: &mut ResourceRequirements) {
    equalize(r, &default_sidecar_resources());
}

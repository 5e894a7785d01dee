//! The admission rules, one function per Autopilot policy.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Capabilities, ContainerPort, PodSpec, ResourceRequirements, SecurityContext, VolumeMount,
};
use serde::Serialize;

use crate::allowlist::Allowlist;
use crate::manifest::{ObjectRef, Workload};
use crate::quantity::Quantity;

/// Capabilities Autopilot lets any container add.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
    "SYS_PTRACE",
];

/// Resources whose requests must equal their limits.
pub const RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage"];

/// The only hostPath prefix Autopilot admits (read-only).
pub const HOST_PATH_PREFIX: &str = "/var/log/";

/// One Autopilot policy; the name is what Autopilot prints in its denials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Policy {
    /// Requests equal limits for cpu, memory and ephemeral-storage.
    #[serde(rename = "autogke-pod-limit-constraints")]
    PodLimits,
    /// Added capabilities only from the default allowlist (+ NET_ADMIN if allowed).
    #[serde(rename = "autogke-default-linux-capabilities")]
    LinuxCapabilities,
    /// No privileged containers.
    #[serde(rename = "autogke-disallow-privilege")]
    Privileged,
    /// No hostNetwork, hostPID, hostIPC.
    #[serde(rename = "autogke-disallow-hostnamespaces")]
    HostNamespaces,
    /// hostPath only read-only under /var/log/.
    #[serde(rename = "autogke-no-write-mode-hostpath")]
    HostPath,
    /// No hostPort.
    #[serde(rename = "autogke-no-host-port")]
    HostPort,
}

impl Policy {
    /// Every policy, in the order denials list them.
    pub const ALL: [Policy; 6] = [
        Policy::LinuxCapabilities,
        Policy::HostNamespaces,
        Policy::Privileged,
        Policy::HostPort,
        Policy::HostPath,
        Policy::PodLimits,
    ];

    /// The name Autopilot uses (`autogke-disallow-privilege`), to search for.
    pub fn name(self) -> &'static str {
        match self {
            Policy::PodLimits => "autogke-pod-limit-constraints",
            Policy::LinuxCapabilities => "autogke-default-linux-capabilities",
            Policy::Privileged => "autogke-disallow-privilege",
            Policy::HostNamespaces => "autogke-disallow-hostnamespaces",
            Policy::HostPath => "autogke-no-write-mode-hostpath",
            Policy::HostPort => "autogke-no-host-port",
        }
    }

    /// The policy with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One way an object breaks an Autopilot rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The object.
    pub object: ObjectRef,
    /// The container, for container-level rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The rule.
    pub policy: Policy,
    /// What Autopilot would say.
    pub message: String,
}

impl std::fmt::Display for Violation {
    /// `Deployment/shop/orders: [denied by autogke-disallow-privilege] container app is privileged; …`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: [denied by {}] {}",
            self.object, self.policy, self.message
        )
    }
}

/// What to allow beyond Autopilot's defaults.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// The cluster was created with `--workload-policies=allow-net-admin`:
    /// containers may add NET_ADMIN.
    pub allow_net_admin: bool,
    /// WorkloadAllowlists installed in the cluster: a workload they match
    /// is exempt from the policies they list.
    pub allowlists: Vec<Allowlist>,
}

/// Checks every workload; violations in input order, then container order.
pub fn check(workloads: &[Workload], opts: &CheckOptions) -> Vec<Violation> {
    let mut out = Vec::new();
    for w in workloads {
        let exempt: BTreeSet<Policy> = opts
            .allowlists
            .iter()
            .filter(|a| a.matches(&w.pod))
            .flat_map(|a| a.exemptions.iter().copied())
            .collect();
        let mut found = Vec::new();
        check_pod(
            &w.pod,
            opts,
            &mut |container: Option<&str>, policy, message| {
                found.push(Violation {
                    object: w.object.clone(),
                    container: container.map(str::to_owned),
                    policy,
                    message,
                });
            },
        );
        out.extend(found.into_iter().filter(|v| !exempt.contains(&v.policy)));
    }
    out
}

/// The message Autopilot's admission webhook would answer for one object's
/// violations: `GKE Warden rejected the request because it violates one or
/// more constraints. Violations details: {"[denied by …]":["…"]}`.
pub fn denial<'a>(violations: impl IntoIterator<Item = &'a Violation>) -> String {
    let mut by_policy: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for v in violations {
        by_policy
            .entry(format!("[denied by {}]", v.policy))
            .or_default()
            .push(&v.message);
    }
    let details = serde_json::to_string(&by_policy).unwrap_or_default();
    format!(
        "GKE Warden rejected the request because it violates one or more constraints. Violations details: {details}"
    )
}

/// A container of any sort, seen through the fields the rules read.
struct ContainerView<'a> {
    name: &'a str,
    /// Ephemeral containers may not set resources at all.
    ephemeral: bool,
    resources: Option<&'a ResourceRequirements>,
    security: Option<&'a SecurityContext>,
    ports: &'a [ContainerPort],
    mounts: &'a [VolumeMount],
}

fn containers(pod: &PodSpec) -> Vec<ContainerView<'_>> {
    let mut all = Vec::new();
    for c in pod.init_containers.iter().flatten().chain(&pod.containers) {
        all.push(ContainerView {
            name: &c.name,
            ephemeral: false,
            resources: c.resources.as_ref(),
            security: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            mounts: c.volume_mounts.as_deref().unwrap_or_default(),
        });
    }
    for c in pod.ephemeral_containers.iter().flatten() {
        all.push(ContainerView {
            name: &c.name,
            ephemeral: true,
            resources: c.resources.as_ref(),
            security: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            mounts: c.volume_mounts.as_deref().unwrap_or_default(),
        });
    }
    all
}

type Report<'r> = dyn FnMut(Option<&str>, Policy, String) + 'r;

fn check_pod(pod: &PodSpec, opts: &CheckOptions, report: &mut Report<'_>) {
    host_namespaces(pod, report);
    let host_paths: BTreeMap<&str, &str> = pod
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| Some((v.name.as_str(), v.host_path.as_ref()?.path.as_str())))
        .collect();
    for c in containers(pod) {
        capabilities(&c, opts.allow_net_admin, report);
        privileged(&c, report);
        host_ports(&c, report);
        host_path(&c, &host_paths, report);
        if !c.ephemeral {
            resources(&c, report);
        }
    }
}

fn host_namespaces(pod: &PodSpec, report: &mut Report<'_>) {
    for (set, field) in [
        (pod.host_pid, "hostPID"),
        (pod.host_ipc, "hostIPC"),
        (pod.host_network, "hostNetwork"),
    ] {
        if set == Some(true) {
            report(
                None,
                Policy::HostNamespaces,
                format!("enabling {field} is not allowed in Autopilot."),
            );
        }
    }
}

/// The allowed list as Autopilot prints it, NET_ADMIN in its place when allowed.
fn allowed_capabilities(allow_net_admin: bool) -> Vec<&'static str> {
    let mut caps = DEFAULT_CAPABILITIES.to_vec();
    if allow_net_admin {
        caps.push("NET_ADMIN");
        caps.sort_unstable();
    }
    caps
}

fn capabilities(c: &ContainerView<'_>, allow_net_admin: bool, report: &mut Report<'_>) {
    let Some(Capabilities { add: Some(add), .. }) =
        c.security.and_then(|s| s.capabilities.as_ref())
    else {
        return;
    };
    let allowed = allowed_capabilities(allow_net_admin);
    // Compared as written: Autopilot refuses `CAP_CHOWN` although it allows `CHOWN`.
    let denied: Vec<&str> = add
        .iter()
        .map(String::as_str)
        .filter(|cap| !allowed.contains(cap))
        .collect();
    if denied.is_empty() {
        return;
    }
    let mut message = format!(
        "linux capability '{}' on container '{}' not allowed; Autopilot only allows the capabilities: '{}'.",
        denied.join(","),
        c.name,
        allowed.join(",")
    );
    if denied.contains(&"NET_ADMIN") && !allow_net_admin {
        message.push_str(
            " NET_ADMIN is allowed on clusters created with --workload-policies=allow-net-admin (check with --allow-net-admin).",
        );
    }
    report(Some(c.name), Policy::LinuxCapabilities, message);
}

fn privileged(c: &ContainerView<'_>, report: &mut Report<'_>) {
    if c.security.and_then(|s| s.privileged) == Some(true) {
        report(
            Some(c.name),
            Policy::Privileged,
            format!(
                "container {} is privileged; not allowed in Autopilot",
                c.name
            ),
        );
    }
}

fn host_ports(c: &ContainerView<'_>, report: &mut Report<'_>) {
    let ports: Vec<String> = c
        .ports
        .iter()
        .filter_map(|p| p.host_port.filter(|&hp| hp != 0))
        .map(|p| p.to_string())
        .collect();
    if !ports.is_empty() {
        report(
            Some(c.name),
            Policy::HostPort,
            format!(
                "container {} specifies host ports [{}], which are disallowed in Autopilot.",
                c.name,
                ports.join(", ")
            ),
        );
    }
}

/// `/var/log` itself or below it, without `..` escaping it.
fn host_path_allowed(path: &str) -> bool {
    let under =
        path == HOST_PATH_PREFIX.trim_end_matches('/') || path.starts_with(HOST_PATH_PREFIX);
    under && !path.split('/').any(|seg| seg == "..")
}

fn host_path(c: &ContainerView<'_>, host_paths: &BTreeMap<&str, &str>, report: &mut Report<'_>) {
    for m in c.mounts {
        let Some(path) = host_paths.get(m.name.as_str()) else {
            continue;
        };
        if !host_path_allowed(path) {
            report(
                Some(c.name),
                Policy::HostPath,
                format!(
                    "hostPath volume {} used in container {} uses path {} which is not allowed in Autopilot. Allowed path prefixes for hostPath volumes are: [{HOST_PATH_PREFIX}].",
                    m.name, c.name, path
                ),
            );
        }
        if m.read_only != Some(true) {
            report(
                Some(c.name),
                Policy::HostPath,
                format!(
                    "hostPath volume {} in container {} is accessed in write mode; disallowed in Autopilot.",
                    m.name, c.name
                ),
            );
        }
    }
}

fn resources(c: &ContainerView<'_>, report: &mut Report<'_>) {
    let requests = c.resources.and_then(|r| r.requests.as_ref());
    let limits = c.resources.and_then(|r| r.limits.as_ref());
    for &res in RESOURCES {
        let req = requests.and_then(|m| m.get(res)).map(|q| q.0.as_str());
        let lim = limits.and_then(|m| m.get(res)).map(|q| q.0.as_str());
        let problem = match (req, lim) {
            (None, None) => format!(
                "container '{}' declares no {res} requests or limits; Autopilot needs requests equal to limits for cpu, memory and ephemeral-storage.",
                c.name
            ),
            (Some(r), None) => format!(
                "container '{}' {res} requests '{r}' has no limits; Autopilot needs {res} limits equal to requests.",
                c.name
            ),
            // The API server copies limits into missing requests.
            (None, Some(_)) => continue,
            (Some(r), Some(l)) => match (Quantity::parse(r), Quantity::parse(l)) {
                (Ok(rq), Ok(lq)) if rq == lq => continue,
                (Ok(_), Ok(_)) => format!(
                    "container '{}' {res} requests '{r}' is not equal to its limits '{l}'; Autopilot needs requests equal to limits.",
                    c.name
                ),
                (Err(e), _) | (_, Err(e)) => {
                    format!("container '{}' {res}: {e}.", c.name)
                }
            },
        };
        report(Some(c.name), Policy::PodLimits, problem);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifests;

    fn run(yaml: &str, opts: &CheckOptions) -> Vec<Violation> {
        check(&Manifests::parse(yaml).unwrap().workloads, opts)
    }

    fn messages(yaml: &str, opts: &CheckOptions) -> Vec<String> {
        run(yaml, opts).into_iter().map(|v| v.to_string()).collect()
    }

    const GOOD_RESOURCES: &str = r#"
        resources:
          requests: {cpu: 500m, memory: 512Mi, ephemeral-storage: 1Gi}
          limits: {cpu: "0.5", memory: "536870912", ephemeral-storage: 1024Mi}"#;

    /// A Deployment whose one container has `extra` under it.
    fn deployment(extra: &str, pod_extra: &str) -> String {
        format!(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
{pod_extra}
      containers:
      - name: app
        image: nginx{GOOD_RESOURCES}
{extra}
"#
        )
    }

    #[test]
    fn clean_workload_passes() {
        assert!(run(&deployment("", ""), &CheckOptions::default()).is_empty());
    }

    #[test]
    fn resources_must_be_equal_as_quantities() {
        let y = r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: a
    image: x
    resources:
      requests: {cpu: 100m, memory: 128Mi, ephemeral-storage: 100Mi}
      limits: {cpu: 200m, memory: 128Mi}
  - name: b
    image: x
  - name: c
    image: x
    resources:
      limits: {cpu: "1", memory: 1Gi, ephemeral-storage: 1Gi}
  - name: d
    image: x
    resources:
      requests: {cpu: lots, memory: 1Gi, ephemeral-storage: 1Gi}
      limits: {cpu: "1", memory: 1Gi, ephemeral-storage: 1Gi}
"#;
        let v = run(y, &CheckOptions::default());
        assert!(v.iter().all(|v| v.policy == Policy::PodLimits));
        let m: Vec<&str> = v.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(
            m,
            [
                "container 'a' cpu requests '100m' is not equal to its limits '200m'; Autopilot needs requests equal to limits.",
                "container 'a' ephemeral-storage requests '100Mi' has no limits; Autopilot needs ephemeral-storage limits equal to requests.",
                "container 'b' declares no cpu requests or limits; Autopilot needs requests equal to limits for cpu, memory and ephemeral-storage.",
                "container 'b' declares no memory requests or limits; Autopilot needs requests equal to limits for cpu, memory and ephemeral-storage.",
                "container 'b' declares no ephemeral-storage requests or limits; Autopilot needs requests equal to limits for cpu, memory and ephemeral-storage.",
                "container 'd' cpu: \"lots\" is not a quantity (no number); write it like 100m, 0.5, 128Mi, 1Gi or 1e3.",
            ]
        );
        assert_eq!(v[0].container.as_deref(), Some("a"));
        assert_eq!(v[0].object.to_string(), "Pod/p");
    }

    #[test]
    fn init_containers_are_checked_too() {
        let y = deployment(
            "",
            "      initContainers:\n      - name: tapwire-init\n        image: x\n        securityContext: {capabilities: {add: [NET_ADMIN]}}",
        );
        let v = run(&y, &CheckOptions::default());
        assert!(v.iter().any(
            |v| v.container.as_deref() == Some("tapwire-init") && v.policy == Policy::PodLimits
        ));
        assert!(v.iter().any(|v| v.policy == Policy::LinuxCapabilities));
    }

    #[test]
    fn capabilities_from_the_default_list_pass() {
        let y = deployment(
            "        securityContext: {capabilities: {add: [NET_RAW, NET_BIND_SERVICE, SYS_PTRACE], drop: [ALL]}}",
            "",
        );
        assert!(run(&y, &CheckOptions::default()).is_empty());
    }

    #[test]
    fn other_capabilities_fail_net_admin_only_when_not_allowed() {
        let y = deployment(
            "        securityContext: {capabilities: {add: [NET_ADMIN]}}",
            "",
        );
        let v = messages(&y, &CheckOptions::default());
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].starts_with("Deployment/shop/web: [denied by autogke-default-linux-capabilities] linux capability 'NET_ADMIN' on container 'app' not allowed; Autopilot only allows the capabilities: 'AUDIT_WRITE,CHOWN,DAC_OVERRIDE,FOWNER,FSETID,KILL,MKNOD,NET_BIND_SERVICE,NET_RAW,SETFCAP,SETGID,SETPCAP,SETUID,SYS_CHROOT,SYS_PTRACE'."), "{}", v[0]);
        assert!(v[0].contains("--workload-policies=allow-net-admin"));

        let allow = CheckOptions {
            allow_net_admin: true,
            ..CheckOptions::default()
        };
        assert!(run(&y, &allow).is_empty());

        let y = deployment(
            "        securityContext: {capabilities: {add: [NET_ADMIN, SYS_ADMIN, CAP_CHOWN]}}",
            "",
        );
        let v = run(&y, &allow);
        assert_eq!(v.len(), 1);
        assert!(v[0].message.starts_with("linux capability 'SYS_ADMIN,CAP_CHOWN' on container 'app' not allowed; Autopilot only allows the capabilities: 'AUDIT_WRITE,CHOWN,DAC_OVERRIDE,FOWNER,FSETID,KILL,MKNOD,NET_ADMIN,NET_BIND_SERVICE,"), "{}", v[0].message);
    }

    #[test]
    fn privileged_fails_unprivileged_passes() {
        let y = deployment("        securityContext: {privileged: true}", "");
        let v = run(&y, &CheckOptions::default());
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].policy, Policy::Privileged);
        assert_eq!(
            v[0].message,
            "container app is privileged; not allowed in Autopilot"
        );
        let y = deployment("        securityContext: {privileged: false}", "");
        assert!(run(&y, &CheckOptions::default()).is_empty());
    }

    #[test]
    fn host_namespaces_fail() {
        let y = deployment(
            "",
            "      hostNetwork: true\n      hostPID: true\n      hostIPC: true",
        );
        let v = run(&y, &CheckOptions::default());
        let m: Vec<&str> = v.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(
            m,
            [
                "enabling hostPID is not allowed in Autopilot.",
                "enabling hostIPC is not allowed in Autopilot.",
                "enabling hostNetwork is not allowed in Autopilot."
            ]
        );
        assert!(v.iter().all(|v| v.container.is_none()));
        let y = deployment("", "      hostNetwork: false");
        assert!(run(&y, &CheckOptions::default()).is_empty());
    }

    #[test]
    fn host_ports_fail_container_ports_pass() {
        let y = deployment(
            "        ports: [{containerPort: 80, hostPort: 8080}, {containerPort: 81}]",
            "",
        );
        let v = run(&y, &CheckOptions::default());
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].message,
            "container app specifies host ports [8080], which are disallowed in Autopilot."
        );
        let y = deployment("        ports: [{containerPort: 80}]", "");
        assert!(run(&y, &CheckOptions::default()).is_empty());
    }

    #[test]
    fn host_path_only_read_only_under_var_log() {
        let pod = "      volumes:\n      - {name: logs, hostPath: {path: /var/log/pods}}\n      - {name: varlog, hostPath: {path: /var/log}}\n      - {name: proc, hostPath: {path: /proc}}\n      - {name: sneaky, hostPath: {path: /var/log/../../etc}}\n      - {name: scratch, emptyDir: {}}";
        let ok = deployment(
            "        volumeMounts:\n        - {name: logs, mountPath: /l, readOnly: true}\n        - {name: varlog, mountPath: /v, readOnly: true}\n        - {name: scratch, mountPath: /s}",
            pod,
        );
        assert!(run(&ok, &CheckOptions::default()).is_empty());

        let bad = deployment(
            "        volumeMounts:\n        - {name: logs, mountPath: /l}\n        - {name: proc, mountPath: /host/proc, readOnly: true}\n        - {name: sneaky, mountPath: /e, readOnly: true}",
            pod,
        );
        let v = run(&bad, &CheckOptions::default());
        let m: Vec<&str> = v.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(
            m,
            [
                "hostPath volume logs in container app is accessed in write mode; disallowed in Autopilot.",
                "hostPath volume proc used in container app uses path /proc which is not allowed in Autopilot. Allowed path prefixes for hostPath volumes are: [/var/log/].",
                "hostPath volume sneaky used in container app uses path /var/log/../../etc which is not allowed in Autopilot. Allowed path prefixes for hostPath volumes are: [/var/log/].",
            ]
        );
        assert!(v.iter().all(|v| v.policy == Policy::HostPath));
    }

    #[test]
    fn ephemeral_containers_are_checked_except_resources() {
        let y = r#"
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: n}
spec:
  containers: []
  ephemeralContainers:
  - name: debug
    image: busybox
    securityContext: {privileged: true}
"#;
        let v = run(y, &CheckOptions::default());
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].policy, Policy::Privileged);
        assert_eq!(v[0].object.to_string(), "Pod/n/p");
    }

    #[test]
    fn every_workload_kind_is_opened() {
        let pod = "metadata: {}\n      spec:\n        containers: [{name: c, image: x}]";
        let y = format!(
            r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: s}}
spec: {{selector: {{}}, template: {{{pod_inline}}}}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: d}}
spec:
  selector: {{}}
  template:
      {pod}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {{name: r}}
spec:
  selector: {{}}
  template:
      {pod}
---
apiVersion: batch/v1
kind: Job
metadata: {{name: j}}
spec:
  template:
      {pod}
---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: cj}}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
          metadata: {{}}
          spec:
            containers: [{{name: c, image: x}}]
"#,
            pod_inline = "spec: {containers: [{name: c, image: x}]}",
        );
        let v = run(&y, &CheckOptions::default());
        let objects: BTreeSet<String> = v.iter().map(|v| v.object.to_string()).collect();
        assert_eq!(
            objects,
            [
                "CronJob/cj",
                "DaemonSet/d",
                "Job/j",
                "ReplicaSet/r",
                "StatefulSet/s"
            ]
            .into_iter()
            .map(String::from)
            .collect()
        );
    }

    #[test]
    fn denial_groups_messages_by_policy() {
        let y = deployment(
            "        securityContext: {privileged: true, capabilities: {add: [NET_ADMIN]}}",
            "      hostNetwork: true",
        );
        let v = run(&y, &CheckOptions::default());
        let d = denial(&v);
        assert!(d.starts_with("GKE Warden rejected the request because it violates one or more constraints. Violations details: {\"[denied by autogke-default-linux-capabilities]\":[\"linux capability 'NET_ADMIN' on container 'app' not allowed;"), "{d}");
        assert!(d.contains("\"[denied by autogke-disallow-hostnamespaces]\":[\"enabling hostNetwork is not allowed in Autopilot.\"]"));
        assert!(d.contains("\"[denied by autogke-disallow-privilege]\":[\"container app is privileged; not allowed in Autopilot\"]"));
    }

    #[test]
    fn policy_names_round_trip() {
        for p in Policy::ALL {
            assert_eq!(Policy::from_name(p.name()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.name());
        }
        assert_eq!(Policy::from_name("autogke-nope"), None);
    }
}

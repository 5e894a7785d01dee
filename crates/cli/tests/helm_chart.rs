//! The Helm chart (`charts/tapwire`) through Helm's real template engine
//! (helm-python-sdk's libhelm, driven by `tests/helm/render.py`): lint,
//! rendering with the value sets users pick, every object read back as the
//! Kubernetes type it claims, the schema refusing typos, and the Autopilot
//! rendering passing `tapwire autopilot check`.
//!
//! Skips with a reason when `helm_python` cannot be imported, unless `CI` is
//! set (then it fails: see .ci/deps.sh).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVar, PodSpec, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tapwire_test_support::{require_python_modules, run_with_timeout};

const BIN: &str = env!("CARGO_BIN_EXE_tapwire");
const DIGEST: &str = "sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881";

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/tapwire")
}

/// Runs requests through `render.py`; `None` (after printing why) when
/// helm_python is missing outside CI.
fn helm(requests: &[Value]) -> Option<Vec<Value>> {
    if !require_python_modules(&["helm_python"]) {
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let req = dir.path().join("requests.json");
    std::fs::write(&req, serde_json::to_vec(requests).expect("json")).expect("write requests");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helm/render.py");
    let out = run_with_timeout(
        Command::new("python3").arg(&script).arg(&req),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "render.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("render.py prints JSON"))
}

fn render_req(values: Value) -> Value {
    json!({"op": "render", "chart": chart_dir(), "values": values, "name": "tapwire", "namespace": "tapwire"})
}

/// One rendered object, as YAML parsed into JSON.
#[derive(Debug, Clone)]
struct Obj {
    template: String,
    value: Value,
}

impl Obj {
    fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }
    fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }
    fn to<T: DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.value.clone()).unwrap_or_else(|e| {
            panic!(
                "{} {} in {} is not a valid {}: {e}\n{}",
                self.kind(),
                self.name(),
                self.template,
                std::any::type_name::<T>(),
                serde_json::to_string_pretty(&self.value).unwrap_or_default()
            )
        })
    }
}

/// A successful render: the objects, and every manifest joined as `helm template` prints it.
#[derive(Debug)]
struct Rendered {
    objects: Vec<Obj>,
    yaml: String,
}

impl Rendered {
    fn from_result(result: &Value) -> Self {
        assert_eq!(result["ok"], true, "render failed: {}", result["error"]);
        let manifests: BTreeMap<String, String> =
            serde_json::from_value(result["manifests"].clone()).expect("manifests map");
        let mut objects = Vec::new();
        let mut yaml = String::new();
        for (template, text) in &manifests {
            if template.ends_with("NOTES.txt") {
                continue;
            }
            yaml.push_str(&format!("---\n# Source: {template}\n{text}\n"));
            for doc in serde_norway::Deserializer::from_str(text) {
                let value: Value = serde::Deserialize::deserialize(doc)
                    .unwrap_or_else(|e| panic!("{template} is not YAML: {e}\n{text}"));
                if !value.is_null() {
                    objects.push(Obj {
                        template: template.clone(),
                        value,
                    });
                }
            }
        }
        Self { objects, yaml }
    }

    fn find(&self, kind: &str, name: &str) -> Option<&Obj> {
        self.objects
            .iter()
            .find(|o| o.kind() == kind && o.name() == name)
    }

    fn get<T: DeserializeOwned>(&self, kind: &str, name: &str) -> T {
        self.find(kind, name)
            .unwrap_or_else(|| {
                let have: Vec<String> = self
                    .objects
                    .iter()
                    .map(|o| format!("{}/{}", o.kind(), o.name()))
                    .collect();
                panic!("no {kind}/{name} rendered; have {have:?}")
            })
            .to()
    }

    /// Every object parses as the type its kind names; other kinds have
    /// at least apiVersion, kind and metadata.name.
    fn check_types(&self) {
        for o in &self.objects {
            match o.kind() {
                "Deployment" => drop(o.to::<Deployment>()),
                "DaemonSet" => drop(o.to::<DaemonSet>()),
                "Service" => drop(o.to::<Service>()),
                "Secret" => drop(o.to::<Secret>()),
                "ConfigMap" => drop(o.to::<ConfigMap>()),
                "ServiceAccount" => drop(o.to::<ServiceAccount>()),
                "ClusterRole" => drop(o.to::<ClusterRole>()),
                "ClusterRoleBinding" => drop(o.to::<ClusterRoleBinding>()),
                "MutatingWebhookConfiguration" => drop(o.to::<MutatingWebhookConfiguration>()),
                other => {
                    assert!(
                        o.value["apiVersion"]
                            .as_str()
                            .is_some_and(|v| v.contains('/')),
                        "{other} in {} has no group apiVersion",
                        o.template
                    );
                    assert!(!other.is_empty(), "object without kind in {}", o.template);
                    assert!(
                        !o.name().is_empty(),
                        "{other} without a name in {}",
                        o.template
                    );
                }
            }
        }
    }
}

fn render_all(value_sets: &[Value]) -> Option<Vec<Rendered>> {
    let reqs: Vec<Value> = value_sets.iter().cloned().map(render_req).collect();
    let results = helm(&reqs)?;
    Some(results.iter().map(Rendered::from_result).collect())
}

/// A render that must fail; its error message.
fn render_error(values: Value) -> Option<String> {
    let results = helm(&[render_req(values.clone())])?;
    let r = &results[0];
    assert_eq!(r["ok"], false, "{values} rendered, but should not have");
    Some(r["error"].as_str().unwrap_or_default().to_owned())
}

fn pod(d: &Deployment) -> &PodSpec {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod spec")
}

fn env<'a>(c: &'a Container, name: &str) -> Option<&'a EnvVar> {
    c.env.iter().flatten().find(|e| e.name == name)
}

fn env_value(c: &Container, name: &str) -> String {
    env(c, name)
        .unwrap_or_else(|| panic!("container {} has no {name}", c.name))
        .value
        .clone()
        .unwrap_or_default()
}

/// Runs the built binary; (exit code, stdout, stderr).
fn tapwire(args: &[&str]) -> (i32, String, String) {
    let out = run_with_timeout(Command::new(BIN).args(args), Duration::from_secs(60));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn autopilot_check(yaml: &str, extra: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, yaml).expect("write rendered chart");
    let path = file.to_string_lossy().into_owned();
    let mut args = vec!["autopilot", "check", "-f", path.as_str()];
    args.extend_from_slice(extra);
    tapwire(&args)
}

#[test]
fn chart_lints_clean() {
    let sets = [
        json!({}),
        json!({"autopilot": true, "allowNetAdmin": true}),
        json!({"webhook": {"certManager": {"enabled": true}}, "operator": {"replicas": 2}}),
        json!({"autopilot": true, "ebpf": {"enabled": true}, "image": {"digest": DIGEST}}),
    ];
    let reqs: Vec<Value> = sets
        .iter()
        .map(|v| json!({"op": "lint", "chart": chart_dir(), "values": v}))
        .collect();
    let Some(results) = helm(&reqs) else { return };
    for (values, r) in sets.iter().zip(&results) {
        assert_eq!(r["ok"], true, "{values}: {}", r["error"]);
        let lint = &r["lint"];
        assert_eq!(lint["errors"], json!([]), "{values}: {lint}");
        // Severity 2 is a warning, 3 an error; 1 (info, "icon is recommended") is fine.
        for m in lint["messages"].as_array().expect("messages") {
            assert!(m["severity"].as_i64() < Some(2), "{values}: {m}");
        }
    }
}

#[test]
fn every_value_set_renders_valid_kubernetes_objects() {
    let sets = [
        json!({}),
        json!({"autopilot": true}),
        json!({"webhook": {"certManager": {"enabled": true}}}),
        json!({"ebpf": {"enabled": true, "configuration": {"capture": {"targets": [
            {"name": "payments",
             "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "payments"}},
             "podSelector": {"matchLabels": {"app": "payments-api"}}}]}}}}),
        json!({"apiKeySecret": "my-key"}),
        json!({"filterRule": "version: 1\ndefault: keep\nrules:\n  - name: probes\n    action: drop\n    match: {path: /healthz}\n"}),
        json!({"dlp": {"enabled": false}}),
        json!({"storage": {"url": "s3://captures/prod", "secretName": "s3-creds",
                           "env": [{"name": "AWS_REGION", "value": "eu-west-1"}]},
               "dlp": {"config": {"detectors": {"ip": false}}},
               "clusterName": "prod-eu", "image": {"digest": DIGEST}}),
    ];
    let Some(rendered) = render_all(&sets) else {
        return;
    };
    for r in &rendered {
        r.check_types();
    }
    let [defaults, autopilot, cert_manager, ebpf, api_key_secret, custom_filter, no_dlp, storage] =
        &rendered[..]
    else {
        unreachable!()
    };

    // The operator: command line, environment, hardening, probes.
    let op: Deployment = defaults.get("Deployment", "tapwire-operator");
    let spec = pod(&op);
    let c = &spec.containers[0];
    assert_eq!(
        c.args.as_deref().unwrap_or_default(),
        [
            "operator",
            "--listen",
            "0.0.0.0:9443",
            "--admin-port",
            "4145"
        ]
    );
    assert_eq!(env_value(c, "TAPWIRE_OPERATOR_SERVICE"), "tapwire-operator");
    assert_eq!(
        env_value(c, "TAPWIRE_WEBHOOK_CONFIG"),
        "tapwire-sidecar-injector"
    );
    assert_eq!(
        env_value(c, "TAPWIRE_FORWARDER_URL"),
        "http://tapwire-forwarder.tapwire.svc:4150"
    );
    assert_eq!(env_value(c, "TAPWIRE_CA_DIR"), "/etc/tapwire/ca");
    assert_eq!(env_value(c, "TAPWIRE_AUTOPILOT"), "false");
    assert_eq!(env_value(c, "TAPWIRE_ALLOW_NET_ADMIN"), "false");
    assert_eq!(env_value(c, "TAPWIRE_DISABLE_SMART_DNS"), "false");
    assert_eq!(
        env_value(c, "TAPWIRE_SIDECAR_IMAGE"),
        "ghcr.io/tapwire/tapwire:0.1.0"
    );
    assert!(env(c, "TAPWIRE_WEBHOOK_CERT_DIR").is_none());
    let ns = env(c, "TAPWIRE_NAMESPACE").and_then(|e| e.value_from.as_ref());
    assert_eq!(
        ns.and_then(|v| v.field_ref.as_ref())
            .map(|f| f.field_path.as_str()),
        Some("metadata.namespace")
    );
    let key = env(c, "TAPWIRE_API_KEY")
        .and_then(|e| e.value_from.as_ref())
        .and_then(|v| v.secret_key_ref.as_ref())
        .expect("api key from a secret");
    assert_eq!(
        (key.name.as_str(), key.key.as_str()),
        ("tapwire-api-key", "api-key")
    );
    let sc = c.security_context.as_ref().expect("security context");
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(
        sc.capabilities.as_ref().and_then(|c| c.drop.clone()),
        Some(vec!["ALL".to_owned()])
    );
    let psc = spec
        .security_context
        .as_ref()
        .expect("pod security context");
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(
        psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );
    let probe_path = |p: Option<&k8s_openapi::api::core::v1::Probe>| {
        p.and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.clone())
    };
    assert_eq!(
        probe_path(c.liveness_probe.as_ref()).as_deref(),
        Some("/healthz")
    );
    assert_eq!(
        probe_path(c.readiness_probe.as_ref()).as_deref(),
        Some("/readyz")
    );

    let svc: Service = defaults.get("Service", "tapwire-operator");
    let port = &svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .expect("ports")[0];
    assert_eq!(port.port, 443);
    let webhook_port = c
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("webhook"))
        .expect("webhook port");
    assert_eq!(webhook_port.container_port, 9443);

    // The webhook configuration.
    let mwc: MutatingWebhookConfiguration =
        defaults.get("MutatingWebhookConfiguration", "tapwire-sidecar-injector");
    let wh = &mwc.webhooks.as_ref().expect("webhooks")[0];
    assert_eq!(wh.failure_policy.as_deref(), Some("Ignore"));
    assert_eq!(wh.timeout_seconds, Some(5));
    assert_eq!(wh.side_effects, "NoneOnDryRun");
    assert_eq!(wh.reinvocation_policy.as_deref(), Some("IfNeeded"));
    assert_eq!(wh.admission_review_versions, ["v1"]);
    assert!(
        wh.client_config.ca_bundle.is_none(),
        "the operator owns caBundle"
    );
    let target = wh.client_config.service.as_ref().expect("service");
    assert_eq!(target.path.as_deref(), Some("/mutate"));
    assert_eq!(target.name, "tapwire-operator");
    let rule = &wh.rules.as_ref().expect("rules")[0];
    assert_eq!(rule.operations.as_deref(), Some(&["CREATE".to_owned()][..]));
    assert_eq!(rule.resources.as_deref(), Some(&["pods".to_owned()][..]));
    let expr = &wh
        .namespace_selector
        .as_ref()
        .and_then(|s| s.match_expressions.clone())
        .expect("namespace selector")[0];
    assert_eq!(expr.key, "kubernetes.io/metadata.name");
    assert_eq!(expr.operator, "NotIn");
    assert_eq!(
        expr.values.as_deref(),
        Some(&["kube-system".to_owned(), "tapwire".to_owned()][..])
    );

    // RBAC: what the operator does, and no more.
    let role: ClusterRole = defaults.get("ClusterRole", "tapwire-operator");
    let rules = role.rules.expect("rules");
    let grants = |group: &str, resource: &str, verb: &str| {
        rules.iter().any(|r| {
            r.api_groups.iter().flatten().any(|g| g == group)
                && r.resources.iter().flatten().any(|x| x == resource)
                && r.verbs.iter().any(|v| v == verb)
        })
    };
    for (g, res, verbs) in [
        ("", "pods", &["get", "list"][..]),
        ("apps", "deployments", &["get", "list"]),
        ("apps", "statefulsets", &["get", "list"]),
        ("apps", "daemonsets", &["get", "list"]),
        ("apps", "replicasets", &["get", "list"]),
        ("batch", "jobs", &["get", "list"]),
        ("", "secrets", &["create", "get", "update", "patch"]),
        ("", "events", &["create", "patch"]),
        ("events.k8s.io", "events", &["create", "patch"]),
        (
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            &["get", "patch"],
        ),
    ] {
        for v in verbs {
            assert!(grants(g, res, v), "operator may not {v} {g}/{res}");
        }
    }
    assert!(!grants("", "secrets", "delete"));
    assert!(
        !grants("", "secrets", "list"),
        "listing every Secret is not needed"
    );

    // Secrets: API key, CA (kept), DLP key (64 hex digits, kept).
    let api: Secret = defaults.get("Secret", "tapwire-api-key");
    let api_key = api
        .data
        .as_ref()
        .and_then(|d| d.get("api-key"))
        .expect("api-key");
    assert_eq!(api_key.0.len(), 40);
    let ca: Secret = defaults.get("Secret", "tapwire-ca");
    let data = ca.data.as_ref().expect("ca data");
    assert!(String::from_utf8_lossy(&data["ca.crt"].0).starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(String::from_utf8_lossy(&data["ca.key"].0).contains("PRIVATE KEY-----"));
    let keep = |s: &Secret| {
        s.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("helm.sh/resource-policy"))
            .cloned()
    };
    assert_eq!(keep(&ca).as_deref(), Some("keep"));
    let dlp: Secret = defaults.get("Secret", "tapwire-dlp-key");
    let dlp_key =
        String::from_utf8(dlp.data.as_ref().expect("data")["key"].0.clone()).expect("utf8");
    assert_eq!(dlp_key.len(), 64);
    assert!(dlp_key.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(keep(&dlp).as_deref(), Some("keep"));

    // The forwarder.
    let fwd: Deployment = defaults.get("Deployment", "tapwire-forwarder");
    let fc = &pod(&fwd).containers[0];
    assert_eq!(fc.args.as_deref().unwrap_or_default(), ["forwarder"]);
    assert_eq!(env_value(fc, "TAPWIRE_FORWARDER_LISTEN"), "0.0.0.0:4150");
    assert_eq!(env_value(fc, "TAPWIRE_FILTER_RULE"), "standard");
    assert_eq!(
        env_value(fc, "TAPWIRE_DLP_KEY_FILE"),
        "/etc/tapwire/dlp-key/key"
    );
    assert_eq!(
        env_value(fc, "TAPWIRE_STORAGE_URL"),
        "file:///var/lib/tapwire/store"
    );
    assert_eq!(
        fc.security_context
            .as_ref()
            .and_then(|s| s.read_only_root_filesystem),
        Some(true)
    );
    assert!(defaults.find("DaemonSet", "tapwire-nettap").is_none());
    let fsvc: Service = defaults.get("Service", "tapwire-forwarder");
    assert_eq!(
        fsvc.spec.and_then(|s| s.ports).expect("ports")[0].port,
        4150
    );

    // Autopilot: the sidecar resources handed to the operator are equal.
    let op: Deployment = autopilot.get("Deployment", "tapwire-operator");
    let c = &pod(&op).containers[0];
    assert_eq!(env_value(c, "TAPWIRE_AUTOPILOT"), "true");
    let sidecar: Value =
        serde_json::from_str(&env_value(c, "TAPWIRE_SIDECAR_RESOURCES")).expect("resources JSON");
    assert_eq!(sidecar["requests"], sidecar["limits"]);
    assert_eq!(sidecar["limits"]["cpu"], "100m");
    assert_eq!(sidecar["limits"]["ephemeral-storage"], "100Mi");

    // cert-manager: Issuer, Certificate, injection annotation, mounted certificate.
    let issuer = cert_manager
        .find("Issuer", "tapwire-selfsigned")
        .expect("Issuer");
    assert_eq!(issuer.value["apiVersion"], "cert-manager.io/v1");
    let cert = cert_manager
        .find("Certificate", "tapwire-webhook-tls")
        .expect("Certificate");
    assert!(cert.value["spec"]["dnsNames"]
        .as_array()
        .expect("dnsNames")
        .contains(&json!("tapwire-operator.tapwire.svc")));
    let mwc: MutatingWebhookConfiguration =
        cert_manager.get("MutatingWebhookConfiguration", "tapwire-sidecar-injector");
    assert_eq!(
        mwc.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("cert-manager.io/inject-ca-from"))
            .map(String::as_str),
        Some("tapwire/tapwire-webhook-tls")
    );
    let op: Deployment = cert_manager.get("Deployment", "tapwire-operator");
    let c = &pod(&op).containers[0];
    let dir = env_value(c, "TAPWIRE_WEBHOOK_CERT_DIR");
    assert!(c
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| m.mount_path == dir && m.name == "webhook-tls"));
    assert!(pod(&op).volumes.iter().flatten().any(|v| v
        .secret
        .as_ref()
        .and_then(|s| s.secret_name.as_deref())
        == Some("tapwire-webhook-tls")));

    // eBPF: the DaemonSet as `tapwire autopilot allowlist` describes it, targets in its ConfigMap.
    let ds: DaemonSet = ebpf.get("DaemonSet", "tapwire-nettap");
    let spec = ds.spec.and_then(|s| s.template.spec).expect("pod spec");
    assert_eq!(spec.host_pid, Some(true));
    assert_eq!(spec.host_network, Some(true));
    let c = &spec.containers[0];
    assert_eq!(c.name, tapwire_autopilot::nettap::CONTAINER);
    assert_eq!(
        c.args.as_deref().unwrap_or_default(),
        tapwire_autopilot::nettap::ARGS
    );
    assert_eq!(
        c.security_context.as_ref().and_then(|s| s.privileged),
        Some(true)
    );
    for &(name, host, mount, read_only) in tapwire_autopilot::nettap::HOST_PATHS {
        let vol = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("no volume {name}"));
        assert_eq!(vol.host_path.as_ref().map(|h| h.path.as_str()), Some(host));
        let m = c
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no mount {name}"));
        assert_eq!(
            (m.mount_path.as_str(), m.read_only),
            (mount, Some(read_only))
        );
    }
    let cm: ConfigMap = ebpf.get("ConfigMap", "tapwire-nettap");
    let config: Value =
        serde_norway::from_str(&cm.data.expect("data")["config.yaml"]).expect("config YAML");
    assert_eq!(config["capture"]["targets"][0]["name"], "payments");
    assert_eq!(
        config["capture"]["targets"][0]["podSelector"]["matchLabels"]["app"],
        "payments-api"
    );

    // An existing API key Secret: none rendered, every reference points at it.
    assert!(api_key_secret.find("Secret", "tapwire-api-key").is_none());
    assert!(api_key_secret.find("Secret", "my-key").is_none());
    for d in ["tapwire-operator", "tapwire-forwarder"] {
        let dep: Deployment = api_key_secret.get("Deployment", d);
        let r = env(&pod(&dep).containers[0], "TAPWIRE_API_KEY")
            .and_then(|e| e.value_from.clone())
            .and_then(|v| v.secret_key_ref)
            .expect("secret ref");
        assert_eq!(r.name, "my-key");
    }

    // A custom filter rule: in a ConfigMap, mounted, and named in the env.
    let cm: ConfigMap = custom_filter.get("ConfigMap", "tapwire-forwarder-filter");
    assert!(cm.data.expect("data")["rules.yaml"].contains("name: probes"));
    let fwd: Deployment = custom_filter.get("Deployment", "tapwire-forwarder");
    let fc = &pod(&fwd).containers[0];
    let path = env_value(fc, "TAPWIRE_FILTER_RULE");
    assert_eq!(path, "/etc/tapwire/filter/rules.yaml");
    assert!(fc
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| path.starts_with(&m.mount_path) && m.name == "filter"));
    assert!(defaults
        .find("ConfigMap", "tapwire-forwarder-filter")
        .is_none());

    // DLP disabled: --no-dlp, no key.
    let fwd: Deployment = no_dlp.get("Deployment", "tapwire-forwarder");
    let fc = &pod(&fwd).containers[0];
    assert_eq!(
        fc.args.as_deref().unwrap_or_default(),
        ["forwarder", "--no-dlp"]
    );
    assert!(env(fc, "TAPWIRE_DLP_KEY_FILE").is_none());
    assert!(no_dlp.find("Secret", "tapwire-dlp-key").is_none());

    // Storage in a bucket, credentials from a Secret, DLP policy, digest pinned.
    let fwd: Deployment = storage.get("Deployment", "tapwire-forwarder");
    let fc = &pod(&fwd).containers[0];
    assert_eq!(env_value(fc, "TAPWIRE_STORAGE_URL"), "s3://captures/prod");
    assert_eq!(env_value(fc, "AWS_REGION"), "eu-west-1");
    assert_eq!(
        env_value(fc, "TAPWIRE_DLP_CONFIG"),
        "/etc/tapwire/dlp/config.yaml"
    );
    assert_eq!(
        fc.env_from
            .as_ref()
            .and_then(|e| e[0].secret_ref.as_ref())
            .map(|s| s.name.as_str()),
        Some("s3-creds")
    );
    assert!(!fc.volume_mounts.iter().flatten().any(|m| m.name == "store"));
    let dlp_cm: ConfigMap = storage.get("ConfigMap", "tapwire-forwarder-dlp");
    assert!(dlp_cm.data.expect("data")["config.yaml"].contains("ip: false"));
    assert_eq!(
        fc.image.as_deref(),
        Some(format!("ghcr.io/tapwire/tapwire@{DIGEST}").as_str())
    );
    let op: Deployment = storage.get("Deployment", "tapwire-operator");
    let oc = &pod(&op).containers[0];
    assert_eq!(env_value(oc, "TAPWIRE_CLUSTER"), "prod-eu");
    // The replay controller copies the same credentials next to each replay.
    assert_eq!(env_value(oc, "TAPWIRE_REPLAY_STORE_SECRET"), "s3-creds");
    assert_eq!(env_value(oc, "TAPWIRE_REPLAY_STORE_ENV"), "AWS_REGION");
}

#[test]
fn schema_rejects_typos() {
    for (values, expected) in [
        (
            json!({"autoPilot": true}),
            "additional properties 'autoPilot' not allowed",
        ),
        (
            json!({"image": {"tga": "1.0"}}),
            "additional properties 'tga' not allowed",
        ),
        (
            json!({"ebpf": {"configuration": {"capture": {"targets": [{"name": "x", "podselector": {}}]}}}}),
            "additional properties 'podselector' not allowed",
        ),
        (json!({"image": {"digest": "1234"}}), "/image/digest"),
        (
            json!({"webhook": {"timeoutSeconds": "5"}}),
            "/webhook/timeoutSeconds",
        ),
    ] {
        let Some(error) = render_error(values.clone()) else {
            return;
        };
        assert!(error.contains(expected), "{values}: {error}");
    }
}

#[test]
fn autopilot_rendering_passes_the_autopilot_check() {
    let sets = [
        json!({"autopilot": true}),
        json!({"autopilot": true, "allowNetAdmin": true, "webhook": {"certManager": {"enabled": true}},
               "operator": {"replicas": 2}, "dlp": {"enabled": false}}),
        json!({"autopilot": true, "ebpf": {"enabled": true}, "image": {"digest": DIGEST}}),
    ];
    let Some(rendered) = render_all(&sets) else {
        return;
    };
    for r in &rendered[..2] {
        let (code, out, err) = autopilot_check(&r.yaml, &[]);
        assert_eq!(code, 0, "autopilot check failed:\n{out}\n{err}");
        assert!(err.contains("workloads would pass"), "{err}");
    }

    // The eBPF DaemonSet passes only with its WorkloadAllowlist, and it
    // names that allowlist for Autopilot.
    let with_ebpf = &rendered[2];
    let ds: DaemonSet = with_ebpf.get("DaemonSet", "tapwire-nettap");
    let labels = ds
        .spec
        .and_then(|s| s.template.metadata)
        .and_then(|m| m.labels)
        .expect("pod labels");
    assert_eq!(
        labels
            .get(tapwire_autopilot::nettap::MATCHING_LABEL)
            .map(String::as_str),
        Some("tapwire-nettap-2d711642b726")
    );
    let (code, out, _) = autopilot_check(&with_ebpf.yaml, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("[denied by autogke-disallow-privilege] container nettap is privileged"),
        "{out}"
    );
    assert!(out.contains(
        "[denied by autogke-disallow-hostnamespaces] enabling hostPID is not allowed in Autopilot."
    ));
    assert!(out.contains("hostPath volume host-proc used in container nettap uses path /proc which is not allowed in Autopilot."));
    assert!(!out.contains("autogke-pod-limit-constraints"), "{out}");

    let dir = tempfile::tempdir().expect("temp dir");
    let allowlist = dir.path().join("allowlist.yaml");
    let image = format!("ghcr.io/tapwire/tapwire@{DIGEST}");
    let al = allowlist.to_string_lossy().into_owned();
    let (code, _, err) = tapwire(&["autopilot", "allowlist", "--image", &image, "-o", &al]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = autopilot_check(&with_ebpf.yaml, &["--allowlist", &al]);
    assert_eq!(code, 0, "with the allowlist:\n{out}\n{err}");

    // An unpinned image is refused with the reason.
    let (code, _, err) = tapwire(&[
        "autopilot",
        "allowlist",
        "--image",
        "ghcr.io/tapwire/tapwire:0.1.0",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("is not pinned to a digest"), "{err}");
}

#[test]
fn broken_overrides_fail_with_clear_messages() {
    // The chart refuses unequal requests and limits under autopilot.
    let Some(error) = render_error(json!({"autopilot": true, "sidecar": {"resources": {
        "requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}}}}))
    else {
        return;
    };
    assert!(
        error.contains("autopilot: true needs sidecar.resources.requests.cpu equal to sidecar.resources.limits.cpu (got 100m and 200m)"),
        "{error}"
    );
    let Some(error) = render_error(json!({"autopilot": true, "forwarder": {"resources": {
        "requests": {"ephemeral-storage": null}, "limits": {"ephemeral-storage": null}}}}))
    else {
        return;
    };
    assert!(
        error.contains("autopilot: true needs forwarder.resources.requests.ephemeral-storage"),
        "{error}"
    );
    let Some(error) = render_error(json!({"autopilot": true, "ebpf": {"enabled": true}})) else {
        return;
    };
    assert!(error.contains("needs image.digest"), "{error}");
    let Some(error) = render_error(json!({"operator": {"replicas": 2}})) else {
        return;
    };
    assert!(
        error.contains("needs webhook.certManager.enabled"),
        "{error}"
    );

    // Without autopilot the chart renders what it is told; the checker
    // catches it, with Autopilot's wording.
    let Some(rendered) =
        render_all(&[json!({"operator": {"resources": {"limits": {"cpu": "200m"}}}})])
    else {
        return;
    };
    let (code, out, _) = autopilot_check(&rendered[0].yaml, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Deployment/tapwire/tapwire-operator"), "{out}");
    assert!(out.contains("[denied by autogke-pod-limit-constraints] container 'operator' cpu requests '100m' is not equal to its limits '200m'"), "{out}");

    // A capability Autopilot refuses, added to the rendered forwarder.
    let Some(rendered) = render_all(&[json!({"autopilot": true})]) else {
        return;
    };
    let mut fwd = rendered[0]
        .find("Deployment", "tapwire-forwarder")
        .expect("forwarder")
        .value
        .clone();
    fwd["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] =
        json!(["NET_ADMIN"]);
    let yaml = serde_norway::to_string(&fwd).expect("yaml");
    let (code, out, _) = autopilot_check(&yaml, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("[denied by autogke-default-linux-capabilities] linux capability 'NET_ADMIN' on container 'forwarder' not allowed; Autopilot only allows the capabilities: 'AUDIT_WRITE,CHOWN,DAC_OVERRIDE,FOWNER,FSETID,KILL,MKNOD,NET_BIND_SERVICE,NET_RAW,SETFCAP,SETGID,SETPCAP,SETUID,SYS_CHROOT,SYS_PTRACE'."), "{out}");
    let (code, out, _) = autopilot_check(&yaml, &["--allow-net-admin"]);
    assert_eq!(code, 0, "{out}");
    let (code, _, err) = autopilot_check("kind: [", &[]);
    assert_eq!(code, 2);
    assert!(err.contains("document 1: not valid YAML"), "{err}");
}

#[test]
fn generated_ca_is_one_tapwire_can_sign_with() {
    let Some(rendered) = render_all(&[json!({})]) else {
        return;
    };
    let ca: Secret = rendered[0].get("Secret", "tapwire-ca");
    let data = ca.data.expect("data");
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_dir = dir.path().join("ca");
    std::fs::create_dir(&ca_dir).expect("mkdir");
    for f in ["ca.crt", "ca.key"] {
        std::fs::write(ca_dir.join(f), &data[f].0).expect("write");
    }
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            ca_dir.join("ca.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
    }
    let out = dir.path().join("out");
    let (code, _, err) = tapwire(&[
        "ca",
        "export",
        "--dir",
        &ca_dir.to_string_lossy(),
        "--out",
        &out.to_string_lossy(),
    ]);
    assert_eq!(code, 0, "the chart's CA does not load: {err}");
    let pem = std::fs::read_to_string(out.join("tapwire-ca.crt")).expect("exported CA");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
}

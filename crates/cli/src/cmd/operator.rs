//! `tapwire operator`: the sidecar injection webhook.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tapwire_operator::replay::controller::{ControllerConfig, ControllerMetrics};
use tapwire_operator::replay::webhook::{SnapshotCatalog, StoreCatalog};
use tapwire_operator::{
    certs, Cluster, InjectorConfig, OperatorConfig, SidecarSecret, WebhookConfigName,
};

/// Runs the admission webhook that injects the capture sidecar.
///
/// Pods of workloads annotated `sidecar.tapwire.dev/inject: "true"` get the
/// tapwire proxy as a sidecar (and, in transparent mode, the `tapwire init`
/// container that installs the iptables redirect). See docs/operator.md for
/// every annotation.
///
/// Example (what the Helm chart runs):
///   tapwire operator --listen 0.0.0.0:9443 --sidecar-image REGISTRY/tapwire@sha256:...
///     --forwarder-url http://tapwire-forwarder.tapwire.svc:4150   (API key in TAPWIRE_API_KEY)
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct OperatorCmd {
    #[command(subcommand)]
    action: Option<OperatorAction>,
    /// HTTPS listener for the webhook (the API server POSTs to /mutate).
    #[arg(long, default_value = "0.0.0.0:9443", env = "TAPWIRE_WEBHOOK_LISTEN")]
    listen: SocketAddr,
    /// Admin port for /metrics, /healthz and /readyz (0 disables it).
    #[arg(long, default_value_t = 4145, env = "TAPWIRE_ADMIN_PORT")]
    admin_port: u16,
    /// Address the admin port binds to.
    #[arg(long, default_value = "0.0.0.0", env = "TAPWIRE_ADMIN_BIND")]
    admin_bind: IpAddr,
    /// The operator's own namespace: never injected.
    #[arg(long, default_value = "tapwire", env = "TAPWIRE_NAMESPACE")]
    namespace: String,
    /// The Service in front of the webhook (names in the generated certificate).
    #[arg(
        long,
        default_value = "tapwire-operator",
        env = "TAPWIRE_OPERATOR_SERVICE"
    )]
    service: String,
    /// The MutatingWebhookConfiguration whose caBundle the operator fills in
    /// with the CA of its generated certificate.
    #[arg(
        long,
        default_value = "tapwire-sidecar-injector",
        env = "TAPWIRE_WEBHOOK_CONFIG"
    )]
    webhook_config: String,
    /// The MutatingWebhookConfiguration that defaults TrafficReplays (its
    /// caBundle is filled in too; empty to skip).
    #[arg(
        long,
        default_value = "tapwire-replay-defaulter",
        env = "TAPWIRE_REPLAY_DEFAULTER_CONFIG"
    )]
    replay_defaulter_config: String,
    /// The ValidatingWebhookConfiguration that checks TrafficReplays (its
    /// caBundle is filled in too; empty to skip).
    #[arg(
        long,
        default_value = "tapwire-replay-validator",
        env = "TAPWIRE_REPLAY_VALIDATOR_CONFIG"
    )]
    replay_validator_config: String,
    /// Serve the certificate in DIR/tls.crt and DIR/tls.key instead of
    /// generating one (cert-manager; it also fills in the caBundle).
    #[arg(long, value_name = "DIR", env = "TAPWIRE_WEBHOOK_CERT_DIR")]
    cert_dir: Option<PathBuf>,
    /// Extra names (DNS names or IPs) for the generated certificate, for a
    /// webhook reached by URL instead of through its Service.
    #[arg(long = "cert-san", value_delimiter = ',', value_name = "NAME")]
    cert_sans: Vec<String>,
    /// The tapwire image for injected containers (pin a digest in production).
    #[arg(long, env = "TAPWIRE_SIDECAR_IMAGE")]
    sidecar_image: Option<String>,
    /// The forwarder sidecars send captures to; without it, sidecars keep
    /// captures in an emptyDir volume.
    #[arg(long, value_name = "URL", env = "TAPWIRE_FORWARDER_URL")]
    forwarder_url: Option<String>,
    /// The forwarder's API key, copied into each injected namespace's
    /// tapwire-sidecar Secret.
    #[arg(long, env = "TAPWIRE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Directory with the interception CA (ca.crt, ca.key) for
    /// `sidecar.tapwire.dev/tls-out`.
    #[arg(long, value_name = "DIR", env = "TAPWIRE_CA_DIR")]
    ca_dir: Option<PathBuf>,
    /// Cluster name stamped on captures.
    #[arg(long, env = "TAPWIRE_CLUSTER")]
    cluster: Option<String>,
    /// GKE Autopilot: requests equal limits on every injected container;
    /// transparent mode is refused unless --allow-net-admin.
    #[arg(long, env = "TAPWIRE_AUTOPILOT")]
    autopilot: bool,
    /// The Autopilot cluster was created with
    /// --workload-policies=allow-net-admin, so transparent mode may be used.
    #[arg(long, env = "TAPWIRE_ALLOW_NET_ADMIN")]
    allow_net_admin: bool,
    /// Sidecar resources as JSON ({"requests":{"cpu":"100m"},"limits":{...}});
    /// annotations override them per workload.
    #[arg(long, value_name = "JSON", env = "TAPWIRE_SIDECAR_RESOURCES")]
    sidecar_resources: Option<String>,
    /// Accepted for chart compatibility. tapwire's sidecar names peers from
    /// SNI and Host headers and never rewrites DNS, so there is nothing to
    /// disable; see docs/operator.md.
    #[arg(long, env = "TAPWIRE_DISABLE_SMART_DNS", hide = true)]
    disable_smart_dns: bool,
    /// The tapwire store holding snapshots (`file://`, `s3://`, `gs://`,
    /// `az://`), for TrafficReplay validation; without it the snapshot
    /// checks are skipped with a warning.
    #[arg(long = "storage", value_name = "URL", env = "TAPWIRE_STORAGE_URL")]
    storage: Option<String>,
    /// Secret in the operator's namespace with the store's credentials
    /// (chart value storage.secretName). The replay controller copies it
    /// next to each TrafficReplay for its responder and generator pods.
    #[arg(long, value_name = "SECRET", env = "TAPWIRE_REPLAY_STORE_SECRET")]
    replay_store_secret: Option<String>,
    /// Environment variable of the operator's own (AWS_REGION, ...) that the
    /// replay's responder and generator need too (comma-separated or repeated).
    #[arg(
        long,
        value_name = "NAME",
        value_delimiter = ',',
        env = "TAPWIRE_REPLAY_STORE_ENV"
    )]
    replay_store_env: Vec<String>,
    /// How long reading a pod's owner workload may take (the API server
    /// gives the whole webhook call a few seconds).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    lookup_timeout: Duration,
}

/// Tools around the operator.
#[derive(Debug, clap::Subcommand)]
enum OperatorAction {
    /// Print the CustomResourceDefinitions (TrafficReplay) as YAML, as
    /// committed under charts/tapwire/crds/.
    ///
    /// Example: tapwire operator crd | kubectl apply -f -
    Crd,
}

pub(crate) fn run(cmd: OperatorCmd) -> anyhow::Result<ExitCode> {
    if let Some(OperatorAction::Crd) = cmd.action {
        super::println_out(&tapwire_operator::replay::crd_yaml()?);
        return Ok(ExitCode::SUCCESS);
    }
    let image: String = cmd.sidecar_image.clone().filter(|i| !i.is_empty()).ok_or_else(|| {
        anyhow::anyhow!("--sidecar-image (TAPWIRE_SIDECAR_IMAGE) is required: the tapwire image injected containers run")
    })?;
    let mut injector = InjectorConfig::new(image.clone());
    injector.forwarder_url = cmd.forwarder_url.clone().filter(|u| !u.is_empty());
    injector.cluster = cmd.cluster.clone().filter(|c| !c.is_empty());
    injector.autopilot = cmd.autopilot;
    injector.allow_net_admin = cmd.allow_net_admin;
    if let Some(json) = cmd
        .sidecar_resources
        .as_deref()
        .filter(|j| !j.trim().is_empty())
    {
        injector.sidecar_resources = serde_json::from_str(json).with_context(|| {
            format!("--sidecar-resources (TAPWIRE_SIDECAR_RESOURCES) is not a resources object such as {{\"requests\":{{\"cpu\":\"100m\"}}}}: {json}")
        })?;
    }
    if injector.forwarder_url.is_some() && cmd.api_key.as_deref().is_none_or(str::is_empty) {
        anyhow::bail!("--forwarder-url is set but no API key: set TAPWIRE_API_KEY (the forwarder's key) so sidecars can authenticate");
    }
    let secret = SidecarSecret::new(cmd.api_key.clone(), cmd.ca_dir.as_deref())
        .context("cannot read the interception CA; create one with `tapwire ca init --dir DIR` or let the Helm chart generate it")?;
    let cert = match &cmd.cert_dir {
        Some(dir) => certs::load(dir)?,
        None => {
            let mut names = certs::service_names(&cmd.service, &cmd.namespace);
            names.extend(cmd.cert_sans.iter().cloned());
            certs::generate(&names)?
        }
    };
    let snapshots = match cmd.storage.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => {
            let catalog = StoreCatalog::open(url).with_context(|| {
                format!("--storage (TAPWIRE_STORAGE_URL) {url:?} is not a usable store URL")
            })?;
            Some(Arc::new(catalog) as Arc<dyn SnapshotCatalog + Send + Sync>)
        }
        None => None,
    };
    let config = OperatorConfig {
        listen: cmd.listen,
        admin: (cmd.admin_port != 0).then(|| SocketAddr::new(cmd.admin_bind, cmd.admin_port)),
        namespace: cmd.namespace.clone(),
        injector,
        secret,
        cert,
        // With cert-manager, its CA injector fills in the caBundles.
        webhook_configs: if cmd.cert_dir.is_some() {
            Vec::new()
        } else {
            [
                WebhookConfigName::Mutating(cmd.webhook_config.clone()),
                WebhookConfigName::Mutating(cmd.replay_defaulter_config.clone()),
                WebhookConfigName::Validating(cmd.replay_validator_config.clone()),
            ]
            .into_iter()
            .filter(|c| !matches!(c, WebhookConfigName::Mutating(n) | WebhookConfigName::Validating(n) if n.is_empty()))
            .collect()
        },
        snapshots,
    };
    // The replay controller needs the store its responder and generator read.
    let controller = cmd.storage.clone().filter(|u| !u.is_empty()).map(|store| {
        let mut c = ControllerConfig::new(image.clone(), store);
        c.autopilot = cmd.autopilot;
        c.namespace = cmd.namespace.clone();
        c.store_secret = cmd.replay_store_secret.clone().filter(|s| !s.is_empty());
        c.store_env = cmd
            .replay_store_env
            .iter()
            .filter(|n| !n.is_empty())
            .filter_map(|n| match std::env::var(n) {
                Ok(v) => Some((n.clone(), v)),
                Err(_) => {
                    tracing::warn!(variable = %n, "--replay-store-env names a variable the operator does not have; replays will not get it");
                    None
                }
            })
            .collect();
        c
    });
    let mut registry = prometheus_client::registry::Registry::default();
    let controller_metrics = ControllerMetrics::register(&mut registry);
    super::runtime()?.block_on(async move {
        let client = kube::Client::try_default().await.context(
            "cannot reach the Kubernetes API: run in a pod with a service account, or set KUBECONFIG",
        )?;
        let cluster = Cluster::new(client.clone(), cmd.lookup_timeout);
        let running = tapwire_operator::start_with(config, Some(cluster), registry).await?;
        match controller {
            Some(c) => {
                tokio::spawn(tapwire_operator::replay::controller::run(
                    client,
                    c,
                    controller_metrics,
                ));
            }
            None => tracing::warn!(
                "no --storage (TAPWIRE_STORAGE_URL): the TrafficReplay controller is off, replays stay Pending"
            ),
        }
        tracing::info!(
            webhook = %running.addr,
            admin = ?running.admin_addr,
            namespace = %cmd.namespace,
            "operator started"
        );
        super::proxy::stop_signal().await;
        running.shutdown(Duration::from_secs(5)).await;
        Ok(ExitCode::SUCCESS)
    })
}

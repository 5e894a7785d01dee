//! `tapwire mock`: serve a snapshot's outbound traffic back to the service.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use tapwire_mock::{
    JsonPath, Mapping, MatchConfig, MockConfig, MockServer, Responder, ResponderConfig, Timing,
    DEFAULT_SCOPE_HEADERS,
};
use tapwire_store::{Location, SnapshotStore};

use super::runtime;
use crate::args::{default_home, StoreArg};

/// How long open requests may finish after a stop signal.
const GRACE: Duration = Duration::from_secs(5);

/// Answer a service's outbound calls from a snapshot.
#[derive(Debug, clap::Args)]
pub(crate) struct MockCmd {
    /// Snapshot to serve: id, unique id prefix, or name.
    #[arg(long)]
    pub(crate) snapshot: String,
    #[command(flatten)]
    pub(crate) store: StoreArg,
    /// Address the listeners bind to (use 0.0.0.0 in a pod).
    #[arg(long, default_value = "127.0.0.1", env = "TAPWIRE_BIND")]
    pub(crate) bind: IpAddr,
    /// Forward proxy port: point HTTP_PROXY and HTTPS_PROXY here.
    #[arg(long, default_value_t = 4140, env = "TAPWIRE_MOCK_PORT")]
    pub(crate) port: u16,
    /// Reverse listener standing in for one recorded host, e.g.
    /// `9443=payments.internal:443` or `9443=https://payments.internal`
    /// (repeatable). It speaks TLS when the client does.
    #[arg(long = "map", value_name = "PORT=HOST:PORT")]
    pub(crate) maps: Vec<Mapping>,
    /// Admin port for /metrics, /healthz and /readyz (0 disables it).
    #[arg(long, default_value_t = 4146, env = "TAPWIRE_MOCK_ADMIN_PORT")]
    pub(crate) admin_port: u16,
    /// Directory holding the CA whose leaves terminate TLS (created if missing).
    #[arg(long, default_value_os_t = default_home().join("ca"), env = "TAPWIRE_CA_DIR")]
    pub(crate) ca_dir: PathBuf,
    /// Query parameter left out of matching (repeatable).
    #[arg(long, value_name = "NAME")]
    pub(crate) ignore_query: Vec<String>,
    /// JSON body field left out of matching, e.g. `$.meta.request_id` or
    /// `$.items.*.nonce` (repeatable).
    #[arg(long, value_name = "PATH")]
    pub(crate) ignore_json_path: Vec<JsonPath>,
    /// Request header added to matching (repeatable; none by default).
    #[arg(long, value_name = "NAME")]
    pub(crate) match_header: Vec<String>,
    /// Request header whose value keeps one client's sequences apart from
    /// another's (repeatable; replaces the default authorization and cookie;
    /// `none` turns scoping off).
    #[arg(long, value_name = "NAME", default_values_t = DEFAULT_SCOPE_HEADERS.iter().map(|s| (*s).to_owned()))]
    pub(crate) sequence_scope_header: Vec<String>,
    /// Forward requests that match nothing to the real host instead of answering 404.
    #[arg(long)]
    pub(crate) passthrough: bool,
    /// PEM bundle of extra CAs to trust when passing through, besides the system roots.
    #[arg(long, env = "TAPWIRE_EXTRA_CA")]
    pub(crate) extra_ca: Option<PathBuf>,
    /// Response delay: none, recorded (as long as the real upstream took),
    /// or a factor of the recorded latency such as 2x or 0.5x.
    #[arg(long, default_value = "none")]
    pub(crate) timing: Timing,
    /// Write one JSON line per answered request here (hit, miss or passthrough).
    #[arg(long, value_name = "FILE")]
    pub(crate) results: Option<PathBuf>,
    /// Serve only recorded traffic with this key, `service:host:port` as
    /// `tapwire inspect` shows it, or `*` (repeatable; default all).
    #[arg(long = "key", value_name = "SELECTOR", value_parser = parse_selector)]
    pub(crate) keys: Vec<String>,
}

/// A `--key` value: `*` or `service:host:port`.
pub(crate) fn parse_selector(s: &str) -> Result<String, String> {
    if tapwire_model::is_selector(s) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a traffic key; use service:host:port (e.g. shop:payments.internal:443) or *"
        ))
    }
}

pub(crate) fn run(cmd: MockCmd) -> anyhow::Result<ExitCode> {
    let ca = tapwire_ca::load_or_init(&cmd.ca_dir)
        .with_context(|| format!("cannot load the CA in {}", cmd.ca_dir.display()))?;
    runtime()?.block_on(async {
        let store = SnapshotStore::new(Location::open(&cmd.store.store)?);
        let snap = store
            .load(&cmd.snapshot)
            .await
            .with_context(|| format!("cannot load snapshot {:?} from {}", cmd.snapshot, cmd.store.store))?;
        let all: Vec<_> = snap.outbound().collect();
        let mut outbound: Vec<_> = all
            .iter()
            .copied()
            .filter(|e| tapwire_model::selects(&cmd.keys, &e.key()))
            .collect();
        outbound.sort_by_key(|e| (e.start, e.id));
        let scope_headers = cmd
            .sequence_scope_header
            .iter()
            .filter(|h| !h.eq_ignore_ascii_case("none"))
            .cloned()
            .collect();
        let responder = Responder::new(
            outbound,
            ResponderConfig {
                matching: MatchConfig {
                    ignore_query: cmd.ignore_query.clone(),
                    ignore_json_paths: cmd.ignore_json_path.clone(),
                    match_headers: cmd.match_header.clone(),
                },
                scope_headers,
            },
        );
        if !cmd.keys.is_empty() {
            tracing::info!(
                keys = %cmd.keys.join(" "),
                kept = responder.len(),
                recorded = all.len(),
                "serving only the recorded responses selected by --key"
            );
        }
        if responder.is_empty() && !cmd.keys.is_empty() {
            let known: std::collections::BTreeSet<String> = all.iter().map(|e| e.key()).collect();
            let known: Vec<String> = known.into_iter().collect();
            tracing::warn!(
                snapshot = %snap.manifest.name,
                keys = %cmd.keys.join(" "),
                available = %if known.is_empty() { "none".to_owned() } else { known.join(", ") },
                "no recorded outbound HTTP exchange has a key selected by --key; every request will miss; pass --key with one of the available keys"
            );
        } else if responder.is_empty() {
            tracing::warn!(snapshot = %snap.manifest.name, "the snapshot holds no outbound HTTP exchanges; every request will miss");
        }
        let config = MockConfig {
            bind: cmd.bind,
            forward_port: Some(cmd.port),
            maps: cmd.maps.clone(),
            admin_port: (cmd.admin_port != 0).then_some(cmd.admin_port),
            ca: Some(Arc::new(ca)),
            passthrough: cmd.passthrough,
            extra_ca: cmd.extra_ca.clone(),
            timing: cmd.timing,
            results: cmd.results.clone(),
            ..MockConfig::default()
        };
        let responses = responder.len();
        let running = MockServer::start(config, Arc::new(responder), Registry::default())
            .await
            .context("choose other ports with --port, --map or --admin-port")?;
        let proxy = running
            .forward_addr
            .map(|a| a.to_string())
            .unwrap_or_default();
        eprintln!(
            "mocking {} ({responses} recorded responses): set HTTP_PROXY and HTTPS_PROXY to http://{proxy}; press Ctrl-C to stop",
            snap.manifest.name
        );
        for (m, a) in cmd.maps.iter().zip(&running.map_addrs) {
            eprintln!("  {a} answers as {}:{}", m.host, m.port);
        }
        stop_signal().await;
        let acc = running.shutdown(GRACE).await;
        eprintln!("{acc}");
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on Ctrl-C or SIGTERM (how Kubernetes stops a container).
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            },
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

//! `tapwire forwarder`, `tapwire filter test`, and the data-loss-prevention
//! options shared with `tapwire proxy` and `tapwire record`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use prometheus_client::registry::Registry;
use tapwire_dlp::{DlpConfig, RedactionKey, Redactor};
use tapwire_filter::Rules;
use tapwire_forwarder::{ForwarderConfig, Metrics, Pipeline};
use tapwire_store::Location;

use super::{read_recording, runtime};
use crate::args::default_home;

/// Data-loss prevention options.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DlpArgs {
    /// Redaction policy in YAML (detectors, key lists, allowlists, extra
    /// patterns; see docs/dlp.md). Without it, the built-in policy.
    #[arg(long, value_name = "FILE", env = "TAPWIRE_DLP_CONFIG")]
    pub(crate) dlp_config: Option<PathBuf>,
    /// File holding the redaction key (hex, at least 16 bytes; make one
    /// with `openssl rand -hex 32`). The same value always becomes the same
    /// token under one key, so every replica must share it. The variable
    /// TAPWIRE_DLP_KEY may hold the key itself instead.
    #[arg(long, value_name = "FILE", env = "TAPWIRE_DLP_KEY_FILE")]
    pub(crate) dlp_key_file: Option<PathBuf>,
}

impl DlpArgs {
    /// Builds the redactor. Without a key, `local_key` names a file that is
    /// created with a fresh key when missing (for one machine); with neither,
    /// it is an error.
    pub(crate) fn redactor(
        &self,
        enabled: bool,
        local_key: Option<&Path>,
    ) -> anyhow::Result<Redactor> {
        let config = match (&self.dlp_config, enabled) {
            (_, false) => DlpConfig::disabled(),
            (Some(path), true) => DlpConfig::load(path)?,
            (None, true) => DlpConfig::default(),
        };
        let key = if let Ok(hex) = std::env::var("TAPWIRE_DLP_KEY") {
            RedactionKey::from_hex(&hex).context("TAPWIRE_DLP_KEY")?
        } else if let Some(path) = &self.dlp_key_file {
            RedactionKey::from_file(path)?
        } else if let Some(path) = local_key {
            local_redaction_key(path)?
        } else {
            bail!("no redaction key: pass --dlp-key-file FILE or set TAPWIRE_DLP_KEY (create one with `openssl rand -hex 32`); every forwarder replica must use the same key");
        };
        let redactor = Redactor::new(&config, key)?;
        tracing::info!(
            key_id = redactor.key_id(),
            enabled = redactor.is_enabled(),
            "data-loss prevention ready"
        );
        Ok(redactor)
    }
}

/// Reads the machine's redaction key, creating it (mode 0600) on first use.
fn local_redaction_key(path: &Path) -> anyhow::Result<RedactionKey> {
    if !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let hex = tapwire_ca::random_hex(32)?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        match opts.open(path) {
            Ok(mut f) => {
                std::io::Write::write_all(&mut f, format!("{hex}\n").as_bytes())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                eprintln!("created redaction key {}", path.display());
            }
            // Another process made it first; use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
        }
    }
    Ok(RedactionKey::from_file(path)?)
}

/// The default key file for one machine.
pub(crate) fn local_key_path() -> PathBuf {
    default_home().join("dlp.key")
}

/// Run the forwarder: receive captures from proxies, filter, redact, store.
#[derive(Debug, clap::Args)]
pub(crate) struct ForwarderCmd {
    /// Ingest address proxies send batches to.
    #[arg(
        long,
        default_value = "127.0.0.1:4150",
        env = "TAPWIRE_FORWARDER_LISTEN"
    )]
    pub(crate) listen: SocketAddr,
    /// Address for /metrics, /healthz and /readyz ("off" disables it).
    #[arg(
        long,
        default_value = "127.0.0.1:4151",
        env = "TAPWIRE_FORWARDER_ADMIN"
    )]
    pub(crate) admin_listen: MaybeAddr,
    /// Where segments are written: a directory, file://, s3://BUCKET/PREFIX,
    /// gs://BUCKET/PREFIX or az://CONTAINER/PREFIX (credentials from the
    /// standard AWS_*, GOOGLE_*, AZURE_* environment; see docs/storage.md).
    #[arg(long, default_value = "tapwire-store", env = "TAPWIRE_STORAGE_URL")]
    pub(crate) storage: String,
    /// API key proxies must present (comma-separated to accept several while
    /// rotating).
    #[arg(long, env = "TAPWIRE_API_KEY", hide_env_values = true)]
    pub(crate) api_key: Option<String>,
    /// File holding the API key(s), one per line.
    #[arg(long, value_name = "FILE")]
    pub(crate) api_key_file: Option<PathBuf>,
    /// Filter rules: `standard` (drops probes and health checks), `none`
    /// (keeps everything), or a YAML file (see docs/filter.md).
    #[arg(long, default_value = "standard", env = "TAPWIRE_FILTER_RULE")]
    pub(crate) filter: String,
    /// Store exchanges without redaction. Only for data known to hold no
    /// personal data; the stored exchanges are tagged `dlp=off`.
    #[arg(long)]
    pub(crate) no_dlp: bool,
    #[command(flatten)]
    pub(crate) dlp: DlpArgs,
    /// TLS certificate chain (PEM) for the ingest listener.
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for the ingest listener.
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub(crate) tls_key: Option<PathBuf>,
}

/// An address, or `off`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MaybeAddr(Option<SocketAddr>);

impl std::str::FromStr for MaybeAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "off" {
            return Ok(Self(None));
        }
        s.parse()
            .map(|a| Self(Some(a)))
            .map_err(|e| format!("{e}; expected HOST:PORT or off"))
    }
}

fn api_keys(cmd: &ForwarderCmd) -> anyhow::Result<Vec<String>> {
    let mut keys: Vec<String> = cmd
        .api_key
        .iter()
        .flat_map(|k| k.split(','))
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .collect();
    if let Some(path) = &cmd.api_key_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read API key file {}", path.display()))?;
        keys.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
    }
    Ok(keys)
}

fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert).with_context(|| format!("cannot open {}", cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("{}: not a PEM certificate chain", cert.display()))?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key).with_context(|| format!("cannot open {}", key.display()))?,
    ))
    .with_context(|| format!("{}: not a PEM private key", key.display()))?
    .with_context(|| format!("{}: no private key found", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("TLS certificate and key do not fit together")?;
    Ok(Arc::new(config))
}

pub(crate) fn forwarder(cmd: ForwarderCmd) -> anyhow::Result<ExitCode> {
    let keys = api_keys(&cmd)?;
    let rules = Rules::load(&cmd.filter)?;
    let redactor = cmd.dlp.redactor(!cmd.no_dlp, None)?;
    let tls = match (&cmd.tls_cert, &cmd.tls_key) {
        (Some(c), Some(k)) => Some(tls_config(c, k)?),
        _ => None,
    };
    runtime()?.block_on(async {
        let store = Location::open(&cmd.storage)?;
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let pipeline = Pipeline::new(rules, redactor, store.clone(), metrics);
        let config = ForwarderConfig {
            listen: cmd.listen,
            admin: cmd.admin_listen.0,
            api_keys: keys,
            tls,
        };
        let running = tapwire_forwarder::start(config, pipeline, registry).await?;
        eprintln!(
            "forwarder: batches to {}://{}{}, storing in {}, filter {}{}",
            if cmd.tls_cert.is_some() {
                "https"
            } else {
                "http"
            },
            running.addr,
            tapwire_model::ingest::PATH,
            store.url(),
            cmd.filter,
            if cmd.no_dlp { ", redaction OFF" } else { "" },
        );
        super::proxy::stop_signal().await;
        let metrics = running.metrics.clone();
        running.shutdown(Duration::from_secs(10)).await;
        eprintln!(
            "forwarder stopped: {} exchanges stored",
            metrics.stored_total()
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// Try filter rules on recorded traffic.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum FilterCmd {
    /// Show what RULES keep and drop of the recording in DIR: a count per
    /// rule, then the exchanges (`--show`).
    ///
    /// Example: tapwire filter test standard ./rec --show dropped
    Test(FilterTestCmd),
}

/// Arguments of `tapwire filter test`.
#[derive(Debug, clap::Args)]
pub(crate) struct FilterTestCmd {
    /// `standard`, `none`, or a YAML rules file.
    pub(crate) rules: String,
    /// A recording: a directory of segments, or one segment file.
    pub(crate) dir: PathBuf,
    /// Which exchanges to list after the counts.
    #[arg(long, value_enum, default_value_t = Show::None)]
    pub(crate) show: Show,
}

/// Which exchanges `filter test` lists.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Show {
    /// Counts only.
    None,
    /// Kept exchanges.
    Kept,
    /// Dropped exchanges.
    Dropped,
    /// Every exchange.
    All,
}

pub(crate) fn filter(cmd: FilterCmd) -> anyhow::Result<ExitCode> {
    let FilterCmd::Test(cmd) = cmd;
    let rules = Rules::load(&cmd.rules)?;
    let exchanges = read_recording(&cmd.dir)?;
    // One row per rule plus the default, in rule order.
    let mut counts = vec![(0u64, 0u64); rules.rules.len() + 1];
    let mut listed = Table::new();
    listed.load_preset(UTF8_FULL_CONDENSED).set_header([
        "time", "dir", "method", "host", "path", "status", "decision", "rule",
    ]);
    for e in &exchanges {
        let d = rules.decide(e);
        let row = d.rule.unwrap_or(rules.rules.len());
        if d.keep {
            counts[row].0 += 1;
        } else {
            counts[row].1 += 1;
        }
        let show = match cmd.show {
            Show::None => false,
            Show::All => true,
            Show::Kept => d.keep,
            Show::Dropped => !d.keep,
        };
        if show {
            let req = e.request.as_ref();
            listed.add_row([
                e.start.format("%H:%M:%S%.3f").to_string(),
                e.direction.to_string(),
                req.map(|r| r.method.clone()).unwrap_or_default(),
                format!("{}:{}", e.upstream.host, e.upstream.port),
                req.map(|r| r.path.clone()).unwrap_or_default(),
                e.response
                    .as_ref()
                    .map(|r| r.status.to_string())
                    .unwrap_or_default(),
                if d.keep { "keep" } else { "drop" }.to_owned(),
                rules.rule_name(d).to_owned(),
            ]);
        }
    }
    let mut summary = Table::new();
    summary
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["#", "rule", "action", "kept", "dropped"]);
    for (i, r) in rules.rules.iter().enumerate() {
        let action = match r.action {
            tapwire_filter::Action::Keep => "keep".to_owned(),
            tapwire_filter::Action::Drop => "drop".to_owned(),
            tapwire_filter::Action::Sample { every } => format!("sample 1/{every}"),
        };
        summary.add_row([
            (i + 1).to_string(),
            r.name.clone(),
            action,
            counts[i].0.to_string(),
            counts[i].1.to_string(),
        ]);
    }
    let last = counts[rules.rules.len()];
    summary.add_row([
        String::new(),
        "(default)".to_owned(),
        if rules.default_keep { "keep" } else { "drop" }.to_owned(),
        last.0.to_string(),
        last.1.to_string(),
    ]);
    let kept: u64 = counts.iter().map(|c| c.0).sum();
    let out = format!(
        "{summary}\n{} exchanges: {kept} kept, {} dropped by {}",
        exchanges.len(),
        exchanges.len() as u64 - kept,
        rules.origin
    );
    super::println_out(&out);
    if !matches!(cmd.show, Show::None) {
        super::println_out(&listed.to_string());
    }
    Ok(ExitCode::SUCCESS)
}

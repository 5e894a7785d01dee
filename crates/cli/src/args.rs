//! The command line, and every environment variable tapwire reads: one
//! place, typed, with the help text users see.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Capture real API traffic, keep personal data out of it, and replay it as
/// tests and load with every dependency mocked from the same recording.
#[derive(Debug, Parser)]
#[command(
    name = "tapwire",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) log: LogArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// Log level or filter (e.g. `info`, `tapwire_proxy=debug`); TAPWIRE_LOG overrides.
    #[arg(long, global = true, default_value = "info", env = "TAPWIRE_LOG_LEVEL")]
    pub(crate) log_level: String,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "TAPWIRE_LOG_FORMAT")]
    pub(crate) log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the capture proxy (the sidecar's job, or locally in front of an app).
    ///
    /// Inbound: clients call the inbound port; requests go to the app and
    /// are recorded. Outbound: the app uses the outbound port as its
    /// HTTP_PROXY/HTTPS_PROXY; calls to dependencies are recorded. Metrics
    /// and health are on the admin port.
    Proxy(ProxyCmd),
    /// Record an app's traffic on this machine, optionally starting the app.
    ///
    /// Runs the proxy in dual mode with TLS interception and, given a
    /// command after `--`, starts it with HTTP_PROXY, HTTPS_PROXY and the CA
    /// trust variables set so its outbound calls are recorded too. Stops
    /// when the command exits or on Ctrl-C.
    ///
    /// Example: tapwire record --app-port 8080 --out ./rec -- python3 app.py
    Record(RecordCmd),
    /// List recorded exchanges, or show one in full.
    ///
    /// Example: tapwire inspect ./rec            (table of exchanges)
    ///          tapwire inspect ./rec 0193a4f2  (one exchange, by id prefix)
    Inspect(InspectCmd),
    /// Export recorded exchanges to another format (HAR 1.2).
    Export(ExportCmd),
    /// Import exchanges from another format (HAR 1.2) as a recording.
    Import(ImportCmd),
    /// Manage tapwire's certificate authority for TLS interception.
    #[command(subcommand)]
    Ca(CaCmd),
    /// Run the whole loop on a bundled demo service, on loopback only.
    ///
    /// Records "orders" and its HTTPS "payments" dependency through the
    /// capture proxy, makes a snapshot, stops payments, then replays the
    /// recorded traffic against orders with the mock responder standing in
    /// for payments, and writes a report. Exits 0 when every replayed
    /// request matches; `--break` shows a failing run.
    Demo(crate::cmd::demo::DemoCmd),
    /// Make and manage snapshots: immutable selections of recorded traffic
    /// that replays and mocks are built from.
    #[command(subcommand)]
    Snapshot(SnapshotCmd),
    /// Answer a service's outbound calls from a snapshot (mock its dependencies).
    Mock(crate::cmd::mock::MockCmd),
    /// Replay a snapshot's inbound requests against a build, check the
    /// answers against the recording, and write reports.
    Replay(crate::cmd::replay::ReplayCmd),
    /// Read replay reports.
    #[command(subcommand)]
    Report(crate::cmd::report::ReportCmd),
    /// Receive captures from proxies, drop noise, redact personal data and
    /// write what is left to storage (the in-cluster forwarder).
    ///
    /// Example: tapwire forwarder --listen 0.0.0.0:4150 --storage s3://captures/prod
    ///          --dlp-key-file /secrets/dlp.key   (API key in TAPWIRE_API_KEY)
    Forwarder(crate::cmd::pipeline::ForwarderCmd),
    /// Work with filter rules (which captures are kept).
    #[command(subcommand)]
    Filter(crate::cmd::pipeline::FilterCmd),
    /// Install the iptables rules of transparent mode (the sidecar's init
    /// container): the pod's inbound TCP goes to the proxy's inbound port,
    /// its outbound TCP to the outbound port, except the proxy's own.
    Init(crate::cmd::init::InitCmd),
    /// Run the Kubernetes operator: the admission webhook that injects the
    /// capture sidecar into annotated workloads.
    Operator(crate::cmd::operator::OperatorCmd),
    /// Check manifests against GKE Autopilot's admission rules, and write
    /// the WorkloadAllowlist the eBPF DaemonSet needs there.
    #[command(subcommand)]
    Autopilot(crate::cmd::autopilot::AutopilotCmd),
    /// Replay in a Kubernetes cluster: create, follow and read TrafficReplay
    /// resources (uses your kubeconfig, like kubectl).
    #[command(subcommand)]
    Cluster(crate::cmd::cluster::ClusterCmd),
}

fn default_store() -> String {
    default_home().display().to_string()
}

/// A time given as RFC 3339 (`2026-11-22T10:00:00Z`) or as an age (`15m`, `2h`: that long ago).
fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let age = humantime::parse_duration(s).map_err(|_| {
        format!("{s:?} is neither an RFC 3339 time (2026-11-22T10:00:00Z) nor an age (15m, 2h)")
    })?;
    let age = chrono::Duration::from_std(age).map_err(|e| e.to_string())?;
    Ok(chrono::Utc::now() - age)
}

#[derive(Debug, Args)]
pub(crate) struct StoreArg {
    /// Where snapshots are kept (a directory or file:// URL).
    #[arg(long, default_value_t = default_store(), env = "TAPWIRE_STORE")]
    pub(crate) store: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SnapshotCmd {
    /// Select exchanges from a recording into a new snapshot.
    ///
    /// Example: tapwire snapshot create --from ./rec --service orders --name nightly
    Create {
        /// The recording to read (a directory or file:// URL).
        #[arg(long)]
        from: String,
        /// Only this service's exchanges (all services when absent).
        #[arg(long)]
        service: Option<String>,
        /// Only exchanges that started at or after this time (RFC 3339, or an age like 15m).
        #[arg(long, value_parser = parse_time)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Only exchanges that started before this time (RFC 3339, or an age like 5m).
        #[arg(long, value_parser = parse_time)]
        until: Option<chrono::DateTime<chrono::Utc>>,
        /// Only exchanges matching all conditions, e.g. `direction=inbound,path~/api/**,status!=404`
        /// (fields: direction, service, protocol, method, host, port, authority, path, status, key).
        #[arg(long, default_value = "")]
        filter: String,
        /// Name of the snapshot (default: service and start time).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        store: StoreArg,
    },
    /// List snapshots.
    Ls {
        /// Print JSON manifests instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Show a snapshot's manifest: its traffic by key.
    Show {
        /// Id, unique id prefix, or name.
        snapshot: String,
        /// Print the manifest as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Delete a snapshot.
    Rm {
        /// Id, unique id prefix, or name.
        snapshot: String,
        #[command(flatten)]
        store: StoreArg,
    },
}

/// Where tapwire keeps its state (CA, later snapshots).
pub(crate) fn default_home() -> PathBuf {
    if let Some(h) = std::env::var_os("TAPWIRE_HOME") {
        return PathBuf::from(h);
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".tapwire"),
        None => PathBuf::from(".tapwire"),
    }
}

fn default_ca_dir() -> PathBuf {
    default_home().join("ca")
}

fn parse_size(s: &str) -> Result<usize, String> {
    let b: bytesize::ByteSize = s
        .parse()
        .map_err(|e| format!("{e}; use a size such as 1048576, 512KiB or 1MiB"))?;
    usize::try_from(b.as_u64()).map_err(|_| "size too large".to_owned())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{e}; use a duration such as 500ms, 10s or 1m"))
}

/// Settings shared by `proxy` and `record`.
#[derive(Debug, Args)]
pub(crate) struct ProxyArgs {
    /// Address the listeners bind to (use 0.0.0.0 in a pod).
    #[arg(long, default_value = "127.0.0.1", env = "TAPWIRE_BIND")]
    pub(crate) bind: IpAddr,
    /// Inbound listener port (reverse proxy in front of the app).
    #[arg(long, default_value_t = 4143, env = "TAPWIRE_PROXY_IN_PORT")]
    pub(crate) in_port: u16,
    /// Outbound listener port (forward proxy for the app's calls).
    #[arg(long, default_value_t = 4140, env = "TAPWIRE_PROXY_OUT_PORT")]
    pub(crate) out_port: u16,
    /// Admin port for /metrics, /healthz and /readyz (0 disables it).
    #[arg(long, default_value_t = 4145, env = "TAPWIRE_ADMIN_PORT")]
    pub(crate) admin_port: u16,
    /// Host of the app that inbound requests are forwarded to.
    #[arg(long, default_value = "127.0.0.1", env = "TAPWIRE_APP_HOST")]
    pub(crate) app_host: IpAddr,
    /// Port of the app that inbound requests are forwarded to.
    #[arg(long, default_value_t = 8080, env = "TAPWIRE_APP_PORT")]
    pub(crate) app_port: u16,
    /// Name of the service being recorded (stamped on every exchange).
    #[arg(long, default_value = "app", env = "TAPWIRE_SERVICE")]
    pub(crate) service: String,
    /// Kubernetes namespace of the pod (stamped on every exchange).
    #[arg(long, value_name = "NAME", env = "TAPWIRE_POD_NAMESPACE")]
    pub(crate) namespace: Option<String>,
    /// Name of the pod (stamped on every exchange).
    #[arg(long, value_name = "NAME", env = "TAPWIRE_POD_NAME")]
    pub(crate) pod: Option<String>,
    /// Node the pod runs on (stamped on every exchange).
    #[arg(long, value_name = "NAME", env = "TAPWIRE_NODE_NAME")]
    pub(crate) node: Option<String>,
    /// Cluster name, as configured at install (stamped on every exchange).
    #[arg(long, value_name = "NAME", env = "TAPWIRE_CLUSTER")]
    pub(crate) cluster: Option<String>,
    /// Directory where capture segments are written.
    #[arg(long, short, default_value = "tapwire-recording", env = "TAPWIRE_OUT")]
    pub(crate) out: PathBuf,
    /// Bytes of each body kept in a capture; larger bodies pass through
    /// whole but are recorded truncated.
    #[arg(long, default_value = "1MiB", value_parser = parse_size, env = "TAPWIRE_CAPTURE_LIMIT")]
    pub(crate) capture_limit: usize,
    /// Captures that may wait for the writer; beyond this, captures are
    /// dropped and counted (the app's traffic is never slowed).
    #[arg(long, default_value_t = 10_000, env = "TAPWIRE_QUEUE_SIZE")]
    pub(crate) queue_size: usize,
    /// Directory holding the CA used for TLS interception.
    #[arg(long, default_value_os_t = default_ca_dir(), env = "TAPWIRE_CA_DIR")]
    pub(crate) ca_dir: PathBuf,
    /// PEM bundle of extra CAs to trust for upstream TLS, besides the system roots.
    #[arg(long, env = "TAPWIRE_EXTRA_CA")]
    pub(crate) extra_ca: Option<PathBuf>,
    /// How long connecting to an upstream may take.
    #[arg(long, default_value = "10s", value_parser = parse_duration, env = "TAPWIRE_CONNECT_TIMEOUT")]
    pub(crate) connect_timeout: Duration,
    /// Largest request head accepted; larger ones get 431.
    #[arg(long, default_value = "64KiB", value_parser = parse_size, env = "TAPWIRE_MAX_HEADER_BYTES")]
    pub(crate) max_header_bytes: usize,
    /// Send captures to this forwarder (http[s]://HOST:PORT) instead of
    /// writing them to --out. The app's traffic never waits for it: while it
    /// is unreachable, captures are buffered, then the oldest are dropped and
    /// counted.
    #[arg(long, value_name = "URL", env = "TAPWIRE_FORWARDER_URL")]
    pub(crate) forwarder: Option<http::Uri>,
    /// API key the forwarder expects.
    #[arg(
        long,
        env = "TAPWIRE_API_KEY",
        hide_env_values = true,
        requires = "forwarder"
    )]
    pub(crate) forwarder_api_key: Option<String>,
    /// Captures held while the forwarder is unreachable.
    #[arg(long, default_value_t = 100_000, env = "TAPWIRE_FORWARDER_BUFFER")]
    pub(crate) forwarder_buffer: usize,
    /// Redact personal data before captures leave the proxy (see docs/dlp.md).
    #[arg(long, env = "TAPWIRE_DLP")]
    pub(crate) dlp: bool,
    #[command(flatten)]
    pub(crate) dlp_args: crate::cmd::pipeline::DlpArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum ProxyMode {
    /// Inbound reverse proxy and outbound forward proxy.
    Dual,
    /// Inbound reverse proxy only.
    Reverse,
    /// Outbound forward proxy only.
    Forward,
    /// Both listeners take the pod's TCP, redirected by the iptables rules
    /// of `tapwire init`; each connection goes to its original destination.
    Transparent,
}

#[derive(Debug, Args)]
pub(crate) struct ProxyCmd {
    /// Which listeners to run.
    #[arg(long, value_enum, default_value_t = ProxyMode::Dual, env = "TAPWIRE_PROXY_TYPE")]
    pub(crate) mode: ProxyMode,
    /// How each side treats connections, as INBOUND[:OUTBOUND]: `http`
    /// tells HTTP/1.x, h2c and TLS apart per connection where other
    /// protocols can arrive (transparent mode; anything else is relayed as
    /// a TCP flow); `tcp` relays the inbound side byte for byte as TCP
    /// flows; `tcp:http` is inbound TCP with outbound HTTP.
    #[arg(
        long,
        default_value = "http",
        value_name = "PROTOCOL",
        value_parser = clap::value_parser!(tapwire_proxy::ProxyProtocol),
        env = "TAPWIRE_PROXY_PROTOCOL"
    )]
    pub(crate) proxy_protocol: tapwire_proxy::ProxyProtocol,
    /// Intercept outbound TLS (CONNECT tunnels, and TLS redirected in
    /// transparent mode): present leaves minted from the CA (clients must
    /// trust it: see `tapwire ca export`) and record plaintext. Without it,
    /// TLS is relayed and recorded as TCP flows with SNI.
    #[arg(long, env = "TAPWIRE_TLS_OUT")]
    pub(crate) tls_out: bool,
    #[command(flatten)]
    pub(crate) proxy: ProxyArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RecordCmd {
    /// Relay HTTPS tunnels without interception (recorded as TCP flows).
    #[arg(long)]
    pub(crate) no_tls_out: bool,
    #[command(flatten)]
    pub(crate) proxy: ProxyArgs,
    /// The app to start, after `--`; it gets the proxy and CA variables.
    #[arg(last = true, value_name = "CMD")]
    pub(crate) command: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct InspectCmd {
    /// A recording directory or a segment file.
    pub(crate) path: PathBuf,
    /// Show this exchange in full (an id or a unique prefix of one).
    pub(crate) id: Option<String>,
    /// Only this direction.
    #[arg(long, value_enum)]
    pub(crate) direction: Option<DirectionArg>,
    /// Print JSON (one exchange per line for the list) instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Show at most this many exchanges (the newest are cut).
    #[arg(long)]
    pub(crate) limit: Option<usize>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum DirectionArg {
    Inbound,
    Outbound,
}

impl From<DirectionArg> for tapwire_model::Direction {
    fn from(d: DirectionArg) -> Self {
        match d {
            DirectionArg::Inbound => tapwire_model::Direction::Inbound,
            DirectionArg::Outbound => tapwire_model::Direction::Outbound,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct ExportCmd {
    /// Write HAR 1.2 (the only export format so far).
    #[arg(long, required = true)]
    pub(crate) har: bool,
    /// A recording directory or a segment file.
    pub(crate) path: PathBuf,
    /// Output file (stdout when absent).
    #[arg(long, short)]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ImportCmd {
    /// Read HAR 1.2 (the only import format so far).
    #[arg(long, required = true)]
    pub(crate) har: bool,
    /// The HAR file to read.
    pub(crate) file: PathBuf,
    /// Recording directory to write the imported exchanges to.
    #[arg(long, short)]
    pub(crate) out: PathBuf,
    /// Direction given to entries that do not carry tapwire's own fields
    /// (HAR from browsers and other tools).
    #[arg(long, value_enum, default_value_t = DirectionArg::Outbound)]
    pub(crate) direction: DirectionArg,
    /// Service name given to such entries.
    #[arg(long, default_value = "app")]
    pub(crate) service: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CaCmd {
    /// Create the CA (key stored with mode 0600).
    Init {
        /// CA directory.
        #[arg(long, default_value_os_t = default_ca_dir(), env = "TAPWIRE_CA_DIR")]
        dir: PathBuf,
        /// Replace an existing CA (clients trusting the old one must be updated).
        #[arg(long)]
        force: bool,
    },
    /// Write the CA certificate for clients: PEM, and a PKCS#12 truststore for Java.
    Export {
        /// CA directory.
        #[arg(long, default_value_os_t = default_ca_dir(), env = "TAPWIRE_CA_DIR")]
        dir: PathBuf,
        /// Where to write tapwire-ca.crt and tapwire-ca.p12.
        #[arg(long, short, default_value = ".")]
        out: PathBuf,
        /// Password of the PKCS#12 truststore.
        #[arg(long, default_value = "changeit")]
        password: String,
    },
}

//! `tapwire proxy` and `tapwire record`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use tapwire_ca::CertificateAuthority;
use tapwire_dlp::Redactor;
use tapwire_model::Exchange;
use tapwire_model::Service;
use tapwire_proxy::{
    CaptureSink, ForwarderSink, Metrics, Mode, Proxy, ProxyConfig, ProxyProtocol, RunningProxy,
    SegmentDirSink, SinkError, UplinkConfig,
};

use super::runtime;
use crate::args::{ProxyArgs, ProxyCmd, ProxyMode, RecordCmd};

/// How long open requests may finish after a stop signal.
const GRACE: Duration = Duration::from_secs(5);

/// An identity flag as the exchange records it: unset and empty (an
/// environment variable the operator left blank) are both absent.
fn identity(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn config(
    args: &ProxyArgs,
    mode: Mode,
    protocol: ProxyProtocol,
    ca: Option<Arc<CertificateAuthority>>,
) -> ProxyConfig {
    let at = |port| SocketAddr::new(args.bind, port);
    ProxyConfig {
        mode,
        inbound_addr: at(args.in_port),
        outbound_addr: at(args.out_port),
        admin_addr: (args.admin_port != 0).then(|| at(args.admin_port)),
        app_addr: SocketAddr::new(args.app_host, args.app_port),
        service: Service {
            name: args.service.clone(),
            namespace: identity(&args.namespace),
            pod: identity(&args.pod),
            node: identity(&args.node),
            cluster: identity(&args.cluster),
        },
        protocol,
        capture_limit: args.capture_limit,
        queue_capacity: args.queue_size.max(1),
        tls_intercept: ca,
        extra_ca_bundle: args.extra_ca.clone(),
        connect_timeout: args.connect_timeout,
        max_header_bytes: args.max_header_bytes,
    }
}

/// Redacts each capture on the sink thread before the inner sink stores
/// or sends it (`--dlp`).
struct Redacting {
    inner: Box<dyn CaptureSink>,
    redactor: Redactor,
}

impl CaptureSink for Redacting {
    fn attach(&mut self, metrics: &Arc<Metrics>) {
        self.inner.attach(metrics);
    }

    fn write(&mut self, exchange: Exchange) -> Result<(), SinkError> {
        self.inner
            .write(self.redactor.redact(exchange).into_inner())
    }

    fn tick(&mut self) -> Result<(), SinkError> {
        self.inner.tick()
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.inner.flush()
    }
}

/// Where captures go: the forwarder when one is named, else `--out`;
/// redacted first with `--dlp`.
fn sink(args: &ProxyArgs) -> anyhow::Result<Box<dyn CaptureSink>> {
    let base: Box<dyn CaptureSink> = match &args.forwarder {
        Some(url) => {
            let mut config = UplinkConfig::new(
                url.clone(),
                args.forwarder_api_key.clone().unwrap_or_default(),
            );
            config.buffer_exchanges = args.forwarder_buffer;
            config.extra_ca_bundle = args.extra_ca.clone();
            Box::new(ForwarderSink::new(config)?)
        }
        None => Box::new(SegmentDirSink::new(&args.out)?),
    };
    if !args.dlp {
        return Ok(base);
    }
    let redactor = args
        .dlp_args
        .redactor(true, Some(&super::pipeline::local_key_path()))?;
    Ok(Box::new(Redacting {
        inner: base,
        redactor,
    }))
}

/// Where the summary says captures went.
fn destination(args: &ProxyArgs) -> String {
    match &args.forwarder {
        Some(url) => format!("forwarder {url}"),
        None => args.out.display().to_string(),
    }
}

async fn start(
    args: &ProxyArgs,
    mode: Mode,
    protocol: ProxyProtocol,
    ca: Option<Arc<CertificateAuthority>>,
) -> anyhow::Result<RunningProxy> {
    let config = config(args, mode, protocol, ca);
    let running = Proxy::start(config, sink(args)?, Registry::default()).await?;
    Ok(running)
}

/// Resolves on Ctrl-C or SIGTERM (how Kubernetes stops a container).
pub(crate) async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn summary(metrics: &Metrics, args: &ProxyArgs) -> String {
    let dropped = metrics.dropped_total();
    match &args.forwarder {
        Some(_) => format!(
            "sent {} exchanges to {} ({dropped} dropped)",
            metrics.forwarded(),
            destination(args),
        ),
        None => format!(
            "recorded {} exchanges to {} ({dropped} dropped); see them with: tapwire inspect {}",
            metrics.written(),
            destination(args),
            args.out.display()
        ),
    }
}

pub(crate) fn proxy(cmd: ProxyCmd) -> anyhow::Result<ExitCode> {
    let mode = match cmd.mode {
        ProxyMode::Dual => Mode::Dual,
        ProxyMode::Reverse => Mode::Reverse,
        ProxyMode::Forward => Mode::Forward,
        ProxyMode::Transparent => Mode::Transparent,
    };
    // Checked before anything is created (the CA, the output directory).
    cmd.proxy_protocol
        .check(mode)
        .map_err(|e| anyhow::anyhow!(e))?;
    let ca = if cmd.tls_out {
        Some(Arc::new(tapwire_ca::load_or_init(&cmd.proxy.ca_dir)?))
    } else {
        None
    };
    runtime()?.block_on(async {
        let running = start(&cmd.proxy, mode, cmd.proxy_protocol, ca).await?;
        stop_signal().await;
        tracing::info!("stopping: finishing open requests and flushing captures");
        let metrics = running.metrics.clone();
        running.shutdown(GRACE).await;
        eprintln!("{}", summary(&metrics, &cmd.proxy));
        Ok(ExitCode::SUCCESS)
    })
}

/// Files that make an app trust tapwire's CA.
struct Trust {
    ca_pem: PathBuf,
    bundle: PathBuf,
    pkcs12: PathBuf,
}

/// Writes the CA for clients, plus a bundle of the system roots and the CA
/// so that SSL_CERT_FILE does not make the app distrust everything else.
fn write_trust(ca: &CertificateAuthority, dir: &Path) -> anyhow::Result<Trust> {
    let files = ca.export_files(dir, "changeit")?;
    let mut bundle = String::new();
    for system in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ] {
        if let Ok(s) = std::fs::read_to_string(system) {
            bundle.push_str(&s);
            bundle.push('\n');
            break;
        }
    }
    bundle.push_str(ca.cert_pem());
    let bundle_path = dir.join("tapwire-bundle.pem");
    std::fs::write(&bundle_path, bundle)
        .with_context(|| format!("cannot write {}", bundle_path.display()))?;
    Ok(Trust {
        ca_pem: files.cert_pem,
        bundle: bundle_path,
        pkcs12: files.pkcs12,
    })
}

/// The environment that routes an app's calls through the outbound listener
/// and makes the common runtimes trust the CA.
fn app_env(proxy: SocketAddr, trust: Option<&Trust>) -> Vec<(String, String)> {
    let host = if proxy.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        proxy.ip().to_string()
    };
    let url = format!("http://{host}:{}", proxy.port());
    let mut env: Vec<(String, String)> = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]
        .into_iter()
        .map(|k| (k.to_owned(), url.clone()))
        .collect();
    // The JVM ignores HTTP_PROXY. Its default non-proxy list skips loopback,
    // which would hide local dependencies, so it is cleared.
    let mut java = format!(
        "-Dhttp.proxyHost={host} -Dhttp.proxyPort={port} -Dhttps.proxyHost={host} -Dhttps.proxyPort={port} -Dhttp.nonProxyHosts=",
        port = proxy.port()
    );
    if let Some(t) = trust {
        for k in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"] {
            env.push((k.to_owned(), t.bundle.display().to_string()));
        }
        env.push((
            "NODE_EXTRA_CA_CERTS".to_owned(),
            t.ca_pem.display().to_string(),
        ));
        java.push_str(&format!(
            " -Djavax.net.ssl.trustStore={} -Djavax.net.ssl.trustStorePassword=changeit -Djavax.net.ssl.trustStoreType=PKCS12",
            t.pkcs12.display()
        ));
    }
    if let Ok(existing) = std::env::var("JAVA_TOOL_OPTIONS") {
        java = format!("{existing} {java}");
    }
    env.push(("JAVA_TOOL_OPTIONS".to_owned(), java));
    env
}

pub(crate) fn record(cmd: RecordCmd) -> anyhow::Result<ExitCode> {
    let ca = if cmd.no_tls_out {
        None
    } else {
        Some(Arc::new(tapwire_ca::load_or_init(&cmd.proxy.ca_dir)?))
    };
    let trust = match &ca {
        Some(ca) => Some(write_trust(ca, &cmd.proxy.ca_dir)?),
        None => None,
    };
    runtime()?.block_on(async {
        let running = start(&cmd.proxy, Mode::Dual, ProxyProtocol::default(), ca).await?;
        let (inb, outb) = (running.inbound_addr, running.outbound_addr);
        eprintln!(
            "recording {}: send requests to http://{} (forwarded to the app at {}:{}); the app's calls through http://{}",
            cmd.proxy.service,
            inb.map(|a| a.to_string()).unwrap_or_default(),
            cmd.proxy.app_host,
            cmd.proxy.app_port,
            outb.map(|a| a.to_string()).unwrap_or_default(),
        );
        let code = match cmd.command.split_first() {
            None => {
                eprintln!("press Ctrl-C to stop");
                stop_signal().await;
                ExitCode::SUCCESS
            }
            Some((program, args)) => {
                let env = app_env(outb.unwrap_or(SocketAddr::from(([127, 0, 0, 1], cmd.proxy.out_port))), trust.as_ref());
                let mut child = tokio::process::Command::new(program)
                    .args(args)
                    .envs(env)
                    .kill_on_drop(true)
                    .spawn()
                    .with_context(|| format!("cannot start {program:?}"))?;
                tokio::select! {
                    status = child.wait() => {
                        let status = status.context("waiting for the app failed")?;
                        eprintln!("app exited: {status}");
                        status.code().and_then(|c| u8::try_from(c).ok()).map_or(ExitCode::FAILURE, ExitCode::from)
                    }
                    _ = stop_signal() => {
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                        ExitCode::SUCCESS
                    }
                }
            }
        };
        let metrics = running.metrics.clone();
        running.shutdown(GRACE).await;
        eprintln!("{}", summary(&metrics, &cmd.proxy));
        Ok(code)
    })
}

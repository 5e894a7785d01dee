//! `tapwire demo`: the whole loop on a bundled service, on loopback only.
//! Record orders and its HTTPS payments dependency through the capture
//! proxy, snapshot the recording, stop payments, then replay the inbound
//! traffic against orders with the mock responder standing in for payments.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prometheus_client::registry::Registry;
use tapwire_ca::{CertificateAuthority, LeafIssuer};
use tapwire_mock::{MockConfig, MockServer, Responder, ResponderConfig};
use tapwire_model::Service;
use tapwire_proxy::{Mode, Proxy, ProxyConfig, SegmentDirSink};
use tapwire_replay::ReplayConfig;
use tapwire_store::{build, Location, Selection, SnapshotStore};

use super::{println_out, runtime};

/// What the recording phase leaves behind.
pub(crate) struct Recorded {
    /// The snapshot's id.
    pub(crate) snapshot: String,
    /// Exchanges captured.
    pub(crate) exchanges: u64,
    /// The CA whose leaves orders trusts (the responder must mint from it).
    pub(crate) ca_dir: PathBuf,
    /// The snapshot store.
    pub(crate) store: PathBuf,
    /// Where orders called payments (the mocks answer for this host).
    pub(crate) payments_url: String,
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Sends the demo's inbound traffic to `base`; returns how many succeeded.
pub(crate) async fn drive(base: SocketAddr) -> anyhow::Result<usize> {
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut ok = 0;
    for (method, path, body) in tapwire_demo::traffic() {
        let req = http::Request::builder()
            .method(method)
            .uri(format!("http://{base}{path}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(
                body.map(|b| b.to_string().into()).unwrap_or_default(),
            ))?;
        let resp = client.request(req).await.context("calling orders")?;
        let success = resp.status().is_success();
        let _ = resp.into_body().collect().await;
        ok += usize::from(success);
    }
    Ok(ok)
}

/// Phase one: record real traffic and make a snapshot of it.
pub(crate) async fn record(dir: &Path) -> anyhow::Result<Recorded> {
    let ca_dir = dir.join("ca");
    let ca = Arc::new(tapwire_ca::load_or_init(&ca_dir)?);
    // payments has its own certificate from a CA of its own, as a real
    // dependency would; the proxy is told to trust that CA.
    let dep_ca = Arc::new(CertificateAuthority::generate("tapwire demo payments CA")?);
    let dep_ca_pem = dir.join("payments-ca.pem");
    std::fs::write(&dep_ca_pem, dep_ca.cert_pem()).context("writing the payments CA")?;
    let payments_tls = Arc::new(LeafIssuer::new(dep_ca))
        .server_config_for("localhost", vec![b"http/1.1".to_vec()])?;
    let payments = tapwire_demo::payments(payments_tls).await?;

    let recording = dir.join("recording");
    let config = ProxyConfig {
        mode: Mode::Dual,
        inbound_addr: local(0),
        outbound_addr: local(0),
        admin_addr: None,
        service: Service {
            name: "orders".into(),
            ..Service::default()
        },
        tls_intercept: Some(ca.clone()),
        extra_ca_bundle: Some(dep_ca_pem),
        ..ProxyConfig::default()
    };
    // The app address is only known once orders listens, and orders needs
    // the proxy's outbound address: start orders against the proxy first.
    let mut config = config;
    let probe = tokio::net::TcpListener::bind(local(0)).await?;
    let outbound = probe.local_addr()?;
    drop(probe);
    config.outbound_addr = outbound;
    let payments_url = format!("https://localhost:{}", payments.addr.port());
    let orders = tapwire_demo::orders(tapwire_demo::OrdersConfig {
        payments_url: payments_url.clone(),
        proxy: outbound,
        trust: ca.root_store()?,
        broken: false,
    })
    .await?;
    config.app_addr = orders.addr;
    let proxy = Proxy::start(
        config,
        Box::new(SegmentDirSink::new(&recording)?),
        Registry::default(),
    )
    .await?;
    let inbound = proxy
        .inbound_addr
        .context("the proxy has no inbound listener")?;
    let sent = tapwire_demo::traffic().len();
    let ok = drive(inbound).await?;
    anyhow::ensure!(
        ok == sent,
        "only {ok} of {sent} demo requests succeeded while recording"
    );
    let metrics = proxy.metrics.clone();
    proxy.shutdown(Duration::from_secs(5)).await;
    payments.stop();
    orders.stop();

    let source = Location::local(&recording)?;
    let exchanges = source.read_exchanges("").await?;
    let store = dir.join("store");
    let mut snap = build(
        exchanges,
        Selection {
            service: Some("orders".into()),
            ..Selection::default()
        },
        Some("demo".into()),
        source.url(),
    )?;
    let manifest = SnapshotStore::new(Location::local(&store)?)
        .save(&mut snap)
        .await?;
    Ok(Recorded {
        snapshot: manifest.id,
        exchanges: metrics.written(),
        ca_dir,
        store,
        payments_url,
    })
}

/// `tapwire demo` options.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoCmd {
    /// Directory for the recording, the snapshot store and the report
    /// (emptied first).
    #[arg(long, default_value = "tapwire-demo")]
    dir: PathBuf,
    /// Replay against a build of orders with planted bugs (a wrong total on
    /// even orders, a 500 on some new orders), to see a failing run.
    #[arg(long = "break")]
    broken: bool,
}

pub(crate) fn run(cmd: DemoCmd) -> anyhow::Result<ExitCode> {
    let dir = &cmd.dir;
    for sub in ["recording", "store", "report", "mock-results.jsonl"] {
        let p = dir.join(sub);
        if p.is_dir() {
            std::fs::remove_dir_all(&p).with_context(|| format!("cannot clear {}", p.display()))?;
        } else if p.exists() {
            std::fs::remove_file(&p).with_context(|| format!("cannot clear {}", p.display()))?;
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = std::fs::canonicalize(dir)?;
    runtime()?.block_on(async {
        eprintln!("[1/4] recording: orders and its HTTPS payments dependency, through the capture proxy");
        let rec = record(&dir).await?;
        let store = SnapshotStore::new(Location::local(&rec.store)?);
        let snap = store.load(&rec.snapshot).await?;
        eprintln!(
            "      captured {} exchanges; snapshot {} holds {} inbound and {} outbound",
            rec.exchanges,
            snap.manifest.name,
            snap.inbound().count(),
            snap.outbound().count()
        );

        eprintln!("[2/4] payments is stopped; the mock responder answers for it from the snapshot");
        let ca = Arc::new(tapwire_ca::load_or_init(&rec.ca_dir)?);
        let results = dir.join("mock-results.jsonl");
        let responder = Arc::new(Responder::new(snap.exchanges.iter(), ResponderConfig::default()));
        let mock = MockServer::start(
            MockConfig {
                forward_port: Some(0),
                ca: Some(ca.clone()),
                results: Some(results.clone()),
                ..MockConfig::default()
            },
            responder,
            Registry::default(),
        )
        .await?;
        let mock_addr = mock.forward_addr.context("the mock has no forward listener")?;

        eprintln!(
            "[3/4] starting {} orders with the mock as its proxy",
            if cmd.broken { "a broken build of" } else { "a new build of" }
        );
        let orders = tapwire_demo::orders(tapwire_demo::OrdersConfig {
            payments_url: rec.payments_url.clone(),
            proxy: mock_addr,
            trust: ca.root_store()?,
            broken: cmd.broken,
        })
        .await?;

        eprintln!("[4/4] replaying the recorded inbound traffic against orders");
        let config = ReplayConfig::new(format!("http://{}", orders.addr));
        let mut report = tapwire_replay::run(&snap, config).await?;
        orders.stop();
        let accuracy = mock.shutdown(Duration::from_secs(2)).await;
        report.mock = Some(tapwire_replay::MockAccuracy::read(&results)?);
        let report_dir = dir.join("report");
        report.write(&report_dir)?;

        println_out(&super::report::summary_table(&report));
        eprintln!("mock accuracy: {accuracy}");
        eprintln!("report: {}", report_dir.join("report.html").display());
        let passed = report.summary.assertions.failed == 0 && report.summary.errors == 0 && report.goals_passed();
        if passed {
            eprintln!("PASS: every replayed request matched the recording");
            Ok(ExitCode::SUCCESS)
        } else {
            eprintln!(
                "FAIL: {} of {} replayed requests differ from the recording; the report shows each difference",
                report.summary.assertions.failed, report.summary.assertions.checked
            );
            Ok(ExitCode::from(1))
        }
    })
}

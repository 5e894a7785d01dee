//! The pipeline with real parts: nginx as the app, `tapwire proxy` sending
//! captures to `tapwire forwarder`, which filters, redacts and writes them
//! to S3 (moto's server), and `tapwire snapshot create --from s3://…`
//! reading them back. The forwarder is killed mid-run and restarted. The
//! same pipeline also writes to Azure Blob (Azurite).

// Helpers here are test code too: a failed step should panic with its error.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use tapwire_model::{segment, Exchange};
use tapwire_test_support::cloud::ObjectServer;
use tapwire_test_support::forwarder::ForwarderProcess;
use tapwire_test_support::nginx::Nginx;
use tapwire_test_support::{
    require_python_modules, require_tools, run_with_timeout, HttpConn, MetricsText, TapwireProcess,
};

const BIN: &str = env!("CARGO_BIN_EXE_tapwire");
const KEY: &str = "test-api-key-0123456789";
const DLP_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends `n` GETs over one keep-alive connection; every one must succeed.
fn send(proxy: std::net::SocketAddr, paths: impl IntoIterator<Item = String>) -> usize {
    let mut conn = HttpConn::connect(proxy).expect("connect to the proxy");
    let mut n = 0;
    for p in paths {
        let r = conn
            .request("GET", &p, &[], b"")
            .expect("request through the proxy");
        assert_eq!(r.status, 200, "GET {p}: {}", r.text());
        n += 1;
    }
    n
}

/// Every exchange in the S3 location, read with the S3 API.
fn stored(s3: &ObjectServer, prefix: &str) -> Vec<Exchange> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let settings: Vec<(String, String)> = s3
        .env
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    let settings: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    rt.block_on(async {
        let loc = tapwire_store::Location::open_with(&s3.url(prefix), &settings)
            .expect("open s3 location");
        let keys = loc.list("").await.expect("list");
        for k in &keys {
            assert!(
                k.as_ref().starts_with("service=orders/date=") && k.as_ref().contains("/hour="),
                "not a hive-style partition key: {k}"
            );
        }
        loc.read_exchanges("").await.expect("read exchanges")
    })
}

/// nginx as the app, `tapwire forwarder` writing to `server` under
/// `prod/`, and `tapwire proxy` (reverse, service `orders`, plus `extra`
/// flags) sending its captures there.
fn pipeline(server: &ObjectServer, extra: &[&str]) -> (Nginx, ForwarderProcess, TapwireProcess) {
    let app = Nginx::start("", "location / { return 200 'ok\\n'; }");
    let mut env = server.env.clone();
    env.push(("TAPWIRE_DLP_KEY".into(), DLP_KEY.into()));
    let fwd = ForwarderProcess::start(
        Path::new(BIN),
        &["--storage", &server.url("prod"), "--api-key", KEY],
        &env,
    );
    let app_port = app.addr.port().to_string();
    let fwd_url = fwd.url();
    let mut args = vec![
        "--mode",
        "reverse",
        "--service",
        "orders",
        "--app-port",
        &app_port,
        "--forwarder",
        &fwd_url,
        "--forwarder-api-key",
        KEY,
    ];
    args.extend_from_slice(extra);
    let proxy = TapwireProcess::proxy(Path::new(BIN), args);
    (app, fwd, proxy)
}

fn proxy_metric(m: &MetricsText, name: &str, labels: &[(&str, &str)]) -> u64 {
    m.get(name, labels).unwrap_or(0.0) as u64
}

#[test]
fn captures_survive_a_forwarder_restart_and_losses_are_counted() {
    if !require_tools(&["nginx"]) || !require_python_modules(&["moto.server"]) {
        return;
    }
    let s3 = ObjectServer::moto_s3("captures");
    let storage = s3.url("prod");
    let (_app, mut fwd, proxy) = pipeline(&s3, &["--forwarder-buffer", "200"]);
    let pm = || proxy.metrics();
    let queued = |m: &MetricsText| proxy_metric(m, "tapwire_proxy_captures_queued_total", &[]);
    let sent =
        |m: &MetricsText| proxy_metric(m, "tapwire_proxy_forwarder_exchanges_sent_total", &[]);
    let dropped = |m: &MetricsText| proxy_metric(m, "tapwire_proxy_captures_dropped_total", &[]);

    // Phase 1: forwarder up. Probes are filtered by the standard rules;
    // an e-mail address in a query string is redacted.
    let mut total = send(
        proxy.inbound,
        (0..45).map(|i| format!("/orders/{i}?email=jane.doe{i}@example.com")),
    );
    total += send(proxy.inbound, (0..5).map(|_| "/healthz".to_owned()));
    wait_until("phase 1 delivered", Duration::from_secs(20), || {
        sent(&pm()) == 50
    });
    let fm = fwd.metrics();
    let filtered = fm.value(
        "tapwire_forwarder_exchanges_filtered_total",
        &[("rule", "health-endpoints")],
    ) as u64;
    assert_eq!(filtered, 5, "{}", fm.0);
    assert!(
        fm.value(
            "tapwire_forwarder_redactions_total",
            &[("category", "EMAIL")]
        ) >= 45.0,
        "{}",
        fm.0
    );

    // Phase 2: forwarder killed. The app does not notice; the proxy buffers
    // 200 captures and drops the oldest beyond that.
    fwd.kill();
    total += send(proxy.inbound, (0..500).map(|i| format!("/orders/down/{i}")));
    // Let the last partial batch close (batches close after 1 s).
    std::thread::sleep(Duration::from_millis(1500));
    let m = pm();
    let overflow = proxy_metric(
        &m,
        "tapwire_proxy_captures_dropped_total",
        &[("reason", "forwarder_overflow")],
    );
    assert!(
        overflow >= 300,
        "expected at least 300 overflow drops, got {overflow}:\n{}",
        m.0
    );
    assert!(
        proxy_metric(&m, "tapwire_proxy_forwarder_buffered", &[]) <= 200,
        "{}",
        m.0
    );
    assert!(
        proxy_metric(&m, "tapwire_proxy_forwarder_send_failures_total", &[]) > 0,
        "{}",
        m.0
    );

    // Phase 3: forwarder back. The buffer drains, then new traffic flows.
    fwd.restart();
    wait_until("buffer drained", Duration::from_secs(30), || {
        proxy_metric(&pm(), "tapwire_proxy_forwarder_buffered", &[]) == 0
    });
    total += send(proxy.inbound, (0..20).map(|i| format!("/orders/up/{i}")));
    wait_until(
        "every capture delivered or dropped",
        Duration::from_secs(20),
        || {
            let m = pm();
            queued(&m) == total as u64 && sent(&m) + dropped(&m) == total as u64
        },
    );
    let m = pm();
    assert_eq!(
        proxy_metric(
            &m,
            "tapwire_proxy_captures_dropped_total",
            &[("reason", "queue_full")]
        ),
        0
    );

    // The store holds exactly what was delivered, minus what the filter
    // dropped, each exchange once.
    let stored = stored(&s3, "prod");
    assert_eq!(
        stored.len() as u64,
        sent(&m) - filtered,
        "stored vs delivered"
    );
    assert_eq!(
        stored.len() as u64 + filtered + dropped(&m),
        total as u64,
        "stored + filtered + dropped = sent by the app"
    );
    let mut ids: Vec<_> = stored.iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), stored.len(), "an exchange was stored twice");
    assert!(stored
        .iter()
        .all(|e| e.request.as_ref().is_some_and(|r| r.path != "/healthz")));

    // No e-mail address reached storage; the tokens are there instead.
    let raw: String = stored
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    assert!(
        !raw.contains("@example.com"),
        "an e-mail address reached storage"
    );
    assert!(
        raw.contains("REDACTED-EMAIL-"),
        "no redaction token in storage"
    );

    // A snapshot made straight from S3.
    let home = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(BIN);
    s3.configure(&mut cmd)
        .args([
            "snapshot",
            "create",
            "--from",
            &storage,
            "--service",
            "orders",
            "--name",
            "from-s3",
            "--store",
        ])
        .arg(home.path());
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(&stored.len().to_string()),
        "snapshot does not count {} exchanges:\n{text}",
        stored.len()
    );
    drop(proxy);
}

#[test]
fn bad_batches_get_clear_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = tmp.path().join("store");
    let env = vec![("TAPWIRE_DLP_KEY".to_owned(), DLP_KEY.to_owned())];
    let mut fwd = ForwarderProcess::start(
        Path::new(BIN),
        &["--storage", storage.to_str().unwrap(), "--api-key", KEY],
        &env,
    );
    let batch = segment::encode(&[]);
    let id = "0193a4f2-0000-7000-8000-000000000001";
    let post = |headers: &[(&str, &str)], body: &[u8]| {
        let mut c = HttpConn::connect(fwd.addr).unwrap();
        c.request("POST", "/v1/batches", headers, body).unwrap()
    };
    let ctype = ("Content-Type", "application/vnd.tapwire.segment.v1+zstd");
    let auth = format!("Bearer {KEY}");
    let auth = ("Authorization", auth.as_str());

    let r = post(&[ctype, ("tapwire-batch-id", id)], &batch);
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("missing API key"), "{}", r.text());
    let r = post(
        &[
            ctype,
            ("tapwire-batch-id", id),
            ("Authorization", "Bearer nope"),
        ],
        &batch,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("API key not accepted"), "{}", r.text());
    let r = post(
        &[
            ("Content-Type", "application/json"),
            ("tapwire-batch-id", id),
            auth,
        ],
        b"{}",
    );
    assert_eq!(r.status, 415, "{}", r.text());
    let r = post(&[ctype, auth], &batch);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("tapwire-batch-id"), "{}", r.text());
    let r = post(
        &[ctype, ("tapwire-batch-id", id), auth],
        b"definitely not zstd",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("not a valid segment"), "{}", r.text());
    let mut c = HttpConn::connect(fwd.addr).unwrap();
    let r = c.request("GET", "/v2/things", &[], b"").unwrap();
    assert_eq!(r.status, 404, "{}", r.text());
    let r = post(&[ctype, ("tapwire-batch-id", id), auth], &batch);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"received\":0"), "{}", r.text());

    let m = fwd.metrics();
    for (outcome, n) in [
        ("unauthorized", 1.0),
        ("forbidden", 1.0),
        ("unsupported", 1.0),
        ("bad_request", 2.0),
        ("not_found", 1.0),
        ("accepted", 1.0),
    ] {
        assert_eq!(
            m.value("tapwire_forwarder_batches_total", &[("outcome", outcome)]),
            n,
            "{outcome}: {}",
            m.0
        );
    }

    // Stops promptly on SIGINT even with a keep-alive connection open.
    let _idle = HttpConn::connect(fwd.addr).unwrap();
    let started = Instant::now();
    assert!(fwd.stop().success(), "{}", fwd.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopping took {:?}",
        started.elapsed()
    );
    assert!(
        fwd.stderr().contains("forwarder stopped"),
        "{}",
        fwd.stderr()
    );
}

#[test]
fn forwarder_without_keys_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(BIN);
    cmd.env_remove("TAPWIRE_API_KEY")
        .env("TAPWIRE_DLP_KEY", DLP_KEY)
        .args([
            "forwarder",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "off",
            "--storage",
        ])
        .arg(tmp.path());
    let out = run_with_timeout(&mut cmd, Duration::from_secs(20));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no API key configured"), "{err}");

    let mut cmd = std::process::Command::new(BIN);
    cmd.env_remove("TAPWIRE_DLP_KEY")
        .args([
            "forwarder",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "off",
            "--api-key",
            KEY,
            "--storage",
        ])
        .arg(tmp.path());
    let out = run_with_timeout(&mut cmd, Duration::from_secs(20));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no redaction key"), "{err}");
}

#[test]
fn captures_travel_over_tls_when_the_forwarder_serves_it() {
    if !require_tools(&["nginx"]) {
        return;
    }
    let app = Nginx::start("", "location / { return 200 'ok\\n'; }");
    let ca = tapwire_test_support::TestCa::new();
    let tmp = tempfile::tempdir().unwrap();
    let storage = tmp.path().join("store");
    let env = vec![("TAPWIRE_DLP_KEY".to_owned(), DLP_KEY.to_owned())];
    let fwd = ForwarderProcess::start(
        Path::new(BIN),
        &[
            "--storage",
            storage.to_str().unwrap(),
            "--api-key",
            KEY,
            "--filter",
            "none",
            "--tls-cert",
            ca.server_cert.to_str().unwrap(),
            "--tls-key",
            ca.server_key.to_str().unwrap(),
        ],
        &env,
    );
    let url = format!("https://localhost:{}", fwd.addr.port());
    let proxy = TapwireProcess::proxy(
        Path::new(BIN),
        [
            "--mode",
            "reverse",
            "--service",
            "orders",
            "--app-port",
            &app.addr.port().to_string(),
            "--forwarder",
            &url,
            "--forwarder-api-key",
            KEY,
            "--extra-ca",
            ca.ca_pem.to_str().unwrap(),
        ],
    );
    let n = send(proxy.inbound, (0..10).map(|i| format!("/tls/{i}")));
    wait_until("delivery over TLS", Duration::from_secs(20), || {
        proxy_metric(
            &proxy.metrics(),
            "tapwire_proxy_forwarder_exchanges_sent_total",
            &[],
        ) == n as u64
    });
    // Segments sit in service=/date=/hour= directories.
    let stored: usize = segment_files(&storage)
        .iter()
        .map(|p| segment::read_file(p).unwrap().len())
        .sum();
    assert_eq!(stored, n, "{}", fwd.stderr());
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(segment_files(&path));
        } else if path.to_string_lossy().ends_with(segment::SUFFIX) {
            out.push(path);
        }
    }
    out
}

/// Runs nginx behind `tapwire proxy` sending to `tapwire forwarder`, which
/// writes to `server` under `prod/`; returns once 20 requests were
/// delivered (2 of them probes the standard filter drops).
fn deliver_into(server: &ObjectServer) {
    let (_app, fwd, proxy) = pipeline(server, &[]);
    send(proxy.inbound, (0..18).map(|i| format!("/orders/{i}")));
    send(proxy.inbound, (0..2).map(|_| "/healthz".to_owned()));
    let sent = || {
        proxy_metric(
            &proxy.metrics(),
            "tapwire_proxy_forwarder_exchanges_sent_total",
            &[],
        )
    };
    wait_until("delivered", Duration::from_secs(20), || sent() == 20);
    // The forwarder acknowledges a batch once it is stored.
    let fm = fwd.metrics();
    assert_eq!(
        fm.value("tapwire_forwarder_exchanges_stored_total", &[]),
        18.0,
        "{}",
        fm.0
    );
    assert_eq!(
        fm.get(
            "tapwire_forwarder_batches_total",
            &[("outcome", "store_error")]
        )
        .unwrap_or(0.0),
        0.0,
        "{}",
        fm.0
    );
}

#[test]
fn the_forwarder_writes_to_azure_blob_and_a_snapshot_reads_it_back() {
    if !require_tools(&["nginx"]) || !tapwire_test_support::cloud::require_azurite() {
        return;
    }
    let azure = ObjectServer::azurite("captures");
    deliver_into(&azure);
    assert_eq!(stored(&azure, "prod").len(), 18);
    let home = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(BIN);
    azure
        .configure(&mut cmd)
        .args([
            "snapshot",
            "create",
            "--from",
            &azure.url("prod"),
            "--service",
            "orders",
            "--name",
            "from-azure",
            "--store",
        ])
        .arg(home.path());
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("18"),
        "the snapshot does not count 18 exchanges:\n{text}"
    );
}

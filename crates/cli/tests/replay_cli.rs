//! `tapwire replay` and `tapwire report show` as real processes against
//! real Python servers: a faithful replay passes, noise is learnt and
//! ignored without hiding real changes, fixed-rate latency counts stalls,
//! goals set the exit code, and every report format is written; `--key`
//! picks the traffic replayed, `--stage` ramps from the command line, and
//! `--mock-admin` reads a running `tapwire mock`'s accuracy into the report.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tapwire_model::{Direction, Exchange};
use tapwire_test_support::http::HttpConn;
use tapwire_test_support::mock::MockProcess;
use tapwire_test_support::nginx::Nginx;
use tapwire_test_support::replay::{inbound, python_server, shown, xml_parses, SnapshotFixture};
use tapwire_test_support::{free_port, require_tools, TapwireProcess, TestCa};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tapwire"))
}

/// A single-threaded HTTP/1.0 server; `ROUTE` is Python code that sets
/// `status`, `ct` and `data` from `path`, `body_in` and `n` (request count).
const SERVER: &str = r#"
import json, os, sys, time, uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
STATE = {"n": 0}
HERE = os.path.dirname(os.path.abspath(__file__))
class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        self.any()
    def do_POST(self):
        self.any()
    def any(self):
        body_in = self.rfile.read(int(self.headers.get("content-length") or 0))
        STATE["n"] += 1
        n = STATE["n"]
        path = self.path.split("?")[0]
        status, ct, data = 404, "text/plain", b"not found"
ROUTE
        if isinstance(data, str):
            data = data.encode()
        self.send_response(status)
        self.send_header("Content-Type", ct)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
class S(HTTPServer):
    request_queue_size = 512
s = S(("127.0.0.1", 0), H)
print("READY", s.server_address[1], flush=True)
s.serve_forever()
"#;

fn server_source(route: &str) -> String {
    let route: String = route
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("        {l}\n"))
        .collect();
    SERVER.replace("ROUTE\n", &route)
}

fn report(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).expect("report.json is JSON")
}

fn p99_ms(r: &Value) -> f64 {
    r["summary"]["latency_ms"]["p99"].as_f64().expect("p99")
}

const APP_ROUTES: &str = r#"
if path.startswith("/users/"):
    uid = int(path.split("/")[2])
    status, ct, data = 200, "application/json", json.dumps({"id": uid, "name": "user%d" % uid, "tags": ["a", "b"]})
elif path == "/echo":
    status, ct, data = 201, "application/json", body_in
elif path == "/text":
    status, ct, data = 200, "text/plain", "hello\nworld\n"
elif path == "/bin":
    status, ct, data = 200, "application/octet-stream", bytes(range(256))
"#;

#[test]
fn replay_of_a_recording_against_the_same_server_passes_and_writes_reports() {
    if !require_tools(&["python3"]) {
        return;
    }
    let scratch = tempfile::tempdir().expect("tempdir");
    let app = python_server(scratch.path(), "app.py", &server_source(APP_ROUTES));
    let mut tw = TapwireProcess::proxy(bin(), ["--app-port", &app.port.to_string()]);
    let requests: [(&str, &str, &[u8]); 5] = [
        ("GET", "/users/1", b""),
        ("GET", "/users/2?verbose=1", b""),
        ("POST", "/echo", br#"{"order": 7, "items": [1, 2]}"#),
        ("GET", "/text", b""),
        ("GET", "/bin", b""),
    ];
    for (m, t, b) in requests {
        let mut c = HttpConn::connect(tw.inbound).expect("connect to proxy");
        let r = c
            .request(m, t, &[("Content-Type", "application/json")], b)
            .expect("request through the proxy");
        assert!(r.status < 300, "{m} {t} -> {}", r.status);
    }
    // Segments are flushed on a clean stop.
    tw.stop();
    let mut captures = tw.captures();
    for _ in 0..50 {
        if captures.len() >= requests.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        captures = tw.captures();
    }
    assert_eq!(captures.len(), requests.len(), "all requests recorded");
    let fx = SnapshotFixture::from_recording(bin(), &tw.out_dir, tempfile::tempdir().expect("tmp"));
    let out_dir = fx.path("report");
    let uploaded = fx.path("store").join("reports/shop/nightly");
    let report_to = format!("file://{}", uploaded.display());
    let target = format!("http://127.0.0.1:{}", app.port);
    let out = fx.replay(
        bin(),
        &target,
        [
            "--assert-header".as_ref(),
            "content-type".as_ref(),
            "--iterations".as_ref(),
            "3".as_ref(),
            "--vus".as_ref(),
            "2".as_ref(),
            "--report-dir".as_ref(),
            out_dir.as_os_str(),
            "--report-to".as_ref(),
            report_to.as_ref(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let r = report(&out_dir);
    assert_eq!(r["summary"]["requests"], 30, "{r:#}");
    // The store holds the same report.
    assert_eq!(report(&uploaded), r);
    for name in ["report.html", "junit.xml"] {
        assert!(uploaded.join(name).is_file(), "{name} uploaded");
    }
    assert_eq!(r["summary"]["assertions"]["checked"], 30);
    assert_eq!(r["summary"]["assertions"]["pass_rate"], 1.0);
    assert_eq!(r["passed"], true);
    let endpoints: Vec<&str> = r["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .map(|e| e["endpoint"].as_str().expect("key"))
        .collect();
    assert!(endpoints.contains(&"GET /users/{id}"), "{endpoints:?}");
    for key in ["p50", "p90", "p95", "p99", "max"] {
        assert!(r["endpoints"][0]["latency_ms"][key].is_number(), "{key}");
    }
    assert!(!r["throughput"].as_array().expect("throughput").is_empty());

    let html = std::fs::read_to_string(out_dir.join("report.html")).expect("report.html");
    assert!(html.contains("<svg"), "html has inline charts");
    assert!(
        !html.contains("<script src") && !html.contains("<link"),
        "no external assets"
    );
    assert!(xml_parses(&out_dir.join("junit.xml")), "junit.xml parses");

    let show = tapwire_test_support::process::run_ok(
        std::process::Command::new(bin())
            .args(["report", "show"])
            .arg(&out_dir),
        Duration::from_secs(20),
    );
    let table = String::from_utf8_lossy(&show.stdout);
    assert!(
        table.contains("GET /users/{id}") && table.contains("PASSED"),
        "{table}"
    );
}

const NOISY_ROUTES: &str = r#"
stable = open(os.path.join(HERE, "stable.txt")).read().strip()
status, ct, data = 200, "application/json", json.dumps({"ts": time.time(), "request_id": str(uuid.uuid4()), "stable": stable, "items": [{"id": 1, "at": time.time()}]})
"#;

#[test]
fn noise_is_learnt_ignored_and_does_not_hide_real_changes() {
    if !require_tools(&["python3"]) {
        return;
    }
    let fx = SnapshotFixture::new(
        bin(),
        &[inbound(
            1,
            "GET",
            "/status",
            200,
            "application/json",
            r#"{"ts": 1.5, "request_id": "abc", "stable": "v1", "items": [{"id": 1, "at": 2.5}]}"#,
        )],
    );
    std::fs::write(fx.path("stable.txt"), "v1").expect("write");
    let srv = python_server(fx.dir.path(), "noisy.py", &server_source(NOISY_ROUTES));
    let target = format!("http://127.0.0.1:{}", srv.port);
    let noise = fx.path("noise.json");
    let rep = fx.path("report");
    let run = |args: &[&std::ffi::OsStr]| {
        let mut all: Vec<&std::ffi::OsStr> = vec!["--report-dir".as_ref(), rep.as_os_str()];
        all.extend_from_slice(args);
        fx.replay(bin(), &target, all)
    };

    let out = run(&[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "noisy fields fail: {}",
        shown(&out)
    );
    let r = report(&rep);
    let mut paths: Vec<&str> = r["failures"][0]["problems"][0]["diffs"]
        .as_array()
        .expect("json diffs")
        .iter()
        .map(|d| d["path"].as_str().expect("path"))
        .collect();
    paths.sort_unstable();
    assert_eq!(paths, ["$.items[0].at", "$.request_id", "$.ts"], "{r:#}");

    let out = run(&["--learn-noise".as_ref(), noise.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let learnt: Value =
        serde_json::from_str(&std::fs::read_to_string(&noise).expect("noise file")).expect("json");
    let learnt_paths = &learnt["endpoints"]["GET /status"]["paths"];
    assert_eq!(
        learnt_paths,
        &serde_json::json!(["$.items.*.at", "$.request_id", "$.ts"]),
        "{learnt:#}"
    );

    let out = run(&["--noise".as_ref(), noise.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));

    std::fs::write(fx.path("stable.txt"), "v2").expect("write");
    let out = run(&["--noise".as_ref(), noise.as_os_str()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a real change fails: {}",
        shown(&out)
    );
    let r = report(&rep);
    let d = &r["failures"][0]["problems"][0]["diffs"];
    assert_eq!(d.as_array().map(Vec::len), Some(1), "{r:#}");
    assert_eq!(d[0]["path"], "$.stable");
    assert_eq!(d[0]["expected"], "v1");
    assert_eq!(d[0]["actual"], "v2");
}

/// Answers at once except request number 100, which stalls the whole
/// (single-threaded) server for one second.
const STALL_ROUTES: &str = r#"
if n == 100:
    time.sleep(1.0)
status, ct, data = 200, "text/plain", "ok"
"#;

#[test]
fn fixed_rate_latency_counts_a_stall_that_a_closed_loop_hides() {
    if !require_tools(&["python3"]) {
        return;
    }
    let fx = SnapshotFixture::new(
        bin(),
        &[inbound(1, "GET", "/work", 200, "text/plain", "ok")],
    );
    let rep = fx.path("report");

    let srv = python_server(fx.dir.path(), "stall.py", &server_source(STALL_ROUTES));
    let target = format!("http://127.0.0.1:{}", srv.port);
    let out = fx.replay(
        bin(),
        &target,
        [
            "--rps".as_ref(),
            "50".as_ref(),
            "--duration".as_ref(),
            "4s".as_ref(),
            "--report-dir".as_ref(),
            rep.as_os_str(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let r = report(&rep);
    let requests = r["summary"]["requests"].as_u64().expect("requests");
    assert!(
        (190..=201).contains(&requests),
        "{requests} requests at 50/s for 4 s"
    );
    assert!(p99_ms(&r) >= 900.0, "open model: p99 {} ms", p99_ms(&r));
    drop(srv);

    let srv = python_server(fx.dir.path(), "stall2.py", &server_source(STALL_ROUTES));
    let target = format!("http://127.0.0.1:{}", srv.port);
    let out = fx.replay(
        bin(),
        &target,
        [
            "--vus".as_ref(),
            "1".as_ref(),
            "--duration".as_ref(),
            "3s".as_ref(),
            "--report-dir".as_ref(),
            rep.as_os_str(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let r = report(&rep);
    assert!(
        r["summary"]["latency_ms"]["max"].as_f64().expect("max") >= 900.0,
        "the stall happened"
    );
    assert!(
        p99_ms(&r) < 900.0,
        "closed loop hides it: p99 {} ms",
        p99_ms(&r)
    );
}

const CHANGED_ROUTES: &str = r#"
status, ct, data = 200, "application/json", json.dumps({"a": 1, "b": {"when": "now"}})
"#;

#[test]
fn goals_assertions_and_usage_errors_set_the_exit_code() {
    if !require_tools(&["python3"]) {
        return;
    }
    let fx = SnapshotFixture::new(
        bin(),
        &[inbound(
            1,
            "GET",
            "/x",
            200,
            "application/json",
            r#"{"a": 1, "b": {"when": "then"}}"#,
        )],
    );
    let srv = python_server(fx.dir.path(), "changed.py", &server_source(CHANGED_ROUTES));
    let target = format!("http://127.0.0.1:{}", srv.port);
    let rep = fx.path("report");
    let r = rep.to_str().expect("utf-8");
    let run = |args: &[&str]| {
        let mut all = vec!["--report-dir", r];
        all.extend_from_slice(args);
        fx.replay(bin(), &target, all)
    };

    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let out = run(&["--ignore-path", "$.b.when"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let out = run(&[
        "--ignore-path",
        "$.b.when",
        "--fail-if",
        "latency.p99 > 0ms",
    ]);
    assert_eq!(out.status.code(), Some(1), "goal missed: {}", shown(&out));
    let rj = report(&rep);
    assert_eq!(rj["goals"][0]["passed"], false, "{rj:#}");
    assert!(xml_parses(&rep.join("junit.xml")));
    let out = run(&[
        "--ignore-path",
        "$.b.when",
        "--fail-if",
        "latency.p99 > 30s",
        "--fail-if",
        "assertions.pass_rate < 0.99",
    ]);
    assert_eq!(out.status.code(), Some(0), "goals met: {}", shown(&out));
    let out = run(&["--fail-if", "latency.p42 > 1ms"]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown metric"),
        "{}",
        shown(&out)
    );
    let mocks = fx.path("mock-results.jsonl");
    std::fs::write(
        &mocks,
        concat!(
            r#"{"outcome":"hit","key":"GET /a","future_field":1}"#,
            "\n",
            r#"{"outcome":"hit"}"#,
            "\n",
            r#"{"outcome":"miss"}"#,
            "\n",
            r#"{"outcome":"passthrough"}"#,
            "\n"
        ),
    )
    .expect("write");
    let out = run(&[
        "--ignore-path",
        "$.b.when",
        "--mock-results",
        mocks.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let rj = report(&rep);
    assert_eq!(rj["mock"]["hit"], 2, "{rj:#}");
    assert_eq!(rj["mock"]["hit_rate"], 0.5);
    let html = std::fs::read_to_string(rep.join("report.html")).expect("html");
    assert!(html.contains("Mock accuracy"));

    let stages = fx.path("stages.json");
    std::fs::write(
        &stages,
        r#"{"stages": [{"duration": "1s", "target": 40}, {"duration": "1s", "target": 40}]}"#,
    )
    .expect("write");
    let out = run(&[
        "--ignore-path",
        "$.b.when",
        "--rps",
        "1",
        "--config",
        stages.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let n = report(&rep)["summary"]["requests"].as_u64().expect("n");
    assert!(
        (55..=65).contains(&n),
        "20 on the ramp + 40 at full rate, got {n}"
    );
    std::fs::write(
        &stages,
        r#"{"stages": [{"duration": "1s", "target": 4, "vus": 2}]}"#,
    )
    .expect("write");
    let out = run(&["--config", stages.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("vus"),
        "{}",
        shown(&out)
    );

    let out = run(&["--no-fail-on-assertions"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    // An unusable --report-to fails before anything is sent.
    let out = run(&["--report-to", "ftp://x/reports"]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown storage scheme ftp://"),
        "{}",
        shown(&out)
    );
    // Only http:// and https:// targets exist.
    let out = fx.replay(bin(), "ftp://127.0.0.1:1", ["--report-dir", r]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("http:// or https://"),
        "{}",
        shown(&out)
    );
}

/// nginx over TLS (certificate from a private CA) answering with the
/// protocol it was spoken to in, so the report shows which one was used.
fn nginx_tls(ca: &TestCa) -> Nginx {
    Nginx::start_tls(
        "http2",
        ca,
        "    location /proto { default_type application/json; \
         return 200 '{\"proto\": \"$server_protocol\", \"tls\": \"$https\"}'; }",
    )
}

#[test]
fn replay_against_an_https_target_verifies_its_certificate() {
    if !require_tools(&["nginx"]) {
        return;
    }
    let ca = TestCa::new();
    let nginx = nginx_tls(&ca);
    let port = nginx.addr.port();
    let fx = SnapshotFixture::new(
        bin(),
        &[inbound(
            port,
            "GET",
            "/proto",
            200,
            "application/json",
            r#"{"proto": "HTTP/1.1", "tls": "on"}"#,
        )],
    );
    let rep = fx.path("report");
    let target = format!("https://localhost:{port}");
    let run = |args: &[&std::ffi::OsStr]| {
        let mut all: Vec<&std::ffi::OsStr> = vec![
            "--report-dir".as_ref(),
            rep.as_os_str(),
            "--assert-header".as_ref(),
            "content-type".as_ref(),
        ];
        all.extend_from_slice(args);
        fx.replay(bin(), &target, all)
    };

    // Trusted through --cacert: HTTP/1.1 over TLS, the recording matches.
    let out = run(&["--cacert".as_ref(), ca.ca_pem.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let r = report(&rep);
    assert_eq!(r["summary"]["assertions"]["passed"], 1, "{r:#}");
    assert_eq!(r["target"], target.as_str());

    // --http2 negotiates h2 by ALPN: nginx says so, and the body differs.
    let out = run(&[
        "--cacert".as_ref(),
        ca.ca_pem.as_os_str(),
        "--http2".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let r = report(&rep);
    let diff = &r["failures"][0]["problems"][0]["diffs"][0];
    assert_eq!(diff["path"], "$.proto", "{r:#}");
    assert_eq!(diff["actual"], "HTTP/2.0", "{r:#}");
    assert!(
        r["load"].as_str().is_some_and(|l| l.contains("h2")),
        "{r:#}"
    );

    // Signed by a CA the replayer does not trust: every request is an
    // error that names the certificate.
    let other = TestCa::new();
    let out = run(&["--cacert".as_ref(), other.ca_pem.as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let r = report(&rep);
    assert_eq!(r["summary"]["errors"], 1, "{r:#}");
    let message = r["failures"][0]["problems"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(message.contains("certificate"), "{r:#}");

    // --insecure skips verification, and says so.
    let out = run(&["--insecure".as_ref()]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NOT verified"),
        "{}",
        shown(&out)
    );

    // An unreadable --cacert is a usage error.
    let out = run(&["--cacert".as_ref(), fx.path("absent.pem").as_os_str()]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("absent.pem"),
        "{}",
        shown(&out)
    );
}

/// A recorded outbound call of service `shop` to `http://host:port`.
fn outbound(host: &str, port: u16, path: &str, body: &str) -> Exchange {
    let mut e = inbound(port, "GET", path, 200, "text/plain", body);
    e.direction = Direction::Outbound;
    e.service.name = "shop".into();
    e.upstream.host = host.into();
    if let Some(r) = e.request.as_mut() {
        r.authority = format!("{host}:{port}");
        r.headers = tapwire_model::Headers(vec![("Host".into(), format!("{host}:{port}"))]);
    }
    e
}

/// The mock stands in for the service under test: its reverse listener
/// answers the replayed `GET /balance` from the recording. So the replay's
/// own requests are the mock's hits, and the report's `mock` section must
/// count them.
#[test]
fn replay_selects_keys_ramps_stages_and_reads_a_running_mocks_accuracy() {
    let fx = SnapshotFixture::new(
        bin(),
        &[
            inbound(1, "GET", "/balance", 200, "text/plain", "balance 42"),
            inbound(2, "GET", "/other", 200, "text/plain", "other"),
            outbound("ledger.internal", 8080, "/balance", "balance 42"),
            outbound("payments.internal", 80, "/v1/charges", "paid"),
        ],
    );
    let map_port = free_port();
    let ca_dir = fx.path("ca");
    let mut mock = MockProcess::start(
        bin(),
        [
            "--snapshot".as_ref(),
            "s".as_ref(),
            "--store".as_ref(),
            fx.store.as_os_str(),
            "--ca-dir".as_ref(),
            ca_dir.as_os_str(),
            "--map".as_ref(),
            format!("{map_port}=ledger.internal:8080").as_ref(),
            "--key".as_ref(),
            "shop:ledger.internal:8080".as_ref(),
        ],
    );
    assert!(
        mock.stderr().contains("kept=1"),
        "the mock logs how many responses --key kept: {}",
        mock.stderr()
    );
    // payments.internal was recorded but not selected: a miss.
    let miss = HttpConn::connect(mock.proxy)
        .and_then(|mut c| {
            c.request(
                "GET",
                "http://payments.internal:80/v1/charges",
                &[("Host", "payments.internal")],
                b"",
            )
        })
        .expect("request through the mock");
    assert_eq!(miss.status, 404, "{}", mock.stderr());

    let target = format!("http://127.0.0.1:{map_port}");
    let admin = format!("http://{}", mock.admin);
    let rep = fx.path("report");
    let r = rep.to_str().expect("utf-8");
    // Only svc:127.0.0.1:1 (GET /balance) is replayed: /other is not
    // recorded in the mock and would fail.
    let out = fx.replay(
        bin(),
        &target,
        [
            "--report-dir",
            r,
            "--key",
            "svc:127.0.0.1:1",
            "--iterations",
            "2",
            "--mock-admin",
            &admin,
            "--build-tag",
            "v2.3.1",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\nmock:\n{}",
        shown(&out),
        mock.stderr()
    );
    let rj = report(&rep);
    assert_eq!(rj["summary"]["requests"], 2, "{rj:#}");
    assert_eq!(rj["keys"], serde_json::json!(["svc:127.0.0.1:1"]), "{rj:#}");
    assert_eq!(
        rj["mock"],
        serde_json::json!({
            "total": 3, "hit": 2, "miss": 1, "passthrough": 0, "other": 0,
            "hit_rate": 2.0 / 3.0,
        }),
        "{rj:#}"
    );
    assert!(rj.get("mock_error").is_none(), "{rj:#}");
    assert_eq!(rj["build_tag"], "v2.3.1", "{rj:#}");
    let html = std::fs::read_to_string(rep.join("report.html")).expect("html");
    assert!(html.contains("Mock accuracy"));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("mocks: 66.7% hit"),
        "{}",
        shown(&out)
    );

    // A key nothing has: the error lists what there is.
    let out = fx.replay(
        bin(),
        &target,
        ["--report-dir", r, "--key", "svc:127.0.0.1:9"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("its inbound keys are svc:127.0.0.1:1, svc:127.0.0.1:2"),
        "{}",
        shown(&out)
    );
    let out = fx.replay(bin(), &target, ["--report-dir", r, "--key", "svc"]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("service:host:port"),
        "{}",
        shown(&out)
    );

    // Stages from the command line: 5 requests on the 1 s ramp to 10/s,
    // 10 more at full rate.
    let out = fx.replay(
        bin(),
        &target,
        [
            "--report-dir",
            r,
            "--key",
            "svc:127.0.0.1:1",
            "--rps",
            "1",
            "--stage",
            "1s:10",
            "--stage",
            "1s:10",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let n = report(&rep)["summary"]["requests"].as_u64().expect("n");
    assert!(
        (12..=18).contains(&n),
        "5 on the ramp + 10 at full rate, got {n}"
    );
    assert!(report(&rep)["load"]
        .as_str()
        .is_some_and(|l| l.contains("2 rate stages")));
    for (bad, why) in [("1s", "DURATION:TARGET"), ("soon:5", "duration \"soon\"")] {
        let out = fx.replay(bin(), &target, ["--report-dir", r, "--stage", bad]);
        assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(why),
            "{}",
            shown(&out)
        );
    }
    let out = fx.replay(
        bin(),
        &target,
        [
            "--report-dir",
            r,
            "--stage",
            "1s:1",
            "--config",
            "stages.json",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
    mock.stop();
}

/// A `--mock-admin` that does not answer costs the mock section, not the
/// report: the run passes, the report says why the accuracy is missing.
#[test]
fn an_unreachable_mock_admin_is_reported_not_dropped() {
    let fx = SnapshotFixture::new(
        bin(),
        &[
            inbound(1, "GET", "/balance", 200, "text/plain", "balance 42"),
            outbound("ledger.internal", 8080, "/balance", "balance 42"),
        ],
    );
    let map_port = free_port();
    let ca_dir = fx.path("ca");
    let mock = MockProcess::start(
        bin(),
        [
            "--snapshot".as_ref(),
            "s".as_ref(),
            "--store".as_ref(),
            fx.store.as_os_str(),
            "--ca-dir".as_ref(),
            ca_dir.as_os_str(),
            "--map".as_ref(),
            format!("{map_port}=ledger.internal:8080").as_ref(),
        ],
    );
    let target = format!("http://127.0.0.1:{map_port}");
    // Nothing listens there.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let rep = fx.path("report");
    let r = rep.to_str().expect("utf-8");
    let out = fx.replay(
        bin(),
        &target,
        ["--report-dir", r, "--mock-admin", &nowhere],
    );
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("WARN") && err.contains(&nowhere),
        "{}",
        shown(&out)
    );
    let rj = report(&rep);
    assert_eq!(rj["summary"]["requests"], 1, "{rj:#}");
    assert!(rj.get("mock").is_none(), "{rj:#}");
    let why = rj["mock_error"].as_str().expect("mock_error");
    assert!(why.contains(&format!("{nowhere}/accuracy")), "{why}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("accuracy unavailable"),
        "{}",
        shown(&out)
    );
    let html = std::fs::read_to_string(rep.join("report.html")).expect("html");
    assert!(html.contains("unavailable"));

    // Something that is not a mock's admin port: said, too.
    let out = fx.replay(bin(), &target, ["--report-dir", r, "--mock-admin", &target]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let why = report(&rep)["mock_error"]
        .as_str()
        .expect("mock_error")
        .to_owned();
    assert!(
        why.contains("is this a tapwire mock's admin port?"),
        "{why}"
    );
    drop(mock);
}

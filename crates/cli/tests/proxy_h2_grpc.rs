//! HTTP/2 and gRPC through the inbound port: h2load against nginx serving
//! h2c (prior knowledge), and a Python grpcio client and server.

use std::path::Path;
use std::time::Duration;

use tapwire_model::{Direction, Protocol};
use tapwire_test_support::captures::{find_http, summary};
use tapwire_test_support::http::comparable_headers;
use tapwire_test_support::nginx::Nginx;
use tapwire_test_support::process::{clean_env, run_ok};
use tapwire_test_support::python::python;
use tapwire_test_support::tapwire::init_and_export_ca;
use tapwire_test_support::{
    curl, require_python_modules, require_tools, PyServer, TapwireProcess, TestCa,
};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tapwire"))
}

const REQUESTS: usize = 2000;

/// Parses h2load's `requests: N total, N started, N done, N succeeded, ...` line.
fn h2load_count(out: &str, what: &str) -> Option<usize> {
    let line = out.lines().find(|l| l.starts_with("requests:"))?;
    line.trim_start_matches("requests:")
        .split(',')
        .map(str::trim)
        .find_map(|part| part.strip_suffix(what)?.trim().parse().ok())
}

#[test]
fn h2load_through_the_inbound_port_to_nginx_h2c() {
    if !require_tools(&["nginx", "h2load", "curl"]) {
        return;
    }
    // nginx 1.22: `listen ... http2` without `ssl` serves h2c by prior
    // knowledge only (no Upgrade: h2c); the `http2` directive is 1.25+.
    // keepalive_requests (default 1000) would make nginx rotate the h2
    // connection mid-run; that case has its own test below.
    let nginx = Nginx::start(
        "http2",
        "    keepalive_requests 100000;\n    \
         location / { add_header X-Served-By nginx-h2c; return 200 \"hello over h2c\\n\"; }",
    );
    let mut tw = TapwireProcess::proxy(
        bin(),
        [
            "--app-port",
            &nginx.addr.port().to_string(),
            "--service",
            "edge",
        ],
    );

    let direct = curl([
        "--http2-prior-knowledge",
        &format!("http://{}/hello?x=1", nginx.addr),
    ])
    .ok();
    let proxied = curl([
        "--http2-prior-knowledge",
        &format!("http://{}/hello?x=1", tw.inbound),
    ])
    .ok();
    assert_eq!((direct.status, proxied.status), (200, 200));
    assert_eq!(proxied.body, b"hello over h2c\n");
    assert_eq!(proxied.body, direct.body);
    // nginx's Server header names its version; it must pass unchanged too.
    assert_eq!(
        comparable_headers(&proxied.headers),
        comparable_headers(&direct.headers)
    );

    let mut cmd = std::process::Command::new("h2load");
    clean_env(&mut cmd).args([
        "-n",
        &REQUESTS.to_string(),
        "-c",
        "10",
        "-m",
        "10",
        &format!("http://{}/", tw.inbound),
    ]);
    let out = run_ok(&mut cmd, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        h2load_count(&stdout, "succeeded"),
        Some(REQUESTS),
        "{stdout}"
    );
    assert_eq!(h2load_count(&stdout, "failed"), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("status codes: {REQUESTS} 2xx")),
        "{stdout}"
    );
    let metrics = tw.metrics();
    assert_eq!(
        metrics.value(
            "tapwire_proxy_requests_total",
            &[("direction", "inbound"), ("protocol", "h2")]
        ),
        (REQUESTS + 1) as f64
    );

    let exited = tw.stop();
    assert!(exited.status.success(), "{}", exited.stderr);
    let caps = tw.captures();
    assert_eq!(caps.len(), REQUESTS + 1);
    for ex in &caps {
        assert_eq!(ex.protocol, Protocol::Http2, "{ex:?}");
        assert_eq!(ex.direction, Direction::Inbound);
        assert_eq!(ex.service.name, "edge");
        assert_eq!(ex.error, None);
        let req = ex.request.as_ref().expect("request");
        assert_eq!(req.version, "HTTP/2.0");
        let resp = ex.response.as_ref().expect("response");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body.data.as_ref(), b"hello over h2c\n");
    }
    let hello = find_http(&caps, "GET", "/hello");
    assert_eq!(hello.len(), 1);
    assert_eq!(
        hello[0].request.as_ref().and_then(|r| r.query.as_deref()),
        Some("x=1")
    );
}

/// nginx ends an HTTP/2 connection after `keepalive_requests` streams with
/// GOAWAY(NO_ERROR); streams the proxy had already sent past the GOAWAY's
/// last-stream-id were never processed (RFC 9113 §6.8) and are safe to
/// retry. A transparent proxy must not turn that routine rotation into 502s.
#[test]
fn upstream_h2_goaway_rotation_does_not_fail_client_requests() {
    if !require_tools(&["nginx", "h2load"]) {
        return;
    }
    let nginx = Nginx::start(
        "http2",
        "    keepalive_requests 20;\n    location / { return 200 \"rotated\\n\"; }",
    );
    let mut tw = TapwireProcess::proxy(bin(), ["--app-port", &nginx.addr.port().to_string()]);
    let mut cmd = std::process::Command::new("h2load");
    clean_env(&mut cmd).args([
        "-n",
        "400",
        "-c",
        "2",
        "-m",
        "8",
        &format!("http://{}/", tw.inbound),
    ]);
    let out = run_ok(&mut cmd, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failed = h2load_count(&stdout, "failed");
    let errors = tw.metrics().get(
        "tapwire_proxy_upstream_errors_total",
        &[("direction", "inbound"), ("kind", "protocol")],
    );
    let log: Vec<String> = tw
        .stderr()
        .lines()
        .filter(|l| l.contains("proxying failed"))
        .take(2)
        .map(str::to_owned)
        .collect();
    tw.stop();
    assert_eq!(
        (failed, errors),
        (Some(0), None),
        "requests failed when nginx rotated its h2 connection; proxy log: {log:#?}\n{stdout}"
    );
}

#[test]
fn grpc_unary_streaming_and_errors_through_the_inbound_port() {
    if !require_tools(&["python3"]) || !require_python_modules(&["grpc"]) {
        return;
    }
    let server = PyServer::start("grpc_server.py", [] as [&str; 0]);
    let mut tw = TapwireProcess::proxy(
        bin(),
        ["--app-port", &server.port.to_string(), "--service", "echo"],
    );
    let call = |target: String| -> serde_json::Value {
        let out = run_ok(
            python("grpc_client.py").arg(target),
            Duration::from_secs(60),
        );
        serde_json::from_slice(&out.stdout).expect("grpc_client.py prints JSON")
    };
    let direct = call(server.addr().to_string());
    let proxied = call(tw.inbound.to_string());
    assert_eq!(proxied, direct);
    assert_eq!(proxied["unary"]["response"], "echo:hello grpc");
    assert_eq!(proxied["unary"]["code"], "OK");
    assert_eq!(
        proxied["unary"]["trailing"],
        serde_json::json!([["x-echo", "yes"]])
    );
    assert_eq!(
        proxied["stream"]["responses"].as_array().map(Vec::len),
        Some(5)
    );
    assert_eq!(proxied["fail"]["code"], "NOT_FOUND");

    let exited = tw.stop();
    assert!(exited.status.success(), "{}", exited.stderr);
    let caps = tw.captures();
    assert_eq!(caps.len(), 3, "{:?}", summary(&caps));
    for ex in &caps {
        assert_eq!(ex.protocol, Protocol::Grpc, "{ex:?}");
        assert_eq!(ex.direction, Direction::Inbound);
        assert_eq!(ex.service.name, "echo");
        assert_eq!(
            (ex.upstream.host.as_str(), ex.upstream.port),
            ("127.0.0.1", server.port)
        );
        assert_eq!(ex.error, None);
    }
    // Length-prefixed gRPC messages: flag 0, big-endian length, payload.
    let framed = |payload: &[u8]| {
        let mut v = vec![0u8];
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v
    };
    let unary = find_http(&caps, "POST", "/tapwire.test.Echo/Unary")[0];
    let req = unary.request.as_ref().expect("request");
    assert_eq!(req.headers.get("content-type"), Some("application/grpc"));
    assert_eq!(req.headers.get("x-client"), Some("test"));
    assert_eq!(req.body.data.as_ref(), framed(b"hello grpc").as_slice());
    let resp = unary.response.as_ref().expect("response");
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.body.data.as_ref(),
        framed(b"echo:hello grpc").as_slice()
    );
    assert_eq!(resp.trailers.get("grpc-status"), Some("0"), "{resp:?}");
    assert_eq!(resp.trailers.get("x-echo"), Some("yes"), "{resp:?}");

    let stream = find_http(&caps, "POST", "/tapwire.test.Echo/ServerStream")[0];
    let resp = stream.response.as_ref().expect("response");
    let want: Vec<u8> = (0..5)
        .flat_map(|i| framed(format!("part-{i}:stream me").as_bytes()))
        .collect();
    assert_eq!(resp.body.data.as_ref(), want.as_slice());
    assert_eq!(resp.trailers.get("grpc-status"), Some("0"), "{resp:?}");

    // A failed call is a trailers-only response: its status is in the headers.
    let fail = find_http(&caps, "POST", "/tapwire.test.Echo/Fail")[0];
    let resp = fail.response.as_ref().expect("response");
    let status = resp
        .trailers
        .get("grpc-status")
        .or_else(|| resp.headers.get("grpc-status"));
    assert_eq!(status, Some("5"), "{resp:?}");
}

/// gRPC over TLS from an app to a dependency, through the outbound port
/// with interception: HTTP/2 on both sides, trailers intact.
#[test]
fn grpc_over_tls_through_the_intercepting_outbound_proxy() {
    if !require_tools(&["python3"]) || !require_python_modules(&["grpc"]) {
        return;
    }
    let ca = TestCa::new();
    let server = PyServer::start(
        "grpc_server.py",
        [
            "--tls-cert".as_ref(),
            ca.server_cert.as_os_str(),
            "--tls-key".as_ref(),
            ca.server_key.as_os_str(),
        ],
    );
    let tca = init_and_export_ca(bin());
    let mut tw = TapwireProcess::proxy(
        bin(),
        [
            "--tls-out".as_ref(),
            "--ca-dir".as_ref(),
            tca.ca_dir.as_os_str(),
            "--extra-ca".as_ref(),
            ca.ca_pem.as_os_str(),
            "--service".as_ref(),
            "orders".as_ref(),
        ],
    );
    let target = format!("localhost:{}", server.port);
    let direct = run_ok(
        python("grpc_client.py")
            .arg(&target)
            .arg("--tls-ca")
            .arg(&ca.ca_pem),
        Duration::from_secs(60),
    );
    let proxied = run_ok(
        python("grpc_client.py")
            .arg(&target)
            .arg("--tls-ca")
            .arg(&tca.cert_pem)
            .arg("--proxy")
            .arg(format!("http://{}", tw.outbound)),
        Duration::from_secs(60),
    );
    let json = |o: &std::process::Output| -> serde_json::Value {
        serde_json::from_slice(&o.stdout).expect("grpc_client.py prints JSON")
    };
    assert_eq!(json(&proxied), json(&direct));
    assert_eq!(json(&proxied)["unary"]["response"], "echo:hello grpc");

    let exited = tw.stop();
    assert!(exited.status.success(), "{}", exited.stderr);
    let caps = tw.captures();
    assert_eq!(caps.len(), 3, "{:?}", summary(&caps));
    for ex in &caps {
        assert_eq!(ex.direction, Direction::Outbound);
        assert_eq!(ex.protocol, Protocol::Grpc, "{ex:?}");
        assert_eq!(
            (ex.upstream.host.as_str(), ex.upstream.port),
            ("localhost", server.port)
        );
        let tls = ex.tls.as_ref().expect("tls");
        assert!(tls.intercepted);
        assert_eq!(tls.alpn, vec!["h2".to_owned()]);
        assert_eq!(
            ex.request.as_ref().map(|r| r.scheme.as_str()),
            Some("https")
        );
    }
    let unary = find_http(&caps, "POST", "/tapwire.test.Echo/Unary")[0];
    let resp = unary.response.as_ref().expect("response");
    assert_eq!(resp.trailers.get("grpc-status"), Some("0"), "{resp:?}");
}

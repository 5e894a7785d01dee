//! `tapwire mock` end to end: a snapshot made from constructed exchanges is
//! served to curl (HTTP/1.1 and h2 through CONNECT with the tapwire CA),
//! Python `requests`, the JDK's `HttpClient` and a reverse `--map` listener;
//! recorded gRPC calls come back with their trailers and status; misses are
//! explained or passed through to a real HTTPS upstream, and the results
//! file and the accuracy printed at shutdown agree.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use tapwire_model::{
    Body, Direction, Exchange, Headers, Protocol, Request, Response, Service, Upstream,
};
use tapwire_test_support::captures::summary;
use tapwire_test_support::java;
use tapwire_test_support::mock::{make_snapshot, MockProcess};
use tapwire_test_support::nginx::Nginx;
use tapwire_test_support::process::run_ok;
use tapwire_test_support::python::python;
use tapwire_test_support::tapwire::{init_and_export_ca, ExportedCa};
use tapwire_test_support::{
    curl, free_port, require_python_modules, require_tool, require_tools, PyServer, TapwireProcess,
    TestCa,
};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tapwire"))
}

const CHARGE: &str = "{\"id\":\"ch_1\",\"amount\":10,\n \"customer\":{\"id\":\"cu_9\"}}\n";
const CREATED: &str = "{\"id\":\"ch_2\",\"status\":\"created\"}";

/// `to` is (scheme, host, port).
fn exchange(
    to: (&str, &str, u16),
    method: &str,
    pq: &str,
    req_body: &str,
    status: u16,
    resp_body: Body,
) -> Exchange {
    let (scheme, host, port) = to;
    let mut ex = Exchange::new(
        Direction::Outbound,
        Protocol::Http1,
        Service {
            name: "shop".into(),
            ..Service::default()
        },
        Upstream {
            host: host.into(),
            port,
        },
    );
    let (path, query) = match pq.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (pq.to_owned(), None),
    };
    let mut req_headers = Headers::new();
    req_headers.push("host", host);
    if !req_body.is_empty() {
        req_headers.push("content-type", "application/json");
    }
    ex.request = Some(Request {
        method: method.into(),
        scheme: scheme.into(),
        authority: host.into(),
        path,
        query,
        version: "HTTP/1.1".into(),
        headers: req_headers,
        body: Body::complete(req_body.to_owned()),
        trailers: Headers::new(),
    });
    let mut headers = Headers::new();
    headers.push("content-type", "application/json");
    headers.push("x-request-id", "req-1");
    headers.push("connection", "keep-alive");
    headers.push("content-length", "999");
    ex.response = Some(Response {
        status,
        version: "HTTP/1.1".into(),
        headers,
        body: resp_body,
        trailers: Headers::new(),
    });
    ex.duration_us = 1_000;
    ex
}

fn snapshot_exchanges() -> Vec<Exchange> {
    vec![
        exchange(
            ("https", "payments.internal", 443),
            "GET",
            "/v1/charges/ch_1?expand=customer",
            "",
            200,
            Body::complete(CHARGE),
        ),
        exchange(
            ("https", "payments.internal", 443),
            "POST",
            "/v1/charges",
            r#"{"amount":10,"currency":"eur"}"#,
            201,
            Body::complete(CREATED),
        ),
        exchange(
            ("https", "payments.internal", 443),
            "GET",
            "/v1/export",
            "",
            200,
            Body {
                data: "partial".into(),
                size: 4096,
                truncated: true,
            },
        ),
        exchange(
            ("http", "ledger.internal", 8080),
            "GET",
            "/balance",
            "",
            200,
            Body::complete("balance 42"),
        ),
    ]
}

#[test]
fn mock_serves_recorded_responses_and_explains_misses() {
    if !require_tool("curl") {
        return;
    }
    let with_python = require_python_modules(&["requests"]);
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    make_snapshot(
        bin(),
        &snapshot_exchanges(),
        &tmp.path().join("rec"),
        &store,
        "s",
    );
    let ca = init_and_export_ca(bin());
    let results = tmp.path().join("results.jsonl");
    let (map_port, tls_port) = (free_port(), free_port());
    let mut mock = MockProcess::start(
        bin(),
        [
            "--snapshot".as_ref(),
            "s".as_ref(),
            "--store".as_ref(),
            store.as_os_str(),
            "--ca-dir".as_ref(),
            ca.ca_dir.as_os_str(),
            "--results".as_ref(),
            results.as_os_str(),
            "--map".as_ref(),
            format!("{map_port}=ledger.internal:8080").as_ref(),
            "--map".as_ref(),
            format!("{tls_port}=payments.internal:443").as_ref(),
        ],
    );
    let proxy = mock.proxy_url();
    let via = |extra: &[&str], url: &str| {
        let mut args = vec![
            "--proxy",
            proxy.as_str(),
            "--cacert",
            ca.cert_pem.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.push(url);
        curl(args)
    };
    let mut hits: u32 = 0;
    let mut misses: u32 = 0;

    // HTTPS through CONNECT, HTTP/1.1 and h2: the recorded body byte for byte.
    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let out = via(
            &[flag, "-w", "%{http_version}"],
            "https://payments.internal/v1/charges/ch_1?expand=customer",
        )
        .ok();
        assert_eq!(out.status, 200, "{}", mock.stderr());
        assert_eq!(out.body, CHARGE.as_bytes());
        assert_eq!(out.stdout, version);
        assert_eq!(out.header("x-request-id"), Some("req-1"));
        // content-length is recomputed, hop-by-hop fields are dropped.
        let len = CHARGE.len().to_string();
        assert!(
            out.header("content-length").is_none_or(|l| l == len),
            "{:?}",
            out.headers
        );
        assert_eq!(out.header("connection"), None);
        hits += 1;
    }

    // A truncated recording is served as captured and flagged.
    let out = via(&[], "https://payments.internal/v1/export").ok();
    assert_eq!(out.body, b"partial");
    assert_eq!(out.header("x-tapwire-truncated"), Some("true"));
    hits += 1;

    // Python requests, configured only by the environment; JSON key order
    // and whitespace differ from the recording.
    if with_python {
        let out = run_ok(
            python("requests_client.py")
                .env("HTTPS_PROXY", &proxy)
                .env("REQUESTS_CA_BUNDLE", &ca.cert_pem)
                .args([
                    "POST",
                    "https://payments.internal/v1/charges",
                    r#"{"currency": "eur", "amount": 10}"#,
                ]),
            Duration::from_secs(30),
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["status"], 201, "{v}");
        assert_eq!(v["body"], CREATED);
        hits += 1;
    }

    // The reverse listener answers plain HTTP as ledger.internal:8080.
    let out = curl([format!("http://127.0.0.1:{map_port}/balance")]).ok();
    assert_eq!(
        (out.status, out.body.as_slice()),
        (200, b"balance 42".as_slice())
    );
    hits += 1;
    // A mapped listener speaks TLS (and h2) when the client does.
    let out = curl([
        "--http2".to_owned(),
        "--cacert".to_owned(),
        ca.cert_pem.display().to_string(),
        "--resolve".to_owned(),
        format!("payments.internal:{tls_port}:127.0.0.1"),
        format!("https://payments.internal:{tls_port}/v1/charges/ch_1?expand=customer"),
    ])
    .ok();
    assert_eq!(out.body, CHARGE.as_bytes());
    hits += 1;
    // So does the forward proxy, for absolute-form plain HTTP (HTTP_PROXY).
    let out = curl([
        "--proxy",
        proxy.as_str(),
        "http://ledger.internal:8080/balance",
    ])
    .ok();
    assert_eq!(
        (out.status, out.body.as_slice()),
        (200, b"balance 42".as_slice())
    );
    hits += 1;

    // Misses: 404 naming what differs from the nearest recorded request.
    let out = via(&[], "https://payments.internal/v1/charges/ch_1?expand=card").ok();
    assert_eq!(out.status, 404);
    assert_eq!(out.header("x-tapwire-mock"), Some("miss"));
    let text = String::from_utf8_lossy(&out.body);
    assert!(
        text.contains(r#"query param expand differs: recorded "customer", got "card""#),
        "{text}"
    );
    misses += 1;
    let out = via(
        &["-X", "DELETE"],
        "https://payments.internal/v1/charges/ch_1?expand=customer",
    )
    .ok();
    assert_eq!(out.status, 404);
    let text = String::from_utf8_lossy(&out.body);
    assert!(
        text.contains("method differs: recorded GET, got DELETE"),
        "{text}"
    );
    misses += 1;
    // CONNECT to a host with no recorded traffic: 502.
    let out = via(&[], "https://unknown.internal/");
    assert!(!out.exit.success());
    assert!(out.stderr.contains("502"), "{}", out.stderr);
    misses += 1;

    let m = mock.metrics();
    assert_eq!(
        m.value(
            "tapwire_mock_requests_total",
            &[("key", "shop:payments.internal:443"), ("outcome", "hit")]
        ),
        f64::from(hits - 2)
    );
    assert_eq!(
        m.value("tapwire_mock_requests_total", &[("outcome", "miss")]),
        f64::from(misses)
    );

    let exited = mock.stop();
    assert!(exited.status.success(), "{}", exited.stderr);
    let total = hits + misses;
    let expected = format!(
        "mock accuracy {:.1}% ({hits} hits, {misses} misses, 0 passthroughs)",
        f64::from(hits) * 100.0 / f64::from(total)
    );
    assert!(
        exited.stderr.contains(&expected),
        "want {expected:?} in:\n{}",
        exited.stderr
    );

    let records = tapwire_mock::read_results(&results).unwrap();
    assert_eq!(records.len(), total as usize);
    let acc = tapwire_mock::summarize(&records);
    assert_eq!(
        (acc.hits, acc.misses, acc.passthroughs),
        (u64::from(hits), u64::from(misses), 0)
    );
    let miss = records
        .iter()
        .find(|r| r.outcome == tapwire_mock::Outcome::Miss)
        .unwrap();
    assert_eq!(miss.key, "shop:payments.internal:443");
    assert!(
        miss.reason
            .as_deref()
            .unwrap_or("")
            .contains("query param expand"),
        "{miss:?}"
    );
    assert!(records
        .iter()
        .filter(|r| r.outcome == tapwire_mock::Outcome::Hit)
        .all(|r| r.exchange.is_some()));
}

/// Starts `tapwire mock` on snapshot `s` in `store` with the CA and a
/// results file, plus `extra` flags.
fn start_mock(store: &Path, ca: &ExportedCa, results: &Path, extra: &[&OsStr]) -> MockProcess {
    let mut args: Vec<&OsStr> = vec![
        "--snapshot".as_ref(),
        "s".as_ref(),
        "--store".as_ref(),
        store.as_os_str(),
        "--ca-dir".as_ref(),
        ca.ca_dir.as_os_str(),
        "--results".as_ref(),
        results.as_os_str(),
    ];
    args.extend_from_slice(extra);
    MockProcess::start(bin(), args)
}

#[test]
fn jdk_httpclient_gets_recorded_responses_through_the_mock() {
    if !require_tool("java") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    make_snapshot(
        bin(),
        &snapshot_exchanges(),
        &tmp.path().join("rec"),
        &store,
        "s",
    );
    let ca = init_and_export_ca(bin());
    let results = tmp.path().join("results.jsonl");
    let mut mock = start_mock(&store, &ca, &results, &[]);
    let port = mock.proxy.port();
    // As a JVM app is configured: proxy and truststore system properties.
    let props = vec![
        "-Dhttps.proxyHost=127.0.0.1".to_owned(),
        format!("-Dhttps.proxyPort={port}"),
        "-Dhttp.proxyHost=127.0.0.1".to_owned(),
        format!("-Dhttp.proxyPort={port}"),
        format!("-Djavax.net.ssl.trustStore={}", ca.pkcs12.display()),
        "-Djavax.net.ssl.trustStorePassword=changeit".to_owned(),
        "-Djavax.net.ssl.trustStoreType=PKCS12".to_owned(),
    ];

    // HTTPS through CONNECT, TLS from tapwire's CA; the JDK offers h2 by ALPN.
    let got = java::http_call(
        &props,
        "GET",
        "https://payments.internal/v1/charges/ch_1?expand=customer",
        None,
    );
    assert_eq!(got.status, 200, "{}", mock.stderr());
    assert_eq!(got.body, CHARGE.as_bytes(), "recorded body, byte for byte");
    assert_eq!(got.header("x-request-id"), Some("req-1"));
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.version, "HTTP_2", "h2 negotiated with the mock");

    // A JSON body whose key order and spacing differ from the recording.
    let got = java::http_call(
        &props,
        "POST",
        "https://payments.internal/v1/charges",
        Some(r#"{ "currency": "eur", "amount": 10 }"#),
    );
    assert_eq!(got.status, 201, "{}", mock.stderr());
    assert_eq!(got.body, CREATED.as_bytes());

    // Plain HTTP through the same port (absolute-form, http.proxyHost).
    let got = java::http_call(&props, "GET", "http://ledger.internal:8080/balance", None);
    assert_eq!(got.status, 200, "{}", mock.stderr());
    assert_eq!(got.body, b"balance 42");

    let exited = mock.stop();
    assert!(exited.status.success(), "{}", exited.stderr);
    let records = tapwire_mock::read_results(&results).unwrap();
    let acc = tapwire_mock::summarize(&records);
    assert_eq!(
        (acc.hits, acc.misses, acc.passthroughs),
        (3, 0, 0),
        "{records:?}"
    );
}

/// Runs `grpc_client.py TARGET --stream-fail ARGS` and returns its JSON.
fn grpc_call(target: &str, args: &[&OsStr]) -> serde_json::Value {
    let out = run_ok(
        python("grpc_client.py")
            .arg(target)
            .arg("--stream-fail")
            .args(args),
        Duration::from_secs(60),
    );
    serde_json::from_slice(&out.stdout).expect("grpc_client.py prints JSON")
}

/// gRPC calls recorded over TLS through the intercepting proxy are answered
/// by the mock after the server is gone: messages, trailers and status,
/// OK and not, over CONNECT + TLS (ALPN h2) and over h2c on a `--map` port.
#[test]
fn recorded_grpc_calls_come_back_with_their_trailers_and_status() {
    if !require_tools(&["python3"]) || !require_python_modules(&["grpc"]) {
        return;
    }
    let upstream_ca = TestCa::new();
    let server = PyServer::start(
        "grpc_server.py",
        [
            "--tls-cert".as_ref(),
            upstream_ca.server_cert.as_os_str(),
            "--tls-key".as_ref(),
            upstream_ca.server_key.as_os_str(),
        ],
    );
    let ca = init_and_export_ca(bin());
    let mut tw = TapwireProcess::proxy(
        bin(),
        [
            "--tls-out".as_ref(),
            "--ca-dir".as_ref(),
            ca.ca_dir.as_os_str(),
            "--extra-ca".as_ref(),
            upstream_ca.ca_pem.as_os_str(),
            "--service".as_ref(),
            "orders".as_ref(),
        ],
    );
    let target = format!("localhost:{}", server.port);
    let direct = grpc_call(
        &target,
        &["--tls-ca".as_ref(), upstream_ca.ca_pem.as_os_str()],
    );
    let proxy = format!("http://{}", tw.outbound);
    let recorded = grpc_call(
        &target,
        &[
            "--tls-ca".as_ref(),
            ca.cert_pem.as_os_str(),
            "--proxy".as_ref(),
            proxy.as_ref(),
        ],
    );
    assert_eq!(recorded, direct);
    assert_eq!(
        direct["stream_fail"]["code"], "RESOURCE_EXHAUSTED",
        "{direct}"
    );
    let exited = tw.stop();
    assert!(exited.status.success(), "{}", exited.stderr);
    let caps = tw.captures();
    assert_eq!(caps.len(), 4, "{:?}", summary(&caps));
    // The dependency is gone: only the recording can answer now.
    drop(server);

    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    make_snapshot(bin(), &caps, &tmp.path().join("rec"), &store, "s");
    let results = tmp.path().join("results.jsonl");
    let map_port = free_port();
    let map = format!("{map_port}={target}");
    let mut mock = start_mock(&store, &ca, &results, &["--map".as_ref(), map.as_ref()]);
    let via_connect = grpc_call(
        &target,
        &[
            "--tls-ca".as_ref(),
            ca.cert_pem.as_os_str(),
            "--proxy".as_ref(),
            mock.proxy_url().as_ref(),
        ],
    );
    assert_eq!(via_connect, direct, "{}", mock.stderr());
    assert_eq!(via_connect["unary"]["code"], "OK");
    assert_eq!(
        via_connect["unary"]["trailing"],
        serde_json::json!([["x-echo", "yes"]])
    );
    assert_eq!(via_connect["fail"]["code"], "NOT_FOUND");
    assert_eq!(via_connect["stream_fail"]["details"], "quota exceeded");
    // Plaintext h2c with prior knowledge on the mapped port.
    let via_map = grpc_call(&format!("127.0.0.1:{map_port}"), &[]);
    assert_eq!(via_map, direct, "{}", mock.stderr());

    let exited = mock.stop();
    assert!(exited.status.success(), "{}", exited.stderr);
    let acc = tapwire_mock::summarize(&tapwire_mock::read_results(&results).unwrap());
    assert_eq!((acc.hits, acc.misses, acc.passthroughs), (8, 0, 0));
}

/// With `--passthrough`, a CONNECT to a host with no recorded traffic is
/// still terminated with tapwire's CA, and the request inside goes on to
/// the real HTTPS upstream (verified with `--extra-ca`); the results file
/// says it passed through. Recorded hosts are still answered from the
/// recording.
#[test]
fn passthrough_over_connect_tls_reaches_the_real_https_upstream() {
    if !require_tools(&["curl", "nginx"]) {
        return;
    }
    let upstream_ca = TestCa::new();
    let nginx = Nginx::start_tls(
        "",
        &upstream_ca,
        "    location / { add_header X-Upstream nginx; return 200 \"live $request_uri\\n\"; }",
    );
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    make_snapshot(
        bin(),
        &snapshot_exchanges(),
        &tmp.path().join("rec"),
        &store,
        "s",
    );
    let ca = init_and_export_ca(bin());
    let results = tmp.path().join("results.jsonl");
    let mut mock = start_mock(
        &store,
        &ca,
        &results,
        &[
            "--passthrough".as_ref(),
            "--extra-ca".as_ref(),
            upstream_ca.ca_pem.as_os_str(),
        ],
    );
    let proxy = mock.proxy_url();
    let via = |url: &str| {
        curl([
            "--proxy".as_ref(),
            proxy.as_ref(),
            "--cacert".as_ref(),
            ca.cert_pem.as_os_str(),
            url.as_ref(),
        ])
        .ok()
    };
    let live = format!("https://localhost:{}/live?x=1", nginx.addr.port());
    let out = via(&live);
    assert_eq!(out.status, 200, "{}", mock.stderr());
    assert_eq!(out.body, b"live /live?x=1\n");
    assert_eq!(out.header("x-upstream"), Some("nginx"));
    let out = via("https://payments.internal/v1/charges/ch_1?expand=customer");
    assert_eq!(out.body, CHARGE.as_bytes());

    let exited = mock.stop();
    assert!(exited.status.success(), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("(1 hits, 0 misses, 1 passthroughs)"),
        "{}",
        exited.stderr
    );
    let records = tapwire_mock::read_results(&results).unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    let pass = &records[0];
    assert_eq!(pass.outcome, tapwire_mock::Outcome::Passthrough);
    assert_eq!((pass.method.as_str(), pass.path.as_str()), ("GET", "/live"));
    assert_eq!(pass.key, format!("shop:localhost:{}", nginx.addr.port()));
    assert!(
        pass.reason
            .as_deref()
            .is_some_and(|r| r.contains("no traffic to localhost")),
        "{pass:?}"
    );
    assert_eq!(records[1].outcome, tapwire_mock::Outcome::Hit);
}

#[test]
fn a_key_that_selects_nothing_is_warned_about_with_the_keys_there_are() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    make_snapshot(
        bin(),
        &snapshot_exchanges(),
        &tmp.path().join("rec"),
        &store,
        "s",
    );
    let ca_dir = tmp.path().join("ca");
    let mut mock = MockProcess::start(
        bin(),
        [
            "--snapshot".as_ref(),
            "s".as_ref(),
            "--store".as_ref(),
            store.as_os_str(),
            "--ca-dir".as_ref(),
            ca_dir.as_os_str(),
            "--key".as_ref(),
            OsStr::new("shop:nowhere.internal:443"),
        ],
    );
    let stderr = mock.stderr();
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(
        stderr.contains("shop:ledger.internal:8080, shop:payments.internal:443"),
        "the warning names the available keys: {stderr}"
    );
    mock.stop();

    // A malformed selector is refused before anything starts.
    let out = std::process::Command::new(bin())
        .args(["mock", "--snapshot", "s", "--key", "payments.internal:443"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not a traffic key; use service:host:port"),
        "{err}"
    );
}

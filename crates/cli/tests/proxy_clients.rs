//! Real clients (curl, Python `requests`, the JDK's `HttpClient`) through
//! `tapwire proxy` to a real upstream over loopback: each response must
//! equal the one the same client gets directly (status, headers other than
//! Date and hop-by-hop ones, body), and each capture must record the
//! exchange field by field.

use std::path::Path;
use std::time::Duration;

use tapwire_model::{Direction, Exchange, Protocol, TlsInfo};
use tapwire_test_support::captures::{assert_http, find_http, summary, ExpectHttp};
use tapwire_test_support::http::comparable_headers;
use tapwire_test_support::process::{clean_env, run_ok};
use tapwire_test_support::python::python;
use tapwire_test_support::tapwire::init_and_export_ca;
use tapwire_test_support::{
    curl, require_python_modules, require_tools, support_file, wait_for_captures, CurlOutput,
    PyServer, TapwireProcess, TestCa,
};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tapwire"))
}

const TIMEOUT: Duration = Duration::from_secs(60);

fn assert_same_response(direct: &CurlOutput, proxied: &CurlOutput) {
    assert_eq!(proxied.status, direct.status, "status");
    assert_eq!(
        comparable_headers(&proxied.headers),
        comparable_headers(&direct.headers),
        "headers (without Date and hop-by-hop fields)"
    );
    assert!(
        proxied.body == direct.body,
        "body through the proxy ({} bytes) differs from the direct one ({} bytes):\n{}\n---\n{}",
        proxied.body.len(),
        direct.body.len(),
        String::from_utf8_lossy(&proxied.body),
        String::from_utf8_lossy(&direct.body)
    );
}

/// A Python HTTPS upstream with a certificate from a private CA.
fn https_upstream() -> (TestCa, PyServer) {
    let ca = TestCa::new();
    let up = PyServer::start(
        "upstream.py",
        [
            "--tls-cert".as_ref(),
            ca.server_cert.as_os_str(),
            "--tls-key".as_ref(),
            ca.server_key.as_os_str(),
        ],
    );
    (ca, up)
}

fn single<'a>(all: &'a [Exchange], method: &str, path: &str) -> &'a Exchange {
    let found = find_http(all, method, path);
    assert_eq!(found.len(), 1, "{method} {path} in {:?}", summary(all));
    found[0]
}

#[test]
fn curl_to_the_inbound_port_matches_direct_and_is_captured() {
    if !require_tools(&["curl", "python3"]) {
        return;
    }
    let up = PyServer::start("upstream.py", [] as [&str; 0]);
    let mut tw = TapwireProcess::proxy(
        bin(),
        ["--app-port", &up.port.to_string(), "--service", "checkout"],
    );
    let target = "/api/orders?id=7&note=a%20b";
    let direct = curl([format!("http://{}{target}", up.addr())]).ok();
    let proxied = curl([format!("http://{}{target}", tw.inbound)]).ok();
    assert_same_response(&direct, &proxied);
    // HTTP/1.1 through HTTP/1.1: header names keep their case on the wire.
    let names = |c: &CurlOutput| {
        comparable_headers(&c.headers)
            .into_iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>()
    };
    let raw_names = |c: &CurlOutput| {
        let mut v: Vec<String> = c
            .headers
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| names(c).contains(&n.to_ascii_lowercase()))
            .collect();
        v.sort_by_key(|n| n.to_ascii_lowercase());
        v
    };
    assert_eq!(raw_names(&proxied), raw_names(&direct), "header name case");

    let body = r#"{"sku":"A-1","qty":2}"#;
    let post = |base: String| {
        curl([
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-H",
            "X-Request-Id: r-1",
            "--data-binary",
            body,
            &format!("{base}/api/orders?status=201"),
        ])
        .ok()
    };
    let direct_post = post(format!("http://{}", up.addr()));
    let proxied_post = post(format!("http://{}", tw.inbound));
    assert_eq!(proxied_post.status, 201);
    assert_same_response(&direct_post, &proxied_post);

    // Captures become visible while the proxy runs.
    let caps = wait_for_captures(&tw.out_dir, 2, Duration::from_secs(10));
    assert_eq!(caps.len(), 2, "{:?}", summary(&caps));
    let authority = tw.inbound.to_string();
    let expect = ExpectHttp {
        direction: Direction::Inbound,
        protocol: Protocol::Http1,
        service: "checkout",
        method: "GET",
        scheme: "http",
        authority: &authority,
        path: "/api/orders",
        query: Some("id=7&note=a%20b"),
        status: 200,
        upstream: ("127.0.0.1", up.port),
        server_addr: tw.inbound,
        request_body: b"",
        response_body: &proxied.body,
    };
    let get = caps
        .iter()
        .find(|e| e.response.as_ref().is_some_and(|r| r.status == 200));
    assert_http(get.expect("the GET capture"), &expect);
    let post_cap = caps
        .iter()
        .find(|e| e.response.as_ref().is_some_and(|r| r.status == 201))
        .expect("the POST capture");
    assert_http(
        post_cap,
        &ExpectHttp {
            method: "POST",
            query: Some("status=201"),
            status: 201,
            request_body: body.as_bytes(),
            response_body: &proxied_post.body,
            ..expect.clone()
        },
    );
    let req = post_cap.request.as_ref().expect("request");
    assert_eq!(req.headers.get("x-request-id"), Some("r-1"));
    assert_eq!(req.headers.get("content-type"), Some("application/json"));
    let resp = post_cap.response.as_ref().expect("response");
    assert_eq!(resp.headers.get_all("set-cookie").count(), 2);
    assert_eq!(resp.headers.get("content-type"), Some("application/json"));

    let exited = tw.stop();
    assert!(exited.status.success(), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("recorded 2 exchanges") && exited.stderr.contains("(0 dropped)"),
        "{}",
        exited.stderr
    );
}

#[test]
fn curl_absolute_form_through_the_outbound_port_matches_direct() {
    if !require_tools(&["curl", "python3"]) {
        return;
    }
    let up = PyServer::start("upstream.py", [] as [&str; 0]);
    let mut tw = TapwireProcess::proxy(bin(), ["--service", "checkout"]);
    let url = format!("http://{}/api/stock?sku=A-1", up.addr());
    let direct = curl([url.as_str()]).ok();
    let proxied = curl(["--proxy", &format!("http://{}", tw.outbound), &url]).ok();
    assert_same_response(&direct, &proxied);

    let exited = tw.stop();
    assert!(exited.status.success(), "{}", exited.stderr);
    let caps = tw.captures();
    assert_eq!(caps.len(), 1, "{:?}", summary(&caps));
    let authority = up.addr().to_string();
    assert_http(
        &caps[0],
        &ExpectHttp {
            direction: Direction::Outbound,
            protocol: Protocol::Http1,
            service: "checkout",
            method: "GET",
            scheme: "http",
            authority: &authority,
            path: "/api/stock",
            query: Some("sku=A-1"),
            status: 200,
            upstream: ("127.0.0.1", up.port),
            server_addr: tw.outbound,
            request_body: b"",
            response_body: &proxied.body,
        },
    );
    assert_eq!(caps[0].tls, None);
}

#[test]
fn curl_https_through_connect_is_intercepted_and_matches_direct() {
    if !require_tools(&["curl", "python3"]) {
        return;
    }
    let (ca, up) = https_upstream();
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
            "checkout".as_ref(),
        ],
    );
    let proxy = format!("http://{}", tw.outbound);
    let url = format!("https://localhost:{}/api/pay?amount=12", up.port);
    let body = "card=4111&cvc=000";
    let direct = curl([
        "--http1.1".as_ref(),
        "--cacert".as_ref(),
        ca.ca_pem.as_os_str(),
        url.as_ref(),
    ])
    .ok();
    let proxied = curl([
        "--http1.1".as_ref(),
        "--proxy".as_ref(),
        proxy.as_ref(),
        "--cacert".as_ref(),
        tca.cert_pem.as_os_str(),
        url.as_ref(),
    ])
    .ok();
    assert_same_response(&direct, &proxied);
    let post_args = |cacert: &Path, via: Option<&str>| {
        let mut a: Vec<std::ffi::OsString> = vec!["--cacert".into(), cacert.into()];
        if let Some(p) = via {
            a.extend(["--proxy".into(), p.into()]);
        }
        a.extend(["--data-binary".into(), body.into(), url.clone().into()]);
        a
    };
    // curl offers h2 by ALPN; the proxy speaks h2 to it and HTTP/1.1 upstream.
    let direct_post = curl(post_args(&ca.ca_pem, None)).ok();
    let proxied_post = curl(post_args(&tca.cert_pem, Some(&proxy))).ok();
    assert_same_response(&direct_post, &proxied_post);

    // Interception is real: the upstream's own CA does not verify what the
    // client now sees (curl exit 60: certificate problem).
    let refused = curl([
        "--proxy".as_ref(),
        proxy.as_ref(),
        "--cacert".as_ref(),
        ca.ca_pem.as_os_str(),
        url.as_ref(),
    ]);
    assert_eq!(refused.exit.code(), Some(60), "{}", refused.stderr);

    let exited = tw.stop();
    assert!(exited.status.success(), "{}", exited.stderr);
    let caps = tw.captures();
    assert_eq!(caps.len(), 2, "{:?}", summary(&caps));
    let authority = format!("localhost:{}", up.port);
    let expect = ExpectHttp {
        direction: Direction::Outbound,
        protocol: Protocol::Http1,
        service: "checkout",
        method: "GET",
        scheme: "https",
        authority: &authority,
        path: "/api/pay",
        query: Some("amount=12"),
        status: 200,
        upstream: ("localhost", up.port),
        server_addr: tw.outbound,
        request_body: b"",
        response_body: &proxied.body,
    };
    let get = single(&caps, "GET", "/api/pay");
    assert_http(get, &expect);
    assert_eq!(
        get.tls,
        Some(TlsInfo {
            sni: Some("localhost".into()),
            alpn: vec!["http/1.1".into()],
            intercepted: true
        })
    );
    let post = single(&caps, "POST", "/api/pay");
    assert_http(
        post,
        &ExpectHttp {
            protocol: Protocol::Http2,
            method: "POST",
            request_body: body.as_bytes(),
            response_body: &proxied_post.body,
            ..expect
        },
    );
    assert_eq!(
        post.tls,
        Some(TlsInfo {
            sni: Some("localhost".into()),
            alpn: vec!["h2".into()],
            intercepted: true
        })
    );
}

#[test]
fn curl_https_through_connect_without_tls_out_is_relayed_as_tcp_with_sni() {
    if !require_tools(&["curl", "python3"]) {
        return;
    }
    let (ca, up) = https_upstream();
    let mut tw = TapwireProcess::proxy(bin(), ["--service", "checkout"]);
    let url = format!("https://localhost:{}/api/relay?x=1", up.port);
    let direct = curl(["--cacert".as_ref(), ca.ca_pem.as_os_str(), url.as_ref()]).ok();
    // Not intercepted: the upstream's own CA is what the client must trust.
    let proxied = curl([
        "--proxy".as_ref(),
        format!("http://{}", tw.outbound).as_ref(),
        "--cacert".as_ref(),
        ca.ca_pem.as_os_str(),
        url.as_ref(),
    ])
    .ok();
    assert_same_response(&direct, &proxied);

    let exited = tw.stop();
    assert!(exited.status.success(), "{}", exited.stderr);
    let caps = tw.captures();
    assert_eq!(caps.len(), 1, "{:?}", summary(&caps));
    let ex = &caps[0];
    assert_eq!(ex.direction, Direction::Outbound);
    assert_eq!(ex.protocol, Protocol::Tcp);
    assert_eq!(ex.service.name, "checkout");
    assert_eq!(
        (ex.upstream.host.as_str(), ex.upstream.port),
        ("localhost", up.port)
    );
    assert_eq!(ex.server_addr, Some(tw.outbound));
    assert!(ex.client_addr.is_some_and(|a| a.ip().is_loopback()));
    let tls = ex.tls.as_ref().expect("tls facts of a relayed TLS flow");
    assert_eq!(tls.sni.as_deref(), Some("localhost"));
    assert!(!tls.intercepted);
    assert!(tls.alpn.contains(&"http/1.1".to_owned()), "{tls:?}");
    assert!(ex.request.is_none() && ex.response.is_none());
    let tcp = ex.tcp.as_ref().expect("tcp flow");
    // A TLS session: both sides sent records, starting with a handshake (0x16).
    assert_eq!(tcp.client_bytes.data.first(), Some(&0x16));
    assert_eq!(tcp.server_bytes.data.first(), Some(&0x16));
    assert!(
        tcp.server_bytes.size > proxied.body.len() as u64,
        "server sent {} bytes for a {}-byte body",
        tcp.server_bytes.size,
        proxied.body.len()
    );
}

#[test]
fn python_requests_get_and_post_json_through_the_https_proxy() {
    if !require_tools(&["python3"]) || !require_python_modules(&["requests"]) {
        return;
    }
    let (ca, up) = https_upstream();
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
            "payments".as_ref(),
        ],
    );
    // Python's default json.dumps form, so requests sends these exact bytes.
    let payload = r#"{"amount": 1250, "currency": "EUR", "items": ["a", "b"]}"#;
    let get_url = format!("https://localhost:{}/api/balance?acct=9", up.port);
    let post_url = format!("https://localhost:{}/api/charge", up.port);
    let run = |proxied: bool, args: &[&str]| -> serde_json::Value {
        let mut cmd = python("requests_client.py");
        cmd.args(args);
        if proxied {
            cmd.env("HTTPS_PROXY", format!("http://{}", tw.outbound))
                .env("REQUESTS_CA_BUNDLE", &tca.cert_pem);
        } else {
            cmd.env("REQUESTS_CA_BUNDLE", &ca.ca_pem);
        }
        let out = run_ok(&mut cmd, TIMEOUT);
        serde_json::from_slice(&out.stdout).expect("requests_client.py prints JSON")
    };
    let direct_get = run(false, &["GET", &get_url]);
    let proxied_get = run(true, &["GET", &get_url]);
    assert_eq!(proxied_get, direct_get);
    let direct_post = run(false, &["POST", &post_url, payload]);
    let proxied_post = run(true, &["POST", &post_url, payload]);
    assert_eq!(proxied_post, direct_post);
    assert_eq!(proxied_post["status"], 200);

    let exited = tw.stop();
    assert!(exited.status.success(), "{}", exited.stderr);
    let caps = tw.captures();
    assert_eq!(caps.len(), 2, "{:?}", summary(&caps));
    let authority = format!("localhost:{}", up.port);
    let text = |v: &serde_json::Value| v["body"].as_str().unwrap_or_default().as_bytes().to_vec();
    let (get_body, post_body) = (text(&proxied_get), text(&proxied_post));
    let expect = ExpectHttp {
        direction: Direction::Outbound,
        protocol: Protocol::Http1,
        service: "payments",
        method: "GET",
        scheme: "https",
        authority: &authority,
        path: "/api/balance",
        query: Some("acct=9"),
        status: 200,
        upstream: ("localhost", up.port),
        server_addr: tw.outbound,
        request_body: b"",
        response_body: &get_body,
    };
    assert_http(single(&caps, "GET", "/api/balance"), &expect);
    let post = single(&caps, "POST", "/api/charge");
    assert_http(
        post,
        &ExpectHttp {
            method: "POST",
            path: "/api/charge",
            query: None,
            request_body: payload.as_bytes(),
            response_body: &post_body,
            ..expect
        },
    );
    assert!(post.tls.as_ref().is_some_and(|t| t.intercepted));
    assert_eq!(
        post.request
            .as_ref()
            .and_then(|r| r.headers.get("content-type")),
        Some("application/json")
    );
}

#[test]
fn jdk_httpclient_through_the_https_proxy_with_the_exported_truststore() {
    if !require_tools(&["java", "curl", "python3"]) {
        return;
    }
    let (ca, up) = https_upstream();
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
            "jvm-app".as_ref(),
        ],
    );
    let url = format!("https://localhost:{}/api/jdk?lang=java", up.port);
    let direct = curl(["--cacert".as_ref(), ca.ca_pem.as_os_str(), url.as_ref()]).ok();

    let mut cmd = std::process::Command::new("java");
    clean_env(&mut cmd)
        .arg("-Dhttps.proxyHost=127.0.0.1")
        .arg(format!("-Dhttps.proxyPort={}", tw.outbound.port()))
        // The JDK's default http.nonProxyHosts (localhost|127.*|[::1]|...)
        // also applies to https and would bypass the proxy for this URL.
        .arg("-Dhttp.nonProxyHosts=")
        .arg(format!(
            "-Djavax.net.ssl.trustStore={}",
            tca.pkcs12.display()
        ))
        .arg("-Djavax.net.ssl.trustStorePassword=changeit")
        .arg("-Djavax.net.ssl.trustStoreType=PKCS12")
        .arg(support_file("java/HttpsGet.java"))
        .arg(&url);
    let out = run_ok(&mut cmd, Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, rest) = stdout.split_once('\n').expect("status line");
    let (version, body) = rest.split_once('\n').expect("version line");
    assert_eq!(status, "status=200");
    assert_eq!(
        body.as_bytes(),
        direct.body.as_slice(),
        "body through the proxy"
    );

    let exited = tw.stop();
    assert!(exited.status.success(), "{}", exited.stderr);
    let caps = tw.captures();
    assert_eq!(
        caps.len(),
        1,
        "the JVM bypassed the proxy? {:?}",
        summary(&caps)
    );
    // The JDK offers h2 and http/1.1; whichever it got is what was recorded.
    let (protocol, alpn) = match version {
        "version=HTTP_2" => (Protocol::Http2, "h2"),
        _ => (Protocol::Http1, "http/1.1"),
    };
    let authority = format!("localhost:{}", up.port);
    let ex = single(&caps, "GET", "/api/jdk");
    assert_http(
        ex,
        &ExpectHttp {
            direction: Direction::Outbound,
            protocol,
            service: "jvm-app",
            method: "GET",
            scheme: "https",
            authority: &authority,
            path: "/api/jdk",
            query: Some("lang=java"),
            status: 200,
            upstream: ("localhost", up.port),
            server_addr: tw.outbound,
            request_body: b"",
            response_body: &direct.body,
        },
    );
    let tls = ex.tls.as_ref().expect("tls");
    assert!(tls.intercepted);
    assert_eq!(tls.alpn, vec![alpn.to_owned()]);
    assert_eq!(
        ex.request.as_ref().and_then(|r| r.headers.get("x-client")),
        Some("jdk-httpclient")
    );
}

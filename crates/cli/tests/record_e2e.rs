//! `tapwire record -- python3 app.py` end to end: the app is started with
//! the proxy and CA variables, its inbound requests and its HTTPS calls to
//! a dependency are both recorded, and record exits with the app's code.

use std::path::Path;
use std::time::{Duration, Instant};

use tapwire_model::{Direction, Protocol};
use tapwire_test_support::captures::summary;
use tapwire_test_support::http::HttpConn;
use tapwire_test_support::process::run_ok;
use tapwire_test_support::python::script;
use tapwire_test_support::{
    free_port, require_python_modules, require_tools, PyServer, TapwireProcess, TestCa,
};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tapwire"))
}

const N: usize = 3;
const APP_EXIT_CODE: i32 = 7;

#[test]
fn record_captures_the_app_and_its_intercepted_https_dependency() {
    if !require_tools(&["python3"]) || !require_python_modules(&["requests"]) {
        return;
    }
    let ca = TestCa::new();
    let dep = PyServer::start(
        "upstream.py",
        [
            "--tls-cert".as_ref(),
            ca.server_cert.as_os_str(),
            "--tls-key".as_ref(),
            ca.server_key.as_os_str(),
        ],
    );
    let scratch = tempfile::tempdir().unwrap();
    let ca_dir = scratch.path().join("ca");
    let ready = scratch.path().join("app-ready");
    let app_port = free_port();
    let dep_url = format!("https://localhost:{}", dep.port);
    let mut tw = TapwireProcess::record(
        bin(),
        [
            "--app-port".as_ref(),
            app_port.to_string().as_ref(),
            "--ca-dir".as_ref(),
            ca_dir.as_os_str(),
            "--extra-ca".as_ref(),
            ca.ca_pem.as_os_str(),
            "--service".as_ref(),
            "shop".as_ref(),
        ],
        [
            "python3".as_ref(),
            "-u".as_ref(),
            script("app.py").as_os_str(),
            "--port".as_ref(),
            app_port.to_string().as_ref(),
            "--dep".as_ref(),
            dep_url.as_ref(),
            "--requests".as_ref(),
            N.to_string().as_ref(),
            "--exit-code".as_ref(),
            APP_EXIT_CODE.to_string().as_ref(),
            "--ready-file".as_ref(),
            ready.as_os_str(),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready.exists() {
        assert!(
            Instant::now() < deadline,
            "app.py did not start; tapwire stderr:\n{}",
            tw.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut bodies = Vec::new();
    for i in 0..N {
        let mut c = HttpConn::connect(tw.inbound).unwrap();
        let r = c
            .request(
                "GET",
                &format!("/api/item?i={i}"),
                &[("Connection", "close")],
                b"",
            )
            .unwrap();
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("request {i}: {e}: {}", r.text()));
        assert_eq!(v["path"], "/api/item");
        assert_eq!(v["query"], format!("i={i}"));
        bodies.push(r.body);
    }

    let exited = tw.wait_exit(Duration::from_secs(30));
    assert_eq!(
        exited.status.code(),
        Some(APP_EXIT_CODE),
        "record should exit with the app's code; stderr:\n{}",
        exited.stderr
    );

    let mut inspect = std::process::Command::new(bin());
    inspect.arg("inspect").arg(&tw.out_dir).arg("--json");
    let out = run_ok(&mut inspect, Duration::from_secs(30));
    let all: Vec<tapwire_model::Exchange> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let inbound: Vec<_> = all
        .iter()
        .filter(|e| e.direction == Direction::Inbound)
        .collect();
    let outbound: Vec<_> = all
        .iter()
        .filter(|e| e.direction == Direction::Outbound)
        .collect();
    assert_eq!(
        (inbound.len(), outbound.len()),
        (N, N),
        "{:?}",
        summary(&all)
    );
    for (i, ex) in inbound.iter().enumerate() {
        assert_eq!(ex.service.name, "shop");
        assert_eq!(ex.protocol, Protocol::Http1);
        assert_eq!(
            (ex.upstream.host.as_str(), ex.upstream.port),
            ("127.0.0.1", app_port)
        );
        let req = ex.request.as_ref().unwrap();
        assert_eq!(
            (req.path.as_str(), req.query.as_deref()),
            ("/api/item", Some(format!("i={i}").as_str()))
        );
        let resp = ex.response.as_ref().unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body.data.as_ref(), bodies[i].as_slice());
    }
    for (i, ex) in outbound.iter().enumerate() {
        assert_eq!(ex.service.name, "shop");
        assert_eq!(
            (ex.upstream.host.as_str(), ex.upstream.port),
            ("localhost", dep.port)
        );
        let tls = ex.tls.as_ref().expect("outbound call went through TLS");
        assert!(tls.intercepted, "{ex:?}");
        assert_eq!(tls.sni.as_deref(), Some("localhost"));
        let req = ex
            .request
            .as_ref()
            .expect("intercepted, so the request is visible");
        assert_eq!(req.scheme, "https");
        assert_eq!(req.path_and_query(), format!("/api/item?i={i}"));
        assert_eq!(ex.response.as_ref().map(|r| r.status), Some(200));
        // The app passed the dependency's body through unchanged.
        assert_eq!(
            ex.response.as_ref().unwrap().body.data.as_ref(),
            bodies[i].as_slice()
        );
    }
    assert!(
        exited
            .stderr
            .contains(&format!("recorded {} exchanges", 2 * N)),
        "{}",
        exited.stderr
    );
}

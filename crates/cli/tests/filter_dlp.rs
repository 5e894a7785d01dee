//! `tapwire filter test` on a recording, and `--dlp` redacting captures
//! before they are written.

use std::path::Path;
use std::time::Duration;

use tapwire_model::segment::SegmentWriter;
use tapwire_model::{Direction, Exchange, Headers, Protocol, Request, Response, Service, Upstream};
use tapwire_test_support::nginx::Nginx;
use tapwire_test_support::{require_tools, run_with_timeout, HttpConn, TapwireProcess};

const BIN: &str = env!("CARGO_BIN_EXE_tapwire");

fn exchange(path: &str, ua: &str, status: u16) -> Exchange {
    let mut e = Exchange::new(
        Direction::Inbound,
        Protocol::Http1,
        Service {
            name: "orders".into(),
            ..Service::default()
        },
        Upstream {
            host: "127.0.0.1".into(),
            port: 8080,
        },
    );
    let mut headers = Headers::default();
    headers.push("User-Agent", ua);
    e.request = Some(Request {
        method: "GET".into(),
        path: path.into(),
        headers,
        ..Request::default()
    });
    e.response = Some(Response {
        status,
        ..Response::default()
    });
    e
}

fn filter_test(args: &[&str]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("filter").arg("test").args(args);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(30));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn filter_test_shows_what_rules_keep_and_drop() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    std::fs::create_dir(&rec).unwrap();
    let mut w = SegmentWriter::create(rec.join("a.jsonl.zst")).unwrap();
    for e in [
        exchange("/", "kube-probe/1.29", 200),
        exchange("/healthz", "curl/8", 200),
        exchange("/metrics", "Prometheus/2.48.0", 200),
        exchange("/orders/1", "curl/8", 200),
        exchange("/orders/2", "curl/8", 500),
    ] {
        w.append(&e).unwrap();
    }
    w.finish().unwrap();
    let rec_s = rec.to_str().unwrap();

    let (ok, out, err) = filter_test(&["standard", rec_s, "--show", "dropped"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("5 exchanges: 2 kept, 3 dropped by standard"),
        "{out}"
    );
    assert!(
        out.contains("kube-probe") || out.contains("probes"),
        "{out}"
    );
    assert!(
        out.contains("/healthz") && !out.contains("/orders/1"),
        "{out}"
    );

    let (ok, out, err) = filter_test(&["none", rec_s]);
    assert!(ok, "{err}");
    assert!(
        out.contains("5 exchanges: 5 kept, 0 dropped by none"),
        "{out}"
    );

    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "version: 1\ndefault: drop\nrules:\n  - name: errors\n    action: keep\n    match: { status: \"5*\" }\n",
    )
    .unwrap();
    let (ok, out, err) = filter_test(&[rules.to_str().unwrap(), rec_s, "--show", "kept"]);
    assert!(ok, "{err}");
    assert!(out.contains("5 exchanges: 1 kept, 4 dropped"), "{out}");
    assert!(out.contains("/orders/2") && out.contains("errors"), "{out}");

    std::fs::write(&rules, "version: 1\nrules:\n  - action: sample\n").unwrap();
    let (ok, _, err) = filter_test(&[rules.to_str().unwrap(), rec_s]);
    assert!(!ok);
    assert!(err.contains("rule 1") && err.contains("every"), "{err}");
}

#[test]
fn dlp_redacts_captures_before_they_are_written() {
    if !require_tools(&["nginx"]) {
        return;
    }
    let app = Nginx::start("", "location / { return 200 'ok\\n'; }");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dlp.key");
    std::fs::write(&key, "00112233445566778899aabbccddeeff\n").unwrap();
    let mut proxy = TapwireProcess::proxy(
        Path::new(BIN),
        [
            "--mode",
            "reverse",
            "--app-port",
            &app.addr.port().to_string(),
            "--dlp",
            "--dlp-key-file",
            key.to_str().unwrap(),
        ],
    );
    let mut c = HttpConn::connect(proxy.inbound).unwrap();
    let r = c
        .request(
            "GET",
            "/orders?email=jane.doe@example.com&card=4111111111111111",
            &[("Authorization", "Bearer abc.def.ghi")],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let exited = proxy.stop();
    assert!(exited.status.success(), "{}", exited.stderr);
    let captures = proxy.captures();
    assert_eq!(captures.len(), 1);
    let raw = serde_json::to_string(&captures[0]).unwrap();
    for secret in ["jane.doe@example.com", "4111111111111111", "abc.def.ghi"] {
        assert!(!raw.contains(secret), "{secret} was captured: {raw}");
    }
    assert!(raw.contains("REDACTED-EMAIL-"), "{raw}");
}

//! `tapwire export --har` then `tapwire import --har` gives back the same
//! HTTP exchanges; TCP flows are left out and reported.

use std::process::Command;

use tapwire_model::segment::{self, SegmentWriter};
use tapwire_model::{
    Body, Direction, Exchange, Headers, Protocol, Request, Response, Service, TcpFlow, Upstream,
};

fn tapwire() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tapwire"))
}

fn service() -> Service {
    Service {
        name: "orders".into(),
        ..Service::default()
    }
}

fn http_exchange() -> Exchange {
    let mut ex = Exchange::new(
        Direction::Outbound,
        Protocol::Http1,
        service(),
        Upstream {
            host: "payments.internal".into(),
            port: 443,
        },
    );
    ex.duration_us = 1234;
    ex.request = Some(Request {
        method: "POST".into(),
        scheme: "https".into(),
        authority: "payments.internal".into(),
        path: "/charge".into(),
        query: Some("retry=1&x=a%20b".into()),
        version: "HTTP/1.1".into(),
        headers: Headers(vec![
            ("content-type".into(), "application/json".into()),
            ("accept".into(), "a".into()),
            ("accept".into(), "b".into()),
        ]),
        body: Body::complete(r#"{"amount":1250}"#),
        trailers: Headers::new(),
    });
    ex.response = Some(Response {
        status: 201,
        version: "HTTP/1.1".into(),
        headers: Headers(vec![(
            "content-type".into(),
            "application/octet-stream".into(),
        )]),
        body: Body {
            data: vec![0u8, 0xff, 0x10].into(),
            size: 10,
            truncated: true,
        },
        trailers: Headers::new(),
    });
    ex.tags.insert("note".into(), "kept".into());
    ex
}

#[test]
fn har_export_then_import_round_trips_http_exchanges() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    let http = http_exchange();
    let mut tcp = Exchange::new(
        Direction::Outbound,
        Protocol::Tcp,
        service(),
        Upstream {
            host: "db".into(),
            port: 5432,
        },
    );
    tcp.tcp = Some(TcpFlow {
        client_bytes: Body::complete("ping"),
        server_bytes: Body::complete("pong"),
    });
    let mut w = SegmentWriter::create(rec.join("a.jsonl.zst")).unwrap();
    w.append(&http).unwrap();
    w.append(&tcp).unwrap();
    w.finish().unwrap();

    let har = dir.path().join("out.har");
    let out = tapwire()
        .args(["export", "--har"])
        .arg(&rec)
        .arg("-o")
        .arg(&har)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("exported 1 HTTP exchanges") && stderr.contains("1 TCP flows"),
        "{stderr}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&har).unwrap()).unwrap();
    assert_eq!(doc["log"]["version"], "1.2");
    assert_eq!(
        doc["log"]["entries"][0]["request"]["url"],
        "https://payments.internal/charge?retry=1&x=a%20b"
    );

    let back = dir.path().join("back");
    let out = tapwire()
        .args(["import", "--har"])
        .arg(&har)
        .arg("--out")
        .arg(&back)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(segment::read_dir(&back).unwrap(), vec![http]);
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.har");
    std::fs::write(
        &bad,
        r#"{"log":{"version":"1.2","entries":[{"request":{}}]}}"#,
    )
    .unwrap();
    let out = tapwire()
        .args(["import", "--har"])
        .arg(&bad)
        .arg("--out")
        .arg(dir.path().join("o"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not a usable HAR file") && stderr.contains("entries[0]"),
        "{stderr}"
    );

    let out = tapwire()
        .arg("inspect")
        .arg(dir.path().join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no recording at"));
}

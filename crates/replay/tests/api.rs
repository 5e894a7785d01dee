//! The library API as the operator will use it: `run` against an in-process
//! server speaking HTTP/1.1 and h2c, then `Report::write` and read back.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tapwire_replay::{run, Mode, ReplayConfig, Report, Stage};
use tapwire_store::{build, Selection, Snapshot};
use tapwire_test_support::replay::inbound;

/// Serves `{"path": …, "version": …}` on both protocols; the version field
/// differs from the recording so tests can see which protocol was used.
async fn server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((io, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let body = serde_json::json!({
                        "path": req.uri().path(),
                        "version": format!("{:?}", req.version()),
                    });
                    Ok::<_, Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(body.to_string())))
                            .expect("response"),
                    )
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(io), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

fn snapshot() -> Snapshot {
    let exchanges = vec![
        inbound(
            1,
            "GET",
            "/a/1",
            200,
            "application/json",
            r#"{"path": "/a/1", "version": "HTTP/1.1"}"#,
        ),
        inbound(
            1,
            "GET",
            "/b",
            200,
            "application/json",
            r#"{"path": "/b", "version": "HTTP/1.1"}"#,
        ),
    ];
    build(exchanges, Selection::default(), Some("t".into()), "test").expect("snapshot")
}

#[tokio::test(flavor = "multi_thread")]
async fn http1_replay_passes_and_the_report_round_trips() {
    let target = server().await;
    let mut cfg = ReplayConfig::new(target);
    cfg.mode = Mode::Vus(2);
    cfg.iterations = Some(5);
    let report = run(&snapshot(), cfg).await.expect("run");
    assert!(report.passed, "{report:#?}");
    assert_eq!(report.summary.requests, 20);
    assert_eq!(report.endpoints[0].endpoint, "GET /a/{id}");
    let dir = tempfile::tempdir().expect("tmp");
    report.write(dir.path()).expect("write");
    assert_eq!(Report::read(dir.path()).expect("read"), report);
}

#[tokio::test(flavor = "multi_thread")]
async fn h2c_is_used_when_asked() {
    let target = server().await;
    let mut cfg = ReplayConfig::new(target);
    cfg.http2 = true;
    let report = run(&snapshot(), cfg).await.expect("run");
    assert!(!report.passed);
    let f = serde_json::to_string(&report.failures).expect("json");
    assert!(f.contains("HTTP/2.0"), "{f}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ramped_rate_and_recorded_pace_send_the_planned_requests() {
    let target = server().await;
    let mut cfg = ReplayConfig::new(target.clone());
    cfg.mode = Mode::Rps(0.0);
    cfg.stages = vec![
        Stage {
            duration: Duration::from_millis(500),
            target: 100.0,
        },
        Stage {
            duration: Duration::from_millis(500),
            target: 100.0,
        },
    ];
    let report = run(&snapshot(), cfg).await.expect("run");
    // 25 during the ramp, 50 at full rate.
    let n = report.summary.requests;
    assert!((70..=80).contains(&n), "{n}");
    assert_eq!(report.summary.errors, 0);

    let mut cfg = ReplayConfig::new(target);
    cfg.mode = Mode::Speed(10.0);
    cfg.iterations = Some(3);
    let report = run(&snapshot(), cfg).await.expect("run");
    assert_eq!(report.summary.requests, 6);
}

#[tokio::test]
async fn unusable_configs_are_refused() {
    let mut cfg = ReplayConfig::new("ftp://127.0.0.1:1");
    let e = run(&snapshot(), cfg.clone()).await.expect_err("ftp target");
    assert!(e.to_string().contains("http:// or https://"), "{e}");
    cfg.target = "https://".into();
    let e = run(&snapshot(), cfg.clone()).await.expect_err("no host");
    assert!(e.to_string().contains("no host"), "{e}");
    cfg.target = "http://127.0.0.1:1".into();
    cfg.mode = Mode::Rps(-1.0);
    let e = run(&snapshot(), cfg.clone())
        .await
        .expect_err("negative rate");
    assert!(e.to_string().contains("--rps"), "{e}");
    // Stages whose total length a clock cannot hold: a config error, not a panic.
    cfg.mode = Mode::Vus(1);
    let forever = Stage {
        duration: Duration::MAX,
        target: 1.0,
    };
    cfg.stages = vec![forever.clone(), forever];
    let e = run(&snapshot(), cfg.clone())
        .await
        .expect_err("overflowing stages");
    assert!(
        e.to_string().contains("longer than tapwire can count"),
        "{e}"
    );
    // An unreadable --cacert for an https target.
    cfg.stages.clear();
    cfg.target = "https://127.0.0.1:1".into();
    cfg.cacert = Some("/nonexistent/ca.pem".into());
    let e = run(&snapshot(), cfg).await.expect_err("missing cacert");
    assert!(matches!(e, tapwire_replay::ReplayError::Tls { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_select_the_inbound_requests_replayed() {
    let target = server().await;
    let mut other = inbound(
        2,
        "GET",
        "/c",
        200,
        "application/json",
        r#"{"path": "/c", "version": "HTTP/1.1"}"#,
    );
    other.service.name = "other".into();
    let mut exchanges = snapshot().exchanges;
    exchanges.push(other);
    let snap = build(exchanges, Selection::default(), Some("t".into()), "test").expect("snapshot");

    let mut cfg = ReplayConfig::new(target);
    cfg.keys = vec!["other:127.0.0.1:2".into()];
    let report = run(&snap, cfg.clone()).await.expect("run");
    assert_eq!(report.summary.requests, 1, "{report:#?}");
    assert_eq!(report.endpoints[0].endpoint, "GET /c");
    assert_eq!(report.keys, ["other:127.0.0.1:2"]);

    cfg.keys = vec!["*".into()];
    assert_eq!(
        run(&snap, cfg.clone()).await.expect("run").summary.requests,
        3
    );

    cfg.keys = vec!["svc:127.0.0.1:9".into()];
    let e = run(&snap, cfg).await.expect_err("nothing selected");
    assert!(
        matches!(e, tapwire_replay::ReplayError::NoneSelected { .. }),
        "{e}"
    );
    assert!(
        e.to_string()
            .ends_with("its inbound keys are other:127.0.0.1:2, svc:127.0.0.1:1"),
        "{e}"
    );
}

/// An HTTP/1.1 server that counts the connections it accepts and, with
/// `close`, answers `Connection: close` and hangs up after each answer.
async fn counting_server(close: bool) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((io, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let svc = service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| async move {
                        let body =
                            serde_json::json!({"path": req.uri().path(), "version": "HTTP/1.1"});
                        let mut resp =
                            hyper::Response::builder().header("content-type", "application/json");
                        if close {
                            resp = resp.header("connection", "close");
                        }
                        Ok::<_, Infallible>(
                            resp.body(Full::new(Bytes::from(body.to_string())))
                                .expect("response"),
                        )
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(io), svc)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), accepted)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_virtual_user_keeps_one_connection() {
    let (target, accepted) = counting_server(false).await;
    let mut cfg = ReplayConfig::new(target);
    cfg.mode = Mode::Vus(3);
    cfg.iterations = Some(10);
    let report = run(&snapshot(), cfg).await.expect("run");
    assert!(report.passed, "{report:#?}");
    assert_eq!(report.summary.requests, 60);
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::Relaxed),
        3,
        "--vus 3 means three keep-alive connections"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_that_closes_every_connection_gets_a_new_one_per_request() {
    let (target, accepted) = counting_server(true).await;
    let mut cfg = ReplayConfig::new(target);
    cfg.mode = Mode::Vus(2);
    cfg.iterations = Some(5);
    let report = run(&snapshot(), cfg).await.expect("run");
    assert!(report.passed, "{report:#?}");
    assert_eq!(report.summary.errors, 0);
    assert_eq!(report.summary.requests, 20);
    assert_eq!(accepted.load(std::sync::atomic::Ordering::Relaxed), 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_target_is_an_error_per_request_not_a_hang() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let mut cfg = ReplayConfig::new(format!("http://{addr}"));
    cfg.mode = Mode::Vus(2);
    cfg.iterations = Some(2);
    cfg.timeout = Duration::from_secs(5);
    let report = run(&snapshot(), cfg).await.expect("run");
    assert_eq!(report.summary.requests, 8);
    assert_eq!(report.summary.errors, 8);
    let f = serde_json::to_string(&report.failures).expect("json");
    assert!(f.contains("cannot connect"), "{f}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_that_silently_closes_idle_connections_costs_no_request() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut io, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 2048];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match io.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&buf);
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let body = serde_json::json!({"path": path, "version": "HTTP/1.1"}).to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = io.write_all(answer.as_bytes()).await;
                // No `Connection: close`: the connection just goes away.
            });
        }
    });
    let mut cfg = ReplayConfig::new(format!("http://{addr}"));
    cfg.mode = Mode::Vus(2);
    cfg.iterations = Some(5);
    cfg.timeout = Duration::from_secs(5);
    let started = std::time::Instant::now();
    let report = run(&snapshot(), cfg).await.expect("run");
    assert!(report.passed, "{report:#?}");
    assert_eq!(report.summary.errors, 0);
    assert_eq!(report.summary.requests, 20);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no request waited for a timeout"
    );
}

//! The mock server in-process over loopback: scoped sequences with two
//! concurrent clients, recorded timing, and passthrough of misses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prometheus_client::registry::Registry;
use tapwire_mock::{Mapping, MockConfig, MockServer, Outcome, Responder, ResponderConfig, Timing};
use tapwire_model::{
    Body, Direction, Exchange, Headers, Protocol, Request, Response, Service, Upstream,
};

fn exchange(path: &str, auth: &str, body: &str, duration_ms: u64) -> Exchange {
    let mut ex = Exchange::new(
        Direction::Outbound,
        Protocol::Http1,
        Service {
            name: "shop".into(),
            ..Service::default()
        },
        Upstream {
            host: "127.0.0.1".into(),
            port: 1,
        },
    );
    let mut headers = Headers::new();
    if !auth.is_empty() {
        headers.push("authorization", auth);
    }
    ex.request = Some(Request {
        method: "GET".into(),
        scheme: "http".into(),
        authority: "127.0.0.1:1".into(),
        path: path.into(),
        version: "HTTP/1.1".into(),
        headers,
        ..Request::default()
    });
    ex.response = Some(Response {
        status: 200,
        version: "HTTP/1.1".into(),
        body: Body::complete(body.to_owned()),
        ..Response::default()
    });
    ex.duration_us = duration_ms * 1000;
    ex
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn get(c: &HttpClient, addr: SocketAddr, path: &str, auth: &str) -> (u16, String) {
    let mut req = http::Request::get(format!("http://{addr}{path}"));
    if !auth.is_empty() {
        req = req.header("authorization", auth);
    }
    let resp = c
        .request(req.body(Full::new(Bytes::new())).expect("request"))
        .await
        .expect("mock answers");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn config(upstream_port: u16) -> MockConfig {
    MockConfig {
        forward_port: None,
        maps: vec![Mapping {
            listen_port: 0,
            host: "127.0.0.1".into(),
            port: upstream_port,
            scheme: None,
        }],
        ..MockConfig::default()
    }
}

#[tokio::test]
async fn two_concurrent_scoped_clients_each_get_their_own_sequence() {
    // Recorded: clients a and b polled the same URL, interleaved.
    let ex = [
        exchange("/job", "Bearer a", "a: queued", 0),
        exchange("/job", "Bearer b", "b: queued", 0),
        exchange("/job", "Bearer a", "a: running", 0),
        exchange("/job", "Bearer b", "b: running", 0),
        exchange("/job", "Bearer b", "b: done", 0),
        exchange("/job", "Bearer a", "a: done", 0),
    ];
    let responder = Arc::new(Responder::new(&ex, ResponderConfig::default()));
    let mock = MockServer::start(config(1), responder, Registry::default())
        .await
        .unwrap();
    let addr = mock.map_addrs[0];
    let run = |auth: &'static str| {
        tokio::spawn(async move {
            // One connection per client, so the server interleaves them.
            let c = client();
            let mut got = Vec::new();
            for _ in 0..4 {
                got.push(get(&c, addr, "/job", auth).await.1);
                tokio::task::yield_now().await;
            }
            got
        })
    };
    let (a, b) = (run("Bearer a"), run("Bearer b"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(a, ["a: queued", "a: running", "a: done", "a: queued"]);
    assert_eq!(b, ["b: queued", "b: running", "b: done", "b: queued"]);
    let acc = mock.shutdown(Duration::from_secs(1)).await;
    assert_eq!((acc.hits, acc.misses), (8, 0));
}

#[tokio::test]
async fn recorded_timing_delays_without_blocking_other_requests() {
    let ex = [
        exchange("/slow", "", "slow", 400),
        exchange("/fast", "", "fast", 0),
    ];
    let responder = Arc::new(Responder::new(&ex, ResponderConfig::default()));
    let cfg = MockConfig {
        timing: Timing::Recorded,
        ..config(1)
    };
    let mock = MockServer::start(cfg, responder, Registry::default())
        .await
        .unwrap();
    let addr = mock.map_addrs[0];
    let started = Instant::now();
    let slow = tokio::spawn(async move { get(&client(), addr, "/slow", "").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(get(&client(), addr, "/fast", "").await.1, "fast");
    assert!(
        started.elapsed() < Duration::from_millis(350),
        "fast waited for slow"
    );
    assert_eq!(slow.await.unwrap().1, "slow");
    assert!(started.elapsed() >= Duration::from_millis(400));
    mock.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn passthrough_forwards_misses_to_the_real_host() {
    // The "real" upstream: answers every request with its path.
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_port = up.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = up.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let body = format!("live {}", req.uri().path());
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from(body),
                        )))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    let mut recorded = exchange("/known", "", "recorded", 0);
    recorded.upstream.port = up_port;
    let responder = Arc::new(Responder::new([&recorded], ResponderConfig::default()));
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.jsonl");
    let cfg = MockConfig {
        passthrough: true,
        results: Some(results.clone()),
        ..config(up_port)
    };
    let mock = MockServer::start(cfg, responder, Registry::default())
        .await
        .unwrap();
    let addr = mock.map_addrs[0];
    let c = client();
    assert_eq!(
        get(&c, addr, "/known", "").await,
        (200, "recorded".to_owned())
    );
    assert_eq!(
        get(&c, addr, "/other", "").await,
        (200, "live /other".to_owned())
    );
    let acc = mock.shutdown(Duration::from_secs(1)).await;
    assert_eq!((acc.hits, acc.misses, acc.passthroughs), (1, 0, 1));
    let records = tapwire_mock::read_results(&results).unwrap();
    let outcomes: Vec<Outcome> = records.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [Outcome::Hit, Outcome::Passthrough]);
    assert!(
        records[1]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("path differs"),
        "{:?}",
        records[1]
    );
}

/// A recorded gRPC-style answer: a framed message and `grpc-status` trailers.
fn with_trailers(path: &str, grpc_status: &str) -> Exchange {
    let mut ex = exchange(path, "", "\0\0\0\0\x05hello", 0);
    if let Some(req) = ex.request.as_mut() {
        req.method = "POST".into();
    }
    if let Some(resp) = ex.response.as_mut() {
        resp.headers.push("content-type", "application/grpc");
        resp.trailers.push("grpc-status", grpc_status);
        resp.trailers.push("grpc-message", "quota exceeded");
        resp.trailers.push("x-echo", "yes");
        // Not a legal trailer: must never be sent as one.
        resp.trailers.push("content-length", "7");
    }
    ex
}

#[tokio::test]
async fn recorded_trailers_come_back_over_http2() {
    let ex = [with_trailers("/ok", "0"), with_trailers("/fail", "8")];
    let responder = Arc::new(Responder::new(&ex, ResponderConfig::default()));
    let mock = MockServer::start(config(1), responder, Registry::default())
        .await
        .unwrap();
    let addr = mock.map_addrs[0];
    // h2c with prior knowledge, as a plaintext gRPC client speaks.
    let c: HttpClient = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    for (path, status) in [("/ok", "0"), ("/fail", "8")] {
        let req = http::Request::post(format!("http://{addr}{path}"))
            .header("te", "trailers")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = c.request(req).await.unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_2);
        assert_eq!(resp.headers()["content-type"], "application/grpc");
        assert!(resp.headers().get("grpc-status").is_none(), "{resp:?}");
        let collected = resp.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned().expect("trailers");
        assert_eq!(trailers["grpc-status"], status);
        assert_eq!(trailers["grpc-message"], "quota exceeded");
        assert_eq!(trailers["x-echo"], "yes");
        assert!(trailers.get("content-length").is_none());
        assert_eq!(collected.to_bytes().as_ref(), b"\0\0\0\0\x05hello");
    }
    mock.shutdown(Duration::from_secs(1)).await;
}

/// Sends one raw HTTP/1.1 request and reads the whole answer (the server
/// closes: `Connection: close`).
async fn raw_http1(addr: SocketAddr, extra: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the mock");
    let req = format!(
        "POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n{extra}\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("send the request");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("the mock closes the connection")
        .expect("read the answer");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn recorded_trailers_come_back_chunked_over_http1_only_when_asked() {
    let ex = [with_trailers("/ok", "0")];
    let responder = Arc::new(Responder::new(&ex, ResponderConfig::default()));
    let mock = MockServer::start(config(1), responder, Registry::default())
        .await
        .unwrap();
    let addr = mock.map_addrs[0];

    let asked = raw_http1(addr, "TE: trailers\r\n")
        .await
        .to_ascii_lowercase();
    assert!(asked.contains("transfer-encoding: chunked\r\n"), "{asked}");
    assert!(
        asked.contains("trailer: grpc-status, grpc-message, x-echo\r\n"),
        "{asked}"
    );
    assert!(
        asked.ends_with(
            "\r\n0\r\ngrpc-status: 0\r\ngrpc-message: quota exceeded\r\nx-echo: yes\r\n\r\n"
        ),
        "{asked}"
    );
    assert!(!asked.contains("content-length"), "{asked}");

    // Without TE: trailers the client could not take them: a plain,
    // length-delimited body and no Trailer announcement.
    let plain = raw_http1(addr, "").await.to_ascii_lowercase();
    assert!(plain.contains("content-length: 10\r\n"), "{plain}");
    assert!(!plain.contains("grpc-status"), "{plain}");
    assert!(!plain.contains("trailer:"), "{plain}");
    mock.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn the_admin_port_answers_the_running_accuracy() {
    let ex = [exchange("/job", "", "done", 0)];
    let responder = Arc::new(Responder::new(&ex, ResponderConfig::default()));
    let mock = MockServer::start(
        MockConfig {
            admin_port: Some(0),
            ..config(1)
        },
        responder,
        Registry::default(),
    )
    .await
    .unwrap();
    let (addr, admin) = (mock.map_addrs[0], mock.admin_addr.expect("admin port"));
    let c = client();
    let accuracy = |c: HttpClient| async move {
        let (status, body) = get(&c, admin, tapwire_mock::ACCURACY_PATH, "").await;
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        json
    };
    let before = accuracy(c.clone()).await;
    assert_eq!(before["total"], 0, "{before}");
    assert_eq!(before["hit_rate"], 1.0, "{before}");
    for path in ["/job", "/job", "/nope"] {
        get(&c, addr, path, "").await;
    }
    let after = accuracy(c.clone()).await;
    assert_eq!(
        after,
        serde_json::json!({
            "total": 3, "hit": 2, "miss": 1, "passthrough": 0, "other": 0,
            "hit_rate": 2.0 / 3.0,
        })
    );
    // The same form `report.json` holds, so it reads back as the counts.
    let read: tapwire_mock::MockAccuracy = serde_json::from_value(after).expect("MockAccuracy");
    assert_eq!(read, mock.accuracy());
    let (status, body) = get(&c, admin, "/nope", "").await;
    assert_eq!(status, 404);
    assert!(body.contains("/metrics"), "{body}");
    mock.shutdown(Duration::from_secs(1)).await;
}

//! The proxy changes nothing it should not, whatever the traffic: bodies of
//! every size, chunked framing, keep-alive, 100 concurrent clients,
//! `Expect: 100-continue`, WebSocket upgrades, hop-by-hop headers; and a
//! stalled capture sink costs captures, never requests.
//!
//! The proxy runs in-process (so the sink can be replaced and metrics read
//! directly) in front of the Python upstream from `tapwire-test-support`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tapwire_model::{Direction, Exchange, Protocol};
use tapwire_proxy::DropReason;
use tapwire_test_support::captures::summary;
use tapwire_test_support::http::HttpConn;
use tapwire_test_support::inprocess::{
    in_start_order, test_config, GatedSink, InProcessProxy, Stored,
};
use tapwire_test_support::{curl, pattern, require_tool, sha256_hex, MetricsText, PyServer};

const MIB: usize = 1024 * 1024;
const GRACE: Duration = Duration::from_secs(5);

fn upstream() -> Option<PyServer> {
    PyServer::upstream()
}

fn start(up: &PyServer) -> (InProcessProxy, Stored) {
    InProcessProxy::recording(up.addr())
}

fn taken(stored: &Stored) -> Vec<Exchange> {
    in_start_order(stored)
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

fn query_of(e: &Exchange) -> Option<&str> {
    e.request.as_ref().and_then(|r| r.query.as_deref())
}

#[test]
fn bodies_of_every_size_arrive_intact_and_captures_stop_at_the_limit() {
    let Some(up) = upstream() else { return };
    let (mut proxy, stored) = start(&up);
    let limit = test_config(up.addr()).capture_limit;
    assert_eq!(limit, MIB, "the default capture limit");
    let sizes = [0, 1, 64 * 1024, MIB, 16 * MIB, 64 * MIB];
    let data = pattern(64 * MIB);

    let mut c = HttpConn::connect(proxy.inbound).unwrap();
    for n in sizes {
        let sent = &data[..n];
        let r = c
            .request(
                "POST",
                &format!("/upload?n={n}"),
                &[("Content-Type", "application/octet-stream")],
                sent,
            )
            .unwrap_or_else(|e| panic!("upload of {n} bytes: {e}"));
        assert_eq!(r.status, 200, "upload of {n} bytes: {}", r.text());
        let got = json(&r.body);
        assert_eq!(got["size"], n, "upload of {n} bytes");
        assert_eq!(got["sha256"], sha256_hex(sent), "upload of {n} bytes");

        let r = c
            .request("GET", &format!("/bytes?n={n}"), &[], b"")
            .unwrap_or_else(|e| panic!("download of {n} bytes: {e}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), n, "download of {n} bytes");
        assert_eq!(r.header("content-length"), Some(n.to_string().as_str()));
        assert_eq!(
            sha256_hex(&r.body),
            sha256_hex(sent),
            "download of {n} bytes"
        );
        assert_eq!(r.header("x-body-sha256"), Some(sha256_hex(sent).as_str()));
    }
    drop(c);
    proxy.shutdown(GRACE);

    let caps = taken(&stored);
    assert_eq!(caps.len(), 2 * sizes.len(), "{:?}", summary(&caps));
    assert_eq!(proxy.metrics.written(), (2 * sizes.len()) as u64);
    for n in sizes {
        let kept = n.min(limit);
        let check = |body: &tapwire_model::Body, what: &str| {
            assert_eq!(body.size, n as u64, "{what} size for {n}");
            assert_eq!(body.truncated, n > limit, "{what} truncated for {n}");
            assert_eq!(body.data.len(), kept, "{what} bytes kept for {n}");
            assert!(
                body.data.as_ref() == &data[..kept],
                "{what} captured bytes for {n}"
            );
        };
        let q = format!("n={n}");
        let up_ex = caps
            .iter()
            .find(|e| {
                e.request.as_ref().is_some_and(|r| r.path == "/upload") && query_of(e) == Some(&q)
            })
            .unwrap_or_else(|| panic!("no upload capture for {n}"));
        check(&up_ex.request.as_ref().unwrap().body, "request body");
        assert!(!up_ex.response.as_ref().unwrap().body.truncated);
        assert_eq!(up_ex.tags.get("incomplete"), None, "{:?}", up_ex.tags);
        let down = caps
            .iter()
            .find(|e| {
                e.request.as_ref().is_some_and(|r| r.path == "/bytes") && query_of(e) == Some(&q)
            })
            .unwrap_or_else(|| panic!("no download capture for {n}"));
        check(&down.response.as_ref().unwrap().body, "response body");
        assert_eq!(down.tags.get("incomplete"), None, "{:?}", down.tags);
    }
}

#[test]
fn chunked_bodies_and_keep_alive_pass_through_and_are_all_captured() {
    let Some(up) = upstream() else { return };
    let (mut proxy, stored) = start(&up);
    let mut c = HttpConn::connect(proxy.inbound).unwrap();
    let client_addr = c.local_addr().unwrap();

    let big = pattern(100_000);
    let chunks: [&[u8]; 4] = [b"hello ", b"chunked ", &big, b" world"];
    let whole: Vec<u8> = chunks.concat();
    let r = c
        .request_chunked("POST", "/upload?chunked=1", &[], &chunks, &[])
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.chunked,
        "a chunked response without length stays chunked: {r:?}"
    );
    let got = json(&r.body);
    assert_eq!(got["size"], whole.len());
    assert_eq!(got["sha256"], sha256_hex(&whole));

    let r = c
        .request("GET", "/bytes?n=300000&chunked=1", &[], b"")
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(r.chunked);
    assert_eq!(r.body, pattern(300_000));

    const SEQUENTIAL: usize = 50;
    for i in 0..SEQUENTIAL {
        let r = c
            .request("GET", &format!("/api/seq?i={i}"), &[], b"")
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(json(&r.body)["query"], format!("i={i}"));
    }
    let admin = proxy.admin.expect("admin listener");
    let m = MetricsText::scrape(admin);
    assert_eq!(
        m.value(
            "tapwire_proxy_connections_total",
            &[("listener", "inbound")]
        ),
        1.0,
        "every request used the one client connection"
    );
    drop(c);
    proxy.shutdown(GRACE);

    let caps = taken(&stored);
    assert_eq!(caps.len(), 2 + SEQUENTIAL, "{:?}", summary(&caps));
    for e in &caps {
        assert_eq!(e.client_addr, Some(client_addr), "one connection for all");
        assert_eq!(e.direction, Direction::Inbound);
        assert_eq!(e.protocol, Protocol::Http1);
    }
    let upload = &caps[0];
    let req = upload.request.as_ref().unwrap();
    assert_eq!(req.path, "/upload");
    assert_eq!(req.headers.get("transfer-encoding"), Some("chunked"));
    assert_eq!(req.body.data.as_ref(), whole.as_slice());
    assert_eq!(
        (req.body.size, req.body.truncated),
        (whole.len() as u64, false)
    );
    let resp = upload.response.as_ref().unwrap();
    assert_eq!(json(&resp.body.data)["sha256"], sha256_hex(&whole));
    let download = &caps[1];
    assert_eq!(
        download.response.as_ref().unwrap().body.data.as_ref(),
        pattern(300_000).as_slice()
    );
}

#[test]
fn curl_reuses_one_connection_for_several_urls() {
    if !require_tool("curl") {
        return;
    }
    let Some(up) = upstream() else { return };
    let (mut proxy, stored) = start(&up);
    let urls: Vec<String> = (0..5)
        .map(|i| format!("http://{}/api/curl?i={i}", proxy.inbound))
        .collect();
    let mut args = vec!["-w".to_owned(), "%{num_connects} ".to_owned()];
    for u in &urls {
        args.extend(["-o".to_owned(), "/dev/null".to_owned(), u.clone()]);
    }
    let out = curl(&args).ok();
    assert_eq!(
        out.stdout.trim(),
        "1 0 0 0 0",
        "new connections per transfer"
    );
    proxy.shutdown(GRACE);
    let caps = taken(&stored);
    assert_eq!(caps.len(), 5, "{:?}", summary(&caps));
    let clients: BTreeSet<_> = caps.iter().map(|e| e.client_addr).collect();
    assert_eq!(clients.len(), 1, "{clients:?}");
}

#[test]
fn hundred_concurrent_clients_all_succeed_and_all_are_captured() {
    let Some(up) = upstream() else { return };
    let (mut proxy, stored) = start(&up);
    const CLIENTS: usize = 100;
    const EACH: usize = 20;
    let inbound = proxy.inbound;
    let started = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|t| {
                s.spawn(move || {
                    let mut c = HttpConn::connect(inbound).unwrap();
                    for r in 0..EACH {
                        let body = format!("client {t} request {r}");
                        let resp = c
                            .request(
                                "POST",
                                &format!("/api/load?t={t}&r={r}"),
                                &[],
                                body.as_bytes(),
                            )
                            .unwrap_or_else(|e| panic!("client {t} request {r}: {e}"));
                        assert_eq!(resp.status, 200, "client {t} request {r}");
                        assert_eq!(json(&resp.body)["body"], body);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("client thread");
        }
    });
    let elapsed = started.elapsed();
    proxy.shutdown(GRACE);
    let total = CLIENTS * EACH;
    assert_eq!(
        proxy.metrics.written(),
        total as u64,
        "captures_written after {elapsed:?}"
    );
    assert_eq!(proxy.metrics.dropped(DropReason::QueueFull), 0);
    let caps = taken(&stored);
    let bodies: BTreeSet<String> = caps
        .iter()
        .map(|e| String::from_utf8_lossy(&e.request.as_ref().unwrap().body.data).into_owned())
        .collect();
    assert_eq!(bodies.len(), total, "each request captured once");
    let want: BTreeSet<String> = (0..CLIENTS)
        .flat_map(|t| (0..EACH).map(move |r| format!("client {t} request {r}")))
        .collect();
    assert_eq!(bodies, want);
}

#[test]
fn a_stalled_sink_drops_captures_but_never_requests() {
    let Some(up) = upstream() else { return };
    let (sink, gate, stored) = GatedSink::new();
    let mut config = test_config(up.addr());
    config.queue_capacity = 5;
    let mut proxy = InProcessProxy::start(config, Box::new(sink));
    const REQUESTS: usize = 200;
    let mut c = HttpConn::connect(proxy.inbound).unwrap();
    for i in 0..REQUESTS {
        let body = format!("payload {i}");
        let r = c
            .request("POST", &format!("/api/q?i={i}"), &[], body.as_bytes())
            .unwrap_or_else(|e| panic!("request {i} with the sink stalled: {e}"));
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(json(&r.body)["body"], body, "request {i}");
    }
    drop(c);
    let dropped_while_stalled = proxy.metrics.dropped(DropReason::QueueFull);
    assert!(dropped_while_stalled > 0, "a full queue must drop captures");
    let admin = proxy.admin.expect("admin");
    let deadline = Instant::now() + Duration::from_secs(5);
    let m = loop {
        let m = MetricsText::scrape(admin);
        let settled = m.value(
            "tapwire_proxy_captures_dropped_total",
            &[("reason", "queue_full")],
        ) + 6.0
            >= REQUESTS as f64;
        if settled || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // One capture is in the sink's hands, five wait in the queue.
    assert_eq!(
        m.value("tapwire_proxy_capture_queue_depth", &[]),
        5.0,
        "{}",
        m.0
    );
    assert_eq!(m.value("tapwire_proxy_captures_written_total", &[]), 0.0);
    assert_eq!(
        tapwire_test_support::http::get(admin, "/readyz")
            .unwrap()
            .status,
        200,
        "a slow sink is still a live sink"
    );

    gate.open();
    proxy.shutdown(GRACE);
    let written = proxy.metrics.written();
    let dropped = proxy.metrics.dropped(DropReason::QueueFull);
    assert_eq!(
        written + dropped,
        REQUESTS as u64,
        "written {written} + dropped {dropped}"
    );
    assert!(
        written <= 6,
        "only the queue (5) and the sink (1) hold captures: {written}"
    );
    assert_eq!(proxy.metrics.dropped(DropReason::SinkClosed), 0);
    assert_eq!(stored.lock().unwrap().len() as u64, written);
}

#[test]
fn expect_100_continue_gets_an_interim_response_before_the_body() {
    let Some(up) = upstream() else { return };
    let (mut proxy, stored) = start(&up);
    let body = pattern(4096);
    let mut c = HttpConn::connect(proxy.inbound).unwrap();
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    // The client holds the body back until told to go on.
    let interim = c
        .read_one_head()
        .expect("an interim response before the body");
    assert_eq!(interim.status, 100, "{interim:?}");
    c.write_all(&body).unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(json(&r.body)["sha256"], sha256_hex(&body));

    if require_tool("curl") {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), pattern(2048)).unwrap();
        let out = curl([
            "-H".as_ref(),
            "Expect: 100-continue".as_ref(),
            "--expect100-timeout".as_ref(),
            "10".as_ref(),
            "-w".as_ref(),
            "%{time_total}".as_ref(),
            "--data-binary".as_ref(),
            format!("@{}", file.path().display()).as_ref(),
            format!("http://{}/upload", proxy.inbound).as_ref(),
        ] as [&std::ffi::OsStr; 9])
        .ok();
        assert_eq!(out.status, 200);
        assert_eq!(json(&out.body)["sha256"], sha256_hex(&pattern(2048)));
        let secs: f64 = out.stdout.trim().parse().unwrap();
        assert!(secs < 5.0, "curl waited {secs}s: no 100 Continue came back");
    }
    proxy.shutdown(GRACE);
    let caps = taken(&stored);
    let first = caps.first().expect("a capture");
    let req = first.request.as_ref().unwrap();
    assert_eq!(req.headers.get("expect"), Some("100-continue"));
    assert_eq!(req.body.data.as_ref(), body.as_slice());
}

/// Writes one masked client frame (RFC 6455 §5.2).
fn ws_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 65536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Reads one unmasked server frame: (opcode, payload).
fn read_ws_frame(c: &mut HttpConn) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    c.read_exact(&mut h).expect("frame header");
    assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
    let n = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            c.read_exact(&mut b).expect("frame length");
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            c.read_exact(&mut b).expect("frame length");
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut p = vec![0u8; n];
    c.read_exact(&mut p).expect("frame payload");
    (h[0] & 0x0f, p)
}

#[test]
fn websocket_upgrade_is_passed_through_both_ways() {
    let Some(up) = upstream() else { return };
    let (mut proxy, stored) = start(&up);
    let mut c = HttpConn::connect(proxy.inbound).unwrap();
    // The key and accept value of RFC 6455 §1.3.
    c.send(
        "GET",
        "/ws",
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ],
        b"",
    )
    .unwrap();
    let r = c.read_head().unwrap();
    assert_eq!(r.status, 101, "{r:?}");
    assert!(r
        .header("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket")));
    assert!(r
        .header("connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("upgrade")));
    assert_eq!(
        r.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );

    c.write_all(&ws_frame(1, b"hello tapwire")).unwrap();
    assert_eq!(read_ws_frame(&mut c), (1, b"hello tapwire".to_vec()));
    let big = pattern(70_000);
    c.write_all(&ws_frame(2, &big)).unwrap();
    assert_eq!(read_ws_frame(&mut c), (2, big));
    c.write_all(&ws_frame(8, &1000u16.to_be_bytes())).unwrap();
    assert_eq!(read_ws_frame(&mut c), (8, 1000u16.to_be_bytes().to_vec()));
    drop(c);

    proxy.shutdown(GRACE);
    let caps = taken(&stored);
    assert_eq!(caps.len(), 1, "{:?}", summary(&caps));
    assert_eq!(caps[0].response.as_ref().map(|r| r.status), Some(101));
    assert_eq!(
        caps[0].tags.get("upgrade").map(String::as_str),
        Some("websocket")
    );
}

#[test]
fn hop_by_hop_headers_are_removed_and_end_to_end_ones_kept_verbatim() {
    let Some(up) = upstream() else { return };
    let (mut proxy, stored) = start(&up);
    let mut c = HttpConn::connect(proxy.inbound).unwrap();
    let r = c
        .request(
            "GET",
            "/headers",
            &[
                ("Host", "shop.example"),
                ("Connection", "keep-alive, X-Hop-Secret"),
                ("X-Hop-Secret", "must not pass"),
                ("Keep-Alive", "timeout=5"),
                ("X-End-To-End", "kept"),
                ("Accept", "text/a"),
                ("Accept", "text/b"),
                ("TE", "trailers"),
            ],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let fields: Vec<(String, String)> = serde_json::from_slice(&r.body).unwrap();
    let names: Vec<String> = fields.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
    for hop in ["x-hop-secret", "keep-alive", "connection"] {
        assert!(
            !names.contains(&hop.to_owned()),
            "{hop} reached the app: {fields:?}"
        );
    }
    let get = |name: &str| -> Vec<&str> {
        fields
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(
        get("X-End-To-End"),
        ["kept"],
        "name case and value kept: {fields:?}"
    );
    assert_eq!(
        get("Accept"),
        ["text/a", "text/b"],
        "order of repeated fields: {fields:?}"
    );
    assert_eq!(
        get("Host"),
        ["shop.example"],
        "the client's Host: {fields:?}"
    );
    assert_eq!(
        get("TE"),
        ["trailers"],
        "TE: trailers is end to end for gRPC: {fields:?}"
    );
    drop(c);
    proxy.shutdown(GRACE);
    let caps = taken(&stored);
    // The capture keeps the request as it arrived, hop-by-hop fields included.
    let req = caps[0].request.as_ref().unwrap();
    assert_eq!(req.headers.get("x-hop-secret"), Some("must not pass"));
    assert_eq!(req.authority, "shop.example");
}

/// A response head of 150 small fields (about 3 KiB) reaches curl intact
/// when fetched directly; the proxy must not turn it into a 502.
#[test]
fn responses_with_many_header_fields_pass_through() {
    let Some(up) = upstream() else { return };
    let (mut proxy, stored) = start(&up);
    let mut direct = HttpConn::connect(up.addr()).unwrap();
    let want = direct
        .request("GET", "/many-headers?n=150", &[], b"")
        .unwrap();
    assert_eq!(want.status, 200);
    let mut c = HttpConn::connect(proxy.inbound).unwrap();
    let got = c.request("GET", "/many-headers?n=150", &[], b"").unwrap();
    assert_eq!(
        (got.status, got.header("x-tapwire-error"), got.text()),
        (200, None, want.text()),
        "a 150-field response head through the proxy"
    );
    let extra = |r: &tapwire_test_support::RawResponse| {
        r.headers
            .iter()
            .filter(|(n, _)| n.starts_with("X-Extra-"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(extra(&got), extra(&want));
    drop(c);
    proxy.shutdown(GRACE);
    let caps = taken(&stored);
    assert_eq!(caps[0].error, None);
}

/// A client that goes away halfway through an upload or a download still
/// leaves exactly one capture each, marked incomplete, and the proxy stays
/// usable.
#[test]
fn clients_that_vanish_mid_body_leave_one_incomplete_capture_each() {
    let Some(up) = upstream() else { return };
    let (mut proxy, stored) = start(&up);

    let mut c = HttpConn::connect(proxy.inbound).unwrap();
    let head = "POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: 100000\r\n\r\n";
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(&pattern(40_000)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(c);

    let mut c = HttpConn::connect(proxy.inbound).unwrap();
    c.send("GET", &format!("/bytes?n={}", 32 * MIB), &[], b"")
        .unwrap();
    let r = c.read_head().unwrap();
    assert_eq!(r.status, 200);
    let mut some = vec![0u8; 64 * 1024];
    c.read_exact(&mut some).unwrap();
    drop(c);

    // Still serving.
    let mut c = HttpConn::connect(proxy.inbound).unwrap();
    assert_eq!(
        c.request("GET", "/api/after", &[], b"").unwrap().status,
        200
    );
    drop(c);
    proxy.shutdown(GRACE);

    let caps = taken(&stored);
    assert_eq!(caps.len(), 3, "{:?}", summary(&caps));
    let upload = caps
        .iter()
        .find(|e| e.request.as_ref().is_some_and(|r| r.path == "/upload"))
        .expect("upload capture");
    let req = upload.request.as_ref().unwrap();
    assert_eq!(req.body.size, 40_000, "bytes that really arrived");
    assert!(
        upload
            .tags
            .get("incomplete")
            .is_some_and(|v| v.contains("request")),
        "{upload:?}"
    );
    let download = caps
        .iter()
        .find(|e| e.request.as_ref().is_some_and(|r| r.path == "/bytes"))
        .expect("download capture");
    let body = &download.response.as_ref().unwrap().body;
    assert!(body.size < (32 * MIB) as u64, "{}", body.size);
    assert!(
        download
            .tags
            .get("incomplete")
            .is_some_and(|v| v.contains("response")),
        "{:?}",
        download.tags
    );
    assert_eq!(proxy.metrics.written(), 3);
}

/// HTTP/1.1 pipelining: three requests written at once are answered in order.
#[test]
fn pipelined_requests_are_answered_in_order() {
    let Some(up) = upstream() else { return };
    let (mut proxy, stored) = start(&up);
    let mut c = HttpConn::connect(proxy.inbound).unwrap();
    let mut burst = String::new();
    for i in 0..3 {
        burst.push_str(&format!(
            "POST /api/pipe?i={i} HTTP/1.1\r\nHost: app\r\nContent-Length: 1\r\n\r\n{i}"
        ));
    }
    c.write_all(burst.as_bytes()).unwrap();
    for i in 0..3 {
        let r = c.read_response(false).unwrap();
        assert_eq!(r.status, 200);
        let v = json(&r.body);
        assert_eq!(
            (v["query"].clone(), v["body"].clone()),
            (format!("i={i}").into(), i.to_string().into())
        );
    }
    drop(c);
    proxy.shutdown(GRACE);
    assert_eq!(taken(&stored).len(), 3);
}

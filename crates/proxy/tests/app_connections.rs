//! Each inbound HTTP/1.1 connection reuses one connection to the app of its
//! own, and gets a new one whenever the app closes it: with
//! `Connection: close`, or silently after an answer (a stale keep-alive
//! connection, which an idempotent request survives by a retry).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tapwire_test_support::http::HttpConn;
use tapwire_test_support::inprocess::{test_config, InProcessProxy, MemorySink};

const GRACE: Duration = Duration::from_secs(5);

/// A plain HTTP/1.1 app on a thread per connection, counting connections.
/// `GET /close` answers with `Connection: close`; with `hang_up`, every
/// connection is closed right after its first answer without saying so.
fn app(hang_up: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            count.fetch_add(1, Ordering::Relaxed);
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // Requests here have no body: a head ends at a blank line.
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map_or(0, |p| p + 4);
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    buf.drain(..end);
                    let close = head.starts_with("GET /close ");
                    let body = head.lines().next().unwrap_or_default().to_owned();
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{}\r\n{body}",
                        body.len(),
                        if close { "Connection: close\r\n" } else { "" }
                    );
                    if s.write_all(answer.as_bytes()).is_err() || close || hang_up {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

fn proxy(app: SocketAddr) -> InProcessProxy {
    let (sink, _stored) = MemorySink::new();
    InProcessProxy::start(test_config(app), Box::new(sink))
}

#[test]
fn each_client_connection_keeps_one_app_connection() {
    let (addr, accepted) = app(false);
    let mut proxy = proxy(addr);
    for client in 0..2 {
        let mut c = HttpConn::connect(proxy.inbound).expect("connect");
        for i in 0..5 {
            let r = c
                .request("GET", &format!("/c{client}/r{i}"), &[], b"")
                .expect("request");
            assert_eq!(r.status, 200);
            assert_eq!(r.text(), format!("GET /c{client}/r{i} HTTP/1.1"));
        }
    }
    assert_eq!(accepted.load(Ordering::Relaxed), 2);
    proxy.shutdown(GRACE);
    assert_eq!(proxy.metrics.written(), 10);
}

#[test]
fn an_app_that_closes_gets_a_new_connection_for_the_next_request() {
    let (addr, accepted) = app(false);
    let mut proxy = proxy(addr);
    let mut c = HttpConn::connect(proxy.inbound).expect("connect");
    for path in ["/a", "/close", "/b", "/close", "/c"] {
        let r = c.request("GET", path, &[], b"").expect("request");
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    assert_eq!(accepted.load(Ordering::Relaxed), 3);
    proxy.shutdown(GRACE);
    assert_eq!(proxy.metrics.written(), 5);
}

#[test]
fn a_silently_closed_keep_alive_connection_is_retried_for_idempotent_requests() {
    let (addr, accepted) = app(true);
    let mut proxy = proxy(addr);
    let mut c = HttpConn::connect(proxy.inbound).expect("connect");
    for i in 0..4 {
        let r = c
            .request("GET", &format!("/r{i}"), &[], b"")
            .expect("request");
        assert_eq!(r.status, 200, "{}", r.text());
        // Let the app's close reach the proxy before the next request, or
        // not: either way the request must succeed.
        if i % 2 == 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(accepted.load(Ordering::Relaxed) >= 4);
    proxy.shutdown(GRACE);
    assert_eq!(proxy.metrics.written(), 4);
}

//! Bad input from clients and a dead upstream: each gets a clear, specific
//! answer, is counted in the metrics, and leaves the proxy healthy.

use std::path::Path;

use tapwire_test_support::http::{get, HttpConn};
use tapwire_test_support::{free_port, TapwireProcess};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tapwire"))
}

#[test]
fn malformed_oversized_unreachable_and_origin_form_requests_get_clear_errors() {
    // Nothing listens on the app port.
    let dead_port = free_port();
    let tw = TapwireProcess::proxy(bin(), ["--app-port", &dead_port.to_string()]);

    // 1. A request line that is not HTTP.
    let mut c = HttpConn::connect(tw.inbound).expect("connect");
    c.write_all(b"HELLO?? \x01\x02 this is not http\r\n\r\n")
        .expect("write");
    let r = c.read_response(false).expect("a response to garbage");
    assert_eq!(r.status, 400, "{r:?}");

    // 2. A 100 KiB header field (the limit is 64 KiB).
    let mut c = HttpConn::connect(tw.inbound).expect("connect");
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let sent = c.write_all(big.as_bytes());
    let r = c
        .read_response(false)
        .unwrap_or_else(|e| panic!("no response to a 100 KiB header (write: {sent:?}): {e}"));
    assert_eq!(r.status, 431, "{r:?}");

    // 3. The app is down: 502 naming the app, with a machine-readable kind.
    let r = get(tw.inbound, "/orders/1").expect("a response while the app is down");
    assert_eq!(r.status, 502, "{r:?}");
    assert_eq!(r.header("x-tapwire-error"), Some("upstream-unreachable"));
    let app = format!("127.0.0.1:{dead_port}");
    assert!(
        r.text().contains(&app),
        "502 body should name {app}: {}",
        r.text()
    );

    // 4. The forward proxy gets an origin-form request (someone pointed an
    // app, not its HTTP_PROXY, at the outbound port).
    let mut c = HttpConn::connect(tw.outbound).expect("connect");
    let r = c
        .request("GET", "/orders/1", &[("Host", "example.test")], b"")
        .expect("a response to origin-form");
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.header("x-tapwire-error"), Some("bad-request"));
    assert!(
        r.text().contains("absolute-form") && r.text().contains("/orders/1"),
        "400 body should explain: {}",
        r.text()
    );

    // Still healthy, and every case was counted once.
    let h = get(tw.admin, "/healthz").expect("healthz");
    assert_eq!(h.status, 200);
    let m = tw.metrics();
    let count = |name: &str, labels: &[(&str, &str)]| m.get(name, labels).unwrap_or(0.0);
    assert_eq!(
        count(
            "tapwire_proxy_downstream_errors_total",
            &[("direction", "inbound"), ("kind", "malformed")]
        ),
        1.0,
        "{}",
        m.0
    );
    assert_eq!(
        count(
            "tapwire_proxy_downstream_errors_total",
            &[("direction", "inbound"), ("kind", "header_too_large")]
        ),
        1.0,
        "{}",
        m.0
    );
    assert_eq!(
        count(
            "tapwire_proxy_upstream_errors_total",
            &[("direction", "inbound"), ("kind", "connect")]
        ),
        1.0,
        "{}",
        m.0
    );
    // 5. An absolute-form request back into the proxy itself.
    let mut c = HttpConn::connect(tw.outbound).expect("connect");
    let r = c
        .request("GET", &format!("http://{}/loop", tw.inbound), &[], b"")
        .expect("a response to a loop");
    assert_eq!(r.status, 508, "{r:?}");

    // A well-formed request still works after all that.
    let mut c = HttpConn::connect(tw.outbound).expect("connect");
    let r = c
        .request("GET", &format!("http://127.0.0.1:{dead_port}/x"), &[], b"")
        .expect("response");
    assert_eq!(r.status, 502);
    assert_eq!(r.header("x-tapwire-error"), Some("upstream-unreachable"));
}

//! The inbound listener's HTTP/1.1 fast lane: plain requests are relayed
//! as bytes and recorded exactly as the general path records them, and
//! every request the lane does not take reaches the general path intact,
//! counted by reason.

use std::time::Duration;

use tapwire_proxy::Handoff;
use tapwire_test_support::http::HttpConn;
use tapwire_test_support::inprocess::{in_start_order, InProcessProxy};
use tapwire_test_support::{pattern, PyServer};

const GRACE: Duration = Duration::from_secs(5);

#[test]
fn plain_requests_take_the_lane_and_are_recorded_field_for_field() {
    let Some(up) = PyServer::upstream() else {
        return;
    };
    let (mut proxy, stored) = InProcessProxy::recording(up.addr());
    let mut c = HttpConn::connect(proxy.inbound).unwrap();

    // GET with a query and repeated fields.
    let r = c
        .request(
            "GET",
            "/api/items?page=2&sort=name",
            &[("Host", "shop.example"), ("X-Multi", "a"), ("X-Multi", "b")],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["query"], "page=2&sort=name");
    assert_eq!(r.header("x-multi"), Some("one"), "{r:?}");

    // HEAD: a length but no body, and the connection goes on.
    let r = c.request("HEAD", "/bytes?n=5000", &[], b"").unwrap();
    assert_eq!((r.status, r.header("content-length")), (200, Some("5000")));
    let r = c.request("GET", "/api/x?status=204", &[], b"").unwrap();
    assert_eq!((r.status, r.body.len()), (204, 0));

    // A chunked upload with trailers, and a chunked download.
    let r = c
        .request_chunked(
            "POST",
            "/upload",
            &[],
            &[b"abc", b"defgh"],
            &[("X-Checksum", "42")],
        )
        .unwrap();
    assert_eq!(r.json()["size"], 8);
    let r = c
        .request("GET", "/bytes?n=20000&chunked=1", &[], b"")
        .unwrap();
    assert!(r.chunked);
    assert_eq!(r.body, pattern(20_000));

    // A body larger than one read, sent with its length.
    let big = pattern(300_000);
    let r = c
        .request(
            "PUT",
            "/upload",
            &[("Content-Type", "application/octet-stream")],
            &big,
        )
        .unwrap();
    assert_eq!(r.json()["size"], 300_000);

    // A body that ends at close: the proxy closes the client connection too.
    let r = c
        .request("GET", "/close-delimited?n=3000", &[], b"")
        .unwrap();
    assert_eq!((r.status, r.body.len()), (200, 3000));
    assert_eq!(r.header("connection"), Some("close"));
    drop(c);

    assert_eq!(proxy.metrics.fast_lane_requests(), 7);
    for reason in [Handoff::Http2, Handoff::Version, Handoff::Unparsed] {
        assert_eq!(proxy.metrics.handoffs(reason), 0, "{reason:?}");
    }
    proxy.shutdown(GRACE);

    let caps = in_start_order(&stored);
    assert_eq!(caps.len(), 7);
    let get = &caps[0];
    let req = get.request.as_ref().unwrap();
    assert_eq!(
        (
            req.method.as_str(),
            req.scheme.as_str(),
            req.authority.as_str(),
            req.path.as_str(),
            req.query.as_deref(),
            req.version.as_str()
        ),
        (
            "GET",
            "http",
            "shop.example",
            "/api/items",
            Some("page=2&sort=name"),
            "HTTP/1.1"
        )
    );
    assert_eq!(
        req.headers.get_all("x-multi").collect::<Vec<_>>(),
        ["a", "b"],
        "names lower-cased, values in order"
    );
    let resp = get.response.as_ref().unwrap();
    assert_eq!((resp.status, resp.version.as_str()), (200, "HTTP/1.1"));
    assert_eq!(
        resp.headers.get_all("set-cookie").collect::<Vec<_>>(),
        ["a=1; Path=/", "b=2; Path=/"]
    );
    assert_eq!(get.upstream.port, up.addr().port());
    assert!(get.duration_us > 0);

    let head = caps[1].response.as_ref().unwrap();
    assert_eq!((head.body.size, head.body.data.len()), (0, 0));

    let upload = caps[3].request.as_ref().unwrap();
    assert_eq!(upload.body.data.as_ref(), b"abcdefgh");
    assert_eq!(upload.trailers.get("x-checksum"), Some("42"));
    let download = caps[4].response.as_ref().unwrap();
    assert_eq!(download.body.data.as_ref(), pattern(20_000).as_slice());
    assert_eq!(caps[5].request.as_ref().unwrap().body.size, 300_000);
    let closing = caps[6].response.as_ref().unwrap();
    assert_eq!(closing.body.size, 3000);
    for e in &caps {
        assert!(!e.tags.contains_key("incomplete"), "{:?}", e.tags);
        assert_eq!(e.error, None);
    }
}

#[test]
fn requests_the_lane_does_not_take_reach_the_general_path() {
    let Some(up) = PyServer::upstream() else {
        return;
    };
    let (mut proxy, stored) = InProcessProxy::recording(up.addr());
    let cases: [(&str, Handoff); 5] = [
        (
            "GET /api/old HTTP/1.0\r\nHost: app\r\n\r\n",
            Handoff::Version,
        ),
        (
            "POST /api/expect HTTP/1.1\r\nHost: app\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
            Handoff::Expect,
        ),
        (
            "GET http://app/api/absolute HTTP/1.1\r\nHost: app\r\n\r\n",
            Handoff::Target,
        ),
        (
            "POST /api/both HTTP/1.1\r\nHost: app\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
            Handoff::Framing,
        ),
        (
            "GET /api/named HTTP/1.1\r\nHost: app\r\nConnection: content-length\r\n\r\n",
            Handoff::Framing,
        ),
    ];
    for (i, (raw, reason)) in cases.iter().enumerate() {
        let mut c = HttpConn::connect(proxy.inbound).unwrap();
        // A plain request first: the hand-off can come mid-connection.
        let r = c.request("GET", "/api/first", &[], b"").unwrap();
        assert_eq!(r.status, 200);
        c.write_all(raw.as_bytes()).unwrap();
        let r = c.read_response(false).unwrap();
        assert!(
            r.status == 200 || (*reason == Handoff::Framing && r.status == 400),
            "{raw:?}: {r:?}"
        );
        if r.status == 200 {
            let v = r.json();
            assert!(v["path"].as_str().unwrap().starts_with("/api/"), "{v}");
        }
        let handed: u64 = cases[..=i]
            .iter()
            .filter(|(_, r)| r == reason)
            .count()
            .try_into()
            .unwrap();
        assert_eq!(proxy.metrics.handoffs(*reason), handed, "{raw:?}");
    }
    assert_eq!(proxy.metrics.fast_lane_requests(), cases.len() as u64);
    proxy.shutdown(GRACE);
    let caps = in_start_order(&stored);
    assert!(caps.len() >= 2 * cases.len() - 1, "{}", caps.len());
}

/// An app that answers before it has read the body: the answer reaches the
/// client while the body is still on its way, and the connection closes
/// since the rest of the body will not be read.
#[test]
fn an_answer_before_the_end_of_the_body_is_relayed() {
    let Some(up) = PyServer::upstream() else {
        return;
    };
    let (mut proxy, stored) = InProcessProxy::recording(up.addr());
    let mut c = HttpConn::connect(proxy.inbound).unwrap();
    c.write_all(b"POST /early HTTP/1.1\r\nHost: app\r\nContent-Length: 1000000\r\n\r\n")
        .unwrap();
    c.write_all(&pattern(10_000)).unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!((r.status, r.text().as_str()), (413, "too large\n"));
    // Closed (a reset, should the proxy not have read all that was sent).
    let rest = c.read_to_end();
    assert!(
        rest.as_ref().map_or(true, Vec::is_empty),
        "the proxy closes the connection: {rest:?}"
    );
    proxy.shutdown(GRACE);
    let caps = in_start_order(&stored);
    assert_eq!(caps.len(), 1);
    let e = &caps[0];
    assert_eq!(e.response.as_ref().unwrap().status, 413);
    // What had passed when the answer came: some or all of what was sent.
    assert!(e.request.as_ref().unwrap().body.size <= 10_000);
    assert_eq!(
        e.tags.get("incomplete").map(String::as_str),
        Some("request")
    );
}

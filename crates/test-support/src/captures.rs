//! Reading what the proxy recorded.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use tapwire_model::{Direction, Exchange, Protocol};

/// Every exchange in the finished segments below `dir`, by start time.
/// A missing directory reads as empty.
pub fn read_captures(dir: &Path) -> Vec<Exchange> {
    if !dir.exists() {
        return Vec::new();
    }
    tapwire_model::segment::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read captures in {}: {e}", dir.display()))
}

/// Polls `dir` until it holds at least `n` exchanges; panics after `timeout`
/// naming how many there were.
pub fn wait_for_captures(dir: &Path, n: usize, timeout: Duration) -> Vec<Exchange> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = read_captures(dir);
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} captures in {} within {timeout:?}, found {}",
            dir.display(),
            got.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The exchanges whose request has `method` and `path`; panics listing
/// what was captured when there are none.
pub fn find_http<'a>(all: &'a [Exchange], method: &str, path: &str) -> Vec<&'a Exchange> {
    let found: Vec<&Exchange> = all
        .iter()
        .filter(|e| {
            e.request
                .as_ref()
                .is_some_and(|r| r.method == method && r.path == path)
        })
        .collect();
    assert!(
        !found.is_empty(),
        "no {method} {path} among the captures: {:?}",
        summary(all)
    );
    found
}

/// One line per exchange, for assertion messages.
pub fn summary(all: &[Exchange]) -> Vec<String> {
    all.iter()
        .map(|e| match &e.request {
            Some(r) => format!(
                "{} {} {} {} -> {:?}",
                e.direction,
                e.protocol,
                r.method,
                r.path_and_query(),
                e.response.as_ref().map(|r| r.status)
            ),
            None => format!("{} {} {}", e.direction, e.protocol, e.upstream),
        })
        .collect()
}

/// What an HTTP exchange must record.
#[derive(Debug, Clone)]
pub struct ExpectHttp<'a> {
    /// Inbound or outbound.
    pub direction: Direction,
    /// Protocol as understood by the proxy.
    pub protocol: Protocol,
    /// `--service`.
    pub service: &'a str,
    /// Request method.
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// Request authority.
    pub authority: &'a str,
    /// Path without query.
    pub path: &'a str,
    /// Raw query.
    pub query: Option<&'a str>,
    /// Response status.
    pub status: u16,
    /// Upstream host and port.
    pub upstream: (&'a str, u16),
    /// The proxy listener the client connected to.
    pub server_addr: SocketAddr,
    /// The whole request body (below the capture limit).
    pub request_body: &'a [u8],
    /// The whole response body (below the capture limit).
    pub response_body: &'a [u8],
}

/// Asserts every field of `ex` that [`ExpectHttp`] names, plus: a loopback
/// client address, no error, nothing truncated or incomplete.
pub fn assert_http(ex: &Exchange, want: &ExpectHttp<'_>) {
    let ctx = format!("{ex:#?}");
    assert_eq!(ex.direction, want.direction, "direction of {ctx}");
    assert_eq!(ex.protocol, want.protocol, "protocol of {ctx}");
    assert_eq!(ex.service.name, want.service, "service of {ctx}");
    let client = ex
        .client_addr
        .unwrap_or_else(|| panic!("no client_addr in {ctx}"));
    assert!(
        client.ip().is_loopback() && client.port() != 0,
        "client_addr {client} in {ctx}"
    );
    assert_eq!(
        ex.server_addr,
        Some(want.server_addr),
        "server_addr of {ctx}"
    );
    assert_eq!(
        (ex.upstream.host.as_str(), ex.upstream.port),
        want.upstream,
        "upstream of {ctx}"
    );
    assert_eq!(ex.error, None, "error of {ctx}");
    assert_eq!(ex.tags.get("incomplete"), None, "tags of {ctx}");
    assert!(ex.duration_us > 0, "duration of {ctx}");
    let req = ex
        .request
        .as_ref()
        .unwrap_or_else(|| panic!("no request in {ctx}"));
    assert_eq!(req.method, want.method, "method of {ctx}");
    assert_eq!(req.scheme, want.scheme, "scheme of {ctx}");
    assert_eq!(req.authority, want.authority, "authority of {ctx}");
    assert_eq!(req.path, want.path, "path of {ctx}");
    assert_eq!(req.query.as_deref(), want.query, "query of {ctx}");
    assert_body(&req.body, want.request_body, &ctx);
    let resp = ex
        .response
        .as_ref()
        .unwrap_or_else(|| panic!("no response in {ctx}"));
    assert_eq!(resp.status, want.status, "status of {ctx}");
    assert_body(&resp.body, want.response_body, &ctx);
}

/// Asserts a captured body holds exactly `want`, untruncated.
pub fn assert_body(got: &tapwire_model::Body, want: &[u8], ctx: &str) {
    assert_eq!(
        (got.size, got.truncated),
        (want.len() as u64, false),
        "body size/truncation in {ctx}"
    );
    assert!(
        got.data.as_ref() == want,
        "captured body {:?} != sent {:?} in {ctx}",
        String::from_utf8_lossy(&got.data),
        String::from_utf8_lossy(want)
    );
}

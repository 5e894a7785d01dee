//! The JDK's `java.net.http.HttpClient` as a real-world client:
//! `java/HttpCall.java` run as a single-file program.

use std::process::Command;
use std::time::Duration;

use crate::process::{clean_env, run_ok};

/// What one `HttpCall.java` run received.
#[derive(Debug)]
pub struct JavaResponse {
    /// Response status.
    pub status: u16,
    /// `HTTP_1_1` or `HTTP_2`.
    pub version: String,
    /// Header fields (names lower case, as the JDK reports them).
    pub headers: Vec<(String, String)>,
    /// The body's bytes as received.
    pub body: Vec<u8>,
}

impl JavaResponse {
    /// First value of `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Runs `java <props> HttpCall.java METHOD URL [BODY]` (a BODY is sent as
/// JSON) and parses what it printed; panics if the JVM fails. `props` are
/// `-Dname=value` system properties: proxies and the truststore.
pub fn http_call(props: &[String], method: &str, url: &str, body: Option<&str>) -> JavaResponse {
    let mut cmd = Command::new("java");
    clean_env(&mut cmd)
        .args(props)
        .arg(crate::support_file("java/HttpCall.java"))
        .args([method, url]);
    if let Some(b) = body {
        cmd.arg(b);
    }
    let out = run_ok(&mut cmd, Duration::from_secs(90));
    parse(&out.stdout)
}

fn parse(out: &[u8]) -> JavaResponse {
    let split = out
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("HttpCall.java prints a head, an empty line, then the body");
    let head = String::from_utf8_lossy(&out[..split]);
    let mut r = JavaResponse {
        status: 0,
        version: String::new(),
        headers: Vec::new(),
        body: out[split + 2..].to_vec(),
    };
    for line in head.lines() {
        if let Some(s) = line.strip_prefix("status=") {
            r.status = s.parse().expect("numeric status");
        } else if let Some(v) = line.strip_prefix("version=") {
            r.version = v.to_owned();
        } else if let Some((n, v)) = line
            .strip_prefix("header=")
            .and_then(|h| h.split_once(": "))
        {
            r.headers.push((n.to_owned(), v.to_owned()));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_head_and_raw_body() {
        let r = super::parse(b"status=201\nversion=HTTP_2\nheader=x-a: 1\n\n{\"a\":\n 1}\n");
        assert_eq!((r.status, r.version.as_str()), (201, "HTTP_2"));
        assert_eq!(r.header("X-A"), Some("1"));
        assert_eq!(r.body, b"{\"a\":\n 1}\n");
    }
}

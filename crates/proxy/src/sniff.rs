//! Protocol detection on the first bytes of a connection. Pure functions
//! over untrusted bytes: fuzzed, never panic.

/// What the first bytes of a stream look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sniffed {
    /// A TLS handshake record (ClientHello follows).
    Tls,
    /// An HTTP/1.x request line.
    Http1,
    /// The HTTP/2 connection preface (prior knowledge).
    Http2,
    /// Anything else: relayed as an opaque TCP flow.
    Opaque,
    /// Not enough bytes to tell yet.
    NeedMore,
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Longest method token we wait for before calling a stream opaque.
const MAX_METHOD: usize = 16;

/// Classifies the first bytes of a client stream.
pub(crate) fn sniff(buf: &[u8]) -> Sniffed {
    let Some(&first) = buf.first() else {
        return Sniffed::NeedMore;
    };
    if first == 0x16 {
        return match buf.get(1) {
            None => Sniffed::NeedMore,
            Some(3) => Sniffed::Tls,
            Some(_) => Sniffed::Opaque,
        };
    }
    let n = buf.len().min(H2_PREFACE.len());
    if buf[..n] == H2_PREFACE[..n] {
        return if n == H2_PREFACE.len() {
            Sniffed::Http2
        } else {
            Sniffed::NeedMore
        };
    }
    http1(buf)
}

/// Longest request target read before the HTTP parser is left to judge.
const MAX_TARGET: usize = 8 * 1024;

const HTTP1_VERSION: &[u8] = b"HTTP/1.";

/// An HTTP/1 request line: a method token (RFC 9110 tchar; in practice
/// upper-case letters), one space, a request target of visible bytes, one
/// space, then `HTTP/1.` and a digit. Waiting for the version keeps text
/// protocols whose commands look like a method (Redis `SET k v`, SMTP
/// `HELO host`) out of the HTTP parser: they are relayed, not answered 400.
fn http1(buf: &[u8]) -> Sniffed {
    let mut sp = 0;
    loop {
        match buf.get(sp) {
            None => return Sniffed::NeedMore,
            Some(b'A'..=b'Z' | b'-' | b'_') if sp < MAX_METHOD => sp += 1,
            Some(b' ') if sp > 0 => break,
            Some(_) => return Sniffed::Opaque,
        }
    }
    let target = sp + 1;
    let mut end = target;
    loop {
        match buf.get(end) {
            None => return Sniffed::NeedMore,
            Some(b' ') if end > target => break,
            Some(0x21..=0x7e | 0x80..=0xff) if end - target < MAX_TARGET => end += 1,
            // A target this long is HTTP or nothing we could tell apart.
            Some(0x21..=0x7e | 0x80..=0xff) => return Sniffed::Http1,
            Some(_) => return Sniffed::Opaque,
        }
    }
    let version = buf.get(end + 1..).unwrap_or_default();
    let n = version.len().min(HTTP1_VERSION.len());
    if version[..n] != HTTP1_VERSION[..n] {
        return Sniffed::Opaque;
    }
    match version.get(HTTP1_VERSION.len()) {
        None => Sniffed::NeedMore,
        Some(b'0'..=b'9') => Sniffed::Http1,
        Some(_) => Sniffed::Opaque,
    }
}

/// Facts read from a TLS ClientHello without terminating the session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Hello {
    pub(crate) sni: Option<String>,
    pub(crate) alpn: Vec<String>,
}

/// Result of reading a ClientHello from buffered bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HelloParse {
    /// The full ClientHello was read.
    Done(Hello),
    /// More bytes are needed.
    NeedMore,
    /// The bytes are not a valid ClientHello.
    Invalid,
}

/// Parses a ClientHello using rustls's own parser (no hand-written TLS
/// parsing); the bytes are only inspected, the caller still forwards them.
pub(crate) fn client_hello(buf: &[u8]) -> HelloParse {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut rd: &[u8] = buf;
    while !rd.is_empty() {
        match acceptor.read_tls(&mut rd) {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => return HelloParse::Invalid,
        }
    }
    match acceptor.accept() {
        Ok(Some(accepted)) => {
            let ch = accepted.client_hello();
            HelloParse::Done(Hello {
                sni: ch.server_name().map(str::to_owned),
                alpn: ch
                    .alpn()
                    .map(|it| {
                        it.map(|p| String::from_utf8_lossy(p).into_owned())
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        }
        Ok(None) => HelloParse::NeedMore,
        Err(_) => HelloParse::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_common_openings() {
        assert_eq!(sniff(b""), Sniffed::NeedMore);
        assert_eq!(sniff(b"GET / HTTP/1.1\r\n"), Sniffed::Http1);
        assert_eq!(sniff(b"POST"), Sniffed::NeedMore);
        assert_eq!(sniff(b"M-SEARCH * HTTP/1.1"), Sniffed::Http1);
        assert_eq!(sniff(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Sniffed::Http2);
        assert_eq!(sniff(b"PRI * HT"), Sniffed::NeedMore);
        assert_eq!(sniff(&[0x16, 0x03, 0x01]), Sniffed::Tls);
        assert_eq!(sniff(&[0x16]), Sniffed::NeedMore);
        assert_eq!(sniff(b"\x00\x00\x00\x08\x04\xd2\x16\x2f"), Sniffed::Opaque);
        assert_eq!(sniff(b"*3\r\n$3\r\nSET\r\n"), Sniffed::Opaque);
        assert_eq!(sniff(b" GET"), Sniffed::Opaque);
        assert_eq!(sniff(b"AAAAAAAAAAAAAAAAAAAAAAAA"), Sniffed::Opaque);
    }

    #[test]
    fn an_http1_request_line_needs_its_version() {
        assert_eq!(sniff(b"GET /orders?id=1 HTTP/1.0\r\n"), Sniffed::Http1);
        assert_eq!(sniff(b"OPTIONS * HTTP/1.1"), Sniffed::Http1);
        assert_eq!(sniff(b"GET http://backend:8081/x HTTP/1.1"), Sniffed::Http1);
        // Still arriving: wait for more.
        for partial in [
            &b"GET"[..],
            b"GET ",
            b"GET /a",
            b"GET /a ",
            b"GET /a HTTP/",
            b"GET /a HTTP/1.",
        ] {
            assert_eq!(sniff(partial), Sniffed::NeedMore, "{partial:?}");
        }
        // Text protocols with method-like commands are not HTTP.
        for other in [
            &b"SET key value\r\n"[..],
            b"HELO mail.example.com\r\n",
            b"GET key\r\n",
            b"GET  / HTTP/1.1",
            b"GET / HTTP/2.0\r\n",
            b"GET / HTTP/1.x",
            b"GET /\t HTTP/1.1",
            b"AUTH PLAIN dXNlcg==\r\n",
        ] {
            assert_eq!(sniff(other), Sniffed::Opaque, "{other:?}");
        }
        // A very long target is left to the HTTP parser.
        let mut long = b"GET /".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_TARGET + 1));
        assert_eq!(sniff(&long), Sniffed::Http1);
    }

    #[test]
    fn garbage_is_not_a_client_hello() {
        assert_eq!(
            client_hello(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]),
            HelloParse::Invalid
        );
        assert_eq!(
            client_hello(&[0x16, 0x03, 0x01, 0x02]),
            HelloParse::NeedMore
        );
    }
}

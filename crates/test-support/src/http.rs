//! A deliberately small HTTP/1.1 client over a blocking `TcpStream`: it
//! writes exactly the bytes a test asks for (garbage, huge heads, chunked
//! bodies, `Expect: 100-continue`) and reports what came back, including
//! 1xx responses and whether the body was chunked.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long one read or write may block before the test fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// One response as it arrived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawResponse {
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Header fields in wire order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub body: Vec<u8>,
    /// Trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
    /// Status codes of interim (1xx) responses seen before this one.
    pub informational: Vec<u16>,
    /// True when the body came with `Transfer-Encoding: chunked`.
    pub chunked: bool,
}

impl RawResponse {
    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// First value of `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One client connection.
#[derive(Debug)]
pub struct HttpConn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    addr: SocketAddr,
}

impl HttpConn {
    /// Connects to `addr` with [`IO_TIMEOUT`] on reads and writes.
    pub fn connect(addr: SocketAddr) -> io::Result<Self> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        s.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::with_capacity(64 * 1024, s.try_clone()?),
            writer: s,
            addr,
        })
    }

    /// The local address of this connection (what the proxy records as the client).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.writer.local_addr()
    }

    /// Writes raw bytes.
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Reads exactly `buf.len()` bytes (after a 101, for the upgraded protocol).
    pub fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.reader.read_exact(buf)
    }

    /// Reads until the peer closes.
    pub fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        self.reader.read_to_end(&mut v)?;
        Ok(v)
    }

    fn head(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> String {
        let mut h = format!("{method} {target} HTTP/1.1\r\n");
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            h.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for (n, v) in headers {
            h.push_str(&format!("{n}: {v}\r\n"));
        }
        h
    }

    /// Sends a request with a `Content-Length` body and reads the response.
    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<RawResponse> {
        self.send(method, target, headers, body)?;
        self.read_response(method == "HEAD")
    }

    /// Sends a request with a `Content-Length` body, without reading.
    pub fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<()> {
        let mut h = self.head(method, target, headers);
        if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
            h.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        h.push_str("\r\n");
        self.writer.write_all(h.as_bytes())?;
        self.writer.write_all(body)
    }

    /// Sends a request whose body goes out as the given chunks
    /// (`Transfer-Encoding: chunked`, optional trailers) and reads the response.
    pub fn request_chunked(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        chunks: &[&[u8]],
        trailers: &[(&str, &str)],
    ) -> io::Result<RawResponse> {
        let mut h = self.head(method, target, headers);
        h.push_str("Transfer-Encoding: chunked\r\n\r\n");
        self.writer.write_all(h.as_bytes())?;
        for c in chunks.iter().filter(|c| !c.is_empty()) {
            self.writer
                .write_all(format!("{:x}\r\n", c.len()).as_bytes())?;
            self.writer.write_all(c)?;
            self.writer.write_all(b"\r\n")?;
        }
        let mut end = String::from("0\r\n");
        for (n, v) in trailers {
            end.push_str(&format!("{n}: {v}\r\n"));
        }
        end.push_str("\r\n");
        self.writer.write_all(end.as_bytes())?;
        self.read_response(false)
    }

    fn line(&mut self) -> io::Result<String> {
        let mut buf = Vec::new();
        let n = self.reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a complete response",
            ));
        }
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    fn fields(&mut self) -> io::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        loop {
            let l = self.line()?;
            if l.is_empty() {
                return Ok(out);
            }
            let (n, v) = l.split_once(':').ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad header line {l:?}"))
            })?;
            out.push((n.to_owned(), v.trim().to_owned()));
        }
    }

    /// Reads exactly one status line and its header fields, interim (1xx)
    /// or not; the body, if any, is left unread.
    pub fn read_one_head(&mut self) -> io::Result<RawResponse> {
        let status_line = self.line()?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_owned();
        let status: u16 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {status_line:?}"),
            )
        })?;
        let reason = parts.next().unwrap_or_default().to_owned();
        let headers = self.fields()?;
        Ok(RawResponse {
            version,
            status,
            reason,
            headers,
            ..RawResponse::default()
        })
    }

    /// Reads the status line and header fields of one response, skipping
    /// (and recording) interim 1xx responses other than 101.
    pub fn read_head(&mut self) -> io::Result<RawResponse> {
        let mut informational = Vec::new();
        loop {
            let head = self.read_one_head()?;
            if (100..200).contains(&head.status) && head.status != 101 {
                informational.push(head.status);
                continue;
            }
            return Ok(RawResponse {
                informational,
                ..head
            });
        }
    }

    /// Reads one whole response. `head_request` says the request was HEAD
    /// (no body follows whatever the headers say).
    pub fn read_response(&mut self, head_request: bool) -> io::Result<RawResponse> {
        let mut r = self.read_head()?;
        if head_request || r.status == 101 || r.status == 204 || r.status == 304 {
            return Ok(r);
        }
        let chunked = r
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            r.chunked = true;
            loop {
                let size_line = self.line()?;
                let size_hex = size_line.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(size_hex, 16).map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad chunk size {size_line:?}"),
                    )
                })?;
                if size == 0 {
                    r.trailers = self.fields()?;
                    break;
                }
                let start = r.body.len();
                r.body.resize(start + size, 0);
                self.reader.read_exact(&mut r.body[start..])?;
                let mut crlf = [0u8; 2];
                self.reader.read_exact(&mut crlf)?;
            }
        } else if let Some(len) = r.header("content-length") {
            let len: usize = len.parse().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad content-length {len}"),
                )
            })?;
            r.body.resize(len, 0);
            self.reader.read_exact(&mut r.body)?;
        } else {
            self.reader.read_to_end(&mut r.body)?;
        }
        Ok(r)
    }
}

/// One `GET` on a fresh connection (`Connection: close`).
pub fn get(addr: SocketAddr, target: &str) -> io::Result<RawResponse> {
    HttpConn::connect(addr)?.request("GET", target, &[("Connection", "close")], b"")
}

/// Parses a response head as curl's `-D` or `-i` prints it, keeping only the
/// final (non-1xx) response: `(status, headers)`.
pub fn parse_head(text: &str) -> (u16, Vec<(String, String)>) {
    let mut status = 0;
    let mut headers = Vec::new();
    for line in text.split("\r\n").map(|l| l.trim_end_matches('\n')) {
        if line.starts_with("HTTP/") {
            status = line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            headers.clear();
        } else if let Some((n, v)) = line.split_once(':') {
            headers.push((n.to_owned(), v.trim().to_owned()));
        }
    }
    (status, headers)
}

/// Header names that describe one connection or one moment and so may
/// legitimately differ between a direct and a proxied response.
pub const VOLATILE_HEADERS: &[&str] = &[
    "date",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
];

/// Headers without [`VOLATILE_HEADERS`], names lowercased (HTTP/2 sends
/// them so), sorted by name while the values of one name keep their order:
/// the comparable part of a response.
pub fn comparable_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .filter(|(n, _)| !VOLATILE_HEADERS.contains(&n.as_str()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

//! An exchange's JSON line, written straight from its [`ExchangeView`].
//!
//! The view's serde derive defines the layout, and every serializer but
//! this one goes through it. The JSON Lines encoder writes the same bytes
//! by hand: keys are copied as literals and values go to sonic-rs's vector
//! string escaper, without serde's calls per key and per value. Those
//! calls were about 30% of the capture sink's instructions on a small
//! exchange (6,100 of 20,300, under callgrind; see `docs/benchmarks.md`).
//! The rare parts (TLS facts, TCP flows, enum names, times outside
//! chrono's common shape) still go through serde.
//!
//! Tests hold this writer to serde_json byte for byte, on fixtures and on
//! random exchanges (`tests/codecs.rs`), and so does the `codec_jsonl` fuzz
//! target: a field added to the view but not written here fails them as
//! soon as their exchanges fill it.

use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sonic_rs::format::{CompactFormatter, Formatter};

use crate::view::{ExchangeView, Fields, RequestView, ResponseView, Tags};
use crate::wire_text::{format_timestamp, format_v4, lossy};
use crate::{Body, Service, Upstream};

/// Appends `ex` as one JSON object (no newline).
pub(crate) fn write(out: &mut Vec<u8>, ex: &ExchangeView<'_>) {
    let mut w = Line { out };
    w.raw(b"{\"v\":");
    w.uint(u64::from(ex.v));
    w.raw(b",\"id\":");
    w.quoted(
        ex.id
            .0
            .hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer())
            .as_bytes(),
    );
    w.raw(b",\"start\":");
    w.time(&ex.start);
    w.raw(b",\"duration_us\":");
    w.uint(ex.duration_us);
    w.raw(b",\"direction\":");
    w.serde(&ex.direction);
    w.raw(b",\"service\":");
    w.service(ex.service);
    w.raw(b",\"protocol\":");
    w.serde(&ex.protocol);
    if let Some(a) = &ex.client_addr {
        w.raw(b",\"client_addr\":");
        w.addr(a);
    }
    if let Some(a) = &ex.server_addr {
        w.raw(b",\"server_addr\":");
        w.addr(a);
    }
    w.raw(b",\"upstream\":");
    w.upstream(ex.upstream);
    if let Some(tls) = ex.tls {
        w.raw(b",\"tls\":");
        w.serde(tls);
    }
    if let Some(req) = &ex.request {
        w.raw(b",\"request\":");
        w.request(req);
    }
    if let Some(resp) = &ex.response {
        w.raw(b",\"response\":");
        w.response(resp);
    }
    if let Some(tcp) = ex.tcp {
        w.raw(b",\"tcp\":");
        w.serde(tcp);
    }
    if let Some(error) = ex.error {
        w.raw(b",\"error\":");
        w.str(error);
    }
    if !ex.tags.is_empty() {
        w.raw(b",\"tags\":");
        w.tags(&ex.tags);
    }
    w.raw(b"}");
}

/// The line being written, with one method per part of the layout.
struct Line<'o> {
    out: &'o mut Vec<u8>,
}

impl Line<'_> {
    fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// A JSON string, escaped as serde_json escapes it.
    fn str(&mut self, s: &str) {
        // Also for short strings: a scalar scan of the sink's header names
        // and values for bytes to escape took more instructions than this.
        // Writing into a Vec cannot fail.
        let _ = CompactFormatter.write_string_fast(self.out, s, true);
    }

    /// Bytes that need no escaping, as a JSON string.
    fn quoted(&mut self, bytes: &[u8]) {
        self.out.reserve(bytes.len() + 2);
        self.out.push(b'"');
        self.out.extend_from_slice(bytes);
        self.out.push(b'"');
    }

    fn uint(&mut self, n: u64) {
        self.raw(itoa::Buffer::new().format(n).as_bytes());
    }

    /// Anything else, through its `Serialize`.
    fn serde(&mut self, v: &impl Serialize) {
        // The parts written this way always serialize (no maps with
        // non-string keys, no floats), and writing into a Vec cannot fail.
        let _ = sonic_rs::to_writer(&mut *self.out, v);
    }

    fn time(&mut self, t: &DateTime<Utc>) {
        let mut buf = [0u8; 30];
        match format_timestamp(t, &mut buf) {
            Some(text) => self.quoted(text),
            None => self.serde(t),
        }
    }

    fn addr(&mut self, a: &SocketAddr) {
        match a {
            SocketAddr::V4(v4) => self.quoted(format_v4(v4, &mut [0u8; 21])),
            other => self.str(&other.to_string()),
        }
    }

    fn service(&mut self, s: &Service) {
        self.raw(b"{\"name\":");
        self.str(&s.name);
        for (key, value) in [
            (&b",\"namespace\":"[..], &s.namespace),
            (b",\"pod\":", &s.pod),
            (b",\"node\":", &s.node),
            (b",\"cluster\":", &s.cluster),
        ] {
            if let Some(v) = value {
                self.raw(key);
                self.str(v);
            }
        }
        self.raw(b"}");
    }

    fn upstream(&mut self, u: &Upstream) {
        self.raw(b"{\"host\":");
        self.str(&u.host);
        self.raw(b",\"port\":");
        self.uint(u64::from(u.port));
        self.raw(b"}");
    }

    fn request(&mut self, r: &RequestView<'_>) {
        self.raw(b"{\"method\":");
        self.str(r.method);
        self.raw(b",\"scheme\":");
        self.str(r.scheme);
        self.raw(b",\"authority\":");
        self.str(r.authority);
        self.raw(b",\"path\":");
        self.str(r.path);
        if let Some(q) = r.query {
            self.raw(b",\"query\":");
            self.str(q);
        }
        self.raw(b",\"version\":");
        self.str(r.version);
        self.message_rest(&r.headers, r.body, &r.trailers);
    }

    fn response(&mut self, r: &ResponseView<'_>) {
        self.raw(b"{\"status\":");
        self.uint(u64::from(r.status));
        self.raw(b",\"version\":");
        self.str(r.version);
        self.message_rest(&r.headers, r.body, &r.trailers);
    }

    /// Headers, body and trailers, and the message's closing brace.
    fn message_rest(&mut self, headers: &Fields<'_>, body: &Body, trailers: &Fields<'_>) {
        self.raw(b",\"headers\":");
        self.fields(headers);
        if !body.is_empty() {
            self.raw(b",\"body\":");
            self.body(body);
        }
        if !trailers.is_empty() {
            self.raw(b",\"trailers\":");
            self.fields(trailers);
        }
        self.raw(b"}");
    }

    fn fields(&mut self, fields: &Fields<'_>) {
        self.raw(b"[");
        match fields {
            Fields::Owned(h) => {
                for (i, (name, value)) in h.iter().enumerate() {
                    self.pair(i, |w| w.str(name), value);
                }
            }
            Fields::Raw(pairs) => {
                for (i, (name, value)) in pairs.iter().enumerate() {
                    self.pair(i, |w| w.lower_str(name), &lossy(value));
                }
            }
        }
        self.raw(b"]");
    }

    fn pair(&mut self, i: usize, name: impl FnOnce(&mut Self), value: &str) {
        self.raw(if i == 0 { b"[" } else { b",[" });
        name(self);
        self.raw(b",");
        self.str(value);
        self.raw(b"]");
    }

    /// `name` lower-cased, as a JSON string. Lower-casing the escaped text
    /// is the same as escaping the lower-cased name, because escapes use
    /// only lower-case letters (`\n`, `\u001f`), and it needs no copy.
    fn lower_str(&mut self, name: &str) {
        let at = self.out.len();
        self.str(name);
        self.out[at..].make_ascii_lowercase();
    }

    fn body(&mut self, b: &Body) {
        match b.as_text() {
            Some(text) => {
                self.raw(b"{\"text\":");
                self.str(text);
            }
            None => {
                use base64::Engine as _;
                // The base64 alphabet needs no escaping.
                self.raw(b"{\"base64\":\"");
                let at = self.out.len();
                let len = base64::encoded_len(b.data.len(), true).unwrap_or(0);
                self.out.resize(at + len, 0);
                let written = base64::engine::general_purpose::STANDARD
                    .encode_slice(&b.data, &mut self.out[at..])
                    .unwrap_or(0);
                self.out.truncate(at + written);
                self.raw(b"\"");
            }
        }
        self.raw(b",\"size\":");
        self.uint(b.size);
        if b.truncated {
            self.raw(b",\"truncated\":true");
        }
        self.raw(b"}");
    }

    fn tags(&mut self, tags: &Tags<'_>) {
        self.raw(b"{");
        let mut entry = |i: usize, k: &str, v: &str| {
            if i > 0 {
                self.raw(b",");
            }
            self.str(k);
            self.raw(b":");
            self.str(v);
        };
        match tags {
            Tags::Owned(map) => {
                for (i, (k, v)) in map.iter().enumerate() {
                    entry(i, k, v);
                }
            }
            Tags::Sorted(pairs) => {
                for (i, (k, v)) in pairs.iter().enumerate() {
                    entry(i, k, v);
                }
            }
        }
        self.raw(b"}");
    }
}

//! The JSON layout of an exchange, over borrowed parts.
//!
//! [`Exchange`], [`Request`] and [`Response`] serialize through these
//! views, so the layout is defined here. The capture proxy also
//! fills them straight from the head bytes its fast lane relayed
//! ([`Fields::Raw`]), which spares the sink a copy of every field into a
//! `String` only to write it out and free it: on a small exchange that was
//! a quarter of the sink's time. The JSON Lines encoder writes a view by
//! hand (`line.rs`), and tests hold it to the bytes serde_json writes here.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::wire_text::lossy;
use crate::{
    Body, Direction, Exchange, ExchangeId, Headers, Protocol, Request, Response, Service, TcpFlow,
    TlsInfo, Upstream,
};

/// One exchange as it is written (see `docs/specs/exchange.md`).
#[derive(Debug, Serialize)]
pub struct ExchangeView<'a> {
    /// Schema version.
    pub v: u32,
    /// Unique, time-ordered id.
    pub id: ExchangeId,
    /// When the request's first byte reached the proxy.
    #[serde(serialize_with = "crate::wire_text::timestamp")]
    pub start: DateTime<Utc>,
    /// Microseconds from `start` to the end.
    pub duration_us: u64,
    /// Inbound or outbound.
    pub direction: Direction,
    /// The owning service.
    pub service: &'a Service,
    /// Protocol understood by the proxy.
    pub protocol: Protocol,
    /// Client side of the connection.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::wire_text::socket_addr"
    )]
    pub client_addr: Option<SocketAddr>,
    /// Server side of the connection.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::wire_text::socket_addr"
    )]
    pub server_addr: Option<SocketAddr>,
    /// Where the exchange was addressed.
    pub upstream: &'a Upstream,
    /// TLS facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<&'a TlsInfo>,
    /// The HTTP request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestView<'a>>,
    /// The HTTP response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseView<'a>>,
    /// The TCP flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<&'a TcpFlow>,
    /// What went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    /// Free-form labels.
    #[serde(skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags<'a>,
}

/// A request as it is written.
#[derive(Debug, Serialize)]
pub struct RequestView<'a> {
    /// Method.
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// Host and optional port.
    pub authority: &'a str,
    /// Path without the query.
    pub path: &'a str,
    /// Query without `?`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<&'a str>,
    /// `HTTP/1.1` and so on.
    pub version: &'a str,
    /// Header fields in wire order.
    pub headers: Fields<'a>,
    /// Body as captured.
    #[serde(skip_serializing_if = "body_is_empty")]
    pub body: &'a Body,
    /// Trailer fields.
    #[serde(skip_serializing_if = "Fields::is_empty")]
    pub trailers: Fields<'a>,
}

/// A response as it is written.
#[derive(Debug, Serialize)]
pub struct ResponseView<'a> {
    /// Status code.
    pub status: u16,
    /// `HTTP/1.1` and so on.
    pub version: &'a str,
    /// Header fields in wire order.
    pub headers: Fields<'a>,
    /// Body as captured.
    #[serde(skip_serializing_if = "body_is_empty")]
    pub body: &'a Body,
    /// Trailer fields.
    #[serde(skip_serializing_if = "Fields::is_empty")]
    pub trailers: Fields<'a>,
}

fn body_is_empty(b: &&Body) -> bool {
    b.is_empty()
}

/// Header or trailer fields, written as `[["name","value"], …]`.
#[derive(Debug, Clone, Copy)]
pub enum Fields<'a> {
    /// Fields already decoded.
    Owned(&'a Headers),
    /// Fields as they crossed the wire: names are written lower-cased and
    /// values as UTF-8, invalid sequences replaced (as [`Headers::from_pairs`]
    /// keeps them).
    Raw(&'a [(&'a str, &'a [u8])]),
}

impl Fields<'_> {
    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        match self {
            Fields::Owned(h) => h.is_empty(),
            Fields::Raw(f) => f.is_empty(),
        }
    }

    /// The fields as an owned list, decoded as they are written.
    pub fn to_headers(&self) -> Headers {
        match self {
            Fields::Owned(h) => (*h).clone(),
            Fields::Raw(f) => f
                .iter()
                .map(|(n, v)| (lower(n).into_owned(), lossy(v).into_owned()))
                .collect(),
        }
    }
}

impl Serialize for Fields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Fields::Owned(h) => h.serialize(s),
            Fields::Raw(fields) => {
                let mut seq = s.serialize_seq(Some(fields.len()))?;
                for (name, value) in fields.iter() {
                    seq.serialize_element(&(lower(name), lossy(value)))?;
                }
                seq.end()
            }
        }
    }
}

/// `name` lower-cased, borrowed when it already is.
fn lower(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// Tags, written as a JSON object with keys in sorted order.
#[derive(Debug, Clone, Copy)]
pub enum Tags<'a> {
    /// A map already sorted by key.
    Owned(&'a BTreeMap<String, String>),
    /// Pairs sorted by key with no key twice (see [`Tags::sort`]).
    Sorted(&'a [(&'a str, &'a str)]),
}

impl Tags<'_> {
    /// True when there are no tags.
    pub fn is_empty(&self) -> bool {
        match self {
            Tags::Owned(m) => m.is_empty(),
            Tags::Sorted(p) => p.is_empty(),
        }
    }

    /// Orders `pairs` for [`Tags::Sorted`]: by key, and where a key comes
    /// twice the later pair wins, as inserting them into a map would.
    pub fn sort(pairs: &mut Vec<(&str, &str)>) {
        // A stable sort keeps the pairs of one key in insertion order;
        // each run then folds into its last value.
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        pairs.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                *kept = *later;
            }
            same
        });
    }
}

impl Serialize for Tags<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Tags::Owned(m) => m.serialize(s),
            Tags::Sorted(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs.iter() {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl Exchange {
    /// This exchange as it is written.
    pub fn view(&self) -> ExchangeView<'_> {
        ExchangeView {
            v: self.v,
            id: self.id,
            start: self.start,
            duration_us: self.duration_us,
            direction: self.direction,
            service: &self.service,
            protocol: self.protocol,
            client_addr: self.client_addr,
            server_addr: self.server_addr,
            upstream: &self.upstream,
            tls: self.tls.as_ref(),
            request: self.request.as_ref().map(Request::view),
            response: self.response.as_ref().map(Response::view),
            tcp: self.tcp.as_ref(),
            error: self.error.as_deref(),
            tags: Tags::Owned(&self.tags),
        }
    }
}

impl Request {
    /// This request as it is written.
    pub fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            scheme: &self.scheme,
            authority: &self.authority,
            path: &self.path,
            query: self.query.as_deref(),
            version: &self.version,
            headers: Fields::Owned(&self.headers),
            body: &self.body,
            trailers: Fields::Owned(&self.trailers),
        }
    }
}

impl Response {
    /// This response as it is written.
    pub fn view(&self) -> ResponseView<'_> {
        ResponseView {
            status: self.status,
            version: &self.version,
            headers: Fields::Owned(&self.headers),
            body: &self.body,
            trailers: Fields::Owned(&self.trailers),
        }
    }
}

impl ExchangeView<'_> {
    /// The exchange as an owned value, as decoding its JSON would give.
    pub fn to_exchange(&self) -> Exchange {
        Exchange {
            v: self.v,
            id: self.id,
            start: self.start,
            duration_us: self.duration_us,
            direction: self.direction,
            service: self.service.clone(),
            protocol: self.protocol,
            client_addr: self.client_addr,
            server_addr: self.server_addr,
            upstream: self.upstream.clone(),
            tls: self.tls.cloned(),
            request: self.request.as_ref().map(RequestView::to_request),
            response: self.response.as_ref().map(ResponseView::to_response),
            tcp: self.tcp.cloned(),
            error: self.error.map(str::to_owned),
            tags: match self.tags {
                Tags::Owned(m) => m.clone(),
                Tags::Sorted(pairs) => pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            },
        }
    }
}

impl RequestView<'_> {
    /// The request as an owned value, as decoding its JSON would give.
    pub fn to_request(&self) -> Request {
        Request {
            method: self.method.to_owned(),
            scheme: self.scheme.to_owned(),
            authority: self.authority.to_owned(),
            path: self.path.to_owned(),
            query: self.query.map(str::to_owned),
            version: self.version.to_owned(),
            headers: self.headers.to_headers(),
            body: self.body.clone(),
            trailers: self.trailers.to_headers(),
        }
    }
}

impl ResponseView<'_> {
    /// The response as an owned value, as decoding its JSON would give.
    pub fn to_response(&self) -> Response {
        Response {
            status: self.status,
            version: self.version.to_owned(),
            headers: self.headers.to_headers(),
            body: self.body.clone(),
            trailers: self.trailers.to_headers(),
        }
    }
}

impl Serialize for Exchange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.view().serialize(s)
    }
}

impl Serialize for Request {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.view().serialize(s)
    }
}

impl Serialize for Response {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.view().serialize(s)
    }
}

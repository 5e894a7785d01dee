//! HAR 1.2 export and import.
//!
//! [`export`] turns HTTP exchanges into a HAR document that browsers' dev
//! tools and HAR viewers open, and hides everything HAR cannot express in a
//! `_tapwire` object on each entry, so that [`import`] gives back exactly the
//! exchanges that were exported. [`import`] also reads HAR written by other
//! tools (browsers, mitmproxy, Charles), filling the facts they lack from
//! [`ImportOptions`]. The mapping is specified in `docs/specs/exchange.md`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

use base64::Engine as _;
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    Body, Direction, Exchange, ExchangeId, Headers, Protocol, Request, Response, Service, TcpFlow,
    TlsInfo, Upstream, SCHEMA_VERSION,
};

/// HAR format version written in `log.version`.
pub const HAR_VERSION: &str = "1.2";

/// Name written in `log.creator.name`.
pub const CREATOR_NAME: &str = "tapwire";

/// Value of `postData.encoding` / `content.encoding` for base64 bodies.
const BASE64: &str = "base64";

/// A HAR document: the top-level object of a `.har` file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Har {
    /// The only member HAR defines at the top level.
    pub log: Log,
}

/// `log`: the exporter and the entries.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Log {
    /// HAR version, [`HAR_VERSION`].
    pub version: String,
    /// The program that wrote the file.
    pub creator: Creator,
    /// One entry per exported exchange, in the order given to [`export`].
    pub entries: Vec<Entry>,
}

/// `log.creator`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Creator {
    /// Program name, [`CREATOR_NAME`].
    pub name: String,
    /// Program version.
    pub version: String,
}

/// `log.entries[]`: one HTTP exchange.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// When the request started, RFC 3339 in UTC with as many fractional
    /// digits as the capture had (0, 3, 6 or 9).
    pub started_date_time: String,
    /// Whole exchange duration in milliseconds.
    pub time: f64,
    /// The request.
    pub request: HarRequest,
    /// The response; status 0 when there was none.
    pub response: HarResponse,
    /// Always empty: tapwire knows nothing about caches.
    pub cache: Cache,
    /// Timings; tapwire only knows the total, which goes to `wait`.
    pub timings: Timings,
    /// IP address of the server side of the connection, when known.
    #[serde(rename = "serverIPAddress", skip_serializing_if = "Option::is_none")]
    pub server_ip_address: Option<String>,
    /// Client port of the connection, when known (HAR allows either port).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// Everything a round trip needs that HAR has no field for.
    #[serde(rename = "_tapwire")]
    pub tapwire: TapwireExt,
}

/// `request`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HarRequest {
    /// Method as sent.
    pub method: String,
    /// Absolute URL, `scheme://authority/path?query`.
    pub url: String,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0`, as captured.
    pub http_version: String,
    /// Cookies from the `Cookie` header fields (name and value only).
    pub cookies: Vec<NameValue>,
    /// Header fields in wire order, duplicates kept.
    pub headers: Vec<NameValue>,
    /// Query pairs, form-decoded (`+` is a space, `%XX` decoded, lossy UTF-8).
    pub query_string: Vec<NameValue>,
    /// The body, absent when no body bytes were captured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_data: Option<PostData>,
    /// Always -1: tapwire does not keep the header block's size.
    pub headers_size: i64,
    /// Body size on the wire.
    pub body_size: i64,
}

/// `response`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HarResponse {
    /// Status code, 0 when there was no response.
    pub status: u16,
    /// Canonical reason phrase of `status` (empty for unknown codes).
    pub status_text: String,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0`, as captured.
    pub http_version: String,
    /// Cookies from the `Set-Cookie` header fields (name and value only).
    pub cookies: Vec<NameValue>,
    /// Header fields in wire order, duplicates kept.
    pub headers: Vec<NameValue>,
    /// The body.
    pub content: Content,
    /// The `Location` header, or empty.
    #[serde(rename = "redirectURL")]
    pub redirect_url: String,
    /// Always -1: tapwire does not keep the header block's size.
    pub headers_size: i64,
    /// Body size on the wire.
    pub body_size: i64,
    /// Why there was no response (Chrome's convention for status 0).
    #[serde(rename = "_error", skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A `{name, value}` pair: a header field, a query pair or a cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameValue {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// `request.postData`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostData {
    /// The request's `Content-Type`, or empty.
    pub mime_type: String,
    /// The captured bytes: as is when UTF-8, else base64.
    pub text: String,
    /// `base64` when `text` is base64 (the HAR 1.3 draft field most tools read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
}

/// `response.content`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    /// Body size on the wire (tapwire does not undo `Content-Encoding`).
    pub size: u64,
    /// The response's `Content-Type`, or empty.
    pub mime_type: String,
    /// The captured bytes, still content-encoded: as is when UTF-8, else
    /// base64. Absent when no body bytes were captured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `base64` when `text` is base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
}

/// `cache`: always `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cache {}

/// `timings`, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Always 0.
    pub send: f64,
    /// The whole exchange duration.
    pub wait: f64,
    /// Always 0.
    pub receive: f64,
}

/// `_tapwire`: the exchange fields HAR cannot carry. Standard HAR fields hold
/// the method, URL path and query, versions, headers, status, body bytes and
/// start time; this object holds the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TapwireExt {
    /// Exchange schema version.
    pub v: u32,
    /// Exchange id.
    pub id: ExchangeId,
    /// Inbound or outbound.
    pub direction: Direction,
    /// Owning service.
    pub service: Service,
    /// Protocol the proxy understood.
    pub protocol: Protocol,
    /// Exact duration; `time` is the same value in (float) milliseconds.
    pub duration_us: u64,
    /// Client side of the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<SocketAddr>,
    /// Server side of the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_addr: Option<SocketAddr>,
    /// Where the exchange was addressed.
    pub upstream: Upstream,
    /// TLS facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    /// Request scheme; `request.url` starts with `scheme://authority`.
    pub scheme: String,
    /// Request authority.
    pub authority: String,
    /// Request path, only when it holds a `?` and so cannot be told from the
    /// query in `request.url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Request body size, truncation and trailers.
    pub request: MessageExt,
    /// Response body size, truncation and trailers; absent when the
    /// exchange had no response (the HAR response is then a status-0 stub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<MessageExt>,
    /// A TCP flow recorded beside the HTTP request (not produced by the proxy
    /// today, kept so that no exchange loses data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpFlow>,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// Per-message facts of [`TapwireExt`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageExt {
    /// Body size on the wire; the HAR text holds at most this many bytes.
    pub size: u64,
    /// True when the HAR text is only a prefix of the body.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Trailer fields.
    #[serde(default, skip_serializing_if = "Headers::is_empty")]
    pub trailers: Headers,
}

/// The result of [`export`].
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    /// The document.
    pub har: Har,
    /// Exchanges left out because they had no HTTP request (TCP flows).
    pub skipped_tcp: usize,
}

/// Builds a HAR document from the HTTP exchanges in `exchanges`, in order.
/// Exchanges without a request (TCP flows) have no HAR form: they are
/// skipped and counted.
pub fn export(exchanges: &[Exchange], creator_version: &str) -> Export {
    let mut entries = Vec::with_capacity(exchanges.len());
    let mut skipped_tcp = 0;
    for ex in exchanges {
        match &ex.request {
            Some(req) => entries.push(export_entry(ex, req)),
            None => skipped_tcp += 1,
        }
    }
    Export {
        har: Har {
            log: Log {
                version: HAR_VERSION.to_owned(),
                creator: Creator {
                    name: CREATOR_NAME.to_owned(),
                    version: creator_version.to_owned(),
                },
                entries,
            },
        },
        skipped_tcp,
    }
}

/// Writes `har` as pretty-printed JSON (HAR files are read by people too).
pub fn to_writer<W: Write>(w: W, har: &Har) -> std::io::Result<()> {
    serde_json::to_writer_pretty(w, har).map_err(std::io::Error::from)
}

/// `har` as pretty-printed JSON.
pub fn to_string(har: &Har) -> String {
    // Serializing cannot fail: every map key is a string and every float
    // is finite.
    serde_json::to_string_pretty(har).unwrap_or_default()
}

fn export_entry(ex: &Exchange, req: &Request) -> Entry {
    let time = ex.duration_us as f64 / 1000.0;
    let request = HarRequest {
        method: req.method.clone(),
        url: req.url(),
        http_version: req.version.clone(),
        cookies: request_cookies(&req.headers),
        headers: name_values(&req.headers),
        query_string: req.query.as_deref().map(query_pairs).unwrap_or_default(),
        post_data: (!req.body.data.is_empty()).then(|| {
            let (text, encoding) = body_text(&req.body);
            PostData {
                mime_type: req.headers.get("content-type").unwrap_or("").to_owned(),
                text,
                encoding,
            }
        }),
        headers_size: -1,
        body_size: wire_size(req.body.size),
    };
    let response = match &ex.response {
        Some(resp) => {
            let (text, encoding) = if resp.body.data.is_empty() {
                (None, None)
            } else {
                let (t, e) = body_text(&resp.body);
                (Some(t), e)
            };
            HarResponse {
                status: resp.status,
                status_text: reason_phrase(resp.status).to_owned(),
                http_version: resp.version.clone(),
                cookies: response_cookies(&resp.headers),
                headers: name_values(&resp.headers),
                content: Content {
                    size: resp.body.size,
                    mime_type: resp.headers.get("content-type").unwrap_or("").to_owned(),
                    text,
                    encoding,
                },
                redirect_url: resp.headers.get("location").unwrap_or("").to_owned(),
                headers_size: -1,
                body_size: wire_size(resp.body.size),
                error: None,
            }
        }
        None => HarResponse {
            status: 0,
            status_text: String::new(),
            http_version: String::new(),
            cookies: Vec::new(),
            headers: Vec::new(),
            content: Content {
                size: 0,
                mime_type: String::new(),
                text: None,
                encoding: None,
            },
            redirect_url: String::new(),
            headers_size: -1,
            body_size: -1,
            error: ex.error.clone(),
        },
    };
    Entry {
        started_date_time: ex.start.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        time,
        request,
        response,
        cache: Cache {},
        timings: Timings {
            send: 0.0,
            wait: time,
            receive: 0.0,
        },
        server_ip_address: ex.server_addr.map(|a| a.ip().to_string()),
        connection: ex.client_addr.map(|a| a.port().to_string()),
        tapwire: TapwireExt {
            v: ex.v,
            id: ex.id,
            direction: ex.direction,
            service: ex.service.clone(),
            protocol: ex.protocol,
            duration_us: ex.duration_us,
            client_addr: ex.client_addr,
            server_addr: ex.server_addr,
            upstream: ex.upstream.clone(),
            tls: ex.tls.clone(),
            scheme: req.scheme.clone(),
            authority: req.authority.clone(),
            path: req.path.contains('?').then(|| req.path.clone()),
            request: message_ext(&req.body, &req.trailers),
            response: ex
                .response
                .as_ref()
                .map(|r| message_ext(&r.body, &r.trailers)),
            tcp: ex.tcp.clone(),
            error: ex.error.clone(),
            tags: ex.tags.clone(),
        },
    }
}

fn message_ext(body: &Body, trailers: &Headers) -> MessageExt {
    MessageExt {
        size: body.size,
        truncated: body.truncated,
        trailers: trailers.clone(),
    }
}

fn wire_size(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

fn body_text(body: &Body) -> (String, Option<String>) {
    match std::str::from_utf8(&body.data) {
        Ok(t) => (t.to_owned(), None),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(&body.data),
            Some(BASE64.to_owned()),
        ),
    }
}

fn name_values(h: &Headers) -> Vec<NameValue> {
    h.iter().map(|(n, v)| nv(n, v)).collect()
}

fn nv(name: &str, value: &str) -> NameValue {
    NameValue {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

fn request_cookies(h: &Headers) -> Vec<NameValue> {
    h.get_all("cookie")
        .flat_map(|v| v.split(';'))
        .filter_map(cookie_pair)
        .collect()
}

fn response_cookies(h: &Headers) -> Vec<NameValue> {
    // Only the leading `name=value` of each Set-Cookie: the attributes have
    // HAR fields, but nothing tapwire does reads them back.
    h.get_all("set-cookie")
        .filter_map(|v| v.split(';').next())
        .filter_map(cookie_pair)
        .collect()
}

fn cookie_pair(s: &str) -> Option<NameValue> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (n, v) = s.split_once('=').unwrap_or((s, ""));
    Some(nv(n.trim(), v.trim()))
}

fn query_pairs(q: &str) -> Vec<NameValue> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            NameValue {
                name: form_decode(n),
                value: form_decode(v),
            }
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding; a `%` not followed by two
/// hex digits is kept as is, like browsers do.
fn form_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The reason phrase RFC 9110 (and the IANA registry) gives `status`, or ""
/// for a code without one.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

// ---------------------------------------------------------------- import

/// Why a HAR document could not be imported. Entry errors name the entry
/// by its index in `log.entries` and the field by its JSON path.
#[derive(Debug, thiserror::Error)]
pub enum HarError {
    /// The bytes are not a JSON document.
    #[error("not a HAR file: invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The JSON lacks the HAR envelope (`log`, `log.entries`).
    #[error("not a HAR file: {field}: {reason}")]
    Envelope {
        /// JSON path of the bad member.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// One entry cannot be made into an exchange.
    #[error("{}: {reason}", entry_path(*index, field))]
    Entry {
        /// 0-based index in `log.entries`.
        index: usize,
        /// JSON path of the bad member below the entry (`request.url`);
        /// empty when the entry itself is wrong.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An entry was exported by a newer tapwire.
    #[error("log.entries[{index}]._tapwire.v: exchange schema version {found} is newer than this build understands ({SCHEMA_VERSION}); upgrade tapwire")]
    Version {
        /// 0-based index in `log.entries`.
        index: usize,
        /// The version found.
        found: u64,
    },
}

/// How to fill in what a foreign HAR file (one without `_tapwire`) does not
/// say. Entries written by tapwire carry their own values and ignore these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// Direction of imported exchanges. Defaults to outbound: a browser or
    /// proxy recording shows calls to servers, which tapwire serves back
    /// as mocks.
    pub default_direction: Direction,
    /// Service that owns imported exchanges. Defaults to the name `har`.
    pub service: Service,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            default_direction: Direction::Outbound,
            service: Service {
                name: "har".to_owned(),
                ..Service::default()
            },
        }
    }
}

/// The result of [`import`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// One exchange per imported entry, in entry order.
    pub exchanges: Vec<Exchange>,
    /// Indices of foreign entries skipped because their URL is not HTTP
    /// (`data:`, `blob:`, `chrome-extension:`, …).
    pub skipped: Vec<usize>,
}

/// Reads a HAR document. Entries with `_tapwire` become exactly the
/// exchanges [`export`] was given; other entries are mapped as the spec
/// describes, using `opts`. Unknown members are ignored; the first entry
/// that cannot be mapped fails the whole import, naming the entry and field.
pub fn import(bytes: &[u8], opts: &ImportOptions) -> Result<Import, HarError> {
    let doc: Value = serde_json::from_slice(bytes).map_err(HarError::Json)?;
    let log = match doc.get("log") {
        Some(l) if l.is_object() => l,
        Some(l) => {
            return Err(envelope(
                "log",
                format!("expected an object, found {}", kind(l)),
            ))
        }
        None => return Err(envelope("log", "missing".to_owned())),
    };
    let entries = match log.get("entries") {
        Some(Value::Array(a)) => a,
        Some(e) => {
            return Err(envelope(
                "log.entries",
                format!("expected an array, found {}", kind(e)),
            ));
        }
        None => return Err(envelope("log.entries", "missing".to_owned())),
    };
    let creator = log.pointer("/creator/name").and_then(Value::as_str);

    let mut out = Import {
        exchanges: Vec::with_capacity(entries.len()),
        skipped: Vec::new(),
    };
    for (index, v) in entries.iter().enumerate() {
        let entry = Node {
            v,
            path: String::new(),
        };
        match import_entry(entry, opts, creator) {
            Ok(Some(ex)) => out.exchanges.push(ex),
            Ok(None) => out.skipped.push(index),
            Err(Bad::Field { field, reason }) => {
                return Err(HarError::Entry {
                    index,
                    field,
                    reason,
                });
            }
            Err(Bad::Version(found)) => return Err(HarError::Version { index, found }),
        }
    }
    Ok(out)
}

fn entry_path(index: usize, field: &str) -> String {
    if field.is_empty() {
        format!("log.entries[{index}]")
    } else {
        format!("log.entries[{index}].{field}")
    }
}

fn envelope(field: &'static str, reason: String) -> HarError {
    HarError::Envelope { field, reason }
}

/// What is wrong inside one entry; [`import`] adds the entry's index.
enum Bad {
    Field { field: String, reason: String },
    Version(u64),
}

type Res<T> = Result<T, Bad>;

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON value and its path below the entry, so that every error can say
/// exactly which member was wrong (serde's derive errors cannot).
struct Node<'v> {
    v: &'v Value,
    path: String,
}

impl<'v> Node<'v> {
    fn fail(&self, reason: impl Into<String>) -> Bad {
        Bad::Field {
            field: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn join(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn expected(&self, what: &str) -> Bad {
        self.fail(format!("expected {what}, found {}", kind(self.v)))
    }

    fn obj(self) -> Res<Self> {
        if self.v.is_object() {
            Ok(self)
        } else {
            Err(self.expected("an object"))
        }
    }

    /// A member of this object; `null` counts as absent because several
    /// exporters write it for unknown values.
    fn child(&self, key: &str) -> Option<Node<'v>> {
        match self.v.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(Node {
                v,
                path: self.join(key),
            }),
        }
    }

    fn req(&self, key: &str) -> Res<Node<'v>> {
        self.child(key).ok_or_else(|| Bad::Field {
            field: self.join(key),
            reason: "missing".to_owned(),
        })
    }

    fn str(&self) -> Res<&'v str> {
        self.v.as_str().ok_or_else(|| self.expected("a string"))
    }

    fn f64(&self) -> Res<f64> {
        self.v.as_f64().ok_or_else(|| self.expected("a number"))
    }

    fn items(&self) -> Res<Vec<Node<'v>>> {
        let a = self.v.as_array().ok_or_else(|| self.expected("an array"))?;
        Ok(a.iter()
            .enumerate()
            .map(|(i, v)| Node {
                v,
                path: format!("{}[{i}]", self.path),
            })
            .collect())
    }

    fn opt_str(&self, key: &str) -> Res<Option<&'v str>> {
        self.child(key).map(|n| n.str()).transpose()
    }
}

/// The members every entry needs, whoever wrote it.
struct Common<'v> {
    entry: Node<'v>,
    start: DateTime<Utc>,
    request: Node<'v>,
    response: Node<'v>,
    method: String,
    url: Node<'v>,
    req_version: &'v str,
    req_headers: Headers,
    /// `postData.text`, decoded; `None` without one.
    req_data: Option<Vec<u8>>,
}

fn import_entry(e: Node<'_>, opts: &ImportOptions, creator: Option<&str>) -> Res<Option<Exchange>> {
    let e = e.obj()?;
    let started = e.req("startedDateTime")?;
    let start =
        parse_time(started.str()?).ok_or_else(|| started.fail("not an RFC 3339 date-time"))?;
    let request = e.req("request")?.obj()?;
    let response = e.req("response")?.obj()?;
    let method = request.req("method")?.str()?.to_owned();
    let url = request.req("url")?;
    url.str()?;
    let req_version = request.opt_str("httpVersion")?.unwrap_or("");
    let req_headers = headers(&request)?;
    let req_data = match request.child("postData") {
        Some(p) => body_bytes(&p.obj()?)?,
        None => None,
    };
    let ext = e.child("_tapwire").map(tapwire_ext).transpose()?;
    let c = Common {
        entry: e,
        start,
        request,
        response,
        method,
        url,
        req_version,
        req_headers,
        req_data,
    };
    match ext {
        Some(ext) => own_entry(c, ext).map(Some),
        None => foreign_entry(c, opts, creator),
    }
}

/// An entry [`export`] wrote: the exchange it came from.
fn own_entry(c: Common<'_>, ext: TapwireExt) -> Res<Exchange> {
    let Common {
        start,
        request,
        response,
        method,
        url,
        req_version,
        req_headers,
        req_data,
        ..
    } = c;
    let (path, query) = split_own_url(url.str()?, &ext).map_err(|r| url.fail(r))?;
    let req_body = own_body(
        req_data.unwrap_or_default(),
        &ext.request,
        &request,
        "postData.text",
    )?;
    let response = match &ext.response {
        None => None,
        Some(meta) => {
            let content = response.req("content")?.obj()?;
            let data = body_bytes(&content)?.unwrap_or_default();
            Some(Response {
                status: status(&response)?,
                version: response.opt_str("httpVersion")?.unwrap_or("").to_owned(),
                headers: headers(&response)?,
                body: own_body(data, meta, &response, "content.text")?,
                trailers: meta.trailers.clone(),
            })
        }
    };
    let request = Request {
        method,
        scheme: ext.scheme,
        authority: ext.authority,
        path,
        query,
        version: req_version.to_owned(),
        headers: req_headers,
        body: req_body,
        trailers: ext.request.trailers,
    };
    Ok(Exchange {
        v: ext.v,
        id: ext.id,
        start,
        duration_us: ext.duration_us,
        direction: ext.direction,
        service: ext.service,
        protocol: ext.protocol,
        client_addr: ext.client_addr,
        server_addr: ext.server_addr,
        upstream: ext.upstream,
        tls: ext.tls,
        request: Some(request),
        response,
        tcp: ext.tcp,
        error: ext.error,
        tags: ext.tags,
    })
}

/// An entry another tool wrote, mapped as the spec says; `None` when its URL
/// is not HTTP.
fn foreign_entry(
    c: Common<'_>,
    opts: &ImportOptions,
    creator: Option<&str>,
) -> Res<Option<Exchange>> {
    let Common {
        entry: e,
        start,
        request,
        response,
        method,
        url,
        req_version,
        req_headers,
        req_data,
    } = c;
    let Some(target) = parse_url(url.str()?).map_err(|r| url.fail(r))? else {
        return Ok(None);
    };
    let duration_us = match e.child("time") {
        // Some tools write -1 for unknown; the cast saturates on huge values.
        Some(t) => (t.f64()?.max(0.0) * 1000.0).round() as u64,
        None => 0,
    };
    let version = normalize_version(if req_version.is_empty() {
        response.opt_str("httpVersion")?.unwrap_or("")
    } else {
        req_version
    });
    let req_headers: Headers = req_headers
        .0
        .into_iter()
        .filter(|(n, _)| !n.starts_with(':'))
        .collect();
    let protocol = match version {
        "HTTP/2.0"
            if req_headers
                .get("content-type")
                .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/grpc")) =>
        {
            Protocol::Grpc
        }
        "HTTP/2.0" => Protocol::Http2,
        _ => Protocol::Http1,
    };
    let req_body = match req_data {
        Some(d) => Body::complete(d),
        None => unknown_body(request.child("bodySize")),
    };
    let status_code = status(&response)?;
    let (resp, error) = if status_code == 0 {
        let why = response
            .opt_str("_error")?
            .or(e.opt_str("_error")?)
            .unwrap_or("no response recorded (status 0)");
        (None, Some(why.to_owned()))
    } else {
        let content = response.req("content")?.obj()?;
        let mut headers: Headers = headers(&response)?
            .0
            .into_iter()
            .filter(|(n, _)| !n.starts_with(':'))
            .collect();
        let body = match body_bytes(&content)? {
            Some(d) => {
                if headers.get("content-encoding").is_some() {
                    headers = decoded_headers(headers, d.len());
                }
                Body::complete(d)
            }
            None => unknown_body(content.child("size")),
        };
        let resp = Response {
            status: status_code,
            version: version.to_owned(),
            headers,
            body,
            trailers: Headers::new(),
        };
        (Some(resp), None)
    };
    let server_addr = e
        .opt_str("serverIPAddress")?
        .and_then(|ip| {
            ip.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .ok()
        })
        .map(|ip| SocketAddr::new(ip, target.port));
    let tls = (target.scheme == "https").then(|| TlsInfo {
        sni: target
            .host
            .parse::<IpAddr>()
            .is_err()
            .then(|| target.host.to_owned()),
        alpn: vec![if version == "HTTP/2.0" {
            "h2"
        } else {
            "http/1.1"
        }
        .to_owned()],
        intercepted: true,
    });
    let mut tags = BTreeMap::new();
    if let Some(c) = creator {
        tags.insert("har_creator".to_owned(), c.to_owned());
    }
    Ok(Some(Exchange {
        v: SCHEMA_VERSION,
        id: id_at(start),
        start,
        duration_us,
        direction: opts.default_direction,
        service: opts.service.clone(),
        protocol,
        client_addr: None,
        server_addr,
        upstream: Upstream {
            host: target.host.to_owned(),
            port: target.port,
        },
        tls,
        request: Some(Request {
            method,
            scheme: target.scheme.to_owned(),
            authority: target.authority.to_owned(),
            path: target.path.to_owned(),
            query: target.query.map(str::to_owned),
            version: version.to_owned(),
            headers: req_headers,
            body: req_body,
            trailers: Headers::new(),
        }),
        response: resp,
        tcp: None,
        error,
        tags,
    }))
}

/// Headers for a body whose `Content-Encoding` was undone. Foreign tools
/// store bodies "HTTP decoded", so the original fields would lie to a client.
fn decoded_headers(headers: Headers, len: usize) -> Headers {
    let len = len.to_string();
    headers
        .0
        .into_iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("content-encoding"))
        .map(|(n, v)| {
            if n.eq_ignore_ascii_case("content-length") {
                (n, len.clone())
            } else {
                (n, v)
            }
        })
        .collect()
}

fn tapwire_ext(n: Node<'_>) -> Res<TapwireExt> {
    let n = n.obj()?;
    // Check the version first so that a newer entry gets the helpful error
    // rather than an "unknown field" one.
    if let Some(v) = n.v.get("v").and_then(Value::as_u64) {
        if v > u64::from(SCHEMA_VERSION) {
            return Err(Bad::Version(v));
        }
    }
    TapwireExt::deserialize(n.v).map_err(|e| n.fail(e.to_string()))
}

/// Path and query of a URL that [`export`] built from `ext`.
fn split_own_url(url: &str, ext: &TapwireExt) -> Result<(String, Option<String>), String> {
    let prefix = format!("{}://{}", ext.scheme, ext.authority);
    let rest = url.strip_prefix(&prefix).ok_or_else(|| {
        format!("does not start with `{prefix}` (from _tapwire.scheme and _tapwire.authority)")
    })?;
    let (path, query) = match &ext.path {
        None => match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        },
        Some(p) => match rest.strip_prefix(p.as_str()) {
            Some("") => (p.as_str(), None),
            Some(r) => match r.strip_prefix('?') {
                Some(q) => (p.as_str(), Some(q)),
                None => return Err(format!("does not continue `{prefix}` with _tapwire.path")),
            },
            None => return Err(format!("does not continue `{prefix}` with _tapwire.path")),
        },
    };
    Ok((path.to_owned(), query.map(str::to_owned)))
}

/// A body of an entry written by tapwire: the HAR text with the size and
/// truncation `_tapwire` recorded.
fn own_body(data: Vec<u8>, meta: &MessageExt, parent: &Node<'_>, field: &str) -> Res<Body> {
    let len = data.len() as u64;
    if len > meta.size {
        return Err(Bad::Field {
            field: parent.join(field),
            reason: format!(
                "holds {len} bytes but _tapwire says the body had {}",
                meta.size
            ),
        });
    }
    // Same rule as the JSON Lines form: fewer bytes than the size means a prefix.
    Ok(Body {
        data: data.into(),
        size: meta.size,
        truncated: meta.truncated || len < meta.size,
    })
}

/// A foreign body whose bytes the file does not hold: empty, but when the
/// file gives a positive size, marked truncated so that nobody mistakes it
/// for an empty body.
fn unknown_body(size: Option<Node<'_>>) -> Body {
    match size.and_then(|s| s.v.as_u64()) {
        Some(size) if size > 0 => Body {
            data: bytes::Bytes::new(),
            size,
            truncated: true,
        },
        _ => Body::default(),
    }
}

/// The bytes of a `postData` or `content` object, `None` when it has no text.
fn body_bytes(n: &Node<'_>) -> Res<Option<Vec<u8>>> {
    let Some(text) = n.child("text") else {
        return Ok(None);
    };
    let t = text.str()?;
    match n.opt_str("encoding")? {
        None | Some("") => Ok(Some(t.as_bytes().to_vec())),
        Some(e) if e.eq_ignore_ascii_case(BASE64) => {
            let engine = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
            );
            engine
                .decode(t.as_bytes())
                .map(Some)
                .map_err(|err| text.fail(format!("not valid base64: {err}")))
        }
        Some(e) => Err(n.req("encoding")?.fail(format!(
            "unsupported encoding `{e}` (only base64 is understood)"
        ))),
    }
}

fn headers(parent: &Node<'_>) -> Res<Headers> {
    let Some(list) = parent.child("headers") else {
        return Ok(Headers::new());
    };
    let mut out = Headers::new();
    for item in list.items()? {
        let item = item.obj()?;
        out.push(item.req("name")?.str()?, item.req("value")?.str()?);
    }
    Ok(out)
}

fn status(response: &Node<'_>) -> Res<u16> {
    let s = response.req("status")?;
    s.v.as_u64()
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| s.fail(format!("expected a status code 0-65535, found {}", s.v)))
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    // The same relaxed RFC 3339 parser the JSON Lines form uses.
    s.parse::<DateTime<FixedOffset>>()
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A fresh UUIDv7 stamped with `start`, so imported ids sort by capture
/// time like recorded ones.
fn id_at(start: DateTime<Utc>) -> ExchangeId {
    let secs = u64::try_from(start.timestamp()).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, secs, start.timestamp_subsec_nanos());
    ExchangeId(uuid::Uuid::new_v7(ts))
}

/// Maps the many spellings tools use to the model's version strings.
/// Versions tapwire cannot speak (HTTP/3) become HTTP/1.1, the protocol the
/// request will be replayed with.
fn normalize_version(v: &str) -> &'static str {
    match v.trim().to_ascii_lowercase().as_str() {
        "h2" | "h2c" | "http/2" | "http/2.0" => "HTTP/2.0",
        "http/1.0" => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

/// An HTTP URL split into the parts an exchange needs.
#[derive(Debug, PartialEq, Eq)]
struct Target<'a> {
    scheme: &'static str,
    authority: &'a str,
    host: &'a str,
    port: u16,
    path: &'a str,
    query: Option<&'a str>,
}

/// Splits an absolute URL; `Ok(None)` when its scheme is not HTTP. WebSocket
/// URLs map to the HTTP scheme of their handshake. User info and fragment
/// are dropped: neither is sent in a request.
fn parse_url(url: &str) -> Result<Option<Target<'_>>, String> {
    let (scheme, rest) = url
        .split_once(':')
        .ok_or_else(|| "not an absolute URL".to_owned())?;
    let (scheme, default_port) = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => ("http", 80),
        "https" | "wss" => ("https", 443),
        _ => return Ok(None),
    };
    let rest = rest
        .strip_prefix("//")
        .ok_or_else(|| "has no `//` before the host".to_owned())?;
    let (authority, rest) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = match authority.strip_prefix('[') {
        Some(r) => {
            let (host, after) = r
                .split_once(']')
                .ok_or_else(|| "has an unclosed `[` in the host".to_owned())?;
            match after {
                "" => (host, None),
                a => match a.strip_prefix(':') {
                    Some(p) => (host, parse_port(p)?),
                    None => return Err(format!("has `{a}` after the IPv6 host")),
                },
            }
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, parse_port(p)?),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err("has an empty host".to_owned());
    }
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    Ok(Some(Target {
        scheme,
        authority,
        host,
        port: port.unwrap_or(default_port),
        path: if path.is_empty() { "/" } else { path },
        query,
    }))
}

fn parse_port(p: &str) -> Result<Option<u16>, String> {
    if p.is_empty() {
        return Ok(None);
    }
    p.parse::<u16>()
        .map(Some)
        .map_err(|_| format!("has port `{p}`, which is not a number 0-65535"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target<'_> {
        parse_url(url).unwrap().unwrap()
    }

    #[test]
    fn urls_split_into_exchange_parts() {
        assert_eq!(
            target("HTTPS://user:pw@Example.com:8443/a/b?x=1&y#frag"),
            Target {
                scheme: "https",
                authority: "Example.com:8443",
                host: "Example.com",
                port: 8443,
                path: "/a/b",
                query: Some("x=1&y"),
            }
        );
        let t = target("http://[2001:db8::1]/");
        assert_eq!(
            (t.host, t.port, t.authority),
            ("2001:db8::1", 80, "[2001:db8::1]")
        );
        let t = target("wss://chat.example?room=1");
        assert_eq!(
            (t.scheme, t.port, t.path, t.query),
            ("https", 443, "/", Some("room=1"))
        );
        let t = target("http://h:/?");
        assert_eq!((t.port, t.path, t.query), (80, "/", Some("")));
        for skipped in [
            "data:text/plain,hi",
            "blob:https://a/1",
            "chrome-extension://abc/x.js",
            "about:blank",
        ] {
            assert_eq!(parse_url(skipped), Ok(None), "{skipped}");
        }
        for (bad, why) in [
            ("no-colon", "not an absolute URL"),
            ("http:/one-slash", "has no `//` before the host"),
            ("http://:80/", "has an empty host"),
            ("http://[::1/", "has an unclosed `[` in the host"),
            ("http://[::1]x/", "has `x` after the IPv6 host"),
            (
                "http://h:-1/",
                "has port `-1`, which is not a number 0-65535",
            ),
        ] {
            assert_eq!(parse_url(bad), Err(why.to_owned()), "{bad}");
        }
    }

    #[test]
    fn form_decoding_matches_browsers() {
        assert_eq!(form_decode("a+b%20c%2Fd"), "a b c/d");
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(form_decode("%zz%4"), "%zz%4");
        assert_eq!(form_decode("%C3%A9"), "é");
        assert_eq!(form_decode("%FF"), "\u{FFFD}");
        assert_eq!(
            query_pairs("a=1&&b&c=x=y"),
            vec![nv("a", "1"), nv("b", ""), nv("c", "x=y")]
        );
    }

    #[test]
    fn versions_and_reasons() {
        for (v, want) in [
            ("h2", "HTTP/2.0"),
            ("HTTP/2", "HTTP/2.0"),
            ("http/2.0", "HTTP/2.0"),
            ("HTTP/1.0", "HTTP/1.0"),
            ("http/1.1", "HTTP/1.1"),
            ("h3", "HTTP/1.1"),
            ("", "HTTP/1.1"),
        ] {
            assert_eq!(normalize_version(v), want, "{v}");
        }
        assert_eq!(reason_phrase(404), "Not Found");
        assert_eq!(reason_phrase(503), "Service Unavailable");
        assert_eq!(reason_phrase(299), "");
    }

    #[test]
    fn cookies_from_headers() {
        let mut h = Headers::new();
        h.push("Cookie", "a=1; b = 2 ;; flag");
        h.push("cookie", "c=3");
        h.push("Set-Cookie", "s=9; Path=/; Secure");
        h.push("set-cookie", "");
        assert_eq!(
            request_cookies(&h),
            vec![nv("a", "1"), nv("b", "2"), nv("flag", ""), nv("c", "3")]
        );
        assert_eq!(response_cookies(&h), vec![nv("s", "9")]);
    }
}

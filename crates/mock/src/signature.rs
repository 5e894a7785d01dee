//! Request signatures: the normalized parts of a request that decide which
//! recorded response answers it. Pure functions over untrusted bytes; they
//! never panic.

use std::fmt::Write as _;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// What goes into a signature, beyond method, host, path, query and body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchConfig {
    /// Query parameters left out of the signature (exact names).
    pub ignore_query: Vec<String>,
    /// JSON body fields left out of the signature.
    pub ignore_json_paths: Vec<JsonPath>,
    /// Request headers added to the signature (names, any case).
    pub match_headers: Vec<String>,
}

/// A simple dotted JSON path such as `$.a.b`, `$.items.*.id` or `$.list.0`:
/// each segment names an object key or an array index, `*` matches any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(Vec<String>);

/// A JSON path that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON path {0:?}: use a dotted path such as $.a.b or $.items.*.id")]
pub struct JsonPathError(pub String);

impl std::str::FromStr for JsonPath {
    type Err = JsonPathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix('$').unwrap_or(s);
        let rest = rest.strip_prefix('.').unwrap_or(rest);
        if rest.is_empty() {
            return Err(JsonPathError(s.to_owned()));
        }
        let segs: Vec<String> = rest.split('.').map(str::to_owned).collect();
        if segs.iter().any(String::is_empty) {
            return Err(JsonPathError(s.to_owned()));
        }
        Ok(Self(segs))
    }
}

impl std::fmt::Display for JsonPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "$.{}", self.0.join("."))
    }
}

/// The normalized form of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BodyKey {
    /// No body.
    Empty,
    /// JSON, canonicalized: keys sorted, no whitespace, ignored fields removed.
    Json(String),
    /// A URL-encoded form: fields sorted by name (repeats keep their order).
    Form(Vec<(String, String)>),
    /// Anything else: SHA-256 of the bytes, hex.
    Hash(String),
    /// The recorded body was truncated, so it cannot take part in matching.
    Unknown,
}

/// The normalized request: equal signatures mean the same recorded answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    /// Method, upper case.
    pub method: String,
    /// Upstream `host:port`, host lower case.
    pub host: String,
    /// Path, without the query.
    pub path: String,
    /// Query parameters, decoded, sorted by name; repeats keep their order.
    pub query: Vec<(String, String)>,
    /// The body.
    pub body: BodyKey,
    /// Values of the `--match-header` fields (name lower case, values joined by `, `).
    pub headers: Vec<(String, String)>,
}

/// A request as the signature sees it, borrowed from whatever holds it.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Method.
    pub method: &'a str,
    /// Upstream host.
    pub host: &'a str,
    /// Upstream port.
    pub port: u16,
    /// Path, without the query.
    pub path: &'a str,
    /// Raw query, without `?`.
    pub query: Option<&'a str>,
    /// Header fields.
    pub headers: &'a [(String, String)],
    /// Body bytes.
    pub body: &'a [u8],
    /// True when `body` is only a prefix of the real body.
    pub body_truncated: bool,
}

impl RequestView<'_> {
    /// First value of header `name`, any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `host:port` as used in signatures and keys (IPv6 hosts bracketed).
pub fn host_port(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl Signature {
    /// The signature of `req` under `cfg`.
    pub fn of(req: &RequestView<'_>, cfg: &MatchConfig) -> Self {
        let mut query = parse_pairs(req.query.unwrap_or(""));
        query.retain(|(k, _)| !cfg.ignore_query.iter().any(|i| i == k));
        sort_pairs(&mut query);
        let headers = cfg
            .match_headers
            .iter()
            .map(|name| {
                let values: Vec<&str> = req
                    .headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str())
                    .collect();
                (name.to_ascii_lowercase(), values.join(", "))
            })
            .collect();
        let body = if req.body_truncated {
            BodyKey::Unknown
        } else {
            body_key(req.body, req.header("content-type"), cfg)
        };
        Self {
            method: req.method.to_ascii_uppercase(),
            host: host_port(req.host, req.port),
            path: if req.path.is_empty() {
                "/".to_owned()
            } else {
                req.path.to_owned()
            },
            query,
            body,
            headers,
        }
    }

    /// The parts that differ between this (recorded) signature and `got`,
    /// most significant first, in words.
    pub fn differences(&self, got: &Signature) -> Vec<String> {
        let mut out = Vec::new();
        if self.method != got.method {
            out.push(format!(
                "method differs: recorded {}, got {}",
                self.method, got.method
            ));
        }
        if self.host != got.host {
            out.push(format!(
                "host differs: recorded {}, got {}",
                self.host, got.host
            ));
        }
        if self.path != got.path {
            out.push(format!(
                "path differs: recorded {}, got {}",
                self.path, got.path
            ));
        }
        pair_differences("query param", &self.query, &got.query, &mut out);
        body_differences(&self.body, &got.body, &mut out);
        pair_differences("header", &self.headers, &got.headers, &mut out);
        out
    }
}

fn pair_differences(
    what: &str,
    recorded: &[(String, String)],
    got: &[(String, String)],
    out: &mut Vec<String>,
) {
    let mut names: Vec<&str> = recorded
        .iter()
        .chain(got)
        .map(|(k, _)| k.as_str())
        .collect();
    names.dedup();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let r: Vec<&str> = values(recorded, name);
        let g: Vec<&str> = values(got, name);
        if r == g {
            continue;
        }
        out.push(match (r.is_empty(), g.is_empty()) {
            (true, _) => format!("{what} {name} was not recorded"),
            (_, true) => format!("{what} {name} is missing (recorded {:?})", r.join(",")),
            _ => format!(
                "{what} {name} differs: recorded {:?}, got {:?}",
                r.join(","),
                g.join(",")
            ),
        });
    }
}

fn values<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn body_differences(recorded: &BodyKey, got: &BodyKey, out: &mut Vec<String>) {
    match (recorded, got) {
        (a, b) if a == b => {}
        (BodyKey::Unknown, _) | (_, BodyKey::Unknown) => {}
        (BodyKey::Json(a), BodyKey::Json(b)) => {
            let (Ok(a), Ok(b)) = (
                serde_json::from_str::<Value>(a),
                serde_json::from_str::<Value>(b),
            ) else {
                out.push("JSON body differs".to_owned());
                return;
            };
            let mut paths = Vec::new();
            json_differences(&a, &b, "$", &mut paths);
            if paths.is_empty() {
                out.push("JSON body differs".to_owned());
            }
            for p in paths.into_iter().take(5) {
                out.push(format!("JSON body field {p} differs"));
            }
        }
        (BodyKey::Form(a), BodyKey::Form(b)) => pair_differences("form field", a, b, out),
        (BodyKey::Empty, _) => out.push("body differs: none was recorded".to_owned()),
        (_, BodyKey::Empty) => out.push("body differs: the request has none".to_owned()),
        _ => out.push("body differs".to_owned()),
    }
}

fn json_differences(a: &Value, b: &Value, at: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort_unstable();
            keys.dedup();
            for k in keys {
                let path = format!("{at}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => json_differences(v, w, &path, out),
                    _ => out.push(path),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                json_differences(v, w, &format!("{at}.{i}"), out);
            }
        }
        _ if a == b => {}
        _ => out.push(at.to_owned()),
    }
}

fn body_key(body: &[u8], content_type: Option<&str>, cfg: &MatchConfig) -> BodyKey {
    if body.is_empty() {
        return BodyKey::Empty;
    }
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    let looks_json = ct.contains("json")
        || (ct.is_empty()
            && body
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| *b == b'{' || *b == b'['));
    if looks_json {
        if let Ok(mut v) = serde_json::from_slice::<Value>(body) {
            for p in &cfg.ignore_json_paths {
                remove_path(&mut v, &p.0);
            }
            // serde_json's map is a BTreeMap (no preserve_order feature), so
            // serializing sorts keys and drops whitespace.
            return BodyKey::Json(v.to_string());
        }
    }
    if ct.starts_with("application/x-www-form-urlencoded") {
        if let Ok(text) = std::str::from_utf8(body) {
            let mut pairs = parse_pairs(text);
            sort_pairs(&mut pairs);
            return BodyKey::Form(pairs);
        }
    }
    let digest = Sha256::digest(body);
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    BodyKey::Hash(hex)
}

/// Removes the field(s) at `path`; array elements become `null` so the
/// positions of the others do not shift.
fn remove_path(v: &mut Value, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    match v {
        Value::Object(map) => {
            if rest.is_empty() {
                if first == "*" {
                    map.clear();
                } else {
                    map.remove(first);
                }
            } else if first == "*" {
                map.values_mut().for_each(|c| remove_path(c, rest));
            } else if let Some(c) = map.get_mut(first) {
                remove_path(c, rest);
            }
        }
        Value::Array(items) => {
            let pick = |i: usize| first == "*" || first.parse::<usize>() == Ok(i);
            for (i, c) in items.iter_mut().enumerate() {
                if pick(i) {
                    if rest.is_empty() {
                        *c = Value::Null;
                    } else {
                        remove_path(c, rest);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Splits `a=1&b=2` into decoded pairs, in order.
pub(crate) fn parse_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Stable sort by name: repeated names keep their relative order.
fn sort_pairs(pairs: &mut [(String, String)]) {
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
}

/// Percent-decoding with `+` as space; invalid escapes are kept as written.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(
        method: &'a str,
        query: Option<&'a str>,
        headers: &'a [(String, String)],
        body: &'a [u8],
    ) -> RequestView<'a> {
        RequestView {
            method,
            host: "Payments.Internal",
            port: 443,
            path: "/v1/charges",
            query,
            headers,
            body,
            body_truncated: false,
        }
    }

    fn json() -> Vec<(String, String)> {
        vec![("Content-Type".into(), "application/json".into())]
    }

    #[test]
    fn query_order_does_not_matter_but_repeats_keep_theirs() {
        let cfg = MatchConfig::default();
        let a = Signature::of(&view("get", Some("b=2&a=1&a=3"), &[], b""), &cfg);
        let b = Signature::of(&view("GET", Some("a=1&b=2&a=3"), &[], b""), &cfg);
        let c = Signature::of(&view("GET", Some("a=3&b=2&a=1"), &[], b""), &cfg);
        assert_eq!(a, b);
        assert_ne!(a, c, "repeated params are ordered");
        assert_eq!(a.host, "payments.internal:443");
        let d = Signature::of(&view("GET", Some("a=%31&b=2&a=3"), &[], b""), &cfg);
        assert_eq!(a, d, "percent-decoded");
    }

    #[test]
    fn json_key_order_and_whitespace_do_not_matter() {
        let cfg = MatchConfig::default();
        let h = json();
        let a = Signature::of(
            &view("POST", None, &h, br#"{"b":1,"a":{"y":2,"x":[1,2]}}"#),
            &cfg,
        );
        let b = Signature::of(
            &view(
                "POST",
                None,
                &h,
                b"{ \"a\" : {\"x\": [1, 2], \"y\": 2},\n \"b\": 1 }",
            ),
            &cfg,
        );
        assert_eq!(a, b);
        assert_eq!(
            a.body,
            BodyKey::Json(r#"{"a":{"x":[1,2],"y":2},"b":1}"#.into())
        );
        let c = Signature::of(
            &view("POST", None, &h, br#"{"b":1,"a":{"y":3,"x":[1,2]}}"#),
            &cfg,
        );
        assert_ne!(a, c);
    }

    #[test]
    fn form_fields_are_sorted_and_other_bodies_hashed() {
        let cfg = MatchConfig::default();
        let h = vec![(
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        )];
        let a = Signature::of(&view("POST", None, &h, b"b=2&a=1"), &cfg);
        let b = Signature::of(&view("POST", None, &h, b"a=1&b=2"), &cfg);
        assert_eq!(a, b);
        let x = Signature::of(&view("POST", None, &[], b"\x00\x01"), &cfg);
        let y = Signature::of(&view("POST", None, &[], b"\x00\x02"), &cfg);
        assert!(matches!(x.body, BodyKey::Hash(_)));
        assert_ne!(x, y);
    }

    #[test]
    fn ignore_lists_remove_parts_from_the_signature() {
        let cfg = MatchConfig {
            ignore_query: vec!["ts".into()],
            ignore_json_paths: vec![
                "$.meta.request_id".parse().unwrap(),
                "$.items.*.nonce".parse().unwrap(),
            ],
            match_headers: vec![],
        };
        let h = json();
        let a = Signature::of(
            &view(
                "POST",
                Some("id=1&ts=100"),
                &h,
                br#"{"meta":{"request_id":"r1","v":1},"items":[{"nonce":1,"n":"a"}]}"#,
            ),
            &cfg,
        );
        let b = Signature::of(
            &view(
                "POST",
                Some("ts=200&id=1"),
                &h,
                br#"{"items":[{"n":"a","nonce":2}],"meta":{"v":1,"request_id":"r2"}}"#,
            ),
            &cfg,
        );
        assert_eq!(a, b);
        let c = Signature::of(
            &view(
                "POST",
                Some("id=2&ts=100"),
                &h,
                br#"{"meta":{"request_id":"r1","v":1},"items":[{"nonce":1,"n":"a"}]}"#,
            ),
            &cfg,
        );
        assert_ne!(a, c, "only the listed params are ignored");
        assert!("$.".parse::<JsonPath>().is_err());
        assert!("$.a..b".parse::<JsonPath>().is_err());
    }

    #[test]
    fn headers_join_the_signature_only_when_asked() {
        let h1 = vec![("X-Tenant".to_owned(), "a".to_owned())];
        let h2 = vec![("x-tenant".to_owned(), "b".to_owned())];
        let plain = MatchConfig::default();
        assert_eq!(
            Signature::of(&view("GET", None, &h1, b""), &plain),
            Signature::of(&view("GET", None, &h2, b""), &plain)
        );
        let with = MatchConfig {
            match_headers: vec!["X-TENANT".into()],
            ..MatchConfig::default()
        };
        let (a, b) = (
            Signature::of(&view("GET", None, &h1, b""), &with),
            Signature::of(&view("GET", None, &h2, b""), &with),
        );
        assert_ne!(a, b);
        assert_eq!(
            a.differences(&b),
            ["header x-tenant differs: recorded \"a\", got \"b\""]
        );
    }

    #[test]
    fn differences_name_the_part() {
        let cfg = MatchConfig::default();
        let h = json();
        let rec = Signature::of(
            &view("POST", Some("x=1"), &h, br#"{"a":{"b":1},"c":2}"#),
            &cfg,
        );
        let got = Signature::of(
            &view("POST", Some("x=2"), &h, br#"{"a":{"b":5},"c":2}"#),
            &cfg,
        );
        assert_eq!(
            rec.differences(&got),
            [
                "query param x differs: recorded \"1\", got \"2\"",
                "JSON body field $.a.b differs"
            ]
        );
        let got = Signature::of(
            &view("PUT", Some("x=1"), &h, br#"{"a":{"b":1},"c":2}"#),
            &cfg,
        );
        assert_eq!(
            rec.differences(&got),
            ["method differs: recorded POST, got PUT"]
        );
    }

    #[test]
    fn decoding_never_panics_on_odd_input() {
        for s in ["%", "%4", "%zz", "a=%", "=&=&", "%E2%82", "+%2"] {
            let _ = parse_pairs(s);
        }
        assert_eq!(decode("a%20b+c%"), "a b c%");
    }
}

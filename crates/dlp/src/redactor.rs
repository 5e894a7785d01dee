//! The redactor: applies a policy to exchanges, field by field, and records
//! what it replaced.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use tapwire_model::{Body, Exchange, Headers, Request, Response};

use crate::category::{Cat, BUILTIN_NAMES};
use crate::config::{compile, ConfigError, DlpConfig, EncodedBodies};
use crate::decode::{self, Decoded};
use crate::keys::{KeyClass, KeyMatcher};
use crate::scan::{self, Custom, Hints, Hit, Scanner};
use crate::token::{is_token, RedactionKey};
use crate::Redacted;

/// One redacted value: where it was and what it was. Never the value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Finding {
    /// Field path, e.g. `request.body$.customer.email`,
    /// `request.headers.authorization`, `request.query.email`.
    pub path: String,
    /// Category name as it appears in the token, e.g. `EMAIL`.
    pub category: String,
}

/// Everything one call redacted, in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// One entry per replaced value.
    pub findings: Vec<Finding>,
}

/// How a value is treated, from the name of the field that holds it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rule {
    /// Replace the whole value.
    Whole(Cat),
    /// An HTTP credential: keep the scheme, replace the rest.
    Credential,
    /// Scan the value for content.
    Scan(Hints),
}

/// An edit on a raw buffer: replace `start..end` with `text`.
pub(crate) type Edit = (usize, usize, String);

/// State of one redaction call: findings and scratch space reused across
/// fields so that scanning many small values does not allocate.
#[derive(Debug, Default)]
pub(crate) struct Cx {
    pub(crate) findings: Vec<(String, Cat)>,
    pub(crate) hits: Vec<Hit>,
}

impl Cx {
    pub(crate) fn add(&mut self, path: String, cat: Cat) {
        self.findings.push((path, cat));
    }
}

/// Applies one DLP policy with one key. Build it once and share it (it is
/// `Send + Sync`); redacting takes `&self`.
#[derive(Debug, Clone)]
pub struct Redactor {
    enabled: bool,
    pub(crate) scanner: Scanner,
    key: RedactionKey,
    key_id: String,
    names: Vec<String>,
    allow_values: HashSet<Vec<u8>>,
    allow_re: Option<regex::bytes::RegexSet>,
    cookies: bool,
    cookie_allow: HashSet<String>,
    header_skip: HashSet<String>,
    encoded: EncodedBodies,
    max_paths: usize,
}

impl Redactor {
    /// Builds a redactor from a validated policy and the installation's key.
    pub fn new(config: &DlpConfig, key: RedactionKey) -> Result<Self, ConfigError> {
        config.validate()?;
        let d = &config.detectors;
        let mut secret_keys = config.secret_keys.clone();
        secret_keys.extend(config.extra_secret_keys.iter().cloned());
        if !d.secret_keys {
            secret_keys.clear();
        }
        let keys = KeyMatcher::new(
            &secret_keys,
            d.phone,
            d.ssn,
            d.aws_secret_key,
            d.credentials,
        );
        let mut names: Vec<String> = BUILTIN_NAMES.iter().map(|s| (*s).to_owned()).collect();
        let mut custom = Vec::new();
        for (i, p) in config.patterns.iter().enumerate() {
            let re = compile(&p.regex)
                .map_err(|e| ConfigError::invalid(format!("patterns[{i}].regex"), e))?;
            let idx = u16::try_from(names.len()).map_err(|_| {
                ConfigError::invalid("patterns", "too many patterns (at most 60000)")
            })?;
            custom.push(Custom { re, cat: Cat(idx) });
            names.push(p.name.to_ascii_uppercase());
        }
        let allow_re = if config.allow.regex.is_empty() {
            None
        } else {
            let anchored: Vec<String> = config
                .allow
                .regex
                .iter()
                .map(|r| format!("^(?:{r})$"))
                .collect();
            Some(
                regex::bytes::RegexSetBuilder::new(&anchored)
                    .size_limit(16 << 20)
                    .build()
                    .map_err(|e| ConfigError::invalid("allow.regex", e.to_string()))?,
            )
        };
        let scanner = Scanner {
            det: scan::Detectors {
                email: d.email,
                phone: d.phone,
                card: d.card,
                ssn: d.ssn,
                iban: d.iban,
                ip: d.ip,
                jwt: d.jwt,
                aws_access_key: d.aws_access_key,
                aws_secret_key: d.aws_secret_key,
                google_api_key: d.google_api_key,
                credentials: d.credentials,
                private_key: d.private_key,
                secret_keys: d.secret_keys,
            },
            keys,
            custom,
        };
        Ok(Self {
            enabled: config.enabled,
            scanner,
            key_id: key.id(),
            key,
            names,
            allow_values: config
                .allow
                .values
                .iter()
                .map(|v| v.as_bytes().to_vec())
                .collect(),
            allow_re,
            cookies: d.cookies,
            cookie_allow: config
                .cookies
                .allow
                .iter()
                .map(|c| c.to_ascii_lowercase())
                .collect(),
            header_skip: config
                .headers
                .skip
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            encoded: config.encoded_bodies,
            max_paths: config.max_recorded_paths,
        })
    }

    /// Public id of the key in use (see [`RedactionKey::id`]).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Whether this policy changes anything (`enabled: true`).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Redacts one exchange. The result records what was replaced in its
    /// tags (see `docs/dlp.md`).
    pub fn redact(&self, ex: Exchange) -> Redacted<Exchange> {
        self.redact_with_report(ex).0
    }

    /// Redacts one exchange and also returns the findings.
    pub fn redact_with_report(&self, mut ex: Exchange) -> (Redacted<Exchange>, Report) {
        let mut cx = Cx::default();
        if self.enabled {
            if let Some(req) = ex.request.as_mut() {
                self.request(req, &mut cx);
            }
            if let Some(resp) = ex.response.as_mut() {
                self.response(resp, &mut cx);
            }
            if let Some(tcp) = ex.tcp.as_mut() {
                self.opaque(&mut tcp.client_bytes, "tcp.client_bytes", &mut cx);
                self.opaque(&mut tcp.server_bytes, "tcp.server_bytes", &mut cx);
            }
        }
        self.record(&mut ex.tags, &cx);
        let report = self.report(cx);
        (Redacted::new(ex), report)
    }

    /// Redacts every exchange of a batch.
    pub fn redact_batch(&self, batch: Vec<Exchange>) -> Redacted<Vec<Exchange>> {
        batch.into_iter().map(|ex| self.redact(ex)).collect()
    }

    /// Redacts a body on its own, as the exchange redactor would with this
    /// `Content-Type` (empty when unknown). Returns the new bytes when
    /// anything changed. `base` prefixes the finding paths (e.g. `request.body`).
    pub fn redact_body_bytes(
        &self,
        content_type: &str,
        data: &[u8],
        base: &str,
    ) -> (Option<Vec<u8>>, Report) {
        let mut cx = Cx::default();
        let out = if self.enabled {
            self.payload(data, &content_type.to_ascii_lowercase(), base, &mut cx)
        } else {
            None
        };
        (out, self.report(cx))
    }

    fn report(&self, cx: Cx) -> Report {
        Report {
            findings: cx
                .findings
                .into_iter()
                .map(|(path, cat)| Finding {
                    path,
                    category: self.name(cat).to_owned(),
                })
                .collect(),
        }
    }

    pub(crate) fn name(&self, cat: Cat) -> &str {
        self.names
            .get(usize::from(cat.0))
            .map_or("UNKNOWN", String::as_str)
    }

    /// The token for a found value, or `None` when it must stay: empty,
    /// already a token, or allowed by the policy.
    pub(crate) fn token(&self, cat: Cat, value: &[u8]) -> Option<String> {
        if value.is_empty() || is_token(value) || self.allow_values.contains(value) {
            return None;
        }
        if let Some(re) = &self.allow_re {
            if re.is_match(value) {
                return None;
            }
        }
        // Spelling variants of one number get one token.
        let mut norm = [0u8; 40];
        let canonical: &[u8] = match cat {
            Cat::CARD | Cat::SSN | Cat::PHONE | Cat::IBAN if value.len() <= 64 => {
                let mut n = 0;
                for &b in value {
                    let keep = match cat {
                        Cat::IBAN => b.is_ascii_alphanumeric(),
                        Cat::PHONE => b.is_ascii_digit() || b == b'+',
                        _ => b.is_ascii_digit(),
                    };
                    if keep && n < norm.len() {
                        norm[n] = b.to_ascii_uppercase();
                        n += 1;
                    }
                }
                &norm[..n]
            }
            _ => value,
        };
        Some(self.key.token(self.name(cat), canonical))
    }

    pub(crate) fn rule(&self, class: KeyClass) -> Rule {
        let d = &self.scanner.det;
        match class {
            KeyClass::Secret if d.secret_keys => Rule::Whole(Cat::SECRET),
            KeyClass::AwsSecret if d.aws_secret_key => Rule::Whole(Cat::AWS_SECRET_KEY),
            KeyClass::Authorization if d.credentials => Rule::Credential,
            other => Rule::Scan(Hints::from_key(other)),
        }
    }

    /// Redacts one decoded value under `rule`; edits are on the raw bytes
    /// (through `dec`'s offset map, or identity when `dec` is `None`).
    pub(crate) fn value(
        &self,
        text: &[u8],
        dec: Option<&Decoded>,
        rule: Rule,
        path: &dyn Fn() -> String,
        edits: &mut Vec<Edit>,
        cx: &mut Cx,
    ) {
        self.value_alt(text, None, dec, rule, path, edits, cx);
    }

    /// As [`Redactor::value`], scanning a second reading of the same raw
    /// bytes too (`alt`, same length and offsets): form values are read with
    /// `+` as a space and as a plus, since clients send phone numbers both ways.
    #[allow(
        clippy::too_many_arguments,
        reason = "internal helper; the arguments are one call's context"
    )]
    pub(crate) fn value_alt(
        &self,
        text: &[u8],
        alt: Option<&[u8]>,
        dec: Option<&Decoded>,
        rule: Rule,
        path: &dyn Fn() -> String,
        edits: &mut Vec<Edit>,
        cx: &mut Cx,
    ) {
        match rule {
            Rule::Whole(cat) => {
                if let Some(t) = self.token(cat, text) {
                    let (a, b) = decode::raw_span(dec, 0, text.len());
                    edits.push((a, b, t));
                    cx.add(path(), cat);
                }
            }
            Rule::Credential => {
                if let Some((a, b, cat)) = credential(text) {
                    if let Some(t) = self.token(cat, &text[a..b]) {
                        let (ra, rb) = decode::raw_span(dec, a, b);
                        edits.push((ra, rb, t));
                        cx.add(path(), cat);
                    }
                }
            }
            Rule::Scan(hints) => {
                if !self.scanner.might_match(text)
                    && alt.is_none_or(|a| !self.scanner.might_match(a))
                {
                    return;
                }
                self.scan_value(text, alt, dec, hints, path, edits, cx);
            }
        }
    }

    /// The `Rule::Scan` part of [`Redactor::value_alt`], for a caller that
    /// already knows that `Scanner::might_match` holds for `text` (the JSON
    /// walker reads every string that way before it decides to scan it).
    #[allow(
        clippy::too_many_arguments,
        reason = "internal helper; the arguments are one call's context"
    )]
    pub(crate) fn scan_value(
        &self,
        text: &[u8],
        alt: Option<&[u8]>,
        dec: Option<&Decoded>,
        hints: Hints,
        path: &dyn Fn() -> String,
        edits: &mut Vec<Edit>,
        cx: &mut Cx,
    ) {
        if hints == Hints::NONE
            && alt.is_none()
            && self.scanner.custom.is_empty()
            && scan::is_timestamp(text)
        {
            return;
        }
        let mut hits = std::mem::take(&mut cx.hits);
        hits.clear();
        self.scanner.scan(text, hints, &mut hits);
        let first_alt = hits.len();
        if let Some(alt) = alt {
            self.scanner.scan(alt, hints, &mut hits);
            scan::merge(&mut hits, first_alt);
        }
        let mut p: Option<String> = None;
        for h in &hits {
            let src = match alt {
                Some(alt) if h.alt => alt,
                _ => text,
            };
            if let Some(t) = self.token(h.cat, &src[h.start..h.end]) {
                let (a, b) = decode::raw_span(dec, h.start, h.end);
                edits.push((a, b, t));
                let path = p.get_or_insert_with(path).clone();
                cx.add(path, h.cat);
            }
        }
        cx.hits = hits;
    }

    fn request(&self, req: &mut Request, cx: &mut Cx) {
        let path_edits = {
            let raw = req.path.as_bytes();
            if raw.iter().any(|&b| b.is_ascii_alphanumeric()) {
                let dec = decode::percent(raw, false);
                let mut edits = Vec::new();
                self.value(
                    &dec.bytes,
                    Some(&dec),
                    Rule::Scan(Hints::NONE),
                    &|| "request.path".to_owned(),
                    &mut edits,
                    cx,
                );
                edits
            } else {
                Vec::new()
            }
        };
        if !path_edits.is_empty() {
            req.path = to_string(splice(req.path.as_bytes(), &path_edits));
        }
        if let Some(q) = req.query.as_ref() {
            if let Some(new) = self.form(q.as_bytes(), "request.query", cx) {
                req.query = Some(to_string(new));
            }
        }
        self.body(&mut req.body, &mut req.headers, "request.body", cx);
        self.headers(&mut req.headers, "request.headers", cx);
        self.headers(&mut req.trailers, "request.trailers", cx);
    }

    fn response(&self, resp: &mut Response, cx: &mut Cx) {
        self.body(&mut resp.body, &mut resp.headers, "response.body", cx);
        self.headers(&mut resp.headers, "response.headers", cx);
        self.headers(&mut resp.trailers, "response.trailers", cx);
    }

    fn body(&self, body: &mut Body, headers: &mut Headers, base: &str, cx: &mut Cx) {
        if body.data.is_empty() {
            return;
        }
        let encoded = headers
            .get_all("content-encoding")
            .any(|e| !e.trim().is_empty() && !e.trim().eq_ignore_ascii_case("identity"));
        if encoded {
            if self.encoded == EncodedBodies::Drop {
                body.data = Bytes::new();
                body.truncated = true;
                cx.add(base.to_owned(), Cat::ENCODED_BODY);
            }
            return;
        }
        let ct = headers
            .get("content-type")
            .unwrap_or("")
            .to_ascii_lowercase();
        if let Some(new) = self.payload(&body.data, &ct, base, cx) {
            self.replace_body(body, headers, new);
        }
    }

    fn opaque(&self, body: &mut Body, base: &str, cx: &mut Cx) {
        if body.data.is_empty() {
            return;
        }
        let mut edits = Vec::new();
        self.value(
            &body.data,
            None,
            Rule::Scan(Hints::NONE),
            &|| base.to_owned(),
            &mut edits,
            cx,
        );
        if !edits.is_empty() {
            let new = splice(&body.data, &edits);
            let complete = !body.truncated;
            set_len(body, new, complete);
        }
    }

    fn replace_body(&self, body: &mut Body, headers: &mut Headers, new: Vec<u8>) {
        let complete = !body.truncated;
        let len = new.len();
        set_len(body, new, complete);
        if complete {
            for (n, v) in headers.0.iter_mut() {
                if n.eq_ignore_ascii_case("content-length") {
                    *v = len.to_string();
                }
            }
        }
    }

    /// Redacts a body by its content type; `None` when nothing changed.
    pub(crate) fn payload(
        &self,
        data: &[u8],
        ct: &str,
        base: &str,
        cx: &mut Cx,
    ) -> Option<Vec<u8>> {
        if ct.starts_with("application/x-www-form-urlencoded") {
            return self.form(data, base, cx);
        }
        // Whatever the content type says, an object, array or string that
        // is JSON is redacted as JSON, so that it stays JSON: a text scan
        // could cut through an escape (`\b88::56` read as an IPv6 address).
        // Bare numbers are not sniffed: the walker accepts concatenated
        // values, and `4242 4242 4242 4242` is a card number in text, not
        // four numbers. The walker gives up at the first byte that is not
        // JSON, and the body is then scanned as text.
        let first = data.iter().find(|b| !b.is_ascii_whitespace());
        let may_be_json = matches!(first, Some(b'{' | b'[' | b'"'));
        if ct.contains("json") || may_be_json {
            let mark = cx.findings.len();
            match crate::json::redact(self, data, base, cx) {
                Some(result) => return result,
                // Not JSON after all: forget partial findings, scan as text.
                None => cx.findings.truncate(mark),
            }
        }
        let mut edits = Vec::new();
        self.value(
            data,
            None,
            Rule::Scan(Hints::NONE),
            &|| base.to_owned(),
            &mut edits,
            cx,
        );
        (!edits.is_empty()).then(|| splice(data, &edits))
    }

    /// `a=1&b=2` (query strings and form bodies): names give context, values
    /// are percent-decoded before scanning, and only redacted values change.
    pub(crate) fn form(&self, raw: &[u8], base: &str, cx: &mut Cx) -> Option<Vec<u8>> {
        let mut edits: Vec<Edit> = Vec::new();
        let mut pos = 0;
        while pos <= raw.len() {
            let end = memchr::memchr(b'&', &raw[pos..]).map_or(raw.len(), |e| pos + e);
            let seg = &raw[pos..end];
            if !seg.is_empty() {
                let eq = memchr::memchr(b'=', seg);
                let name_raw = &seg[..eq.unwrap_or(seg.len())];
                let name = decode::percent(name_raw, true);
                // A name can itself be personal data (`?alice@example.com`).
                let mut name_edits = Vec::new();
                self.value(
                    &name.bytes,
                    Some(&name),
                    Rule::Scan(Hints::NONE),
                    &|| format!("{base}.{}", String::from_utf8_lossy(&name.bytes)),
                    &mut name_edits,
                    cx,
                );
                let shown = if name_edits.is_empty() {
                    String::from_utf8_lossy(&name.bytes).into_owned()
                } else {
                    String::from_utf8_lossy(&splice(name_raw, &name_edits)).into_owned()
                };
                edits.extend(
                    name_edits
                        .into_iter()
                        .map(|(a, b, t)| (a + pos, b + pos, t)),
                );
                if let Some(eq) = eq {
                    let vstart = pos + eq + 1;
                    let vraw = &raw[vstart..end];
                    if !vraw.is_empty() {
                        let dec = decode::percent(vraw, true);
                        let plus =
                            memchr::memchr(b'+', vraw).map(|_| decode::percent(vraw, false).bytes);
                        let rule = self.rule(self.scanner.keys.classify_cached(&name.bytes));
                        let mut v_edits = Vec::new();
                        self.value_alt(
                            &dec.bytes,
                            plus.as_deref(),
                            Some(&dec),
                            rule,
                            &|| format!("{base}.{shown}"),
                            &mut v_edits,
                            cx,
                        );
                        edits.extend(
                            v_edits
                                .into_iter()
                                .map(|(a, b, t)| (a + vstart, b + vstart, t)),
                        );
                    }
                }
            }
            pos = end + 1;
        }
        (!edits.is_empty()).then(|| splice(raw, &edits))
    }

    fn headers(&self, headers: &mut Headers, base: &str, cx: &mut Cx) {
        for (name, value) in headers.0.iter_mut() {
            let lname = name.to_ascii_lowercase();
            if self.header_skip.contains(&lname) || value.is_empty() {
                continue;
            }
            let path = || format!("{base}.{lname}");
            let raw = value.as_bytes();
            let mut edits: Vec<Edit> = Vec::new();
            match lname.as_str() {
                "authorization" | "proxy-authorization" if self.scanner.det.credentials => {
                    self.value(raw, None, Rule::Credential, &path, &mut edits, cx);
                }
                "cookie" | "set-cookie" if self.cookies => {
                    self.cookie(raw, lname == "set-cookie", &path(), &mut edits, cx);
                }
                _ => match self.rule(self.scanner.keys.classify_cached(lname.as_bytes())) {
                    Rule::Scan(hints) => self.url_like(raw, hints, &path, &mut edits, cx),
                    rule => self.value(raw, None, rule, &path, &mut edits, cx),
                },
            }
            if !edits.is_empty() {
                *value = to_string(splice(raw, &edits));
            }
        }
    }

    /// A header value: percent-decoded text, with any `?query` part read as
    /// name=value pairs (Referer, Location).
    fn url_like(
        &self,
        raw: &[u8],
        hints: Hints,
        path: &dyn Fn() -> String,
        edits: &mut Vec<Edit>,
        cx: &mut Cx,
    ) {
        let q = memchr::memchr(b'?', raw).filter(|&q| memchr::memchr(b'=', &raw[q..]).is_some());
        let head = &raw[..q.unwrap_or(raw.len())];
        let dec = decode::percent(head, false);
        self.value(&dec.bytes, Some(&dec), Rule::Scan(hints), path, edits, cx);
        if let Some(q) = q {
            let qend = memchr::memchr(b'#', &raw[q..]).map_or(raw.len(), |e| q + e);
            let base = path();
            if let Some(new) = self.form(&raw[q + 1..qend], &base, cx) {
                edits.push((q + 1, qend, to_string(new)));
            }
            if qend < raw.len() {
                let frag = &raw[qend..];
                let dec = decode::percent(frag, false);
                let mut f_edits = Vec::new();
                self.value(
                    &dec.bytes,
                    Some(&dec),
                    Rule::Scan(hints),
                    path,
                    &mut f_edits,
                    cx,
                );
                edits.extend(f_edits.into_iter().map(|(a, b, t)| (a + qend, b + qend, t)));
            }
        }
    }

    /// `Cookie: a=1; b=2` (every value) or `Set-Cookie: a=1; Path=/` (the
    /// first pair only: the rest are attributes).
    fn cookie(&self, raw: &[u8], set: bool, base: &str, edits: &mut Vec<Edit>, cx: &mut Cx) {
        let mut pos = 0;
        while pos < raw.len() {
            let end = memchr::memchr(b';', &raw[pos..]).map_or(raw.len(), |e| pos + e);
            let mut a = pos;
            while a < end && raw[a] == b' ' {
                a += 1;
            }
            if let Some(eq) = memchr::memchr(b'=', &raw[a..end]) {
                let name = String::from_utf8_lossy(&raw[a..a + eq]).trim().to_owned();
                let (mut va, mut vb) = (a + eq + 1, end);
                while vb > va && raw[vb - 1] == b' ' {
                    vb -= 1;
                }
                if vb - va >= 2 && raw[va] == b'"' && raw[vb - 1] == b'"' {
                    va += 1;
                    vb -= 1;
                }
                if !self.cookie_allow.contains(&name.to_ascii_lowercase()) {
                    if let Some(t) = self.token(Cat::COOKIE, &raw[va..vb]) {
                        edits.push((va, vb, t));
                        cx.add(format!("{base}.{name}"), Cat::COOKIE);
                    }
                }
            }
            if set {
                break;
            }
            pos = end + 1;
        }
    }

    /// Writes the `dlp*` tags: state, key id, and one `dlp:<path>` tag per
    /// distinct path naming its categories.
    fn record(&self, tags: &mut BTreeMap<String, String>, cx: &Cx) {
        tags.insert(
            "dlp".to_owned(),
            if self.enabled { "on" } else { "off" }.to_owned(),
        );
        tags.insert("dlp.key".to_owned(), self.key_id.clone());
        if cx.findings.is_empty() {
            return;
        }
        let mut paths = 0;
        let mut omitted = 0u64;
        let mut seen: HashSet<&str> = HashSet::new();
        for (path, cat) in &cx.findings {
            let key = format!("dlp:{path}");
            let name = self.name(*cat);
            if seen.insert(path.as_str()) {
                if paths >= self.max_paths && !tags.contains_key(&key) {
                    omitted += 1;
                    continue;
                }
                paths += 1;
            } else if !tags.contains_key(&key) {
                continue;
            }
            let entry = tags.entry(key).or_default();
            if !entry.split(',').any(|c| c == name) {
                if !entry.is_empty() {
                    entry.push(',');
                }
                entry.push_str(name);
            }
        }
        let prev: u64 = tags
            .get("dlp.count")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        tags.insert(
            "dlp.count".to_owned(),
            (prev + cx.findings.len() as u64).to_string(),
        );
        if omitted > 0 {
            tags.insert("dlp.paths_omitted".to_owned(), omitted.to_string());
        }
    }
}

/// The credential part of an `Authorization` value: after `Bearer ` or
/// `Basic `, after any other scheme, or the whole value when there is no
/// scheme.
fn credential(v: &[u8]) -> Option<(usize, usize, Cat)> {
    let mut a = 0;
    while a < v.len() && v[a] == b' ' {
        a += 1;
    }
    let mut b = v.len();
    while b > a && v[b - 1] == b' ' {
        b -= 1;
    }
    if a == b {
        return None;
    }
    let Some(sp) = memchr::memchr(b' ', &v[a..b]).map(|s| a + s) else {
        return Some((a, b, Cat::CREDENTIAL));
    };
    let scheme = &v[a..sp];
    let mut r = sp;
    while r < b && v[r] == b' ' {
        r += 1;
    }
    let cat = if scheme.eq_ignore_ascii_case(b"bearer") {
        Cat::BEARER
    } else if scheme.eq_ignore_ascii_case(b"basic") {
        Cat::BASIC
    } else {
        Cat::CREDENTIAL
    };
    Some((r, b, cat))
}

fn set_len(body: &mut Body, new: Vec<u8>, complete: bool) {
    let len = new.len() as u64;
    body.size = if complete { len } else { body.size.max(len) };
    body.data = Bytes::from(new);
}

/// Applies sorted, non-overlapping edits.
pub(crate) fn splice(raw: &[u8], edits: &[Edit]) -> Vec<u8> {
    let extra: usize = edits.iter().map(|(_, _, t)| t.len()).sum();
    let mut out = Vec::with_capacity(raw.len() + extra);
    let mut at = 0;
    for (a, b, t) in edits {
        if *a < at || *b < *a || *b > raw.len() {
            // Overlapping edits cannot come out of one scan; skip rather
            // than corrupt the output.
            continue;
        }
        out.extend_from_slice(&raw[at..*a]);
        out.extend_from_slice(t.as_bytes());
        at = *b;
    }
    out.extend_from_slice(&raw[at..]);
    out
}

fn to_string(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

//! What a condition looks at ([`Field`]) and how it compares ([`Pattern`]).

use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;
use tapwire_model::Exchange;

/// A property of an exchange that conditions can test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// `inbound` or `outbound`.
    Direction,
    /// The owning service's name.
    Service,
    /// `http/1.1`, `h2`, `grpc` or `tcp`.
    Protocol,
    /// Request method.
    Method,
    /// Upstream host.
    Host,
    /// Upstream port.
    Port,
    /// Request authority (`Host` header or `:authority`).
    Authority,
    /// Request path, without the query.
    Path,
    /// Response status code.
    Status,
    /// `service:host:port`.
    Key,
    /// A request header, by lower-case name; several values are tested one
    /// by one.
    Header(String),
}

impl Field {
    /// The names accepted by [`Field::parse`], for error messages.
    pub const NAMES: &'static str = "direction, service, protocol, method, host, port, authority, path, status, key, header.NAME";

    /// Parses a field name; `header.user-agent` names a request header.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "direction" => Field::Direction,
            "service" => Field::Service,
            "protocol" => Field::Protocol,
            "method" => Field::Method,
            "host" => Field::Host,
            "port" => Field::Port,
            "authority" => Field::Authority,
            "path" => Field::Path,
            "status" => Field::Status,
            "key" => Field::Key,
            _ => {
                let name = s.strip_prefix("header.")?;
                if name.is_empty() {
                    return None;
                }
                Field::Header(name.to_ascii_lowercase())
            }
        })
    }

    /// Whether values compare without regard to case (everything but paths).
    fn case_insensitive(&self) -> bool {
        !matches!(self, Field::Path)
    }

    /// True when some value of this field in `e` satisfies `test`. A field
    /// the exchange lacks (the path of a TCP flow) satisfies nothing.
    pub fn any(&self, e: &Exchange, mut test: impl FnMut(&str) -> bool) -> bool {
        let req = e.request.as_ref();
        match self {
            Field::Direction => test(&e.direction.to_string()),
            Field::Service => test(&e.service.name),
            Field::Protocol => test(&e.protocol.to_string()),
            Field::Method => req.is_some_and(|r| test(&r.method)),
            Field::Host => test(&e.upstream.host),
            Field::Port => test(&e.upstream.port.to_string()),
            Field::Authority => req.is_some_and(|r| test(&r.authority)),
            Field::Path => req.is_some_and(|r| test(&r.path)),
            Field::Status => e
                .response
                .as_ref()
                .is_some_and(|r| test(&r.status.to_string())),
            Field::Key => test(&e.key()),
            Field::Header(name) => req.is_some_and(|r| r.headers.get_all(name).any(test)),
        }
    }
}

/// A pattern could not be compiled.
#[derive(Debug, thiserror::Error)]
#[error("bad pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

/// How a value is compared.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// Equal (case-insensitive except for paths).
    Exact(String),
    /// A glob: `*` (any run of characters, `/` included), `?`, `[a-z]`,
    /// `{a,b}`.
    Glob(GlobMatcher),
    /// A regular expression (unanchored; anchor with `^…$`).
    Regex(Regex),
}

impl Pattern {
    /// Compiles `text` for `field`: `re:` starts a regular expression, text
    /// with glob characters is a glob, anything else must match exactly.
    pub fn new(field: &Field, text: &str) -> Result<Self, PatternError> {
        let err = |reason: String| PatternError {
            pattern: text.to_owned(),
            reason,
        };
        if let Some(re) = text.strip_prefix("re:") {
            let re = if field.case_insensitive() {
                format!("(?i){re}")
            } else {
                re.to_owned()
            };
            return Regex::new(&re)
                .map(Pattern::Regex)
                .map_err(|e| err(e.to_string()));
        }
        if text.contains(['*', '?', '[', '{']) {
            return Self::glob(field, text);
        }
        Ok(Pattern::Exact(text.to_owned()))
    }

    /// Compiles `text` as a glob even without glob characters.
    pub fn glob(field: &Field, text: &str) -> Result<Self, PatternError> {
        GlobBuilder::new(text)
            .case_insensitive(field.case_insensitive())
            .build()
            .map(|g| Pattern::Glob(g.compile_matcher()))
            .map_err(|e| PatternError {
                pattern: text.to_owned(),
                reason: e.kind().to_string(),
            })
    }

    /// True when `value` matches.
    pub fn is_match(&self, field: &Field, value: &str) -> bool {
        match self {
            Pattern::Exact(want) if field.case_insensitive() => value.eq_ignore_ascii_case(want),
            Pattern::Exact(want) => value == want,
            Pattern::Glob(g) => g.is_match(value),
            Pattern::Regex(r) => r.is_match(value),
        }
    }
}

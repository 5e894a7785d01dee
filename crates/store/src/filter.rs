//! The snapshot filter expression: comma-separated conditions that must all
//! hold, `FIELD OP VALUE` with `=`, `!=`, `~` (glob) and `!~`.
//!
//! Fields: `direction`, `service`, `protocol`, `method`, `host` (upstream
//! host), `port`, `authority`, `path`, `status`, `key` (`service:host:port`).
//! Example: `direction=inbound,path~/api/**,status!=404`.

use globset::{Glob, GlobMatcher};
use tapwire_model::Exchange;

/// A filter expression could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("filter condition {condition:?}: {reason}")]
pub struct FilterError {
    /// The condition that failed.
    pub condition: String,
    /// What is wrong with it.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Direction,
    Service,
    Protocol,
    Method,
    Host,
    Port,
    Authority,
    Path,
    Status,
    Key,
}

impl Field {
    const NAMES: &'static str =
        "direction, service, protocol, method, host, port, authority, path, status, key";

    fn parse(s: &str) -> Option<Self> {
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
            _ => return None,
        })
    }

    fn value(self, e: &Exchange) -> Option<String> {
        Some(match self {
            Field::Direction => e.direction.to_string(),
            Field::Service => e.service.name.clone(),
            Field::Protocol => e.protocol.to_string(),
            Field::Method => e.request.as_ref()?.method.clone(),
            Field::Host => e.upstream.host.clone(),
            Field::Port => e.upstream.port.to_string(),
            Field::Authority => e.request.as_ref()?.authority.clone(),
            Field::Path => e.request.as_ref()?.path.clone(),
            Field::Status => e.response.as_ref()?.status.to_string(),
            Field::Key => e.key(),
        })
    }
}

#[derive(Debug, Clone)]
enum Test {
    Eq(String),
    Glob(GlobMatcher),
}

#[derive(Debug, Clone)]
struct Condition {
    field: Field,
    negate: bool,
    test: Test,
}

/// A parsed filter; the empty filter keeps everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    source: String,
    conditions: Vec<Condition>,
}

impl Filter {
    /// Parses an expression such as `direction=inbound,path~/api/*`.
    pub fn parse(expr: &str) -> Result<Self, FilterError> {
        let mut conditions = Vec::new();
        for raw in expr.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let err = |reason: String| FilterError {
                condition: raw.to_owned(),
                reason,
            };
            let (name, op, value) = ["!~", "!=", "~", "="]
                .iter()
                .find_map(|op| raw.split_once(op).map(|(n, v)| (n.trim(), *op, v.trim())))
                .ok_or_else(|| {
                    err("expected FIELD=VALUE, FIELD!=VALUE, FIELD~GLOB or FIELD!~GLOB".to_owned())
                })?;
            let field = Field::parse(name).ok_or_else(|| {
                err(format!(
                    "unknown field {name:?}; fields are {}",
                    Field::NAMES
                ))
            })?;
            let test = if op.ends_with('~') {
                let glob = Glob::new(value).map_err(|e| err(format!("bad glob: {e}")))?;
                Test::Glob(glob.compile_matcher())
            } else {
                Test::Eq(value.to_owned())
            };
            conditions.push(Condition {
                field,
                negate: op.starts_with('!'),
                test,
            });
        }
        Ok(Self {
            source: expr.trim().to_owned(),
            conditions,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when every condition holds for `e`. A field the exchange lacks
    /// (the path of a TCP flow) matches no `=`/`~` and every `!=`/`!~`.
    pub fn matches(&self, e: &Exchange) -> bool {
        self.conditions.iter().all(|c| {
            let hit = c.field.value(e).is_some_and(|v| match &c.test {
                Test::Eq(want) => v.eq_ignore_ascii_case(want),
                Test::Glob(g) => g.is_match(&v),
            });
            hit != c.negate
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapwire_model::{Direction, Protocol, Request, Response, Service, Upstream};

    fn ex(dir: Direction, path: &str, status: u16) -> Exchange {
        let mut e = Exchange::new(
            dir,
            Protocol::Http1,
            Service {
                name: "orders".into(),
                ..Service::default()
            },
            Upstream {
                host: "payments".into(),
                port: 443,
            },
        );
        e.request = Some(Request {
            method: "GET".into(),
            path: path.into(),
            ..Request::default()
        });
        e.response = Some(Response {
            status,
            ..Response::default()
        });
        e
    }

    #[test]
    fn conditions_all_hold() {
        let f = Filter::parse("direction=inbound, path~/api/**, status!=404").unwrap();
        assert!(f.matches(&ex(Direction::Inbound, "/api/v1/x", 200)));
        assert!(!f.matches(&ex(Direction::Outbound, "/api/v1/x", 200)));
        assert!(!f.matches(&ex(Direction::Inbound, "/health", 200)));
        assert!(!f.matches(&ex(Direction::Inbound, "/api/x", 404)));
        assert!(Filter::parse("")
            .unwrap()
            .matches(&ex(Direction::Inbound, "/", 200)));
        assert!(Filter::parse("key=orders:payments:443")
            .unwrap()
            .matches(&ex(Direction::Inbound, "/", 200)));
    }

    #[test]
    fn errors_name_the_condition() {
        let e = Filter::parse("direction=inbound,colour=red").unwrap_err();
        assert!(
            e.to_string().contains("\"colour=red\"") && e.to_string().contains("unknown field"),
            "{e}"
        );
        assert!(Filter::parse("path")
            .unwrap_err()
            .to_string()
            .contains("expected FIELD=VALUE"));
        assert!(Filter::parse("path~[")
            .unwrap_err()
            .to_string()
            .contains("bad glob"));
    }
}

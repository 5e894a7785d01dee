//! The one-line filter expression: comma-separated conditions that must all
//! hold, `FIELD OP VALUE` with `=`, `!=`, `~` (a glob, or a regular
//! expression written `re:…`) and `!~`.
//!
//! Fields are those of [`Field`]: `direction`, `service`, `protocol`,
//! `method`, `host` (upstream host), `port`, `authority`, `path`, `status`,
//! `key` (`service:host:port`) and `header.NAME` (a request header).
//! Example: `direction=inbound,path~/api/**,status!=404`.

use tapwire_model::Exchange;

use crate::field::{Field, Pattern};

/// A filter expression could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("filter condition {condition:?}: {reason}")]
pub struct FilterError {
    /// The condition that failed.
    pub condition: String,
    /// What is wrong with it.
    pub reason: String,
}

#[derive(Debug, Clone)]
struct Condition {
    field: Field,
    negate: bool,
    pattern: Pattern,
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
            // `~` means a glob even without glob characters, or a `re:` regex.
            let pattern = if op.ends_with('~') && !value.starts_with("re:") {
                Pattern::glob(&field, value)
            } else if op.ends_with('~') {
                Pattern::new(&field, value)
            } else {
                Ok(Pattern::Exact(value.to_owned()))
            }
            .map_err(|e| err(e.to_string()))?;
            conditions.push(Condition {
                field,
                negate: op.starts_with('!'),
                pattern,
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
        self.conditions
            .iter()
            .all(|c| c.field.any(e, |v| c.pattern.is_match(&c.field, v)) != c.negate)
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
            .contains("bad pattern"));
    }
}

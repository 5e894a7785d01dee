//! Filter rules: an ordered list in YAML where the first rule that matches
//! an exchange decides whether it is kept, dropped or sampled.
//!
//! ```yaml
//! version: 1
//! default: keep            # when no rule matches: keep (default) or drop
//! rules:
//!   - name: probes
//!     action: drop         # keep | drop | sample
//!     match:               # every key must hold; a list means any of
//!       header.user-agent: ["kube-probe/*", "GoogleHC/*"]
//!   - name: search
//!     action: sample
//!     every: 10            # keep 1 in 10
//!     match: { path: "re:^/search" }
//!     unless: { status: "5*" }  # errors are never sampled away
//! ```
//!
//! Sampling is decided by the exchange's id, not a counter, so every
//! forwarder replica and every retry of a batch decides the same way.

use std::collections::BTreeMap;

use serde::Deserialize;
use tapwire_model::Exchange;

use crate::field::{Field, Pattern};

/// The built-in `standard` rules: health checks, probes and scrapes are
/// dropped, everything else is kept.
pub const STANDARD_RULES: &str = r#"version: 1
default: keep
rules:
  - name: probes
    action: drop
    match:
      header.user-agent:
        - "kube-probe/*"
        - "ELB-HealthChecker/*"
        - "GoogleHC/*"
        - "Prometheus/*"
  - name: health-endpoints
    action: drop
    match:
      path: ["/healthz", "/healthz/*", "/livez", "/livez/*", "/readyz", "/readyz/*", "/metrics"]
"#;

/// Filter rules could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file could not be read.
    #[error("cannot read filter rules {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or has unknown keys.
    #[error("filter rules {origin}: {message}")]
    Syntax {
        /// Where the rules came from.
        origin: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A rule is well-formed YAML but makes no sense.
    #[error("filter rules {origin}, rule {index} ({name}): {message}")]
    Rule {
        /// Where the rules came from.
        origin: String,
        /// 1-based position of the rule.
        index: usize,
        /// The rule's name, or `unnamed`.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// What a rule does to the exchanges it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Keep them.
    Keep,
    /// Drop them.
    Drop,
    /// Keep one in `every`.
    Sample {
        /// N of 1-in-N.
        every: u64,
    },
}

/// One rule: conditions that must all hold, exceptions that must not, and
/// an action.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name, for reports and metrics.
    pub name: String,
    /// What it does.
    pub action: Action,
    when: Vec<(Field, Vec<Pattern>)>,
    unless: Vec<(Field, Vec<Pattern>)>,
}

impl Rule {
    /// True when every `match` key holds and no `unless` key does.
    pub fn matches(&self, e: &Exchange) -> bool {
        let holds = |(field, patterns): &(Field, Vec<Pattern>)| {
            field.any(e, |v| patterns.iter().any(|p| p.is_match(field, v)))
        };
        self.when.iter().all(holds) && !self.unless.iter().any(holds)
    }
}

/// The outcome for one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the exchange is kept.
    pub keep: bool,
    /// Index of the rule that decided, or `None` for the default.
    pub rule: Option<usize>,
}

/// An ordered rule list.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Where the rules came from (`standard`, `none`, or a path).
    pub origin: String,
    /// The rules, first match wins.
    pub rules: Vec<Rule>,
    /// What happens to exchanges no rule matches.
    pub default_keep: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    version: u32,
    #[serde(default)]
    default: Option<RawAction>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawAction {
    Keep,
    Drop,
    Sample,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    name: Option<String>,
    action: RawAction,
    #[serde(default)]
    every: Option<u64>,
    #[serde(default, rename = "match")]
    when: BTreeMap<String, OneOrMany>,
    #[serde(default)]
    unless: BTreeMap<String, OneOrMany>,
}

/// A scalar or a list of scalars; numbers (`status: 404`) are read as text.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Scalar),
    Many(Vec<Scalar>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Int(i64),
    Bool(bool),
}

impl Scalar {
    fn text(self) -> String {
        match self {
            Scalar::Text(s) => s,
            Scalar::Int(i) => i.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

impl Rules {
    /// Keeps everything.
    pub fn none() -> Self {
        Self {
            origin: "none".to_owned(),
            rules: Vec::new(),
            default_keep: true,
        }
    }

    /// The built-in `standard` rules ([`STANDARD_RULES`]).
    pub fn standard() -> Self {
        match Self::parse("standard", STANDARD_RULES) {
            Ok(r) => r,
            // The text is a constant checked by a unit test.
            Err(e) => unreachable!("built-in rules are invalid: {e}"),
        }
    }

    /// `standard`, `none`, or the path of a YAML file.
    pub fn load(spec: &str) -> Result<Self, RulesError> {
        match spec {
            "standard" => Ok(Self::standard()),
            "none" => Ok(Self::none()),
            path => {
                let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Self::parse(path, &text)
            }
        }
    }

    /// Parses YAML rules; `origin` names them in errors.
    pub fn parse(origin: &str, yaml: &str) -> Result<Self, RulesError> {
        let raw: RawRules = serde_norway::from_str(yaml).map_err(|e| RulesError::Syntax {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        if raw.version != 1 {
            return Err(RulesError::Syntax {
                origin: origin.to_owned(),
                message: format!(
                    "version {} is not supported; this build reads version 1",
                    raw.version
                ),
            });
        }
        let default_keep = match raw.default {
            None | Some(RawAction::Keep) => true,
            Some(RawAction::Drop) => false,
            Some(RawAction::Sample) => {
                return Err(RulesError::Syntax {
                    origin: origin.to_owned(),
                    message: "default must be keep or drop".to_owned(),
                })
            }
        };
        let rules = raw
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| Self::rule(origin, i + 1, r))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            origin: origin.to_owned(),
            rules,
            default_keep,
        })
    }

    fn rule(origin: &str, index: usize, raw: RawRule) -> Result<Rule, RulesError> {
        let name = raw.name.unwrap_or_else(|| format!("rule-{index}"));
        let err = |message: String| RulesError::Rule {
            origin: origin.to_owned(),
            index,
            name: name.clone(),
            message,
        };
        let action = match (raw.action, raw.every) {
            (RawAction::Keep, None) => Action::Keep,
            (RawAction::Drop, None) => Action::Drop,
            (RawAction::Sample, Some(every)) if every >= 1 => Action::Sample { every },
            (RawAction::Sample, _) => {
                return Err(err(
                    "sample needs `every: N` with N >= 1 (keep 1 in N)".to_owned()
                ))
            }
            (_, Some(_)) => return Err(err("`every` only goes with action: sample".to_owned())),
        };
        let conditions = |map: BTreeMap<String, OneOrMany>| {
            map.into_iter()
                .map(|(key, values)| {
                    let field = Field::parse(&key).ok_or_else(|| {
                        err(format!(
                            "unknown field {key:?}; fields are {}",
                            Field::NAMES
                        ))
                    })?;
                    let values = match values {
                        OneOrMany::One(v) => vec![v],
                        OneOrMany::Many(vs) => vs,
                    };
                    if values.is_empty() {
                        return Err(err(format!("{key}: empty list matches nothing")));
                    }
                    let patterns = values
                        .into_iter()
                        .map(|v| {
                            Pattern::new(&field, &v.text()).map_err(|e| err(format!("{key}: {e}")))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok((field, patterns))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let when = conditions(raw.when)?;
        let unless = conditions(raw.unless)?;
        Ok(Rule {
            name: name.clone(),
            action,
            when,
            unless,
        })
    }

    /// Decides one exchange.
    pub fn decide(&self, e: &Exchange) -> Decision {
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.matches(e) {
                let keep = match rule.action {
                    Action::Keep => true,
                    Action::Drop => false,
                    Action::Sample { every } => sample_slot(e).is_multiple_of(every),
                };
                return Decision {
                    keep,
                    rule: Some(i),
                };
            }
        }
        Decision {
            keep: self.default_keep,
            rule: None,
        }
    }

    /// The name of the rule that made `d`, or `default`.
    pub fn rule_name(&self, d: Decision) -> &str {
        d.rule
            .and_then(|i| self.rules.get(i))
            .map_or("default", |r| r.name.as_str())
    }
}

/// A well-mixed number from the exchange id (its random bits), so that 1-in-N
/// sampling is stable across replicas and retries.
fn sample_slot(e: &Exchange) -> u64 {
    let v = e.id.0.as_u128();
    // Low and high halves folded, then a multiplicative mix (splitmix64's
    // finalizer) so that neighbouring ids land in different slots.
    let mut x = (v as u64) ^ ((v >> 64) as u64);
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapwire_model::{Direction, Headers, Protocol, Request, Response, Service, Upstream};

    fn ex(path: &str, ua: &str, status: u16) -> Exchange {
        let mut e = Exchange::new(
            Direction::Inbound,
            Protocol::Http1,
            Service {
                name: "orders".into(),
                ..Service::default()
            },
            Upstream {
                host: "127.0.0.1".into(),
                port: 8080,
            },
        );
        let mut headers = Headers::default();
        headers.push("User-Agent", ua);
        e.request = Some(Request {
            method: "GET".into(),
            path: path.into(),
            headers,
            ..Request::default()
        });
        e.response = Some(Response {
            status,
            ..Response::default()
        });
        e
    }

    #[test]
    fn standard_drops_probes_and_health_and_keeps_the_rest() {
        let r = Rules::standard();
        for (path, ua) in [
            ("/", "kube-probe/1.29"),
            ("/ready", "ELB-HealthChecker/2.0"),
            ("/", "GoogleHC/1.0"),
            ("/x", "Prometheus/2.48.0"),
            ("/healthz", "curl/8"),
            ("/livez", "curl/8"),
            ("/readyz", "curl/8"),
            ("/metrics", "curl/8"),
            ("/healthz/ping", "curl/8"),
        ] {
            assert!(!r.decide(&ex(path, ua, 200)).keep, "{path} {ua}");
        }
        for (path, ua) in [
            ("/orders", "curl/8"),
            ("/healthzone", "curl/8"),
            ("/api/metrics", "python-requests/2"),
        ] {
            assert!(r.decide(&ex(path, ua, 200)).keep, "{path} {ua}");
        }
    }

    #[test]
    fn none_keeps_everything() {
        let r = Rules::load("none").unwrap();
        assert!(r.decide(&ex("/healthz", "kube-probe/1", 200)).keep);
        let empty = Rules::parse("t", "version: 1\n").unwrap();
        assert!(empty.decide(&ex("/healthz", "kube-probe/1", 200)).keep);
    }

    #[test]
    fn first_match_wins_with_unless_and_default() {
        let r = Rules::parse(
            "t",
            r#"
version: 1
default: drop
rules:
  - name: errors
    action: keep
    match: { status: [500, "re:^50[234]$"] }
  - name: api
    action: keep
    match: { path: /api/**, method: get }
    unless: { header.user-agent: "bot*" }
"#,
        )
        .unwrap();
        let d = r.decide(&ex("/x", "curl", 500));
        assert!(d.keep && r.rule_name(d) == "errors");
        assert!(r.decide(&ex("/api/v1/a", "curl", 200)).keep);
        assert!(!r.decide(&ex("/api/v1/a", "botnet", 200)).keep);
        let d = r.decide(&ex("/other", "curl", 200));
        assert!(!d.keep && r.rule_name(d) == "default");
    }

    #[test]
    fn sampling_keeps_about_one_in_n_and_is_stable() {
        let r = Rules::parse(
            "t",
            "version: 1\nrules:\n  - action: sample\n    every: 10\n    match: { path: /s }\n",
        )
        .unwrap();
        let all: Vec<Exchange> = (0..10_000).map(|_| ex("/s", "c", 200)).collect();
        let kept = all.iter().filter(|e| r.decide(e).keep).count();
        assert!((800..=1200).contains(&kept), "kept {kept} of 10000");
        assert!(all.iter().all(|e| r.decide(e) == r.decide(e)));
    }

    #[test]
    fn errors_say_where_and_what() {
        let e = Rules::parse("f.yaml", "version: 1\nrules:\n  - action: sample\n").unwrap_err();
        assert!(
            e.to_string().contains("rule 1") && e.to_string().contains("every"),
            "{e}"
        );
        let e = Rules::parse(
            "f.yaml",
            "version: 1\nrules:\n  - action: drop\n    match: { colour: red }\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field \"colour\""), "{e}");
        let e = Rules::parse("f.yaml", "version: 1\nrulez: []\n").unwrap_err();
        assert!(e.to_string().contains("rulez"), "{e}");
        let e = Rules::parse("f.yaml", "version: 2\n").unwrap_err();
        assert!(e.to_string().contains("version 2"), "{e}");
        let e = Rules::parse(
            "f.yaml",
            "version: 1\nrules:\n  - action: drop\n    match: { path: \"re:(\" }\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("bad pattern"), "{e}");
        let e = Rules::load("/nonexistent/rules.yaml").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/rules.yaml"), "{e}");
    }
}

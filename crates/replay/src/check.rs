//! Assertions: the new build's answer against the recorded one.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tapwire_model::Response;

use crate::diff::{diff_json, JsonDiff, PathPattern};
use crate::noise::Observed;

/// At most this many JSON differences are kept per failed request.
const MAX_DIFFS: usize = 50;
/// Text previews in reports are cut to this many characters.
const PREVIEW: usize = 200;

/// Why a request failed its assertions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// No answer: connection refused, reset, timed out.
    Error {
        /// What happened.
        message: String,
    },
    /// Another status code.
    Status {
        /// Recorded.
        expected: u16,
        /// Returned.
        actual: u16,
    },
    /// An asserted header differs.
    Header {
        /// Lowercase name.
        name: String,
        /// Recorded value(s), joined by `, `.
        expected: Option<String>,
        /// Returned value(s).
        actual: Option<String>,
    },
    /// JSON bodies differ structurally.
    Json {
        /// The differences (at most 50).
        diffs: Vec<JsonDiff>,
        /// How many differences there were in all.
        total: usize,
    },
    /// Text bodies differ.
    Text {
        /// 1-based line of the first difference.
        line: usize,
        /// That line as recorded (bounded).
        expected: String,
        /// That line as returned (bounded).
        actual: String,
    },
    /// Binary bodies differ.
    Binary {
        /// Recorded size in bytes.
        expected_size: u64,
        /// Returned size in bytes.
        actual_size: u64,
        /// Offset of the first differing byte.
        first_difference: u64,
    },
}

impl Problem {
    /// A one-line description.
    pub fn summary(&self) -> String {
        match self {
            Problem::Error { message } => format!("no response: {message}"),
            Problem::Status { expected, actual } => format!("status {actual}, recorded {expected}"),
            Problem::Header {
                name,
                expected,
                actual,
            } => format!(
                "header {name}: {}, recorded {}",
                actual.as_deref().unwrap_or("(absent)"),
                expected.as_deref().unwrap_or("(absent)")
            ),
            Problem::Json { total, diffs } => {
                let paths: Vec<&str> = diffs.iter().take(5).map(|d| d.path.as_str()).collect();
                format!("{total} JSON difference(s): {}", paths.join(", "))
            }
            Problem::Text { line, .. } => format!("text body differs from line {line}"),
            Problem::Binary {
                first_difference, ..
            } => format!("binary body differs from byte {first_difference}"),
        }
    }
}

/// What to compare and what to leave out, for one endpoint.
#[derive(Debug, Default)]
pub(crate) struct Checks<'a> {
    pub(crate) headers: &'a [String],
    pub(crate) ignore: &'a [PathPattern],
    pub(crate) noisy_headers: Option<&'a BTreeSet<String>>,
    pub(crate) skip_body: bool,
    pub(crate) bodies: bool,
}

pub(crate) fn check(recorded: &Response, actual: &Observed, c: &Checks<'_>) -> Vec<Problem> {
    let mut out = Vec::new();
    if recorded.status != actual.status {
        out.push(Problem::Status {
            expected: recorded.status,
            actual: actual.status,
        });
    }
    for name in c.headers {
        let name = name.to_ascii_lowercase();
        if c.noisy_headers.is_some_and(|n| n.contains(&name)) {
            continue;
        }
        let expected: Vec<&str> = recorded.headers.get_all(&name).collect();
        let expected = (!expected.is_empty()).then(|| expected.join(", "));
        let got = actual.headers.get(&name).cloned();
        if expected != got {
            out.push(Problem::Header {
                name,
                expected,
                actual: got,
            });
        }
    }
    if c.bodies && !c.skip_body {
        out.extend(check_body(recorded, actual, c.ignore));
    }
    out
}

fn check_body(recorded: &Response, actual: &Observed, ignore: &[PathPattern]) -> Option<Problem> {
    let want = &recorded.body;
    // The usual case, and the cheap one: the same bytes as recorded. Parsing
    // both bodies as JSON to find no difference would cost more than the
    // rest of the request.
    if !want.truncated && want.data == actual.body {
        return None;
    }
    if !want.truncated {
        if let (Ok(e), Some(a)) = (
            serde_json::from_slice::<serde_json::Value>(&want.data),
            actual.json.as_ref(),
        ) {
            let diffs = diff_json(&e, a, ignore);
            return (!diffs.is_empty()).then(|| Problem::Json {
                total: diffs.len(),
                diffs: diffs.into_iter().take(MAX_DIFFS).collect(),
            });
        }
    }
    // A truncated recording holds a prefix of the body: compare that much.
    let got: &[u8] = if want.truncated {
        &actual.body[..actual.body.len().min(want.data.len())]
    } else {
        &actual.body
    };
    if got == &want.data[..] {
        return None;
    }
    match (std::str::from_utf8(&want.data), std::str::from_utf8(got)) {
        (Ok(e), Ok(a)) => {
            let (mut el, mut al) = (e.lines(), a.lines());
            let mut line = 1;
            loop {
                match (el.next(), al.next()) {
                    (Some(x), Some(y)) if x == y => line += 1,
                    (x, y) => {
                        return Some(Problem::Text {
                            line,
                            expected: preview(x.unwrap_or("")),
                            actual: preview(y.unwrap_or("")),
                        })
                    }
                }
            }
        }
        _ => Some(Problem::Binary {
            expected_size: want.size,
            actual_size: actual.body.len() as u64,
            first_difference: want
                .data
                .iter()
                .zip(got)
                .position(|(a, b)| a != b)
                .unwrap_or(want.data.len().min(got.len())) as u64,
        }),
    }
}

fn preview(s: &str) -> String {
    if s.chars().count() <= PREVIEW {
        s.to_owned()
    } else {
        let mut p: String = s.chars().take(PREVIEW).collect();
        p.push('…');
        p
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use tapwire_model::{Body, Headers};

    use super::*;

    fn observed(status: u16, body: &str) -> Observed {
        Observed {
            status,
            headers: BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]),
            body: bytes::Bytes::copy_from_slice(body.as_bytes()),
            json: serde_json::from_str(body).ok(),
        }
    }

    fn recorded(status: u16, body: &str) -> Response {
        Response {
            status,
            version: "HTTP/1.1".into(),
            headers: Headers(vec![("Content-Type".into(), "text/plain".into())]),
            body: Body::complete(body.to_owned()),
            trailers: Headers::new(),
        }
    }

    #[test]
    fn status_header_and_bodies() {
        let headers = vec!["content-type".to_owned()];
        let c = Checks {
            headers: &headers,
            bodies: true,
            ..Checks::default()
        };
        let p = check(
            &recorded(200, r#"{"a":1}"#),
            &observed(500, r#"{"a":2}"#),
            &c,
        );
        assert!(matches!(
            p[0],
            Problem::Status {
                expected: 200,
                actual: 500
            }
        ));
        assert!(matches!(&p[1], Problem::Header { name, .. } if name == "content-type"));
        assert!(matches!(&p[2], Problem::Json { total: 1, .. }));
        let p = check(
            &recorded(200, "a\nb\nc"),
            &observed(200, "a\nB\nc"),
            &Checks {
                bodies: true,
                ..Checks::default()
            },
        );
        assert!(matches!(&p[0], Problem::Text { line: 2, .. }), "{p:?}");
        assert!(check(
            &recorded(200, "same"),
            &observed(200, "same"),
            &Checks {
                bodies: true,
                ..Checks::default()
            }
        )
        .is_empty());
    }

    #[test]
    fn identical_bytes_pass_without_parsed_json() {
        // The generator skips parsing an answer whose bytes equal the
        // recording (Observed::json is None then); that must still pass.
        let mut o = observed(200, r#"{"a":1}"#);
        o.json = None;
        let c = Checks {
            bodies: true,
            ..Checks::default()
        };
        assert!(check(&recorded(200, r#"{"a":1}"#), &o, &c).is_empty());
    }
}

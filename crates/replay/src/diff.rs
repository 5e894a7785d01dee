//! Structural JSON diff, and the dotted path patterns that exclude parts of it.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One step into a JSON document: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Seg {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// A location in a JSON document, shown as `$.items[0].id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JsonPath(pub Vec<Seg>);

impl JsonPath {
    fn child(&self, s: Seg) -> Self {
        let mut v = self.0.clone();
        v.push(s);
        Self(v)
    }

    /// The same path with every array index replaced by `*`: the form noise
    /// learning stores, so that a field that varies in one element of a list
    /// is ignored in all of them.
    pub fn generalized(&self) -> String {
        let mut out = String::from("$");
        for s in &self.0 {
            match s {
                Seg::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Seg::Index(_) => out.push_str(".*"),
            }
        }
        out
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for s in &self.0 {
            match s {
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// A pattern over [`JsonPath`]s: `$.a.b`, `$.items.*.id`, `$.items[*].id`,
/// `$.**.updated_at`. `*` matches one step, `**` any number of steps. A
/// pattern matches a path when it matches the path or one of its ancestors,
/// so `$.meta` ignores everything below `meta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    text: String,
    segs: Vec<String>,
}

/// A path pattern that could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("bad JSON path {pattern:?}: {reason} (expected e.g. `$.data.items.*.id`)")]
pub struct PatternError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl PathPattern {
    /// Parses a dotted pattern; the leading `$` is optional.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let err = |reason| PatternError {
            pattern: text.to_owned(),
            reason,
        };
        let t = text.trim();
        let t = t.strip_prefix('$').unwrap_or(t);
        // `[3]` and `[*]` are the same steps as `.3` and `.*`.
        let t = t.replace('[', ".").replace(']', "");
        let t = t.strip_prefix('.').unwrap_or(&t);
        if t.is_empty() {
            return Ok(Self {
                text: text.to_owned(),
                segs: Vec::new(),
            });
        }
        let segs: Vec<String> = t.split('.').map(str::to_owned).collect();
        if segs.iter().any(String::is_empty) {
            return Err(err("empty step"));
        }
        Ok(Self {
            text: text.to_owned(),
            segs,
        })
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when the pattern matches `path` or one of its ancestors.
    ///
    /// Dynamic programming over (pattern step, path step), so that patterns
    /// with many `**` cost `O(pattern × path)` rather than exponential time.
    pub fn matches(&self, path: &JsonPath) -> bool {
        let (p, s) = (&self.segs, &path.0);
        let one = |pat: &str, seg: &Seg| {
            pat == "*"
                || match seg {
                    Seg::Key(k) => k == pat,
                    Seg::Index(i) => pat.parse::<usize>().is_ok_and(|n| n == *i),
                }
        };
        // `next[j]`: the steps after the current one match from path step `j`.
        // The whole pattern consumed matches anywhere (an ancestor matched).
        let mut next = vec![true; s.len() + 1];
        for pat in p.iter().rev() {
            let mut cur = vec![false; s.len() + 1];
            for j in (0..=s.len()).rev() {
                cur[j] = if pat == "**" {
                    // Skip no step, or one more.
                    next[j] || (j < s.len() && cur[j + 1])
                } else {
                    j < s.len() && one(pat, &s[j]) && next[j + 1]
                };
            }
            next = cur;
        }
        next[0]
    }
}

/// One difference between the recorded and the actual document. `None` means
/// the value is absent on that side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonDiff {
    /// Where, e.g. `$.items[0].id`.
    pub path: String,
    /// The recorded value.
    pub expected: Option<Value>,
    /// The value the new build returned.
    pub actual: Option<Value>,
}

/// Every difference between `expected` and `actual` outside the ignored
/// paths, in document order. Object member order is not significant; array
/// order is.
pub fn diff_json(expected: &Value, actual: &Value, ignore: &[PathPattern]) -> Vec<JsonDiff> {
    let mut out = Vec::new();
    walk(&JsonPath::default(), expected, actual, ignore, &mut out);
    out
}

/// The paths (generalized, see [`JsonPath::generalized`]) whose values
/// differ between two documents.
pub fn differing_paths(a: &Value, b: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_paths(&JsonPath::default(), a, b, &mut out);
    out.sort();
    out.dedup();
    out
}

fn collect_paths(path: &JsonPath, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => collect_paths(&path.child(Seg::Key(k.clone())), v, w, out),
                    None => out.push(path.child(Seg::Key(k.clone())).generalized()),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(path.child(Seg::Key(k.clone())).generalized());
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                collect_paths(&path.child(Seg::Index(i)), v, w, out);
            }
        }
        _ if a != b => out.push(path.generalized()),
        _ => {}
    }
}

fn walk(
    path: &JsonPath,
    expected: &Value,
    actual: &Value,
    ignore: &[PathPattern],
    out: &mut Vec<JsonDiff>,
) {
    if ignore.iter().any(|p| p.matches(path)) {
        return;
    }
    fn one(
        out: &mut Vec<JsonDiff>,
        ignore: &[PathPattern],
        p: &JsonPath,
        e: Option<&Value>,
        a: Option<&Value>,
    ) {
        if !ignore.iter().any(|pat| pat.matches(p)) {
            out.push(JsonDiff {
                path: p.to_string(),
                expected: e.cloned(),
                actual: a.cloned(),
            });
        }
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let mut missing = Vec::new();
            for (k, ev) in e {
                let p = path.child(Seg::Key(k.clone()));
                match a.get(k) {
                    Some(av) => walk(&p, ev, av, ignore, out),
                    None => missing.push((p, ev)),
                }
            }
            for (p, ev) in missing {
                one(out, ignore, &p, Some(ev), None);
            }
            for (k, av) in a.iter().filter(|(k, _)| !e.contains_key(*k)) {
                one(
                    out,
                    ignore,
                    &path.child(Seg::Key(k.clone())),
                    None,
                    Some(av),
                );
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            for i in 0..e.len().max(a.len()) {
                let p = path.child(Seg::Index(i));
                match (e.get(i), a.get(i)) {
                    (Some(ev), Some(av)) => walk(&p, ev, av, ignore, out),
                    (ev, av) => one(out, ignore, &p, ev, av),
                }
            }
        }
        (e, a) if e != a => one(out, ignore, path, Some(e), Some(a)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn pats(p: &[&str]) -> Vec<PathPattern> {
        p.iter().map(|s| PathPattern::parse(s).unwrap()).collect()
    }

    #[test]
    fn reports_changed_missing_and_extra_members_with_paths() {
        let e = json!({"a": {"b": 1, "c": [1, 2, 3]}, "gone": true, "same": "x"});
        let a = json!({"a": {"b": 2, "c": [1, 5]}, "new": null, "same": "x"});
        let d = diff_json(&e, &a, &[]);
        let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["$.a.b", "$.a.c[1]", "$.a.c[2]", "$.gone", "$.new"]);
        assert_eq!(d[0].expected, Some(json!(1)));
        assert_eq!(d[0].actual, Some(json!(2)));
        assert_eq!(d[2].actual, None);
        assert_eq!(d[3].actual, None);
        assert_eq!(d[4].expected, None);
    }

    #[test]
    fn ignore_paths_exclude_subtrees_and_wildcards() {
        let e = json!({"meta": {"ts": 1, "id": "a"}, "items": [{"id": 1, "v": "x"}, {"id": 2, "v": "y"}], "keep": 1});
        let a = json!({"meta": {"ts": 2, "id": "b"}, "items": [{"id": 9, "v": "x"}, {"id": 8, "v": "y"}], "keep": 1});
        assert_eq!(diff_json(&e, &a, &[]).len(), 4);
        assert!(diff_json(&e, &a, &pats(&["$.meta", "$.items.*.id"])).is_empty());
        assert!(diff_json(&e, &a, &pats(&["meta", "$.items[*].id"])).is_empty());
        assert!(diff_json(&e, &a, &pats(&["$.**.id", "$.meta.ts"])).is_empty());
        let left = diff_json(&e, &a, &pats(&["$.meta", "$.items[0].id"]));
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].path, "$.items[1].id");
        // Ignoring something else leaves a real change visible.
        let a2 = json!({"meta": {"ts": 2, "id": "b"}, "items": [{"id": 1, "v": "x"}, {"id": 2, "v": "y"}], "keep": 2});
        let left = diff_json(&e, &a2, &pats(&["$.meta"]));
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].path, "$.keep");
    }

    #[test]
    fn many_double_stars_match_in_polynomial_time() {
        let deep = JsonPath((0..60).map(|i| Seg::Key(format!("k{i}"))).collect());
        let p = PathPattern::parse(&format!("${}.nope", ".**".repeat(30))).unwrap();
        let started = std::time::Instant::now();
        assert!(!p.matches(&deep));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let p = PathPattern::parse("$.**.k59.**").unwrap();
        assert!(p.matches(&deep));
        let p = PathPattern::parse("$.k0.*.k2.**.k5").unwrap();
        assert!(p.matches(&deep));
        assert!(!PathPattern::parse("$.k1").unwrap().matches(&deep));
    }

    #[test]
    fn bad_patterns_are_rejected() {
        assert!(PathPattern::parse("$.a..b").is_err());
        assert!(PathPattern::parse("$")
            .unwrap()
            .matches(&JsonPath::default()));
    }

    #[test]
    fn differing_paths_generalize_indexes() {
        let a = json!({"ts": 1, "rows": [{"id": "x", "k": 1}], "s": "same"});
        let b = json!({"ts": 2, "rows": [{"id": "y", "k": 1}], "s": "same"});
        assert_eq!(differing_paths(&a, &b), ["$.rows.*.id", "$.ts"]);
    }
}

//! Entry points for the fuzz targets in `fuzz/`: every parser of user input
//! in the replayer (goals, the stages file, the noise file, JSON path
//! patterns, mock results lines) and the comparison of untrusted response
//! bodies, reachable without files or sockets. Not a stable API.

use std::collections::BTreeMap;
use std::str::FromStr as _;
use std::time::Duration;

use tapwire_model::{Body, Headers, Response};

use crate::check::{check, Checks};
use crate::config::{LoadFile, ReplayConfig};
use crate::diff::{diff_json, differing_paths, JsonPath, PathPattern, Seg};
use crate::noise::{Noise, Observed};
use crate::report::Summary;
use crate::{endpoint_key, Goal};

/// Runs every replay parser on `data`. Parsers must never panic; what they
/// accept must behave: a goal prints as written and evaluates, stages
/// validate and ramp, a noise file survives write → read, a document has no
/// difference with itself.
pub fn parsers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    goal(&text);
    stages(data);
    noise(data);
    pattern(&text);
    let _ = endpoint_key(&text, &text);
    let mut acc = tapwire_mock::MockAccuracy::default();
    for line in text.lines() {
        acc.add_line(line);
    }
    assert!((0.0..=1.0).contains(&acc.ratio()));
    bodies(data);
}

fn goal(text: &str) {
    let Ok(g) = crate::Goal::from_str(text) else {
        return;
    };
    assert_eq!(g.to_string(), text.trim());
    let mut s = Summary::default();
    let _ = g.evaluate(&s);
    s.latency_ms.p99 = f64::MAX;
    s.error_rate = 1.0;
    let _ = g.evaluate(&s);
    let _: Goal = g.to_string().parse().expect("a printed goal parses again");
}

fn stages(data: &[u8]) {
    let Ok(f) = LoadFile::from_json(data) else {
        return;
    };
    let mut cfg = ReplayConfig::new("http://127.0.0.1:1");
    cfg.stages = f.stages.clone();
    cfg.validate().expect("a load file that parsed validates");
    let total = crate::config::stages_duration(&f.stages).expect("validated stages have a length");
    for t in [Duration::ZERO, total / 2, total, total.saturating_mul(2)] {
        let v = crate::run::stage_target(&f.stages, t);
        assert!(v.is_nan() || v >= 0.0, "{v}");
    }
}

fn noise(data: &[u8]) {
    let Ok(n) = Noise::from_json(data) else {
        return;
    };
    for ep in n.endpoints.keys() {
        let _ = n.for_endpoint(ep);
    }
    let json = serde_json::to_vec(&n).expect("noise serializes");
    let again = Noise::from_json(&json).expect("written noise reads back");
    assert_eq!(again, n);
}

fn pattern(text: &str) {
    for line in text.lines() {
        let Ok(p) = PathPattern::parse(line) else {
            continue;
        };
        let paths = [
            JsonPath::default(),
            JsonPath(vec![
                Seg::Key("a".into()),
                Seg::Index(0),
                Seg::Key("b".into()),
            ]),
            JsonPath((0..40).map(|i| Seg::Key(i.to_string())).collect()),
        ];
        for path in &paths {
            let _ = p.matches(path);
        }
    }
}

fn bodies(data: &[u8]) {
    // The first half as the recording, the rest as the new build's answer.
    let (rec, got) = data.split_at(data.len() / 2);
    let recorded = Response {
        status: 200,
        version: "HTTP/1.1".into(),
        headers: Headers::new(),
        body: Body {
            data: bytes::Bytes::copy_from_slice(rec),
            size: rec.len() as u64,
            truncated: rec.first().is_some_and(|b| b & 1 == 1),
        },
        trailers: Headers::new(),
    };
    let observed = Observed {
        status: 200,
        headers: BTreeMap::new(),
        body: bytes::Bytes::copy_from_slice(got),
        json: serde_json::from_slice(got).ok(),
    };
    let ignore: Vec<PathPattern> = String::from_utf8_lossy(rec)
        .lines()
        .take(4)
        .filter_map(|l| PathPattern::parse(l).ok())
        .collect();
    let c = Checks {
        ignore: &ignore,
        bodies: true,
        ..Checks::default()
    };
    for p in check(&recorded, &observed, &c) {
        let _ = p.summary();
    }
    if let Some(v) = &observed.json {
        assert!(diff_json(v, v, &[]).is_empty());
        assert!(differing_paths(v, v).is_empty());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parsers_accept_valid_and_hostile_input() {
        for input in [
            &b"latency.p99 > 200ms"[..],
            b"assertions.pass_rate < 99%",
            br#"{"stages": [{"duration": "10s", "target": 50}, {"duration": "1m", "target": 0}]}"#,
            br#"{"v": 1, "endpoints": {"GET /a": {"paths": ["$.x", "$.**.id"], "headers": ["date"], "body": false}}}"#,
            b"$.items[*].id\n$.**\n$..a",
            b"{\"outcome\":\"hit\"}\n{\"outcome\":\"nope\"}\nnot json",
            b"\xff\xfe<=>==!=",
            b"{\"a\":[1,2,{\"b\":null}]}{\"a\":[1,2,{\"b\":true}]}",
        ] {
            super::parsers(input);
        }
    }
}

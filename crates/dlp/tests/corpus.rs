//! The labelled corpus: thousands of generated personal-data values placed in
//! JSON, forms, headers, query strings and text. None may survive redaction,
//! and look-alikes (UUIDs, timestamps, ids, versions, prices, epochs) must
//! mostly be left alone.

#[path = "support/corpus.rs"]
mod corpus;

use std::collections::BTreeMap;

use corpus::{Rng, CATEGORIES};
use serde_json::json;
use tapwire_dlp::{DlpConfig, RedactionKey, Redactor};
use tapwire_model::{
    jsonl, Body, Direction, Exchange, Headers, Protocol, Request, Response, Service, Upstream,
};

const PER_CATEGORY: usize = 350;

fn redactor() -> Redactor {
    Redactor::new(
        &DlpConfig::default(),
        RedactionKey::new(&[42u8; 32]).expect("key"),
    )
    .expect("redactor")
}

fn exchange(
    query: Option<String>,
    headers: Vec<(String, String)>,
    ct: &str,
    body: String,
) -> Exchange {
    let mut ex = Exchange::new(
        Direction::Inbound,
        Protocol::Http1,
        Service {
            name: "shop".into(),
            ..Service::default()
        },
        Upstream {
            host: "127.0.0.1".into(),
            port: 8080,
        },
    );
    let mut h = Headers::new();
    h.push("host", "shop.internal");
    if !ct.is_empty() {
        h.push("content-type", ct);
    }
    for (n, v) in headers {
        h.push(n, v);
    }
    ex.request = Some(Request {
        method: "POST".into(),
        scheme: "http".into(),
        authority: "shop.internal".into(),
        path: "/api/v1/customers".into(),
        query,
        version: "HTTP/1.1".into(),
        headers: h,
        body: Body::complete(body),
        trailers: Headers::new(),
    });
    ex.response = Some(Response {
        status: 200,
        version: "HTTP/1.1".into(),
        headers: Headers::new(),
        body: Body::default(),
        trailers: Headers::new(),
    });
    ex
}

fn enc(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Places a content value (found by what it looks like) in context `ctx`.
fn place_content(v: &str, ctx: u64) -> Exchange {
    let multiline = v.contains('\n');
    match if multiline && (ctx == 2 || ctx == 3) {
        0
    } else {
        ctx
    } {
        0 => {
            let doc = json!({"account": {"id": 7, "profile": {"notes": [{"kind": "support", "value": v}, {"kind": "none"}]}}, "ok": true});
            exchange(None, vec![], "application/json", doc.to_string())
        }
        1 => exchange(
            None,
            vec![],
            "application/x-www-form-urlencoded",
            format!("comment={}&ok=1", enc(v)),
        ),
        2 => exchange(
            None,
            vec![("x-customer-data".into(), format!("ref {v}"))],
            "",
            String::new(),
        ),
        3 => exchange(
            Some(format!("q={}&page=2", enc(v))),
            vec![],
            "",
            String::new(),
        ),
        _ => exchange(
            None,
            vec![],
            "text/plain",
            format!("Customer note: {v}\nThanks"),
        ),
    }
}

/// Places a value that is recognised by the name of its field.
fn place_keyed(cat: &str, v: &str, ctx: u64) -> Exchange {
    let (json_key, form_key, header): (&str, &str, (String, String)) = match cat {
        "AWS_SECRET_KEY" => (
            "aws_secret_access_key",
            "AWS_SECRET_ACCESS_KEY",
            ("x-aws-secret-access-key".into(), v.to_string()),
        ),
        "BEARER" => (
            "authorization",
            "access_token",
            ("authorization".into(), format!("Bearer {v}")),
        ),
        "BASIC" => (
            "authorization",
            "authorization",
            ("proxy-authorization".into(), format!("Basic {v}")),
        ),
        "COOKIE" => (
            "session_id",
            "sessionid",
            ("cookie".into(), format!("theme=dark; sid={v}; lang=en")),
        ),
        _ => ("password", "password", ("x-api-key".into(), v.to_string())),
    };
    let json_value = match cat {
        "BEARER" => format!("Bearer {v}"),
        "BASIC" => format!("Basic {v}"),
        _ => v.to_string(),
    };
    match ctx {
        0 => {
            let doc = json!({"user": {"name": "n", "credentials": [{"kind": "primary"}], "settings": {json_key: json_value}}});
            exchange(None, vec![], "application/json", doc.to_string())
        }
        1 => exchange(
            None,
            vec![],
            "application/x-www-form-urlencoded",
            format!("user=u1&{form_key}={}", enc(v)),
        ),
        2 => exchange(None, vec![header], "", String::new()),
        3 if cat == "COOKIE" => {
            let mut ex = exchange(None, vec![], "", String::new());
            if let Some(r) = ex.response.as_mut() {
                r.headers
                    .push("set-cookie", format!("session={v}; Path=/; HttpOnly"));
            }
            ex
        }
        3 => exchange(
            Some(format!("page=1&{form_key}={}", enc(v))),
            vec![],
            "",
            String::new(),
        ),
        _ if cat == "COOKIE" => exchange(
            None,
            vec![("cookie".into(), format!("sid={v}"))],
            "",
            String::new(),
        ),
        _ => exchange(
            None,
            vec![],
            "text/plain",
            format!("config:\n{json_key} = {json_value}\nend"),
        ),
    }
}

fn keyed(cat: &str) -> bool {
    matches!(
        cat,
        "AWS_SECRET_KEY" | "BEARER" | "BASIC" | "COOKIE" | "SECRET"
    )
}

/// Everything a reader of the stored exchange could see: the JSON Lines
/// record, plus percent- and JSON-decoded copies of the query and bodies.
fn haystack(ex: &Exchange) -> String {
    let mut h = String::from_utf8(jsonl::encode(ex)).expect("utf-8");
    let mut add = |t: &str| {
        h.push('\n');
        h.push_str(t);
        h.push('\n');
        h.push_str(&percent_decode(t));
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(t) {
            h.push('\n');
            h.push_str(&format!("{v:#}"));
            collect_strings(&v, &mut h);
        }
    };
    if let Some(r) = &ex.request {
        if let Some(q) = &r.query {
            add(q);
        }
        add(&String::from_utf8_lossy(&r.body.data));
        for (_, v) in r.headers.iter() {
            add(v);
        }
    }
    if let Some(r) = &ex.response {
        for (_, v) in r.headers.iter() {
            add(v);
        }
    }
    h
}

fn collect_strings(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::String(s) => {
            out.push('\n');
            out.push_str(s);
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The parts of a value that must not be found after redaction.
fn needles(v: &str) -> Vec<String> {
    if v.starts_with("-----BEGIN") {
        // The key material; the armour lines are public.
        return v
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::to_owned)
            .collect();
    }
    let mut n = vec![v.to_string()];
    let digits: String = v.chars().filter(char::is_ascii_digit).collect();
    if digits.len() >= 9
        && v.chars()
            .all(|c| c.is_ascii_digit() || " -+().".contains(c))
    {
        n.push(digits);
    }
    n
}

#[test]
fn no_personal_data_survives_and_look_alikes_stay() {
    let r = redactor();
    let mut rng = Rng::new(0x5eed_da7a);
    let mut total = 0usize;
    let mut survivors: Vec<(String, String, u64)> = Vec::new();
    let mut per_cat: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut per_ctx = [0usize; 5];
    for &cat in CATEGORIES {
        for i in 0..PER_CATEGORY {
            let v = corpus::value(&mut rng, cat);
            let ctx = (i % 5) as u64;
            let ex = if keyed(cat) {
                place_keyed(cat, &v, ctx)
            } else {
                place_content(&v, ctx)
            };
            per_ctx[ctx as usize] += 1;
            let (red, report) = r.redact_with_report(ex);
            let hay = haystack(red.get());
            total += 1;
            for n in needles(&v) {
                if hay.contains(&n) {
                    survivors.push((cat.to_string(), v.clone(), ctx));
                    break;
                }
            }
            let e = per_cat.entry(cat).or_default();
            e.0 += 1;
            if report.findings.iter().any(|f| f.category == cat) {
                e.1 += 1;
            }
            // Every redacted exchange says what it redacted, and where.
            assert!(
                red.get().tags.keys().any(|k| k.starts_with("dlp:")),
                "{cat} {v:?} ctx {ctx}: no dlp: tag"
            );
        }
    }
    println!("corpus: {total} personal-data values across {} categories, contexts (json, form, header, query, text) = {per_ctx:?}", CATEGORIES.len());
    for (cat, (n, same)) in &per_cat {
        println!("  {cat:<15} {n:>4} values, {same:>4} reported under their own category");
    }
    println!("survivors: {}", survivors.len());
    // The search itself must be able to fail: without redaction, every value is found.
    let off = Redactor::new(
        &DlpConfig::disabled(),
        RedactionKey::new(&[42u8; 32]).expect("key"),
    )
    .expect("redactor");
    let mut check = Rng::new(0x5eed_da7a);
    let mut found_raw = 0usize;
    for &cat in CATEGORIES {
        for i in 0..PER_CATEGORY {
            let v = corpus::value(&mut check, cat);
            let ctx = (i % 5) as u64;
            let ex = if keyed(cat) {
                place_keyed(cat, &v, ctx)
            } else {
                place_content(&v, ctx)
            };
            let hay = haystack(off.redact(ex).get());
            if needles(&v).iter().any(|n| hay.contains(n.as_str())) {
                found_raw += 1;
            }
        }
    }
    assert_eq!(
        found_raw, total,
        "the survivor search misses unredacted values"
    );
    assert!(total >= 5000, "corpus too small: {total}");
    assert!(
        survivors.is_empty(),
        "{} values survived redaction, e.g. {:?}",
        survivors.len(),
        &survivors[..survivors.len().min(10)]
    );

    // Look-alikes, in the same kinds of places, under neutral names.
    let mut kept = 0usize;
    let mut n = 0usize;
    let mut lost: BTreeMap<&str, usize> = BTreeMap::new();
    let mut examples: Vec<String> = Vec::new();
    for i in 0..5000u64 {
        let (kind, v) = corpus::look_alike(&mut rng);
        let ex = match i % 5 {
            0 => {
                let num: Option<u64> = v.parse().ok();
                let value = match num {
                    Some(x) if i % 10 == 0 => json!(x),
                    _ => json!(v),
                };
                exchange(
                    None,
                    vec![],
                    "application/json",
                    json!({"order": {"id": value, "meta": [{"ref": v}]}}).to_string(),
                )
            }
            1 => exchange(
                None,
                vec![],
                "application/x-www-form-urlencoded",
                format!("ref={}&n=1", enc(&v)),
            ),
            2 => exchange(
                None,
                vec![("x-request-ref".into(), v.clone())],
                "",
                String::new(),
            ),
            3 => exchange(
                Some(format!("since={}&limit=50", enc(&v))),
                vec![],
                "",
                String::new(),
            ),
            _ => exchange(None, vec![], "text/plain", format!("processed {v} ok")),
        };
        let red = r.redact(ex);
        let hay = haystack(red.get());
        n += 1;
        if hay.contains(&v) {
            kept += 1;
        } else {
            *lost.entry(kind).or_default() += 1;
            if examples.len() < 10 {
                examples.push(v.clone());
            }
        }
    }
    let precision = kept as f64 / n as f64;
    println!("look-alikes: {n}, left alone: {kept}, precision {precision:.4}; redacted by kind: {lost:?}, e.g. {examples:?}");
    assert!(precision >= 0.9, "precision {precision:.4} < 0.9");
}

//! The DLP redactor on arbitrary bytes, read as a JSON, form and text body
//! and as an exchange's headers, query and path: nothing may panic, a body
//! that parsed as JSON must still parse after redaction, and the redacted
//! exchange must still encode and decode. The scanner's quick reading may
//! only rule out texts in which the full scan finds nothing, and the JSON
//! walker's shortcuts must redact a body as its general path does.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;
use tapwire_dlp::{DlpConfig, RedactionKey, Redactor};
use tapwire_model::{
    jsonl, Body, Direction, Exchange, Headers, Protocol, Request, Response, Service, Upstream,
};

static REDACTOR: LazyLock<Redactor> = LazyLock::new(|| {
    let cfg = DlpConfig::from_yaml(
        "patterns:\n  - name: employee_id\n    regex: 'EMP-[0-9]{6}'\nallow:\n  values: [support@example.com]\n",
    )
    .expect("fuzz config");
    Redactor::new(&cfg, RedactionKey::new(&[9u8; 32]).expect("key")).expect("redactor")
});

/// The built-in policy: without custom patterns, the quick reading and the
/// name cache's predictions are in play.
static DEFAULTS: LazyLock<Redactor> = LazyLock::new(|| {
    Redactor::new(
        &DlpConfig::default(),
        RedactionKey::new(&[9u8; 32]).expect("key"),
    )
    .expect("redactor")
});

/// The built-in policy plus a pattern that never matches: the JSON walker's
/// shortcuts (quick reading, timestamps, integers, names on prediction) are
/// off, and nothing else changes, so it must redact as `DEFAULTS` does.
static GENERAL: LazyLock<Redactor> = LazyLock::new(|| {
    // Bytes that no UTF-8 text, and so no JSON escape, can produce.
    let cfg = DlpConfig::from_yaml(
        "patterns:\n  - name: never\n    regex: '(?-u:\\xFF\\xFE\\xFD\\xFC)'\n",
    )
    .expect("fuzz config");
    Redactor::new(&cfg, RedactionKey::new(&[9u8; 32]).expect("key")).expect("redactor")
});

fuzz_target!(|data: &[u8]| {
    tapwire_dlp::fuzzing::quick_reading(data);
    if !data.windows(4).any(|w| w == b"\xFF\xFE\xFD\xFC") {
        let fast = DEFAULTS.redact_body_bytes("application/json", data, "b");
        let general = GENERAL.redact_body_bytes("application/json", data, "b");
        assert_eq!(fast, general, "the shortcuts changed the redaction");
    }
    let r = &*REDACTOR;
    let input_is_json = serde_json::from_slice::<IgnoredAny>(data).is_ok();
    for ct in [
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "",
    ] {
        let (out, report) = r.redact_body_bytes(ct, data, "request.body");
        // A bare number or literal under a non-JSON type is text (see
        // `Redactor::payload`): `4242 4242 4242 4242` is a card, not four
        // numbers, and its token is not quoted.
        let sniffed = matches!(
            data.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b'[' | b'"')
        );
        if input_is_json
            && (ct == "application/json" || (sniffed && ct != "application/x-www-form-urlencoded"))
        {
            let bytes = out.as_deref().unwrap_or(data);
            if let Err(e) = serde_json::from_slice::<IgnoredAny>(bytes) {
                panic!(
                    "redacted JSON no longer parses: {e}\n{}",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
        assert_eq!(
            out.is_some(),
            !report.findings.is_empty(),
            "every change is recorded"
        );
    }

    // The same document three times in one array: the first copy is read
    // with nothing learnt yet, the others with the names learnt from it
    // (see `KeyCache`). Redaction depends on the values only, so the three
    // copies must come out alike. (Compared as `Value`s, which refuse lone
    // surrogates that `IgnoredAny` lets through.)
    if data.len() < 4096 && serde_json::from_slice::<serde_json::Value>(data).is_ok() {
        let mut three = b"[".to_vec();
        for i in 0..3 {
            if i > 0 {
                three.push(b',');
            }
            three.extend_from_slice(data);
        }
        three.push(b']');
        for r in [&*REDACTOR, &*DEFAULTS] {
            let (out, report) = r.redact_body_bytes("application/json", &three, "b");
            let bytes = out.as_deref().unwrap_or(&three);
            let v: serde_json::Value = serde_json::from_slice(bytes).expect("three copies parse");
            assert!(
                v[0] == v[1] && v[1] == v[2],
                "copies redacted differently: {}",
                String::from_utf8_lossy(bytes)
            );
            assert_eq!(report.findings.len() % 3, 0, "{:?}", report.findings);
        }
    }

    // The same bytes as an exchange: lines before the first empty line are
    // headers (`name: value`), the first of them also the query; the rest
    // is the body.
    let text = String::from_utf8_lossy(data);
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut headers = Headers::new();
    for line in head.lines() {
        if let Some((n, v)) = line.split_once(':') {
            headers.push(n.trim(), v.trim());
        }
    }
    let mut ex = Exchange::new(
        Direction::Inbound,
        Protocol::Http1,
        Service {
            name: "fuzz".into(),
            ..Service::default()
        },
        Upstream {
            host: "localhost".into(),
            port: 80,
        },
    );
    ex.request = Some(Request {
        method: "POST".into(),
        scheme: "http".into(),
        authority: "localhost".into(),
        path: head.lines().next().unwrap_or("/").to_owned(),
        query: head.lines().next().map(str::to_owned),
        version: "HTTP/1.1".into(),
        headers: headers.clone(),
        body: Body::complete(body.as_bytes().to_vec()),
        trailers: headers.clone(),
    });
    ex.response = Some(Response {
        status: 200,
        version: "HTTP/1.1".into(),
        headers,
        body: Body::complete(data.to_vec()),
        trailers: Headers::new(),
    });
    let red = r.redact(ex);
    let line = jsonl::encode(red.get());
    let back = jsonl::decode_line(&line, 1).expect("a redacted exchange must decode");
    assert_eq!(&back, red.get());
});

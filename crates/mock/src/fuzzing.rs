//! Entry points for the fuzz targets in `fuzz/`: the signature of arbitrary
//! requests (query normalization, JSON canonicalization, form parsing,
//! ignore lists), the responder's matching and miss explanations, and the
//! parsers of the mock's flags, reachable without sockets. Not a stable API.

use std::time::Duration;

use bytes::Bytes;
use tapwire_model::{
    Body, Direction, Exchange, Headers, Protocol, Request, Response, Service, Upstream,
};

use crate::signature::{BodyKey, JsonPath, MatchConfig, RequestView, Signature};
use crate::{Answer, Mapping, Responder, ResponderConfig, Timing};

/// One fuzz input split into fields at NUL bytes: method, host, port,
/// path, query, header lines (`name: value`), body, `--ignore-query` names,
/// `--ignore-json-path` paths, `--match-header` names, and a recorded body.
/// Missing fields are empty. Never panics; checks that a signature is
/// stable, that canonical JSON is a fixed point, and that a request equal
/// to a recorded one is a hit.
pub fn signature(data: &[u8]) {
    let mut fields = data.split(|b| *b == 0);
    let mut next = || fields.next().unwrap_or_default();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let lines = |b: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(b)
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let method = text(next());
    let host = text(next());
    let port_text = text(next());
    let port = port_text.trim().parse::<u16>().unwrap_or(80);
    let path = text(next());
    let query_raw = next();
    let query = (!query_raw.is_empty()).then(|| text(query_raw));
    let headers: Vec<(String, String)> = lines(next())
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let body = next().to_vec();
    let ignore_query = lines(next());
    let json_paths = lines(next());
    let match_headers = lines(next());
    let recorded_body = next().to_vec();

    // The flags' own parsers, on the same text.
    for s in json_paths.iter().chain([&host, &port_text, &method]) {
        if let Ok(m) = s.parse::<Mapping>() {
            assert!(!m.host.is_empty());
        }
        if let Ok(t) = s.parse::<Timing>() {
            let _ = t.delay(Duration::from_micros(u64::MAX));
            let _ = t.delay(Duration::from_micros(u64::from(port)));
        }
    }
    let cfg = MatchConfig {
        ignore_query,
        ignore_json_paths: json_paths
            .iter()
            .filter_map(|p| p.parse::<JsonPath>().ok())
            .collect(),
        match_headers,
    };
    let view = RequestView {
        method: &method,
        host: &host,
        port,
        path: &path,
        query: query.as_deref(),
        headers: &headers,
        body: &body,
        body_truncated: false,
    };
    let sig = Signature::of(&view, &cfg);
    assert_eq!(sig, Signature::of(&view, &cfg), "signatures are stable");
    if let BodyKey::Json(canonical) = &sig.body {
        let json = [("content-type".to_owned(), "application/json".to_owned())];
        let again = Signature::of(
            &RequestView {
                headers: &json,
                body: canonical.as_bytes(),
                ..view
            },
            &cfg,
        );
        assert_eq!(&again.body, &sig.body, "canonical JSON is a fixed point");
    }

    let recorded = |body: &[u8]| exchange(&view, body);
    let exchanges = [recorded(&recorded_body), recorded(&body)];
    let responder = Responder::new(
        &exchanges,
        ResponderConfig {
            matching: cfg.clone(),
            ..ResponderConfig::default()
        },
    );
    assert!(
        matches!(responder.respond(&view), Answer::Hit(_)),
        "a request equal to a recorded one is a hit"
    );
    // Against the other recording only: a hit, or a miss with a reason.
    let other = Responder::new(&exchanges[..1], ResponderConfig::default());
    if let Answer::Miss { reason, .. } = other.respond(&view) {
        assert!(!reason.is_empty());
    }
    let _ = sig.differences(&Signature::of(
        &RequestView {
            body: &recorded_body,
            ..view
        },
        &cfg,
    ));
}

fn exchange(view: &RequestView<'_>, body: &[u8]) -> Exchange {
    let mut ex = Exchange::new(
        Direction::Outbound,
        Protocol::Http1,
        Service::default(),
        Upstream {
            host: view.host.to_owned(),
            port: view.port,
        },
    );
    ex.request = Some(Request {
        method: view.method.to_owned(),
        scheme: "http".into(),
        path: view.path.to_owned(),
        query: view.query.map(str::to_owned),
        headers: Headers(view.headers.to_vec()),
        body: Body::complete(Bytes::copy_from_slice(body)),
        ..Request::default()
    });
    ex.response = Some(Response::default());
    ex
}

#[cfg(test)]
mod tests {
    /// Joins fields with the NUL separator the harness splits on.
    fn input(fields: &[&str]) -> Vec<u8> {
        fields.join("\0").into_bytes()
    }

    #[test]
    fn harness_accepts_valid_and_hostile_requests() {
        for fields in [
            &[
                "POST",
                "payments.internal",
                "443",
                "/v1/charges",
                "b=2&a=1&a=%zz",
                "content-type: application/json",
                r#"{"b":[1,{"n":2}],"a":1e5}"#,
                "ts",
                "$.b.*.n",
                "x-tenant",
                r#"{"a":2}"#,
            ][..],
            &["get", "H\u{0}", "", "", "", "", "", "", "", "", ""],
            &[
                "PUT",
                "h",
                "99999",
                "",
                "%",
                "content-type: application/x-www-form-urlencoded",
                "a=%E2%82&+=",
                "",
                "",
                "",
                "a=1",
            ],
            &[
                "\u{fffe}",
                "[::1]",
                "1",
                "/",
                "=&=",
                "authorization: x",
                "[1,2]",
                "",
                "*",
                "",
                "",
            ],
            &["9443=https://payments.internal", "recorded", "0.5x"],
        ] {
            super::signature(&input(fields));
        }
        super::signature(b"\xff\xfe");
        super::signature(b"");
    }
}

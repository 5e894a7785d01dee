//! Exchange-level behaviour: where findings are recorded, what stays valid,
//! determinism of tokens, and the policy switches.

use serde_json::Value;
use tapwire_dlp::{DlpConfig, RedactedBatch, RedactionKey, Redactor};
use tapwire_model::{
    jsonl, Body, Direction, Exchange, Headers, Protocol, Request, Response, Service, TcpFlow,
    Upstream,
};

fn key(b: u8) -> RedactionKey {
    RedactionKey::new(&[b; 32]).expect("key")
}

fn redactor() -> Redactor {
    Redactor::new(&DlpConfig::default(), key(1)).expect("redactor")
}

fn exchange(
    req_headers: &[(&str, &str)],
    query: Option<&str>,
    body: &str,
    resp_headers: &[(&str, &str)],
    resp_body: &str,
) -> Exchange {
    let mut ex = Exchange::new(
        Direction::Outbound,
        Protocol::Http1,
        Service {
            name: "checkout".into(),
            ..Service::default()
        },
        Upstream {
            host: "payments.internal".into(),
            port: 443,
        },
    );
    ex.request = Some(Request {
        method: "POST".into(),
        scheme: "https".into(),
        authority: "payments.internal".into(),
        path: "/v1/charges".into(),
        query: query.map(str::to_owned),
        version: "HTTP/1.1".into(),
        headers: req_headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body: Body::complete(body.to_owned()),
        trailers: Headers::new(),
    });
    ex.response = Some(Response {
        status: 200,
        version: "HTTP/1.1".into(),
        headers: resp_headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body: Body::complete(resp_body.to_owned()),
        trailers: Headers::new(),
    });
    ex
}

fn req_body(ex: &Exchange) -> String {
    String::from_utf8(ex.request.as_ref().expect("request").body.data.to_vec()).expect("utf-8")
}

fn tag<'a>(ex: &'a Exchange, path: &str) -> Option<&'a str> {
    ex.tags.get(&format!("dlp:{path}")).map(String::as_str)
}

#[test]
fn json_bodies_keep_structure_and_record_paths() {
    let body = r#"{
  "customer": {"email": "alice@example.com", "phone": 4155550100, "name": "Alice",
               "emails": ["a1@example.org", "support@example.com"], "password": "hunter2",
               "card": 4242424242424242, "age": 42, "vip": true, "note": null,
               "address": {"ip": "203.0.113.9", "city": "Springfield"}},
  "credentials": {"user": "bob", "pin": 1234, "nested": ["x", {"k": "y"}]},
  "alice@example.com": {"seen": 3},
  "created_at": "2026-11-22T09:00:00.000Z", "id": "0192f6a8-7c3e-7d2e-9c41-6b2f0e8a7d15", "amount": 1299.5
}"#;
    let ex = exchange(&[("content-type", "application/json")], None, body, &[], "");
    let red = redactor().redact(ex);
    let out = req_body(red.get());
    let v: Value = serde_json::from_str(&out).expect("redacted JSON must parse");
    let c = &v["customer"];
    let s = |x: &Value| x.as_str().map(str::to_owned).unwrap_or_default();
    assert!(s(&c["email"]).starts_with("REDACTED-EMAIL-"), "{out}");
    // A number that is personal data becomes a string token.
    assert!(s(&c["phone"]).starts_with("REDACTED-PHONE-"), "{out}");
    assert!(s(&c["card"]).starts_with("REDACTED-CARD-"), "{out}");
    assert!(s(&c["password"]).starts_with("REDACTED-SECRET-"), "{out}");
    assert!(s(&c["emails"][0]).starts_with("REDACTED-EMAIL-"));
    assert!(s(&c["address"]["ip"]).starts_with("REDACTED-IP-"));
    assert_eq!(c["name"], "Alice");
    assert_eq!(c["age"], 42);
    assert_eq!(c["vip"], true);
    assert!(c["note"].is_null());
    assert_eq!(c["address"]["city"], "Springfield");
    // Everything under a secret key is redacted, structure kept.
    assert!(s(&v["credentials"]["user"]).starts_with("REDACTED-SECRET-"));
    assert!(s(&v["credentials"]["pin"]).starts_with("REDACTED-SECRET-"));
    assert!(s(&v["credentials"]["nested"][1]["k"]).starts_with("REDACTED-SECRET-"));
    // A key that is personal data is replaced too.
    assert!(v
        .as_object()
        .expect("object")
        .keys()
        .any(|k| k.starts_with("REDACTED-EMAIL-")));
    assert_eq!(v["created_at"], "2026-11-22T09:00:00.000Z");
    assert_eq!(v["id"], "0192f6a8-7c3e-7d2e-9c41-6b2f0e8a7d15");
    assert_eq!(v["amount"], 1299.5);
    // Untouched bytes stay as they were (formatting included).
    assert!(
        out.starts_with("{\n  \"customer\": {\"email\": \"REDACTED-EMAIL-"),
        "{out}"
    );

    let ex = red.get();
    assert_eq!(tag(ex, "request.body$.customer.email"), Some("EMAIL"));
    assert_eq!(tag(ex, "request.body$.customer.phone"), Some("PHONE"));
    assert_eq!(tag(ex, "request.body$.customer.emails[1]"), Some("EMAIL"));
    assert_eq!(tag(ex, "request.body$.customer.address.ip"), Some("IP"));
    assert_eq!(
        tag(ex, "request.body$.credentials.nested[1].k"),
        Some("SECRET")
    );
    assert_eq!(ex.tags.get("dlp").map(String::as_str), Some("on"));
    // Paths never carry the value, even when the key was the value.
    assert!(
        ex.tags.keys().all(|k| !k.contains("alice@example.com")),
        "{:?}",
        ex.tags
    );
    assert!(ex
        .tags
        .keys()
        .any(|k| k.starts_with("dlp:request.body$[\"REDACTED-EMAIL-")
            || k.starts_with("dlp:request.body$.REDACTED-EMAIL-")));
    let count: usize = ex.tags["dlp.count"].parse().expect("count");
    assert!(count >= 12, "{count}");
}

/// Field names are classified once per document and then recognised in
/// place as "the name that followed the previous one last time": a name that
/// only looks like the expected one, or that changes from record to record,
/// must still get its own class.
#[test]
fn repeated_records_with_changing_names_are_classified_each_time() {
    let r = redactor();
    let body = r#"[{"a":1,"password":"p1","pin":"1234"},
{"a":1,"passwort":"p2","pinned":"5678"},
{"a":1,"password":"p3","pin":"4321"},
{"a":1,"password_hint":"p4","pin":"0000"},
{"a":1,"pass":"p5"},{"a":1,"password":"p6","note":{"password":"p7"}},
{"a":1,"password":"p8","note":{"passwort":"p9"}}]"#;
    let (out, report) = r.redact_body_bytes("application/json", body.as_bytes(), "b");
    let out = String::from_utf8(out.expect("changed")).expect("utf-8");
    let v: Value = serde_json::from_str(&out).expect("parses");
    let secret = |x: &Value| {
        x.as_str()
            .is_some_and(|s| s.starts_with("REDACTED-SECRET-"))
    };
    assert!(secret(&v[0]["password"]) && secret(&v[0]["pin"]), "{out}");
    assert_eq!(v[1]["passwort"], "p2", "{out}");
    assert_eq!(v[1]["pinned"], "5678", "{out}");
    assert!(secret(&v[2]["password"]) && secret(&v[2]["pin"]), "{out}");
    // `*password*` matches a longer name that starts like the expected one.
    assert!(
        secret(&v[3]["password_hint"]) && secret(&v[3]["pin"]),
        "{out}"
    );
    assert_eq!(v[4]["pass"], "p5", "{out}");
    assert!(secret(&v[5]["password"]) && secret(&v[5]["note"]["password"]));
    assert!(secret(&v[6]["password"]), "{out}");
    assert_eq!(v[6]["note"]["passwort"], "p9", "{out}");
    let paths: Vec<&str> = report.findings.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "b$[0].password",
            "b$[0].pin",
            "b$[2].password",
            "b$[2].pin",
            "b$[3].password_hint",
            "b$[3].pin",
            "b$[5].password",
            "b$[5].note.password",
            "b$[6].password",
        ]
    );
}

/// The name cache is reused from one document to the next on a thread; what
/// it learnt about one document must not leak into the next, even where the
/// next holds a different name of the same length at the same place.
#[test]
fn one_documents_names_do_not_carry_over_to_the_next() {
    let r = redactor();
    for _ in 0..3 {
        let (out, _) = r.redact_body_bytes(
            "application/json",
            br#"{"password":"a","x":{"password":"b"}}"#,
            "b",
        );
        assert!(out.is_some());
        let (out, report) = r.redact_body_bytes(
            "application/json",
            br#"{"passXord":"a","x":{"passXord":"b"}}"#,
            "b",
        );
        assert_eq!(out, None, "{:?}", report.findings);
    }
}

#[test]
fn headers_query_form_path_and_cookies() {
    let ex = exchange(
        &[
            ("Host", "payments.internal"),
            (
                "Authorization",
                "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
            ),
            ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
            (
                "Cookie",
                "theme=dark; sid=8f14e45fceea167a5a36dedd4bea2543; csrftoken=abc",
            ),
            ("X-Api-Key", "k-123456"),
            ("X-Forwarded-For", "198.51.100.7, 10.0.0.1"),
            (
                "Referer",
                "https://shop.example/account?email=carol%40example.com&tab=2",
            ),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("User-Agent", "curl/8.5.0"),
        ],
        Some("email=dave%40example.com&access_token=tok_live_99&page=2"),
        "name=Erin&card=4242+4242+4242+4242&password=p%40ss&note=call+%2B1+415-555-0100",
        &[(
            "Set-Cookie",
            "session=s3cr3tv4lue; Path=/; HttpOnly; Secure",
        )],
        "",
    );
    let cfg = DlpConfig::from_yaml("cookies:\n  allow: [theme]\n").expect("config");
    let r = Redactor::new(&cfg, key(1)).expect("redactor");
    let red = r.redact(ex);
    let ex = red.get();
    let req = ex.request.as_ref().expect("request");
    let h = |n: &str| req.headers.get(n).expect("header").to_owned();
    assert_eq!(h("host"), "payments.internal");
    assert!(
        h("authorization").starts_with("Bearer REDACTED-BEARER-"),
        "{}",
        h("authorization")
    );
    assert!(h("proxy-authorization").starts_with("Basic REDACTED-BASIC-"));
    let cookie = h("cookie");
    assert!(
        cookie.starts_with("theme=dark; sid=REDACTED-COOKIE-"),
        "{cookie}"
    );
    assert!(cookie.contains("; csrftoken=REDACTED-COOKIE-"), "{cookie}");
    assert!(h("x-api-key").starts_with("REDACTED-SECRET-"));
    assert!(h("x-forwarded-for").starts_with("REDACTED-IP-"));
    assert!(h("x-forwarded-for").contains(", REDACTED-IP-"));
    let referer = h("referer");
    assert!(
        referer.starts_with("https://shop.example/account?email=REDACTED-EMAIL-")
            && referer.ends_with("&tab=2"),
        "{referer}"
    );
    assert_eq!(h("user-agent"), "curl/8.5.0");
    let q = req.query.as_deref().expect("query");
    assert!(
        q.starts_with("email=REDACTED-EMAIL-")
            && q.contains("&access_token=REDACTED-SECRET-")
            && q.ends_with("&page=2"),
        "{q}"
    );
    let body = req_body(ex);
    assert!(body.starts_with("name=Erin&card=REDACTED-CARD-"), "{body}");
    assert!(
        body.contains("&password=REDACTED-SECRET-") && body.contains("&note=call+REDACTED-PHONE-"),
        "{body}"
    );
    let set_cookie = ex
        .response
        .as_ref()
        .expect("response")
        .headers
        .get("set-cookie")
        .expect("set-cookie");
    assert!(
        set_cookie.starts_with("session=REDACTED-COOKIE-")
            && set_cookie.ends_with("; Path=/; HttpOnly; Secure"),
        "{set_cookie}"
    );

    assert_eq!(tag(ex, "request.headers.authorization"), Some("BEARER"));
    assert_eq!(
        tag(ex, "request.headers.proxy-authorization"),
        Some("BASIC")
    );
    assert_eq!(tag(ex, "request.headers.cookie.sid"), Some("COOKIE"));
    assert_eq!(tag(ex, "request.headers.cookie.theme"), None);
    assert_eq!(tag(ex, "request.query.email"), Some("EMAIL"));
    assert_eq!(tag(ex, "request.query.access_token"), Some("SECRET"));
    assert_eq!(tag(ex, "request.headers.referer.email"), Some("EMAIL"));
    assert_eq!(tag(ex, "request.body.card"), Some("CARD"));
    assert_eq!(tag(ex, "request.body.note"), Some("PHONE"));
    assert_eq!(
        tag(ex, "response.headers.set-cookie.session"),
        Some("COOKIE")
    );
}

#[test]
fn request_paths_are_scanned() {
    let mut ex = exchange(&[], None, "", &[], "");
    if let Some(r) = ex.request.as_mut() {
        r.path = "/users/frank%40example.com/orders/42".into();
    }
    let red = redactor().redact(ex);
    let path = &red.get().request.as_ref().expect("request").path;
    assert!(
        path.starts_with("/users/REDACTED-EMAIL-") && path.ends_with("/orders/42"),
        "{path}"
    );
    assert_eq!(tag(red.get(), "request.path"), Some("EMAIL"));
}

#[test]
fn same_value_same_token_everywhere_and_keys_differ() {
    let email = "grace.hopper@example.com";
    let r = redactor();
    let a = r.redact(exchange(
        &[("content-type", "application/json")],
        None,
        &format!(r#"{{"contact":{{"email":"{email}"}}}}"#),
        &[],
        "",
    ));
    let b = r.redact(exchange(
        &[("x-user", email)],
        Some(&format!("u={}", email.replace('@', "%40"))),
        &format!("hello {email}!"),
        &[],
        &format!(r#"["{email}"]"#),
    ));
    let tok = |s: &str| -> String {
        let i = s.find("REDACTED-EMAIL-").expect("token");
        s[i..i + "REDACTED-EMAIL-".len() + 12].to_owned()
    };
    let t1 = tok(&req_body(a.get()));
    let bx = b.get();
    let req = bx.request.as_ref().expect("request");
    let t2 = tok(req.headers.get("x-user").expect("header"));
    let t3 = tok(req.query.as_deref().expect("query"));
    let t4 = tok(&req_body(bx));
    let t5 = tok(
        std::str::from_utf8(&bx.response.as_ref().expect("response").body.data).expect("utf-8"),
    );
    assert!(
        [&t2, &t3, &t4, &t5].iter().all(|t| **t == t1),
        "{t1} {t2} {t3} {t4} {t5}"
    );
    // Spelling variants of one card number share a token.
    let c1 = r
        .redact_body_bytes("text/plain", b"4242 4242 4242 4242", "b")
        .0
        .expect("changed");
    let c2 = r
        .redact_body_bytes("text/plain", b"4242-4242-4242-4242", "b")
        .0
        .expect("changed");
    assert_eq!(c1, c2);
    // Another installation's key gives other tokens.
    let other = Redactor::new(&DlpConfig::default(), key(2)).expect("redactor");
    let o = other.redact(exchange(
        &[("content-type", "application/json")],
        None,
        &format!(r#"{{"contact":{{"email":"{email}"}}}}"#),
        &[],
        "",
    ));
    let t6 = tok(&req_body(o.get()));
    assert_ne!(t1, t6);
    assert_ne!(a.get().tags["dlp.key"], o.get().tags["dlp.key"]);
}

#[test]
fn disabled_policy_still_goes_through_the_redactor() {
    let r = Redactor::new(&DlpConfig::disabled(), key(1)).expect("redactor");
    assert!(!r.is_enabled());
    let ex = exchange(
        &[("authorization", "Bearer abc")],
        Some("email=a%40example.com"),
        "alice@example.com",
        &[],
        "",
    );
    let before = ex.clone();
    let red = r.redact(ex);
    let mut after = red.into_inner();
    assert_eq!(after.tags.remove("dlp").as_deref(), Some("off"));
    after.tags.remove("dlp.key");
    assert_eq!(after, before);

    // All detectors off is also explicit: content stays, tags say `on`.
    let cfg = DlpConfig::from_yaml(
        "detectors: {email: false, phone: false, card: false, ssn: false, iban: false, ip: false, jwt: false, aws_access_key: false, aws_secret_key: false, google_api_key: false, credentials: false, private_key: false, cookies: false, secret_keys: false}",
    )
    .expect("config");
    let r = Redactor::new(&cfg, key(1)).expect("redactor");
    let red = r.redact(exchange(
        &[("authorization", "Bearer abc")],
        None,
        "alice@example.com password=x",
        &[],
        "",
    ));
    assert_eq!(req_body(red.get()), "alice@example.com password=x");
    assert_eq!(red.get().tags.get("dlp").map(String::as_str), Some("on"));
}

#[test]
fn encoded_bodies_are_dropped_unless_kept() {
    let ex = || {
        exchange(
            &[],
            None,
            "",
            &[("content-encoding", "gzip")],
            "\u{1f}binary alice@example.com",
        )
    };
    let red = redactor().redact(ex());
    let resp = red.get().response.as_ref().expect("response");
    assert!(resp.body.data.is_empty() && resp.body.truncated && resp.body.size > 0);
    assert_eq!(tag(red.get(), "response.body"), Some("ENCODED_BODY"));
    let keep = Redactor::new(
        &DlpConfig::from_yaml("encoded_bodies: keep").expect("config"),
        key(1),
    )
    .expect("redactor");
    let red = keep.redact(ex());
    assert!(!red
        .get()
        .response
        .as_ref()
        .expect("response")
        .body
        .data
        .is_empty());
}

#[test]
fn sizes_and_content_length_follow_the_body_and_records_still_decode() {
    let body = "to a@b.io";
    let ex = exchange(
        &[("content-type", "text/plain"), ("content-length", "9")],
        None,
        body,
        &[],
        "",
    );
    let red = redactor().redact(ex);
    let req = red.get().request.as_ref().expect("request");
    assert_eq!(req.body.size, req.body.data.len() as u64);
    assert_eq!(
        req.headers.get("content-length"),
        Some(req.body.data.len().to_string().as_str())
    );
    assert!(!req.body.truncated);
    let line = jsonl::encode(red.get());
    assert_eq!(&jsonl::decode_line(&line, 1).expect("decodes"), red.get());

    // A truncated body stays marked truncated; its size never drops below the data.
    let mut ex = exchange(&[], None, "", &[], "");
    if let Some(r) = ex.request.as_mut() {
        r.body = Body {
            data: "x a@b.io".into(),
            size: 9,
            truncated: true,
        };
    }
    let red = redactor().redact(ex);
    let b = &red.get().request.as_ref().expect("request").body;
    assert!(b.truncated && b.size >= b.data.len() as u64);
    let line = jsonl::encode(red.get());
    assert_eq!(&jsonl::decode_line(&line, 1).expect("decodes"), red.get());
}

#[test]
fn redaction_is_idempotent() {
    let ex = exchange(
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer abcdef"),
        ],
        Some("phone=%2B14155550100"),
        r#"{"email":"a@example.com","password":"pw","n":4242424242424242,"t":"call +1 415 555 0100"}"#,
        &[],
        "",
    );
    let r = redactor();
    let once = r.redact(ex).into_inner();
    let (twice, report) = r.redact_with_report(once.clone());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(twice.request, once.request);
}

#[test]
fn configured_patterns_and_allowlists() {
    let cfg = DlpConfig::from_yaml(
        r#"
patterns:
  - name: employee_id
    regex: 'EMP-[0-9]{6}'
allow:
  values: [support@example.com]
  regex: ['10\.\d+\.\d+\.\d+']
extra_secret_keys: [pin_code]
"#,
    )
    .expect("config");
    let r = Redactor::new(&cfg, key(1)).expect("redactor");
    let (out, report) = r.redact_body_bytes(
        "application/json",
        br#"{"who":"EMP-123456","mail":"support@example.com","other":"bob@example.com","ip":"10.1.2.3","pin_code":"9876"}"#,
        "request.body",
    );
    let out = String::from_utf8(out.expect("changed")).expect("utf-8");
    assert!(out.contains(r#""who":"REDACTED-EMPLOYEE_ID-"#), "{out}");
    assert!(out.contains(r#""mail":"support@example.com""#), "{out}");
    assert!(out.contains(r#""other":"REDACTED-EMAIL-"#), "{out}");
    assert!(out.contains(r#""ip":"10.1.2.3""#), "{out}");
    assert!(out.contains(r#""pin_code":"REDACTED-SECRET-"#), "{out}");
    let cats: Vec<(&str, &str)> = report
        .findings
        .iter()
        .map(|f| (f.path.as_str(), f.category.as_str()))
        .collect();
    assert_eq!(
        cats,
        vec![
            ("request.body$.who", "EMPLOYEE_ID"),
            ("request.body$.other", "EMAIL"),
            ("request.body$.pin_code", "SECRET")
        ]
    );
}

#[test]
fn broken_json_is_scanned_as_text() {
    // Cut off by the capture limit: not valid JSON, still redacted.
    let body = r#"{"user":{"email":"ivan@example.com","password": "s3cret!", "card":"4242424242424242","bio":"lo"#;
    let (out, report) =
        redactor().redact_body_bytes("application/json", body.as_bytes(), "response.body");
    let out = String::from_utf8(out.expect("changed")).expect("utf-8");
    assert!(
        !out.contains("ivan@example.com")
            && !out.contains("s3cret!")
            && !out.contains("4242424242424242"),
        "{out}"
    );
    assert!(report.findings.iter().all(|f| f.path == "response.body"));
    assert_eq!(report.findings.len(), 3);
}

#[test]
fn tcp_flows_and_private_keys() {
    let mut ex = exchange(&[], None, "", &[], "");
    ex.request = None;
    ex.response = None;
    ex.protocol = Protocol::Tcp;
    let pem =
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----";
    ex.tcp = Some(TcpFlow {
        client_bytes: Body::complete(
            "Q\0\0\0SELECT * FROM users WHERE email='judy@example.com'\0".to_string(),
        ),
        server_bytes: Body::complete(format!("key {pem} end")),
    });
    let red = redactor().redact(ex);
    let tcp = red.get().tcp.as_ref().expect("tcp");
    assert!(!String::from_utf8_lossy(&tcp.client_bytes.data).contains("judy@"));
    assert!(
        String::from_utf8_lossy(&tcp.server_bytes.data).starts_with("key REDACTED-PRIVATE_KEY-")
    );
    assert_eq!(tag(red.get(), "tcp.client_bytes"), Some("EMAIL"));
    assert_eq!(tag(red.get(), "tcp.server_bytes"), Some("PRIVATE_KEY"));
}

#[test]
fn batches_are_redacted_as_a_unit() {
    let r = redactor();
    let batch: RedactedBatch = r.redact_batch(vec![
        exchange(&[], None, "a@example.com", &[], ""),
        exchange(&[], None, "nothing here", &[], ""),
    ]);
    assert_eq!(batch.len(), 2);
    assert!(!req_body(&batch[0]).contains("a@example.com"));
    assert_eq!(req_body(&batch[1]), "nothing here");
    let gathered: RedactedBatch = vec![exchange(&[], None, "b@example.com", &[], "")]
        .into_iter()
        .map(|e| r.redact(e))
        .collect();
    assert_eq!(gathered.len(), 1);
    // The wrapper serializes as the plain value.
    let json = serde_json::to_value(&gathered).expect("serialize");
    assert!(json.is_array());
}

#[test]
fn path_records_are_capped() {
    let cfg = DlpConfig::from_yaml("max_recorded_paths: 2").expect("config");
    let r = Redactor::new(&cfg, key(1)).expect("redactor");
    let body: Vec<String> = (0..5).map(|i| format!("\"u{i}@example.com\"")).collect();
    let red = r.redact(exchange(
        &[("content-type", "application/json")],
        None,
        &format!("[{}]", body.join(",")),
        &[],
        "",
    ));
    let ex = red.get();
    assert_eq!(ex.tags.keys().filter(|k| k.starts_with("dlp:")).count(), 2);
    assert_eq!(
        ex.tags.get("dlp.paths_omitted").map(String::as_str),
        Some("3")
    );
    assert_eq!(ex.tags.get("dlp.count").map(String::as_str), Some("5"));
}

#[test]
fn json_strings_stay_json_whatever_the_content_type() {
    // Found by the `dlp_redact` fuzz target: a top-level JSON string sent as
    // text was scanned as text, which read `\b88::56` as an IPv6 address
    // and cut through the escape.
    let body = br#"":?i?en5\nEH-123103456 \u8047-1234%40exam09.or: 2001:d5|||\b88::56 \u8047""#;
    for ct in ["text/plain", ""] {
        let (out, _) = redactor().redact_body_bytes(ct, body, "request.body");
        let bytes = out.as_deref().unwrap_or(body);
        assert!(
            serde_json::from_slice::<serde_json::Value>(bytes).is_ok(),
            "{ct}: {}",
            String::from_utf8_lossy(bytes)
        );
    }
    // Objects and strings are sniffed; a bare number under a non-JSON type
    // stays text, so a spaced card number is still one card.
    let (out, report) = redactor().redact_body_bytes("text/plain", br#"{"ip":"203.0.113.7"}"#, "b");
    assert!(!String::from_utf8(out.expect("changed"))
        .expect("utf-8")
        .contains("203.0.113.7"));
    assert_eq!(report.findings[0].path, "b$.ip");
    let (out, _) = redactor().redact_body_bytes("text/plain", b"4242 4242 4242 4242", "b");
    assert!(String::from_utf8(out.expect("changed"))
        .expect("utf-8")
        .starts_with("REDACTED-CARD-"));
}

/// The JSON walker's shortcuts (the quick reading from the probes' byte
/// classes, timestamps before the quick reading, integers ruled out by
/// length and first digit, names taken on prediction) only apply without
/// custom patterns. A pattern that never matches turns them all off and
/// leaves the findings alone, so the two redactors must agree byte for
/// byte on every document.
#[test]
fn shortcuts_redact_as_the_general_path_does() {
    const NAMES: &[&str] = &[
        "id",
        "phone",
        "ssn",
        "password",
        "created_at",
        "amount",
        "note",
        "mobile_number",
        "token",
        "tel",
        "name",
        "updated_at",
        "customer_id",
        "trace",
    ];
    const PIECES: &[&str] = &[
        "2026-05-12T13:22:11.123Z",
        "2026-05-12",
        "2026-05-12T13:22+02:00",
        "2026-05-1 13:22",
        "ord_848746581edfb77308f51650",
        "SKU-940406",
        "be38a0f47ba6f293abf8513c5712e576",
        "97b63a389e95257c11961542a5cde4d4",
        "cus_P7ugRE9H5KTviD",
        "+44 20 7946 0958",
        "(415) 555-0100",
        "415-555-0100",
        "4242 4242 4242 4242",
        "123-45-6789",
        "GB82WEST12345698765432",
        "alice@example.com",
        "192.168.1.1",
        "fe80::1",
        "AKIAIOSFODNN7EXAMPLE",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
        "a=b",
        "x--y",
        "Organic coffee beans",
        "AB12 and AK and eyJ",
        "\\u0041KIA",
        "say \\\"hi\\\"",
    ];
    let mut rng = fastrand::Rng::with_seed(0x853c_49e6_748f_ea9b);
    let mut next = move |n: u64| rng.u64(..n);
    let plain = redactor();
    let general = Redactor::new(
        &DlpConfig::from_yaml("patterns:\n  - name: never\n    regex: '(?-u:\\xFF\\xFE)'\n")
            .expect("config"),
        key(1),
    )
    .expect("redactor");
    let mut findings = 0;
    for _ in 0..300 {
        let mut doc = String::from("[");
        let shape: Vec<&str> = (0..1 + next(8))
            .map(|_| NAMES[next(NAMES.len() as u64) as usize])
            .collect();
        for r in 0..1 + next(6) {
            if r > 0 {
                doc.push(',');
            }
            doc.push('{');
            for (i, name) in shape.iter().enumerate() {
                if i > 0 {
                    doc.push(',');
                }
                // Mostly the same names in the same order (so that names
                // are predicted), sometimes another.
                let name = if next(8) == 0 {
                    NAMES[next(NAMES.len() as u64) as usize]
                } else {
                    name
                };
                doc.push_str(&format!("\"{name}\":"));
                match next(6) {
                    0 => {
                        let n = 1 + next(20) as usize;
                        let first = b"0123456789"[next(10) as usize];
                        doc.push(char::from(if n > 1 && first == b'0' {
                            b'4'
                        } else {
                            first
                        }));
                        for _ in 1..n {
                            doc.push(char::from(b'0' + next(10) as u8));
                        }
                        if next(4) == 0 {
                            doc.push_str(".5");
                        }
                    }
                    1 => doc.push_str(
                        ["true", "null", "-12.5e3", "[1,\"2026-01-01\"]"][next(4) as usize],
                    ),
                    2 => doc.push_str("{\"phone\":\"4155550100\",\"a\":\"2026-05-12T13:22:11Z\"}"),
                    _ => {
                        let p = PIECES[next(PIECES.len() as u64) as usize];
                        // Cut where it cannot split an escape.
                        let cut = if p.contains('\\') {
                            p.len()
                        } else {
                            p.len() - next(3).min(p.len() as u64 - 1) as usize
                        };
                        doc.push('"');
                        if next(3) == 0 {
                            // Move what follows across the 16-byte probes.
                            let n = next(34) as usize;
                            doc.push_str(&"lorem ipsum dolor sit amet, consectetur"[..n]);
                            doc.push(' ');
                        }
                        doc.push_str(&p[..cut]);
                        if next(3) == 0 {
                            doc.push_str(PIECES[next(PIECES.len() as u64) as usize]);
                        }
                        doc.push('"');
                    }
                }
            }
            doc.push('}');
        }
        doc.push(']');
        serde_json::from_str::<Value>(&doc).expect("the generator writes JSON");
        let (a, ra) = plain.redact_body_bytes("application/json", doc.as_bytes(), "b");
        let (b, rb) = general.redact_body_bytes("application/json", doc.as_bytes(), "b");
        assert_eq!(a, b, "{doc}");
        assert_eq!(ra, rb, "{doc}");
        findings += ra.findings.len();
    }
    // Not vacuous: plenty was found.
    assert!(findings > 300, "{findings}");
}

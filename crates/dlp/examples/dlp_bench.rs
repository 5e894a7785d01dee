//! Throughput of the DLP redactor on realistic JSON traffic, for
//! `bench/dlp.sh` (which pins it to one core). Prints one tab-separated line
//! per measurement; `--write-corpus DIR` also writes the bodies so that a
//! peer tool can be measured on the same bytes.
//!
//! ```sh
//! cargo run --release -p tapwire-dlp --example dlp_bench -- [--secs 3] [--write-corpus DIR]
//! ```
#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

#[path = "../tests/support/corpus.rs"]
mod corpus;

use std::hint::black_box;
use std::time::{Duration, Instant};

use corpus::Rng;
use tapwire_dlp::{DlpConfig, RedactionKey, Redactor};
use tapwire_model::{
    Body, Direction, Exchange, Headers, Protocol, Request, Response, Service, Upstream,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let secs: f64 = arg("--secs").map_or(Ok(3.0), |s| s.parse())?;
    let r = Redactor::new(&DlpConfig::default(), RedactionKey::new(&[7u8; 32])?)?;
    let mut rng = Rng::new(20261122);
    let personal = corpus::orders_body(&mut rng, true, 1 << 20);
    let clean = corpus::orders_body(&mut rng, false, 1 << 20);
    // Goal D1's density, at most one finding per KB: personal data in one
    // record in five (about 0.8 findings per KB).
    let sparse = corpus::orders_body_every(&mut rng, 5, 1 << 20);
    let personal_10k = corpus::orders_body(&mut rng, true, 10 * 1024);

    if let Some(dir) = arg("--write-corpus") {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(format!("{dir}/personal.json"), &personal)?;
        std::fs::write(format!("{dir}/clean.json"), &clean)?;
    }

    let only = arg("--case");
    // `--iters N`: a fixed number of calls on one case and no timing, for
    // instruction counting under `valgrind --tool=callgrind`.
    if let Some(n) = arg("--iters") {
        let n: u64 = n.parse()?;
        let body = match only.as_deref() {
            Some("json_clean") => &clean,
            Some("json_sparse") => &sparse,
            _ => &personal,
        };
        for _ in 0..n {
            black_box(r.redact_body_bytes(
                "application/json",
                black_box(body.as_bytes()),
                "response.body",
            ));
        }
        return Ok(());
    }
    println!("case\tbytes\tfindings\tMB/s\titerations");
    // Reference points measured in the same run: validating the JSON with
    // serde_json (no redaction), and finding every quote with memchr.
    let (mbps, iters) = throughput(secs, clean.len(), || {
        black_box(
            serde_json::from_slice::<serde::de::IgnoredAny>(black_box(clean.as_bytes())).is_ok(),
        );
    });
    println!(
        "ref_serde_json_validate_clean\t{}\t0\t{mbps:.1}\t{iters}",
        clean.len()
    );
    let (mbps, iters) = throughput(secs, clean.len(), || {
        black_box(memchr::memchr_iter(b'"', black_box(clean.as_bytes())).count());
    });
    println!(
        "ref_memchr_quotes_clean\t{}\t0\t{mbps:.1}\t{iters}",
        clean.len()
    );

    for (name, body) in [
        ("json_personal", &personal),
        ("json_sparse", &sparse),
        ("json_clean", &clean),
    ] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let (out, report) =
            r.redact_body_bytes("application/json", body.as_bytes(), "response.body");
        let findings = report.findings.len();
        if let Some(o) = &out {
            serde_json::from_slice::<serde_json::Value>(o)?;
        }
        let (mbps, iters) = throughput(secs, body.len(), || {
            black_box(r.redact_body_bytes(
                "application/json",
                black_box(body.as_bytes()),
                "response.body",
            ));
        });
        println!("{name}\t{}\t{findings}\t{mbps:.1}\t{iters}", body.len());
    }

    if only.is_some() {
        return Ok(());
    }
    // Whole exchanges: 10 KiB JSON responses with realistic headers.
    let ex = exchange(&personal_10k);
    let bytes = personal_10k.len() + 400;
    let (mbps, iters) = throughput(secs, bytes, || {
        black_box(r.redact(black_box(ex.clone())));
    });
    let findings = r.redact_with_report(ex.clone()).1.findings.len();
    println!("exchange_10k_personal\t{bytes}\t{findings}\t{mbps:.1}\t{iters}");

    // Latency of one 10 KiB body.
    let mut lat: Vec<Duration> = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let t = Instant::now();
        black_box(r.redact_body_bytes(
            "application/json",
            black_box(personal_10k.as_bytes()),
            "response.body",
        ));
        lat.push(t.elapsed());
    }
    lat.sort_unstable();
    let pct =
        |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e6;
    println!(
        "latency_10k_us\tp50={:.1}\tp99={:.1}\tp99.9={:.1}\t{}",
        pct(0.50),
        pct(0.99),
        pct(0.999),
        lat.len()
    );
    Ok(())
}

/// CPU time this thread has used (user + system), from
/// `/proc/thread-self/stat`: on a shared machine the wall clock also counts
/// time spent waiting for the core. Resolution is one clock tick (10 ms).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the parenthesised command name start at the 3rd (state);
    // utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| {
        f.get(n - 3)
            .and_then(|x| x.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((field(14) + field(15)) * 10)
}

/// Runs `f` for about `secs` seconds of this thread's CPU time after a
/// short warm-up; returns MB/s (10^6 bytes) per CPU second of `bytes` per
/// call, and the number of calls.
fn throughput(secs: f64, bytes: usize, mut f: impl FnMut()) -> (f64, u64) {
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(300) {
        f();
    }
    let cpu0 = thread_cpu();
    assert!(cpu0 > Duration::ZERO, "cannot read this thread's CPU time");
    let mut iters = 0u64;
    while (thread_cpu() - cpu0).as_secs_f64() < secs {
        for _ in 0..4 {
            f();
            iters += 1;
        }
    }
    let el = (thread_cpu() - cpu0).as_secs_f64();
    ((bytes as f64 * iters as f64) / el / 1e6, iters)
}

fn exchange(body: &str) -> Exchange {
    let mut ex = Exchange::new(
        Direction::Outbound,
        Protocol::Http1,
        Service {
            name: "checkout".into(),
            ..Service::default()
        },
        Upstream {
            host: "orders.internal".into(),
            port: 443,
        },
    );
    let req_headers: Headers = [
        ("host", "orders.internal"),
        ("authorization", "Bearer 8f14e45fceea167a5a36dedd4bea2543"),
        ("accept", "application/json"),
        ("user-agent", "checkout/2.4.1"),
        ("x-request-id", "req_7Hq2LkP0aZ91xYv3"),
        ("cookie", "sid=0192f6a87c3e7d2e; theme=dark"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .collect();
    ex.request = Some(Request {
        method: "GET".into(),
        scheme: "https".into(),
        authority: "orders.internal".into(),
        path: "/v1/orders".into(),
        query: Some("customer=cus_1234&limit=10&expand=items".into()),
        version: "HTTP/1.1".into(),
        headers: req_headers,
        body: Body::default(),
        trailers: Headers::new(),
    });
    ex.response = Some(Response {
        status: 200,
        version: "HTTP/1.1".into(),
        headers: [
            ("content-type", "application/json"),
            ("content-length", &body.len().to_string()),
            ("date", "Sun, 22 Nov 2026 09:00:00 GMT"),
            ("x-trace-id", "4bf92f3577b34da6a3ce929d0e0e4736"),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect(),
        body: Body::complete(body.to_owned()),
        trailers: Headers::new(),
    });
    ex
}

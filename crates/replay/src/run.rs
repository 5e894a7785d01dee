//! The load generator: sends the recorded requests under a load shape and
//! collects latencies and assertion results.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request};
use http_body_util::{BodyExt as _, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tapwire_model::Response;
use tapwire_store::Snapshot;
use tokio::task::JoinSet;

use crate::check::{check, Checks, Problem};
use crate::config::{Mode, ReplayConfig, Stage};
use crate::conn::{Target, VuConn};
use crate::endpoint::endpoint_key;
use crate::noise::{Noise, Observed};
use crate::report::{
    Assertions, EndpointStats, Failure, Percentiles, Report, Second, Summary, MAX_FAILURES,
    REPORT_VERSION,
};
use crate::ReplayError;

/// Headers that belong to one connection, not to the request.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    // The body may have been cut at the capture limit; hyper sets the length.
    "content-length",
];

/// Larger answers are errors rather than a way to exhaust the replayer's memory.
const MAX_RESPONSE_BODY: usize = 64 << 20;

/// One recorded request, ready to send.
#[derive(Debug)]
struct Planned {
    id: String,
    endpoint: String,
    method: Result<Method, String>,
    path_and_query: String,
    /// `base` + `path_and_query`, parsed once before the run (see `run`).
    uri: Option<http::Uri>,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    recorded: Option<Response>,
    /// Since the first recorded request started.
    offset: Duration,
}

/// The inbound requests selected by `keys` (all when empty), in recorded order.
fn plan(snapshot: &Snapshot, keep_host: bool, keys: &[String]) -> Vec<Planned> {
    let inbound: Vec<_> = snapshot
        .inbound()
        .filter(|e| tapwire_model::selects(keys, &e.key()))
        .filter_map(|e| e.request.as_ref().map(|r| (e, r)))
        .collect();
    let first = inbound.first().map(|(e, _)| e.start);
    inbound
        .into_iter()
        .map(|(e, r)| {
            let headers = r
                .headers
                .iter()
                .filter(|(n, _)| {
                    let n = n.to_ascii_lowercase();
                    !n.starts_with(':')
                        && !HOP_BY_HOP.contains(&n.as_str())
                        && (keep_host || n != "host")
                })
                .filter_map(|(n, v)| {
                    Some((
                        HeaderName::from_bytes(n.as_bytes()).ok()?,
                        HeaderValue::from_str(v).ok()?,
                    ))
                })
                .collect();
            Planned {
                id: e.id.to_string(),
                endpoint: endpoint_key(&r.method, &r.path),
                method: Method::from_bytes(r.method.as_bytes())
                    .map_err(|_| format!("recorded method {:?} is not valid", r.method)),
                path_and_query: r.path_and_query(),
                uri: None,
                headers,
                body: r.body.data.clone(),
                recorded: e.response.clone(),
                offset: first
                    .and_then(|f| (e.start - f).to_std().ok())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

#[derive(Debug, Default)]
struct Collector {
    latencies: HashMap<String, Vec<u64>>,
    endpoints: BTreeMap<String, EndpointStats>,
    seconds: Vec<Second>,
    failures: Vec<Failure>,
    failures_total: u64,
    assertions: Assertions,
    requests: u64,
    errors: u64,
    late: u64,
    dropped: u64,
}

struct EndpointChecks {
    ignore: Vec<crate::diff::PathPattern>,
    noisy_headers: std::collections::BTreeSet<String>,
    skip_body: bool,
}

struct Shared {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// Where closed-model VUs open their own HTTP/1.1 connections.
    target: Target,
    base: String,
    plan: Vec<Planned>,
    checks: HashMap<String, EndpointChecks>,
    cfg: ReplayConfig,
    collector: Mutex<Collector>,
    start: Instant,
    in_flight: AtomicUsize,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn collector(&self) -> std::sync::MutexGuard<'_, Collector> {
        // A panic while holding the lock cannot leave counters half-updated
        // in a way that matters more than losing the report.
        self.collector
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends request `idx`. `full` (noise learning) always keeps the
    /// response headers and parsed JSON; otherwise they are kept only when
    /// an assertion can read them, since building them costs more per
    /// request than the rest of the generator's own work.
    ///
    /// With `conn` (a closed-model VU on HTTP/1.1), the request goes over
    /// that VU's own connection instead of the pooled client.
    async fn send(
        &self,
        idx: usize,
        full: bool,
        conn: Option<&mut VuConn>,
    ) -> Result<Observed, String> {
        let p = &self.plan[idx];
        let method = p.method.clone()?;
        let build = || {
            let mut b = Request::builder().method(method.clone());
            b = match &p.uri {
                Some(uri) => b.uri(uri.clone()),
                None => b.uri(format!("{}{}", self.base, p.path_and_query)),
            };
            for (n, v) in &p.headers {
                b = b.header(n, v);
            }
            b.body(Full::new(p.body.clone()))
                .map_err(|e| format!("cannot build the request: {e}"))
        };
        let req = build()?;
        let fut = async {
            let (parts, body) = match conn {
                Some(conn) => {
                    let mut sent = conn.exchange(&self.target, req, MAX_RESPONSE_BODY).await;
                    // The target closed a kept-alive connection just as the
                    // request went out: once more, on a new connection.
                    if sent.as_ref().is_err_and(|f| f.retryable(&method)) {
                        sent = conn
                            .exchange(&self.target, build()?, MAX_RESPONSE_BODY)
                            .await;
                    }
                    sent.map_err(|f| f.message)?
                }
                None => {
                    let resp = self
                        .client
                        .request(req)
                        .await
                        .map_err(|e| format!("request failed: {}", error_chain(&e)))?;
                    let (parts, body) = resp.into_parts();
                    let body = http_body_util::Limited::new(body, MAX_RESPONSE_BODY)
                        .collect()
                        .await
                        .map_err(|e| format!("reading the response body failed: {e}"))?
                        .to_bytes();
                    (parts, body)
                }
            };
            let mut headers: BTreeMap<String, String> = BTreeMap::new();
            let want_headers = full || !self.cfg.assert_headers.is_empty();
            for (n, v) in parts.headers.iter().filter(|_| want_headers) {
                let v = String::from_utf8_lossy(v.as_bytes());
                headers
                    .entry(n.as_str().to_owned())
                    .and_modify(|e| {
                        e.push_str(", ");
                        e.push_str(&v);
                    })
                    .or_insert_with(|| v.into_owned());
            }
            // An answer byte-identical to the recording passes the body
            // check without its JSON (see `check_body`): skip the parse.
            let want_json = full
                || (self.cfg.check_bodies
                    && p.recorded
                        .as_ref()
                        .is_none_or(|r| r.body.truncated || r.body.data.as_ref() != body.as_ref()));
            Ok(Observed {
                status: parts.status.as_u16(),
                headers,
                json: if want_json {
                    serde_json::from_slice(&body).ok()
                } else {
                    None
                },
                body,
            })
        };
        tokio::time::timeout(self.cfg.timeout, fut)
            .await
            .unwrap_or_else(|_| Err(format!("no response within {:?}", self.cfg.timeout)))
    }

    /// Sends request `idx` (over `conn` when given) and records it,
    /// measuring from `intended`.
    async fn execute(&self, idx: usize, intended: Instant, conn: Option<&mut VuConn>) {
        let result = self.send(idx, false, conn).await;
        let done = Instant::now();
        let latency = done.saturating_duration_since(intended);
        let p = &self.plan[idx];
        let problems = match (&result, &p.recorded) {
            (Err(e), _) => Some(vec![Problem::Error { message: e.clone() }]),
            (Ok(o), Some(rec)) => {
                let ec = self.checks.get(&p.endpoint);
                let c = Checks {
                    headers: &self.cfg.assert_headers,
                    ignore: ec.map_or(&[][..], |c| &c.ignore[..]),
                    noisy_headers: ec.map(|c| &c.noisy_headers),
                    skip_body: ec.is_some_and(|c| c.skip_body),
                    bodies: self.cfg.check_bodies,
                };
                Some(check(rec, o, &c))
            }
            (Ok(_), None) => None,
        };
        let failed = problems.as_ref().is_some_and(|p| !p.is_empty());
        if let Some(pr) = &self.cfg.progress {
            pr.record(failed);
        }
        let second = done.saturating_duration_since(self.start).as_secs() as usize;
        let mut c = self.collector();
        c.requests += 1;
        if c.seconds.len() <= second {
            let from = c.seconds.len();
            c.seconds.extend((from..=second).map(|s| Second {
                second: s as u64,
                ..Second::default()
            }));
        }
        // Look up before inserting: entry() would clone the key on every
        // request, not only on an endpoint's first.
        if !c.endpoints.contains_key(&p.endpoint) {
            c.endpoints.insert(
                p.endpoint.clone(),
                EndpointStats {
                    endpoint: p.endpoint.clone(),
                    ..EndpointStats::default()
                },
            );
        }
        let Some(ep) = c.endpoints.get_mut(&p.endpoint) else {
            return; // inserted just above: never taken
        };
        ep.count += 1;
        if failed {
            ep.failed += 1;
        }
        match &result {
            Err(_) => {
                ep.errors += 1;
                c.errors += 1;
                c.seconds[second].errors += 1;
            }
            Ok(o) => {
                // Valid codes have a static string: no allocation per request.
                let known = http::StatusCode::from_u16(o.status).ok();
                match known.and_then(|k| ep.statuses.get_mut(k.as_str())) {
                    Some(n) => *n += 1,
                    None => *ep.statuses.entry(o.status.to_string()).or_default() += 1,
                }
                c.seconds[second].requests += 1;
                let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                match c.latencies.get_mut(&p.endpoint) {
                    Some(v) => v.push(us),
                    None => {
                        c.latencies.insert(p.endpoint.clone(), vec![us]);
                    }
                }
            }
        }
        if let Some(problems) = problems {
            c.assertions.checked += 1;
            if problems.is_empty() {
                c.assertions.passed += 1;
            } else {
                c.assertions.failed += 1;
                c.failures_total += 1;
                if c.failures.len() < MAX_FAILURES {
                    c.failures.push(Failure {
                        exchange: p.id.clone(),
                        endpoint: p.endpoint.clone(),
                        target: p.path_and_query.clone(),
                        problems,
                    });
                }
            }
        }
    }
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The target (VUs or rate) at `t` into a staged run.
pub(crate) fn stage_target(stages: &[Stage], t: Duration) -> f64 {
    let mut from = 0.0;
    let mut elapsed = Duration::ZERO;
    for s in stages {
        if t < elapsed + s.duration {
            let frac = (t - elapsed).as_secs_f64() / s.duration.as_secs_f64().max(1e-9);
            return from + (s.target - from) * frac;
        }
        elapsed += s.duration;
        from = s.target;
    }
    from
}

/// Open-model send times: `k / rate`, or with stages the times at which the
/// integral of the ramped rate reaches each whole request.
#[derive(Debug)]
struct Schedule {
    rate: f64,
    stages: Vec<Stage>,
    k: u64,
    t: f64,
    acc: f64,
}

impl Schedule {
    fn next(&mut self, limit: Duration) -> Option<Duration> {
        let limit = limit.as_secs_f64();
        if self.stages.is_empty() {
            let t = self.k as f64 / self.rate;
            self.k += 1;
            return (t < limit).then(|| Duration::from_secs_f64(t));
        }
        const DT: f64 = 0.001;
        while self.acc < 1.0 {
            if self.t >= limit {
                return None;
            }
            self.acc += stage_target(&self.stages, Duration::from_secs_f64(self.t)) * DT;
            self.t += DT;
        }
        self.acc -= 1.0;
        Some(Duration::from_secs_f64(self.t))
    }
}

/// Replays `snapshot`'s inbound requests against `config.target`.
pub async fn run(snapshot: &Snapshot, config: ReplayConfig) -> Result<Report, ReplayError> {
    config.validate()?;
    let mut plan = plan(snapshot, config.keep_host, &config.keys);
    if plan.is_empty() {
        let known: BTreeSet<String> = snapshot
            .inbound()
            .filter(|e| e.request.is_some())
            .map(|e| e.key())
            .collect();
        if known.is_empty() {
            return Err(ReplayError::NoRequests(snapshot.manifest.name.clone()));
        }
        return Err(ReplayError::NoneSelected {
            snapshot: snapshot.manifest.name.clone(),
            selectors: config.keys.join(" "),
            known: known.into_iter().collect::<Vec<_>>().join(", "),
        });
    }
    let mut builder = Client::builder(TokioExecutor::new());
    builder.pool_idle_timeout(Duration::from_secs(30));
    if config.http2 {
        builder.http2_only(true);
    }
    let connector = crate::tls::connector(&config)?;
    let client = builder.build(connector.clone());
    let base = config.target.trim_end_matches('/').to_owned();
    let base_uri: http::Uri = base
        .parse()
        .map_err(|e| ReplayError::Config(format!("--target {base:?} is not a URL: {e}")))?;
    let target = Target {
        host: base_uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
        base: base_uri,
        connector,
    };
    // Parsed once here rather than formatted and parsed on every send.
    for p in &mut plan {
        p.uri = format!("{base}{}", p.path_and_query).parse().ok();
    }
    let mut shared = Shared {
        client,
        target,
        base,
        plan,
        checks: HashMap::new(),
        cfg: config,
        collector: Mutex::new(Collector::default()),
        start: Instant::now(),
        in_flight: AtomicUsize::new(0),
    };

    let mut noise = shared.cfg.noise.clone().unwrap_or_default();
    let learned = if shared.cfg.learn_noise {
        let mut learned = Noise::new();
        for idx in 0..shared.plan.len() {
            if let (Ok(a), Ok(b)) = (
                shared.send(idx, true, None).await,
                shared.send(idx, true, None).await,
            ) {
                learned.learn(&shared.plan[idx].endpoint, &a, &b);
            }
        }
        tracing::info!(
            endpoints = learned.endpoints.len(),
            paths = learned
                .endpoints
                .values()
                .map(|e| e.paths.len())
                .sum::<usize>(),
            "learnt response noise"
        );
        noise.merge(&learned);
        Some(learned)
    } else {
        None
    };
    let endpoints: Vec<String> = shared.plan.iter().map(|p| p.endpoint.clone()).collect();
    for ep in endpoints {
        let (mut ignore, noisy_headers, skip_body) = noise.for_endpoint(&ep);
        ignore.extend(shared.cfg.ignore_paths.iter().cloned());
        shared.checks.insert(
            ep,
            EndpointChecks {
                ignore,
                noisy_headers,
                skip_body,
            },
        );
    }

    let started = chrono::Utc::now();
    shared.start = Instant::now();
    let shared = Arc::new(shared);
    let cfg = &shared.cfg;
    // validate() checked that the sum fits.
    let stages_len = crate::config::stages_duration(&cfg.stages).unwrap_or(Duration::MAX);
    let limit = match (cfg.duration, cfg.stages.is_empty()) {
        (Some(d), _) => Some(d),
        (None, false) => Some(stages_len),
        (None, true) => None,
    };
    let iterations = cfg.iterations.or(limit.is_none().then_some(1));
    let n = shared.plan.len();
    if let Some(p) = &cfg.progress {
        if let Some(l) = limit {
            p.duration_ms.store(l.as_millis() as u64, Ordering::Relaxed);
        }
    }
    let load = describe(cfg, limit, iterations);
    match cfg.mode.clone() {
        Mode::Vus(vus) => {
            let max_vus = if cfg.stages.is_empty() {
                vus
            } else {
                cfg.stages
                    .iter()
                    .map(|s| s.target.ceil() as u32)
                    .max()
                    .unwrap_or(0)
            };
            if let (Some(p), Some(i)) = (&cfg.progress, iterations) {
                p.total
                    .store(i * n as u64 * u64::from(max_vus), Ordering::Relaxed);
            }
            let mut set = JoinSet::new();
            for vu in 0..max_vus {
                let s = Arc::clone(&shared);
                set.spawn(async move { virtual_user(&s, vu, limit, iterations).await });
            }
            while set.join_next().await.is_some() {}
        }
        Mode::Rps(rate) => {
            let sched = Schedule {
                rate,
                stages: cfg.stages.clone(),
                k: 0,
                t: 0.0,
                acc: 0.0,
            };
            open_model(&shared, sched, None, limit, iterations).await;
        }
        Mode::Speed(speed) => {
            let offsets: Vec<Duration> = shared
                .plan
                .iter()
                .map(|p| p.offset.div_f64(speed))
                .collect();
            open_model(
                &shared,
                Schedule {
                    rate: 1.0,
                    stages: Vec::new(),
                    k: 0,
                    t: 0.0,
                    acc: 0.0,
                },
                Some(offsets),
                limit,
                iterations,
            )
            .await;
        }
    }
    let elapsed = shared.start.elapsed();
    let shared = Arc::try_unwrap(shared)
        .map_err(|_| ReplayError::Internal("a request task outlived the run".into()))?;
    let cfg = shared.cfg;
    let c = shared
        .collector
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut all: Vec<u64> = c.latencies.values().flatten().copied().collect();
    let mut latencies = c.latencies;
    let endpoints: Vec<EndpointStats> = c
        .endpoints
        .into_values()
        .map(|mut e| {
            e.latency_ms = Percentiles::of(
                latencies
                    .get_mut(&e.endpoint)
                    .map_or(&mut [][..], |v| &mut v[..]),
            );
            e
        })
        .collect();
    let mut assertions = c.assertions;
    assertions.pass_rate = if assertions.checked == 0 {
        1.0
    } else {
        assertions.passed as f64 / assertions.checked as f64
    };
    let duration_s = elapsed.as_secs_f64();
    let answered = c.requests - c.errors;
    let summary = Summary {
        requests: c.requests,
        errors: c.errors,
        error_rate: if c.requests == 0 {
            0.0
        } else {
            c.errors as f64 / c.requests as f64
        },
        late_sends: c.late,
        dropped_sends: c.dropped,
        assertions,
        latency_ms: Percentiles::of(&mut all),
        throughput_rps: if duration_s > 0.0 {
            answered as f64 / duration_s
        } else {
            0.0
        },
    };
    let goals: Vec<_> = cfg.goals.iter().map(|g| g.evaluate(&summary)).collect();
    let (mock, mock_error) = match (&cfg.mock_results, &cfg.mock_admin) {
        (Some(path), _) => (Some(tapwire_mock::MockAccuracy::read(path)?), None),
        // The run happened: a mock that cannot be asked costs its section,
        // not the report.
        (None, Some(url)) => match crate::mock_admin::fetch(url).await {
            Ok(acc) => (Some(acc), None),
            Err(e) => {
                tracing::warn!(mock_admin = %url, error = %e, "mock accuracy is unavailable; the report says so");
                (None, Some(e))
            }
        },
        (None, None) => (None, None),
    };
    let passed = goals.iter().all(|g| g.passed) && summary.assertions.failed == 0;
    if c.failures_total > c.failures.len() as u64 {
        tracing::warn!(
            failed = c.failures_total,
            listed = c.failures.len(),
            "more requests failed than a report lists"
        );
    }
    Ok(Report {
        v: REPORT_VERSION,
        snapshot_id: snapshot.manifest.id.clone(),
        snapshot_name: snapshot.manifest.name.clone(),
        target: cfg.target.clone(),
        load,
        started,
        duration_s,
        summary,
        endpoints,
        throughput: c.seconds,
        failures: c.failures,
        goals,
        keys: cfg.keys.clone(),
        build_tag: cfg.build_tag.clone(),
        mock,
        mock_error,
        learned_noise: learned,
        cluster: None,
        passed,
    })
}

fn describe(cfg: &ReplayConfig, limit: Option<Duration>, iterations: Option<u64>) -> String {
    let shape = match (&cfg.mode, cfg.stages.is_empty()) {
        (Mode::Vus(v), true) => format!("{v} VU(s), closed loop"),
        (Mode::Vus(_), false) => format!("{} VU stages", cfg.stages.len()),
        (Mode::Rps(r), true) => format!("{r} req/s, open model"),
        (Mode::Rps(_), false) => format!("{} rate stages, open model", cfg.stages.len()),
        (Mode::Speed(s), _) => format!("recorded pace x{s}"),
    };
    let mut parts = vec![shape];
    if let Some(l) = limit {
        parts.push(format!("for {}", humantime::format_duration(l)));
    }
    if let Some(i) = iterations {
        parts.push(format!("{i} iteration(s)"));
    }
    if cfg.http2 {
        parts.push(if cfg.target.starts_with("https://") {
            "h2".into()
        } else {
            "h2c".into()
        });
    }
    parts.join(", ")
}

async fn virtual_user(s: &Shared, vu: u32, limit: Option<Duration>, iterations: Option<u64>) {
    let over = |s: &Shared| limit.is_some_and(|l| s.start.elapsed() >= l);
    // HTTP/1.1: one connection of its own (see `conn`); h2c and h2 share
    // the pooled client's multiplexed connection.
    let mut conn = (!s.cfg.http2).then(VuConn::default);
    let mut iter = 0u64;
    while iterations.is_none_or(|i| iter < i) {
        for idx in 0..s.plan.len() {
            if over(s) {
                return;
            }
            if !s.cfg.stages.is_empty() {
                // Ramps: a VU above the current target waits at a request boundary.
                while f64::from(vu) >= stage_target(&s.cfg.stages, s.start.elapsed()).round() {
                    if over(s) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            s.execute(idx, Instant::now(), conn.as_mut()).await;
        }
        iter += 1;
    }
}

/// Starts requests at planned times whatever happens to earlier ones, so a
/// stall in the target shows as latency of every request planned during it
/// (no coordinated omission).
async fn open_model(
    shared: &Arc<Shared>,
    mut sched: Schedule,
    offsets: Option<Vec<Duration>>,
    limit: Option<Duration>,
    iterations: Option<u64>,
) {
    let n = shared.plan.len();
    let total = iterations.map(|i| i * n as u64);
    if let (Some(p), Some(t)) = (&shared.cfg.progress, total) {
        p.total.store(t, Ordering::Relaxed);
    }
    let horizon = limit.unwrap_or(Duration::MAX);
    // Recorded pace: iterations follow each other after one mean gap.
    let period = offsets.as_ref().map(|o| {
        let span = o.last().copied().unwrap_or_default();
        span + (span / n.max(1) as u32).max(Duration::from_millis(1))
    });
    let mut next_at = |k: u64| -> Option<Duration> {
        match (&offsets, period) {
            (Some(o), Some(p)) => {
                let iter = u32::try_from(k / n as u64).ok()?;
                let t = p.checked_mul(iter)? + o[(k % n as u64) as usize];
                (t < horizon).then_some(t)
            }
            _ => sched.next(horizon),
        }
    };
    let mut set = JoinSet::new();
    let mut k = 0u64;
    let mut upcoming = next_at(0);
    while let Some(at) = upcoming {
        if total.is_some_and(|t| k >= t) {
            break;
        }
        let intended = shared.start + at;
        tokio::time::sleep_until(intended.into()).await;
        upcoming = next_at(k + 1);
        let now = Instant::now();
        let late = upcoming.is_some_and(|nx| now > shared.start + nx);
        let idx = (k % n as u64) as usize;
        k += 1;
        while set.try_join_next().is_some() {}
        if shared.in_flight.load(Ordering::Relaxed) >= shared.cfg.max_in_flight {
            shared.collector().dropped += 1;
            continue;
        }
        if late {
            shared.collector().late += 1;
        }
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        let s = Arc::clone(shared);
        set.spawn(async move {
            s.execute(idx, intended, None).await;
            s.in_flight.fetch_sub(1, Ordering::Relaxed);
        });
    }
    while set.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_schedule_ramps() {
        let stages = vec![
            Stage {
                duration: Duration::from_secs(2),
                target: 100.0,
            },
            Stage {
                duration: Duration::from_secs(1),
                target: 100.0,
            },
        ];
        assert!((stage_target(&stages, Duration::from_secs(1)) - 50.0).abs() < 1e-6);
        let mut s = Schedule {
            rate: 0.0,
            stages,
            k: 0,
            t: 0.0,
            acc: 0.0,
        };
        let mut count = 0;
        while s.next(Duration::from_secs(3)).is_some() {
            count += 1;
        }
        // 100 during the ramp (area of the triangle) plus 100 at full rate.
        assert!((195..=205).contains(&count), "{count}");
    }

    #[test]
    fn fixed_rate_schedule() {
        let mut s = Schedule {
            rate: 50.0,
            stages: Vec::new(),
            k: 0,
            t: 0.0,
            acc: 0.0,
        };
        let mut count = 0;
        while s.next(Duration::from_secs(4)).is_some() {
            count += 1;
        }
        assert_eq!(count, 200);
    }
}

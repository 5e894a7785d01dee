//! `tapwire replay`: replays a snapshot against a build and writes reports.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tapwire_replay::diff::PathPattern;
use tapwire_replay::{Goal, LoadFile, Mode, Noise, Progress, ReplayConfig, Stage};
use tapwire_store::{Location, SnapshotStore};

use super::{println_out, runtime};
use crate::args::StoreArg;

/// Replay a snapshot's recorded inbound requests against a build of the
/// service, check the answers against the recording, and write reports.
///
/// Example: tapwire replay --snapshot nightly --target http://localhost:8080 --rps 50 --duration 1m
#[derive(Debug, clap::Args)]
pub(crate) struct ReplayCmd {
    /// Snapshot to replay, by name or id.
    #[arg(long)]
    snapshot: String,
    /// Base URL of the build under test (http://host:port or https://host:port).
    #[arg(long)]
    target: String,
    /// PEM bundle of CAs to trust for an https:// target, besides the system roots.
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Do not verify the https:// target's certificate (self-signed test
    /// builds only; a warning is logged).
    #[arg(long)]
    insecure: bool,
    #[command(flatten)]
    store: StoreArg,
    /// Closed model: this many virtual users, each replaying the requests in
    /// recorded order as fast as answers come (default 1).
    #[arg(long, conflicts_with_all = ["rps", "speed"])]
    vus: Option<u32>,
    /// Open model: start this many requests per second at fixed intervals;
    /// latency counts from the planned send time.
    #[arg(long, conflicts_with = "speed")]
    rps: Option<f64>,
    /// Open model on the recording's clock: inter-arrival times divided by
    /// N (`2x` is twice as fast, `0.5x` half as fast).
    #[arg(long, value_parser = parse_speed)]
    speed: Option<f64>,
    /// Stop starting requests after this long (e.g. 30s, 5m).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Passes over the recorded requests (per VU in the closed model);
    /// 1 when neither --duration nor --config is given.
    #[arg(long)]
    iterations: Option<u64>,
    /// JSON file with ramp stages: {"stages": [{"duration": "10s", "target": 50}]};
    /// targets are VUs, or requests per second with --rps.
    #[arg(long)]
    config: Option<PathBuf>,
    /// One ramp stage, DURATION:TARGET (repeatable, run in order): over
    /// DURATION the target moves linearly to TARGET VUs, or requests per
    /// second with --rps; e.g. --stage 30s:50 --stage 1m:50 --stage 10s:0.
    /// The command-line form of --config's stages.
    #[arg(
        long = "stage",
        value_name = "DURATION:TARGET",
        conflicts_with = "config"
    )]
    stages: Vec<Stage>,
    /// Replay only recorded requests with this traffic key,
    /// `service:host:port` as `tapwire inspect` shows it, or `*`
    /// (repeatable; default all).
    #[arg(long = "key", value_name = "SELECTOR", value_parser = super::mock::parse_selector)]
    keys: Vec<String>,
    /// A label for the build under test (a version, commit or image tag),
    /// shown in the reports.
    #[arg(long, value_name = "TAG", env = "TAPWIRE_BUILD_TAG")]
    build_tag: Option<String>,
    /// Speak HTTP/2 to the target: with prior knowledge (h2c) to an
    /// http:// target, by ALPN to an https:// one.
    #[arg(long)]
    http2: bool,
    /// Send the recorded Host header instead of the target's.
    #[arg(long)]
    keep_host: bool,
    /// Per-request deadline.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Open model: drop (and count) sends beyond this many requests in flight.
    #[arg(long, default_value_t = 1000)]
    max_in_flight: usize,
    /// Response header whose value must match the recording (repeatable).
    #[arg(long = "assert-header", value_name = "NAME")]
    assert_headers: Vec<String>,
    /// JSON path left out of body comparison, e.g. `$.meta.ts` or
    /// `$.items.*.id` (repeatable).
    #[arg(long = "ignore-path", value_name = "PATH", value_parser = parse_pattern)]
    ignore_paths: Vec<PathPattern>,
    /// Compare status and headers only, not bodies.
    #[arg(long)]
    no_body_check: bool,
    /// Send every request twice first, write the JSON paths and headers
    /// whose values differ between the two answers to FILE, and ignore them.
    #[arg(long, value_name = "FILE")]
    learn_noise: Option<PathBuf>,
    /// Ignore the noise learnt earlier with --learn-noise.
    #[arg(long, value_name = "FILE")]
    noise: Option<PathBuf>,
    /// Fail the run when this holds, e.g. 'latency.p99 > 200ms' or
    /// 'assertions.pass_rate < 0.99' (repeatable). Metrics: latency.p50,
    /// latency.p90, latency.p95, latency.p99, latency.max, errors.rate,
    /// assertions.pass_rate, throughput.rps.
    #[arg(long = "fail-if", value_name = "GOAL")]
    fail_if: Vec<Goal>,
    /// Exit 0 even when assertions fail (goals still count).
    #[arg(long)]
    no_fail_on_assertions: bool,
    /// The mock responder's results (JSON Lines with an `outcome` field), for
    /// the mock accuracy section.
    #[arg(long, value_name = "FILE")]
    mock_results: Option<PathBuf>,
    /// A running mock responder's admin URL, e.g.
    /// http://orders-responder.shop.svc:4146: its /accuracy is read after
    /// the run for the mock accuracy section (if it cannot be read, the
    /// report says why).
    #[arg(long, value_name = "URL", conflicts_with = "mock_results")]
    mock_admin: Option<String>,
    /// Where report.json, report.html and junit.xml are written.
    #[arg(long, default_value = "./tapwire-report")]
    report_dir: PathBuf,
    /// Also upload the reports to this store location (a directory,
    /// file://, s3://, gs:// or az:// URL, e.g. s3://bucket/reports/nightly),
    /// one object per file, report.json last.
    #[arg(long, value_name = "URL", env = "TAPWIRE_REPORT_TO")]
    report_to: Option<String>,
    /// Never draw a progress bar (it is drawn only when stderr is a terminal).
    #[arg(long)]
    no_progress: bool,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    let n = s.strip_suffix(['x', 'X']).unwrap_or(s);
    match n.parse::<f64>() {
        Ok(v) if v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a speed factor like 2x or 0.5x")),
    }
}

fn parse_pattern(s: &str) -> Result<PathPattern, String> {
    PathPattern::parse(s).map_err(|e| e.to_string())
}

pub(crate) fn run(cmd: ReplayCmd) -> anyhow::Result<ExitCode> {
    let mut cfg = ReplayConfig::new(cmd.target.clone());
    cfg.mode = match (cmd.vus, cmd.rps, cmd.speed) {
        (_, Some(r), _) => Mode::Rps(r),
        (_, _, Some(s)) => Mode::Speed(s),
        (v, None, None) => Mode::Vus(v.unwrap_or(1)),
    };
    if let Some(path) = &cmd.config {
        cfg.stages = LoadFile::read(path)?.stages;
    } else {
        cfg.stages = cmd.stages.clone();
    }
    cfg.keys = cmd.keys.clone();
    cfg.build_tag = cmd.build_tag.clone();
    cfg.mock_admin = cmd.mock_admin.clone();
    cfg.duration = cmd.duration;
    cfg.iterations = cmd.iterations;
    cfg.http2 = cmd.http2;
    cfg.keep_host = cmd.keep_host;
    cfg.cacert = cmd.cacert.clone();
    cfg.insecure = cmd.insecure;
    cfg.timeout = cmd.timeout;
    cfg.max_in_flight = cmd.max_in_flight;
    cfg.assert_headers = cmd.assert_headers.clone();
    cfg.ignore_paths = cmd.ignore_paths.clone();
    cfg.check_bodies = !cmd.no_body_check;
    cfg.goals = cmd.fail_if.clone();
    cfg.mock_results = cmd.mock_results.clone();
    cfg.learn_noise = cmd.learn_noise.is_some();
    if let Some(p) = &cmd.noise {
        cfg.noise = Some(Noise::read(p)?);
    }
    if let Some(p) = &cmd.mock_results {
        if !p.is_file() {
            bail!("--mock-results {}: no such file", p.display());
        }
    }
    let progress = Arc::new(Progress::default());
    let draw = !cmd.no_progress && std::io::stderr().is_terminal();
    if draw {
        cfg.progress = Some(Arc::clone(&progress));
    }

    let rt = runtime()?;
    // Opened before the run, so that an unusable URL fails at once (inside
    // the runtime: cloud clients are built on it).
    let report_to = match cmd.report_to.as_deref() {
        Some(url) => Some(rt.block_on(async {
            Location::open(url).with_context(|| format!("--report-to {url}"))
        })?),
        None => None,
    };
    let report = rt.block_on(async {
        let snapshots = SnapshotStore::new(Location::open(&cmd.store.store)?);
        let snap = snapshots
            .load(&cmd.snapshot)
            .await
            .with_context(|| format!("cannot load snapshot {:?}", cmd.snapshot))?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let bar = draw.then(|| spawn_bar(Arc::clone(&progress), Arc::clone(&stop)));
        let report = tapwire_replay::run(&snap, cfg).await;
        stop.store(true, Ordering::Relaxed);
        if let Some(b) = bar {
            let _ = b.join();
        }
        anyhow::Ok(report?)
    })?;

    if let (Some(path), Some(noise)) = (&cmd.learn_noise, &report.learned_noise) {
        noise.write(path)?;
        eprintln!(
            "learnt noise in {} endpoint(s) into {}",
            noise
                .endpoints
                .values()
                .filter(|e| !e.paths.is_empty() || !e.headers.is_empty() || e.body)
                .count(),
            path.display()
        );
    }
    report.write(&cmd.report_dir)?;
    println_out(&super::report::summary_table(&report));
    eprintln!(
        "reports written to {} (report.json, report.html, junit.xml)",
        cmd.report_dir.display()
    );
    if let Some(to) = &report_to {
        rt.block_on(report.upload(to))
            .with_context(|| format!("cannot upload the reports to {}", to.url()))?;
        eprintln!("reports uploaded to {}", to.url());
    }
    let failed_assertions = report.summary.assertions.failed > 0 && !cmd.no_fail_on_assertions;
    Ok(if !report.goals_passed() || failed_assertions {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn spawn_bar(
    p: Arc<Progress>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let total = p.total.load(Ordering::Relaxed);
        let bar = if total > 0 {
            indicatif::ProgressBar::new(total)
        } else {
            indicatif::ProgressBar::new_spinner()
        };
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        let style = if total > 0 {
            "{bar:40} {pos}/{len} requests, {msg} [{elapsed}]"
        } else {
            "{spinner} {pos} requests, {msg} [{elapsed}]"
        };
        if let Ok(s) = indicatif::ProgressStyle::with_template(style) {
            bar.set_style(s);
        }
        while !stop.load(Ordering::Relaxed) {
            bar.set_length(p.total.load(Ordering::Relaxed).max(1));
            bar.set_position(p.done.load(Ordering::Relaxed));
            bar.set_message(format!("{} failed", p.failed.load(Ordering::Relaxed)));
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish_and_clear();
    })
}

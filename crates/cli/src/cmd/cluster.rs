//! `tapwire cluster`: replays in a Kubernetes cluster through the
//! `TrafficReplay` resource, using the kubeconfig the way kubectl does.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use comfy_table::{presets, Table};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use tapwire_operator::replay::crd::{
    Cleanup, Phase, ReplayMode, StageSpec, TestSpec, TrafficReplay, TrafficReplaySpec, WorkloadRef,
};

use super::println_out;

/// Where to find the cluster (like kubectl's flags).
#[derive(Debug, clap::Args)]
pub(crate) struct KubeArgs {
    /// Namespace (default: the kubeconfig context's namespace, else `default`).
    #[arg(long, short = 'n', global = true)]
    namespace: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster).
    #[arg(long, global = true, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use (default: the current context).
    #[arg(long, global = true)]
    context: Option<String>,
}

/// Replay in a cluster: create, follow and read `TrafficReplay` resources.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ClusterCmd {
    /// Replay a snapshot against a workload in the cluster.
    ///
    /// Creates a TrafficReplay; the operator starts the responder, routes
    /// the workload's outbound calls to it, runs the generator, writes the
    /// report and restores the workload. With --wait, follows it and exits
    /// 0 when the replay passed, 1 when it missed its goals or assertions,
    /// 2 on an error.
    ///
    /// Example: tapwire cluster replay orders --snapshot orders-2026-11-30 -n shop --wait
    Replay(Box<ReplayArgs>),
    /// List TrafficReplays.
    ///
    /// Example: tapwire cluster replays -n shop
    Replays {
        /// All namespaces.
        #[arg(long, short = 'A')]
        all_namespaces: bool,
        #[command(flatten)]
        kube: KubeArgs,
    },
    /// Print a finished replay's verdict, figures and report location.
    ///
    /// Example: tapwire cluster report orders-replay-x7k2p -n shop
    Report {
        /// The TrafficReplay's name.
        name: String,
        /// Print the status as JSON instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        kube: KubeArgs,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct ReplayArgs {
    /// The workload under test (a Deployment unless --kind says otherwise).
    workload: String,
    /// The snapshot to replay (id or name).
    #[arg(long)]
    snapshot: String,
    /// The workload's kind.
    #[arg(long, default_value = "Deployment", value_parser = ["Deployment", "StatefulSet", "DaemonSet"])]
    kind: String,
    /// Which halves run.
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// Closed model: virtual users.
    #[arg(long, conflicts_with = "rps")]
    vus: Option<u32>,
    /// Open model: requests per second.
    #[arg(long)]
    rps: Option<f64>,
    /// Stop after this long (30s, 5m).
    #[arg(long)]
    duration: Option<String>,
    /// Passes over the snapshot's requests.
    #[arg(long)]
    iterations: Option<u64>,
    /// A ramp stage DURATION:TARGET (repeat for several), e.g. 30s:50.
    #[arg(long = "stage", value_name = "DURATION:TARGET")]
    stages: Vec<String>,
    /// A goal that fails the replay, e.g. 'latency.p99 > 200ms' (repeatable).
    #[arg(long = "fail-if", value_name = "GOAL")]
    goals: Vec<String>,
    /// JSON paths left out of body comparison (repeatable).
    #[arg(long = "ignore-path", value_name = "PATH")]
    ignore_paths: Vec<String>,
    /// Outbound keys to mock (service:host:port or *; repeatable).
    #[arg(long = "mock", value_name = "KEY")]
    mocks: Vec<String>,
    /// Inbound keys to replay (service:host:port or *; repeatable).
    #[arg(long = "test", value_name = "KEY")]
    tests: Vec<String>,
    /// What to undo afterwards.
    #[arg(long, value_enum)]
    cleanup: Option<CleanupArg>,
    /// Longest the whole replay may take (default 15m).
    #[arg(long)]
    timeout: Option<String>,
    /// A label for the build under test.
    #[arg(long)]
    build_tag: Option<String>,
    /// Name of the TrafficReplay (default: WORKLOAD-replay-<random>).
    #[arg(long)]
    name: Option<String>,
    /// Follow the replay until it finishes and exit with its verdict.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up following after this long (the replay goes on).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    wait_timeout: Duration,
    #[command(flatten)]
    kube: KubeArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    FullReplay,
    ResponderOnly,
    GeneratorOnly,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CleanupArg {
    Inventory,
    All,
    None,
}

pub(crate) fn run(cmd: ClusterCmd) -> anyhow::Result<ExitCode> {
    super::runtime()?.block_on(async move {
        match cmd {
            ClusterCmd::Replay(a) => replay(*a).await,
            ClusterCmd::Replays {
                all_namespaces,
                kube,
            } => list(all_namespaces, &kube).await,
            ClusterCmd::Report { name, json, kube } => report(&name, json, &kube).await,
        }
    })
}

async fn client(k: &KubeArgs) -> anyhow::Result<(Client, String)> {
    let options = KubeConfigOptions {
        context: k.context.clone(),
        ..Default::default()
    };
    let config = match &k.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &options).await?
        }
        None => kube::Config::from_kubeconfig(&options)
            .await
            .or_else(|_| kube::Config::incluster())
            .context("no cluster configured: set KUBECONFIG or --kubeconfig, or run in a pod")?,
    };
    let namespace = k
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    Ok((Client::try_from(config)?, namespace))
}

fn spec(a: &ReplayArgs, namespace: &str) -> anyhow::Result<TrafficReplaySpec> {
    let stages = a
        .stages
        .iter()
        .map(|s| {
            let (d, t) = s
                .split_once(':')
                .with_context(|| format!("--stage {s:?}: use DURATION:TARGET, e.g. 30s:50"))?;
            let target = t
                .parse::<f64>()
                .with_context(|| format!("--stage {s:?}: {t:?} is not a number"))?;
            Ok(StageSpec {
                duration: d.to_owned(),
                target,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let test = TestSpec {
        vus: a.vus,
        rps: a.rps,
        duration: a.duration.clone(),
        iterations: a.iterations,
        stages,
        assert_headers: Vec::new(),
        ignore_paths: a.ignore_paths.clone(),
        goals: a.goals.clone(),
    };
    Ok(TrafficReplaySpec {
        snapshot: a.snapshot.clone(),
        workload: WorkloadRef {
            kind: Some(a.kind.clone()),
            name: a.workload.clone(),
            namespace: Some(namespace.to_owned()),
        },
        mode: a.mode.map(|m| match m {
            ModeArg::FullReplay => ReplayMode::FullReplay,
            ModeArg::ResponderOnly => ReplayMode::ResponderOnly,
            ModeArg::GeneratorOnly => ReplayMode::GeneratorOnly,
        }),
        test: (test != TestSpec::default()).then_some(test),
        mocks: (!a.mocks.is_empty()).then(|| a.mocks.clone()),
        tests: (!a.tests.is_empty()).then(|| a.tests.clone()),
        cleanup: a.cleanup.map(|c| match c {
            CleanupArg::Inventory => Cleanup::Inventory,
            CleanupArg::All => Cleanup::All,
            CleanupArg::None => Cleanup::None,
        }),
        timeout: a.timeout.clone(),
        build_tag: a.build_tag.clone(),
    })
}

async fn replay(a: ReplayArgs) -> anyhow::Result<ExitCode> {
    let (client, namespace) = client(&a.kube).await?;
    let api: Api<TrafficReplay> = Api::namespaced(client, &namespace);
    let mut metadata = ObjectMeta {
        namespace: Some(namespace.clone()),
        ..Default::default()
    };
    match &a.name {
        Some(n) => metadata.name = Some(n.clone()),
        None => metadata.generate_name = Some(format!("{}-replay-", a.workload)),
    }
    let resource = TrafficReplay {
        metadata,
        spec: spec(&a, &namespace)?,
        status: None,
    };
    let created = api
        .create(&PostParams::default(), &resource)
        .await
        .map_err(|e| explain(e, &namespace))?;
    let name = created.metadata.name.clone().unwrap_or_default();
    eprintln!("trafficreplay.tapwire.dev/{name} created in namespace {namespace}");
    if !a.wait {
        eprintln!(
            "follow it with: tapwire cluster report {name} -n {namespace} (or kubectl get replay {name} -n {namespace} -w)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    follow(&api, &name, a.wait_timeout).await
}

/// Turns the API server's answer into advice.
fn explain(e: kube::Error, namespace: &str) -> anyhow::Error {
    match &e {
        kube::Error::Api(s) if s.code == 404 => anyhow::anyhow!(
            "the cluster does not know TrafficReplay (tapwire.dev/v1alpha1): install the tapwire chart, or kubectl apply -f charts/tapwire/crds/ ({})",
            s.message
        ),
        kube::Error::Api(s) if s.code == 403 => anyhow::anyhow!(
            "not allowed to create TrafficReplays in namespace {namespace}: {}",
            s.message
        ),
        // Validation webhook refusals carry the precise reason already.
        kube::Error::Api(s) => anyhow::anyhow!("the cluster refused the replay: {}", s.message),
        _ => anyhow::Error::new(e).context("cannot reach the cluster"),
    }
}

/// Polls the resource and shows its phase until it finishes.
async fn follow(api: &Api<TrafficReplay>, name: &str, limit: Duration) -> anyhow::Result<ExitCode> {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if let Ok(s) = indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}") {
        bar.set_style(s);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    loop {
        let r = api.get(name).await?;
        let status = r.status.clone().unwrap_or_default();
        let line = format!(
            "{}{}",
            status
                .phase
                .map_or_else(|| "Pending".to_owned(), |p| format!("{p:?}")),
            status
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        );
        if line != last {
            bar.set_message(line.clone());
            last = line;
        }
        if matches!(status.phase, Some(Phase::Complete | Phase::Failed)) {
            bar.finish_and_clear();
            println_out(&describe(&r));
            return Ok(verdict(&r));
        }
        if Instant::now() > deadline {
            bar.finish_and_clear();
            anyhow::bail!(
                "stopped following after {}; the replay goes on: tapwire cluster report {name}",
                humantime::format_duration(limit)
            );
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
}

/// 0 passed, 1 missed goals or assertions, 2 error or unfinished.
fn verdict(r: &TrafficReplay) -> ExitCode {
    let ready = r
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    match ready.map(|c| c.reason.as_str()) {
        Some("Passed") => ExitCode::SUCCESS,
        Some("MissedGoals") => ExitCode::from(1),
        _ => ExitCode::from(2),
    }
}

fn describe(r: &TrafficReplay) -> String {
    let name = r.metadata.name.clone().unwrap_or_default();
    let status = r.status.clone().unwrap_or_default();
    let mut out = format!(
        "{name}: replay of snapshot {} against {} {}\nphase: {}\n",
        r.spec.snapshot,
        r.spec.workload.kind.as_deref().unwrap_or("Deployment"),
        r.spec.workload.name,
        status
            .phase
            .map_or_else(|| "Pending".to_owned(), |p| format!("{p:?}")),
    );
    for c in &status.conditions {
        out.push_str(&format!(
            "condition {}={} ({}): {}\n",
            c.type_, c.status, c.reason, c.message
        ));
    }
    if let Some(s) = &status.summary {
        out.push_str(&format!(
            "requests: {}; pass rate {:.2}%; latency p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
            s.requests,
            s.pass_rate * 100.0,
            s.p50_ms,
            s.p95_ms,
            s.p99_ms
        ));
        if let Some(m) = s.mock_accuracy {
            out.push_str(&format!("; mock accuracy {:.2}%", m * 100.0));
        }
        out.push('\n');
    }
    if let Some(m) = &status.message {
        out.push_str(&format!("message: {m}\n"));
    }
    if let Some(rep) = &status.report {
        out.push_str(&format!("report: {rep}\n"));
    }
    out
}

async fn list(all: bool, k: &KubeArgs) -> anyhow::Result<ExitCode> {
    let (client, namespace) = client(k).await?;
    let api: Api<TrafficReplay> = if all {
        Api::all(client)
    } else {
        Api::namespaced(client, &namespace)
    };
    let items = api
        .list(&ListParams::default())
        .await
        .map_err(|e| explain(e, &namespace))?
        .items;
    if items.is_empty() {
        eprintln!(
            "no TrafficReplays {}",
            if all {
                "in any namespace".to_owned()
            } else {
                format!("in namespace {namespace}")
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    let mut header = vec![
        "NAME",
        "WORKLOAD",
        "SNAPSHOT",
        "PHASE",
        "PASS RATE",
        "P99 MS",
    ];
    if all {
        header.insert(0, "NAMESPACE");
    }
    t.set_header(header);
    for r in items {
        let s = r.status.clone().unwrap_or_default();
        let mut row = vec![
            r.metadata.name.clone().unwrap_or_default(),
            r.spec.workload.name.clone(),
            r.spec.snapshot.clone(),
            s.phase
                .map_or_else(|| "Pending".to_owned(), |p| format!("{p:?}")),
            s.summary
                .as_ref()
                .map_or_else(String::new, |x| format!("{:.2}%", x.pass_rate * 100.0)),
            s.summary
                .as_ref()
                .map_or_else(String::new, |x| format!("{:.1}", x.p99_ms)),
        ];
        if all {
            row.insert(0, r.metadata.namespace.clone().unwrap_or_default());
        }
        t.add_row(row);
    }
    println_out(&t.to_string());
    Ok(ExitCode::SUCCESS)
}

async fn report(name: &str, json: bool, k: &KubeArgs) -> anyhow::Result<ExitCode> {
    let (client, namespace) = client(k).await?;
    let api: Api<TrafficReplay> = Api::namespaced(client, &namespace);
    let r = api.get(name).await.map_err(|e| match &e {
        kube::Error::Api(s) if s.code == 404 => anyhow::anyhow!(
            "no TrafficReplay {name} in namespace {namespace}: list them with tapwire cluster replays -n {namespace}"
        ),
        _ => explain(e, &namespace),
    })?;
    if json {
        println_out(&serde_json::to_string_pretty(&r.status)?);
    } else {
        println_out(&describe(&r));
    }
    let finished = matches!(
        r.status.as_ref().and_then(|s| s.phase),
        Some(Phase::Complete | Phase::Failed)
    );
    if !finished {
        eprintln!("the replay has not finished yet");
    }
    Ok(verdict(&r))
}

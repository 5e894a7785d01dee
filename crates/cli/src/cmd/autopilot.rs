//! `tapwire autopilot`: GKE Autopilot's admission rules, checked before
//! `kubectl apply`, and the WorkloadAllowlist for the eBPF DaemonSet.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use tapwire_autopilot::{check, denial, Allowlist, CheckOptions, Manifests, ObjectRef, Violation};

use super::println_out;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum AutopilotCmd {
    /// Check manifests against GKE Autopilot's admission rules.
    ///
    /// Reads Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs
    /// and CronJobs (other kinds are skipped) from multi-document YAML or
    /// JSON, including `List`s, and reports what Autopilot would refuse:
    /// requests not equal to limits for cpu, memory and ephemeral-storage,
    /// capabilities outside Autopilot's default set, privileged containers,
    /// hostNetwork/hostPID/hostIPC, hostPath volumes other than read-only
    /// under /var/log/, and hostPorts. Each finding carries Autopilot's
    /// policy name (`[denied by autogke-…]`), so it can be searched for.
    ///
    /// Exits 0 when nothing would be refused, 1 when something would, 2
    /// when the input cannot be read.
    ///
    /// Examples:
    ///   helm template tapwire charts/tapwire --set autopilot=true | tapwire autopilot check -f -
    ///   tapwire autopilot check -f deploy.yaml --allow-net-admin
    ///   kubectl get deploy -A -o json | tapwire autopilot check -f - --output json
    ///   tapwire autopilot check -f rendered.yaml --allowlist nettap-allowlist.yaml
    #[command(verbatim_doc_comment)]
    Check(CheckArgs),
    /// Write the WorkloadAllowlist that lets the eBPF DaemonSet run on Autopilot.
    ///
    /// `tapwire nettap` needs privileges Autopilot refuses by default
    /// (privileged, hostPID, hostNetwork, hostPath mounts of
    /// /sys/kernel/debug, /sys/fs/bpf and /proc). A WorkloadAllowlist
    /// (auto.gke.io/v1) admits exactly that DaemonSet, pinned to one image
    /// digest; the chart renders the DaemonSet to match it. See docs/helm.md
    /// for uploading it and installing it with an AllowlistSynchronizer.
    ///
    /// Example:
    ///   tapwire autopilot allowlist --image ghcr.io/tapwire/tapwire@sha256:<64 hex> -o nettap-allowlist.yaml
    #[command(verbatim_doc_comment)]
    Allowlist(AllowlistArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Manifest file to check, or `-` for standard input.
    #[arg(short = 'f', long = "file", value_name = "FILE|-")]
    file: PathBuf,
    /// The cluster was created with `--workload-policies=allow-net-admin`:
    /// containers may add NET_ADMIN.
    #[arg(long)]
    allow_net_admin: bool,
    /// A WorkloadAllowlist installed in the cluster (repeatable): workloads
    /// whose pinned containers use an allowlisted digest are exempt from the
    /// policies it lists.
    #[arg(long, value_name = "FILE")]
    allowlist: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    /// One line per violation, grouped by object.
    Text,
    /// A JSON document: counts, violations, and Autopilot's denial per object.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct AllowlistArgs {
    /// The tapwire image, pinned: REPOSITORY[:TAG]@sha256:<64 hex digits>.
    #[arg(long, value_name = "REF@sha256:...")]
    image: String,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub(crate) fn run(cmd: AutopilotCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AutopilotCmd::Check(args) => run_check(args),
        AutopilotCmd::Allowlist(args) => run_allowlist(args),
    }
}

fn read_input(path: &PathBuf) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read manifests from standard input")?;
        Ok(s)
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifests from {}", path.display()))
    }
}

fn run_check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let text = read_input(&args.file)?;
    let shown = if args.file.as_os_str() == "-" {
        "standard input".to_owned()
    } else {
        args.file.display().to_string()
    };
    let manifests = Manifests::parse(&text).with_context(|| format!("in {shown}"))?;
    let mut allowlists = Vec::new();
    for path in &args.allowlist {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the allowlist {}", path.display()))?;
        let found =
            Allowlist::parse_all(&text).with_context(|| format!("in {}", path.display()))?;
        anyhow::ensure!(
            !found.is_empty(),
            "{} holds no WorkloadAllowlist",
            path.display()
        );
        allowlists.extend(found);
    }
    let opts = CheckOptions {
        allow_net_admin: args.allow_net_admin,
        allowlists,
    };
    let violations = check(&manifests.workloads, &opts);
    let by_object = group(&violations);
    match args.output {
        Output::Text => {
            for (object, vs) in &by_object {
                let position = manifests
                    .workloads
                    .iter()
                    .find(|w| &&w.object == object)
                    .map(|w| format!(" (document {})", w.position))
                    .unwrap_or_default();
                let mut block = format!("{object}{position}:");
                for v in vs {
                    block.push_str(&format!("\n  [denied by {}] {}", v.policy, v.message));
                }
                println_out(&block);
            }
        }
        Output::Json => {
            let denials: Vec<serde_json::Value> = by_object
                .iter()
                .map(|(object, vs)| {
                    serde_json::json!({"object": object, "message": denial(vs.iter().copied())})
                })
                .collect();
            let doc = serde_json::json!({
                "workloads_checked": manifests.workloads.len(),
                "objects_skipped": manifests.skipped.len(),
                "allow_net_admin": args.allow_net_admin,
                "violations": violations,
                "denials": denials,
            });
            println_out(&serde_json::to_string_pretty(&doc)?);
        }
    }
    let skipped = match manifests.skipped.len() {
        0 => String::new(),
        n => format!(", {n} other object{} skipped", plural(n)),
    };
    let checked = manifests.workloads.len();
    if violations.is_empty() {
        eprintln!(
            "ok: {checked} workload{} would pass GKE Autopilot's admission rules{skipped}",
            plural(checked)
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} violation{} in {} of {checked} workload{}{skipped}",
            violations.len(),
            plural(violations.len()),
            by_object.len(),
            plural(checked)
        );
        Ok(ExitCode::from(1))
    }
}

/// Violations per object, objects in input order.
fn group(violations: &[Violation]) -> Vec<(&ObjectRef, Vec<&Violation>)> {
    let mut out: Vec<(&ObjectRef, Vec<&Violation>)> = Vec::new();
    for v in violations {
        match out.iter_mut().find(|(o, _)| *o == &v.object) {
            Some((_, vs)) => vs.push(v),
            None => out.push((&v.object, vec![v])),
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn run_allowlist(args: AllowlistArgs) -> anyhow::Result<ExitCode> {
    let yaml = tapwire_autopilot::allowlist(&args.image)?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, &yaml)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "wrote {}: upload it to your allowlist bucket and sync it with an AllowlistSynchronizer (docs/helm.md)",
                path.display()
            );
        }
        None => println_out(yaml.trim_end()),
    }
    Ok(ExitCode::SUCCESS)
}

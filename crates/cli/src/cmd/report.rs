//! `tapwire report show`: a replay report as a table.

use std::path::PathBuf;
use std::process::ExitCode;

use comfy_table::{presets, Table};
use tapwire_replay::Report;

use super::println_out;

/// Read replay reports.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ReportCmd {
    /// Print the summary of a replay report (the directory `tapwire replay`
    /// wrote, or its report.json).
    ///
    /// Example: tapwire report show ./tapwire-report
    Show {
        /// Report directory or report.json.
        dir: PathBuf,
        /// Print report.json's summary as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(cmd: ReportCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ReportCmd::Show { dir, json } => {
            let r = Report::read(&dir)?;
            if json {
                println_out(&serde_json::to_string_pretty(&r.summary)?);
            } else {
                println_out(&summary_table(&r));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The summary printed after a replay and by `report show`.
pub(crate) fn summary_table(r: &Report) -> String {
    let s = &r.summary;
    let mut out = format!(
        "replay of {} against {}{}: {}\n{}; {:.1}s; {} requests, {} errors, {} late, {} dropped; {:.1} req/s\nassertions: {}/{} passed ({:.2}%)\n{}\n",
        r.snapshot_name,
        r.target,
        r.build_tag
            .as_deref()
            .map(|t| format!(" (build {t})"))
            .unwrap_or_default(),
        if r.passed { "PASSED" } else { "FAILED" },
        r.load,
        r.duration_s,
        s.requests,
        s.errors,
        s.late_sends,
        s.dropped_sends,
        s.throughput_rps,
        s.assertions.passed,
        s.assertions.checked,
        s.assertions.pass_rate * 100.0,
        if r.keys.is_empty() {
            String::new()
        } else {
            format!("keys: {}\n", r.keys.join(" "))
        }
    );
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header([
        "ENDPOINT", "COUNT", "FAILED", "P50", "P90", "P95", "P99", "MAX",
    ]);
    let ms = |v: f64| format!("{v:.1}ms");
    for e in &r.endpoints {
        let l = &e.latency_ms;
        t.add_row([
            e.endpoint.clone(),
            e.count.to_string(),
            e.failed.to_string(),
            ms(l.p50),
            ms(l.p90),
            ms(l.p95),
            ms(l.p99),
            ms(l.max),
        ]);
    }
    let l = &s.latency_ms;
    t.add_row([
        "ALL".to_owned(),
        s.requests.to_string(),
        s.assertions.failed.to_string(),
        ms(l.p50),
        ms(l.p90),
        ms(l.p95),
        ms(l.p99),
        ms(l.max),
    ]);
    out.push_str(&t.to_string());
    for g in &r.goals {
        out.push_str(&format!(
            "\ngoal `{}`: {} (measured {:.3} {})",
            g.goal,
            if g.passed { "met" } else { "MISSED" },
            g.actual,
            g.unit
        ));
    }
    if let Some(m) = &r.mock {
        out.push_str(&format!(
            "\nmocks: {:.1}% hit ({} hit, {} miss, {} passthrough of {})",
            m.ratio() * 100.0,
            m.hits,
            m.misses,
            m.passthroughs,
            m.total()
        ));
    } else if let Some(e) = &r.mock_error {
        out.push_str(&format!("\nmocks: accuracy unavailable: {e}"));
    }
    if let Some(c) = &r.cluster {
        out.push_str(&format!(
            "\ncluster: {}: {} event(s), {} warning(s); see report.html",
            c.workload,
            c.events.len(),
            c.warnings()
        ));
    }
    for f in r.failures.iter().take(10) {
        out.push_str(&format!("\nFAIL {} {}", f.endpoint, f.target));
        for p in &f.problems {
            out.push_str(&format!("\n  {}", p.summary()));
        }
    }
    if r.failures.len() > 10 {
        out.push_str(&format!(
            "\n… {} more in report.json",
            r.failures.len() - 10
        ));
    }
    out
}

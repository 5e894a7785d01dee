//! One module per subcommand; each returns the process exit code.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use tapwire_model::{segment, Exchange};

use crate::args::Command;

pub(crate) mod autopilot;
mod ca;
pub(crate) mod cluster;
pub(crate) mod demo;
mod har;
pub(crate) mod init;
mod inspect;
pub(crate) mod mock;
pub(crate) mod operator;
pub(crate) mod pipeline;
mod proxy;
pub(crate) mod replay;
pub(crate) mod report;
mod snapshot;

pub(crate) fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Proxy(c) => proxy::proxy(c),
        Command::Record(c) => proxy::record(c),
        Command::Inspect(c) => inspect::run(c),
        Command::Export(c) => har::export(c),
        Command::Import(c) => har::import(c),
        Command::Ca(c) => ca::run(c),
        Command::Demo(c) => demo::run(c),
        Command::Snapshot(c) => snapshot::run(c),
        Command::Mock(c) => mock::run(c),
        Command::Replay(c) => replay::run(c),
        Command::Report(c) => report::run(c),
        Command::Forwarder(c) => pipeline::forwarder(c),
        Command::Filter(c) => pipeline::filter(c),
        Command::Init(c) => init::run(c),
        Command::Operator(c) => operator::run(c),
        Command::Autopilot(c) => autopilot::run(c),
        Command::Cluster(c) => cluster::run(c),
    }
}

/// Reads a recording: a directory of segments, or one segment file.
pub(crate) fn read_recording(path: &Path) -> anyhow::Result<Vec<Exchange>> {
    if !path.exists() {
        bail!(
            "no recording at {}: record one with `tapwire record --out {}`",
            path.display(),
            path.display()
        );
    }
    let exchanges = if path.is_dir() {
        segment::read_dir(path)
    } else {
        segment::read_file(path)
    };
    exchanges.with_context(|| format!("cannot read the recording at {}", path.display()))
}

/// A multi-threaded runtime for the commands that serve traffic.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tapwire-worker")
        .build()
        .context("cannot start the async runtime")
}

/// Set once stdout turned out to be closed (`tapwire inspect DIR | head -1`).
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Command output (not logs) goes to stdout; everything else to stderr.
///
/// A reader that stops reading (`| head`) is not an error: the output is
/// dropped from then on and the command finishes with its own exit code, as
/// it would with its output read to the end (`println!` would panic). Other
/// write errors (a full disk) are reported once on stderr.
pub(crate) fn println_out(s: &str) {
    use std::io::Write as _;
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let res = out
        .write_all(s.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if let Err(e) = res {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write to stdout: {e}");
        }
    }
}

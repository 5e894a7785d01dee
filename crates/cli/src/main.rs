//! The `tapwire` binary: parses the command line and hands off to a subcommand.

use clap::Parser as _;

/// The proxy allocates small, short-lived buffers on every request; glibc's
/// allocator showed up at 6-7% of the proxy's profile (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod args;
mod cmd;
mod logging;

fn main() -> std::process::ExitCode {
    let cli = args::Cli::parse();
    logging::init(&cli.log);
    match cmd::run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line.
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

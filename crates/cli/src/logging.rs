use tracing_subscriber::EnvFilter;

use crate::args::{LogArgs, LogFormat};

/// Logs go to stderr so that stdout stays clean for command output.
pub(crate) fn init(args: &LogArgs) {
    let filter =
        EnvFilter::try_from_env("TAPWIRE_LOG").unwrap_or_else(|_| EnvFilter::new(&args.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}

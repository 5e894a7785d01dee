//! `tapwire export --har` and `tapwire import --har`.

use std::process::ExitCode;

use anyhow::Context as _;

use crate::args::{ExportCmd, ImportCmd};

pub(crate) fn export(cmd: ExportCmd) -> anyhow::Result<ExitCode> {
    let _ = cmd.har;
    let _all = super::read_recording(&cmd.path)?;
    anyhow::bail!("HAR export is being wired in")
}

pub(crate) fn import(cmd: ImportCmd) -> anyhow::Result<ExitCode> {
    let _ = std::fs::read(&cmd.file).with_context(|| format!("cannot read {}", cmd.file.display()))?;
    anyhow::bail!("HAR import is being wired in")
}

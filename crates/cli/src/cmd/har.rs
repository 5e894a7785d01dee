//! `tapwire export --har` and `tapwire import --har`.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use tapwire_model::har::{self, ImportOptions};
use tapwire_model::segment::{SegmentWriter, SUFFIX};
use tapwire_model::Service;

use crate::args::{ExportCmd, ImportCmd};

pub(crate) fn export(cmd: ExportCmd) -> anyhow::Result<ExitCode> {
    debug_assert!(cmd.har, "clap requires --har");
    let all = super::read_recording(&cmd.path)?;
    let out = har::export(&all, env!("CARGO_PKG_VERSION"));
    match &cmd.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut w = std::io::BufWriter::new(file);
            har::to_writer(&mut w, &out.har)
                .and_then(|()| w.flush())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = stdout.lock();
            har::to_writer(&mut w, &out.har)
                .and_then(|()| writeln!(w))
                .context("cannot write to stdout")?;
        }
    }
    let exported = all.len() - out.skipped_tcp;
    eprintln!(
        "exported {exported} HTTP exchanges{}",
        match out.skipped_tcp {
            0 => String::new(),
            n => format!(" ({n} TCP flows have no HAR form and were left out)"),
        }
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn import(cmd: ImportCmd) -> anyhow::Result<ExitCode> {
    debug_assert!(cmd.har, "clap requires --har");
    let bytes =
        std::fs::read(&cmd.file).with_context(|| format!("cannot read {}", cmd.file.display()))?;
    let opts = ImportOptions {
        default_direction: cmd.direction.into(),
        service: Service {
            name: cmd.service.clone(),
            ..Service::default()
        },
    };
    let imported = har::import(&bytes, &opts)
        .with_context(|| format!("{} is not a usable HAR file", cmd.file.display()))?;
    std::fs::create_dir_all(&cmd.out)
        .with_context(|| format!("cannot create {}", cmd.out.display()))?;
    let stem = cmd
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "import".to_owned());
    let mut w = SegmentWriter::create(cmd.out.join(format!("import-{stem}{SUFFIX}")))?;
    for ex in &imported.exchanges {
        w.append(ex)?;
    }
    let path = w.finish()?;
    eprintln!(
        "imported {} exchanges into {}{}",
        imported.exchanges.len(),
        path.display(),
        match imported.skipped.len() {
            0 => String::new(),
            n => format!(" ({n} entries with non-HTTP URLs skipped)"),
        }
    );
    Ok(ExitCode::SUCCESS)
}

//! Command output to a reader that stops early (`tapwire inspect DIR | head
//! -1`): tapwire stops writing and exits with its usual status, without a
//! panic message.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tapwire_model::segment::{SegmentWriter, SUFFIX};
use tapwire_test_support::process::{clean_env, wait_timeout};
use tapwire_test_support::replay::inbound;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tapwire"))
}

/// A recording whose listing is far larger than a pipe's buffer (64 KiB),
/// so tapwire is still writing when the reader goes away.
fn big_recording(dir: &Path) -> PathBuf {
    let rec = dir.join("rec");
    std::fs::create_dir_all(&rec).expect("create recording dir");
    let mut w = SegmentWriter::create(rec.join(format!("big-0{SUFFIX}"))).expect("segment");
    for i in 0..3000 {
        let body = format!("{{\"id\":{i},\"name\":\"item number {i}\"}}");
        w.append(&inbound(
            8080,
            "GET",
            &format!("/items/{i}?page=1"),
            200,
            "application/json",
            &body,
        ))
        .expect("append");
    }
    w.finish().expect("finish segment");
    rec
}

/// Runs `tapwire ARGS`, reads the first line of its stdout, closes the pipe,
/// and returns that line, the exit code and stderr.
fn first_line_then_close(args: &[&str], rec: &Path) -> (String, Option<i32>, String) {
    let mut cmd = Command::new(bin());
    clean_env(&mut cmd)
        .args(args)
        .arg(rec)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start tapwire");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read the first line");
    drop(out);
    let status = wait_timeout(&mut child, Duration::from_secs(60))
        .expect("tapwire exits once its reader is gone");
    (line, status.code(), err.join().unwrap_or_default())
}

#[test]
fn inspect_into_a_closed_pipe_exits_quietly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rec = big_recording(tmp.path());

    let (line, code, stderr) = first_line_then_close(&["inspect", "--json"], &rec);
    let first: serde_json::Value = serde_json::from_str(&line).expect("a JSON exchange");
    assert_eq!(first["request"]["path"], "/items/0", "{line}");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");

    // The table is one large write: the reader leaves in the middle of it.
    let (line, code, stderr) = first_line_then_close(&["inspect"], &rec);
    assert!(!line.is_empty());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

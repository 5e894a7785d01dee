//! Replay fixtures: snapshots made from hand-built exchanges with the CLI,
//! throwaway Python servers written by the test, and `tapwire replay` runs.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tapwire_model::segment::{SegmentWriter, SUFFIX};
use tapwire_model::{
    Body, Direction, Exchange, Headers, Protocol, Request, Response, Service, Upstream,
};

use crate::process::{clean_env, run_ok, run_with_timeout};
use crate::python::PyServer;

/// How long one `tapwire replay` in a test may take.
pub const REPLAY_TIMEOUT: Duration = Duration::from_secs(60);

/// A recorded inbound request to `127.0.0.1:port` with its response.
pub fn inbound(
    port: u16,
    method: &str,
    path_and_query: &str,
    status: u16,
    content_type: &str,
    body: &str,
) -> Exchange {
    let mut e = Exchange::new(
        Direction::Inbound,
        Protocol::Http1,
        Service {
            name: "svc".into(),
            ..Service::default()
        },
        Upstream {
            host: "127.0.0.1".into(),
            port,
        },
    );
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (path_and_query.to_owned(), None),
    };
    e.request = Some(Request {
        method: method.into(),
        scheme: "http".into(),
        authority: format!("127.0.0.1:{port}"),
        path,
        query,
        version: "HTTP/1.1".into(),
        headers: Headers(vec![
            ("Host".into(), format!("127.0.0.1:{port}")),
            ("Connection".into(), "keep-alive".into()),
        ]),
        ..Request::default()
    });
    e.response = Some(Response {
        status,
        version: "HTTP/1.1".into(),
        headers: Headers(vec![("Content-Type".into(), content_type.into())]),
        body: Body::complete(body.to_owned()),
        trailers: Headers::new(),
    });
    e.duration_us = 1000;
    e
}

/// A snapshot store holding snapshot `s`, made by `tapwire snapshot create`.
#[derive(Debug)]
pub struct SnapshotFixture {
    /// `--store` for replay.
    pub store: PathBuf,
    /// Scratch space that lives as long as the fixture (reports, noise files).
    pub dir: tempfile::TempDir,
}

impl SnapshotFixture {
    /// Writes `exchanges` as a segment and snapshots them as `s`.
    pub fn new(bin: &Path, exchanges: &[Exchange]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tapwire-replay-")
            .tempdir()
            .expect("temp dir");
        let rec = dir.path().join("rec");
        std::fs::create_dir_all(&rec).expect("create recording dir");
        let mut w = SegmentWriter::create(rec.join(format!("seg-0{SUFFIX}"))).expect("segment");
        for e in exchanges {
            w.append(e).expect("append");
        }
        w.finish().expect("finish segment");
        Self::from_recording(bin, &rec, dir)
    }

    /// Snapshots an existing recording directory as `s`.
    pub fn from_recording(bin: &Path, rec: &Path, dir: tempfile::TempDir) -> Self {
        let store = dir.path().join("store");
        run_ok(
            Command::new(bin)
                .args(["snapshot", "create", "--name", "s", "--from"])
                .arg(rec)
                .arg("--store")
                .arg(&store),
            Duration::from_secs(30),
        );
        Self { store, dir }
    }

    /// A path in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `tapwire replay --snapshot s --store … --target url --no-progress`
    /// plus `args`, and returns how it ended.
    pub fn replay<S: AsRef<OsStr>>(
        &self,
        bin: &Path,
        target: &str,
        args: impl IntoIterator<Item = S>,
    ) -> Output {
        let mut cmd = Command::new(bin);
        clean_env(&mut cmd);
        cmd.args([
            "replay",
            "--snapshot",
            "s",
            "--no-progress",
            "--target",
            target,
        ])
        .arg("--store")
        .arg(&self.store)
        .args(args);
        run_with_timeout(&mut cmd, REPLAY_TIMEOUT)
    }
}

/// Starts a Python server from `source`, which must bind 127.0.0.1:0 and
/// print `READY <port>`; the script is written next to `dir`.
pub fn python_server(dir: &Path, name: &str, source: &str) -> PyServer {
    let path = dir.join(name);
    std::fs::write(&path, source).expect("write server script");
    // `PyServer::start` joins its name onto py/; an absolute path replaces it.
    PyServer::start(
        path.to_str().expect("utf-8 temp path"),
        std::iter::empty::<&str>(),
    )
}

/// True when python3's `xml.etree` parses `path`.
pub fn xml_parses(path: &Path) -> bool {
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        "import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])",
    ])
    .arg(path);
    run_with_timeout(&mut cmd, Duration::from_secs(20))
        .status
        .success()
}

/// Stdout and stderr of a finished command, for assertion messages.
pub fn shown(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

//! `tapwire mock` as a child process, and snapshots built from exchanges a
//! test constructs.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tapwire_model::segment::{SegmentWriter, SUFFIX};
use tapwire_model::Exchange;

use crate::metrics::MetricsText;
use crate::net::{free_port, local};
use crate::process::{clean_env, interrupt, run_ok, wait_timeout};
use crate::tapwire::{Exited, READY_TIMEOUT, STOP_TIMEOUT};

/// Writes `exchanges` as one segment in `recording_dir`, then runs
/// `tapwire snapshot create --from recording_dir --store store --name name`.
pub fn make_snapshot(
    bin: &Path,
    exchanges: &[Exchange],
    recording_dir: &Path,
    store: &Path,
    name: &str,
) {
    std::fs::create_dir_all(recording_dir).expect("create recording dir");
    let mut w = SegmentWriter::create(recording_dir.join(format!("test-0{SUFFIX}")))
        .expect("create segment");
    for ex in exchanges {
        w.append(ex).expect("append exchange");
    }
    w.finish().expect("finish segment");
    run_ok(
        Command::new(bin)
            .args(["snapshot", "create", "--from"])
            .arg(recording_dir)
            .arg("--store")
            .arg(store)
            .args(["--name", name]),
        Duration::from_secs(30),
    );
}

/// A running `tapwire mock` with fresh `--port` and `--admin-port`.
#[derive(Debug)]
pub struct MockProcess {
    child: Option<Child>,
    /// The forward proxy listener (`--port`).
    pub proxy: SocketAddr,
    /// The admin listener.
    pub admin: SocketAddr,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    _tmp: tempfile::TempDir,
}

impl MockProcess {
    /// Starts `tapwire mock --port P --admin-port A` plus `args` and waits for `/readyz`.
    pub fn start<S: AsRef<OsStr>>(bin: &Path, args: impl IntoIterator<Item = S>) -> Self {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let tmp = tempfile::Builder::new()
            .prefix("tapwire-mock-")
            .tempdir()
            .expect("temp dir");
        let (proxy, admin) = (free_port(), free_port());
        let stdout_path = tmp.path().join("stdout.log");
        let stderr_path = tmp.path().join("stderr.log");
        let mut cmd = Command::new(bin);
        clean_env(&mut cmd);
        cmd.env_remove("TAPWIRE_LOG")
            .arg("mock")
            .args(["--port", &proxy.to_string()])
            .args(["--admin-port", &admin.to_string()])
            .args(&args);
        let shown = format!("{cmd:?}");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(File::create(&stdout_path).expect("create stdout log"))
            .stderr(File::create(&stderr_path).expect("create stderr log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
        let mut p = Self {
            child: Some(child),
            proxy: local(proxy),
            admin: local(admin),
            stdout_path,
            stderr_path,
            _tmp: tmp,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = p.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "{shown} exited with {status} before it was ready; stderr:\n{}",
                    p.stderr()
                );
            }
            if crate::http::get(p.admin, "/readyz").is_ok_and(|r| r.status == 200) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "{shown} did not answer /readyz within {READY_TIMEOUT:?}; stderr:\n{}",
                p.stderr()
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// `http://127.0.0.1:PORT`, for HTTP_PROXY and HTTPS_PROXY.
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.proxy)
    }

    /// What the mock has logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// A scrape of the admin `/metrics`.
    pub fn metrics(&self) -> MetricsText {
        MetricsText::scrape(self.admin)
    }

    /// Sends SIGINT and waits for a clean exit.
    pub fn stop(&mut self) -> Exited {
        let mut child = self.child.take().expect("mock was already stopped");
        interrupt(child.id());
        let status = wait_timeout(&mut child, STOP_TIMEOUT);
        let stderr = self.stderr();
        let status =
            status.unwrap_or_else(|| panic!("mock did not exit after SIGINT; stderr:\n{stderr}"));
        Exited {
            status,
            stdout: std::fs::read_to_string(&self.stdout_path).unwrap_or_default(),
            stderr,
        }
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

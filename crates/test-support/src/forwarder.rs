//! `tapwire forwarder` as a child process that can be killed and started
//! again on the same ports.

use std::ffi::OsString;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::metrics::MetricsText;
use crate::net::{free_port, local};
use crate::process::clean_env;
use crate::tapwire::READY_TIMEOUT;

/// A forwarder started by a test; killed on drop.
#[derive(Debug)]
pub struct ForwarderProcess {
    child: Option<Child>,
    bin: PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    /// The ingest address.
    pub addr: SocketAddr,
    /// The admin address.
    pub admin: SocketAddr,
    stderr_path: PathBuf,
    _tmp: tempfile::TempDir,
}

impl ForwarderProcess {
    /// Starts `tapwire forwarder` on fresh ports with `args` and `env`, and
    /// waits for `/readyz`.
    pub fn start(bin: &Path, args: &[&str], env: &[(String, String)]) -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("tapwire-forwarder-")
            .tempdir()
            .expect("temp dir");
        let mut p = Self {
            child: None,
            bin: bin.to_owned(),
            args: args.iter().map(OsString::from).collect(),
            env: env.to_vec(),
            addr: local(free_port()),
            admin: local(free_port()),
            stderr_path: tmp.path().join("stderr.log"),
            _tmp: tmp,
        };
        p.restart();
        p
    }

    /// Starts the forwarder again on the same ports (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "forwarder is already running");
        let mut cmd = Command::new(&self.bin);
        clean_env(&mut cmd)
            .env_remove("TAPWIRE_LOG")
            .arg("forwarder")
            .args(["--listen", &self.addr.to_string()])
            .args(["--admin-listen", &self.admin.to_string()])
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .expect("stderr log");
        let shown = format!("{cmd:?}");
        self.child = Some(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {shown}: {e}")),
        );
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!("{shown} exited with {status}; stderr:\n{}", self.stderr());
            }
            if crate::http::get(self.admin, "/readyz").is_ok_and(|r| r.status == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{shown} not ready within {READY_TIMEOUT:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
    }

    /// Kills the forwarder at once (SIGKILL), as a crashed pod.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGINT and waits (up to 15 s) for a clean exit; returns its
    /// status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("forwarder is running");
        crate::process::interrupt(child.id());
        crate::process::wait_timeout(&mut child, std::time::Duration::from_secs(15)).unwrap_or_else(
            || {
                panic!(
                    "forwarder did not stop within 15 s; stderr:\n{}",
                    self.stderr()
                )
            },
        )
    }

    /// `http://ADDR`, for `tapwire proxy --forwarder`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the forwarder logged, over all its runs.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// A scrape of `/metrics`.
    pub fn metrics(&self) -> MetricsText {
        MetricsText::scrape(self.admin)
    }
}

impl Drop for ForwarderProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

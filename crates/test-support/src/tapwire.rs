//! The `tapwire` binary as a child process: fresh ports, a fresh output
//! directory, a readiness wait on `/readyz`, and a clean SIGINT stop.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tapwire_model::Exchange;

use crate::metrics::MetricsText;
use crate::net::{free_port, local};
use crate::process::{clean_env, interrupt, wait_timeout};

/// How long tapwire may take to answer `/readyz` after starting.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long tapwire may take to exit after SIGINT (its grace period is 5 s).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `tapwire proxy` or `tapwire record`.
#[derive(Debug)]
pub struct TapwireProcess {
    child: Option<Child>,
    /// Inbound listener (reverse proxy to the app).
    pub inbound: SocketAddr,
    /// Outbound listener (forward proxy).
    pub outbound: SocketAddr,
    /// Admin listener.
    pub admin: SocketAddr,
    /// `--out`: where segments are written.
    pub out_dir: PathBuf,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    tmp: tempfile::TempDir,
}

/// How a tapwire process ended.
#[derive(Debug)]
pub struct Exited {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr (logs and the summary line).
    pub stderr: String,
}

fn os<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Vec<OsString> {
    args.into_iter().map(|a| a.as_ref().to_owned()).collect()
}

impl TapwireProcess {
    /// Starts `tapwire proxy` with fresh `--in-port`, `--out-port`,
    /// `--admin-port` and `--out`, plus `args`, and waits until it is ready.
    pub fn proxy<S: AsRef<OsStr>>(bin: &Path, args: impl IntoIterator<Item = S>) -> Self {
        Self::start(bin, "proxy", os(args), Vec::new())
    }

    /// Starts `tapwire record` like [`proxy`](Self::proxy), with `command`
    /// after `--`, and waits until the proxy is ready.
    pub fn record<S: AsRef<OsStr>, T: AsRef<OsStr>>(
        bin: &Path,
        args: impl IntoIterator<Item = S>,
        command: impl IntoIterator<Item = T>,
    ) -> Self {
        Self::start(bin, "record", os(args), os(command))
    }

    fn start(bin: &Path, sub: &str, args: Vec<OsString>, command: Vec<OsString>) -> Self {
        let mut last_err = String::new();
        // Ports are picked before tapwire binds them; another process may
        // win the race, so retry a bind failure with new ports.
        for _ in 0..3 {
            match Self::try_start(bin, sub, &args, &command) {
                Ok(p) => return p,
                Err(e) if e.contains("cannot listen") => last_err = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("{last_err}");
    }

    fn try_start(
        bin: &Path,
        sub: &str,
        args: &[OsString],
        command: &[OsString],
    ) -> Result<Self, String> {
        let tmp = tempfile::Builder::new()
            .prefix("tapwire-test-")
            .tempdir()
            .expect("create temp dir");
        let (inbound, outbound, admin) = (free_port(), free_port(), free_port());
        let out_dir = tmp.path().join("captures");
        let stdout_path = tmp.path().join("stdout.log");
        let stderr_path = tmp.path().join("stderr.log");
        let mut cmd = Command::new(bin);
        clean_env(&mut cmd);
        cmd.env_remove("TAPWIRE_LOG")
            .arg(sub)
            .args(["--in-port", &inbound.to_string()])
            .args(["--out-port", &outbound.to_string()])
            .args(["--admin-port", &admin.to_string()])
            .arg("--out")
            .arg(&out_dir)
            .args(args);
        if !command.is_empty() {
            cmd.arg("--").args(command);
        }
        let shown = format!("{cmd:?}");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(File::create(&stdout_path).expect("create stdout log"))
            .stderr(File::create(&stderr_path).expect("create stderr log"))
            .spawn()
            .map_err(|e| format!("cannot start {shown}: {e}"))?;
        let mut p = Self {
            child: Some(child),
            inbound: local(inbound),
            outbound: local(outbound),
            admin: local(admin),
            out_dir,
            stdout_path,
            stderr_path,
            tmp,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = p.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                p.child = None;
                return Err(format!(
                    "{shown} exited with {status} before it was ready; stderr:\n{}",
                    p.stderr()
                ));
            }
            if crate::http::get(p.admin, "/readyz").is_ok_and(|r| r.status == 200) {
                return Ok(p);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{shown} did not answer /readyz within {READY_TIMEOUT:?}; stderr:\n{}",
                    p.stderr()
                ));
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A scratch directory that lives as long as this process handle.
    pub fn scratch(&self) -> &Path {
        self.tmp.path()
    }

    /// What tapwire has logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Exchanges written so far (segments appear within about 2 s).
    pub fn captures(&self) -> Vec<Exchange> {
        crate::captures::read_captures(&self.out_dir)
    }

    /// A scrape of the admin `/metrics`.
    pub fn metrics(&self) -> MetricsText {
        MetricsText::scrape(self.admin)
    }

    /// Sends SIGINT and waits for a clean exit (captures flushed); panics if
    /// tapwire does not exit within [`STOP_TIMEOUT`]. The output directory
    /// stays until this handle is dropped.
    pub fn stop(&mut self) -> Exited {
        if let Some(pid) = self.pid() {
            interrupt(pid);
        }
        self.wait_exit(STOP_TIMEOUT)
    }

    /// Like [`stop`](Self::stop) with SIGTERM, as Kubernetes stops a container.
    pub fn terminate(&mut self) -> Exited {
        if let Some(pid) = self.pid() {
            crate::process::signal(pid, "TERM");
        }
        self.wait_exit(STOP_TIMEOUT)
    }

    /// Waits for tapwire to exit on its own (`record` exits with its app);
    /// kills it and panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Exited {
        let mut child = self.child.take().expect("tapwire was already waited for");
        let status = wait_timeout(&mut child, timeout);
        let stderr = self.stderr();
        let status = status.unwrap_or_else(|| {
            panic!("tapwire did not exit within {timeout:?} (killed); stderr:\n{stderr}")
        });
        Exited {
            status,
            stdout: std::fs::read_to_string(&self.stdout_path).unwrap_or_default(),
            stderr,
        }
    }
}

impl Drop for TapwireProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A tapwire CA created and exported with the CLI, as a user would.
#[derive(Debug)]
pub struct ExportedCa {
    /// `--ca-dir` (holds ca.crt and ca.key).
    pub ca_dir: PathBuf,
    /// `tapwire-ca.crt`, for curl, Python and friends.
    pub cert_pem: PathBuf,
    /// `tapwire-ca.p12` (password `changeit`), for the JVM.
    pub pkcs12: PathBuf,
    _dir: tempfile::TempDir,
}

/// Runs `tapwire ca init` then `tapwire ca export` in a fresh directory.
pub fn init_and_export_ca(bin: &Path) -> ExportedCa {
    let dir = tempfile::Builder::new()
        .prefix("tapwire-ca-")
        .tempdir()
        .expect("temp dir");
    let ca_dir = dir.path().join("ca");
    let out = dir.path().join("export");
    let timeout = Duration::from_secs(30);
    crate::process::run_ok(
        Command::new(bin).args(["ca", "init", "--dir"]).arg(&ca_dir),
        timeout,
    );
    crate::process::run_ok(
        Command::new(bin)
            .args(["ca", "export", "--dir"])
            .arg(&ca_dir)
            .arg("--out")
            .arg(&out),
        timeout,
    );
    ExportedCa {
        ca_dir,
        cert_pem: out.join("tapwire-ca.crt"),
        pkcs12: out.join("tapwire-ca.p12"),
        _dir: dir,
    }
}

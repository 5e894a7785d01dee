//! Python servers and clients from `crates/test-support/py/`.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::process::clean_env;

/// How long a Python server may take to print `READY <port>`.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Path of a script in `crates/test-support/py/`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("py").join(name)
}

/// `python3 -u py/<name>` with the test's proxy variables removed.
pub fn python(name: &str) -> Command {
    let mut cmd = Command::new("python3");
    clean_env(&mut cmd);
    cmd.arg("-u").arg(script(name));
    cmd
}

/// A Python server that bound a free port itself and announced it with
/// `READY <port>` on stdout; killed on drop.
#[derive(Debug)]
pub struct PyServer {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl PyServer {
    /// The HTTP/1.1 test upstream (`py/upstream.py`, routes in its
    /// docstring), or `None` (skipped with a reason; a failure in CI) when
    /// python3 is missing.
    pub fn upstream() -> Option<Self> {
        crate::require_tool("python3").then(|| Self::start("upstream.py", [] as [&str; 0]))
    }

    /// Starts `py/<name>` with `args` and waits for its `READY <port>` line.
    pub fn start<S: AsRef<OsStr>>(name: &str, args: impl IntoIterator<Item = S>) -> Self {
        let mut cmd = python(name);
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped());
        let shown = format!("{cmd:?}");
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let name = name.to_owned();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match line
                    .strip_prefix("READY ")
                    .and_then(|p| p.trim().parse::<u16>().ok())
                {
                    Some(port) => {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(port);
                        }
                    }
                    None => eprintln!("[{name}] {line}"),
                }
            }
        });
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(port) => Self { child, port },
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                panic!("{shown} did not print READY <port> within {START_TIMEOUT:?} ({status})")
            }
        }
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        crate::net::local(self.port)
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

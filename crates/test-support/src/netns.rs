//! Network namespaces standing in for a pod and its peers, for tests that
//! need real iptables (transparent mode): created under unique names,
//! joined by veth pairs, and deleted on drop, panic included, with every
//! process a test left inside them.
//!
//! Nothing here touches the host's own network namespace: links are
//! created inside the test's namespaces, so their addresses (tests use
//! 10.77.0.0/24) can only ever reach each other.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::process::{clean_env, run_with_timeout};
use crate::require::{require_root, require_tools, unmet};

/// How long one `ip` or `iptables` command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// True when the test can create network namespaces: root, `ip netns`
/// working, and every tool in `tools`. Otherwise prints why and returns
/// false, or panics when `CI` is set (see [`unmet`]).
pub fn require_netns(tools: &[&str]) -> bool {
    if !require_root("network namespaces and iptables") || !require_tools(&["ip"]) {
        return false;
    }
    if !require_tools(tools) {
        return false;
    }
    let probe = format!("tw{}-probe-{}", std::process::id(), next_id());
    let ok = Command::new("ip")
        .args(["netns", "add", &probe])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        let _ = Command::new("ip").args(["netns", "del", &probe]).output();
        return true;
    }
    unmet("`ip netns add` does not work here (no CAP_SYS_ADMIN, or no /run/netns)")
}

fn next_id() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Runs `ip ARGS`; panics with its output unless it succeeds.
pub fn ip(args: &[&str]) -> Output {
    let out = run_with_timeout(Command::new("ip").args(args), COMMAND_TIMEOUT);
    assert!(
        out.status.success(),
        "ip {} failed with {}: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One network namespace with loopback up; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `tw<pid>-<n>-<role>`, unique across tests and processes.
    pub fn create(role: &str) -> Self {
        let name = format!("tw{}-{}-{role}", std::process::id(), next_id());
        ip(&["netns", "add", &name]);
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME ARGS`; panics unless it succeeds.
    pub fn ip(&self, args: &[&str]) -> Output {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// `program` run inside the namespace, as root, with the test's proxy
    /// variables removed.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        clean_env(&mut cmd)
            .args(["netns", "exec", &self.name])
            .arg(program);
        cmd
    }

    /// `program` run inside the namespace as `uid` (and the same gid, no
    /// supplementary groups), as a sidecar container runs.
    pub fn command_as(&self, uid: u32, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = self.command("setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .arg("--clear-groups")
            .arg("--")
            .arg(program);
        cmd
    }

    /// Runs `program ARGS` inside the namespace to completion (30 s at most).
    pub fn run<S: AsRef<OsStr>>(
        &self,
        program: impl AsRef<OsStr>,
        args: impl IntoIterator<Item = S>,
    ) -> Output {
        run_with_timeout(self.command(program).args(args), COMMAND_TIMEOUT)
    }

    /// The namespace's nat table as `iptables-save -t nat` (or
    /// `ip6tables-save`) prints it, without the timestamped comments.
    pub fn nat_table(&self, save: &str) -> String {
        let out = self.run(save, ["-t", "nat"]);
        assert!(
            out.status.success(),
            "{save} in {} failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// GETs `url` with curl from inside the namespace (20 s at most).
    pub fn curl(&self, url: &str) -> NsCurl {
        let out = self.run(
            "curl",
            [
                "-sS",
                "--max-time",
                "20",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
                url,
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
        NsCurl {
            exit: out.status.code().unwrap_or(-1),
            status: code.trim().parse().unwrap_or(0),
            body: body.to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Polls `url` from inside the namespace until it answers 200; panics
    /// after `timeout`, showing `context` (a log, typically).
    pub fn wait_http_ok(&self, url: &str, timeout: Duration, context: impl Fn() -> String) {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.curl(url);
            if r.status == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{url} in {} did not answer 200 within {timeout:?} (last: {r:?}); {}",
                self.name,
                context()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Processes keep a namespace alive after `ip netns del`; every one
        // in here was started by this test.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// What curl got inside a namespace.
#[derive(Debug)]
pub struct NsCurl {
    /// curl's exit code (0 on success, 7 when the connection was refused).
    pub exit: i32,
    /// HTTP status (0 when no response arrived).
    pub status: u16,
    /// The response body.
    pub body: String,
    /// curl's error messages.
    pub stderr: String,
}

/// Joins `a` and `b` with a veth pair: `a_if` in `a` with `a_cidr`
/// (`10.77.0.1/30`), `b_if` in `b` with `b_cidr`; both ends up.
pub fn link(a: &Netns, a_if: &str, a_cidr: &str, b: &Netns, b_if: &str, b_cidr: &str) {
    a.ip(&[
        "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", &b.name,
    ]);
    for (ns, iface, cidr) in [(a, a_if, a_cidr), (b, b_if, b_cidr)] {
        ns.ip(&["addr", "add", cidr, "dev", iface]);
        ns.ip(&["link", "set", iface, "up"]);
    }
}

/// A long-running process (server, proxy) with its output in a log file;
/// killed on drop.
#[derive(Debug)]
pub struct Background {
    child: Option<Child>,
    name: String,
    log: PathBuf,
}

impl Background {
    /// Starts `cmd`, sending stdout and stderr to `<dir>/<name>.log`.
    pub fn spawn(name: &str, cmd: &mut Command, dir: &Path) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = File::create(&log).expect("create log file");
        let shown = format!("{cmd:?}");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
        Self {
            child: Some(child),
            name: name.to_owned(),
            log,
        }
    }

    /// Everything it printed so far.
    pub fn log(&self) -> String {
        format!(
            "[{} log]\n{}",
            self.name,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }

    /// Waits until its output contains `needle`; panics (showing the log)
    /// after `timeout` or if it exits first.
    pub fn wait_for_output(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if std::fs::read_to_string(&self.log).is_ok_and(|l| l.contains(needle)) {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{} exited with {status} before printing {needle:?}; {}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not print {needle:?} within {timeout:?}; {}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` (`KILL`, `TERM`, ...) and waits for the exit (20 s at
    /// most, then SIGKILL).
    pub fn signal_and_wait(&mut self, signal: &str) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("process already stopped");
        crate::process::signal(child.id(), signal);
        crate::process::wait_timeout(&mut child, Duration::from_secs(20)).unwrap_or_else(|| {
            panic!(
                "{} did not exit after SIG{signal}; {}",
                self.name,
                self.log()
            )
        })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

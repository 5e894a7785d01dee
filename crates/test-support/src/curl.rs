//! curl as a real-world client, with its response split into head and body.

use std::ffi::OsStr;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use crate::process::{clean_env, run_with_timeout};

/// What one curl run received.
#[derive(Debug)]
pub struct CurlOutput {
    /// curl's exit status (0 on success; 35, 60 for TLS failures, ...).
    pub exit: ExitStatus,
    /// Status of the final response (0 when none arrived).
    pub status: u16,
    /// Header fields of the final response, in wire order.
    pub headers: Vec<(String, String)>,
    /// The response body as received.
    pub body: Vec<u8>,
    /// What `-w` printed.
    pub stdout: String,
    /// curl's error messages (and `-v` output).
    pub stderr: String,
}

impl CurlOutput {
    /// First value of `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Panics, showing curl's messages, unless curl succeeded.
    pub fn ok(self) -> Self {
        assert!(
            self.exit.success(),
            "curl failed with {}: {}",
            self.exit,
            self.stderr
        );
        self
    }
}

/// Runs `curl -sS` with `args` (no proxy from the environment), saving the
/// final response head and body; 60 s at most.
pub fn curl<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> CurlOutput {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (head, body) = (tmp.path().join("head"), tmp.path().join("body"));
    let mut cmd = Command::new("curl");
    clean_env(&mut cmd)
        .args(["-sS", "--max-time", "60", "-D"])
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(args);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(75));
    let head_text = std::fs::read_to_string(&head).unwrap_or_default();
    let (status, headers) = crate::http::parse_head(&head_text);
    CurlOutput {
        exit: out.status,
        status,
        headers,
        body: std::fs::read(&body).unwrap_or_default(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

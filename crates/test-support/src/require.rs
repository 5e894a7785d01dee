//! Tests that need an outside tool skip politely on a developer's machine
//! and fail loudly in CI, where a missing tool means a broken CI image.

use std::path::{Path, PathBuf};
use std::process::Command;

/// True when running in CI (`CI` set to anything but empty, `0` or `false`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// Reports an unmet requirement: panics in CI, else prints
/// `skipped: <reason>` and returns false so the test can return early.
pub fn unmet(reason: &str) -> bool {
    if in_ci() {
        panic!("{reason}; CI is set, so this is a failure: install it (see .ci/deps.sh)");
    }
    eprintln!("skipped: {reason}");
    false
}

/// Finds an executable on `PATH`, or in `/usr/sbin` and `/sbin` (nginx lives there).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// True when `name` is installed; see [`unmet`] for what happens otherwise.
///
/// ```ignore
/// if !require_tool("curl") { return; }
/// ```
pub fn require_tool(name: &str) -> bool {
    find_tool(name).is_some() || unmet(&format!("`{name}` is not installed"))
}

/// True when every tool in `names` is installed.
pub fn require_tools(names: &[&str]) -> bool {
    names.iter().all(|n| require_tool(n))
}

/// True when python3 can import every module in `modules`.
pub fn require_python_modules(modules: &[&str]) -> bool {
    if !require_tool("python3") {
        return false;
    }
    let ok = Command::new("python3")
        .arg("-c")
        .arg(format!("import {}", modules.join(", ")))
        .output()
        .is_ok_and(|o| o.status.success());
    ok || unmet(&format!(
        "python3 cannot import {} (pip install them)",
        modules.join(", ")
    ))
}

/// True when running as root; for tests that need privileges (iptables, ports < 1024).
pub fn require_root(why: &str) -> bool {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        });
    uid.as_deref() == Some("0") || unmet(&format!("needs root: {why}"))
}

//! The nat rules that send a pod's TCP through the proxy, written as
//! `iptables-restore` input by pure functions, and the two commands that
//! read and apply them.
//!
//! tapwire owns four chains in the nat table and touches nothing else but
//! one jump from each of `PREROUTING` and `OUTPUT`:
//!
//! ```text
//! PREROUTING -p tcp → TAPWIRE_INBOUND → (exceptions RETURN) → TAPWIRE_IN_REDIRECT  → REDIRECT in-port
//! OUTPUT     -p tcp → TAPWIRE_OUTBOUND → (exceptions RETURN) → TAPWIRE_OUT_REDIRECT → REDIRECT out-port
//! ```
//!
//! Installing declares the four chains, which makes `iptables-restore
//! --noflush` flush them, and refills them in one transaction; the jumps
//! are added only when missing, so a second run leaves the same rules.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use super::lists::{IpList, PortList};

/// Inbound exceptions, then the jump to [`IN_REDIRECT_CHAIN`].
pub const INBOUND_CHAIN: &str = "TAPWIRE_INBOUND";
/// Outbound exceptions, then the jump to [`OUT_REDIRECT_CHAIN`].
pub const OUTBOUND_CHAIN: &str = "TAPWIRE_OUTBOUND";
/// `REDIRECT` to the inbound port.
pub const IN_REDIRECT_CHAIN: &str = "TAPWIRE_IN_REDIRECT";
/// `REDIRECT` to the outbound port.
pub const OUT_REDIRECT_CHAIN: &str = "TAPWIRE_OUT_REDIRECT";

const CHAINS: [&str; 4] = [
    INBOUND_CHAIN,
    IN_REDIRECT_CHAIN,
    OUTBOUND_CHAIN,
    OUT_REDIRECT_CHAIN,
];

/// Every chain whose name starts with this is tapwire's.
const PREFIX: &str = "TAPWIRE_";

/// Which iptables: IPv4 (`iptables`) or IPv6 (`ip6tables`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `iptables-save`, `iptables-restore`.
    V4,
    /// `ip6tables-save`, `ip6tables-restore`.
    V6,
}

impl Family {
    /// `IPv4` or `IPv6`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    fn loopback(self) -> &'static str {
        match self {
            Family::V4 => "127.0.0.0/8",
            Family::V6 => "::1/128",
        }
    }

    fn save_command(self) -> &'static str {
        match self {
            Family::V4 => "iptables-save",
            Family::V6 => "ip6tables-save",
        }
    }

    fn restore_command(self) -> &'static str {
        match self {
            Family::V4 => "iptables-restore",
            Family::V6 => "ip6tables-restore",
        }
    }
}

/// What to redirect: the ports and UID `tapwire proxy` runs with, and the
/// traffic that bypasses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// UID of the proxy: its own connections are never redirected.
    pub proxy_uid: u32,
    /// Inbound listener port (redirect target for inbound TCP).
    pub in_port: u16,
    /// Outbound listener port (redirect target for outbound TCP).
    pub out_port: u16,
    /// Admin port (probes reach it directly); `None` when disabled.
    pub admin_port: Option<u16>,
    /// Inbound connections from these sources bypass the proxy; `*`: all.
    pub ignore_src_ips: IpList,
    /// Outbound connections to these destinations bypass the proxy; `*`: all.
    pub ignore_dst_ips: IpList,
    /// Inbound connections to these local ports bypass the proxy; `*`: all.
    pub ignore_inbound_ports: PortList,
    /// Outbound connections to these remote ports bypass the proxy; `*`: all.
    pub ignore_outbound_ports: PortList,
}

impl Redirect {
    /// False when an ignore list bypasses all inbound traffic.
    pub fn redirects_inbound(&self) -> bool {
        !self.ignore_src_ips.is_all() && !self.ignore_inbound_ports.is_all()
    }

    /// False when an ignore list bypasses all outbound traffic.
    pub fn redirects_outbound(&self) -> bool {
        !self.ignore_dst_ips.is_all() && !self.ignore_outbound_ports.is_all()
    }

    /// The proxy's own ports: connections to them are never redirected.
    fn own_ports(&self) -> Vec<u16> {
        let mut ports = vec![self.in_port, self.out_port];
        ports.extend(self.admin_port);
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// The rules of tapwire's chains for `family`, one `-A` per line, in
    /// the order they are evaluated.
    pub fn chain_rules(&self, family: Family) -> Vec<String> {
        let mut r = vec![
            format!(
                "-A {IN_REDIRECT_CHAIN} -p tcp -j REDIRECT --to-ports {}",
                self.in_port
            ),
            format!(
                "-A {OUT_REDIRECT_CHAIN} -p tcp -j REDIRECT --to-ports {}",
                self.out_port
            ),
        ];
        let family_ips = |l: &IpList| {
            l.items()
                .iter()
                .filter(|n| n.is_ipv6() == (family == Family::V6))
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        if self.redirects_inbound() {
            let c = INBOUND_CHAIN;
            // Connections between local processes are not the pod's inbound traffic.
            r.push(format!("-A {c} -i lo -j RETURN"));
            for p in self.own_ports() {
                r.push(format!("-A {c} -p tcp --dport {p} -j RETURN"));
            }
            for p in self.ignore_inbound_ports.items() {
                r.push(format!("-A {c} -p tcp --dport {p} -j RETURN"));
            }
            for ip in family_ips(&self.ignore_src_ips) {
                r.push(format!("-A {c} -s {ip} -j RETURN"));
            }
            r.push(format!("-A {c} -p tcp -j {IN_REDIRECT_CHAIN}"));
        }
        if self.redirects_outbound() {
            let c = OUTBOUND_CHAIN;
            // The proxy's own upstream connections: redirecting them would loop.
            r.push(format!(
                "-A {c} -m owner --uid-owner {} -j RETURN",
                self.proxy_uid
            ));
            r.push(format!("-A {c} -o lo -j RETURN"));
            r.push(format!("-A {c} -d {} -j RETURN", family.loopback()));
            for p in self.ignore_outbound_ports.items() {
                r.push(format!("-A {c} -p tcp --dport {p} -j RETURN"));
            }
            for ip in family_ips(&self.ignore_dst_ips) {
                r.push(format!("-A {c} -d {ip} -j RETURN"));
            }
            r.push(format!("-A {c} -p tcp -j {OUT_REDIRECT_CHAIN}"));
        }
        r
    }

    /// The jumps into tapwire's chains, exactly as `iptables-save` prints
    /// them (so that an installed jump is recognised).
    fn jumps(&self) -> Vec<String> {
        let mut j = Vec::new();
        if self.redirects_inbound() {
            j.push(format!("-A PREROUTING -p tcp -j {INBOUND_CHAIN}"));
        }
        if self.redirects_outbound() {
            j.push(format!("-A OUTPUT -p tcp -j {OUTBOUND_CHAIN}"));
        }
        j
    }
}

/// What `iptables-save -t nat` shows of tapwire: its chains, and the rules
/// of other chains that jump into them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    /// tapwire's chains that exist.
    pub chains: Vec<String>,
    /// Rules (`-A CHAIN ...`) of other chains that jump to tapwire's.
    pub jumps: Vec<String>,
}

impl Installed {
    /// Reads the nat table section of `iptables-save` output. Anything it
    /// does not recognise is ignored.
    pub fn parse(save: &str) -> Self {
        let mut found = Self::default();
        let mut in_nat = false;
        for line in save.lines().map(str::trim) {
            if let Some(table) = line.strip_prefix('*') {
                in_nat = table == "nat";
                continue;
            }
            if !in_nat {
                continue;
            }
            if let Some(decl) = line.strip_prefix(':') {
                let name = decl.split_whitespace().next().unwrap_or_default();
                if name.starts_with(PREFIX) {
                    found.chains.push(name.to_owned());
                }
                continue;
            }
            let mut words = line.split_whitespace();
            if words.next() != Some("-A") {
                continue;
            }
            let chain = words.next().unwrap_or_default();
            let mut target = None;
            while let Some(w) = words.next() {
                if w == "-j" || w == "-g" {
                    target = words.next();
                }
            }
            if !chain.starts_with(PREFIX) && target.is_some_and(|t| t.starts_with(PREFIX)) {
                found.jumps.push(line.to_owned());
            }
        }
        found
    }

    /// True when none of tapwire's rules are installed.
    pub fn is_empty(&self) -> bool {
        self.chains.is_empty() && self.jumps.is_empty()
    }
}

/// `-A CHAIN spec` as the `-D CHAIN spec` that deletes it.
fn delete(rule: &str) -> String {
    match rule.strip_prefix("-A ") {
        Some(rest) => format!("-D {rest}"),
        None => rule.to_owned(),
    }
}

/// `iptables-restore --noflush` input that installs `redirect` for
/// `family`, given what is `installed` now: tapwire's chains are flushed
/// and refilled; jumps that are already right are kept, others replaced;
/// chains of other tapwire versions are removed.
pub fn install_script(redirect: &Redirect, family: Family, installed: &Installed) -> String {
    let mut s = String::from("*nat\n");
    let stale: Vec<&String> = installed
        .chains
        .iter()
        .filter(|c| !CHAINS.contains(&c.as_str()))
        .collect();
    for chain in CHAINS
        .iter()
        .copied()
        .chain(stale.iter().map(|c| c.as_str()))
    {
        let _ = writeln!(s, ":{chain} - [0:0]");
    }
    for rule in redirect.chain_rules(family) {
        let _ = writeln!(s, "{rule}");
    }
    let wanted = redirect.jumps();
    let builtin = |rule: &str| {
        rule.split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned()
    };
    let mut chains: Vec<String> = installed.jumps.iter().map(|j| builtin(j)).collect();
    chains.extend(wanted.iter().map(|j| builtin(j)));
    chains.sort();
    chains.dedup();
    for chain in chains {
        let have: Vec<&String> = installed
            .jumps
            .iter()
            .filter(|j| builtin(j) == chain)
            .collect();
        let want: Vec<&String> = wanted.iter().filter(|j| builtin(j) == chain).collect();
        if have == want {
            continue;
        }
        for rule in have {
            let _ = writeln!(s, "{}", delete(rule));
        }
        for rule in want {
            let _ = writeln!(s, "{rule}");
        }
    }
    for chain in stale {
        let _ = writeln!(s, "-X {chain}");
    }
    s.push_str("COMMIT\n");
    s
}

/// `iptables-restore --noflush` input that removes every tapwire chain and
/// every jump into one; `None` when nothing is installed.
pub fn remove_script(installed: &Installed) -> Option<String> {
    if installed.is_empty() {
        return None;
    }
    let mut s = String::from("*nat\n");
    for chain in &installed.chains {
        let _ = writeln!(s, ":{chain} - [0:0]");
    }
    for rule in &installed.jumps {
        let _ = writeln!(s, "{}", delete(rule));
    }
    for chain in &installed.chains {
        let _ = writeln!(s, "-X {chain}");
    }
    s.push_str("COMMIT\n");
    Some(s)
}

/// Reading or applying rules failed.
#[derive(Debug, thiserror::Error)]
pub enum IptablesError {
    /// The command is not installed.
    #[error(
        "{command} not found (looked in PATH, /usr/sbin and /sbin): `tapwire init` needs the \
         iptables tools in its image (Debian: apt-get install iptables)"
    )]
    NotFound {
        /// `iptables-restore`, ...
        command: &'static str,
    },
    /// The kernel refused: no `NET_ADMIN` (or not root).
    #[error(
        "{command} was refused permission ({detail}): installing the rules needs the NET_ADMIN \
         and NET_RAW capabilities (Kubernetes: securityContext.capabilities.add: [NET_ADMIN, \
         NET_RAW]) and must run as root (UID 0) inside the pod"
    )]
    Permission {
        /// `iptables-restore`, ...
        command: &'static str,
        /// What the command said.
        detail: String,
    },
    /// The command ran and failed.
    #[error("{command} failed ({status}): {detail}")]
    Failed {
        /// `iptables-restore`, ...
        command: &'static str,
        /// Its exit status.
        status: ExitStatus,
        /// What it said.
        detail: String,
    },
    /// The command could not be started.
    #[error("cannot run {}: {source}", path.display())]
    Spawn {
        /// The executable.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl IptablesError {
    /// True when the kernel refused for lack of privileges.
    pub fn is_permission(&self) -> bool {
        matches!(self, IptablesError::Permission { .. })
    }
}

/// Turns a failed run into an error that says what to do.
fn failure(command: &'static str, status: ExitStatus, stderr: &str) -> IptablesError {
    // Keep the message readable: iptables can echo a whole ruleset back.
    let detail: String = stderr.trim().lines().take(5).collect::<Vec<_>>().join("; ");
    let detail = if detail.is_empty() {
        "no message".to_owned()
    } else {
        detail
    };
    let denied = [
        "Permission denied",
        "Operation not permitted",
        "you must be root",
    ];
    if denied.iter().any(|d| stderr.contains(d)) {
        IptablesError::Permission { command, detail }
    } else {
        IptablesError::Failed {
            command,
            status,
            detail,
        }
    }
}

fn find_executable(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The `*-save` and `*-restore` commands of one family.
#[derive(Debug, Clone)]
pub struct Iptables {
    family: Family,
    save: PathBuf,
    restore: PathBuf,
}

impl Iptables {
    /// Finds the family's commands on `PATH`, `/usr/sbin` or `/sbin`.
    pub fn find(family: Family) -> Result<Self, IptablesError> {
        let find = |command: &'static str| {
            find_executable(command).ok_or(IptablesError::NotFound { command })
        };
        Ok(Self {
            family,
            save: find(family.save_command())?,
            restore: find(family.restore_command())?,
        })
    }

    /// The family these commands manage.
    pub fn family(&self) -> Family {
        self.family
    }

    /// What of tapwire is in the nat table now.
    pub fn installed(&self) -> Result<Installed, IptablesError> {
        let command = self.family.save_command();
        let out = Command::new(&self.save)
            .args(["-t", "nat"])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| spawn_error(&self.save, source))?;
        if !out.status.success() {
            return Err(failure(
                command,
                out.status,
                &String::from_utf8_lossy(&out.stderr),
            ));
        }
        Ok(Installed::parse(&String::from_utf8_lossy(&out.stdout)))
    }

    /// Applies `script` with `iptables-restore --noflush` in one transaction.
    pub fn restore(&self, script: &str) -> Result<(), IptablesError> {
        let command = self.family.restore_command();
        let mut child = Command::new(&self.restore)
            .arg("--noflush")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| spawn_error(&self.restore, source))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A write error means the command exited early; its status says why.
            let _ = stdin.write_all(script.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|source| spawn_error(&self.restore, source))?;
        if !out.status.success() {
            return Err(failure(
                command,
                out.status,
                &String::from_utf8_lossy(&out.stderr),
            ));
        }
        Ok(())
    }
}

fn spawn_error(path: &Path, source: std::io::Error) -> IptablesError {
    IptablesError::Spawn {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect() -> Redirect {
        Redirect {
            proxy_uid: 1477,
            in_port: 4143,
            out_port: 4140,
            admin_port: Some(4145),
            ignore_src_ips: IpList::default(),
            ignore_dst_ips: IpList::default(),
            ignore_inbound_ports: PortList::default(),
            ignore_outbound_ports: PortList::default(),
        }
    }

    #[test]
    fn a_fresh_table_gets_chains_rules_and_jumps() {
        let s = install_script(&redirect(), Family::V4, &Installed::default());
        assert_eq!(
            s,
            "*nat
:TAPWIRE_INBOUND - [0:0]
:TAPWIRE_IN_REDIRECT - [0:0]
:TAPWIRE_OUTBOUND - [0:0]
:TAPWIRE_OUT_REDIRECT - [0:0]
-A TAPWIRE_IN_REDIRECT -p tcp -j REDIRECT --to-ports 4143
-A TAPWIRE_OUT_REDIRECT -p tcp -j REDIRECT --to-ports 4140
-A TAPWIRE_INBOUND -i lo -j RETURN
-A TAPWIRE_INBOUND -p tcp --dport 4140 -j RETURN
-A TAPWIRE_INBOUND -p tcp --dport 4143 -j RETURN
-A TAPWIRE_INBOUND -p tcp --dport 4145 -j RETURN
-A TAPWIRE_INBOUND -p tcp -j TAPWIRE_IN_REDIRECT
-A TAPWIRE_OUTBOUND -m owner --uid-owner 1477 -j RETURN
-A TAPWIRE_OUTBOUND -o lo -j RETURN
-A TAPWIRE_OUTBOUND -d 127.0.0.0/8 -j RETURN
-A TAPWIRE_OUTBOUND -p tcp -j TAPWIRE_OUT_REDIRECT
-A OUTPUT -p tcp -j TAPWIRE_OUTBOUND
-A PREROUTING -p tcp -j TAPWIRE_INBOUND
COMMIT
"
        );
    }

    #[test]
    fn ignore_lists_become_returns_of_their_family() {
        let r = Redirect {
            ignore_src_ips: "10.0.0.0/8,fd00::/8".parse().unwrap(),
            ignore_dst_ips: "169.254.169.254,2001:db8::/32".parse().unwrap(),
            ignore_inbound_ports: "22,8000:8100".parse().unwrap(),
            ignore_outbound_ports: "5432".parse().unwrap(),
            ..redirect()
        };
        let v4 = r.chain_rules(Family::V4).join("\n");
        assert!(
            v4.contains("-A TAPWIRE_INBOUND -s 10.0.0.0/8 -j RETURN"),
            "{v4}"
        );
        assert!(!v4.contains("fd00"), "{v4}");
        assert!(
            v4.contains("-A TAPWIRE_INBOUND -p tcp --dport 22 -j RETURN"),
            "{v4}"
        );
        assert!(
            v4.contains("-A TAPWIRE_INBOUND -p tcp --dport 8000:8100 -j RETURN"),
            "{v4}"
        );
        assert!(
            v4.contains("-A TAPWIRE_OUTBOUND -d 169.254.169.254/32 -j RETURN"),
            "{v4}"
        );
        assert!(
            v4.contains("-A TAPWIRE_OUTBOUND -p tcp --dport 5432 -j RETURN"),
            "{v4}"
        );
        let v6 = r.chain_rules(Family::V6).join("\n");
        assert!(
            v6.contains("-A TAPWIRE_INBOUND -s fd00::/8 -j RETURN"),
            "{v6}"
        );
        assert!(
            v6.contains("-A TAPWIRE_OUTBOUND -d ::1/128 -j RETURN"),
            "{v6}"
        );
        assert!(
            v6.contains("-A TAPWIRE_OUTBOUND -d 2001:db8::/32 -j RETURN"),
            "{v6}"
        );
        assert!(!v6.contains("10.0.0.0"), "{v6}");
        // Exceptions come before the redirect in each chain.
        for rules in [r.chain_rules(Family::V4), r.chain_rules(Family::V6)] {
            for chain in [INBOUND_CHAIN, OUTBOUND_CHAIN] {
                let own: Vec<&String> = rules
                    .iter()
                    .filter(|l| l.starts_with(&format!("-A {chain} ")))
                    .collect();
                assert!(
                    own.last().is_some_and(|l| l.contains("_REDIRECT")),
                    "{own:?}"
                );
                assert!(own[..own.len() - 1]
                    .iter()
                    .all(|l| l.ends_with("-j RETURN")));
            }
        }
    }

    #[test]
    fn star_bypasses_a_whole_direction() {
        for r in [
            Redirect {
                ignore_src_ips: IpList::All,
                ..redirect()
            },
            Redirect {
                ignore_inbound_ports: PortList::All,
                ..redirect()
            },
        ] {
            assert!(!r.redirects_inbound() && r.redirects_outbound());
            let s = install_script(&r, Family::V4, &Installed::default());
            assert!(!s.contains("PREROUTING"), "{s}");
            assert!(!s.contains("-A TAPWIRE_INBOUND"), "{s}");
            assert!(s.contains("-A OUTPUT -p tcp -j TAPWIRE_OUTBOUND"), "{s}");
        }
        let r = Redirect {
            ignore_dst_ips: IpList::All,
            ..redirect()
        };
        let s = install_script(&r, Family::V4, &Installed::default());
        assert!(!s.contains("-A OUTPUT"), "{s}");
        assert!(s.contains("-A PREROUTING -p tcp -j TAPWIRE_INBOUND"), "{s}");
    }

    const SAVED: &str = "# Generated by iptables-save v1.8.9 (nf_tables)
*filter
:INPUT ACCEPT [0:0]
-A INPUT -j TAPWIRE_NOT_NAT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:TAPWIRE_INBOUND - [0:0]
:TAPWIRE_IN_REDIRECT - [0:0]
:TAPWIRE_OUTBOUND - [0:0]
:TAPWIRE_OUT_REDIRECT - [0:0]
:OTHER - [0:0]
-A PREROUTING -p tcp -j TAPWIRE_INBOUND
-A OUTPUT -p tcp -j OTHER
-A OUTPUT -p tcp -j TAPWIRE_OUTBOUND
-A TAPWIRE_INBOUND -p tcp -j TAPWIRE_IN_REDIRECT
-A TAPWIRE_IN_REDIRECT -p tcp -j REDIRECT --to-ports 4143
COMMIT
";

    #[test]
    fn save_output_is_read_for_tapwire_chains_and_jumps_in_nat_only() {
        let i = Installed::parse(SAVED);
        assert_eq!(i.chains, CHAINS.map(str::to_owned).to_vec());
        assert_eq!(
            i.jumps,
            vec![
                "-A PREROUTING -p tcp -j TAPWIRE_INBOUND".to_owned(),
                "-A OUTPUT -p tcp -j TAPWIRE_OUTBOUND".to_owned()
            ]
        );
        assert!(Installed::parse("").is_empty());
        assert!(Installed::parse("garbage\n-A\n*nat\n-A X -j\n:").is_empty());
    }

    #[test]
    fn reinstalling_keeps_right_jumps_and_replaces_wrong_ones() {
        let installed = Installed::parse(SAVED);
        let again = install_script(&redirect(), Family::V4, &installed);
        assert!(
            !again.contains("-A PREROUTING") && !again.contains("-A OUTPUT"),
            "{again}"
        );
        assert!(!again.contains("-D "), "{again}");
        // Same chains and rules as a fresh install: only the jumps differ.
        let fresh = install_script(&redirect(), Family::V4, &Installed::default());
        let body = |s: &str| {
            s.lines()
                .filter(|l| !l.starts_with("-A PREROUTING") && !l.starts_with("-A OUTPUT"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(body(&again), body(&fresh));

        // A duplicated jump and one to a chain of an older version are replaced.
        let messy = Installed {
            chains: vec![INBOUND_CHAIN.into(), "TAPWIRE_OLD".into()],
            jumps: vec![
                "-A PREROUTING -p tcp -j TAPWIRE_INBOUND".into(),
                "-A PREROUTING -p tcp -j TAPWIRE_INBOUND".into(),
                "-A OUTPUT -j TAPWIRE_OLD".into(),
            ],
        };
        let s = install_script(&redirect(), Family::V4, &messy);
        assert_eq!(
            s.matches("-D PREROUTING -p tcp -j TAPWIRE_INBOUND").count(),
            2,
            "{s}"
        );
        assert_eq!(
            s.matches("-A PREROUTING -p tcp -j TAPWIRE_INBOUND").count(),
            1,
            "{s}"
        );
        assert!(
            s.contains("-D OUTPUT -j TAPWIRE_OLD\n-A OUTPUT -p tcp -j TAPWIRE_OUTBOUND"),
            "{s}"
        );
        assert!(
            s.contains(":TAPWIRE_OLD - [0:0]") && s.contains("-X TAPWIRE_OLD\nCOMMIT"),
            "{s}"
        );
    }

    #[test]
    fn removal_flushes_unhooks_and_deletes() {
        assert_eq!(remove_script(&Installed::default()), None);
        let s = remove_script(&Installed::parse(SAVED)).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.first(), Some(&"*nat"));
        assert_eq!(lines.last(), Some(&"COMMIT"));
        assert!(s.contains("-D PREROUTING -p tcp -j TAPWIRE_INBOUND"), "{s}");
        assert!(s.contains("-D OUTPUT -p tcp -j TAPWIRE_OUTBOUND"), "{s}");
        assert!(!s.contains("OTHER"), "{s}");
        for chain in CHAINS {
            let flush = s.find(&format!(":{chain} - [0:0]")).unwrap();
            let del = s.find(&format!("-X {chain}\n")).unwrap();
            assert!(flush < del, "{s}");
        }
    }

    #[test]
    fn failures_say_what_to_do() {
        use std::os::unix::process::ExitStatusExt as _;
        let status = ExitStatus::from_raw(4 << 8);
        let e = failure(
            "iptables-restore",
            status,
            "iptables-restore v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n",
        );
        assert!(e.is_permission());
        assert!(e.to_string().contains("NET_ADMIN"), "{e}");
        let e = failure("iptables-restore", status, "line 3 failed\n");
        assert!(!e.is_permission());
        assert!(e.to_string().contains("line 3 failed"), "{e}");
        let e = IptablesError::NotFound {
            command: "iptables-restore",
        };
        assert!(e.to_string().contains("apt-get install iptables"), "{e}");
    }
}

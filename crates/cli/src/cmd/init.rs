//! `tapwire init`: installs, prints or removes the iptables rules of
//! transparent mode. The rules are built and applied by
//! `tapwire_proxy::transparent`; this module maps flags to them and
//! reports what happened.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::ArgAction;
use tapwire_proxy::transparent::{
    install_script, remove_script, Family, Installed, IpList, Iptables, IptablesError, PortList,
    Redirect,
};

use super::println_out;

/// Flags of `tapwire init`; every one has an environment variable, which
/// is how the operator sets them in the init container.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tapwire init             install (init container: root, NET_ADMIN)
  tapwire init --dry-run   print the rules instead
  tapwire init --remove    delete tapwire's chains again
  tapwire init --ignore-outbound-ports 5432,9000:9100 --ignore-dst-ips 169.254.169.254")]
pub(crate) struct InitCmd {
    /// UID the proxy sidecar runs as: its own connections are never
    /// redirected (they would loop back into it).
    #[arg(long, default_value_t = 1477, env = "TAPWIRE_PROXY_UID")]
    proxy_uid: u32,
    /// The proxy's inbound port: TCP arriving at the pod is redirected there.
    #[arg(long, default_value_t = 4143, env = "TAPWIRE_PROXY_IN_PORT")]
    in_port: u16,
    /// The proxy's outbound port: TCP the pod opens is redirected there.
    #[arg(long, default_value_t = 4140, env = "TAPWIRE_PROXY_OUT_PORT")]
    out_port: u16,
    /// The proxy's admin port (/metrics, /healthz): probes reach it
    /// directly, like the two ports above (0: none).
    #[arg(long, default_value_t = 4145, env = "TAPWIRE_ADMIN_PORT")]
    admin_port: u16,
    /// Inbound connections from these sources bypass the proxy:
    /// comma-separated IPs or CIDR blocks (10.0.0.5, 10.0.0.0/8,
    /// fd00::/8); `*` bypasses all inbound traffic.
    #[arg(
        long,
        value_name = "IPS",
        default_value = "",
        hide_default_value = true,
        env = "TAPWIRE_IGNORE_SRC_IPS"
    )]
    ignore_src_ips: IpList,
    /// Outbound connections to these destinations bypass the proxy:
    /// comma-separated IPs or CIDR blocks; `*` bypasses all outbound traffic.
    #[arg(
        long,
        value_name = "IPS",
        default_value = "",
        hide_default_value = true,
        env = "TAPWIRE_IGNORE_DST_IPS"
    )]
    ignore_dst_ips: IpList,
    /// Inbound connections to these pod ports bypass the proxy:
    /// comma-separated ports or ranges (22, 8000:8100); `*` bypasses all
    /// inbound traffic.
    #[arg(
        long,
        value_name = "PORTS",
        default_value = "",
        hide_default_value = true,
        env = "TAPWIRE_IGNORE_INBOUND_PORTS"
    )]
    ignore_inbound_ports: PortList,
    /// Outbound connections to these remote ports bypass the proxy:
    /// comma-separated ports or ranges; `*` bypasses all outbound traffic.
    #[arg(
        long,
        value_name = "PORTS",
        default_value = "",
        hide_default_value = true,
        env = "TAPWIRE_IGNORE_OUTBOUND_PORTS"
    )]
    ignore_outbound_ports: PortList,
    /// Install the same rules for IPv6 with ip6tables. Where ip6tables or
    /// the kernel's IPv6 NAT is missing this is skipped with a warning, and
    /// IPv6 TCP bypasses the proxy.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set, env = "TAPWIRE_IPV6")]
    ipv6: bool,
    /// Print the rules (`iptables-restore --noflush` input) instead of
    /// applying them; needs no privileges.
    #[arg(long)]
    dry_run: bool,
    /// Delete tapwire's chains and the jumps into them; nothing else is touched.
    #[arg(long)]
    remove: bool,
}

impl InitCmd {
    fn redirect(&self) -> Redirect {
        Redirect {
            proxy_uid: self.proxy_uid,
            in_port: self.in_port,
            out_port: self.out_port,
            admin_port: (self.admin_port != 0).then_some(self.admin_port),
            ignore_src_ips: self.ignore_src_ips.clone(),
            ignore_dst_ips: self.ignore_dst_ips.clone(),
            ignore_inbound_ports: self.ignore_inbound_ports.clone(),
            ignore_outbound_ports: self.ignore_outbound_ports.clone(),
        }
    }

    fn families(&self) -> &'static [Family] {
        if self.ipv6 {
            &[Family::V4, Family::V6]
        } else {
            &[Family::V4]
        }
    }

    /// The script for `family` given what is installed.
    fn script(&self, redirect: &Redirect, family: Family, installed: &Installed) -> Option<String> {
        if self.remove {
            remove_script(installed)
        } else {
            Some(install_script(redirect, family, installed))
        }
    }
}

pub(crate) fn run(cmd: InitCmd) -> anyhow::Result<ExitCode> {
    let redirect = cmd.redirect();
    if cmd.dry_run {
        for &family in cmd.families() {
            print_dry_run(&cmd, &redirect, family);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if cmd.remove { "remove" } else { "install" };
    for &family in cmd.families() {
        match apply(&cmd, &redirect, family) {
            Ok(done) => eprintln!("{done}"),
            // IPv4 worked, so privileges are there: IPv6 NAT is what is missing.
            Err(e) if family == Family::V6 && !e.is_permission() => {
                tracing::warn!(error = %e, "cannot {verb} the IPv6 rules; IPv6 TCP bypasses the proxy (it is not captured)");
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot {verb} the {} rules", family.name()))
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Installs or removes the rules of one family; says what it did.
fn apply(cmd: &InitCmd, redirect: &Redirect, family: Family) -> Result<String, IptablesError> {
    let tool = Iptables::find(family)?;
    let installed = tool.installed()?;
    let Some(script) = cmd.script(redirect, family, &installed) else {
        return Ok(format!("{}: no tapwire rules to remove", family.name()));
    };
    tool.restore(&script)?;
    if cmd.remove {
        return Ok(format!(
            "{}: removed {}",
            family.name(),
            installed.chains.join(", ")
        ));
    }
    // The init container's log is where users look when traffic is odd.
    println_out(&format!(
        "# {} rules applied:\n{}",
        family.name(),
        script.trim_end()
    ));
    Ok(format!("{}: {}", family.name(), describe(redirect)))
}

fn print_dry_run(cmd: &InitCmd, redirect: &Redirect, family: Family) {
    // Reading the table needs the same privileges as writing it; without
    // them, show what a fresh pod would get.
    let (installed, note) = match Iptables::find(family).and_then(|t| t.installed()) {
        Ok(i) => (i, "against the current nat table"),
        Err(_) => (
            Installed::default(),
            "for an empty nat table (the current one is not readable)",
        ),
    };
    let command = match family {
        Family::V4 => "iptables-restore --noflush",
        Family::V6 => "ip6tables-restore --noflush",
    };
    match cmd.script(redirect, family, &installed) {
        Some(script) => println_out(&format!(
            "# {}: input for `{command}`, {note}\n{}",
            family.name(),
            script.trim_end()
        )),
        None => println_out(&format!("# {}: no tapwire rules to remove", family.name())),
    }
}

/// One line saying what is redirected where.
fn describe(r: &Redirect) -> String {
    let side = |on: bool, what: &str, port: u16| {
        if on {
            format!("{what} TCP to port {port}")
        } else {
            format!("{what} TCP not redirected")
        }
    };
    format!(
        "{}, {} (the proxy's UID {}, loopback and the ignore lists bypass it)",
        side(r.redirects_inbound(), "inbound", r.in_port),
        side(r.redirects_outbound(), "outbound", r.out_port),
        r.proxy_uid
    )
}

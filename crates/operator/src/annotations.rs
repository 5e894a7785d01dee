//! The `sidecar.tapwire.dev/*` annotations: what a workload asks for.
//!
//! Parsing is strict and total: every value is checked, and every bad one is
//! reported by name so the admission response and the Event can say exactly
//! which annotation to fix. A workload with a bad value is admitted unchanged.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// The annotation prefix.
pub const PREFIX: &str = "sidecar.tapwire.dev/";
/// Where the operator records what it added, so it can be removed or left alone.
pub const STATUS: &str = "sidecar.tapwire.dev/status";

/// How the sidecar sits in the pod's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyType {
    /// iptables redirect all inbound and outbound TCP (needs NET_ADMIN in an init container).
    Transparent,
    /// Inbound reverse proxy plus outbound forward proxy.
    Dual,
    /// Inbound reverse proxy only.
    Reverse,
    /// Outbound forward proxy only.
    Forward,
}

impl ProxyType {
    /// The `tapwire proxy --mode` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transparent => "transparent",
            Self::Dual => "dual",
            Self::Reverse => "reverse",
            Self::Forward => "forward",
        }
    }

    /// Whether the app's outbound calls go through the forward proxy by
    /// environment (`HTTP_PROXY`).
    pub fn has_forward_listener(self) -> bool {
        matches!(self, Self::Dual | Self::Forward)
    }
}

/// What the listeners speak (`tapwire proxy --proxy-protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ProxyProtocol {
    /// HTTP, detected per connection; anything else is recorded as a TCP flow.
    #[serde(rename = "http")]
    Http,
    /// Opaque TCP on the inbound side.
    #[serde(rename = "tcp")]
    Tcp,
    /// Inbound TCP, outbound HTTP forward proxy (dual mode).
    #[serde(rename = "tcp:http")]
    TcpHttp,
}

impl ProxyProtocol {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Tcp => "tcp",
            Self::TcpHttp => "tcp:http",
        }
    }
}

/// One of the resource annotations, as `(resource, requests|limits)`.
const RESOURCE_KEYS: [(&str, &str, &str); 6] = [
    ("cpu-request", "cpu", "requests"),
    ("cpu-limit", "cpu", "limits"),
    ("memory-request", "memory", "requests"),
    ("memory-limit", "memory", "limits"),
    ("ephemeral-storage-request", "ephemeral-storage", "requests"),
    ("ephemeral-storage-limit", "ephemeral-storage", "limits"),
];

/// Every annotation users set (without the prefix).
pub const KNOWN: [&str; 22] = [
    "inject",
    "proxy-type",
    "proxy-protocol",
    "proxy-host",
    "proxy-port",
    "proxy-in-port",
    "proxy-out-port",
    "tls-out",
    "tls-trust-env",
    "proxy-env",
    "cpu-request",
    "cpu-limit",
    "memory-request",
    "memory-limit",
    "ephemeral-storage-request",
    "ephemeral-storage-limit",
    "insert-init-first",
    "ignore-src-ips",
    "ignore-dst-ips",
    "ignore-inbound-ports",
    "ignore-outbound-ports",
    "service",
];

/// The sidecar a workload asked for, fully validated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SidecarSpec {
    /// `proxy-type`.
    pub proxy_type: ProxyType,
    /// `proxy-protocol`.
    pub protocol: ProxyProtocol,
    /// `proxy-host`: where reverse/dual inbound requests go (an IP; `localhost` means 127.0.0.1).
    pub app_host: IpAddr,
    /// `proxy-port`: the app's port for reverse/dual.
    pub app_port: u16,
    /// `proxy-in-port`.
    pub in_port: u16,
    /// `proxy-out-port`.
    pub out_port: u16,
    /// `tls-out`: intercept outbound TLS.
    pub tls_out: bool,
    /// `tls-trust-env`: give app containers the CA trust variables (needs `tls-out`).
    pub trust_env: bool,
    /// `proxy-env`: give app containers `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` (dual and forward).
    pub proxy_env: bool,
    /// `insert-init-first`.
    pub init_first: bool,
    /// Resource overrides: `(resource, requests|limits) -> quantity`.
    pub resources: BTreeMap<(String, String), String>,
    /// `ignore-src-ips`, passed to `tapwire init`.
    pub ignore_src_ips: Option<String>,
    /// `ignore-dst-ips`.
    pub ignore_dst_ips: Option<String>,
    /// `ignore-inbound-ports`.
    pub ignore_inbound_ports: Option<String>,
    /// `ignore-outbound-ports`.
    pub ignore_outbound_ports: Option<String>,
    /// `service`: the name stamped on captures (default: the app label or workload name).
    pub service: Option<String>,
}

/// What the annotations ask the operator to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// No `inject` annotation: leave the pod alone.
    Nothing,
    /// `inject: "true"` with valid values.
    Inject(Box<SidecarSpec>),
    /// `inject: "false"`: remove whatever tapwire added.
    Remove,
    /// `inject: "true"` but some values are bad: one message per problem.
    Invalid(Vec<String>),
}

/// Reads the annotations (workload's merged with the pod's, pod winning).
pub fn parse(annotations: &BTreeMap<String, String>) -> Request {
    let get = |k: &str| annotations.get(&format!("{PREFIX}{k}")).map(|v| v.trim());
    let mut problems = Vec::new();
    match get("inject") {
        None => return Request::Nothing,
        Some(v) => match parse_bool(v) {
            Some(true) => {}
            Some(false) => return Request::Remove,
            None => {
                return Request::Invalid(vec![bad("inject", v, "\"true\" or \"false\"")]);
            }
        },
    }
    for key in annotations.keys() {
        if let Some(name) = key.strip_prefix(PREFIX) {
            if !KNOWN.contains(&name) && key != STATUS {
                problems.push(format!(
                    "unknown annotation {key}: known ones are {}",
                    KNOWN.join(", ")
                ));
            }
        }
    }
    let proxy_type = match get("proxy-type") {
        None => ProxyType::Transparent,
        Some("transparent") => ProxyType::Transparent,
        Some("dual") => ProxyType::Dual,
        Some("reverse") => ProxyType::Reverse,
        Some("forward") => ProxyType::Forward,
        Some(v) => {
            problems.push(bad(
                "proxy-type",
                v,
                "transparent, dual, reverse or forward",
            ));
            ProxyType::Transparent
        }
    };
    let protocol = match get("proxy-protocol") {
        None | Some("http") => ProxyProtocol::Http,
        Some("tcp") => ProxyProtocol::Tcp,
        Some("tcp:http") => ProxyProtocol::TcpHttp,
        Some(v) => {
            problems.push(bad("proxy-protocol", v, "http, tcp or tcp:http"));
            ProxyProtocol::Http
        }
    };
    match (protocol, proxy_type) {
        (ProxyProtocol::Tcp, ProxyType::Forward) => problems.push(
            "sidecar.tapwire.dev/proxy-protocol \"tcp\" needs an inbound listener: use proxy-type reverse, dual or transparent".to_owned(),
        ),
        (ProxyProtocol::TcpHttp, t) if t != ProxyType::Dual => problems.push(format!(
            "sidecar.tapwire.dev/proxy-protocol \"tcp:http\" is for proxy-type dual (inbound TCP, outbound HTTP), not {}",
            t.as_str()
        )),
        _ => {}
    }
    let app_host = match get("proxy-host") {
        None | Some("localhost") => IpAddr::from([127, 0, 0, 1]),
        Some(v) => v.parse().unwrap_or_else(|_| {
            problems.push(bad(
                "proxy-host",
                v,
                "an IP address or localhost (the app runs in the same pod)",
            ));
            IpAddr::from([127, 0, 0, 1])
        }),
    };
    let mut port = |key: &str, default: u16| match get(key) {
        None => default,
        Some(v) => match v.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => {
                problems.push(bad(key, v, "a port number from 1 to 65535"));
                default
            }
        },
    };
    let app_port = port("proxy-port", 80);
    let in_port = port("proxy-in-port", 4143);
    let out_port = port("proxy-out-port", 4140);
    if in_port == out_port {
        problems.push(format!(
            "sidecar.tapwire.dev/proxy-in-port and proxy-out-port are both {in_port}: they must differ"
        ));
    }
    let mut flag = |key: &str| match get(key) {
        None => false,
        Some(v) => parse_bool(v).unwrap_or_else(|| {
            problems.push(bad(key, v, "\"true\" or \"false\""));
            false
        }),
    };
    let tls_out = flag("tls-out");
    let trust_env = flag("tls-trust-env");
    let proxy_env = flag("proxy-env");
    let init_first = flag("insert-init-first");
    if trust_env && !tls_out {
        problems.push(
            "sidecar.tapwire.dev/tls-trust-env needs sidecar.tapwire.dev/tls-out: \"true\"".into(),
        );
    }
    if proxy_env && !proxy_type.has_forward_listener() {
        problems.push(format!(
            "sidecar.tapwire.dev/proxy-env needs proxy-type dual or forward, not {}",
            proxy_type.as_str()
        ));
    }
    let mut resources = BTreeMap::new();
    for (key, resource, kind) in RESOURCE_KEYS {
        if let Some(v) = get(key) {
            if is_quantity(v) {
                resources.insert((resource.to_owned(), kind.to_owned()), v.to_owned());
            } else {
                problems.push(bad(
                    key,
                    v,
                    "a Kubernetes quantity such as 100m, 64Mi or 1Gi",
                ));
            }
        }
    }
    let mut list = |key: &str, check: fn(&str) -> bool, what: &str| {
        get(key).and_then(|v| {
            if v == "*" {
                return Some(v.to_owned());
            }
            let bad_items: Vec<&str> = v
                .split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty() && !check(i))
                .collect();
            if bad_items.is_empty() {
                Some(v.to_owned())
            } else {
                problems.push(format!(
                    "sidecar.tapwire.dev/{key}: {} not {what}",
                    bad_items
                        .iter()
                        .map(|i| format!("{i:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                None
            }
        })
    };
    let ignore_src_ips = list("ignore-src-ips", is_ip_or_cidr, "an IP or CIDR");
    let ignore_dst_ips = list("ignore-dst-ips", is_ip_or_cidr, "an IP or CIDR");
    let ignore_inbound_ports = list(
        "ignore-inbound-ports",
        is_port_or_range,
        "a port or a:b range",
    );
    let ignore_outbound_ports = list(
        "ignore-outbound-ports",
        is_port_or_range,
        "a port or a:b range",
    );
    let ignore_given = [
        &ignore_src_ips,
        &ignore_dst_ips,
        &ignore_inbound_ports,
        &ignore_outbound_ports,
    ]
    .iter()
    .any(|v| v.is_some());
    if ignore_given && proxy_type != ProxyType::Transparent {
        problems.push(format!(
            "sidecar.tapwire.dev/ignore-* lists apply to proxy-type transparent only, not {}",
            proxy_type.as_str()
        ));
    }
    let service = get("service").map(str::to_owned);
    if !problems.is_empty() {
        return Request::Invalid(problems);
    }
    Request::Inject(Box::new(SidecarSpec {
        proxy_type,
        protocol,
        app_host,
        app_port,
        in_port,
        out_port,
        tls_out,
        trust_env,
        proxy_env,
        init_first,
        resources,
        ignore_src_ips,
        ignore_dst_ips,
        ignore_inbound_ports,
        ignore_outbound_ports,
        service,
    }))
}

fn bad(key: &str, value: &str, want: &str) -> String {
    format!("sidecar.tapwire.dev/{key}: {value:?} is not valid; use {want}")
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Whether `v` is a Kubernetes resource quantity (`100m`, `1.5`, `64Mi`, `1e3`).
pub fn is_quantity(v: &str) -> bool {
    let v = v.strip_prefix('+').unwrap_or(v);
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, suffix) = v.split_at(split);
    let num_ok = !num.is_empty()
        && num.chars().filter(|&c| c == '.').count() <= 1
        && num.chars().any(|c| c.is_ascii_digit());
    let suffix_ok = matches!(
        suffix,
        "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
    ) || suffix.strip_prefix(['e', 'E']).is_some_and(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
    });
    num_ok && suffix_ok
}

fn is_ip_or_cidr(v: &str) -> bool {
    match v.split_once('/') {
        None => v.parse::<IpAddr>().is_ok(),
        Some((ip, len)) => match (ip.parse::<IpAddr>(), len.parse::<u8>()) {
            (Ok(IpAddr::V4(_)), Ok(l)) => l <= 32,
            (Ok(IpAddr::V6(_)), Ok(l)) => l <= 128,
            _ => false,
        },
    }
}

fn is_port_or_range(v: &str) -> bool {
    let port = |p: &str| p.parse::<u16>().is_ok_and(|p| p > 0);
    match v.split_once(':') {
        None => port(v),
        Some((a, b)) => port(a) && port(b) && a.parse::<u16>().ok() <= b.parse::<u16>().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_are_transparent_http() {
        let Request::Inject(s) = parse(&ann(&[("inject", "true")])) else {
            panic!("expected inject");
        };
        assert_eq!(s.proxy_type, ProxyType::Transparent);
        assert_eq!(s.protocol, ProxyProtocol::Http);
        assert_eq!((s.in_port, s.out_port, s.app_port), (4143, 4140, 80));
        assert!(!s.tls_out);
    }

    #[test]
    fn no_inject_means_nothing_and_false_means_remove() {
        assert_eq!(parse(&BTreeMap::new()), Request::Nothing);
        assert_eq!(parse(&ann(&[("inject", "false")])), Request::Remove);
    }

    #[test]
    fn every_bad_value_is_named() {
        let r = parse(&ann(&[
            ("inject", "true"),
            ("proxy-type", "sideways"),
            ("proxy-port", "70000"),
            ("cpu-limit", "lots"),
            ("tls-out", "maybe"),
            ("ignore-dst-ips", "10.0.0.0/8,not-an-ip"),
            ("colour", "blue"),
        ]));
        let Request::Invalid(p) = r else {
            panic!("expected invalid, got {r:?}");
        };
        let all = p.join("\n");
        for needle in [
            "proxy-type: \"sideways\"",
            "proxy-port: \"70000\"",
            "cpu-limit: \"lots\"",
            "tls-out: \"maybe\"",
            "\"not-an-ip\" not an IP or CIDR",
            "unknown annotation sidecar.tapwire.dev/colour",
        ] {
            assert!(all.contains(needle), "{needle} missing from:\n{all}");
        }
    }

    #[test]
    fn combinations_are_checked() {
        let r = parse(&ann(&[
            ("inject", "true"),
            ("proxy-type", "reverse"),
            ("proxy-protocol", "tcp:http"),
            ("proxy-env", "true"),
            ("tls-trust-env", "true"),
        ]));
        let Request::Invalid(p) = r else {
            panic!("expected invalid");
        };
        assert_eq!(p.len(), 3, "{p:#?}");
    }

    #[test]
    fn quantities() {
        for ok in ["100m", "1", "1.5", "64Mi", "1Gi", "1e3", "+2", "500M"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "m", "1.2.3", "10 Mi", "1GB", "-1", "1e", "abc"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn lists() {
        assert!(is_ip_or_cidr("10.0.0.0/8") && is_ip_or_cidr("fd00::1"));
        assert!(!is_ip_or_cidr("10.0.0.0/33") && !is_ip_or_cidr("host"));
        assert!(is_port_or_range("80") && is_port_or_range("8000:9000"));
        assert!(!is_port_or_range("0") && !is_port_or_range("9000:8000"));
        let Request::Inject(s) = parse(&ann(&[
            ("inject", "true"),
            ("ignore-outbound-ports", "*"),
            ("ignore-src-ips", "10.1.0.0/16, 10.2.0.1"),
        ])) else {
            panic!("expected inject");
        };
        assert_eq!(s.ignore_outbound_ports.as_deref(), Some("*"));
    }
}

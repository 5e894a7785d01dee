use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tapwire_ca::CertificateAuthority;
use tapwire_model::Service;

/// Which listeners the proxy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Inbound reverse proxy and outbound forward proxy.
    #[default]
    Dual,
    /// Inbound reverse proxy only.
    Reverse,
    /// Outbound forward proxy only.
    Forward,
    /// Both listeners receive connections redirected by iptables (`tapwire
    /// init`); each goes to its original destination (see `transparent`).
    Transparent,
}

impl Mode {
    /// True when the inbound listener runs.
    pub fn inbound(self) -> bool {
        matches!(self, Mode::Dual | Mode::Reverse | Mode::Transparent)
    }

    /// True when the outbound listener runs.
    pub fn outbound(self) -> bool {
        matches!(self, Mode::Dual | Mode::Forward | Mode::Transparent)
    }
}

impl fmt::Display for Mode {
    /// As `--mode` spells it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Dual => "dual",
            Mode::Reverse => "reverse",
            Mode::Forward => "forward",
            Mode::Transparent => "transparent",
        })
    }
}

/// How one side of the proxy treats the bytes of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wire {
    /// HTTP, told apart per connection where the listener can see other
    /// protocols (transparent mode, tunnels): HTTP/1.x and h2c are proxied
    /// request by request, TLS as configured, anything else is relayed and
    /// recorded as a TCP flow.
    #[default]
    Http,
    /// Every connection is relayed byte for byte and recorded as a TCP flow.
    Tcp,
}

impl fmt::Display for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Wire::Http => "http",
            Wire::Tcp => "tcp",
        })
    }
}

/// `--proxy-protocol`: `INBOUND[:OUTBOUND]`, each `http` or `tcp`; the
/// outbound side defaults to `http`. `tcp` relays the inbound side as
/// opaque TCP; `tcp:http` is inbound TCP with outbound HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyProtocol {
    /// Connections to the app (inbound listener).
    pub inbound: Wire,
    /// The app's calls (outbound listener).
    pub outbound: Wire,
}

impl ProxyProtocol {
    /// The setting for connections going `direction`.
    pub fn side(self, direction: tapwire_model::Direction) -> Wire {
        match direction {
            tapwire_model::Direction::Inbound => self.inbound,
            tapwire_model::Direction::Outbound => self.outbound,
        }
    }

    /// Why this setting cannot take effect in `mode`, if it cannot: the
    /// explicit forward proxy always speaks HTTP with the app, and forward
    /// mode runs no inbound listener.
    pub fn check(self, mode: Mode) -> Result<(), String> {
        if self.outbound == Wire::Tcp && mode != Mode::Transparent {
            return Err(format!(
                "--proxy-protocol {self}: an opaque outbound side needs --mode transparent \
                 (in {mode} mode the outbound listener is an HTTP forward proxy); \
                 use `tcp` or `tcp:http`"
            ));
        }
        if self.inbound == Wire::Tcp && !mode.inbound() {
            return Err(format!(
                "--proxy-protocol {self}: {mode} mode runs no inbound listener; use `http`"
            ));
        }
        Ok(())
    }
}

impl fmt::Display for ProxyProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.outbound {
            Wire::Http => write!(f, "{}", self.inbound),
            Wire::Tcp => write!(f, "{}:{}", self.inbound, self.outbound),
        }
    }
}

impl FromStr for Wire {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "http" => Ok(Wire::Http),
            "tcp" => Ok(Wire::Tcp),
            other => Err(format!("unknown protocol {other:?}")),
        }
    }
}

impl FromStr for ProxyProtocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed = match s.split_once(':') {
            Some((i, o)) => i.parse().and_then(|i| Ok((i, o.parse()?))),
            None => s.parse().map(|i| (i, Wire::Http)),
        };
        let (inbound, outbound) = parsed
            .map_err(|e| format!("{e} in {s:?}: use http, tcp or tcp:http (INBOUND[:OUTBOUND])"))?;
        Ok(Self { inbound, outbound })
    }
}

/// Everything the proxy needs to run; built once by the CLI from flags and
/// environment.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Which listeners to run.
    pub mode: Mode,
    /// Inbound listener address (reverse proxy in front of the app).
    pub inbound_addr: SocketAddr,
    /// Outbound listener address (forward proxy for the app's calls).
    pub outbound_addr: SocketAddr,
    /// Admin listener address (`/metrics`, `/healthz`, `/readyz`); `None` disables it.
    pub admin_addr: Option<SocketAddr>,
    /// Where inbound requests are forwarded (the app).
    pub app_addr: SocketAddr,
    /// Identity stamped on every exchange.
    pub service: Service,
    /// Bytes of each body copied into a capture; the rest is counted only.
    pub capture_limit: usize,
    /// Captures that may wait for the sink before new ones are dropped.
    pub queue_capacity: usize,
    /// Terminate CONNECT tunnels with a leaf from this CA and see plaintext.
    pub tls_intercept: Option<Arc<CertificateAuthority>>,
    /// Extra PEM bundle trusted for upstream TLS, besides the system roots.
    pub extra_ca_bundle: Option<PathBuf>,
    /// How long connecting to an upstream may take before a 504.
    pub connect_timeout: Duration,
    /// Largest request head accepted before answering 431.
    pub max_header_bytes: usize,
    /// Whether each side detects HTTP or relays opaque TCP.
    pub protocol: ProxyProtocol,
}

impl ProxyConfig {
    /// Most header fields in one message head. hyper's default of 100 is
    /// lower than real traffic sometimes needs; the byte limit is the one
    /// users set, so the field count follows it (a field takes at least a
    /// few bytes) within bounds that keep per-request parsing cheap.
    pub fn max_header_fields(&self) -> usize {
        (self.max_header_bytes / 64).clamp(100, 1024)
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
        Self {
            mode: Mode::Dual,
            inbound_addr: local(4143),
            outbound_addr: local(4140),
            admin_addr: Some(local(4145)),
            app_addr: local(8080),
            service: Service {
                name: "app".into(),
                ..Service::default()
            },
            capture_limit: 1024 * 1024,
            queue_capacity: 10_000,
            tls_intercept: None,
            extra_ca_bundle: None,
            connect_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            protocol: ProxyProtocol::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_protocol_parses_inbound_then_outbound() {
        let p = |s: &str| s.parse::<ProxyProtocol>();
        let pp = |inbound, outbound| Ok(ProxyProtocol { inbound, outbound });
        assert_eq!(p("http"), pp(Wire::Http, Wire::Http));
        assert_eq!(p("tcp"), pp(Wire::Tcp, Wire::Http));
        assert_eq!(p("tcp:http"), pp(Wire::Tcp, Wire::Http));
        assert_eq!(p("TCP:tcp"), pp(Wire::Tcp, Wire::Tcp));
        let err = p("tcp:socks").unwrap_err();
        assert!(err.contains("\"socks\""), "{err}");
        assert!(p("").is_err());
        assert_eq!(p("tcp:http").unwrap().to_string(), "tcp");
        assert_eq!(p("http:tcp").unwrap().to_string(), "http:tcp");
    }

    #[test]
    fn opaque_sides_must_exist_in_the_mode() {
        let tcp_out = ProxyProtocol {
            inbound: Wire::Http,
            outbound: Wire::Tcp,
        };
        assert!(tcp_out.check(Mode::Transparent).is_ok());
        assert!(tcp_out.check(Mode::Dual).is_err());
        let tcp_in = ProxyProtocol {
            inbound: Wire::Tcp,
            outbound: Wire::Http,
        };
        assert!(tcp_in.check(Mode::Dual).is_ok());
        assert!(tcp_in.check(Mode::Reverse).is_ok());
        assert!(tcp_in.check(Mode::Forward).is_err());
    }
}

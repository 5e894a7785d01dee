use std::net::SocketAddr;
use std::path::PathBuf;
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
}

impl Mode {
    /// True when the inbound listener runs.
    pub fn inbound(self) -> bool {
        matches!(self, Mode::Dual | Mode::Reverse)
    }

    /// True when the outbound listener runs.
    pub fn outbound(self) -> bool {
        matches!(self, Mode::Dual | Mode::Forward)
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
        }
    }
}

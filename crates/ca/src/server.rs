use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::{CaError, LeafIssuer};

/// Picks the leaf for a TLS handshake: the client's SNI, else a fallback host.
///
/// The fallback is the host the client asked the proxy to reach (the CONNECT
/// target), which is what a client that sends no SNI (IP literals, old
/// stacks) expects to see in the certificate.
#[derive(Debug)]
pub struct LeafResolver {
    issuer: Arc<LeafIssuer>,
    fallback_host: Option<String>,
}

impl LeafResolver {
    /// A resolver minting through `issuer`, using `fallback_host` when there is no SNI.
    pub fn new(issuer: Arc<LeafIssuer>, fallback_host: Option<String>) -> Self {
        Self {
            issuer,
            fallback_host,
        }
    }
}

impl ResolvesServerCert for LeafResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = client_hello.server_name().or(self.fallback_host.as_deref()) else {
            tracing::warn!("client sent no SNI and no fallback host is known; aborting handshake");
            return None;
        };
        match self.issuer.issue(name) {
            Ok(key) => Some(key),
            Err(e) => {
                tracing::warn!(server_name = name, error = %e, "cannot mint leaf certificate; aborting handshake");
                None
            }
        }
    }
}

impl LeafIssuer {
    /// A rustls server config (ring provider, TLS 1.2 and 1.3) that presents
    /// leaves for the client's SNI, or for `fallback_host` without one, and
    /// offers `alpn` in preference order.
    ///
    /// Cheap enough to build per connection. Configs from one issuer share a
    /// session cache so clients can resume; rustls refuses resumption when
    /// the SNI differs, so a session never crosses hosts.
    pub fn server_config_for(
        self: &Arc<Self>,
        fallback_host: &str,
        alpn: Vec<Vec<u8>>,
    ) -> Result<Arc<ServerConfig>, CaError> {
        let resolver = LeafResolver::new(Arc::clone(self), Some(fallback_host.to_owned()));
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .map_err(CaError::Tls)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        config.alpn_protocols = alpn;
        config.session_storage = Arc::clone(&self.sessions);
        Ok(Arc::new(config))
    }
}

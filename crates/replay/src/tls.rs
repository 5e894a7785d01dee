//! The connector for the target: plain TCP for `http://`, rustls for
//! `https://` (system roots plus `--cacert`, or no verification at all with
//! `--insecure`).

use std::sync::Arc;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::ReplayConfig;
use crate::ReplayError;

/// The connector every request goes through. Only `https://` targets use
/// TLS; ALPN offers only `h2` with `--http2`, and nothing otherwise (so the
/// server speaks HTTP/1.1): the protocol is the one the user chose either way.
pub(crate) fn connector(cfg: &ReplayConfig) -> Result<HttpsConnector<HttpConnector>, ReplayError> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(cfg.timeout));
    // The TLS layer below sees https:// URIs; the TCP connector must not refuse them.
    http.enforce_http(false);
    let tls = client_config(cfg)?;
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    Ok(if cfg.http2 {
        builder.enable_http2().wrap_connector(http)
    } else {
        builder.enable_http1().wrap_connector(http)
    })
}

fn client_config(cfg: &ReplayConfig) -> Result<rustls::ClientConfig, ReplayError> {
    let is_https = cfg.target.starts_with("https://");
    if cfg.insecure {
        if is_https {
            tracing::warn!(
                target_url = %cfg.target,
                "--insecure: the target's TLS certificate is NOT verified; anyone on the path can impersonate it"
            );
        }
        let base = tapwire_ca::client_config_from_roots(rustls::RootCertStore::empty(), Vec::new())
            .map_err(|source| ReplayError::Tls { source })?;
        let mut config = (*base).clone();
        let provider = config.crypto_provider().clone();
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }));
        return Ok(config);
    }
    if !is_https {
        // Never used for http:// targets; avoid reading the system roots
        // (and failing on a machine without any) for nothing.
        let config =
            tapwire_ca::client_config_from_roots(rustls::RootCertStore::empty(), Vec::new())
                .map_err(|source| ReplayError::Tls { source })?;
        return Ok((*config).clone());
    }
    let config = tapwire_ca::client_config(cfg.cacert.as_deref(), Vec::new())
        .map_err(|source| ReplayError::Tls { source })?;
    Ok((*config).clone())
}

/// `--insecure`: accepts any certificate chain for any name. Handshake
/// signatures are still checked, so the session is encrypted to whoever
/// holds the key of the certificate that was presented, just not
/// authenticated.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

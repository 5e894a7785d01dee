use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::CaError;

/// A rustls client config for the proxy's upstream connections.
///
/// Trusts the system roots (via `rustls-native-certs`, which honours
/// `SSL_CERT_FILE` and `SSL_CERT_DIR`) plus every certificate in the optional
/// PEM bundle, and offers `alpn` in preference order. Fails if the bundle
/// cannot be read or holds no usable certificate, or if nothing would be
/// trusted at all.
pub fn client_config(
    extra_ca_bundle: Option<&Path>,
    alpn: Vec<Vec<u8>>,
) -> Result<Arc<ClientConfig>, CaError> {
    let mut roots = RootCertStore::empty();

    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!(error = %error, "cannot read some system root certificates");
    }
    let found = native.certs.len();
    let (loaded, failed) = roots.add_parsable_certificates(native.certs);
    tracing::info!(found, loaded, failed, "loaded system root certificates");

    if let Some(path) = extra_ca_bundle {
        let loaded = add_bundle(&mut roots, path)?;
        tracing::info!(path = %path.display(), loaded, "loaded extra CA bundle");
    }
    if roots.is_empty() {
        return Err(CaError::NoRoots);
    }
    client_config_from_roots(roots, alpn)
}

/// A rustls client config (ring provider) trusting exactly `roots`.
///
/// For tests and tools that must trust a private CA and nothing else.
pub fn client_config_from_roots(
    roots: RootCertStore,
    alpn: Vec<Vec<u8>>,
) -> Result<Arc<ClientConfig>, CaError> {
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(CaError::Tls)?
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn;
    Ok(Arc::new(config))
}

fn add_bundle(roots: &mut RootCertStore, path: &Path) -> Result<usize, CaError> {
    let pem = std::fs::read(path).map_err(|source| CaError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // Unparsable PEM sections are skipped like unusable certificates; the
    // bundle only fails if nothing in it can serve as a trust anchor.
    let certs = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if ignored > 0 {
        tracing::warn!(path = %path.display(), ignored, "skipped unusable certificates in CA bundle");
    }
    if added == 0 {
        return Err(CaError::EmptyBundle {
            path: path.to_path_buf(),
        });
    }
    Ok(added)
}

/// An HTTP and HTTPS connector for hyper's pooled client: TCP with
/// `TCP_NODELAY` and a connect timeout, TLS from `tls` (its ALPN list is
/// replaced by h2 and http/1.1, which hyper-rustls negotiates itself).
pub fn https_connector(
    tls: &ClientConfig,
    connect_timeout: std::time::Duration,
) -> hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector> {
    let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
    tcp.set_connect_timeout(Some(connect_timeout));
    tcp.set_nodelay(true);
    tcp.enforce_http(false);
    let mut tls = tls.clone();
    tls.alpn_protocols.clear();
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_bundle_error_names_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("no-such-bundle.pem");
        let err = client_config(Some(&path), vec![]).unwrap_err();
        assert!(matches!(err, CaError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("no-such-bundle.pem"), "{err}");
    }

    #[test]
    fn bundle_without_certificates_is_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("empty.pem");
        std::fs::write(&path, "just some text\n").unwrap();
        let err = client_config(Some(&path), vec![]).unwrap_err();
        assert!(matches!(err, CaError::EmptyBundle { .. }), "{err:?}");
        assert!(err.to_string().contains("empty.pem"), "{err}");
    }

    #[test]
    fn bundle_certificates_are_added_and_alpn_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("bundle.pem");
        let ca = crate::CertificateAuthority::generate("bundle test").unwrap();
        std::fs::write(&path, ca.cert_pem()).unwrap();
        let config = client_config(Some(&path), vec![b"h2".to_vec()]).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"h2".to_vec()]);
    }
}

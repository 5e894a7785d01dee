//! The webhook's serving certificate: generated at start (a private CA
//! whose certificate goes into the webhook configuration's `caBundle`), or
//! read from files that cert-manager maintains.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The webhook could not get a certificate.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Generating failed.
    #[error("cannot generate the webhook certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A SAN is neither an IP nor a DNS name.
    #[error("{0:?} is not a usable certificate name")]
    Name(String),
    /// The files could not be read.
    #[error("cannot read {path}: {source}; with cert-manager, mount the Certificate's secret there (tls.crt, tls.key)")]
    Read {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The files are not a certificate and key.
    #[error("{0}")]
    Pem(String),
    /// rustls refused them.
    #[error("the webhook certificate is unusable: {0}")]
    Tls(#[from] rustls::Error),
}

/// A serving certificate and the CA that clients must trust.
#[derive(Debug)]
pub struct ServingCert {
    /// PEM of the CA to put in `caBundle` (empty when cert-manager manages it).
    pub ca_pem: String,
    /// The TLS configuration to serve with.
    pub tls: Arc<rustls::ServerConfig>,
}

/// The DNS names of a Service, the way the API server addresses it.
pub fn service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// Generates a one-year CA and a leaf for `names` (DNS names or IPs).
pub fn generate(names: &[String]) -> Result<ServingCert, CertError> {
    let now = time::OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "tapwire operator webhook CA");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    ca.not_before = now - time::Duration::hours(1);
    ca.not_after = now + time::Duration::days(365);
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate()?;
    let mut leaf = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names
            .first()
            .cloned()
            .unwrap_or_else(|| "tapwire-operator".into()),
    );
    leaf.distinguished_name = dn;
    leaf.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|_| CertError::Name(n.clone())),
        })
        .collect::<Result<_, _>>()?;
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = now - time::Duration::hours(1);
    leaf.not_after = now + time::Duration::days(365);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    let chain = vec![leaf_cert.der().clone()];
    let key =
        PrivateKeyDer::try_from(leaf_key.serialize_der()).map_err(|e| CertError::Pem(e.into()))?;
    Ok(ServingCert {
        ca_pem: ca_cert.pem(),
        tls: server_config(chain, key)?,
    })
}

/// Reads `tls.crt` and `tls.key` from `dir` (a cert-manager secret).
pub fn load(dir: &Path) -> Result<ServingCert, CertError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|source| CertError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let cert_pem = read("tls.crt")?;
    let key_pem = read("tls.key")?;
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::Pem(format!("tls.crt is not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(CertError::Pem(format!(
            "{} holds no certificate",
            dir.join("tls.crt").display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| CertError::Pem(format!("tls.key is not PEM: {e}")))?
        .ok_or_else(|| {
            CertError::Pem(format!(
                "{} holds no private key",
                dir.join("tls.key").display()
            ))
        })?;
    Ok(ServingCert {
        ca_pem: String::new(),
        tls: server_config(chain, key)?,
    })
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, CertError> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

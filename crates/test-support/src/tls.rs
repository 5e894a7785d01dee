//! A private CA standing in for a real PKI: it signs the certificate of the
//! Python HTTPS upstream, and tapwire trusts it through `--extra-ca`.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// Names every upstream certificate is valid for.
pub const UPSTREAM_NAMES: &[&str] = &["localhost", "127.0.0.1", "upstream.test"];

/// PEM files of a test CA and one server certificate it signed, in a temp dir.
#[derive(Debug)]
pub struct TestCa {
    /// The CA certificate (give it to clients and to `--extra-ca`).
    pub ca_pem: PathBuf,
    /// The server certificate, valid for [`UPSTREAM_NAMES`].
    pub server_cert: PathBuf,
    /// The server's private key (PKCS#8).
    pub server_key: PathBuf,
    dir: tempfile::TempDir,
}

impl TestCa {
    /// Creates a P-256 CA and a server certificate signed by it.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tapwire-test-ca-")
            .tempdir()
            .expect("temp dir");
        let now = OffsetDateTime::now_utc();

        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.distinguished_name
            .push(DnType::CommonName, "tapwire test upstream CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.not_before = now - Duration::days(1);
        ca.not_after = now + Duration::days(30);
        let ca_cert = ca.self_signed(&ca_key).expect("self-sign CA");
        let issuer = Issuer::new(ca, ca_key);

        let names: Vec<String> = UPSTREAM_NAMES.iter().map(|s| (*s).to_owned()).collect();
        let mut leaf = CertificateParams::new(names).expect("leaf params");
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.not_before = now - Duration::days(1);
        leaf.not_after = now + Duration::days(30);
        let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("leaf key");
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("sign leaf");

        let write = |name: &str, pem: String| -> PathBuf {
            let p = dir.path().join(name);
            std::fs::write(&p, pem).expect("write PEM");
            p
        };
        Self {
            ca_pem: write("test-ca.pem", ca_cert.pem()),
            server_cert: write("server.pem", leaf_cert.pem()),
            server_key: write("server.key", leaf_key.serialize_pem()),
            dir,
        }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use p12_keystore::{KeyStore, KeyStoreEntry};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use time::{Duration, OffsetDateTime};

use crate::{random, CaError};

/// File name of the CA certificate (PEM) inside the CA directory.
pub const CERT_FILE: &str = "ca.crt";
/// File name of the CA private key (PKCS#8 PEM, mode 0600) inside the CA directory.
pub const KEY_FILE: &str = "ca.key";
/// Common name given to a CA created by [`init`] and [`load_or_init`].
pub const DEFAULT_COMMON_NAME: &str = "tapwire local CA";
/// File name [`CertificateAuthority::export_files`] gives the PEM certificate.
pub const EXPORT_CERT_FILE: &str = "tapwire-ca.crt";
/// File name [`CertificateAuthority::export_files`] gives the PKCS#12 truststore.
pub const EXPORT_PKCS12_FILE: &str = "tapwire-ca.p12";
/// Alias of the CA certificate inside the PKCS#12 truststore.
pub const TRUSTSTORE_ALIAS: &str = "tapwire-ca";

const CA_VALIDITY: Duration = Duration::days(3650);
// Clients whose clock runs behind ours must still accept a CA made just now.
const CA_BACKDATE: Duration = Duration::days(1);

/// Tapwire's signing CA: a self-signed certificate and its private key.
///
/// The key never leaves this type except through [`CertificateAuthority::save`],
/// which writes it with mode 0600.
pub struct CertificateAuthority {
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The issuer's own Debug elides the key; the DER adds nothing readable.
        f.debug_struct("CertificateAuthority")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Paths written by [`CertificateAuthority::export_files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedFiles {
    /// The CA certificate in PEM, for curl, Python, Node, Go and OS trust stores.
    pub cert_pem: PathBuf,
    /// The CA certificate as a PKCS#12 truststore, for the JVM.
    pub pkcs12: PathBuf,
}

impl CertificateAuthority {
    /// Creates a new self-signed CA (ECDSA P-256, ten years, path length 0) in memory.
    pub fn generate(common_name: &str) -> Result<Self, CaError> {
        let key =
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(CaError::Generate)?;
        let now = OffsetDateTime::now_utc();

        let mut params = CertificateParams::default();
        params.not_before = now - CA_BACKDATE;
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(random::serial_number()?);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "tapwire");
        params.distinguished_name = dn;
        // pathlen 0: this CA signs leaves only, so a stolen key cannot mint
        // intermediates that look like they belong to someone else's hierarchy.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];

        let cert = params.self_signed(&key).map_err(CaError::Generate)?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Reads `dir/ca.crt` and `dir/ca.key` and checks that they form a usable CA.
    pub fn load(dir: &Path) -> Result<Self, CaError> {
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        let cert_pem = read_ca_file(&cert_path)?;
        let key_pem = read_ca_file(&key_path)?;
        warn_if_key_exposed(&key_path);

        let invalid = |path: &Path, reason: String| CaError::InvalidCaFile {
            path: path.to_path_buf(),
            reason,
        };
        let mut certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes());
        let cert_der = match certs.next() {
            Some(Ok(der)) => der,
            Some(Err(e)) => return Err(invalid(&cert_path, format!("bad PEM: {e}"))),
            None => return Err(invalid(&cert_path, "no PEM certificate".to_owned())),
        };
        if certs.next().is_some() {
            return Err(invalid(&cert_path, "more than one certificate".to_owned()));
        }
        let key = load_key(&key_pem).map_err(|e| invalid(&key_path, e))?;

        check_ca_pair(&cert_path, &key_path, &cert_der, &key)?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|e| invalid(&cert_path, format!("cannot sign with it: {e}")))?;
        Ok(Self {
            cert_der,
            cert_pem,
            issuer,
        })
    }

    /// Writes `dir/ca.crt` and `dir/ca.key`, creating `dir` with mode 0700 if missing.
    ///
    /// Without `force` an existing CA file is an error. With `force` both files
    /// are replaced atomically (write to a temporary file, then rename).
    pub fn save(&self, dir: &Path, force: bool) -> Result<(), CaError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| CaError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        let key_pem = self.issuer.key().serialize_pem();

        if force {
            replace_file(&key_path, key_pem.as_bytes(), 0o600)?;
            replace_file(&cert_path, self.cert_pem.as_bytes(), 0o644)?;
            return Ok(());
        }

        let exists = |p: &Path| p.symlink_metadata().is_ok();
        if exists(&cert_path) || exists(&key_path) {
            return Err(CaError::AlreadyExists {
                dir: dir.to_path_buf(),
            });
        }
        // create_new makes a concurrent `init` lose cleanly instead of
        // interleaving its key with our certificate.
        create_new_file(dir, &key_path, key_pem.as_bytes(), 0o600)?;
        if let Err(e) = create_new_file(dir, &cert_path, self.cert_pem.as_bytes(), 0o644) {
            // A key without its certificate would make every later load fail.
            let _ = fs::remove_file(&key_path);
            return Err(e);
        }
        Ok(())
    }

    /// The CA certificate in PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate in DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// A root store that trusts only this CA, for clients in tests and tools.
    pub fn root_store(&self) -> Result<RootCertStore, CaError> {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert_der.clone()).map_err(CaError::Tls)?;
        Ok(roots)
    }

    /// Encodes the CA certificate as a PKCS#12 truststore that the JVM accepts.
    ///
    /// The certificate bag carries Oracle's trusted-key-usage attribute
    /// (OID 2.16.840.1.113894.746875.1.1 = anyExtendedKeyUsage), without which
    /// Java ignores certificates in PKCS#12 files; p12-keystore adds it to
    /// every [`KeyStoreEntry::Certificate`]. Encryption is PBES2 AES-256 with an
    /// HMAC-SHA256 MAC, which JDK 11.0.12+ and 17+ read.
    pub fn export_pkcs12_truststore(&self, password: &str) -> Result<Vec<u8>, CaError> {
        let cert =
            p12_keystore::Certificate::from_der(self.cert_der.as_ref()).map_err(CaError::Pkcs12)?;
        let mut store = KeyStore::new();
        store.add_entry(TRUSTSTORE_ALIAS, KeyStoreEntry::Certificate(cert));
        store.writer(password).write().map_err(CaError::Pkcs12)
    }

    /// Writes `tapwire-ca.crt` (PEM) and `tapwire-ca.p12` into `out_dir`, replacing old copies.
    pub fn export_files(&self, out_dir: &Path, password: &str) -> Result<ExportedFiles, CaError> {
        fs::create_dir_all(out_dir).map_err(|source| CaError::Write {
            path: out_dir.to_path_buf(),
            source,
        })?;
        let files = ExportedFiles {
            cert_pem: out_dir.join(EXPORT_CERT_FILE),
            pkcs12: out_dir.join(EXPORT_PKCS12_FILE),
        };
        let p12 = self.export_pkcs12_truststore(password)?;
        // Both files hold only the public certificate, so plain writes are fine.
        for (path, bytes) in [
            (&files.cert_pem, self.cert_pem.as_bytes()),
            (&files.pkcs12, p12.as_slice()),
        ] {
            fs::write(path, bytes).map_err(|source| CaError::Write {
                path: path.clone(),
                source,
            })?;
        }
        Ok(files)
    }

    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }
}

/// Creates a new CA with [`DEFAULT_COMMON_NAME`] and saves it in `dir`.
///
/// Refuses to replace an existing CA unless `force` is set.
pub fn init(dir: &Path, force: bool) -> Result<CertificateAuthority, CaError> {
    let ca = CertificateAuthority::generate(DEFAULT_COMMON_NAME)?;
    ca.save(dir, force)?;
    tracing::info!(dir = %dir.display(), force, "created a new tapwire CA");
    Ok(ca)
}

/// Loads the CA in `dir`, or creates one there if neither CA file exists.
///
/// A half-present CA (one file missing) is an error rather than silently replaced.
pub fn load_or_init(dir: &Path) -> Result<CertificateAuthority, CaError> {
    let absent = |name: &str| {
        matches!(
            dir.join(name).symlink_metadata(),
            Err(e) if e.kind() == io::ErrorKind::NotFound
        )
    };
    if absent(CERT_FILE) && absent(KEY_FILE) {
        init(dir, false)
    } else {
        CertificateAuthority::load(dir)
    }
}

fn read_ca_file(path: &Path) -> Result<String, CaError> {
    fs::read_to_string(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => CaError::Missing {
            path: path.to_path_buf(),
        },
        _ => CaError::Read {
            path: path.to_path_buf(),
            source,
        },
    })
}

fn warn_if_key_exposed(key_path: &Path) {
    if let Ok(meta) = key_path.metadata() {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %key_path.display(),
                mode = format_args!("{mode:o}"),
                "CA private key is readable by other users; chmod 600 it"
            );
        }
    }
}

/// Rejects CA files that would produce leaves no client accepts, or crash rcgen.
fn check_ca_pair(
    cert_path: &Path,
    key_path: &Path,
    cert_der: &CertificateDer<'_>,
    key: &KeyPair,
) -> Result<(), CaError> {
    let invalid = |path: &Path, reason: String| CaError::InvalidCaFile {
        path: path.to_path_buf(),
        reason,
    };
    let (_, x509) = x509_parser::parse_x509_certificate(cert_der.as_ref())
        .map_err(|e| invalid(cert_path, format!("not an X.509 certificate: {e}")))?;
    if !x509.is_ca() {
        return Err(invalid(
            cert_path,
            "not a CA certificate (basicConstraints CA:TRUE missing)".to_owned(),
        ));
    }
    // rcgen panics on an empty relative distinguished name when it re-reads
    // the subject; refuse such a certificate first.
    if x509.subject().iter().any(|rdn| rdn.iter().next().is_none()) {
        return Err(invalid(
            cert_path,
            "empty component in subject name".to_owned(),
        ));
    }
    if x509.public_key().raw != key.subject_public_key_info().as_slice() {
        return Err(invalid(
            key_path,
            format!(
                "key does not match the certificate in {}",
                cert_path.display()
            ),
        ));
    }
    let not_after = x509.validity().not_after.to_datetime();
    if not_after <= OffsetDateTime::now_utc() {
        return Err(invalid(
            cert_path,
            format!("certificate expired at {not_after}"),
        ));
    }
    Ok(())
}

fn write_err(path: &Path) -> impl FnOnce(io::Error) -> CaError + '_ {
    move |source| CaError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `path` (which must not exist) with `mode` already applied, then fills it.
fn create_new_file(dir: &Path, path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| match source.kind() {
            io::ErrorKind::AlreadyExists => CaError::AlreadyExists {
                dir: dir.to_path_buf(),
            },
            _ => CaError::Write {
                path: path.to_path_buf(),
                source,
            },
        })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(write_err(path))
}

/// Replaces `path` atomically: a new temporary file created with `mode`, renamed over it.
fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", random::hex_token(8)?));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|source| {
        let _ = fs::remove_file(&tmp);
        CaError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Reads a CA key in PKCS#8 (`PRIVATE KEY`) or PKCS#1 RSA (`RSA PRIVATE
/// KEY`, what Helm's `genCA` and `openssl genrsa -traditional` write).
fn load_key(pem: &str) -> Result<KeyPair, String> {
    use rustls::pki_types::PrivateKeyDer;
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("not a PEM private key: {e}"))?;
    match der {
        PrivateKeyDer::Pkcs8(k) => KeyPair::try_from(k.secret_pkcs8_der())
            .map_err(|e| format!("unusable PKCS#8 private key: {e}")),
        PrivateKeyDer::Pkcs1(k) => {
            let pkcs8 = rsa_pkcs1_to_pkcs8(k.secret_pkcs1_der());
            KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8.as_slice().into(), &rcgen::PKCS_RSA_SHA256)
                .map_err(|e| format!("unusable RSA private key: {e}"))
        }
        _ => Err("unsupported key format: use PKCS#8 (`openssl pkcs8 -topk8 -nocrypt`) or an RSA PKCS#1 key".to_owned()),
    }
}

/// Wraps a PKCS#1 RSAPrivateKey in a PKCS#8 PrivateKeyInfo. Written by hand
/// because ring (rcgen's backend here) signs only from PKCS#8, and the wrap
/// is three fixed DER headers: no DER crate is in the tree for it.
fn rsa_pkcs1_to_pkcs8(pkcs1: &[u8]) -> Vec<u8> {
    fn len(n: usize) -> Vec<u8> {
        if n < 0x80 {
            return vec![n as u8];
        }
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        let mut out = vec![0x80 | bytes.len() as u8];
        out.extend(bytes);
        out
    }
    // version 0, AlgorithmIdentifier { rsaEncryption, NULL }
    const HEAD: [u8; 18] = [
        0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
        0x01, 0x05, 0x00,
    ];
    let mut octets = vec![0x04];
    octets.extend(len(pkcs1.len()));
    octets.extend_from_slice(pkcs1);
    let mut body = HEAD.to_vec();
    body.extend(octets);
    let mut out = vec![0x30];
    out.extend(len(body.len()));
    out.extend(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn save_then_load_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        let ca = init(&dir, false).unwrap();
        let loaded = CertificateAuthority::load(&dir).unwrap();
        assert_eq!(loaded.cert_der(), ca.cert_der());
        assert_eq!(loaded.cert_pem(), ca.cert_pem());
        assert_eq!(
            loaded.issuer().key().serialize_der(),
            ca.issuer().key().serialize_der()
        );
        assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let key_pem = fs::read_to_string(dir.join(KEY_FILE)).unwrap();
        assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn ca_certificate_has_the_promised_shape() {
        let ca = CertificateAuthority::generate("unit test CA").unwrap();
        let (_, x509) = x509_parser::parse_x509_certificate(ca.cert_der().as_ref()).unwrap();
        let bc = x509.basic_constraints().unwrap().unwrap().value;
        assert!(bc.ca);
        assert_eq!(bc.path_len_constraint, Some(0));
        let ku = x509.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign());
        assert!(!ku.digital_signature());
        let now = OffsetDateTime::now_utc();
        let nb = x509.validity().not_before.to_datetime();
        let na = x509.validity().not_after.to_datetime();
        assert!(nb < now - Duration::hours(23) && nb > now - Duration::hours(25));
        assert!(na > now + Duration::days(3649) && na < now + Duration::days(3651));
        assert_eq!(
            x509.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "unit test CA"
        );
        let other = CertificateAuthority::generate("unit test CA").unwrap();
        let (_, x509b) = x509_parser::parse_x509_certificate(other.cert_der().as_ref()).unwrap();
        assert_ne!(x509.raw_serial(), x509b.raw_serial());
    }

    #[test]
    fn key_file_is_0600_and_new_dir_is_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nested").join("ca");
        init(&dir, false).unwrap();
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        assert_eq!(mode(&dir), 0o700);
        // Replacement goes through a temporary file; it must be 0600 too.
        init(&dir, true).unwrap();
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != CERT_FILE && n != KEY_FILE)
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    #[test]
    fn init_refuses_to_overwrite_without_force() {
        let tmp = tempfile::tempdir().unwrap();
        let first = init(tmp.path(), false).unwrap();
        let err = init(tmp.path(), false).unwrap_err();
        assert!(matches!(err, CaError::AlreadyExists { .. }), "{err:?}");
        assert!(err.to_string().contains("--force"), "{err}");
        // The refused init must not have touched the existing CA.
        let still = CertificateAuthority::load(tmp.path()).unwrap();
        assert_eq!(still.cert_der(), first.cert_der());

        let replaced = init(tmp.path(), true).unwrap();
        assert_ne!(replaced.cert_der(), first.cert_der());
        let loaded = CertificateAuthority::load(tmp.path()).unwrap();
        assert_eq!(loaded.cert_der(), replaced.cert_der());
    }

    #[test]
    fn init_refuses_when_only_the_key_exists() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(KEY_FILE), "x").unwrap();
        let err = init(tmp.path(), false).unwrap_err();
        assert!(matches!(err, CaError::AlreadyExists { .. }), "{err:?}");
    }

    #[test]
    fn load_of_missing_ca_names_file_and_command() {
        let tmp = tempfile::tempdir().unwrap();
        let err = CertificateAuthority::load(tmp.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(CERT_FILE), "{msg}");
        assert!(msg.contains("tapwire ca init"), "{msg}");
    }

    #[test]
    fn load_rejects_mismatched_key() {
        let tmp = tempfile::tempdir().unwrap();
        init(tmp.path(), false).unwrap();
        let other = CertificateAuthority::generate("other").unwrap();
        fs::write(
            tmp.path().join(KEY_FILE),
            other.issuer().key().serialize_pem(),
        )
        .unwrap();
        let err = CertificateAuthority::load(tmp.path()).unwrap_err();
        assert!(matches!(err, CaError::InvalidCaFile { .. }), "{err:?}");
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn load_rejects_garbage_certificate() {
        let tmp = tempfile::tempdir().unwrap();
        init(tmp.path(), false).unwrap();
        fs::write(tmp.path().join(CERT_FILE), "not pem").unwrap();
        let err = CertificateAuthority::load(tmp.path()).unwrap_err();
        assert!(err.to_string().contains(CERT_FILE), "{err}");
    }

    #[test]
    fn load_or_init_creates_once_then_loads() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        let a = load_or_init(&dir).unwrap();
        let b = load_or_init(&dir).unwrap();
        assert_eq!(a.cert_der(), b.cert_der());

        fs::remove_file(dir.join(CERT_FILE)).unwrap();
        let err = load_or_init(&dir).unwrap_err();
        assert!(matches!(err, CaError::Missing { .. }), "{err:?}");
    }

    #[test]
    fn export_files_writes_pem_and_pkcs12() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::generate("export test").unwrap();
        let files = ca
            .export_files(&tmp.path().join("out"), "changeit")
            .unwrap();
        assert_eq!(fs::read_to_string(&files.cert_pem).unwrap(), ca.cert_pem());
        let p12 = fs::read(&files.pkcs12).unwrap();
        let archive = p12_keystore::Pkcs12Archive::from_pkcs12(&p12, "changeit").unwrap();
        assert_eq!(archive.certs.len(), 1);
        let bag = &archive.certs[0];
        assert!(
            bag.trusted,
            "certificate bag lacks Java's trusted-key-usage attribute"
        );
        assert_eq!(bag.friendly_name.as_deref(), Some(TRUSTSTORE_ALIAS));
        assert_eq!(bag.cert.as_der(), ca.cert_der().as_ref());
        assert!(archive.keys.is_empty());
    }
}

//! CAs made by other tools load and sign: an RSA key in PKCS#1 form (what
//! Helm's `genCA` writes, and `openssl genrsa -traditional`) and PKCS#8.

use std::process::Command;

use tapwire_ca::{CertificateAuthority, LeafIssuer};

fn openssl(args: &[&str], dir: &std::path::Path) -> bool {
    match Command::new("openssl").args(args).current_dir(dir).output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => panic!("openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "openssl is missing in CI: {e}"
            );
            eprintln!("skipped: openssl not installed ({e})");
            false
        }
    }
}

#[test]
fn openssl_rsa_cas_in_pkcs1_and_pkcs8_sign_leaves() {
    for traditional in [true, false] {
        let dir = tempfile::tempdir().expect("tmp");
        let mut genrsa = vec!["genrsa", "-out", "ca.key"];
        if traditional {
            genrsa.insert(1, "-traditional");
        }
        genrsa.push("2048");
        if !openssl(&genrsa, dir.path()) {
            return;
        }
        let key = std::fs::read_to_string(dir.path().join("ca.key")).expect("key");
        assert_eq!(
            key.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
            traditional,
            "{key:.40}"
        );
        assert!(openssl(
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "30",
                "-subj",
                "/CN=helm-style CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
            dir.path()
        ));
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            dir.path().join("ca.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
        let ca = CertificateAuthority::load(dir.path()).expect("loads");
        let leaf = LeafIssuer::new(std::sync::Arc::new(ca))
            .issue("payments.internal")
            .expect("signs a leaf");
        assert!(!leaf.cert.is_empty());
    }
}

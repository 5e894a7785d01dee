//! `tapwire ca init`: the key is private, and an existing CA is only
//! replaced on request.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tapwire_test_support::process::run_with_timeout;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tapwire"))
}

fn ca_init(dir: &Path, force: bool) -> std::process::Output {
    let mut cmd = Command::new(bin());
    cmd.args(["ca", "init", "--dir"]).arg(dir);
    if force {
        cmd.arg("--force");
    }
    run_with_timeout(&mut cmd, Duration::from_secs(30))
}

#[test]
fn ca_init_keeps_the_key_private_and_refuses_to_overwrite_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested").join("ca");

    let first = ca_init(&dir, false);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let mode = |name: &str| {
        std::fs::metadata(dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(
        mode("ca.key"),
        0o600,
        "ca.key must be readable only by its owner"
    );
    assert_eq!(
        mode("ca.crt") & 0o022,
        0,
        "ca.crt must not be writable by others"
    );
    let cert = std::fs::read_to_string(dir.join("ca.crt")).unwrap();
    let key = std::fs::read_to_string(dir.join("ca.key")).unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
    assert!(key.contains("PRIVATE KEY-----"));

    let second = ca_init(&dir, false);
    assert_eq!(second.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("--force") && stderr.contains("already exists"),
        "the refusal should name --force: {stderr}"
    );
    // Nothing was touched.
    assert_eq!(std::fs::read_to_string(dir.join("ca.crt")).unwrap(), cert);
    assert_eq!(std::fs::read_to_string(dir.join("ca.key")).unwrap(), key);

    let forced = ca_init(&dir, true);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert_ne!(std::fs::read_to_string(dir.join("ca.key")).unwrap(), key);
    assert_eq!(mode("ca.key"), 0o600, "a replaced key must stay private");
}

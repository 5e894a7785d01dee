//! `tapwire demo` runs the whole loop on loopback: it passes on a faithful
//! build and fails, saying why, on a broken one.

use std::process::Command;

fn demo(dir: &std::path::Path, broken: bool) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tapwire"));
    cmd.arg("demo").arg("--dir").arg(dir);
    if broken {
        cmd.arg("--break");
    }
    cmd.output().expect("run tapwire demo")
}

#[test]
fn demo_passes_then_fails_when_broken() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo(dir.path(), false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{stdout}");
    assert!(stderr.contains("PASS"), "{stderr}");
    assert!(stdout.contains("16/16 passed"), "{stdout}");
    assert!(stdout.contains("100.0% hit (16 hit, 0 miss"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["summary"]["assertions"]["failed"], 0);
    let html = std::fs::read_to_string(dir.path().join("report/report.html")).unwrap();
    assert!(html.contains("<svg"));
    // The recording holds the personal data payments sent: it was captured.
    let rec = tapwire_model::segment::read_dir(&dir.path().join("recording")).unwrap();
    assert_eq!(rec.len(), 32);
    assert!(rec.iter().any(|e| e.response.as_ref().is_some_and(|r| {
        r.body
            .as_text()
            .is_some_and(|t| t.contains("jane.doe@example.com"))
    })));

    // Run again in the same directory, broken: the earlier run is cleared.
    let out = demo(dir.path(), true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stderr}\n{stdout}");
    assert!(stderr.contains("FAIL: 7 of 16"), "{stderr}");
    assert!(
        stdout.contains("$.total_cents") && stdout.contains("status 500, recorded 201"),
        "{stdout}"
    );
}

//! Stopping `tapwire proxy`: SIGINT and SIGTERM let open requests finish
//! and flush every capture before exiting.

use std::path::Path;
use std::time::{Duration, Instant};

use tapwire_test_support::http::get;
use tapwire_test_support::process::signal;
use tapwire_test_support::{require_tool, PyServer, TapwireProcess};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tapwire"))
}

#[test]
fn sigterm_flushes_captures_before_the_segment_would_rotate() {
    if !require_tool("python3") {
        return;
    }
    let up = PyServer::start("upstream.py", [] as [&str; 0]);
    let mut tw = TapwireProcess::proxy(bin(), ["--app-port", &up.port.to_string()]);
    for i in 0..3 {
        let r = get(tw.inbound, &format!("/api/term?i={i}")).expect("response");
        assert_eq!(r.status, 200);
    }
    // Segments rotate after about 2 s; SIGTERM right away must still flush.
    let exited = tw.terminate();
    assert!(exited.status.success(), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("recorded 3 exchanges"),
        "{}",
        exited.stderr
    );
    assert_eq!(tw.captures().len(), 3);
}

#[test]
fn sigint_lets_an_open_request_finish_and_records_it() {
    if !require_tool("python3") {
        return;
    }
    let up = PyServer::start("upstream.py", [] as [&str; 0]);
    let mut tw = TapwireProcess::proxy(bin(), ["--app-port", &up.port.to_string()]);
    let inbound = tw.inbound;
    let slow = std::thread::spawn(move || get(inbound, "/slow?ms=1500"));
    // Let the request reach the app, then ask tapwire to stop.
    std::thread::sleep(Duration::from_millis(400));
    let stopping = Instant::now();
    signal(tw.pid().expect("running"), "INT");
    let r = slow
        .join()
        .expect("client thread")
        .expect("the open request is answered, not cut");
    assert_eq!((r.status, r.text().as_str()), (200, "slow but done\n"));
    let exited = tw.wait_exit(Duration::from_secs(20));
    assert!(exited.status.success(), "{}", exited.stderr);
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "stopping took {:?}",
        stopping.elapsed()
    );
    let caps = tw.captures();
    assert_eq!(caps.len(), 1);
    assert_eq!(caps[0].response.as_ref().map(|r| r.status), Some(200));
    assert_eq!(caps[0].error, None);
    // New connections are refused once stopping began.
    assert!(get(tw.inbound, "/api/late").is_err());
}

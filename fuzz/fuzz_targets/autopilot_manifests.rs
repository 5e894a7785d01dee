//! Manifests given to `tapwire autopilot check`: YAML/JSON parsing, quantity
//! parsing and the rules must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(m) = tapwire_autopilot::Manifests::parse(&text) {
        let _ = tapwire_autopilot::check(&m.workloads, &Default::default());
    }
    let _ = text.parse::<tapwire_autopilot::Quantity>();
});

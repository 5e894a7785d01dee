//! An AdmissionReview body as the webhook receives it: parsing and the
//! injection decision (annotations, patch computation) must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapwire_operator::admission::{self, PodContext};
use tapwire_operator::InjectorConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = admission::parse_review(data) else {
        return;
    };
    let mut cfg = InjectorConfig::new("tapwire:fuzz");
    for autopilot in [false, true] {
        cfg.autopilot = autopilot;
        let d = admission::mutate(&req, &PodContext::default(), &cfg, "tapwire");
        let _ = admission::encode_review(d.response);
    }
});

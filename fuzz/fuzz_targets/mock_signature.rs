//! An arbitrary request (NUL-separated fields, see
//! `tapwire_mock::fuzzing::signature`) through the mock's signature and
//! matching: query normalization, JSON canonicalization, form parsing and
//! ignore lists never panic, and a request equal to a recorded one is a hit.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tapwire_mock::fuzzing::signature(data);
});

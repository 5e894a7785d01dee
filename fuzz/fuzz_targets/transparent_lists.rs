//! `tapwire init`'s ignore lists (annotation values reach them verbatim):
//! parsing round-trips and rule generation never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tapwire_proxy::fuzzing::ignore_lists(data));

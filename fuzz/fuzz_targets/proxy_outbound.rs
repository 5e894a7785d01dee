//! Arbitrary bytes as one client connection to the outbound listener
//! (absolute-form requests and CONNECT): never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tapwire_proxy::fuzzing::connection(data, true);
});

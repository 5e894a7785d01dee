//! Arbitrary bytes as one client connection to the inbound listener
//! (HTTP/1.1 or h2c): the proxy answers or closes, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tapwire_proxy::fuzzing::connection(data, false);
});

//! Chunked transfer coding framing on arbitrary bytes, fed whole and split
//! at a stride taken from the first byte: never panics, and the split never
//! changes the result.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tapwire_proxy::fuzzing::chunked(data);
});

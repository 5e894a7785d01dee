//! A batch body as the forwarder receives it from the network: bounded
//! decompression, decoding, filter rules, redaction and partitioning must
//! never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tapwire_forwarder::fuzzing::prepare(data);
    // Valid segments are the interesting inputs: wrap the bytes as the
    // JSON Lines of one.
    let _ = tapwire_forwarder::fuzzing::prepare(&zstd::bulk::compress(data, 1).unwrap_or_default());
});

//! Protocol sniffing, ClientHello parsing and hop-by-hop header handling on
//! arbitrary bytes: none may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tapwire_proxy::fuzzing::sniff(data);
    tapwire_proxy::fuzzing::hop_headers(data);
});

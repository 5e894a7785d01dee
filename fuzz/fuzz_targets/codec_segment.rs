//! An in-memory segment from arbitrary bytes: decompression is bounded and
//! nothing may panic; whatever decodes must survive encode → decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapwire_model::segment;

const MAX_LEN: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(exchanges) = segment::decode(data, MAX_LEN) {
        let bytes = segment::encode(&exchanges);
        let again = segment::decode(&bytes, usize::MAX).expect("a re-encoded segment must decode");
        assert_eq!(again, exchanges);
    }
});

//! One JSON Lines record from arbitrary bytes: decoding must not panic, and
//! whatever decodes must survive encode → decode unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapwire_model::jsonl;

fuzz_target!(|data: &[u8]| {
    if let Ok(ex) = jsonl::decode_line(data, 1) {
        let line = jsonl::encode(&ex);
        let again = jsonl::decode_line(&line, 1).expect("a re-encoded exchange must decode");
        assert_eq!(again, ex);
    }
    // The stream reader must not panic either, whatever the line breaks.
    for r in jsonl::read(data) {
        let _ = r;
    }
});

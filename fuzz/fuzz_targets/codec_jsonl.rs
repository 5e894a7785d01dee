//! One JSON Lines record from arbitrary bytes: decoding must not panic,
//! whatever decodes must survive encode → decode unchanged, and the
//! hand-written encoder must write what serde_json writes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapwire_model::jsonl;

fuzz_target!(|data: &[u8]| {
    if let Ok(ex) = jsonl::decode_line(data, 1) {
        let line = jsonl::encode(&ex);
        let mut want = serde_json::to_vec(&ex).expect("an exchange serializes");
        want.push(b'\n');
        assert_eq!(line, want);
        let again = jsonl::decode_line(&line, 1).expect("a re-encoded exchange must decode");
        assert_eq!(again, ex);
    }
    // The stream reader must not panic either, whatever the line breaks.
    for r in jsonl::read(data) {
        let _ = r;
    }
});

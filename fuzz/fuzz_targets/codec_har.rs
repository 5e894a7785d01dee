//! A HAR document from arbitrary bytes: import must not panic, and whatever
//! imports must survive export → import unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapwire_model::har;

fuzz_target!(|data: &[u8]| {
    let opts = har::ImportOptions::default();
    if let Ok(imported) = har::import(data, &opts) {
        let out = har::export(&imported.exchanges, "fuzz");
        assert_eq!(out.skipped_tcp, 0);
        let text = har::to_string(&out.har);
        let again = har::import(text.as_bytes(), &opts).expect("an exported HAR must import");
        assert!(again.skipped.is_empty());
        assert_eq!(again.exchanges, imported.exchanges);
    }
});

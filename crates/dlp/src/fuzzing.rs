//! Entry points for the fuzz targets in `fuzz/` that reach below the public
//! API. Not a stable API.

use std::sync::LazyLock;

use crate::{DlpConfig, RedactionKey, Redactor};

static DEFAULTS: LazyLock<Redactor> = LazyLock::new(|| {
    let key = RedactionKey::new(&[7u8; 32]).expect("a 32-byte key");
    Redactor::new(&DlpConfig::default(), key).expect("the built-in policy")
});

/// The scanner's quick reading (`Scanner::might_match`) on arbitrary text,
/// with the built-in detectors: panics if it rules out a text in which the
/// full scan finds something, if the shortcut for digit runs
/// (`Scanner::whole_number`) reads one otherwise than the full scan, or if
/// the vector and word-at-a-time readings disagree with their bytewise
/// references.
pub fn quick_reading(data: &[u8]) {
    crate::scan::check_quick_reading(&DEFAULTS.scanner, data);
}

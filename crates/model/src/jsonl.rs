//! Versioned JSON Lines: one [`Exchange`] per line, UTF-8, `\n` separated.

use std::io::BufRead;

use crate::view::ExchangeView;
use crate::{Exchange, SCHEMA_VERSION};

/// Why a line could not be read as an exchange.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The line is not JSON of the exchange shape.
    #[error("line {line}: not a valid exchange: {source}")]
    Json {
        /// 1-based line number.
        line: usize,
        /// The parser's reason.
        #[source]
        source: serde_json::Error,
    },
    /// Written by a newer tapwire.
    #[error("line {line}: exchange schema version {found} is newer than this build understands ({SCHEMA_VERSION}); upgrade tapwire")]
    Version {
        /// 1-based line number.
        line: usize,
        /// The version found.
        found: u32,
    },
    /// Reading the underlying stream failed.
    #[error("reading exchanges failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Appends one exchange to `out` as a single line (with trailing newline).
/// The output is the JSON serde_json writes for the exchange.
pub fn encode_into(out: &mut Vec<u8>, ex: &Exchange) {
    encode_view_into(out, &ex.view());
}

/// [`encode_into`] for an exchange given as its [`ExchangeView`], written
/// by hand rather than through serde (see `line.rs` for why).
pub fn encode_view_into(out: &mut Vec<u8>, ex: &ExchangeView<'_>) {
    crate::line::write(out, ex);
    out.push(b'\n');
}

/// Encodes one exchange as a line (with trailing newline).
pub fn encode(ex: &Exchange) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    encode_into(&mut out, ex);
    out
}

/// Decodes one line (trailing newline allowed). `line` is used in errors.
pub fn decode_line(bytes: &[u8], line: usize) -> Result<Exchange, DecodeError> {
    #[derive(serde::Deserialize)]
    struct VersionOnly {
        v: u32,
    }
    // Check the version first so that a newer record gets the helpful error
    // rather than an "unknown field" one.
    if let Ok(VersionOnly { v }) = serde_json::from_slice::<VersionOnly>(bytes) {
        if v > SCHEMA_VERSION {
            return Err(DecodeError::Version { line, found: v });
        }
    }
    serde_json::from_slice(bytes).map_err(|source| DecodeError::Json { line, source })
}

/// Iterates over the exchanges of a JSON Lines stream. Blank lines are
/// skipped; each bad line yields an error and iteration continues.
pub fn read<R: BufRead>(r: R) -> impl Iterator<Item = Result<Exchange, DecodeError>> {
    r.split(b'\n')
        .enumerate()
        .filter_map(|(i, line)| match line {
            Err(e) => Some(Err(DecodeError::Io(e))),
            Ok(l) if l.iter().all(u8::is_ascii_whitespace) => None,
            Ok(l) => Some(decode_line(&l, i + 1)),
        })
}

//! Deterministic replacement tokens: `REDACTED-<CATEGORY>-<12 hex>`, where
//! the hex is HMAC-SHA256 of the value under the installation's key.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Number of hex digits of the keyed hash kept in a token (48 bits: a
/// collision needs ~16 million distinct values of one category).
pub const TOKEN_HASH_HEX: usize = 12;

/// Why a key was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key is shorter than 16 bytes.
    #[error(
        "dlp key is {0} bytes long; it must be at least 16 bytes (32 random bytes recommended)"
    )]
    TooShort(usize),
    /// The key text is not hexadecimal.
    #[error("dlp key is not hexadecimal: {0}")]
    NotHex(&'static str),
    /// The key file could not be read.
    #[error("reading dlp key file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The per-installation secret that makes tokens unguessable: without it, a
/// token cannot be matched against a list of candidate values. Keep it out of
/// the configuration file (a Kubernetes Secret, a file with mode 0600).
#[derive(Clone)]
pub struct RedactionKey {
    mac: Hmac<Sha256>,
}

impl RedactionKey {
    /// A key from raw bytes (at least 16).
    pub fn new(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() < 16 {
            return Err(KeyError::TooShort(bytes.len()));
        }
        // HMAC accepts keys of any length; the check above is ours.
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(bytes)
            .map_err(|_| KeyError::TooShort(bytes.len()))?;
        Ok(Self { mac })
    }

    /// A key written as hex (surrounding whitespace ignored), e.g. the output
    /// of `openssl rand -hex 32`.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let t = text.trim();
        if !t.len().is_multiple_of(2) {
            return Err(KeyError::NotHex("odd number of digits"));
        }
        let mut bytes = Vec::with_capacity(t.len() / 2);
        for pair in t.as_bytes().chunks(2) {
            let hi = hex_val(pair[0]).ok_or(KeyError::NotHex("non-hex character"))?;
            let lo = hex_val(pair[1]).ok_or(KeyError::NotHex("non-hex character"))?;
            bytes.push(hi << 4 | lo);
        }
        Self::new(&bytes)
    }

    /// Reads a hex key from a file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_hex(&text)
    }

    /// A short public identifier of the key (8 hex digits), safe to log and
    /// to store next to redacted data: two stores with different ids hold
    /// tokens that cannot be compared.
    pub fn id(&self) -> String {
        let mut m = self.mac.clone();
        m.update(b"tapwire-dlp key id");
        let out = m.finalize().into_bytes();
        hex(&out[..4])
    }

    /// The token for `value` in `category`.
    pub(crate) fn token(&self, category: &str, value: &[u8]) -> String {
        let mut m = self.mac.clone();
        m.update(value);
        let out = m.finalize().into_bytes();
        let mut t = String::with_capacity(10 + category.len() + TOKEN_HASH_HEX);
        t.push_str("REDACTED-");
        t.push_str(category);
        t.push('-');
        t.push_str(&hex(&out[..TOKEN_HASH_HEX / 2]));
        t
    }
}

impl fmt::Debug for RedactionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedactionKey")
            .field("id", &self.id())
            .finish()
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(D[usize::from(b >> 4)]));
        s.push(char::from(D[usize::from(b & 15)]));
    }
    s
}

/// True when `v` already is a token (`REDACTED-<A-Z0-9_>-<12 hex>`), so that
/// redacting twice changes nothing.
pub(crate) fn is_token(v: &[u8]) -> bool {
    let Some(rest) = v.strip_prefix(b"REDACTED-") else {
        return false;
    };
    if rest.len() < TOKEN_HASH_HEX + 2 {
        return false;
    }
    let (cat, hash) = rest.split_at(rest.len() - TOKEN_HASH_HEX);
    cat.len() >= 2
        && cat[cat.len() - 1] == b'-'
        && cat[..cat.len() - 1]
            .iter()
            .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && hash.iter().all(|&b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_deterministic_and_keyed() {
        let k1 = RedactionKey::new(&[1u8; 32]).unwrap();
        let k1b = RedactionKey::new(&[1u8; 32]).unwrap();
        let k2 = RedactionKey::new(&[2u8; 32]).unwrap();
        let t = k1.token("EMAIL", b"alice@example.com");
        assert_eq!(t, k1b.token("EMAIL", b"alice@example.com"));
        assert_ne!(t, k2.token("EMAIL", b"alice@example.com"));
        assert_ne!(t, k1.token("EMAIL", b"bob@example.com"));
        assert!(t.starts_with("REDACTED-EMAIL-"));
        assert_eq!(t.len(), "REDACTED-EMAIL-".len() + TOKEN_HASH_HEX);
        assert!(is_token(t.as_bytes()));
        assert_ne!(k1.id(), k2.id());
    }

    #[test]
    fn key_rules() {
        assert!(matches!(
            RedactionKey::new(b"short"),
            Err(KeyError::TooShort(5))
        ));
        assert!(RedactionKey::from_hex(" 000102030405060708090a0b0c0d0e0f\n").is_ok());
        assert!(matches!(
            RedactionKey::from_hex("abc"),
            Err(KeyError::NotHex(_))
        ));
        assert!(matches!(
            RedactionKey::from_hex("zz"),
            Err(KeyError::NotHex(_))
        ));
        let k = RedactionKey::new(&[7u8; 32]).unwrap();
        assert!(!format!("{k:?}").contains("0707"));
    }

    #[test]
    fn token_shape() {
        assert!(is_token(b"REDACTED-CARD-0123456789ab"));
        assert!(is_token(b"REDACTED-AWS_SECRET_KEY-0123456789ab"));
        assert!(!is_token(b"REDACTED-card-0123456789ab"));
        assert!(!is_token(b"REDACTED-CARD-0123456789AB"));
        assert!(!is_token(b"REDACTED--0123456789ab"));
        assert!(!is_token(b"REDACTED-CARD-0123456789a"));
    }
}

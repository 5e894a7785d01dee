//! Deterministic payloads and their digests.

use sha2::{Digest, Sha256};

/// `n` deterministic bytes: byte `i` is `(7i + 3) mod 251`. The prime period
/// makes an offset or a dropped chunk change the digest. `py/upstream.py`
/// generates the same bytes for downloads.
pub fn pattern(n: usize) -> Vec<u8> {
    let block: Vec<u8> = (0..251u32).map(|i| ((i * 7 + 3) % 251) as u8).collect();
    block.iter().copied().cycle().take(n).collect()
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

//! Randomness from the same ring provider rustls uses, so the crate needs no other RNG.

use crate::CaError;

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn fill(buf: &mut [u8]) -> Result<(), CaError> {
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(buf)
        .map_err(|_| CaError::Random)
}

/// A random, positive, non-zero 128-bit certificate serial number.
pub(crate) fn serial_number() -> Result<rcgen::SerialNumber, CaError> {
    let mut bytes = [0u8; 16];
    fill(&mut bytes)?;
    // Clearing the top bit keeps the DER INTEGER positive without a padding
    // byte; setting bit 62 keeps it non-zero and exactly 16 bytes long.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(rcgen::SerialNumber::from_slice(&bytes))
}

/// Lowercase hex of `n` random bytes from the OS CSPRNG: unguessable file
/// names, keys.
pub fn hex_token(n: usize) -> Result<String, CaError> {
    let mut bytes = vec![0u8; n];
    fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

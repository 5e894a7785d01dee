//! Bitmaps of a JSON body, one bit per byte, built before the walk:
//!
//! - `stop`: where a string may end (`"` and `\`), so the walker reads a
//!   string's end from it instead of visiting every byte of the string;
//! - `cand`: bytes without which no content detector can report anything
//!   ([`crate::scan::is_cand`]), so a string holding none of them is known to be
//!   clean without reading it.
//!
//! Built 16 bytes at a time with vector compares and `movemask` (SSE2 on
//! x86-64, NEON on arm64) through the `wide` crate, which keeps this file
//! free of `unsafe`. Hand-written because no crate builds byte-class
//! bitmaps: `memchr` finds up to three bytes, one match at a time.

use wide::u8x16;

/// Bit `i` of word `w` describes byte `64 * w + i`.
#[derive(Debug, Default)]
pub(crate) struct Index {
    stop: Vec<u64>,
    cand: Vec<u64>,
}

/// `(stop, cand)` bits of 16 bytes.
#[inline(always)]
fn lanes(v: u8x16) -> (u64, u64) {
    let eq = |b: u8| v.simd_eq(u8x16::splat(b));
    let stop = eq(b'"') | eq(b'\\');
    // `v - b'('` is at most 25 exactly for `(` to `A` (bytes wrap around).
    let d = v - u8x16::splat(b'(');
    let cand = d.min(u8x16::splat(b'A' - b'(')).simd_eq(d) | eq(b'J');
    (u64::from(stop.to_bitmask()), u64::from(cand.to_bitmask()))
}

#[inline(always)]
fn block(c: &[u8; 64]) -> (u64, u64) {
    let (mut stop, mut cand) = (0, 0);
    for (k, chunk) in c.chunks_exact(16).enumerate() {
        let mut a = [0u8; 16];
        a.copy_from_slice(chunk);
        let (s, d) = lanes(u8x16::from(a));
        stop |= s << (16 * k);
        cand |= d << (16 * k);
    }
    (stop, cand)
}

impl Index {
    /// Indexes `s`, reusing this index's buffers.
    pub(crate) fn build(&mut self, s: &[u8]) {
        let words = s.len().div_ceil(64);
        self.stop.clear();
        self.cand.clear();
        self.stop.reserve(words);
        self.cand.reserve(words);
        let mut chunks = s.chunks_exact(64);
        for c in &mut chunks {
            let Ok(b) = <&[u8; 64]>::try_from(c) else {
                continue;
            };
            let (stop, cand) = block(b);
            self.stop.push(stop);
            self.cand.push(cand);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // Zero bytes are neither stops nor candidates.
            let mut b = [0u8; 64];
            b[..rest.len()].copy_from_slice(rest);
            let (stop, cand) = block(&b);
            self.stop.push(stop);
            self.cand.push(cand);
        }
    }

    /// The first `"` or `\` at or after `from`.
    #[inline]
    pub(crate) fn next_stop(&self, from: usize) -> Option<usize> {
        let mut w = from / 64;
        let mut m = *self.stop.get(w)? & (!0u64 << (from % 64));
        while m == 0 {
            w += 1;
            m = *self.stop.get(w)?;
        }
        Some(w * 64 + m.trailing_zeros() as usize)
    }

    /// Whether `a..b` (within the indexed bytes) holds a byte for which
    /// [`crate::scan::is_cand`] is true.
    #[inline]
    pub(crate) fn any_cand(&self, a: usize, b: usize) -> bool {
        if a >= b {
            return false;
        }
        let (wa, wb) = (a / 64, (b - 1) / 64);
        let first = !0u64 << (a % 64);
        let last = !0u64 >> (63 - (b - 1) % 64);
        if wa == wb {
            return self.cand[wa] & first & last != 0;
        }
        self.cand[wa] & first != 0
            || self.cand[wa + 1..wb].iter().any(|&m| m != 0)
            || self.cand[wb] & last != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan;

    #[test]
    fn matches_a_byte_by_byte_reading() {
        // Every byte value at every offset, across block edges.
        let s: Vec<u8> = (0..700u32).map(|i| (i * 37 % 256) as u8).collect();
        let mut ix = Index::default();
        ix.build(&s);
        for from in 0..s.len() {
            let want = s[from..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\')
                .map(|p| p + from);
            assert_eq!(ix.next_stop(from), want, "next_stop({from})");
        }
        assert_eq!(ix.next_stop(s.len()), None);
        for a in 0..s.len() {
            for b in [a, a + 1, a + 5, a + 63, a + 64, a + 65, a + 200] {
                let b = b.min(s.len());
                let want = s[a..b].iter().any(|&c| scan::is_cand(c));
                assert_eq!(ix.any_cand(a, b), want, "any_cand({a}, {b})");
            }
        }
    }

    #[test]
    fn every_byte_value_is_classified_alike() {
        let s: Vec<u8> = (0..=255u8).collect();
        let mut ix = Index::default();
        ix.build(&s);
        for b in 0..=255u8 {
            let i = usize::from(b);
            assert_eq!(ix.any_cand(i, i + 1), scan::is_cand(b), "byte {b:#04x}");
            assert_eq!(
                ix.next_stop(i) == Some(i),
                b == b'"' || b == b'\\',
                "byte {b:#04x}"
            );
        }
    }

    #[test]
    fn short_and_empty_inputs() {
        let mut ix = Index::default();
        ix.build(b"");
        assert_eq!(ix.next_stop(0), None);
        ix.build(b"ab\"c9");
        assert_eq!(ix.next_stop(0), Some(2));
        assert_eq!(ix.next_stop(3), None);
        assert!(!ix.any_cand(0, 4));
        assert!(ix.any_cand(0, 5));
    }
}

//! A bitmap of where a JSON body's strings may stop, one bit per byte (`"`
//! and `\`): the walker reads a string's end from it instead of visiting
//! every byte of the string.
//!
//! Built 64 bytes at a time: a pass of byte compares into 0/1 flags, which
//! the compiler turns into vector compares, then eight flags at a time packed
//! into bits with one multiply. Written by hand because no crate offers byte
//! class bitmaps in safe code (`memchr` finds up to three bytes, one match at
//! a time, and the workspace denies `unsafe`, so no intrinsics).

/// Bit `i` of word `w`: byte `64 * w + i` is `"` or `\`.
#[derive(Debug, Default)]
pub(crate) struct Index {
    stop: Vec<u64>,
}

#[inline(always)]
fn stop(b: u8) -> u8 {
    u8::from(b == b'"') | u8::from(b == b'\\')
}

/// Packs 64 flags (each 0 or 1) into a word, flag `i` into bit `i`.
#[inline(always)]
fn pack(f: &[u8; 64]) -> u64 {
    let mut m = 0u64;
    for (k, chunk) in f.chunks_exact(8).enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        // Byte j (0 or 1) lands in bit 56 + j of the product's top byte.
        let bits = u64::from_le_bytes(w).wrapping_mul(0x0102_0408_1020_4080) >> 56;
        m |= bits << (k * 8);
    }
    m
}

#[inline(always)]
fn block(c: &[u8; 64]) -> u64 {
    let mut fs = [0u8; 64];
    for i in 0..64 {
        fs[i] = stop(c[i]);
    }
    pack(&fs)
}

impl Index {
    /// Indexes `s`, reusing this index's buffers.
    pub(crate) fn build(&mut self, s: &[u8]) {
        self.stop.clear();
        self.stop.reserve(s.len().div_ceil(64));
        let mut chunks = s.chunks_exact(64);
        for c in &mut chunks {
            let Ok(b) = <&[u8; 64]>::try_from(c) else {
                continue;
            };
            self.stop.push(block(b));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // Zero bytes are not stops.
            let mut b = [0u8; 64];
            b[..rest.len()].copy_from_slice(rest);
            self.stop.push(block(&b));
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn short_and_empty_inputs() {
        let mut ix = Index::default();
        ix.build(b"");
        assert_eq!(ix.next_stop(0), None);
        ix.build(b"ab\"c9");
        assert_eq!(ix.next_stop(0), Some(2));
        assert_eq!(ix.next_stop(3), None);
    }
}

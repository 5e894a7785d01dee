//! Bitmaps of a JSON body's bytes, one bit per byte: where strings stop
//! (`"` and `\`) and which bytes can start or confirm a finding. The JSON
//! walker reads string ends and "does this string hold a trigger byte" from
//! them instead of visiting every byte of every string.
//!
//! Built 64 bytes at a time: a pass of byte compares into 0/1 flags, which
//! the compiler turns into vector compares, then eight flags at a time packed
//! into bits with one multiply. Written by hand because no crate offers byte
//! class bitmaps in safe code (`memchr` finds up to three bytes, one match at
//! a time, and the workspace denies `unsafe`, so no intrinsics).

/// Bits of `stop` and `trig` for 64 bytes starting at `64 * word`.
#[derive(Debug, Default)]
pub(crate) struct Index {
    stop: Vec<u64>,
    trig: Vec<u64>,
}

/// A byte that can start or confirm a finding in a short string: digits,
/// `@`, `:`, `=`, `+`, `(` and `-` (`scan::is_trigger` is the same set).
#[inline(always)]
fn trig(b: u8) -> u8 {
    u8::from(b.wrapping_sub(b'0') < 10)
        | u8::from(b == b'@')
        | u8::from(b == b':')
        | u8::from(b == b'=')
        | u8::from(b == b'+')
        | u8::from(b == b'(')
        | u8::from(b == b'-')
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
fn block(c: &[u8; 64]) -> (u64, u64) {
    let mut fs = [0u8; 64];
    let mut ft = [0u8; 64];
    for i in 0..64 {
        fs[i] = stop(c[i]);
        ft[i] = trig(c[i]);
    }
    (pack(&fs), pack(&ft))
}

impl Index {
    /// Indexes `s`, reusing this index's buffers.
    pub(crate) fn build(&mut self, s: &[u8]) {
        let words = s.len().div_ceil(64);
        self.stop.clear();
        self.trig.clear();
        self.stop.reserve(words);
        self.trig.reserve(words);
        let mut chunks = s.chunks_exact(64);
        for c in &mut chunks {
            let Ok(b) = <&[u8; 64]>::try_from(c) else {
                continue;
            };
            let (st, tr) = block(b);
            self.stop.push(st);
            self.trig.push(tr);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // Zero bytes are neither stops nor triggers.
            let mut b = [0u8; 64];
            b[..rest.len()].copy_from_slice(rest);
            let (st, tr) = block(&b);
            self.stop.push(st);
            self.trig.push(tr);
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

    /// True when a trigger byte lies in `a..b`.
    #[inline]
    pub(crate) fn any_trigger(&self, a: usize, b: usize) -> bool {
        if a >= b {
            return false;
        }
        let (wa, wb) = (a / 64, (b - 1) / 64);
        let lo = !0u64 << (a % 64);
        let hi = !0u64 >> (63 - (b - 1) % 64);
        if wa == wb {
            return self.trig.get(wa).is_some_and(|&t| t & lo & hi != 0);
        }
        let Some(words) = self.trig.get(wa..=wb) else {
            return false;
        };
        let last = words.len() - 1;
        words[0] & lo != 0 || words[last] & hi != 0 || words[1..last].iter().any(|&t| t != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_trig(b: u8) -> bool {
        b.is_ascii_digit() || matches!(b, b'@' | b':' | b'=' | b'+' | b'(' | b'-')
    }

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
        for a in (0..s.len()).step_by(7) {
            for b in a..s.len().min(a + 200) {
                let want = s[a..b].iter().any(|&c| naive_trig(c));
                assert_eq!(ix.any_trigger(a, b), want, "any_trigger({a}, {b})");
            }
        }
        assert_eq!(ix.next_stop(s.len()), None);
    }

    #[test]
    fn short_and_empty_inputs() {
        let mut ix = Index::default();
        ix.build(b"");
        assert_eq!(ix.next_stop(0), None);
        assert!(!ix.any_trigger(0, 0));
        ix.build(b"ab\"c9");
        assert_eq!(ix.next_stop(0), Some(2));
        assert_eq!(ix.next_stop(3), None);
        assert!(!ix.any_trigger(0, 4));
        assert!(ix.any_trigger(0, 5));
    }
}

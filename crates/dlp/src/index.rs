//! Byte-class probes of a JSON body, 16 bytes at a time, run on demand by
//! the walker for the string it is reading:
//!
//! - where a string may end (`"` and `\`, [`next_stop`]), so the walker
//!   reads a string's end without visiting its bytes one by one;
//! - whether a span holds a byte without which no content detector can
//!   report anything ([`crate::scan::is_cand`], [`any_cand`]), so a string
//!   holding none of them is known to be clean without reading it;
//! - both at once for a string that starts at a given byte
//!   ([`string_end`]), the walker's common case.
//!
//! Vector compares and `movemask` (SSE2 on x86-64, NEON on arm64) through
//! the `wide` crate, which keeps this file free of `unsafe`. Hand-written
//! because no crate classifies bytes this way: `memchr` finds up to three
//! bytes, and has no "any byte in a range".
//!
//! Why on demand rather than bitmaps of the whole body built up front (as
//! this module did before): much of a body is names, which the name cache
//! (`keys::KeyCache`) compares in place, and numbers and punctuation, which
//! the walker reads anyway. The strings it does probe are mostly shorter
//! than 16 bytes, one probe each; indexing every byte of the body cost more
//! (1.5 instructions per byte) than all the probes together.

use wide::u8x16;

const LANES: usize = 16;

/// The 16 bytes at `i`; past the end of `s`, zeros (neither stops nor
/// candidates).
#[inline(always)]
fn load(s: &[u8], i: usize) -> u8x16 {
    match s.get(i..).and_then(<[u8]>::first_chunk::<LANES>) {
        Some(c) => u8x16::from(*c),
        None => load_tail(s, i),
    }
}

/// [`load`] within 16 bytes of the end.
#[cold]
fn load_tail(s: &[u8], i: usize) -> u8x16 {
    let mut a = [0u8; LANES];
    let rest = s.get(i..).unwrap_or_default();
    a[..rest.len()].copy_from_slice(rest);
    u8x16::from(a)
}

/// Bit `k` set where byte `k` is `"` or `\`.
#[inline(always)]
fn stops(v: u8x16) -> u32 {
    let eq = |b: u8| v.simd_eq(u8x16::splat(b));
    (eq(b'"') | eq(b'\\')).to_bitmask()
}

/// Bit `k` set where [`crate::scan::is_cand`] holds for byte `k`.
#[inline(always)]
fn cands(v: u8x16) -> u32 {
    // `v - b'('` is at most 25 exactly for `(` to `A` (bytes wrap around).
    let d = v - u8x16::splat(b'(');
    (d.min(u8x16::splat(b'A' - b'(')).simd_eq(d) | v.simd_eq(u8x16::splat(b'J'))).to_bitmask()
}

/// Where the string content starting at `a` may end (the first `"` or `\`
/// at or after `a`), and whether the bytes before it hold a candidate byte
/// when that end is within [`CAND_SPAN`] bytes (`None` beyond: the quick
/// reading does not ask about texts that long). Most strings are shorter
/// than 16 bytes: one probe answers both.
#[inline(always)]
pub(crate) fn string_end(s: &[u8], a: usize) -> Option<(usize, Option<bool>)> {
    let v = load(s, a);
    let stop = stops(v);
    if stop != 0 {
        let k = stop.trailing_zeros();
        let before = (1u32 << k) - 1;
        return Some((a + k as usize, Some(cands(v) & before != 0)));
    }
    string_end_far(s, a, cands(v) != 0)
}

/// Texts at least this long are never ruled out by their bytes
/// (`Scanner::might_match`), so [`string_end`] stops looking for
/// candidates here.
pub(crate) const CAND_SPAN: usize = 3 * LANES;

/// [`string_end`] past the first probe, which found no end and `cand`.
#[inline(never)]
fn string_end_far(s: &[u8], a: usize, mut cand: bool) -> Option<(usize, Option<bool>)> {
    let mut i = a + LANES;
    while i < a + CAND_SPAN {
        if i >= s.len() {
            return None;
        }
        let v = load(s, i);
        let stop = stops(v);
        if stop != 0 {
            let k = stop.trailing_zeros();
            let before = (1u32 << k) - 1;
            return Some((i + k as usize, Some(cand || cands(v) & before != 0)));
        }
        cand = cand || cands(v) != 0;
        i += LANES;
    }
    Some((next_stop(s, i)?, None))
}

/// The first `"` or `\` in `s` at or after `from`.
#[inline]
pub(crate) fn next_stop(s: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < s.len() {
        let m = stops(load(s, i));
        if m != 0 {
            return Some(i + m.trailing_zeros() as usize);
        }
        i += LANES;
    }
    None
}

/// Whether `s[a..b]` holds a byte for which [`crate::scan::is_cand`] is
/// true (bytes past the end of `s` count as none).
#[inline(never)]
pub(crate) fn any_cand(s: &[u8], a: usize, b: usize) -> bool {
    let mut i = a;
    while i < b {
        let mut m = cands(load(s, i));
        if b - i < LANES {
            m &= (1u32 << (b - i)) - 1;
        }
        if m != 0 {
            return true;
        }
        i += LANES;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan;

    fn reference_stop(s: &[u8], from: usize) -> Option<usize> {
        s.get(from..)?
            .iter()
            .position(|&b| b == b'"' || b == b'\\')
            .map(|p| p + from)
    }

    #[test]
    fn matches_a_byte_by_byte_reading() {
        // Every byte value at every offset, across 16-byte probe edges and
        // the end of the input; sparse stops so that probes run long.
        let mut s: Vec<u8> = (0..700u32).map(|i| (i * 37 % 256) as u8).collect();
        for b in &mut s[300..600] {
            if *b == b'"' || *b == b'\\' {
                *b = b'a';
            }
        }
        for from in 0..=s.len() + 2 {
            assert_eq!(
                next_stop(&s, from),
                reference_stop(&s, from),
                "next_stop({from})"
            );
        }
        for a in 0..=s.len() + 2 {
            let got = string_end(&s, a);
            let Some(b) = reference_stop(&s, a) else {
                assert_eq!(got, None, "string_end({a})");
                continue;
            };
            let cand = s[a..b].iter().any(|&c| scan::is_cand(c));
            let want = (b, (b - a < CAND_SPAN).then_some(cand));
            assert_eq!(got, Some(want), "string_end({a})");
        }
        for a in 0..s.len() {
            for len in [0, 1, 2, 5, 15, 16, 17, 31, 32, 33, 39, 40, 63, 64, 65, 200] {
                let b = (a + len).min(s.len());
                let want = s[a..b].iter().any(|&c| scan::is_cand(c));
                assert_eq!(any_cand(&s, a, b), want, "any_cand({a}, {b})");
            }
        }
    }

    #[test]
    fn every_byte_value_is_classified_alike() {
        let s: Vec<u8> = (0..=255u8).collect();
        for b in 0..=255u8 {
            let i = usize::from(b);
            assert_eq!(any_cand(&s, i, i + 1), scan::is_cand(b), "byte {b:#04x}");
            assert_eq!(
                next_stop(&s, i) == Some(i),
                b == b'"' || b == b'\\',
                "byte {b:#04x}"
            );
        }
    }

    #[test]
    fn a_lone_candidate_or_stop_is_found_wherever_it_stands() {
        // One interesting byte in a run of plain ones, at every position of
        // inputs of every length up to three probes: the probe edges and
        // the zero padding past the end must neither hide nor invent one.
        for n in 1..50 {
            for at in 0..n {
                for (byte, is_stop) in [(b'"', true), (b'\\', true), (b'7', false), (b'J', false)] {
                    let mut s = vec![b'x'; n];
                    s[at] = byte;
                    for from in 0..=n {
                        assert_eq!(
                            next_stop(&s, from),
                            reference_stop(&s, from),
                            "{n} {at} {from}"
                        );
                    }
                    for a in 0..=n {
                        for b in a..=n {
                            let want = !is_stop && (a..b).contains(&at);
                            assert_eq!(any_cand(&s, a, b), want, "{n} {at} {a}..{b}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn string_end_matches_a_byte_by_byte_reading() {
        // Ends at every distance from the start, so that the first, second,
        // third and later probes each find one; candidates before, at and
        // after the end.
        for n in 0..80 {
            for cand_at in [None, Some(0), Some(n / 2), Some(n), Some(n + 1)] {
                let mut s = vec![b'x'; n + 20];
                s[n] = b'"';
                if let Some(c) = cand_at {
                    if c != n {
                        s[c.min(n + 19)] = b'5';
                    }
                }
                for a in 0..=n {
                    let (b, cand) = string_end(&s, a).expect("an end");
                    assert_eq!(b, n, "{n} {a}");
                    let want = s[a..b].iter().any(|&c| scan::is_cand(c));
                    match cand {
                        Some(c) => assert_eq!(c, want, "{n} {cand_at:?} {a}"),
                        None => assert!(b - a >= CAND_SPAN, "{n} {a}"),
                    }
                }
            }
        }
        assert_eq!(string_end(b"", 0), None);
        assert_eq!(string_end(b"abc", 0), None);
        assert_eq!(string_end(&[b'a'; 100], 3), None);
        assert_eq!(string_end(b"ab\\", 0), Some((2, Some(false))));
    }

    #[test]
    fn short_and_empty_inputs() {
        assert_eq!(next_stop(b"", 0), None);
        assert_eq!(next_stop(b"", 5), None);
        assert_eq!(next_stop(b"ab\"c9", 0), Some(2));
        assert_eq!(next_stop(b"ab\"c9", 3), None);
        assert!(!any_cand(b"ab\"c9", 0, 4));
        assert!(any_cand(b"ab\"c9", 0, 5));
        assert!(!any_cand(b"ab\"c9", 5, 5));
    }
}

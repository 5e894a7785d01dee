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

/// What [`string_end`] found out about a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct End {
    /// Where the string may end: the first `"` or `\` at or after its start.
    pub(crate) at: usize,
    /// Whether the bytes before `at` hold a candidate byte, when `at` is
    /// within [`CAND_SPAN`] bytes (`None` beyond: the quick reading does
    /// not ask about texts that long).
    pub(crate) cand: Option<bool>,
    /// When they do and there are fewer than [`PUNCT_SPAN`] of them,
    /// [`not_alnum`] of those bytes: what the quick reading needs, read
    /// from the probes that found `at`.
    pub(crate) punct: Option<u64>,
}

/// Bit `k` set where byte `k` is an ASCII letter or digit.
#[inline(always)]
fn alnum(v: u8x16) -> u32 {
    // `| 0x20` folds capitals onto small letters and nothing else onto
    // them.
    (within(v, b'0', 9) | within(v | u8x16::splat(0x20), b'a', 25)).to_bitmask()
}

/// Where the string content starting at `a` may end, and what its bytes
/// hold ([`End`]). Most strings are shorter than 16 bytes: one probe
/// answers all of it, and a second one most of the others.
#[inline(always)]
pub(crate) fn string_end(s: &[u8], a: usize) -> Option<End> {
    let v = load(s, a);
    let stop = stops(v);
    if stop != 0 {
        let k = stop.trailing_zeros();
        let before = (1u32 << k) - 1;
        let cand = cands(v) & before != 0;
        // Only strings with a candidate byte are read any further.
        let punct = cand.then(|| u64::from(!alnum(v) & before));
        return Some(End {
            at: a + k as usize,
            cand: Some(cand),
            punct,
        });
    }
    // Ids, trace ids and timestamps are mostly 16 to 32 bytes long: a second
    // probe here, without the call and loop of the general case.
    let w = load(s, a + LANES);
    let stop = stops(w);
    if stop != 0 {
        let k = stop.trailing_zeros();
        let before = (1u32 << k) - 1;
        let cand = cands(v) != 0 || cands(w) & before != 0;
        let punct =
            cand.then(|| u64::from(!alnum(v) & 0xffff) | u64::from(!alnum(w) & before) << LANES);
        return Some(End {
            at: a + LANES + k as usize,
            cand: Some(cand),
            punct,
        });
    }
    string_end_far(s, a, cands(v) != 0)
}

/// Texts at least this long are never ruled out by their bytes
/// (`Scanner::might_match`), so [`string_end`] stops looking for
/// candidates here.
pub(crate) const CAND_SPAN: usize = 3 * LANES;

/// [`string_end`] past the first two probes, which found no end; `cand`
/// is whether the first one saw a candidate byte.
#[inline(never)]
fn string_end_far(s: &[u8], a: usize, mut cand: bool) -> Option<End> {
    let mut i = a + LANES;
    // Letters and digits so far, for `punct` (the first probe's again).
    let mut al = u64::from(alnum(load(s, a)));
    while i < a + CAND_SPAN {
        if i >= s.len() {
            return None;
        }
        let v = load(s, i);
        let stop = stops(v);
        let shift = i - a;
        if stop != 0 {
            let k = stop.trailing_zeros();
            let before = (1u32 << k) - 1;
            cand = cand || cands(v) & before != 0;
            let n = shift + k as usize;
            // The quick reading asks about texts shorter than 40 bytes only.
            let punct = (cand && n < PUNCT_SPAN)
                .then(|| !(al | u64::from(alnum(v)) << shift) & ((1u64 << n) - 1));
            return Some(End {
                at: a + n,
                cand: Some(cand),
                punct,
            });
        }
        cand = cand || cands(v) != 0;
        al |= u64::from(alnum(v)) << shift;
        i += LANES;
    }
    Some(End {
        at: next_stop(s, i)?,
        cand: None,
        punct: None,
    })
}

/// [`End::punct`] is given for texts shorter than this: longer ones are
/// never ruled out by their bytes (`Scanner::might_match`).
pub(crate) const PUNCT_SPAN: usize = 40;

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

/// Texts shorter than this may be asked about with [`not_alnum`] (three
/// probes).
pub(crate) const QUICK_SPAN: usize = 3 * LANES;

/// Byte `k` of `v` lies in `lo..=lo + span`.
#[inline(always)]
fn within(v: u8x16, lo: u8, span: u8) -> u8x16 {
    // Bytes wrap around, so one unsigned minimum tests both ends.
    let d = v - u8x16::splat(lo);
    d.min(u8x16::splat(span)).simd_eq(d)
}

/// Bit `k` set where byte `a + k` of `s[a..b]` is not an ASCII letter or
/// digit; `b - a` is below [`QUICK_SPAN`], and bytes of `s` past `b` are
/// loaded but not counted. The scanner's quick reading looks only at these
/// bytes and at the words they start (`scan::content_may_match_in`); in
/// the ids and codes it is mostly asked about (`ord_7f3a…`, `SKU-123456`,
/// hex trace ids) there are one or two of them.
#[inline]
pub(crate) fn not_alnum(s: &[u8], a: usize, b: usize) -> u64 {
    debug_assert!(b - a < QUICK_SPAN);
    let mut m = 0u64;
    let mut i = a;
    while i < b {
        m |= u64::from(alnum(load(s, i))) << (i - a);
        i += LANES;
    }
    !m & ((1u64 << (b - a)) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan;

    /// `punct` of what `string_end` found at `a`, when it has one, is
    /// [`not_alnum`] of the string, read byte by byte; and it has one for
    /// every string shorter than two probes that holds a candidate.
    fn check_punct(s: &[u8], a: usize, e: Option<End>) {
        let Some(e) = e else {
            return;
        };
        let bytes = &s[a..e.at];
        if let Some(m) = e.punct {
            let want = bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| !b.is_ascii_alphanumeric())
                .fold(0u64, |m, (k, _)| m | 1 << k);
            assert_eq!(m, want, "punct at {a}");
            assert_eq!(m, not_alnum(s, a, e.at), "not_alnum at {a}");
            assert_eq!(e.cand, Some(true), "punct without a candidate at {a}");
        } else {
            assert!(
                e.cand != Some(true) || bytes.len() >= PUNCT_SPAN,
                "no punct at {a}"
            );
        }
    }

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
            check_punct(&s, a, got);
            let got = got.map(|e| (e.at, e.cand));
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
                    let e = string_end(&s, a).expect("an end");
                    check_punct(&s, a, Some(e));
                    let (b, cand) = (e.at, e.cand);
                    assert_eq!(b, n, "{n} {a}");
                    let want = s[a..b].iter().any(|&c| scan::is_cand(c));
                    match cand {
                        Some(c) => assert_eq!(c, want, "{n} {cand_at:?} {a}"),
                        None => assert!(b - a >= CAND_SPAN, "{n} {a}"),
                    }
                }
            }
        }
        let end = |s: &[u8], a| string_end(s, a).map(|e| (e.at, e.cand));
        assert_eq!(end(b"", 0), None);
        assert_eq!(end(b"abc", 0), None);
        assert_eq!(end(&[b'a'; 100], 3), None);
        assert_eq!(end(b"ab\\", 0), Some((2, Some(false))));
        let e = string_end(b"ab_9-x\"", 0).expect("an end");
        assert_eq!(e.punct, Some(0b1_0100));
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

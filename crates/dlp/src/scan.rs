//! The content scanner: one left-to-right pass over bytes that finds every
//! built-in category, then the configured patterns.
//!
//! Most bytes cost one table lookup. Work happens only at a few trigger
//! points: the start of an alphanumeric word (digits become a phone, card,
//! SSN or IPv4 candidate; `AKIA`, `AIza`, `eyJ`, two capitals and two digits
//! become key, JWT and IBAN candidates), `@` (email), `+` and `(` (phone),
//! `-----BEGIN` (PEM), and `=` or `:` after a password-like name. Candidates
//! are then confirmed by checksums and ranges (`validate`).

use crate::category::Cat;
use crate::index;
use crate::keys::{KeyClass, KeyMatcher};
use crate::validate;

const DIGIT: u8 = 1;
const UPPER: u8 = 2;
const LOWER: u8 = 4;
const HEX: u8 = 8;
/// `+` and `/`: the two non-alphanumeric characters of standard base64.
const B64X: u8 = 16;
/// Characters of an email local part besides alphanumerics: `._%+-`.
const LOCAL: u8 = 32;
/// `-` and `_`: base64url.
const URLX: u8 = 64;
const ALNUM: u8 = DIGIT | UPPER | LOWER;

const fn build_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if b.is_ascii_digit() {
            c |= DIGIT | HEX;
        }
        if b.is_ascii_uppercase() {
            c |= UPPER;
        }
        if b.is_ascii_lowercase() {
            c |= LOWER;
        }
        if matches!(b, b'a'..=b'f' | b'A'..=b'F') {
            c |= HEX;
        }
        if b == b'+' || b == b'/' {
            c |= B64X;
        }
        if matches!(b, b'.' | b'_' | b'%' | b'+' | b'-') {
            c |= LOCAL;
        }
        if b == b'-' || b == b'_' {
            c |= URLX;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CLASS: [u8; 256] = build_table();

#[inline]
fn class(b: u8) -> u8 {
    CLASS[b as usize]
}
#[inline]
fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}
#[inline]
fn is_alnum(b: u8) -> bool {
    class(b) & ALNUM != 0
}
#[inline]
fn is_word(b: u8) -> bool {
    is_alnum(b) || b == b'_'
}
#[inline]
fn is_b64(b: u8) -> bool {
    class(b) & (ALNUM | B64X) != 0
}
#[inline]
fn is_b64url(b: u8) -> bool {
    class(b) & (ALNUM | URLX) != 0
}

/// Bytes of which every built-in finding in a text shorter than 40 bytes
/// holds at least one (see [`Scanner::might_match`]): digits, `@ + ( = : -`,
/// `A` (AWS and Google keys) and `J` (`eyJ`). The range `(`..=`A` takes in
/// a few bytes more (`) * , . / ; < > ?`): that keeps the JSON walker's
/// vector probe to one range compare, and only costs a closer look at
/// strings holding them.
#[inline]
pub(crate) fn is_cand(b: u8) -> bool {
    (b'('..=b'A').contains(&b) || b == b'J'
}

/// The body of [`Scanner::might_match`] for the text `doc[a..b]`, shorter
/// than 40 bytes: [`content_may_match_bytewise`], visiting only the bytes
/// that are not letters or digits ([`index::not_alnum`], a vector probe per
/// 16 bytes) and the first byte of each word. `doc` may go on past `b` (the
/// JSON walker passes the whole body, which spares the probe a copy of the
/// last bytes).
#[inline]
fn content_may_match_in(doc: &[u8], a: usize, b: usize) -> bool {
    content_may_match_punct(&doc[a..b], index::not_alnum(doc, a, b))
}

/// [`content_may_match_in`] for the text `s`, given [`index::not_alnum`]
/// of it (the JSON walker has it from the probes that found the string's
/// end).
#[inline]
pub(crate) fn content_may_match_punct(s: &[u8], mut punct: u64) -> bool {
    let Some(&first) = s.first() else {
        return false;
    };
    if is_alnum(first) && word_may_start_finding(s, 0) {
        return true;
    }
    while punct != 0 {
        let i = punct.trailing_zeros() as usize;
        punct &= punct - 1;
        let c = s[i];
        match c {
            b'@' | b'+' | b'(' | b'=' | b':' => return true,
            b'-' if s.get(i + 1) == Some(&b'-') => return true,
            _ => {}
        }
        // A word starts after it, unless the word goes on from a `_`.
        if c != b'_'
            && s.get(i + 1).is_some_and(|&n| is_alnum(n))
            && word_may_start_finding(s, i + 1)
        {
            return true;
        }
    }
    false
}

/// Whether the word that starts at `s[i]` (an alphanumeric after neither an
/// alphanumeric nor `_`) can begin a finding: see [`Scanner::might_match`].
#[inline]
fn word_may_start_finding(s: &[u8], i: usize) -> bool {
    let b = s[i];
    // The bytes after it; missing ones start nothing.
    let next = s.get(i + 1..).unwrap_or_default();
    if is_digit(b) {
        digit_run_may_match(s, i)
    } else if b == b'A' {
        matches!(next.first(), Some(b'K' | b'S' | b'B' | b'C' | b'3' | b'I'))
    } else if b == b'e' {
        next.starts_with(b"yJ")
    } else {
        class(b) & UPPER != 0
            && matches!(next, [u, d, e, ..] if class(*u) & UPPER != 0 && is_digit(*d) && is_digit(*e))
    }
}

/// [`content_may_match_in`] read byte by byte: the reference that tests
/// and the `dlp_redact` fuzz target hold the vector reading to.
pub(crate) fn content_may_match_bytewise(s: &[u8]) -> bool {
    let n = s.len();
    let mut i = 0;
    while i < n {
        let b = s[i];
        let c = class(b);
        if c & ALNUM == 0 {
            match b {
                b'@' | b'+' | b'(' | b'=' | b':' => return true,
                b'-' if s.get(i + 1) == Some(&b'-') => return true,
                _ => {}
            }
            i += 1;
            continue;
        }
        // A word starts here, unless it goes on from a `_`.
        if i == 0 || s[i - 1] != b'_' {
            let next = |k: usize| s.get(i + k).copied().unwrap_or(0);
            let starts_finding = if c & DIGIT != 0 {
                digit_run_may_match(s, i)
            } else if b == b'A' {
                matches!(next(1), b'K' | b'S' | b'B' | b'C' | b'3' | b'I')
            } else if b == b'e' {
                next(1) == b'y' && next(2) == b'J'
            } else {
                c & UPPER != 0
                    && class(next(1)) & UPPER != 0
                    && is_digit(next(2))
                    && is_digit(next(3))
            };
            if starts_finding {
                return true;
            }
        }
        // The rest of the word starts nothing.
        i += 1;
        while i < n && class(s[i]) & ALNUM != 0 {
            i += 1;
        }
    }
    false
}

/// Whether `s` is exactly an ISO 8601 date (`2026-05-12`) or a UTC or
/// offset date-time (`2026-05-12T13:22:11.123Z`, `2026-05-12T13:22+02:00`),
/// up to nanoseconds. Without a phone or SSN hint, `scan` finds nothing in
/// such a text (its digit groups are too short, or end next to a letter),
/// so the JSON walker skips the scan; a property test and the `dlp_redact`
/// fuzz target hold `scan` to this. Most records of most APIs hold some.
pub(crate) fn is_timestamp(s: &[u8]) -> bool {
    // The date, and the hours and minutes when there are any, stand at fixed
    // places: they are checked as one little-endian word.
    let Some(head) = s.first_chunk::<16>() else {
        return match s.first_chunk::<10>() {
            Some(date) if s.len() == 10 => {
                let mut w = [0u8; 16];
                w[..10].copy_from_slice(date);
                DATE.holds(u128::from_le_bytes(w))
            }
            _ => false,
        };
    };
    if !DATE_TIME.holds(u128::from_le_bytes(*head)) {
        return false;
    }
    let mut r = &s[16..];
    // Seconds, and a fraction of them.
    if let [b':', x, y, rest @ ..] = r {
        if !(is_digit(*x) && is_digit(*y)) {
            return false;
        }
        r = rest;
        if let [b'.', rest @ ..] = r {
            let n = rest.iter().take(10).take_while(|b| is_digit(**b)).count();
            if !(1..=9).contains(&n) {
                return false;
            }
            r = &rest[n..];
        }
    }
    match r {
        [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|b| is_digit(**b)),
        _ => false,
    }
}

/// A fixed layout of digits and literal bytes, for [`is_timestamp`].
struct Layout {
    /// `0xff` at every byte that must be a digit.
    digits: u128,
    /// `0xff` at every byte that must equal the byte of `lits` there.
    lit_mask: u128,
    lits: u128,
}

impl Layout {
    /// `pattern`: `0` where a digit goes, any other byte stands for itself.
    const fn new(pattern: &[u8]) -> Self {
        let (mut digits, mut lit_mask, mut lits) = (0u128, 0u128, 0u128);
        let mut i = 0;
        while i < pattern.len() {
            let at = 8 * i;
            if pattern[i] == b'0' {
                digits |= 0xff << at;
            } else {
                lit_mask |= 0xff << at;
                lits |= (pattern[i] as u128) << at;
            }
            i += 1;
        }
        Self {
            digits,
            lit_mask,
            lits,
        }
    }

    /// Whether the little-endian word `w` follows the layout.
    #[inline]
    fn holds(&self, w: u128) -> bool {
        const HIGH: u128 = u128::from_le_bytes([0xf0; 16]);
        const THREES: u128 = u128::from_le_bytes([0x30; 16]);
        const SIXES: u128 = u128::from_le_bytes([0x06; 16]);
        // A digit is `0x30..=0x39`: high nibble 3, and still 3 after adding
        // 6. Once every high nibble is 3, the additions cannot carry into
        // the next byte.
        let d = self.digits;
        w & self.lit_mask == self.lits
            && w & HIGH & d == THREES & d
            && (w + (SIXES & d)) & HIGH & d == THREES & d
    }
}

const DATE: Layout = Layout::new(b"0000-00-00");
const DATE_TIME: Layout = Layout::new(b"0000-00-00T00:00");

/// [`is_timestamp`] read piece by piece: the reference that the tests and
/// the `dlp_redact` fuzz target hold it to.
pub(crate) fn is_timestamp_bytewise(s: &[u8]) -> bool {
    fn digits(s: &[u8], n: usize) -> Option<&[u8]> {
        (s.len() >= n && s[..n].iter().all(u8::is_ascii_digit)).then(|| &s[n..])
    }
    fn lit(s: &[u8], c: u8) -> Option<&[u8]> {
        s.split_first()
            .filter(|(&b, _)| b == c)
            .map(|(_, rest)| rest)
    }
    let date = || -> Option<&[u8]> {
        let r = lit(digits(s, 4)?, b'-')?;
        digits(lit(digits(r, 2)?, b'-')?, 2)
    };
    let Some(rest) = date() else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let time = || -> Option<&[u8]> {
        let mut r = digits(lit(digits(lit(rest, b'T')?, 2)?, b':')?, 2)?;
        if let Some(sec) = lit(r, b':') {
            r = digits(sec, 2)?;
            if let Some(frac) = lit(r, b'.') {
                let n = frac.iter().take_while(|b| b.is_ascii_digit()).count();
                if !(1..=9).contains(&n) {
                    return None;
                }
                r = &frac[n..];
            }
        }
        Some(r)
    };
    match time() {
        Some(b"Z") => true,
        Some([b'+' | b'-', zone @ ..]) => {
            zone.len() == 5
                && zone[2] == b':'
                && digits(zone, 2).is_some()
                && digits(&zone[3..], 2).is_some()
        }
        _ => false,
    }
}

/// Whether the digit at `i`, which starts a word, can begin a numeric
/// finding (see `Scanner::numeric`): not after `x.`, `x-` or `x/`, and at
/// least four digits before the run of digits and separators ends (seven
/// digits, or an IPv4 address's four groups, are needed).
fn digit_run_may_match(s: &[u8], i: usize) -> bool {
    if i >= 2 && matches!(s[i - 1], b'.' | b'-' | b'/') && is_alnum(s[i - 2]) {
        return false;
    }
    let mut digits = 0;
    for &b in &s[i..] {
        if is_digit(b) {
            digits += 1;
            if digits == 4 {
                return true;
            }
        } else if !matches!(b, b' ' | b'-' | b'.' | b')') {
            return false;
        }
    }
    false
}

/// One finding in a scanned buffer: `start..end` holds a value of `cat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) cat: Cat,
    /// Found in the second reading of the text (see `merge`).
    pub(crate) alt: bool,
}

/// Which built-in content detectors run.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Detectors {
    pub(crate) email: bool,
    pub(crate) phone: bool,
    pub(crate) card: bool,
    pub(crate) ssn: bool,
    pub(crate) iban: bool,
    pub(crate) ip: bool,
    pub(crate) jwt: bool,
    pub(crate) aws_access_key: bool,
    pub(crate) aws_secret_key: bool,
    pub(crate) google_api_key: bool,
    pub(crate) credentials: bool,
    pub(crate) private_key: bool,
    pub(crate) secret_keys: bool,
}

/// What the surrounding field name says about the scanned value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hints {
    pub(crate) phone: bool,
    pub(crate) ssn: bool,
}

impl Hints {
    pub(crate) const NONE: Hints = Hints {
        phone: false,
        ssn: false,
    };

    pub(crate) fn from_key(k: KeyClass) -> Self {
        Hints {
            phone: k == KeyClass::Phone,
            ssn: k == KeyClass::Ssn,
        }
    }
}

/// A configured pattern: a regex whose matches are findings of `cat`.
#[derive(Debug, Clone)]
pub(crate) struct Custom {
    pub(crate) re: regex::bytes::Regex,
    pub(crate) cat: Cat,
}

/// The content scanner, built once per configuration.
#[derive(Debug, Clone)]
pub(crate) struct Scanner {
    pub(crate) det: Detectors,
    pub(crate) keys: KeyMatcher,
    pub(crate) custom: Vec<Custom>,
}

const MAX_GROUPS: usize = 8;

impl Scanner {
    /// False when `scan` cannot find anything in `s`: a quick reading that
    /// looks only at what every built-in finding needs. Most JSON keys and
    /// values, ids and enum-like strings stop here, whatever their length.
    ///
    /// A finding needs one of: `@` (email), `+` or `(` (phone), `=` or `:`
    /// (assignment, IPv6), `--` (PEM), a run of 40 bytes (secret key), or a
    /// word that starts (not after `_`) with `A` and a second letter of an
    /// AWS or Google key prefix, `eyJ` (JWT), two capitals and two digits
    /// (IBAN), or a digit that begins a run of at least four digits among
    /// spaces, `-`, `.` and `)` (IPv4, phone, card and SSN need seven digits,
    /// or four groups). A property test and the `dlp_redact` fuzz target
    /// hold `scan` to this.
    pub(crate) fn might_match(&self, s: &[u8]) -> bool {
        self.might_match_given(s, true)
    }

    /// What [`Scanner::scan`] reports for the whole of `digits`, a run of
    /// ASCII digits such as a JSON integer ([`Scanner::scan_whole`]). A run
    /// without separators is one digit group, so unless custom patterns
    /// are set (they may match anything), only the group classifier can
    /// report it, and it is asked directly. `hits` is scratch space. A
    /// property test holds this to `scan_whole`.
    pub(crate) fn whole_number(
        &self,
        digits: &[u8],
        hints: Hints,
        hits: &mut Vec<Hit>,
    ) -> Option<Cat> {
        debug_assert!(digits.iter().all(u8::is_ascii_digit));
        if !self.custom.is_empty() {
            return self.scan_whole(digits, hints, hits);
        }
        let n = digits.len();
        if !(7..=19).contains(&n) {
            return None;
        }
        if hints == Hints::NONE {
            // One group without `+` or parentheses: an SSN and a bare
            // phone number need the field name's hint, a North American
            // number three groups, an IPv4 address four. Only a card is
            // left (epoch milliseconds and order numbers stop at its
            // issuer prefix).
            return (self.det.card && validate::card(digits)).then_some(Cat::CARD);
        }
        self.classify(
            &Groups {
                s: digits,
                gs: &[0],
                ge: &[n],
                paren: &[false],
                sep: &[(0, 0)],
                plus: false,
                next_sep: None,
            },
            hints,
        )
    }

    /// False when [`Scanner::whole_number`] cannot report `digits` under
    /// `hints`, judged from their length and first digit alone, so that
    /// the JSON walker asks it only about integers that may be cards,
    /// phones or SSNs. [`check_whole_number`] holds it to `whole_number`.
    #[inline]
    pub(crate) fn whole_number_may_match(&self, digits: &[u8], hints: Hints) -> bool {
        let n = digits.len();
        if !self.custom.is_empty() {
            return true;
        }
        // Without a hint only a card is left (see `whole_number`), and no
        // card issuer's range starts with 0, 1 or 7.
        (7..=19).contains(&n)
            && (hints != Hints::NONE || (n >= 13 && !matches!(digits[0], b'0' | b'1' | b'7')))
    }

    /// The category of a finding [`Scanner::scan`] reports over the whole
    /// of `s`, if any. `hits` is scratch space.
    pub(crate) fn scan_whole(&self, s: &[u8], hints: Hints, hits: &mut Vec<Hit>) -> Option<Cat> {
        hits.clear();
        self.scan(s, hints, hits);
        hits.first()
            .filter(|h| h.start == 0 && h.end == s.len())
            .map(|h| h.cat)
    }

    /// As [`Scanner::might_match`], told whether `s` holds any byte for
    /// which [`is_cand`] is true.
    #[inline]
    pub(crate) fn might_match_given(&self, s: &[u8], any_cand: bool) -> bool {
        self.might_match_in(s, 0, s.len(), || any_cand)
    }

    /// As [`Scanner::might_match_given`] for the text `doc[a..b]` (the
    /// bytes of `doc` around it are not read as part of it), asking
    /// `any_cand` only when the answer matters (the JSON walker finds it
    /// out with a vector probe).
    #[inline(always)]
    pub(crate) fn might_match_in(
        &self,
        doc: &[u8],
        a: usize,
        b: usize,
        any_cand: impl FnOnce() -> bool,
    ) -> bool {
        b - a >= 40 || !self.custom.is_empty() || (any_cand() && content_may_match_in(doc, a, b))
    }

    /// Appends every finding in `s` to `hits`, sorted by start and without
    /// overlaps.
    pub(crate) fn scan(&self, s: &[u8], hints: Hints, hits: &mut Vec<Hit>) {
        let first = hits.len();
        let n = s.len();
        let mut i = 0;
        while i < n {
            let b = s[i];
            if is_alnum(b) {
                let mut j = i + 1;
                while j < n && is_alnum(s[j]) {
                    j += 1;
                }
                let next = if i > 0 && s[i - 1] == b'_' {
                    j
                } else {
                    self.word(s, i, j, hints, hits)
                };
                i = next.max(j);
                continue;
            }
            match b {
                b'@' if self.det.email => self.email(s, i, hits),
                b'+' | b'('
                    if i + 1 < n && is_digit(s[i + 1]) && (self.det.phone || self.det.card) =>
                {
                    let k = self.numeric(s, i, hints, hits);
                    if k > i {
                        i = k;
                        continue;
                    }
                }
                b'-' if self.det.private_key && s[i..].starts_with(b"-----BEGIN ") => {
                    if let Some(end) = pem_end(s, i) {
                        hits.push(Hit {
                            start: i,
                            end,
                            cat: Cat::PRIVATE_KEY,
                            alt: false,
                        });
                        i = end;
                        continue;
                    }
                }
                b'=' | b':' => {
                    if b == b':'
                        && self.det.ip
                        && i + 2 < n
                        && s[i + 1] == b':'
                        && (i == 0 || !is_word(s[i - 1]))
                    {
                        if let Some(end) = ipv6(s, i) {
                            hits.push(Hit {
                                start: i,
                                end,
                                cat: Cat::IP,
                                alt: false,
                            });
                            i = end;
                            continue;
                        }
                    }
                    if self.det.secret_keys || self.det.aws_secret_key || self.det.credentials {
                        self.assignment(s, i, hits);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        if !self.custom.is_empty() {
            for c in &self.custom {
                for m in c.re.find_iter(s) {
                    if m.end() > m.start() {
                        hits.push(Hit {
                            start: m.start(),
                            end: m.end(),
                            cat: c.cat,
                            alt: false,
                        });
                    }
                }
            }
        }
        normalize(hits, first);
    }

    /// A word of alphanumerics `s[i..j]` that starts at a boundary. Returns
    /// where scanning continues (at least `j`).
    fn word(&self, s: &[u8], i: usize, j: usize, hints: Hints, hits: &mut Vec<Hit>) -> usize {
        let w = &s[i..j];
        let first = w[0];
        let n = s.len();
        if is_digit(first) && w.iter().all(|&b| is_digit(b)) {
            if self.det.phone || self.det.card || self.det.ssn || self.det.ip {
                let k = self.numeric(s, i, hints, hits);
                if k > i {
                    return k.max(j);
                }
            }
            if self.det.ip && j < n && s[j] == b':' && w.len() <= 4 {
                if let Some(end) = ipv6(s, i) {
                    hits.push(Hit {
                        start: i,
                        end,
                        cat: Cat::IP,
                        alt: false,
                    });
                    return end;
                }
            }
            return j;
        }
        if first == b'A' {
            if self.det.aws_access_key && w.len() == 20 && aws_key_id(w) {
                hits.push(Hit {
                    start: i,
                    end: j,
                    cat: Cat::AWS_ACCESS_KEY,
                    alt: false,
                });
                return j;
            }
            if self.det.google_api_key && w.starts_with(b"AIza") {
                let mut k = i;
                while k < n && is_b64url(s[k]) {
                    k += 1;
                }
                if k - i == 39 {
                    hits.push(Hit {
                        start: i,
                        end: k,
                        cat: Cat::GOOGLE_API_KEY,
                        alt: false,
                    });
                    return k;
                }
            }
        }
        if first == b'e' && self.det.jwt && w.starts_with(b"eyJ") {
            if let Some(end) = jwt(s, i) {
                hits.push(Hit {
                    start: i,
                    end,
                    cat: Cat::JWT,
                    alt: false,
                });
                return end;
            }
        }
        if self.det.iban
            && w.len() >= 4
            && w[0].is_ascii_uppercase()
            && w[1].is_ascii_uppercase()
            && is_digit(w[2])
            && is_digit(w[3])
        {
            if let Some(end) = iban(s, i, j) {
                hits.push(Hit {
                    start: i,
                    end,
                    cat: Cat::IBAN,
                    alt: false,
                });
                return end;
            }
        }
        if self.det.ip
            && j < n
            && s[j] == b':'
            && w.len() <= 4
            && w.iter().all(|&b| class(b) & HEX != 0)
        {
            if let Some(end) = ipv6(s, i) {
                hits.push(Hit {
                    start: i,
                    end,
                    cat: Cat::IP,
                    alt: false,
                });
                return end;
            }
        }
        // Only a 40-character run of base64 can be a secret key: skip words
        // that end at a delimiter with any other length.
        let b64_run_possible = j - i == 40 || (j < n && class(s[j]) & B64X != 0);
        if self.det.aws_secret_key && b64_run_possible && (i == 0 || !is_b64(s[i - 1])) {
            let mut k = j;
            while k < n && k - i <= 40 && is_b64(s[k]) {
                k += 1;
            }
            if k - i == 40 && (k == n || s[k] != b'=') && aws_secret(&s[i..k]) {
                hits.push(Hit {
                    start: i,
                    end: k,
                    cat: Cat::AWS_SECRET_KEY,
                    alt: false,
                });
                return k;
            }
        }
        j
    }

    /// A run of digit groups starting at `i` (a digit, `+` or `(`): tries
    /// IPv4, SSN, card and phone on the longest prefix of groups first.
    /// Returns the end of the last finding, or `i` when there was none.
    fn numeric(&self, s: &[u8], i: usize, hints: Hints, hits: &mut Vec<Hit>) -> usize {
        let n = s.len();
        if i > 0 {
            let p = s[i - 1];
            if is_word(p) || ((p == b'.' || p == b'-' || p == b'/') && i >= 2 && is_alnum(s[i - 2]))
            {
                return i;
            }
        }
        // Group g is s[gs[g]..ge[g]] (digits only); `sep[g]` describes what
        // came before it: bit mask of separator kinds and its length.
        let mut gs = [0usize; MAX_GROUPS];
        let mut ge = [0usize; MAX_GROUPS];
        let mut paren = [false; MAX_GROUPS];
        let mut sep = [(0u8, 0u8); MAX_GROUPS];
        let mut ng = 0;
        let mut total = 0;
        let mut p = i;
        let plus = s[p] == b'+';
        if plus {
            p += 1;
        }
        let mut cur_sep = (0u8, 0u8);
        loop {
            let mut q = p;
            let open = q < n && s[q] == b'(';
            if open {
                q += 1;
            }
            let ds = q;
            while q < n && is_digit(s[q]) {
                q += 1;
            }
            let len = q - ds;
            if len == 0 || total + len > 19 {
                if ng == 0 {
                    return i;
                }
                break;
            }
            if open {
                if q < n && s[q] == b')' {
                    q += 1;
                } else {
                    break;
                }
            }
            gs[ng] = ds;
            ge[ng] = if open { q - 1 } else { q };
            paren[ng] = open;
            sep[ng] = cur_sep;
            ng += 1;
            total += len;
            p = q;
            if ng == MAX_GROUPS {
                break;
            }
            let mut r = p;
            let mut mask = 0u8;
            while r < n && r - p < 2 {
                match s[r] {
                    b' ' => mask |= 1,
                    b'-' => mask |= 2,
                    b'.' => mask |= 4,
                    _ => break,
                }
                r += 1;
            }
            if r == p && !open {
                break;
            }
            if !(r < n && (is_digit(s[r]) || (s[r] == b'(' && r + 1 < n && is_digit(s[r + 1])))) {
                break;
            }
            cur_sep = (mask, (r - p) as u8);
            p = r;
        }
        // Try prefixes of the groups, longest first; after a finding, go on
        // with the groups that follow it.
        let mut g0 = 0;
        let mut last_end = i;
        let mut plus_here = plus;
        'outer: while g0 < ng {
            let start = if g0 == 0 {
                i
            } else if paren[g0] {
                gs[g0] - 1
            } else {
                gs[g0]
            };
            for k in (g0 + 1..=ng).rev() {
                // Fewer than 7 digits can only be an IPv4 address (4 groups).
                let digits: usize = (g0..k).map(|x| ge[x] - gs[x]).sum();
                if digits < 7 && k - g0 != 4 {
                    continue;
                }
                let end = if paren[k - 1] {
                    ge[k - 1] + 1
                } else {
                    ge[k - 1]
                };
                if end < n && is_word(s[end]) {
                    continue;
                }
                let next_sep = if k < ng { Some(sep[k]) } else { None };
                let g = Groups {
                    s,
                    gs: &gs[g0..k],
                    ge: &ge[g0..k],
                    paren: &paren[g0..k],
                    sep: &sep[g0..k],
                    plus: plus_here,
                    next_sep,
                };
                if let Some(cat) = self.classify(&g, hints) {
                    hits.push(Hit {
                        start,
                        end,
                        cat,
                        alt: false,
                    });
                    last_end = end;
                    g0 = k;
                    plus_here = false;
                    continue 'outer;
                }
            }
            break;
        }
        last_end
    }

    fn classify(&self, g: &Groups<'_>, hints: Hints) -> Option<Cat> {
        let k = g.gs.len();
        let mut digits = [0u8; 20];
        let mut d = 0;
        for (a, b) in g.gs.iter().zip(g.ge) {
            for &c in &g.s[*a..*b] {
                digits[d] = c;
                d += 1;
            }
        }
        let digits = &digits[..d];
        let any_paren = g.paren.iter().any(|&p| p);
        let seps = &g.sep[1..];
        let uniform = |mask: u8| seps.iter().all(|&(m, l)| m == mask && l == 1);
        if !g.plus && !any_paren {
            if self.det.ip
                && k == 4
                && uniform(4)
                && (0..4).all(|x| validate::ipv4_octet(&g.s[g.gs[x]..g.ge[x]]))
            {
                // `1.2.3.4.5` is a version, not an address.
                if g.next_sep.is_none_or(|(m, _)| m & 4 == 0) {
                    return Some(Cat::IP);
                }
            }
            if self.det.ssn {
                let lens_ok = k == 3
                    && g.ge[0] - g.gs[0] == 3
                    && g.ge[1] - g.gs[1] == 2
                    && g.ge[2] - g.gs[2] == 4;
                if ((lens_ok && (uniform(2) || uniform(1))) || (k == 1 && hints.ssn))
                    && validate::ssn(digits)
                {
                    return Some(Cat::SSN);
                }
            }
            if self.det.card
                && (13..=19).contains(&d)
                && (k == 1 || uniform(1) || uniform(2))
                && validate::card(digits)
            {
                return Some(Cat::CARD);
            }
        }
        if !self.det.phone {
            return None;
        }
        if g.plus {
            return ((8..=15).contains(&d) && digits[0] != b'0').then_some(Cat::PHONE);
        }
        if hints.phone && (7..=15).contains(&d) {
            return Some(Cat::PHONE);
        }
        // North American: [1] NXX NXX XXXX in three (or four) groups.
        let lens: [usize; 4] = std::array::from_fn(|x| if x < k { g.ge[x] - g.gs[x] } else { 0 });
        let nanp = match k {
            3 => lens[..3] == [3, 3, 4],
            4 => lens == [1, 3, 3, 4] && digits[0] == b'1',
            _ => false,
        };
        if nanp {
            let area = &digits[d - 10..];
            if (b'2'..=b'9').contains(&area[0]) && (b'2'..=b'9').contains(&area[3]) {
                // A parenthesised group may only be the area code.
                let area_group = k - 3;
                if g.paren
                    .iter()
                    .enumerate()
                    .all(|(x, &p)| !p || x == area_group)
                {
                    return Some(Cat::PHONE);
                }
            }
        }
        None
    }

    fn email(&self, s: &[u8], at: usize, hits: &mut Vec<Hit>) {
        let n = s.len();
        let mut a = at;
        while a > 0 && at - a < 64 && class(s[a - 1]) & (ALNUM | LOCAL) != 0 {
            a -= 1;
        }
        while a < at && !is_alnum(s[a]) {
            a += 1;
        }
        if a == at {
            return;
        }
        let mut b = at + 1;
        while b < n && b - at <= 255 && (is_alnum(s[b]) || s[b] == b'.' || s[b] == b'-') {
            b += 1;
        }
        while b > at + 1 && !is_alnum(s[b - 1]) {
            b -= 1;
        }
        let domain = &s[at + 1..b];
        let mut labels = 0;
        let mut last = &domain[..0];
        for label in domain.split(|&c| c == b'.') {
            if label.is_empty()
                || label.len() > 63
                || label[0] == b'-'
                || label[label.len() - 1] == b'-'
            {
                return;
            }
            labels += 1;
            last = label;
        }
        if labels < 2 || last.len() < 2 || !last.iter().all(u8::is_ascii_alphabetic) {
            return;
        }
        // `icon@2x.png` is a file name.
        let tld = last.to_ascii_lowercase();
        if matches!(
            tld.as_slice(),
            b"png" | b"jpg" | b"jpeg" | b"gif" | b"svg" | b"webp" | b"css" | b"js" | b"ico"
        ) {
            return;
        }
        hits.push(Hit {
            start: a,
            end: b,
            cat: Cat::EMAIL,
            alt: false,
        });
    }

    /// `name = value` or `"name": "value"` in free text, where the name is
    /// password-like: the value is a secret.
    fn assignment(&self, s: &[u8], op: usize, hits: &mut Vec<Hit>) {
        let n = s.len();
        if op + 1 < n && s[op] == b':' && s[op + 1] == b':' {
            return;
        }
        // The name, backwards: spaces, an optional quote, identifier chars.
        let mut e = op;
        while e > 0 && s[e - 1] == b' ' {
            e -= 1;
        }
        if e > 0 && (s[e - 1] == b'"' || s[e - 1] == b'\'') {
            e -= 1;
        }
        let mut a = e;
        while a > 0 && e - a < 64 && (is_word(s[a - 1]) || matches!(s[a - 1], b'-' | b'.')) {
            a -= 1;
        }
        // Names start with a letter or `_` and are at least three long
        // (`pin`); this keeps times (`12:30`) and ports out of the lookup.
        if e - a < 3 || !(s[a].is_ascii_alphabetic() || s[a] == b'_') {
            return;
        }
        let class = self.keys.classify(&s[a..e]);
        let cat = match class {
            KeyClass::Secret if self.det.secret_keys => Cat::SECRET,
            KeyClass::AwsSecret if self.det.aws_secret_key => Cat::AWS_SECRET_KEY,
            KeyClass::Authorization if self.det.credentials => Cat::CREDENTIAL,
            _ => return,
        };
        // The value: spaces, an optional quote, then up to the closing quote
        // or a delimiter.
        let mut v = op + 1;
        while v < n && s[v] == b' ' {
            v += 1;
        }
        let quote = if v < n && (s[v] == b'"' || s[v] == b'\'') {
            v += 1;
            Some(s[v - 1])
        } else {
            None
        };
        let stop = |c: u8| match quote {
            Some(q) => c == q || c == b'\n' || c == b'\\',
            None => matches!(
                c,
                b' ' | b'\t'
                    | b'\r'
                    | b'\n'
                    | b'&'
                    | b';'
                    | b','
                    | b'"'
                    | b'\''
                    | b'<'
                    | b'>'
                    | b')'
                    | b'}'
                    | b']'
            ),
        };
        let mut w = v;
        while w < n && !stop(s[w]) {
            w += 1;
        }
        let mut cat = cat;
        // `Authorization: Bearer xyz`: the credential is the word after the scheme.
        if class == KeyClass::Authorization || quote.is_none() {
            let word = &s[v..w];
            let scheme = if word.eq_ignore_ascii_case(b"bearer") {
                Some(Cat::BEARER)
            } else if word.eq_ignore_ascii_case(b"basic") {
                Some(Cat::BASIC)
            } else {
                None
            };
            if let Some(sc) = scheme {
                if self.det.credentials && w < n && s[w] == b' ' {
                    let mut x = w + 1;
                    while x < n && !stop(s[x]) {
                        x += 1;
                    }
                    if x > w + 1 {
                        v = w + 1;
                        w = x;
                        cat = sc;
                    }
                }
            }
        }
        if w > v {
            hits.push(Hit {
                start: v,
                end: w,
                cat,
                alt: false,
            });
        }
    }
}

/// A candidate run of digit groups, as `numeric` split it.
struct Groups<'a> {
    s: &'a [u8],
    gs: &'a [usize],
    ge: &'a [usize],
    paren: &'a [bool],
    /// Separator before each group (the first one's is meaningless).
    sep: &'a [(u8, u8)],
    plus: bool,
    /// The separator after the last group, when the run goes on.
    next_sep: Option<(u8, u8)>,
}

/// Merges the hits of a second reading (`hits[first_alt..]`, marked `alt`)
/// into those of the first: sorted, without overlaps.
pub(crate) fn merge(hits: &mut Vec<Hit>, first_alt: usize) {
    for h in &mut hits[first_alt..] {
        h.alt = true;
    }
    normalize(hits, 0);
}

/// Sorts hits added since `first` and drops overlaps: the earliest start
/// wins, then the longest, then the most specific category.
fn normalize(hits: &mut Vec<Hit>, first: usize) {
    let tail = &mut hits[first..];
    if tail.len() < 2 {
        return;
    }
    tail.sort_unstable_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then(b.end.cmp(&a.end))
            .then(a.cat.rank().cmp(&b.cat.rank()))
    });
    let mut w = first;
    let mut end = 0;
    for r in first..hits.len() {
        let h = hits[r];
        if w > first && h.start < end {
            // Same span, more specific category: keep the specific one.
            if h.start == hits[w - 1].start
                && h.end == hits[w - 1].end
                && h.cat.rank() < hits[w - 1].cat.rank()
            {
                hits[w - 1] = h;
            }
            continue;
        }
        hits[w] = h;
        end = h.end;
        w += 1;
    }
    hits.truncate(w);
}

fn aws_key_id(w: &[u8]) -> bool {
    let prefix_ok =
        matches!(&w[..4], b"AKIA" | b"ASIA" | b"ABIA" | b"ACCA") || w.starts_with(b"A3T");
    prefix_ok && w.iter().all(|&b| b.is_ascii_uppercase() || is_digit(b))
}

/// 40 characters of base64 with upper, lower and digits, not all hex, and
/// the spread of characters a random key has (a path or a sentence does not).
fn aws_secret(v: &[u8]) -> bool {
    let (mut up, mut low, mut dig) = (false, false, false);
    let mut seen = [0u8; 128];
    let mut distinct = 0;
    for &b in v {
        up |= b.is_ascii_uppercase();
        low |= b.is_ascii_lowercase();
        dig |= is_digit(b);
        let slot = &mut seen[usize::from(b & 0x7f)];
        if *slot == 0 {
            distinct += 1;
        }
        *slot += 1;
    }
    // 40 random draws from 64 symbols give ~30 distinct on average; fewer
    // than 20 is text or a structured identifier.
    up && low && dig && distinct >= 20 && v[0] != b'/'
}

/// `eyJ….….…`: header and payload segments, an optional signature (and up
/// to two more segments for JWE). Returns the end.
fn jwt(s: &[u8], i: usize) -> Option<usize> {
    let n = s.len();
    let seg = |mut k: usize| {
        let a = k;
        while k < n && is_b64url(s[k]) {
            k += 1;
        }
        (a, k)
    };
    let (_, h) = seg(i);
    if h - i < 10 || h >= n || s[h] != b'.' {
        return None;
    }
    let (pa, pe) = seg(h + 1);
    if pe - pa < 2 {
        return None;
    }
    let mut end = pe;
    let mut segs = 2;
    while end < n && s[end] == b'.' && segs < 5 {
        let (_, e) = seg(end + 1);
        end = e;
        segs += 1;
    }
    if segs < 3 {
        return None;
    }
    Some(end)
}

/// IBAN at a word `s[i..j]` that starts with two capitals and two digits:
/// compact, or printed in groups of four separated by single spaces.
fn iban(s: &[u8], i: usize, j: usize) -> Option<usize> {
    let w = &s[i..j];
    if (15..=34).contains(&w.len()) && validate::iban(w) {
        return Some(j);
    }
    if w.len() != 4 {
        return None;
    }
    let n = s.len();
    let mut compact = [0u8; 34];
    compact[..4].copy_from_slice(w);
    let mut len = 4;
    let mut end = j;
    let mut best = None;
    while end + 1 < n && s[end] == b' ' && is_alnum(s[end + 1]) {
        let a = end + 1;
        let mut b = a;
        while b < n && is_alnum(s[b]) {
            b += 1;
        }
        let g = b - a;
        if g > 4 || len + g > 34 {
            break;
        }
        compact[len..len + g].copy_from_slice(&s[a..b]);
        len += g;
        end = b;
        if len >= 15 && validate::iban(&compact[..len]) {
            best = Some(end);
        }
        if g < 4 {
            break;
        }
    }
    best
}

/// An IPv6 address starting at `i` (a hex digit or `::`).
fn ipv6(s: &[u8], i: usize) -> Option<usize> {
    let n = s.len();
    let mut k = i;
    let mut colons = 0;
    while k < n && k - i < 45 && (class(s[k]) & HEX != 0 || s[k] == b':' || s[k] == b'.') {
        colons += usize::from(s[k] == b':');
        k += 1;
    }
    while k > i && (s[k - 1] == b'.' || (s[k - 1] == b':' && !(k >= 2 && s[k - 2] == b':'))) {
        k -= 1;
    }
    if colons < 2 || (k < n && is_word(s[k])) {
        return None;
    }
    let text = std::str::from_utf8(&s[i..k]).ok()?;
    let addr: std::net::Ipv6Addr = text.parse().ok()?;
    // `::` alone (the unspecified address) says nothing about anyone.
    if addr.is_unspecified() {
        return None;
    }
    Some(k)
}

/// End of a PEM private-key block that starts at `i` (`-----BEGIN `), or
/// `None` when the block is not a private key. A block cut off by the
/// capture limit runs to the end of the buffer.
fn pem_end(s: &[u8], i: usize) -> Option<usize> {
    let label_start = i + 11;
    let rest = &s[label_start..];
    let close = memchr::memmem::find(&rest[..rest.len().min(80)], b"-----")?;
    let label = &rest[..close];
    memchr::memmem::find(label, b"PRIVATE KEY")?;
    let body = label_start + close + 5;
    match memchr::memmem::find(&s[body..], b"-----END ") {
        Some(e) => {
            let after = body + e + 9;
            let tail = &s[after..];
            match memchr::memmem::find(&tail[..tail.len().min(80)], b"-----") {
                Some(c) => Some(after + c + 5),
                None => Some(s.len()),
            }
        }
        None => Some(s.len()),
    }
}

/// Every combination of hints a field name can give, for the checks below.
pub(crate) const EVERY_HINT: [Hints; 3] = [
    Hints::NONE,
    Hints {
        phone: true,
        ssn: false,
    },
    Hints {
        phone: false,
        ssn: true,
    },
];

/// Checks [`Scanner::whole_number`] against [`Scanner::scan`] on a run of
/// digits, and returns what both found.
pub(crate) fn check_whole_number(sc: &Scanner, digits: &[u8], hints: Hints) -> Option<Cat> {
    let mut hits = Vec::new();
    let want = sc.scan_whole(digits, hints, &mut hits);
    let got = sc.whole_number(digits, hints, &mut hits);
    assert_eq!(
        got,
        want,
        "{:?} under {hints:?}",
        String::from_utf8_lossy(digits)
    );
    assert!(
        got.is_none() || sc.whole_number_may_match(digits, hints),
        "{:?} under {hints:?} is {got:?}, but was ruled out",
        String::from_utf8_lossy(digits)
    );
    got
}

/// Checks `might_match_given` against `scan` on one text, under every
/// hint, `is_timestamp` without hints, and `whole_number` on a text of
/// digits: returns whether the text held a finding and whether the quick
/// reading ruled it out. Panics when any of them disagrees with `scan`, or
/// when the vector quick reading or the word-at-a-time `is_timestamp`
/// disagrees with its bytewise reference.
pub(crate) fn check_quick_reading(sc: &Scanner, s: &[u8]) -> (bool, bool) {
    let any_cand = s.iter().any(|&b| is_cand(b));
    let ruled_out = !sc.might_match_given(s, any_cand);
    if s.len() < 40 {
        // The vector reading, alone and inside a longer text whose bytes
        // around the span would change the answer if they were counted.
        let want = content_may_match_bytewise(s);
        assert_eq!(
            content_may_match_in(s, 0, s.len()),
            want,
            "{:?}",
            String::from_utf8_lossy(s)
        );
        let mut doc = b"AK@".to_vec();
        doc.extend_from_slice(s);
        doc.extend_from_slice(b"-1234@(:AKIA-------------------------------------------");
        assert_eq!(
            content_may_match_in(&doc, 3, 3 + s.len()),
            want,
            "{:?} within a longer text",
            String::from_utf8_lossy(s)
        );
    }
    let mut found = false;
    let mut hits = Vec::new();
    assert_eq!(
        is_timestamp(s),
        is_timestamp_bytewise(s),
        "{:?}",
        String::from_utf8_lossy(s)
    );
    if is_timestamp(s) {
        sc.scan(s, Hints::NONE, &mut hits);
        assert!(
            hits.is_empty(),
            "timestamp {:?} holds {hits:?}",
            String::from_utf8_lossy(s)
        );
    }
    for hints in EVERY_HINT {
        if !s.is_empty() && s.iter().all(u8::is_ascii_digit) {
            check_whole_number(sc, s, hints);
        }
        hits.clear();
        sc.scan(s, hints, &mut hits);
        found |= !hits.is_empty();
        assert!(
            hits.is_empty() || !ruled_out,
            "{:?} holds {hits:?} under {hints:?}, but the quick reading ruled it out",
            String::from_utf8_lossy(s)
        );
    }
    (found, ruled_out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn scanner() -> Scanner {
        let keys: Vec<String> = crate::keys::DEFAULT_SECRET_KEYS
            .iter()
            .map(|s| s.to_string())
            .collect();
        Scanner {
            det: Detectors {
                email: true,
                phone: true,
                card: true,
                ssn: true,
                iban: true,
                ip: true,
                jwt: true,
                aws_access_key: true,
                aws_secret_key: true,
                google_api_key: true,
                credentials: true,
                private_key: true,
                secret_keys: true,
            },
            keys: KeyMatcher::new(&keys, true, true, true, true),
            custom: Vec::new(),
        }
    }

    fn found(text: &str, hints: Hints) -> Vec<(String, &'static str)> {
        let mut hits = Vec::new();
        scanner().scan(text.as_bytes(), hints, &mut hits);
        hits.iter()
            .map(|h| {
                (
                    text[h.start..h.end].to_string(),
                    crate::category::BUILTIN_NAMES[h.cat.0 as usize],
                )
            })
            .collect()
    }

    fn one(text: &str) -> Vec<(String, &'static str)> {
        found(text, Hints::NONE)
    }

    fn is(text: &str, value: &str, cat: &'static str) {
        let f = one(text);
        assert!(
            f.iter().any(|(v, c)| v == value && *c == cat),
            "{text:?}: expected {value:?} as {cat}, found {f:?}"
        );
    }

    fn none(text: &str) {
        let f = one(text);
        assert!(f.is_empty(), "{text:?}: expected nothing, found {f:?}");
    }

    #[test]
    fn the_quick_reading_never_rules_out_a_finding() {
        // Random texts of near-miss pieces and bytes that matter to some
        // detector, cut at random places, up to just past 40 bytes.
        const PIECES: &[&str] = &[
            "4242 4242 4242 4242",
            "4242-4242-4242-4242",
            "4242424242424242",
            "+44 20 7946 0958",
            "+14155550100",
            "(415) 555-0100",
            "415.555.0100",
            "1-800-555-0199",
            "4155550100",
            "123-45-6789",
            "123 45 6789",
            "123456789",
            "GB82WEST12345698765432",
            "GB82 WEST 1234",
            "DE89370400440532013000",
            "192.168.1.1",
            "10.0.0.1",
            "1.2.3.4.5",
            "::1",
            "fe80::1",
            "2001:db8::8a2e:370:7334",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
            "AKIAIOSFODNN7EXAMPLE",
            "ASIA1234567890ABCDEF",
            "A3T1234567890ABCDEFG",
            "AIzaSyA-1234567890abcdefghijklmnopqrstu",
            "alice@example.com",
            "password=hunter2",
            "token: abc",
            "pin=1234",
            "Authorization: Bearer x",
            "-----BEGIN PRIVATE KEY-----",
            "2026-05-12T13:22:11.123Z",
            "v1.2.3",
            "ord_7f3a9c0e",
            "SKU-123456",
            "cus_AbC123",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "1700000000000",
            "12:30",
        ];
        const BYTES: &[u8] = b"0123456789 -.()+@:=/_AKISBCJ3eyzaXQwb\"'Tx";
        let sc = scanner();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut findings, mut ruled_out) = (0, 0);
        for _ in 0..100_000 {
            let mut t = Vec::new();
            let want = (next() % 44) as usize;
            while t.len() < want {
                if next() % 3 == 0 {
                    let p = PIECES[(next() % PIECES.len() as u64) as usize].as_bytes();
                    let from = (next() % 3) as usize % p.len();
                    let to = p.len() - (next() % 3) as usize % (p.len() - from);
                    t.extend_from_slice(&p[from..to]);
                } else {
                    t.push(BYTES[(next() % BYTES.len() as u64) as usize]);
                }
            }
            let (f, r) = check_quick_reading(&sc, &t);
            findings += usize::from(f);
            ruled_out += usize::from(r);
        }
        // Not vacuous: many texts held findings, many were ruled out.
        assert!(
            findings > 10_000 && ruled_out > 10_000,
            "{findings} {ruled_out}"
        );
    }

    #[test]
    fn whole_numbers_read_as_scan_reads_them() {
        // Random digit runs of every length around the detectors' bounds,
        // with card, phone and SSN prefixes and valid check digits often
        // enough that every category turns up.
        let sc = scanner();
        let mut x = 0x5851_f42d_4c95_7f2du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200_000 {
            let n = 1 + (next() % 22) as usize;
            let prefix: &[u8] = match next() % 6 {
                0 => b"4",
                1 => b"51",
                2 => b"2221",
                3 => b"1415",
                4 => b"078",
                _ => b"",
            };
            let mut t: Vec<u8> = prefix.iter().copied().take(n).collect();
            while t.len() < n {
                t.push(b'0' + (next() % 10) as u8);
            }
            if next() % 2 == 0 {
                // Make the Luhn sum come out right.
                for d in 0..10u8 {
                    let last = t.len() - 1;
                    t[last] = b'0' + d;
                    if crate::validate::card(&t) {
                        break;
                    }
                }
            }
            for hints in EVERY_HINT {
                let got = check_whole_number(&sc, &t, hints);
                if let Some(c) = got {
                    seen.insert(c.0);
                }
            }
        }
        // Not vacuous: cards, phones and SSNs were all recognised.
        assert!(seen.len() >= 3, "{seen:?}");
    }

    #[test]
    fn timestamps_are_recognised_exactly() {
        for t in [
            "2026-05-12",
            "2026-05-12T13:22Z",
            "2026-05-12T13:22:11Z",
            "2026-05-12T13:22:11.1Z",
            "2026-05-12T13:22:11.123456789Z",
            "2026-05-12T13:22:11+02:00",
            "2026-05-12T13:22:11.123-07:30",
        ] {
            assert!(is_timestamp(t.as_bytes()), "{t}");
        }
        for t in [
            "",
            "2026-05-1",
            "2026-05-12 13:22:11",
            "2026-05-12T13:22:11",
            "2026-05-12T13:22:11.Z",
            "2026-05-12T13:22:11.1234567890Z",
            "2026-05-12T13:22:11+0200",
            "2026-05-12T13:22:11ZZ",
            "x2026-05-12",
            "2026-05-12x",
            "202-605-1200",
        ] {
            assert!(!is_timestamp(t.as_bytes()), "{t}");
        }
    }

    #[test]
    fn timestamps_never_hold_findings() {
        // Every shape `is_timestamp` accepts, with random digits (so some
        // groups look like card, phone or IPv4 pieces).
        let sc = scanner();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let digits = |k: usize, next: &mut dyn FnMut(u64) -> u64| -> String {
            (0..k).map(|_| char::from(b'0' + next(10) as u8)).collect()
        };
        let mut seen = 0;
        for _ in 0..50_000 {
            let mut t = format!(
                "{}-{}-{}",
                digits(4, &mut next),
                digits(2, &mut next),
                digits(2, &mut next)
            );
            if next(4) > 0 {
                t += &format!("T{}:{}", digits(2, &mut next), digits(2, &mut next));
                if next(3) > 0 {
                    t += &format!(":{}", digits(2, &mut next));
                    if next(2) > 0 {
                        let n = 1 + next(9) as usize;
                        t += &format!(".{}", digits(n, &mut next));
                    }
                }
                match next(3) {
                    0 => t.push('Z'),
                    1 => t += &format!("+{}:{}", digits(2, &mut next), digits(2, &mut next)),
                    _ => t += &format!("-{}:{}", digits(2, &mut next), digits(2, &mut next)),
                }
            }
            assert!(is_timestamp(t.as_bytes()), "{t}");
            check_quick_reading(&sc, t.as_bytes());
            // Near misses: one byte changed, or the text cut short or made
            // longer; the word-at-a-time reading must agree with the
            // bytewise one (`check_quick_reading` compares them).
            let mut m = t.clone().into_bytes();
            const SWAP: &[u8] = b"0123456789-:.TZ+ tz/\xff";
            match next(3) {
                0 => {
                    let k = next(m.len() as u64) as usize;
                    m[k] = SWAP[next(SWAP.len() as u64) as usize];
                }
                1 => m.truncate(next(m.len() as u64) as usize),
                _ => m.insert(
                    next(m.len() as u64 + 1) as usize,
                    SWAP[next(SWAP.len() as u64) as usize],
                ),
            }
            check_quick_reading(&sc, &m);
            seen += 1;
        }
        assert_eq!(seen, 50_000);
    }

    #[test]
    fn emails() {
        is("mail alice@example.com now", "alice@example.com", "EMAIL");
        is(
            "<bob.smith+tag@mail.example.co.uk>.",
            "bob.smith+tag@mail.example.co.uk",
            "EMAIL",
        );
        is("a@b.io", "a@b.io", "EMAIL");
        none("user@localhost");
        none("@types/node");
        none("icon@2x.png");
        none("foo@-bad.com");
        none("x@y.c");
    }

    #[test]
    fn phones() {
        is("call +1 415-555-0100.", "+1 415-555-0100", "PHONE");
        is("+14155550100", "+14155550100", "PHONE");
        is("+44 20 7946 0958", "+44 20 7946 0958", "PHONE");
        is("+49 (30) 901820", "+49 (30) 901820", "PHONE");
        is("(415) 555-0100", "(415) 555-0100", "PHONE");
        is("tel 415-555-0100", "415-555-0100", "PHONE");
        is("415.555.0100", "415.555.0100", "PHONE");
        is("1-800-555-0199", "1-800-555-0199", "PHONE");
        is("415 555 0100 and 212-555-0111", "212-555-0111", "PHONE");
        is("415 555 0100 and 212-555-0111", "415 555 0100", "PHONE");
        // Bare digits are a phone only under a phone-like key.
        none("4155550100");
        assert_eq!(
            found(
                "4155550100",
                Hints {
                    phone: true,
                    ssn: false
                }
            ),
            vec![("4155550100".into(), "PHONE")]
        );
        none("+123");
        none("call 155-555-0100"); // area code cannot start with 1
        none("2024-11-20");
        none("12:30:45");
    }

    #[test]
    fn cards() {
        is(
            "card 4242 4242 4242 4242 exp",
            "4242 4242 4242 4242",
            "CARD",
        );
        is("4242-4242-4242-4242", "4242-4242-4242-4242", "CARD");
        is("x=5555555555554444;", "5555555555554444", "CARD");
        is("2223003122003222", "2223003122003222", "CARD");
        is("378282246310005", "378282246310005", "CARD");
        is("6205500000000000004", "6205500000000000004", "CARD");
        none("4242424242424241");
        none("1732111387512");
        none("4242 4242-4242 4242");
        none("ORD-4242424242424242");
        none("id4242424242424242");
    }

    #[test]
    fn ssns() {
        is("ssn 123-45-6789.", "123-45-6789", "SSN");
        is("123 45 6789", "123 45 6789", "SSN");
        none("000-12-3456");
        none("666-12-3456");
        none("912-12-3456");
        none("123-00-4567");
        none("123-45-0000");
        none("123456789");
        assert_eq!(
            found(
                "123456789",
                Hints {
                    phone: false,
                    ssn: true
                }
            ),
            vec![("123456789".into(), "SSN")]
        );
    }

    #[test]
    fn ibans() {
        is(
            "IBAN GB82WEST12345698765432 ok",
            "GB82WEST12345698765432",
            "IBAN",
        );
        is(
            "GB82 WEST 1234 5698 7654 32",
            "GB82 WEST 1234 5698 7654 32",
            "IBAN",
        );
        is(
            "DE89 3704 0044 0532 0130 00.",
            "DE89 3704 0044 0532 0130 00",
            "IBAN",
        );
        none("GB83WEST12345698765432");
        none("GB82 WEST 1234 5698 7654 33");
    }

    #[test]
    fn ips() {
        is("from 203.0.113.7:443", "203.0.113.7", "IP");
        is("ip=10.0.0.1", "10.0.0.1", "IP");
        is("[2001:db8::8a2e:370:7334]", "2001:db8::8a2e:370:7334", "IP");
        is("addr ::1 end", "::1", "IP");
        is("fe80::1ff:fe23:4567:890a", "fe80::1ff:fe23:4567:890a", "IP");
        is("::ffff:192.0.2.128", "::ffff:192.0.2.128", "IP");
        none("version 1.2.3.4.5");
        none("v1.2.3.4");
        none("256.1.1.1");
        none("01.2.3.4");
        none("1.2.3");
        none("00:1a:2b:3c:4d:5e");
        none("std::vec::Vec");
        none("at 14:03:07Z");
    }

    #[test]
    fn tokens_and_keys() {
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        is(&format!("t={jwt}&x"), jwt, "JWT");
        is(
            "key AKIAIOSFODNN7EXAMPLE.",
            "AKIAIOSFODNN7EXAMPLE",
            "AWS_ACCESS_KEY",
        );
        none("AKIAIOSFODNN7EXAMPL");
        is(
            "k: AIzaSyA1234567890abcdefghijklmnopqrstuv!",
            "AIzaSyA1234567890abcdefghijklmnopqrstuv",
            "GOOGLE_API_KEY",
        );
        is(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY end",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "AWS_SECRET_KEY",
        );
        none("/api/v1/customers/12345/orders/67890/items");
        none("da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }

    #[test]
    fn pem_blocks() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----";
        is(&format!("key:\n{pem}\nrest"), pem, "PRIVATE_KEY");
        none("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
        let cut = "-----BEGIN PRIVATE KEY-----\nMIIE";
        is(cut, cut, "PRIVATE_KEY");
    }

    #[test]
    fn assignments() {
        is("password=hunter2&next=1", "hunter2", "SECRET");
        is(
            r#"{"client_secret": "s3cr3t value"}"#,
            "s3cr3t value",
            "SECRET",
        );
        is("Authorization: Bearer abc.def", "abc.def", "BEARER");
        is("api_key: 'xyz'", "xyz", "SECRET");
        none("time: 12h");
        none("token_type=bearer");
    }

    #[test]
    fn overlaps_keep_the_longest() {
        assert_eq!(
            one("4155550100@example.com"),
            vec![("4155550100@example.com".into(), "EMAIL")]
        );
    }
}

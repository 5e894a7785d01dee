//! Field names that say what their value is: password-like keys whose values
//! are redacted whole, and keys that make a bare number a phone or an SSN.
//!
//! Names are compared after normalisation: ASCII lower case, with `_`, `-`,
//! `.` and spaces removed, so `api_key`, `apiKey`, `API-KEY` and `x-api-key`
//! all read as `apikey` / `xapikey`. Patterns are that normal form with an
//! optional `*` at either end (`*token` = ends with `token`).

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

/// What a field name says about its value. Higher variants win when a name
/// matches several patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum KeyClass {
    /// Nothing special: values are scanned like any text.
    None,
    /// Bare 7–15 digit numbers are phone numbers.
    Phone,
    /// Bare 9-digit numbers are SSNs.
    Ssn,
    /// The whole value is a secret (configurable list).
    Secret,
    /// The value is an HTTP credential (`Bearer …`, `Basic …`).
    Authorization,
    /// The value is an AWS secret access key.
    AwsSecret,
}

/// The password-like keys used when the configuration does not replace them.
pub const DEFAULT_SECRET_KEYS: &[&str] = &[
    "*password*",
    "*passwd*",
    "pwd",
    "*secret*",
    "*token",
    "*apikey",
    "apikey*",
    "*privatekey",
    "*credentials",
    "*sessionid",
    "cvv",
    "cvv2",
    "cvc",
    "pin",
    "otp",
];

const AWS_SECRET_KEYS: &[&str] = &["*secretaccesskey*", "awssecret*", "*awssecretkey*"];
const AUTHORIZATION_KEYS: &[&str] = &["authorization", "proxyauthorization"];
const SSN_KEYS: &[&str] = &["*ssn", "*socialsecurity*"];
const PHONE_KEYS: &[&str] = &[
    "*phone*",
    "*mobile*",
    "tel",
    "*telnumber",
    "*msisdn*",
    "fax",
    "*faxnumber",
    "cell",
    "*cellnumber",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    Exact,
    Prefix,
    Suffix,
    Contains,
}

/// Why a key pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatternError {
    Empty,
    InnerStar,
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PatternError::Empty => {
                f.write_str("is empty once `*`, `_`, `-`, `.` and spaces are removed")
            }
            PatternError::InnerStar => f.write_str("may have `*` only at its start or end"),
        }
    }
}

fn parse_pattern(p: &str) -> Result<(Anchor, Vec<u8>), PatternError> {
    let lead = p.starts_with('*');
    let trail = p.len() > 1 && p.ends_with('*');
    let core = &p[usize::from(lead)..p.len() - usize::from(trail)];
    if core.contains('*') {
        return Err(PatternError::InnerStar);
    }
    let mut lit = Vec::with_capacity(core.len());
    normalize_into(core.as_bytes(), &mut lit);
    if lit.is_empty() {
        return Err(PatternError::Empty);
    }
    let anchor = match (lead, trail) {
        (false, false) => Anchor::Exact,
        (false, true) => Anchor::Prefix,
        (true, false) => Anchor::Suffix,
        (true, true) => Anchor::Contains,
    };
    Ok((anchor, lit))
}

/// Checks one configured key pattern; the message says what is wrong.
pub(crate) fn check_pattern(p: &str) -> Result<(), PatternError> {
    parse_pattern(p).map(|_| ())
}

fn normalize_into(key: &[u8], out: &mut Vec<u8>) {
    out.extend(
        key.iter()
            .filter(|b| !matches!(b, b'_' | b'-' | b'.' | b' '))
            .map(u8::to_ascii_lowercase),
    );
}

/// Names longer than this are classified without the cache.
const CACHED_KEY_LEN: usize = 24;
const CACHE_SLOTS: usize = 512;

#[derive(Clone, Copy)]
struct Slot {
    owner: u64,
    len: u8,
    key: [u8; CACHED_KEY_LEN],
    class: KeyClass,
}

thread_local! {
    /// Recently classified names, per thread: payloads repeat their field
    /// names (arrays of records, one API's exchanges), and classifying is
    /// the costliest per-name step. Entries carry the matcher's id, so
    /// matchers with different lists never see each other's answers.
    static CACHE: std::cell::RefCell<Box<[Slot; CACHE_SLOTS]>> = std::cell::RefCell::new(Box::new(
        [Slot { owner: 0, len: 0, key: [0; CACHED_KEY_LEN], class: KeyClass::None }; CACHE_SLOTS],
    ));
}

/// Name slots of [`KeyCache`]; a power of two.
const DOC_SLOTS: usize = 512;
/// All slots of [`KeyCache`]: names, and what stands before first names. A
/// power of two, so that any `u16` masked to it is an index.
const TABLE: usize = 2 * DOC_SLOTS;
/// The "previous name" of an object's first name, when the object is not
/// under a cached name (the document's top level, or an escaped name). It
/// shares its slot with the first names under name `DOC_SLOTS - 1`: a slot
/// before first names only suggests names, which the walker checks against
/// the bytes, so sharing one costs at worst a prediction.
pub(crate) const NO_SLOT: u16 = (TABLE - 1) as u16;

#[derive(Debug, Clone, Copy)]
pub(crate) struct DocSlot {
    /// Written for the current document (see [`KeyCache::give_back`]).
    used: bool,
    hash: u64,
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) class: KeyClass,
    /// The name holds no byte that can start a finding (see `json::Walker`),
    /// so it may be taken on prediction. Never set for the slots that stand
    /// before first names, nor for empty slots.
    pub(crate) plain: bool,
    /// The slots of the names that followed this one the last two times
    /// they differed (`id` is followed by one name in an order and by
    /// another in its customer).
    next: [u16; 2],
    /// For names shorter than 16 bytes, the name and its closing quote as
    /// the low bytes of a little-endian word, and the mask of those bytes
    /// (zero for longer names): see [`DocSlot::stands_at`]. When the name
    /// was first seen followed by `:` and is shorter than 15 bytes, the
    /// colon too (`colon`).
    head: u128,
    mask: u128,
    /// `head` ends with the colon after the name.
    pub(crate) colon: bool,
}

impl DocSlot {
    /// Whether this name and its closing quote stand at `doc[a..]`: if so,
    /// the position after the quote, or after the colon that follows it
    /// when the colon was compared too (the `bool`).
    #[inline]
    pub(crate) fn stands_at(&self, doc: &[u8], a: usize) -> Option<(usize, bool)> {
        let n = self.end - self.start;
        // One 16-byte compare instead of a call to `memcmp`.
        if let Some(w) = doc.get(a..).and_then(<[u8]>::first_chunk::<16>) {
            if self.mask != 0 {
                let hit = u128::from_le_bytes(*w) & self.mask == self.head;
                return hit.then_some((a + n + 1 + usize::from(self.colon), self.colon));
            }
        }
        let hit = doc.get(a + n) == Some(&b'"') && same(doc, (self.start, self.end), (a, a + n));
        hit.then_some((a + n + 1, false))
    }

    /// `head`, `mask` and `colon` for the name `doc[a..b]`. In compact
    /// JSON the colon follows the closing quote: comparing it along with
    /// the name spares the walker a look for it.
    fn head(doc: &[u8], (a, b): (usize, usize)) -> (u128, u128, bool) {
        let n = b - a;
        if n >= 16 {
            return (0, 0, false);
        }
        let mut w = [0u8; 16];
        w[..n].copy_from_slice(&doc[a..b]);
        w[n] = b'"';
        let colon = n < 15 && doc.get(b + 1) == Some(&b':');
        if colon {
            w[n + 1] = b':';
        }
        let len = n + 1 + usize::from(colon);
        let mask = u128::MAX >> (8 * (16 - len));
        (u128::from_le_bytes(w), mask, colon)
    }
}

const EMPTY: DocSlot = DocSlot {
    used: false,
    hash: 0,
    start: 0,
    end: 0,
    class: KeyClass::None,
    plain: false,
    next: [NO_SLOT; 2],
    head: 0,
    mask: 0,
    colon: false,
};

thread_local! {
    /// One cache per thread, reused from document to document: clearing or
    /// allocating 1,024 slots per document would cost small bodies more than
    /// the cache saves them. Only the slots a document wrote are cleared.
    static DOC_CACHE: std::cell::Cell<Option<KeyCache>> = const { std::cell::Cell::new(None) };
}

/// Field names already classified in one document, found by their raw bytes
/// in it. A payload repeats its names (arrays of records), and even the
/// per-thread cache costs a copy, a hash and a thread-local access per name.
/// Here the walker first tries the names that followed the previous name
/// before (for an object's first name: the first names of earlier objects
/// under the same parent name), and checks them against the bytes in place.
///
/// Slots `0..DOC_SLOTS` hold names; slot `DOC_SLOTS + p` stands before the
/// first name of objects under name `p`, and `NO_SLOT` (which is one of
/// them) before the first name of objects under no name. Entries are spans
/// of one document: the slots a document wrote are emptied when it hands
/// the cache back, so the walker reads a slot without asking which document
/// wrote it.
#[derive(Debug)]
pub(crate) struct KeyCache {
    slots: Box<[DocSlot; TABLE]>,
    /// The slots written since [`KeyCache::take`] (maybe some twice).
    written: Vec<u16>,
}

impl KeyCache {
    /// The calling thread's cache, ready for a new document. Hand it back
    /// with [`KeyCache::give_back`].
    pub(crate) fn take() -> Self {
        DOC_CACHE.take().unwrap_or_else(|| Self {
            slots: Box::new([EMPTY; TABLE]),
            written: Vec::new(),
        })
    }

    /// Empties the slots this document wrote and returns the cache to the
    /// thread for its next document. (A cache that is not handed back, after
    /// a panic, is dropped: the next document starts with a new one.)
    pub(crate) fn give_back(mut self) {
        for i in self.written.drain(..) {
            self.slots[usize::from(i) % TABLE] = EMPTY;
        }
        DOC_CACHE.set(Some(self));
    }

    /// What stands before the first name of an object under name `parent`.
    pub(crate) fn first_of(parent: u16) -> u16 {
        if usize::from(parent) < DOC_SLOTS {
            parent + DOC_SLOTS as u16
        } else {
            NO_SLOT
        }
    }

    /// Slot `i`; indices past the table wrap around (there are none).
    #[inline(always)]
    fn slot(&self, i: u16) -> &DocSlot {
        // The mask lets the compiler drop the bounds check.
        &self.slots[usize::from(i) % TABLE]
    }

    #[inline(always)]
    fn slot_mut(&mut self, i: u16) -> &mut DocSlot {
        &mut self.slots[usize::from(i) % TABLE]
    }

    /// The slots of the names expected after `prev`, likeliest first.
    #[inline(always)]
    pub(crate) fn successors(&self, prev: u16) -> [u16; 2] {
        // An empty slot expects `NO_SLOT`, which holds no name.
        self.slot(prev).next
    }

    /// The name in slot `i`, if this document has it there and it may be
    /// taken on prediction (it is `plain`).
    #[inline(always)]
    pub(crate) fn predicted(&self, i: u16) -> Option<&DocSlot> {
        Some(self.slot(i)).filter(|s| s.plain)
    }

    /// The class of the name `doc[a..b]` (raw, without escapes) and its
    /// slot; `prev` is what stands before it (see the type's docs).
    pub(crate) fn classify(
        &mut self,
        m: &KeyMatcher,
        doc: &[u8],
        (a, b): (usize, usize),
        plain: bool,
        prev: u16,
    ) -> (KeyClass, u16) {
        let h = raw_hash(&doc[a..b]);
        // Two-way: a name lives in one of two neighbouring slots, so that two
        // names of one object that hash alike do not evict each other.
        let home = (h >> 55) as usize % DOC_SLOTS;
        let hit = [home, home ^ 1].into_iter().find(|&i| {
            let s = &self.slots[i];
            s.used && s.hash == h && same(doc, (s.start, s.end), (a, b))
        });
        let (idx, class) = match hit {
            Some(i) => (i, self.slots[i].class),
            None => {
                let class = m.classify_cached(&doc[a..b]);
                let i = if self.slots[home].used && !self.slots[home ^ 1].used {
                    home ^ 1
                } else {
                    home
                };
                let (head, mask, colon) = DocSlot::head(doc, (a, b));
                self.slots[i] = DocSlot {
                    used: true,
                    hash: h,
                    start: a,
                    end: b,
                    class,
                    plain,
                    next: [NO_SLOT; 2],
                    head,
                    mask,
                    colon,
                };
                // Slot indices are below DOC_SLOTS (512).
                self.written.push(i as u16);
                (i, class)
            }
        };
        // Slot indices are below DOC_SLOTS (512).
        let idx = idx as u16;
        let p = self.slot_mut(prev);
        if !p.used {
            *p = DocSlot {
                used: true,
                ..EMPTY
            };
            self.written.push(prev);
        }
        let p = self.slot_mut(prev);
        if p.next[0] != idx {
            p.next = [idx, p.next[0]];
        }
        (class, idx)
    }
}

/// `doc[x]` and `doc[y]` hold the same bytes.
#[inline(always)]
pub(crate) fn same(doc: &[u8], x: (usize, usize), y: (usize, usize)) -> bool {
    x.1 - x.0 == y.1 - y.0 && doc.get(x.0..x.1) == doc.get(y.0..y.1)
}

/// A hash of a name, to pick its slot (equality is checked on the bytes).
/// Only names that were not predicted get here.
fn raw_hash(key: &[u8]) -> u64 {
    key.iter()
        .fold(key.len() as u64, |h, &c| {
            (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3)
        })
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Classifies field names against every key pattern in one automaton pass.
#[derive(Debug, Clone)]
pub(crate) struct KeyMatcher {
    /// Identity for the per-thread cache (clones share it: same lists).
    id: u64,
    ac: Option<AhoCorasick>,
    /// Per automaton pattern: anchors and classes that use that literal.
    rules: Vec<Vec<(Anchor, KeyClass)>>,
}

impl KeyMatcher {
    /// Builds the matcher from the secret key list (already validated) plus
    /// the built-in context keys whose detectors are on.
    pub(crate) fn new(
        secret_keys: &[String],
        phone: bool,
        ssn: bool,
        aws: bool,
        auth: bool,
    ) -> Self {
        let mut lits: Vec<Vec<u8>> = Vec::new();
        let mut rules: Vec<Vec<(Anchor, KeyClass)>> = Vec::new();
        let mut add = |p: &str, class: KeyClass| {
            let Ok((anchor, lit)) = parse_pattern(p) else {
                return;
            };
            match lits.iter().position(|l| *l == lit) {
                Some(i) => rules[i].push((anchor, class)),
                None => {
                    lits.push(lit);
                    rules.push(vec![(anchor, class)]);
                }
            }
        };
        for p in secret_keys {
            add(p, KeyClass::Secret);
        }
        let builtin: [(&[&str], KeyClass, bool); 4] = [
            (AWS_SECRET_KEYS, KeyClass::AwsSecret, aws),
            (AUTHORIZATION_KEYS, KeyClass::Authorization, auth),
            (SSN_KEYS, KeyClass::Ssn, ssn),
            (PHONE_KEYS, KeyClass::Phone, phone),
        ];
        for (list, class, on) in builtin {
            if on {
                for p in list {
                    add(p, class);
                }
            }
        }
        let ac = if lits.is_empty() {
            None
        } else {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .kind(Some(AhoCorasickKind::DFA))
                .prefilter(false)
                .build(&lits)
                .ok()
        };
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self { id, ac, rules }
    }

    /// As [`KeyMatcher::classify`], through a small per-thread cache.
    pub(crate) fn classify_cached(&self, key: &[u8]) -> KeyClass {
        if key.len() > CACHED_KEY_LEN || key.is_empty() {
            return self.classify(key);
        }
        let mut buf = [0u8; CACHED_KEY_LEN];
        buf[..key.len()].copy_from_slice(key);
        let mut h = (key.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.id;
        for chunk in buf.chunks_exact(8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
        let idx = (h >> 40) as usize % CACHE_SLOTS;
        let hit = CACHE.with(|c| {
            let c = c.borrow();
            let slot = &c[idx];
            (slot.owner == self.id && usize::from(slot.len) == key.len() && slot.key == buf)
                .then_some(slot.class)
        });
        if let Some(class) = hit {
            return class;
        }
        let class = self.classify(key);
        CACHE.with(|c| {
            c.borrow_mut()[idx] = Slot {
                owner: self.id,
                // Cached keys are at most 24 bytes long.
                len: key.len() as u8,
                key: buf,
                class,
            };
        });
        class
    }

    /// What the field name `key` (raw, as in the payload) says about its value.
    pub(crate) fn classify(&self, key: &[u8]) -> KeyClass {
        let Some(ac) = &self.ac else {
            return KeyClass::None;
        };
        let mut buf = [0u8; 64];
        let mut heap = Vec::new();
        let norm: &[u8] = if key.len() <= buf.len() {
            let mut n = 0;
            for &b in key {
                if !matches!(b, b'_' | b'-' | b'.' | b' ') {
                    buf[n] = b.to_ascii_lowercase();
                    n += 1;
                }
            }
            &buf[..n]
        } else {
            normalize_into(key, &mut heap);
            &heap
        };
        let mut best = KeyClass::None;
        for m in ac.find_overlapping_iter(norm) {
            for &(anchor, class) in &self.rules[m.pattern().as_usize()] {
                let ok = match anchor {
                    Anchor::Exact => m.start() == 0 && m.end() == norm.len(),
                    Anchor::Prefix => m.start() == 0,
                    Anchor::Suffix => m.end() == norm.len(),
                    Anchor::Contains => true,
                };
                if ok && class > best {
                    best = class;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> KeyMatcher {
        let keys: Vec<String> = DEFAULT_SECRET_KEYS.iter().map(|s| s.to_string()).collect();
        KeyMatcher::new(&keys, true, true, true, true)
    }

    #[test]
    fn password_like_keys() {
        let m = defaults();
        for k in [
            "password",
            "Password",
            "user_password",
            "passwordConfirm",
            "passwd",
            "secret",
            "client_secret",
            "token",
            "access_token",
            "refreshToken",
            "id-token",
            "api_key",
            "apiKey",
            "X-Api-Key",
            "APIKEY",
            "private_key",
            "cvv",
            "session_id",
        ] {
            assert_eq!(m.classify(k.as_bytes()), KeyClass::Secret, "{k}");
        }
        for k in [
            "name",
            "tokens_used",
            "max_tokens",
            "token_type",
            "pinned",
            "keyboard",
            "email",
            "spinner",
        ] {
            assert_eq!(m.classify(k.as_bytes()), KeyClass::None, "{k}");
        }
    }

    #[test]
    fn context_keys() {
        let m = defaults();
        assert_eq!(m.classify(b"aws_secret_access_key"), KeyClass::AwsSecret);
        assert_eq!(m.classify(b"SecretAccessKey"), KeyClass::AwsSecret);
        assert_eq!(m.classify(b"Authorization"), KeyClass::Authorization);
        assert_eq!(m.classify(b"ssn"), KeyClass::Ssn);
        assert_eq!(m.classify(b"customer_ssn"), KeyClass::Ssn);
        assert_eq!(m.classify(b"phone"), KeyClass::Phone);
        assert_eq!(m.classify(b"mobilePhone"), KeyClass::Phone);
        assert_eq!(m.classify(b"tel"), KeyClass::Phone);
        assert_eq!(m.classify(b"hotel"), KeyClass::None);
    }

    #[test]
    fn patterns_are_validated() {
        assert_eq!(check_pattern("*"), Err(PatternError::Empty));
        assert_eq!(check_pattern("_-_"), Err(PatternError::Empty));
        assert_eq!(check_pattern("a*b"), Err(PatternError::InnerStar));
        assert_eq!(check_pattern("*api_key"), Ok(()));
    }

    #[test]
    fn very_long_keys() {
        let m = defaults();
        let long = format!("{}_password", "x".repeat(200));
        assert_eq!(m.classify(long.as_bytes()), KeyClass::Secret);
    }
}

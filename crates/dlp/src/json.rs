//! Structure-aware redaction of JSON bodies, without building a tree.
//!
//! A single pass lexes the bytes, tracks the path of keys and indices, and
//! records edits for the strings and numbers to replace; everything else is
//! copied as it was (whitespace, key order, number spelling). A redacted
//! string stays a string; a number that is a card, phone or secret becomes a
//! string token. Several top-level values (JSON Lines, concatenated JSON)
//! are accepted. Anything that is not JSON returns `None`, and the caller
//! scans the body as text instead.
//!
//! Most bytes are never visited one by one: a string's end, and whether it
//! holds a byte that a finding needs, come from 16-byte vector probes
//! ([`crate::index`]); a field name is compared in place, in one 16-byte
//! compare, with the name the document's name cache expects there
//! ([`KeyCache`]). What is left per value is a few branches, so the hot
//! path below avoids per-value allocation, copies of large frames and
//! repeated bounds checks; the rare cases (escapes, names not predicted,
//! values to scan) are out-of-line functions.

use crate::category::Cat;
use crate::decode::{self, Decoded};
use crate::index;
use crate::keys::{KeyCache, KeyClass, NO_SLOT};
use crate::redactor::{splice, Cx, Edit, Redactor, Rule};
use crate::scan::{self, Hints};

/// Nesting deeper than this is not treated as JSON (serde_json stops at 128).
const MAX_DEPTH: usize = 4096;

/// One open object or array. Plain data, so that opening and closing a
/// container is a copy of a few words.
#[derive(Debug, Clone, Copy)]
struct Frame {
    /// Objects: raw span of the current key's content (between the quotes).
    key: (usize, usize),
    /// Arrays: index of the current element.
    idx: usize,
    obj: bool,
    /// Objects: the current key is shown in paths as this frame's entry
    /// of `Walker::shown` (decoded, or redacted), not as its raw bytes.
    shown: bool,
    /// Class in force for the current value.
    class: KeyClass,
    /// Objects: class of the object itself (from its parent), inherited by
    /// its keys.
    outer: KeyClass,
    /// Objects: the current key's slot in the document's [`KeyCache`];
    /// arrays: the name slot of the key that holds the array.
    slot: u16,
}

/// What stands for the top level in [`Walker::top`]: no name, nothing to
/// inherit, so the context of a top-level value needs no special case.
const ROOT: Frame = Frame {
    key: (0, 0),
    idx: 0,
    obj: false,
    shown: false,
    class: KeyClass::None,
    outer: KeyClass::None,
    slot: NO_SLOT,
};

struct Walker<'a, 'r> {
    r: &'r Redactor,
    s: &'a [u8],
    base: &'a str,
    /// The innermost open object or array, or [`ROOT`] outside any: the
    /// walker reads and updates it for every key and value, so it is kept
    /// out of `stack` (no length, bounds check or address to compute).
    top: Frame,
    /// The frames that enclose `top`, outermost first, starting with
    /// [`ROOT`] once a container is open: its length is the depth.
    stack: Vec<Frame>,
    /// Keys shown in paths otherwise than as their raw bytes, one per
    /// frame with `shown` set, in stack order.
    shown: Vec<String>,
    edits: Vec<Edit>,
    keys: KeyCache,
    /// No custom patterns: the quick reading and the name cache's
    /// predictions may rule texts out.
    builtin_only: bool,
}

/// Redacts a JSON body. `Some(None)`: valid, nothing to change;
/// `Some(Some(bytes))`: the redacted document; `None`: not JSON.
pub(crate) fn redact(r: &Redactor, s: &[u8], base: &str, cx: &mut Cx) -> Option<Option<Vec<u8>>> {
    let mut w = Walker {
        r,
        s,
        base,
        top: ROOT,
        stack: Vec::new(),
        shown: Vec::new(),
        edits: Vec::new(),
        keys: KeyCache::take(),
        builtin_only: r.scanner.custom.is_empty(),
    };
    let walked = w.walk(cx);
    w.keys.give_back();
    walked?;
    Some((!w.edits.is_empty()).then(|| splice(s, &w.edits)))
}

/// The first byte at or after `pos` that is not JSON whitespace.
fn ws(s: &[u8], mut pos: usize) -> usize {
    while let Some(&c) = s.get(pos) {
        if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
            break;
        }
        pos += 1;
    }
    pos
}

/// The first byte at or after `pos` that is not JSON whitespace, and where
/// it stands; `None` at the end.
#[inline(always)]
fn next(s: &[u8], pos: usize) -> Option<(usize, u8)> {
    match s.get(pos) {
        // Compact documents have no whitespace: one compare says so.
        Some(&c) if c > b' ' => Some((pos, c)),
        _ => next_after_ws(s, pos),
    }
}

#[cold]
fn next_after_ws(s: &[u8], pos: usize) -> Option<(usize, u8)> {
    let p = ws(s, pos);
    s.get(p).map(|&c| (p, c))
}

/// The end of the literal `lit` at `pos`.
fn literal(s: &[u8], pos: usize, lit: &[u8]) -> Option<usize> {
    s[pos..].starts_with(lit).then_some(pos + lit.len())
}

/// The end of the digits at or after `i`.
#[inline(always)]
fn digits(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// A number at `a`: its end and whether it is a plain non-negative integer
/// (the only numbers that can be cards, phones or SSNs).
#[inline]
fn number(s: &[u8], a: usize) -> Option<(usize, bool)> {
    let mut i = a;
    let mut int = true;
    if s.get(i) == Some(&b'-') {
        i += 1;
        int = false;
    }
    match s.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(s, i + 1),
        _ => return None,
    }
    if s.get(i) == Some(&b'.') {
        int = false;
        let d = i + 1;
        i = digits(s, d);
        if i == d {
            return None;
        }
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        int = false;
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let d = i;
        i = digits(s, d);
        if i == d {
            return None;
        }
    }
    Some((i, int))
}

/// A string whose opening quote is at `q`, as [`Walker::string`] reads it.
#[derive(Debug, Clone, Copy)]
struct Str {
    /// Content span, between the quotes.
    a: usize,
    b: usize,
    /// It holds escapes.
    esc: bool,
    /// Unescaped: whether it holds a byte for which `scan::is_cand` holds,
    /// when the probes that found its end could tell, and which of its
    /// bytes are not letters or digits (see [`index::End`]).
    cand: Option<bool>,
    punct: Option<u64>,
}

impl Walker<'_, '_> {
    /// Class in force for the value about to be read, and the name slot of
    /// the key that holds it.
    #[inline(always)]
    fn context(&self) -> (KeyClass, u16) {
        (self.top.class, self.top.slot)
    }

    /// Opens a container: `frame` becomes the top.
    #[inline(always)]
    fn open(&mut self, frame: Frame) {
        let outer = std::mem::replace(&mut self.top, frame);
        self.stack.push(outer);
    }

    fn walk(&mut self, cx: &mut Cx) -> Option<()> {
        let s = self.s;
        let mut pos = ws(s, 0);
        if pos >= s.len() {
            return None;
        }
        loop {
            // A value.
            let (p, c) = next(s, pos)?;
            pos = p;
            match c {
                b'"' => {
                    let st = self.string(pos)?;
                    pos = st.b + 1;
                    self.on_string(st, cx);
                }
                b'{' => {
                    let (p, c) = next(s, pos + 1)?;
                    pos = p;
                    if c == b'}' {
                        pos += 1;
                    } else {
                        if self.stack.len() >= MAX_DEPTH {
                            return None;
                        }
                        let (outer, under) = self.context();
                        self.open(Frame {
                            key: (0, 0),
                            idx: 0,
                            obj: true,
                            shown: false,
                            class: outer,
                            outer,
                            slot: KeyCache::first_of(under),
                        });
                        pos = self.key(pos, cx)?;
                        continue;
                    }
                }
                b'[' => {
                    let (p, c) = next(s, pos + 1)?;
                    pos = p;
                    if c == b']' {
                        pos += 1;
                    } else {
                        if self.stack.len() >= MAX_DEPTH {
                            return None;
                        }
                        let (class, under) = self.context();
                        self.open(Frame {
                            key: (0, 0),
                            idx: 0,
                            obj: false,
                            shown: false,
                            class,
                            outer: class,
                            slot: under,
                        });
                        continue;
                    }
                }
                b'-' | b'0'..=b'9' => {
                    let (b, int) = number(s, pos)?;
                    self.on_number(pos, b, int, cx);
                    pos = b;
                }
                b't' => pos = literal(s, pos, b"true")?,
                b'f' => pos = literal(s, pos, b"false")?,
                b'n' => pos = literal(s, pos, b"null")?,
                _ => return None,
            }
            // After a value: separators and closers.
            loop {
                if self.stack.is_empty() {
                    pos = ws(s, pos);
                    if pos >= s.len() {
                        return Some(());
                    }
                    // Another top-level value follows.
                    break;
                }
                let (p, c) = next(s, pos)?;
                pos = p;
                if c == b',' {
                    pos += 1;
                    if self.top.obj {
                        pos = self.key(pos, cx)?;
                    } else {
                        self.top.idx += 1;
                    }
                    break;
                }
                if c != if self.top.obj { b'}' } else { b']' } {
                    return None;
                }
                pos += 1;
                if self.top.shown {
                    self.shown.pop();
                }
                self.top = self.stack.pop()?;
            }
        }
    }

    /// A string whose opening quote is at `q`.
    #[inline(always)]
    fn string(&self, q: usize) -> Option<Str> {
        let s = self.s;
        let a = q + 1;
        let index::End { at: b, cand, punct } = index::string_end(s, a)?;
        if s.get(b) != Some(&b'"') {
            let b = self.escaped(b)?;
            return Some(Str {
                a,
                b,
                esc: true,
                cand: None,
                punct: None,
            });
        }
        Some(Str {
            a,
            b,
            esc: false,
            cand,
            punct,
        })
    }

    /// The string is unescaped, and `Scanner::might_match` rules out a
    /// finding in it. Out of line: the walker answers the common case, a
    /// short string without candidate bytes, itself.
    #[inline(never)]
    fn plain(&self, st: Str) -> bool {
        let (s, a, b) = (self.s, st.a, st.b);
        if st.esc {
            return false;
        }
        if let (Some(punct), true) = (st.punct, self.builtin_only) {
            // What `might_match_in` reads, from the probes' classes.
            return b - a < 40 && !scan::content_may_match_punct(&s[a..b], punct);
        }
        !self.r.scanner.might_match_in(s, a, b, || match st.cand {
            Some(c) => c,
            // Only texts shorter than 40 bytes are asked about.
            None => index::any_cand(s, a, b),
        })
    }

    /// The closing quote of a string that has an escape at `i`.
    #[inline(never)]
    fn escaped(&self, mut i: usize) -> Option<usize> {
        let s = self.s;
        loop {
            match s.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    let h = s.get(i + 2..i + 6)?;
                    if !h.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            }
            i = index::next_stop(s, i)?;
            if s[i] == b'"' {
                return Some(i);
            }
        }
    }

    /// Reads `"key":` (the quote at `pos`, after any whitespace) into the
    /// top object frame; returns the position after the colon.
    #[inline(always)]
    fn key(&mut self, pos: usize, cx: &mut Cx) -> Option<usize> {
        let s = self.s;
        let (pos, c) = next(s, pos)?;
        if c != b'"' {
            return None;
        }
        let prev = self.top.slot;
        // Most names are one that followed the previous name before: compare
        // them in place, and skip lexing, classifying and scanning.
        let a = pos + 1;
        for slot in self.keys.successors(prev) {
            let Some(p) = self.keys.predicted(slot) else {
                continue;
            };
            if let Some((mut after, colon)) = p.stands_at(s, a) {
                let (n, own) = (p.end - p.start, p.class);
                if !colon {
                    let (c, colon) = next(s, after)?;
                    if colon != b':' {
                        return None;
                    }
                    after = c + 1;
                }
                let top = &mut self.top;
                if top.shown {
                    top.shown = false;
                    self.shown.pop();
                }
                top.slot = slot;
                top.key = (a, a + n);
                top.class = top.outer.max(own);
                return Some(after);
            }
        }
        self.new_key(pos, prev, cx)
    }

    /// [`Walker::key`] for a name that was not predicted.
    #[inline(never)]
    fn new_key(&mut self, pos: usize, prev: u16, cx: &mut Cx) -> Option<usize> {
        let st = self.string(pos)?;
        let (a, b, esc) = (st.a, st.b, st.esc);
        let st_plain = self.plain(st);
        let (c, colon) = next(self.s, b + 1)?;
        if colon != b':' {
            return None;
        }
        let dec = esc.then(|| decode::json_string(&self.s[a..b]));
        let text: &[u8] = dec.as_ref().map_or(&self.s[a..b], |d| &d.bytes);
        let r = self.r;
        let (own, own_slot) = if esc {
            (r.scanner.keys.classify_cached(text), NO_SLOT)
        } else {
            // Only names that need no content scan are taken on prediction.
            let plain = st_plain && self.builtin_only;
            self.keys
                .classify(&r.scanner.keys, self.s, (a, b), plain, prev)
        };
        // The key itself may be personal data (`{"alice@example.com": …}`).
        let mut edits = Vec::new();
        let mark = cx.findings.len();
        let scan_key = !st_plain || !self.builtin_only;
        if scan_key && (b - a >= 5 || esc) {
            r.value(
                text,
                dec.as_ref(),
                Rule::Scan(Hints::NONE),
                &String::new,
                &mut edits,
                cx,
            );
        }
        let shown = if !edits.is_empty() {
            let red = dec_text(&splice(&self.s[a..b], &edits));
            self.edits
                .extend(edits.into_iter().map(|(x, y, t)| (x + a, y + a, t)));
            // The finding's path names the key as redacted, never as it was.
            let path = join(&self.path_upto(self.stack.len().saturating_sub(1)), &red);
            for f in &mut cx.findings[mark..] {
                f.0.clone_from(&path);
            }
            Some(red)
        } else if esc {
            Some(String::from_utf8_lossy(text).into_owned())
        } else {
            None
        };
        let top = &mut self.top;
        if top.shown {
            self.shown.pop();
        }
        top.shown = shown.is_some();
        self.shown.extend(shown);
        top.slot = own_slot;
        top.key = (a, b);
        top.class = top.outer.max(own);
        Some(c + 1)
    }

    #[inline(always)]
    fn on_string(&mut self, st: Str, cx: &mut Cx) {
        if st.a == st.b {
            return;
        }
        // Nothing to do for text that cannot hold a finding.
        if !st.esc && self.builtin_only {
            let (class, _) = self.context();
            if class == KeyClass::None || matches!(self.r.rule(class), Rule::Scan(_)) {
                let (s, a, b) = (self.s, st.a, st.b);
                let n = b - a;
                // What `plain` says first: a text shorter than 40 bytes
                // needs a candidate byte.
                if n < 5 || (n < 40 && st.cand == Some(false)) {
                    return;
                }
                // Nor for a timestamp, without a phone or SSN name (see
                // `redact_string`). Asked before the quick reading, which a
                // timestamp passes: it starts with four digits.
                if class == KeyClass::None && s[a + 4] == b'-' && scan::is_timestamp(&s[a..b]) {
                    return;
                }
                let plain = match st.punct {
                    // `plain`'s answer, without a call to it.
                    Some(punct) => !scan::content_may_match_punct(&s[a..b], punct),
                    None => self.plain(st),
                };
                if plain {
                    return;
                }
                self.redact_string(st, false, cx);
                return;
            }
        }
        let plain = self.plain(st);
        self.redact_string(st, plain, cx);
    }

    /// Redacts the string `st`; `plain` is [`Walker::plain`] for it.
    #[inline(never)]
    fn redact_string(&mut self, st: Str, plain: bool, cx: &mut Cx) {
        let (a, b, esc) = (st.a, st.b, st.esc);
        let rule = self.r.rule(self.context().0);
        // What `scan_value` would find first: a timestamp holds nothing.
        if matches!(rule, Rule::Scan(Hints::NONE))
            && !esc
            && self.builtin_only
            && scan::is_timestamp(&self.s[a..b])
        {
            return;
        }
        let dec: Option<Decoded> = esc.then(|| decode::json_string(&self.s[a..b]));
        let text: &[u8] = dec.as_ref().map_or(&self.s[a..b], |d| &d.bytes);
        let mut edits = Vec::new();
        let r = self.r;
        match rule {
            // The quick reading holds for this text: scan it.
            Rule::Scan(hints) if !esc && !plain => {
                r.scan_value(text, None, None, hints, &|| self.path(), &mut edits, cx);
            }
            _ => r.value(text, dec.as_ref(), rule, &|| self.path(), &mut edits, cx),
        }
        self.edits
            .extend(edits.into_iter().map(|(x, y, t)| (x + a, y + a, t)));
    }

    #[inline(always)]
    fn on_number(&mut self, a: usize, b: usize, int: bool, cx: &mut Cx) {
        let (class, _) = self.context();
        if class == KeyClass::None || matches!(self.r.rule(class), Rule::Scan(_)) {
            // Shorter integers, and other numbers, cannot be found by
            // content; without a name's hint, nor can most longer ones
            // (epoch milliseconds have no card issuer).
            if !int
                || b - a < 7
                || (class == KeyClass::None
                    && !self
                        .r
                        .scanner
                        .whole_number_may_match(&self.s[a..b], Hints::NONE))
            {
                return;
            }
        }
        self.redact_number(a, b, int, cx);
    }

    #[inline(never)]
    fn redact_number(&mut self, a: usize, b: usize, int: bool, cx: &mut Cx) {
        let rule = self.r.rule(self.context().0);
        let text = &self.s[a..b];
        let cat = match rule {
            Rule::Whole(cat) => Some(cat),
            Rule::Credential => Some(Cat::CREDENTIAL),
            Rule::Scan(hints) => {
                if !int || b - a < 7 {
                    return;
                }
                let mut hits = std::mem::take(&mut cx.hits);
                let found = self.r.scanner.whole_number(text, hints, &mut hits);
                cx.hits = hits;
                found
            }
        };
        let Some(cat) = cat else {
            return;
        };
        if let Some(t) = self.r.token(cat, text) {
            // A number becomes a string token: the document stays valid JSON.
            self.edits.push((a, b, format!("\"{t}\"")));
            cx.add(self.path(), cat);
        }
    }

    /// The current path, e.g. `request.body$.customer.emails[1]`.
    fn path(&self) -> String {
        self.path_upto(self.stack.len())
    }

    /// The path of the first `depth` frames.
    fn path_upto(&self, depth: usize) -> String {
        let mut p = String::with_capacity(self.base.len() + 16 * self.stack.len() + 1);
        p.push_str(self.base);
        p.push('$');
        let mut shown = self.shown.iter();
        // The open frames, outermost first: `stack` without `ROOT`, then
        // `top`.
        let open = self
            .stack
            .iter()
            .skip(1)
            .chain((!self.stack.is_empty()).then_some(&self.top));
        for f in open.take(depth) {
            if !f.obj {
                p.push('[');
                p.push_str(itoa::Buffer::new().format(f.idx));
                p.push(']');
                continue;
            }
            let sh = if f.shown { shown.next() } else { None };
            match sh {
                Some(k) => push_key(&mut p, k),
                None => {
                    let raw = &self.s[f.key.0..f.key.1];
                    match std::str::from_utf8(raw) {
                        Ok(k) => push_key(&mut p, k),
                        Err(_) => push_key(&mut p, &String::from_utf8_lossy(raw)),
                    }
                }
            }
        }
        p
    }
}

fn join(parent: &str, key: &str) -> String {
    let mut p = parent.to_owned();
    push_key(&mut p, key);
    p
}

/// `.name` for identifier-like keys, `["any key"]` otherwise.
fn push_key(p: &mut String, k: &str) {
    let ident = !k.is_empty()
        && k.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_alphabetic() || b == b'_' || (i > 0 && (b.is_ascii_digit() || b == b'-'))
        });
    if ident {
        p.push('.');
        p.push_str(k);
    } else {
        p.push_str("[\"");
        for c in k.chars() {
            match c {
                '"' => p.push_str("\\\""),
                '\\' => p.push_str("\\\\"),
                c if (c as u32) < 0x20 => p.push_str(&format!("\\u{:04x}", c as u32)),
                c => p.push(c),
            }
        }
        p.push_str("\"]");
    }
}

/// A redacted raw key shown in a path: decoded when it still has escapes.
fn dec_text(raw: &[u8]) -> String {
    if memchr::memchr(b'\\', raw).is_some() {
        String::from_utf8_lossy(&decode::json_string(raw).bytes).into_owned()
    } else {
        String::from_utf8_lossy(raw).into_owned()
    }
}

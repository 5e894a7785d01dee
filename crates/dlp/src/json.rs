//! Structure-aware redaction of JSON bodies, without building a tree.
//!
//! A single pass lexes the bytes, tracks the path of keys and indices, and
//! records edits for the strings and numbers to replace; everything else is
//! copied as it was (whitespace, key order, number spelling). A redacted
//! string stays a string; a number that is a card, phone or secret becomes a
//! string token. Several top-level values (JSON Lines, concatenated JSON)
//! are accepted. Anything that is not JSON returns `None`, and the caller
//! scans the body as text instead.

use crate::category::Cat;
use crate::decode::{self, Decoded};
use crate::index::Index;
use crate::keys::{KeyCache, KeyClass, NO_SLOT};
use crate::redactor::{splice, Cx, Edit, Redactor, Rule};
use crate::scan::Hints;

/// Nesting deeper than this is not treated as JSON (serde_json stops at 128).
const MAX_DEPTH: usize = 4096;

#[derive(Debug)]
enum Frame {
    Obj {
        /// Raw span of the current key's content (between the quotes).
        key: (usize, usize),
        /// The key as shown in paths, when it had to be decoded or redacted.
        shown: Option<String>,
        class: KeyClass,
        /// Class of the object itself (from its parent), inherited by keys.
        outer: KeyClass,
        /// The current key's slot in the document's [`KeyCache`].
        slot: u16,
    },
    Arr {
        idx: usize,
        class: KeyClass,
        /// The name slot of the key that holds the array (see `KeyCache`).
        under: u16,
    },
}

struct Walker<'a, 'r> {
    r: &'r Redactor,
    s: &'a [u8],
    pos: usize,
    base: &'a str,
    stack: Vec<Frame>,
    edits: Vec<Edit>,
    /// The last string read was short, unescaped and held no trigger byte:
    /// content scanning cannot find anything in it.
    plain: bool,
    ix: Index,
    keys: KeyCache,
}

/// Redacts a JSON body. `Some(None)`: valid, nothing to change;
/// `Some(Some(bytes))`: the redacted document; `None`: not JSON.
pub(crate) fn redact(r: &Redactor, s: &[u8], base: &str, cx: &mut Cx) -> Option<Option<Vec<u8>>> {
    let mut w = Walker {
        r,
        s,
        pos: 0,
        base,
        stack: Vec::new(),
        edits: Vec::new(),
        plain: false,
        ix: Index::default(),
        keys: KeyCache::take(),
    };
    w.ix.build(s);
    let walked = w.walk(cx);
    w.keys.give_back();
    walked?;
    Some((!w.edits.is_empty()).then(|| splice(s, &w.edits)))
}

impl Walker<'_, '_> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\n' | b'\r' | b'\t') {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// Class in force for the value about to be read.
    fn class(&self) -> KeyClass {
        match self.stack.last() {
            Some(Frame::Obj { class, .. }) | Some(Frame::Arr { class, .. }) => *class,
            None => KeyClass::None,
        }
    }

    /// The name slot of the key whose value is about to be read.
    fn under(&self) -> u16 {
        match self.stack.last() {
            Some(Frame::Obj { slot, .. }) => *slot,
            Some(Frame::Arr { under, .. }) => *under,
            None => NO_SLOT,
        }
    }

    fn walk(&mut self, cx: &mut Cx) -> Option<()> {
        self.ws();
        if self.pos >= self.s.len() {
            return None;
        }
        loop {
            // A value.
            self.ws();
            match self.peek()? {
                b'{' => {
                    self.pos += 1;
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        if self.stack.len() >= MAX_DEPTH {
                            return None;
                        }
                        let outer = self.class();
                        self.stack.push(Frame::Obj {
                            key: (0, 0),
                            shown: None,
                            class: outer,
                            outer,
                            slot: KeyCache::first_of(self.under()),
                        });
                        self.key(cx)?;
                        continue;
                    }
                }
                b'[' => {
                    self.pos += 1;
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        if self.stack.len() >= MAX_DEPTH {
                            return None;
                        }
                        let class = self.class();
                        let under = self.under();
                        self.stack.push(Frame::Arr {
                            idx: 0,
                            class,
                            under,
                        });
                        continue;
                    }
                }
                b'"' => {
                    let (a, b, esc) = self.string()?;
                    self.on_string(a, b, esc, cx);
                }
                b'-' | b'0'..=b'9' => {
                    let (a, b, int) = self.number()?;
                    self.on_number(a, b, int, cx);
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => return None,
            }
            // After a value: separators and closers.
            loop {
                self.ws();
                let Some(top) = self.stack.last_mut() else {
                    if self.pos >= self.s.len() {
                        return Some(());
                    }
                    // Another top-level value follows.
                    break;
                };
                let c = self.s.get(self.pos).copied()?;
                match (top, c) {
                    (Frame::Obj { .. }, b',') => {
                        self.pos += 1;
                        self.ws();
                        self.key(cx)?;
                        break;
                    }
                    (Frame::Obj { .. }, b'}') | (Frame::Arr { .. }, b']') => {
                        self.pos += 1;
                        self.stack.pop();
                    }
                    (Frame::Arr { idx, .. }, b',') => {
                        *idx += 1;
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
    }

    fn literal(&mut self, lit: &[u8]) -> Option<()> {
        if self.s[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            Some(())
        } else {
            None
        }
    }

    /// A string at `pos`: returns its content span and whether it holds
    /// escapes; sets `plain` when `Scanner::might_match` rules out a finding.
    fn string(&mut self) -> Option<(usize, usize, bool)> {
        let s = self.s;
        let start = self.pos + 1;
        let mut i = start;
        let mut esc = false;
        loop {
            i = self.ix.next_stop(i)?;
            if s[i] == b'"' {
                self.pos = i + 1;
                self.plain = !esc
                    && !self
                        .r
                        .scanner
                        .might_match_given(&s[start..i], self.ix.any_cand(start, i));
                return Some((start, i, esc));
            }
            esc = true;
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
        }
    }

    /// A number at `pos`: its span and whether it is a plain non-negative
    /// integer (the only numbers that can be cards, phones or SSNs).
    fn number(&mut self) -> Option<(usize, usize, bool)> {
        let s = self.s;
        let a = self.pos;
        let mut i = a;
        let mut int = true;
        if s.get(i) == Some(&b'-') {
            i += 1;
            int = false;
        }
        match s.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => {
                while i < s.len() && s[i].is_ascii_digit() {
                    i += 1;
                }
            }
            _ => return None,
        }
        if s.get(i) == Some(&b'.') {
            int = false;
            i += 1;
            let d = i;
            while i < s.len() && s[i].is_ascii_digit() {
                i += 1;
            }
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
            while i < s.len() && s[i].is_ascii_digit() {
                i += 1;
            }
            if i == d {
                return None;
            }
        }
        self.pos = i;
        Some((a, i, int))
    }

    /// Reads `"key":` into the top object frame.
    fn key(&mut self, cx: &mut Cx) -> Option<()> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let prev = match self.stack.last() {
            Some(Frame::Obj { slot, .. }) => *slot,
            _ => NO_SLOT,
        };
        // Most names are one that followed the previous name before: compare
        // them in place, and skip lexing, classifying and scanning.
        for slot in self.keys.successors(prev) {
            let Some(&p) = self.keys.name(slot) else {
                continue;
            };
            let (a, n) = (self.pos + 1, p.end - p.start);
            if p.plain && p.stands_at(self.s, a) {
                let own = p.class;
                self.pos = a + n + 1;
                self.ws();
                if self.peek() != Some(b':') {
                    return None;
                }
                self.pos += 1;
                if let Some(Frame::Obj {
                    key,
                    shown,
                    class,
                    outer,
                    slot: sl,
                }) = self.stack.last_mut()
                {
                    *sl = slot;
                    *key = (a, a + n);
                    *shown = None;
                    *class = (*outer).max(own);
                }
                return Some(());
            }
        }
        let (a, b, esc) = self.string()?;
        self.ws();
        if self.peek() != Some(b':') {
            return None;
        }
        self.pos += 1;
        let dec = esc.then(|| decode::json_string(&self.s[a..b]));
        let text: &[u8] = dec.as_ref().map_or(&self.s[a..b], |d| &d.bytes);
        let r = self.r;
        let (own, own_slot) = if esc {
            (r.scanner.keys.classify_cached(text), NO_SLOT)
        } else {
            // Only names that need no content scan are taken on prediction.
            let plain = self.plain && r.scanner.custom.is_empty();
            self.keys
                .classify(&r.scanner.keys, self.s, (a, b), plain, prev)
        };
        // The key itself may be personal data (`{"alice@example.com": …}`).
        let mut edits = Vec::new();
        let mark = cx.findings.len();
        let scan_key = !self.plain || !r.scanner.custom.is_empty();
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
        if let Some(Frame::Obj {
            key,
            shown: sh,
            class,
            outer,
            slot,
        }) = self.stack.last_mut()
        {
            *slot = own_slot;
            *key = (a, b);
            *sh = shown;
            *class = (*outer).max(own);
        }
        Some(())
    }

    fn on_string(&mut self, a: usize, b: usize, esc: bool, cx: &mut Cx) {
        if a == b {
            return;
        }
        let rule = self.r.rule(self.class());
        // Nothing to do for text that cannot hold a finding.
        if matches!(rule, Rule::Scan(_))
            && (b - a < 5 || self.plain)
            && !esc
            && self.r.scanner.custom.is_empty()
        {
            return;
        }
        let dec: Option<Decoded> = esc.then(|| decode::json_string(&self.s[a..b]));
        let text: &[u8] = dec.as_ref().map_or(&self.s[a..b], |d| &d.bytes);
        let mut edits = Vec::new();
        let r = self.r;
        r.value(text, dec.as_ref(), rule, &|| self.path(), &mut edits, cx);
        self.edits
            .extend(edits.into_iter().map(|(x, y, t)| (x + a, y + a, t)));
    }

    fn on_number(&mut self, a: usize, b: usize, int: bool, cx: &mut Cx) {
        let rule = self.r.rule(self.class());
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
        for f in &self.stack[..depth.min(self.stack.len())] {
            match f {
                Frame::Obj { key, shown, .. } => match shown {
                    Some(k) => push_key(&mut p, k),
                    None => match std::str::from_utf8(&self.s[key.0..key.1]) {
                        Ok(k) => push_key(&mut p, k),
                        Err(_) => push_key(&mut p, &String::from_utf8_lossy(&self.s[key.0..key.1])),
                    },
                },
                Frame::Arr { idx, .. } => {
                    p.push('[');
                    p.push_str(itoa::Buffer::new().format(*idx));
                    p.push(']');
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

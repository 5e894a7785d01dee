//! Decoders that remember where each decoded byte came from, so that a
//! finding in decoded text can be cut out of the raw bytes: the rest of the
//! raw encoding (escapes, percent-encoding) stays byte for byte.

/// Decoded bytes plus, for each decoded byte, the raw offset of the
/// sequence that produced it (`map[decoded.len()]` is the raw length).
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub(crate) bytes: Vec<u8>,
    pub(crate) map: Vec<usize>,
}

/// [`Decoded::raw_span`] of a decoded text, or the span itself when the
/// text is the raw bytes (`dec` is `None`).
pub(crate) fn raw_span(dec: Option<&Decoded>, a: usize, b: usize) -> (usize, usize) {
    dec.map_or((a, b), |d| d.raw_span(a, b))
}

impl Decoded {
    /// The raw span that decoded bytes `a..b` came from, widened to whole
    /// escape sequences.
    pub(crate) fn raw_span(&self, a: usize, b: usize) -> (usize, usize) {
        let start = self.map[a];
        let last = self.map[b - 1];
        let mut x = b;
        while x < self.bytes.len() && self.map[x] == last {
            x += 1;
        }
        (start, self.map[x])
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-decoding as in URLs: `%XX` becomes a byte, malformed escapes
/// are kept as they are, and `+` becomes a space when `plus_is_space` (form
/// encoding). Either way each decoded byte keeps its own raw offset, so both
/// readings of one raw text share offsets.
pub(crate) fn percent(raw: &[u8], plus_is_space: bool) -> Decoded {
    let mut d = Decoded {
        bytes: Vec::with_capacity(raw.len()),
        map: Vec::with_capacity(raw.len() + 1),
    };
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' && i + 2 < raw.len() {
            if let (Some(h), Some(l)) = (hex(raw[i + 1]), hex(raw[i + 2])) {
                d.bytes.push(h << 4 | l);
                d.map.push(i);
                i += 3;
                continue;
            }
        }
        d.bytes.push(if plus_is_space && raw[i] == b'+' {
            b' '
        } else {
            raw[i]
        });
        d.map.push(i);
        i += 1;
    }
    d.map.push(raw.len());
    d
}

/// Decodes the content of a JSON string (between the quotes) that holds at
/// least one backslash. Lone surrogates become U+FFFD; a malformed escape
/// is kept literally (the lexer has already checked the syntax).
pub(crate) fn json_string(raw: &[u8]) -> Decoded {
    let mut d = Decoded {
        bytes: Vec::with_capacity(raw.len()),
        map: Vec::with_capacity(raw.len() + 1),
    };
    let mut i = 0;
    let push = |d: &mut Decoded, bytes: &[u8], at: usize| {
        for &b in bytes {
            d.bytes.push(b);
            d.map.push(at);
        }
    };
    while i < raw.len() {
        if raw[i] != b'\\' || i + 1 >= raw.len() {
            push(&mut d, &raw[i..=i], i);
            i += 1;
            continue;
        }
        let simple = match raw[i + 1] {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if let Some(c) = simple {
            push(&mut d, &[c], i);
            i += 2;
            continue;
        }
        let Some(hi) = u16_at(raw, i) else {
            push(&mut d, &raw[i..=i], i);
            i += 1;
            continue;
        };
        let mut len = 6;
        let ch = if (0xD800..0xDC00).contains(&hi) {
            match u16_at(raw, i + 6) {
                Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                    len = 12;
                    char::from_u32(
                        0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00),
                    )
                }
                _ => None,
            }
        } else {
            char::from_u32(u32::from(hi))
        };
        let mut buf = [0u8; 4];
        push(
            &mut d,
            ch.unwrap_or('\u{FFFD}').encode_utf8(&mut buf).as_bytes(),
            i,
        );
        i += len;
    }
    d.map.push(raw.len());
    d
}

/// The code unit of a `\uXXXX` escape at `raw[i..]`.
fn u16_at(raw: &[u8], i: usize) -> Option<u16> {
    let e = raw.get(i..i + 6)?;
    if e[0] != b'\\' || e[1] != b'u' {
        return None;
    }
    let mut v = 0u16;
    for &c in &e[2..] {
        v = v << 4 | u16::from(hex(c)?);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_keeps_offsets() {
        let d = percent(b"a%40b.c%zz+%4", false);
        assert_eq!(d.bytes, b"a@b.c%zz+%4");
        assert_eq!(percent(b"a+b%2B", true).bytes, b"a b+");
        assert_eq!(d.raw_span(0, 5), (0, 7));
        assert_eq!(d.raw_span(1, 2), (1, 4));
    }

    #[test]
    fn json_escapes() {
        let raw = br#"x\n\u0041\ud83d\ude00\ud800y\"\/"#;
        let d = json_string(raw);
        assert_eq!(
            String::from_utf8(d.bytes.clone()).unwrap(),
            "x\nA\u{1F600}\u{FFFD}y\"/"
        );
        // The emoji's four bytes map back to its twelve raw bytes.
        let emoji = 3;
        assert_eq!(d.raw_span(emoji, emoji + 4), (9, 21));
        assert_eq!(d.map.len(), d.bytes.len() + 1);
    }
}

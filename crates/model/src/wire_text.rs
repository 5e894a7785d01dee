//! The text forms of the exchange's timestamp and socket addresses, written
//! by hand for the JSON encoder, and the UTF-8 checks the encoder makes on
//! bodies and field values.
//!
//! chrono and std write these through `core::fmt`, which on the capture
//! sink cost about an eighth of the time spent per exchange (a timestamp and
//! two addresses per line). The bytes here are the same as theirs; anything
//! outside the common shape (a year past 9999, a leap second, IPv6) goes
//! back to their `Display`, so the two can never disagree on those.

use std::borrow::Cow;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serializer;

/// `bytes` as text when they are valid UTF-8. Bodies are checked with
/// simdutf8's vector code: std's check was a sixteenth of the capture
/// sink's time per exchange on a 1 KiB body.
pub(crate) fn utf8(bytes: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(bytes).ok()
}

/// A field value as text, invalid sequences replaced. Most values are
/// valid, and `from_utf8` settles them faster than the lossy walk does.
pub(crate) fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// `serialize_with` for the exchange's `start`: RFC 3339 in UTC with `Z`
/// and 0, 3, 6 or 9 fraction digits, whichever shows the time exactly
/// (chrono's `SecondsFormat::AutoSi`, as its own `Serialize` writes it).
pub(crate) fn timestamp<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 30];
    match format_timestamp(t, &mut buf).and_then(|b| std::str::from_utf8(b).ok()) {
        Some(text) => s.serialize_str(text),
        None => serde::Serialize::serialize(t, s),
    }
}

/// `serialize_with` for an optional socket address, as std's `Display`.
pub(crate) fn socket_addr<S: Serializer>(a: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
    match a {
        Some(SocketAddr::V4(v4)) => {
            let mut buf = [0u8; 21];
            // Only ASCII digits and punctuation are written.
            s.serialize_some(std::str::from_utf8(format_v4(v4, &mut buf)).unwrap_or_default())
        }
        Some(other) => s.collect_str(other),
        None => s.serialize_none(),
    }
}

/// The timestamp's text (ASCII) in `buf`, or `None` where chrono should
/// write it.
pub(crate) fn format_timestamp<'b>(t: &DateTime<Utc>, buf: &'b mut [u8; 30]) -> Option<&'b [u8]> {
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let nano = t.nanosecond();
    if nano >= 1_000_000_000 {
        return None; // a leap second, written as :60 by chrono
    }
    let mut w = Cursor { buf, at: 0 };
    w.digits(year, 4);
    w.byte(b'-');
    w.digits(t.month(), 2);
    w.byte(b'-');
    w.digits(t.day(), 2);
    w.byte(b'T');
    w.digits(t.hour(), 2);
    w.byte(b':');
    w.digits(t.minute(), 2);
    w.byte(b':');
    w.digits(t.second(), 2);
    if nano != 0 {
        w.byte(b'.');
        if nano.is_multiple_of(1_000_000) {
            w.digits(nano / 1_000_000, 3);
        } else if nano.is_multiple_of(1_000) {
            w.digits(nano / 1_000, 6);
        } else {
            w.digits(nano, 9);
        }
    }
    w.byte(b'Z');
    let at = w.at;
    Some(&buf[..at])
}

/// `a.b.c.d:port` (ASCII), as `SocketAddrV4`'s `Display`.
pub(crate) fn format_v4<'b>(addr: &SocketAddrV4, buf: &'b mut [u8; 21]) -> &'b [u8] {
    let mut w = Cursor { buf, at: 0 };
    let [a, b, c, d] = Ipv4Addr::octets(addr.ip());
    for (i, octet) in [a, b, c, d].into_iter().enumerate() {
        if i > 0 {
            w.byte(b'.');
        }
        w.number(u32::from(octet));
    }
    w.byte(b':');
    w.number(u32::from(addr.port()));
    let at = w.at;
    &buf[..at]
}

/// Writes ASCII into a fixed buffer that the callers size for their
/// longest text.
struct Cursor<'b, const N: usize> {
    buf: &'b mut [u8; N],
    at: usize,
}

impl<const N: usize> Cursor<'_, N> {
    fn byte(&mut self, b: u8) {
        self.buf[self.at] = b;
        self.at += 1;
    }

    /// `n` as exactly `width` digits, zero-padded (`n` fits).
    fn digits(&mut self, mut n: u32, width: usize) {
        for i in (0..width).rev() {
            self.buf[self.at + i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.at += width;
    }

    /// `n` in as many digits as it needs.
    fn number(&mut self, n: u32) {
        let width = match n {
            0..=9 => 1,
            10..=99 => 2,
            100..=999 => 3,
            1_000..=9_999 => 4,
            _ => 5, // ports and octets stop at 65,535
        };
        self.digits(n, width);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::net::{Ipv6Addr, SocketAddrV6};

    /// A small generator, so that the test needs no extra crate.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn timestamps_read_as_chrono_writes_them() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut checked = 0;
        for i in 0..200_000u64 {
            // Seconds from year 0 to past 9999, and nanoseconds with every
            // count of trailing zeros.
            let secs = (next(&mut state) % 320_000_000_000) as i64 - 62_170_000_000;
            let nano = match i % 4 {
                0 => 0,
                1 => (next(&mut state) % 1000) as u32 * 1_000_000,
                2 => (next(&mut state) % 1_000_000) as u32 * 1_000,
                _ => (next(&mut state) % 1_000_000_000) as u32,
            };
            let Some(t) = Utc.timestamp_opt(secs, nano).single() else {
                continue;
            };
            let ours = serde_json::to_string(&Wrap(t)).unwrap_or_default();
            let chrono = serde_json::to_string(&t).unwrap_or_default();
            assert_eq!(ours, chrono, "{secs} s {nano} ns");
            checked += 1;
        }
        assert!(checked > 150_000);
        // A leap second and a year past 9999 go through chrono itself.
        let leap = Utc
            .with_ymd_and_hms(2016, 12, 31, 23, 59, 59)
            .single()
            .and_then(|t| t.with_nanosecond(1_500_000_000));
        for t in [leap, Utc.with_ymd_and_hms(12_000, 1, 1, 0, 0, 0).single()]
            .into_iter()
            .flatten()
        {
            assert_eq!(
                serde_json::to_string(&Wrap(t)).unwrap_or_default(),
                serde_json::to_string(&t).unwrap_or_default()
            );
        }
    }

    #[test]
    fn socket_addresses_read_as_std_writes_them() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let loopback6 = SocketAddrV6::new(Ipv6Addr::LOCALHOST, 8080, 0, 0);
        let scoped6 = SocketAddrV6::new(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1), 443, 0, 3);
        let mut addrs: Vec<SocketAddr> = vec![
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            SocketAddr::from((Ipv4Addr::BROADCAST, 65535)),
            loopback6.into(),
            scoped6.into(),
        ];
        for _ in 0..100_000 {
            let r = next(&mut state);
            let ip = Ipv4Addr::from((r >> 16) as u32);
            // Octets and ports of every width.
            let port = match r % 3 {
                0 => (r >> 48) as u16 % 10,
                1 => (r >> 48) as u16 % 1000,
                _ => (r >> 48) as u16,
            };
            addrs.push(SocketAddr::from((ip, port)));
        }
        for a in addrs {
            let ours = serde_json::to_string(&WrapAddr(Some(a))).unwrap_or_default();
            assert_eq!(ours, format!("\"{a}\""));
        }
        assert_eq!(
            serde_json::to_string(&WrapAddr(None)).unwrap_or_default(),
            "null"
        );
    }

    struct Wrap(DateTime<Utc>);
    impl serde::Serialize for Wrap {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            timestamp(&self.0, s)
        }
    }

    struct WrapAddr(Option<SocketAddr>);
    impl serde::Serialize for WrapAddr {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            socket_addr(&self.0, s)
        }
    }
}

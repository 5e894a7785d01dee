//! The ignore lists of `tapwire init`: comma-separated IPs or CIDRs, and
//! ports or port ranges, with `*` for "everything". They come from
//! annotations and environment variables, so the parsers take any string,
//! never panic, and name the item they reject.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Longest excerpt of a rejected item quoted in an error.
const MAX_QUOTED: usize = 64;

/// A list item that is not what the list holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{item:?} is not {expected}")]
pub struct ListError {
    /// The rejected item, cut to a readable length.
    pub item: String,
    /// What the list expects, with examples.
    pub expected: &'static str,
}

impl ListError {
    fn new(item: &str, expected: &'static str) -> Self {
        Self {
            item: item.chars().take(MAX_QUOTED).collect(),
            expected,
        }
    }
}

/// An address or a CIDR block: `10.1.2.3`, `10.0.0.0/8`, `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    /// The address as written (host bits are not cleared; iptables does).
    pub addr: IpAddr,
    /// Prefix length: 32 or 128 for a single address.
    pub prefix: u8,
}

const IP_EXPECTED: &str = "an IP address or CIDR block (e.g. 10.0.0.5, 10.0.0.0/8, fd00::/8)";

impl IpNet {
    /// True for an IPv6 address or block.
    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpNet {
    type Err = ListError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ListError::new(s, IP_EXPECTED);
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| err())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            // Digits only: `u8::from_str` would also take `+8`.
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| err())?
            }
            Some(_) => return Err(err()),
        };
        if prefix > max {
            return Err(err());
        }
        Ok(Self { addr, prefix })
    }
}

/// One port or an inclusive range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port (1..=65535).
    pub first: u16,
    /// Last port, at least `first`.
    pub last: u16,
}

const PORT_EXPECTED: &str = "a port or port range (e.g. 22, 8000:8100, or * for all)";

impl fmt::Display for PortRange {
    /// iptables syntax: `22` or `8000:8100`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}:{}", self.first, self.last)
        }
    }
}

impl FromStr for PortRange {
    type Err = ListError;

    /// `22`, `8000:8100` or `8000-8100`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let port = |p: &str| -> Result<u16, ListError> {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ListError::new(s, PORT_EXPECTED));
            }
            match p.parse::<u16>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(ListError::new(s, PORT_EXPECTED)),
            }
        };
        let (first, last) = match s.split_once([':', '-']) {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let p = port(s)?;
                (p, p)
            }
        };
        if first > last {
            return Err(ListError::new(
                s,
                "a port range with its lower port first (e.g. 8000:8100)",
            ));
        }
        Ok(Self { first, last })
    }
}

/// A comma-separated list where `*` stands for everything. Blank items
/// (`a,,b`, a trailing comma) are skipped; every other item must parse,
/// even next to a `*`, so that a typo is never hidden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum List<T> {
    /// `*`: the whole direction is bypassed.
    All,
    /// These items (possibly none).
    Only(Vec<T>),
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List::Only(Vec::new())
    }
}

impl<T> List<T> {
    /// True for `*`.
    pub fn is_all(&self) -> bool {
        matches!(self, List::All)
    }

    /// The listed items (none for `*`).
    pub fn items(&self) -> &[T] {
        match self {
            List::All => &[],
            List::Only(v) => v,
        }
    }
}

impl<T: FromStr<Err = ListError>> FromStr for List<T> {
    type Err = ListError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut all = false;
        let mut items = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if item == "*" {
                all = true;
            } else {
                items.push(item.parse()?);
            }
        }
        Ok(if all { List::All } else { List::Only(items) })
    }
}

impl<T: fmt::Display> fmt::Display for List<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            List::All => f.write_str("*"),
            List::Only(v) => {
                for (i, item) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                Ok(())
            }
        }
    }
}

/// `--ignore-src-ips`, `--ignore-dst-ips`.
pub type IpList = List<IpNet>;
/// `--ignore-inbound-ports`, `--ignore-outbound-ports`.
pub type PortList = List<PortRange>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_lists_take_addresses_and_blocks_of_both_families() {
        let l: IpList = " 10.0.0.5, 10.0.0.0/8 ,fd00::/8,::1,, ".parse().unwrap();
        assert_eq!(l.to_string(), "10.0.0.5/32,10.0.0.0/8,fd00::/8,::1/128");
        assert_eq!("".parse::<IpList>().unwrap(), IpList::default());
        assert!("*".parse::<IpList>().unwrap().is_all());
        assert!("10.0.0.1,*".parse::<IpList>().unwrap().is_all());
    }

    #[test]
    fn bad_ip_items_are_named() {
        for (list, bad) in [
            ("10.0.0.1,10.0.0.300", "10.0.0.300"),
            ("10.0.0.0/33", "10.0.0.0/33"),
            ("fd00::/129", "fd00::/129"),
            ("10.0.0.0/", "10.0.0.0/"),
            ("10.0.0.0/+8", "10.0.0.0/+8"),
            ("[::1]", "[::1]"),
            ("example.com", "example.com"),
            ("*,nope", "nope"),
        ] {
            let err = list.parse::<IpList>().unwrap_err();
            assert_eq!(err.item, bad, "{list}");
            assert!(err.to_string().contains("IP address or CIDR"), "{err}");
        }
    }

    #[test]
    fn port_lists_take_ports_and_ranges() {
        let l: PortList = "22, 8000:8100,9000-9001,443".parse().unwrap();
        assert_eq!(l.to_string(), "22,8000:8100,9000:9001,443");
        assert!("*".parse::<PortList>().unwrap().is_all());
        assert_eq!("5:5".parse::<PortRange>().unwrap().to_string(), "5");
    }

    #[test]
    fn bad_port_items_are_named() {
        for (list, bad) in [
            ("22,0", "0"),
            ("65536", "65536"),
            ("80x", "80x"),
            ("-1", "-1"),
            ("+80", "+80"),
            ("90:80", "90:80"),
            ("1:2:3", "1:2:3"),
            (":80", ":80"),
        ] {
            let err = list.parse::<PortList>().unwrap_err();
            assert_eq!(err.item, bad, "{list}");
        }
        assert!("90:80"
            .parse::<PortList>()
            .unwrap_err()
            .to_string()
            .contains("lower port first"));
    }

    #[test]
    fn long_items_are_quoted_short() {
        let long = "9".repeat(10_000);
        let err = long.parse::<PortList>().unwrap_err();
        assert_eq!(err.item.len(), MAX_QUOTED);
    }

    /// A deterministic stand-in for the fuzz target: arbitrary bytes, and
    /// mutations of valid lists, must parse or fail, never panic, and what
    /// parses must print back to something that parses the same.
    #[test]
    fn arbitrary_input_never_panics_and_round_trips() {
        let seeds = [
            "10.0.0.0/8,fd00::/8",
            "22,8000:8100",
            "*",
            "1.2.3.4/32,::/0",
            ",,",
        ];
        let alphabet = b"0123456789abcdef:./,*- \t\xff%[]+";
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..20_000 {
            let mut bytes = seeds[i % seeds.len()].as_bytes().to_vec();
            for _ in 0..(next() % 6) {
                let pos = (next() as usize) % (bytes.len() + 1);
                let b = alphabet[(next() as usize) % alphabet.len()];
                match next() % 3 {
                    0 => bytes.insert(pos, b),
                    1 if pos < bytes.len() => {
                        bytes.remove(pos);
                    }
                    _ if pos < bytes.len() => bytes[pos] = b,
                    _ => bytes.push(b),
                }
            }
            let s = String::from_utf8_lossy(&bytes);
            if let Ok(l) = s.parse::<IpList>() {
                assert_eq!(l.to_string().parse::<IpList>(), Ok(l.clone()), "{s:?}");
            }
            if let Ok(l) = s.parse::<PortList>() {
                assert_eq!(l.to_string().parse::<PortList>(), Ok(l.clone()), "{s:?}");
            }
        }
    }
}

//! Kubernetes resource quantities (`100m`, `1Gi`, `1e3`), parsed exactly so
//! that two spellings of one amount compare equal.

use std::fmt;

/// Nano-units per unit: quantities are held as integers of 10⁻⁹, the finest
/// precision Kubernetes keeps (it rounds anything finer up).
const NANO: i128 = 1_000_000_000;

/// An amount of a resource, exact to 10⁻⁹ of its unit.
///
/// `1000m` == `1`, `1Gi` == `1073741824`, `0.5Gi` == `512Mi`, `1e3` == `1k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity {
    nanos: i128,
}

/// A string that is not a Kubernetes quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a quantity ({why}); write it like 100m, 0.5, 128Mi, 1Gi or 1e3")]
pub struct QuantityError {
    text: String,
    why: &'static str,
}

impl Quantity {
    /// Parses the Kubernetes quantity grammar: an optionally signed decimal
    /// number followed by a binary suffix (`Ki` … `Ei`), a decimal suffix
    /// (`n`, `u`, `m`, `k`, `M`, `G`, `T`, `P`, `E`) or an exponent (`e3`, `E-2`).
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        let err = |why| QuantityError {
            text: text.to_owned(),
            why,
        };
        let s = text.trim();
        let (negative, s) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let number_len = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(number_len);
        if number.is_empty() || number == "." {
            return Err(err("no number"));
        }
        let (int_part, frac_part) = match number.split_once('.') {
            Some((i, f)) if !f.contains('.') => (i, f),
            Some(_) => return Err(err("more than one decimal point")),
            None => (number, ""),
        };
        // The digits as one integer, and how many of them were decimals.
        let mut mantissa: i128 = 0;
        for b in int_part.bytes().chain(frac_part.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(b - b'0')))
                .ok_or_else(|| err("too large"))?;
        }
        let mut scale_down = u32::try_from(frac_part.len()).map_err(|_| err("too long"))?;

        // multiplier = base^exp, applied to the mantissa before scaling down.
        let (base, exp): (i128, i32) = match suffix {
            "" => (10, 0),
            "Ki" => (2, 10),
            "Mi" => (2, 20),
            "Gi" => (2, 30),
            "Ti" => (2, 40),
            "Pi" => (2, 50),
            "Ei" => (2, 60),
            "n" => (10, -9),
            "u" => (10, -6),
            "m" => (10, -3),
            "k" => (10, 3),
            "M" => (10, 6),
            "G" => (10, 9),
            "T" => (10, 12),
            "P" => (10, 15),
            "E" => (10, 18),
            s if s.starts_with(['e', 'E']) => {
                let e: i32 = s[1..].parse().map_err(|_| err("bad exponent or suffix"))?;
                if !(-40..=40).contains(&e) {
                    return Err(err("exponent out of range"));
                }
                (10, e)
            }
            _ => return Err(err("unknown suffix")),
        };
        let mut value = mantissa.checked_mul(NANO).ok_or_else(|| err("too large"))?;
        if exp >= 0 {
            let m = base
                .checked_pow(exp.unsigned_abs())
                .ok_or_else(|| err("too large"))?;
            value = value.checked_mul(m).ok_or_else(|| err("too large"))?;
        } else {
            // Only decimal exponents are negative.
            scale_down += exp.unsigned_abs();
        }
        // Divide by 10^scale_down, rounding up as Kubernetes does.
        for _ in 0..scale_down {
            let (q, r) = (value / 10, value % 10);
            value = if r > 0 { q + 1 } else { q };
        }
        Ok(Self {
            nanos: if negative { -value } else { value },
        })
    }

    /// The amount in units (bytes, cores), rounded up to a whole unit.
    pub fn ceil_units(self) -> i128 {
        let (q, r) = (self.nanos / NANO, self.nanos % NANO);
        if r > 0 {
            q + 1
        } else {
            q
        }
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Quantity {
    /// The canonical plain form: whole units, or units with up to nine decimals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.unsigned_abs();
        let nano = NANO.unsigned_abs();
        let (units, frac) = (abs / nano, abs % nano);
        if frac == 0 {
            write!(f, "{sign}{units}")
        } else {
            let frac = format!("{frac:09}");
            write!(f, "{sign}{units}.{}", frac.trim_end_matches('0'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn equal_spellings_compare_equal() {
        assert_eq!(q("1000m"), q("1"));
        assert_eq!(q("1Gi"), q("1073741824"));
        assert_eq!(q("0.5Gi"), q("512Mi"));
        assert_eq!(q("1e3"), q("1k"));
        assert_eq!(q("1E3"), q("1000"));
        assert_eq!(q("1.5"), q("1500m"));
        assert_eq!(q("100Mi"), q("104857600"));
        assert_eq!(q("1M"), q("1000k"));
        assert_eq!(q("1E"), q("1000P"));
        assert_eq!(q("2500u"), q("2.5m"));
        assert_eq!(q("+1"), q("1"));
        assert_eq!(q(" 1 "), q("1"));
        assert_eq!(q("1e-3"), q("1m"));
        assert_eq!(q("0"), q("0Gi"));
        assert_eq!(q(".5"), q("500m"));
        assert_eq!(q("5."), q("5"));
    }

    #[test]
    fn different_amounts_differ() {
        assert_ne!(q("1G"), q("1Gi"));
        assert_ne!(q("100m"), q("0.1001"));
        assert_ne!(q("1"), q("-1"));
        assert!(q("512Mi") < q("1Gi"));
    }

    #[test]
    fn finer_than_nano_rounds_up() {
        assert_eq!(q("0.0000000001"), q("1n"));
        assert_eq!(q("1.0000000001"), q("1000000001n"));
    }

    #[test]
    fn display_and_units() {
        assert_eq!(q("1500m").to_string(), "1.5");
        assert_eq!(q("1Ki").to_string(), "1024");
        assert_eq!(q("-250m").to_string(), "-0.25");
        assert_eq!(q("1Ki").ceil_units(), 1024);
        assert_eq!(q("100m").ceil_units(), 1);
        assert_eq!(q("8Ei").ceil_units(), 8 * (1_i128 << 60));
    }

    #[test]
    fn bad_quantities_are_refused() {
        for bad in [
            "", "Gi", "1GB", "1.2.3", "abc", "1 Gi", "1ki", "1e", "1e+", "1ee3", "--1", ".", "1e99",
        ] {
            let e = Quantity::parse(bad).unwrap_err().to_string();
            assert!(e.contains("is not a quantity"), "{bad:?}: {e}");
        }
        assert!(Quantity::parse("99999999999999999999999999999999999Ei").is_err());
    }
}

//! Checksums and range rules that turn a look-alike into a finding: Luhn and
//! issuer ranges for payment cards, the never-issued SSN ranges, IBAN
//! country lengths and mod-97, IPv4 octets.

/// Luhn checksum over ASCII digits (every byte must be `0`–`9`).
pub(crate) fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn prefix(digits: &[u8], k: usize) -> u32 {
    digits
        .iter()
        .take(k)
        .fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'))
}

/// True when `digits` (13–19 ASCII digits) has an issuer prefix whose card
/// length is `digits.len()`. Requiring a real issuer range is what keeps
/// 13-digit epoch milliseconds and most order numbers out (they pass Luhn one
/// time in ten).
pub(crate) fn card_issuer(digits: &[u8]) -> bool {
    let n = digits.len();
    if !(13..=19).contains(&n) {
        return false;
    }
    let p2 = prefix(digits, 2);
    let p3 = prefix(digits, 3);
    let p4 = prefix(digits, 4);
    let p6 = prefix(digits, 6);
    let len16_19 = (16..=19).contains(&n);
    match digits[0] {
        // Visa.
        b'4' => matches!(n, 13 | 16 | 19),
        // Mastercard 2-series, Mir.
        b'2' => {
            ((2221..=2720).contains(&p4) && n == 16) || ((2200..=2204).contains(&p4) && len16_19)
        }
        // Mastercard, Maestro.
        b'5' => ((51..=55).contains(&p2) && n == 16) || p2 == 50 || (56..=58).contains(&p2),
        // Amex, Diners, JCB.
        b'3' => {
            ((p2 == 34 || p2 == 37) && n == 15)
                || (((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39)
                    && (14..=19).contains(&n))
                || ((3528..=3589).contains(&p4) && len16_19)
        }
        // Discover, UnionPay, RuPay, Maestro.
        b'6' => {
            let discover = p4 == 6011
                || (644..=649).contains(&p3)
                || p2 == 65
                || (622_126..=622_925).contains(&p6);
            ((discover || p2 == 62 || p2 == 60 || p2 == 81) && len16_19) || p2 == 63 || p2 == 67
        }
        // RuPay.
        b'8' => (p2 == 81 || p2 == 82) && n == 16,
        // Troy.
        b'9' => p4 == 9792 && n == 16,
        _ => false,
    }
}

/// A payment card number: issuer range for the length, and Luhn.
pub(crate) fn card(digits: &[u8]) -> bool {
    card_issuer(digits) && luhn(digits)
}

/// A US SSN as nine ASCII digits, excluding ranges the SSA never issues:
/// area 000, 666 and 900–999, group 00, serial 0000.
pub(crate) fn ssn(digits: &[u8]) -> bool {
    if digits.len() != 9 {
        return false;
    }
    let area = prefix(digits, 3);
    let group = prefix(&digits[3..], 2);
    let serial = prefix(&digits[5..], 4);
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// Length of IBANs issued by a country (ISO 13616 registry), or `None` for
/// codes that do not issue IBANs.
fn iban_length(cc: [u8; 2]) -> Option<usize> {
    Some(match &cc {
        b"NO" => 15,
        b"BE" => 16,
        b"DK" | b"FI" | b"FK" | b"FO" | b"GL" | b"NL" | b"SD" => 18,
        b"MK" | b"SI" => 19,
        b"AT" | b"BA" | b"EE" | b"KZ" | b"LT" | b"LU" | b"MN" | b"XK" => 20,
        b"CH" | b"HR" | b"LI" | b"LV" => 21,
        b"BG" | b"BH" | b"CR" | b"DE" | b"GB" | b"GE" | b"IE" | b"ME" | b"RS" | b"VA" => 22,
        b"AE" | b"GI" | b"IL" | b"IQ" | b"OM" | b"SO" | b"TL" => 23,
        b"AD" | b"CZ" | b"ES" | b"MD" | b"PK" | b"RO" | b"SA" | b"SE" | b"SK" | b"TN" | b"VG" => 24,
        b"LY" | b"PT" | b"ST" => 25,
        b"IS" | b"TR" => 26,
        b"BI" | b"DJ" | b"FR" | b"GR" | b"IT" | b"MC" | b"MR" | b"SM" => 27,
        b"AL" | b"AZ" | b"BY" | b"CY" | b"DO" | b"GT" | b"HU" | b"LB" | b"NI" | b"PL" | b"SV" => 28,
        b"BR" | b"EG" | b"PS" | b"QA" | b"UA" => 29,
        b"JO" | b"KW" | b"MU" | b"YE" => 30,
        b"MT" | b"SC" => 31,
        b"LC" => 32,
        b"RU" => 33,
        _ => return None,
    })
}

/// An IBAN in compact form (no spaces, upper case): known country, the
/// length that country issues, and check digits that pass mod-97.
pub(crate) fn iban(compact: &[u8]) -> bool {
    let n = compact.len();
    if !(15..=34).contains(&n) {
        return false;
    }
    if !(compact[0].is_ascii_uppercase()
        && compact[1].is_ascii_uppercase()
        && compact[2].is_ascii_digit()
        && compact[3].is_ascii_digit())
    {
        return false;
    }
    if iban_length([compact[0], compact[1]]) != Some(n) {
        return false;
    }
    let mut rem = 0u32;
    for &c in compact[4..].iter().chain(&compact[..4]) {
        match c {
            b'0'..=b'9' => rem = (rem * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => rem = (rem * 100 + u32::from(c - b'A' + 10)) % 97,
            _ => return false,
        }
    }
    rem == 1
}

/// Four dot-separated decimal octets, each 0–255 without leading zeros.
pub(crate) fn ipv4_octet(group: &[u8]) -> bool {
    match group.len() {
        1 => true,
        2 | 3 => group[0] != b'0' && prefix(group, 3) <= 255,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Vec<u8> {
        s.bytes().filter(u8::is_ascii_digit).collect()
    }

    #[test]
    fn luhn_known_values() {
        assert!(luhn(b"4242424242424242"));
        assert!(!luhn(b"4242424242424241"));
        assert!(luhn(b"79927398713"));
        assert!(!luhn(b"79927398710"));
        assert!(luhn(b"0"));
    }

    #[test]
    fn stripe_test_cards_are_cards() {
        for c in [
            "4242424242424242",
            "4012888888881881",
            "4000056655665556",
            "5555555555554444",
            "2223003122003222",
            "5200828282828210",
            "5105105105105100",
            "378282246310005",
            "371449635398431",
            "6011111111111117",
            "6011000990139424",
            "3056930009020004",
            "36227206271667",
            "3566002020360505",
            "6200000000000005",
            "6205500000000000004",
            "4222222222222",
        ] {
            assert!(card(&d(c)), "{c} should be a card");
        }
    }

    #[test]
    fn mastercard_two_series_bounds() {
        // Build Luhn-valid 16-digit numbers around the 2221–2720 range.
        fn with_check(body: &str) -> Vec<u8> {
            for c in b'0'..=b'9' {
                let mut v = body.as_bytes().to_vec();
                v.push(c);
                if luhn(&v) {
                    return v;
                }
            }
            unreachable!()
        }
        assert!(card(&with_check("222100000000000")));
        assert!(card(&with_check("272099999999999")));
        assert!(!card(&with_check("222099999999999")));
        assert!(!card(&with_check("272100000000000")));
    }

    #[test]
    fn card_rejects_timestamps_and_bad_lengths() {
        // Epoch milliseconds, micro- and nanoseconds start with 1: no issuer.
        assert!(!card(b"1732111387512"));
        assert!(!card(b"1732111387512345"));
        assert!(!card(b"1732111387512345678"));
        // Amex prefix at the wrong length.
        assert!(!card_issuer(b"3782822463100055"));
        // Visa at 14 digits.
        assert!(!card_issuer(b"42424242424242"));
        assert!(!card(b"4242424242424241"));
    }

    #[test]
    fn ssn_ranges() {
        assert!(ssn(b"123456789"));
        assert!(ssn(b"078051120"));
        assert!(ssn(b"899991234"));
        assert!(!ssn(b"000121234"), "area 000");
        assert!(!ssn(b"666121234"), "area 666");
        assert!(!ssn(b"900121234"), "area 9xx");
        assert!(!ssn(b"999121234"), "area 9xx");
        assert!(!ssn(b"123001234"), "group 00");
        assert!(!ssn(b"123450000"), "serial 0000");
        assert!(!ssn(b"12345678"));
    }

    #[test]
    fn iban_mod97_and_lengths() {
        assert!(iban(b"GB82WEST12345698765432"));
        assert!(iban(b"DE89370400440532013000"));
        assert!(iban(b"FR1420041010050500013M02606"));
        assert!(iban(b"NL91ABNA0417164300"));
        assert!(iban(b"NO9386011117947"));
        assert!(iban(b"BE68539007547034"));
        // Bad check digits.
        assert!(!iban(b"GB83WEST12345698765432"));
        assert!(!iban(b"DE88370400440532013000"));
        // Right digits, wrong length for the country.
        assert!(!iban(b"GB82WEST1234569876543"));
        // Not an IBAN country.
        assert!(!iban(b"US12345678901234567890"));
        // Lower case is not the compact form.
        assert!(!iban(b"gb82WEST12345698765432"));
    }

    #[test]
    fn ipv4_octets() {
        assert!(ipv4_octet(b"0"));
        assert!(ipv4_octet(b"255"));
        assert!(ipv4_octet(b"10"));
        assert!(!ipv4_octet(b"256"));
        assert!(!ipv4_octet(b"01"));
        assert!(!ipv4_octet(b"1000"));
    }
}

//! Deterministic generators of labelled personal data, look-alikes that are
//! not personal data, and realistic JSON traffic. Shared by the corpus test
//! and the benchmark (`examples/dlp_bench.rs` includes this file).
#![allow(dead_code, reason = "each user takes the generators it needs")]

use base64::Engine as _;

/// xorshift64*: tiny, seeded, good enough to spread test values.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub(crate) fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }

    pub(crate) fn pick_n(&mut self, set: &[u8], n: usize) -> String {
        (0..n).map(|_| char::from(*self.pick(set))).collect()
    }
}

pub(crate) const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub(crate) const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub(crate) const B64URL: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
pub(crate) const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
pub(crate) const HEX: &[u8] = b"0123456789abcdef";

/// The categories the corpus covers, as the tokens name them.
pub(crate) const CATEGORIES: &[&str] = &[
    "EMAIL",
    "PHONE",
    "CARD",
    "SSN",
    "IBAN",
    "IP",
    "JWT",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "GOOGLE_API_KEY",
    "BEARER",
    "BASIC",
    "PRIVATE_KEY",
    "COOKIE",
    "SECRET",
];

fn luhn_complete(body: &str) -> String {
    for c in b'0'..=b'9' {
        let s = format!("{body}{}", char::from(c));
        let sum: u32 = s
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, d)| {
                let mut v = u32::from(d - b'0');
                if i % 2 == 1 {
                    v *= 2;
                    if v > 9 {
                        v -= 9;
                    }
                }
                v
            })
            .sum();
        if sum.is_multiple_of(10) {
            return s;
        }
    }
    unreachable!("one check digit always fits")
}

pub(crate) fn email(r: &mut Rng) -> String {
    let first = r.pick(&[
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    ]);
    let sep = r.pick(&[".", "_", "", "-", "+"]);
    let len = r.range(3, 9) as usize;
    let last = r.pick_n(LOWER, len);
    let n = r.below(1000);
    let domain = r.pick(&[
        "example.com",
        "example.org",
        "mail.example.net",
        "corp.test",
        "example.co.uk",
        "shop.example",
    ]);
    format!("{first}{sep}{last}{n}@{domain}")
}

pub(crate) fn phone(r: &mut Rng) -> String {
    let area = r.range(201, 989);
    let exch = r.range(200, 999);
    let line = r.digits(4);
    match r.below(8) {
        0 => format!("+1 {area}-{exch}-{line}"),
        1 => format!("({area}) {exch}-{line}"),
        2 => format!("{area}-{exch}-{line}"),
        3 => format!("{area}.{exch}.{line}"),
        4 => format!("+1{area}{exch}{line}"),
        5 => format!("+44 20 {} {}", r.digits(4), r.digits(4)),
        6 => format!("+49 30 {}", r.digits(8)),
        _ => format!(
            "+33 6 {} {} {} {}",
            r.digits(2),
            r.digits(2),
            r.digits(2),
            r.digits(2)
        ),
    }
}

pub(crate) fn card(r: &mut Rng) -> String {
    let (prefix, len): (String, usize) = match r.below(11) {
        0 => ("4".into(), 16),
        1 => ("4".into(), 13),
        2 => (format!("5{}", r.range(1, 5)), 16),
        3 => (format!("{}", r.range(2221, 2720)), 16),
        4 => (format!("3{}", r.pick(&["4", "7"])), 15),
        5 => ("6011".into(), 16),
        6 => (format!("{}", r.range(3528, 3589)), 16),
        7 => ("36".into(), 14),
        8 => ("62".into(), 19),
        9 => ("65".into(), 16),
        _ => ("4".into(), 19),
    };
    let body = format!("{prefix}{}", r.digits(len - prefix.len() - 1));
    let pan = luhn_complete(&body);
    match (r.below(3), len) {
        (1, 16) => format!(
            "{} {} {} {}",
            &pan[..4],
            &pan[4..8],
            &pan[8..12],
            &pan[12..]
        ),
        (2, 16) => format!(
            "{}-{}-{}-{}",
            &pan[..4],
            &pan[4..8],
            &pan[8..12],
            &pan[12..]
        ),
        (1, 15) => format!("{} {} {}", &pan[..4], &pan[4..10], &pan[10..]),
        _ => pan,
    }
}

pub(crate) fn ssn(r: &mut Rng) -> String {
    let mut area = r.range(1, 899);
    if area == 666 {
        area = 665;
    }
    let group = r.range(1, 99);
    let serial = r.range(1, 9999);
    let sep = if r.below(4) == 0 { " " } else { "-" };
    format!("{area:03}{sep}{group:02}{sep}{serial:04}")
}

pub(crate) fn iban(r: &mut Rng) -> String {
    let (cc, bban) = match r.below(6) {
        0 => (
            "GB",
            format!(
                "{}{}",
                r.pick_n(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4),
                r.digits(14)
            ),
        ),
        1 => ("DE", r.digits(18)),
        2 => (
            "FR",
            format!(
                "{}{}{}",
                r.digits(10),
                r.pick_n(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", 11),
                r.digits(2)
            ),
        ),
        3 => (
            "NL",
            format!(
                "{}{}",
                r.pick_n(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4),
                r.digits(10)
            ),
        ),
        4 => ("ES", r.digits(20)),
        _ => (
            "IT",
            format!(
                "{}{}",
                r.pick_n(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 1),
                r.digits(22)
            ),
        ),
    };
    let mut rem = 0u32;
    for c in format!("{bban}{cc}00").bytes() {
        match c {
            b'0'..=b'9' => rem = (rem * 10 + u32::from(c - b'0')) % 97,
            _ => rem = (rem * 100 + u32::from(c - b'A' + 10)) % 97,
        }
    }
    let iban = format!("{cc}{:02}{bban}", 98 - rem);
    if r.below(3) == 0 {
        iban.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        iban
    }
}

pub(crate) fn ip(r: &mut Rng) -> String {
    if r.below(3) == 0 {
        let groups: Vec<String> = (0..8).map(|_| format!("{:x}", r.below(65536))).collect();
        if r.below(2) == 0 {
            format!("2001:db8::{}:{}", groups[6], groups[7])
        } else {
            groups.join(":")
        }
    } else {
        format!(
            "{}.{}.{}.{}",
            r.range(1, 223),
            r.below(256),
            r.below(256),
            r.range(1, 254)
        )
    }
}

pub(crate) fn jwt(r: &mut Rng) -> String {
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b.encode(format!(
        r#"{{"sub":"{}","name":"user{}","iat":{}}}"#,
        r.digits(8),
        r.below(1000),
        1_700_000_000 + r.below(10_000_000)
    ));
    let sig = r.pick_n(B64URL, 43);
    format!("{header}.{payload}.{sig}")
}

pub(crate) fn aws_access_key(r: &mut Rng) -> String {
    format!(
        "{}{}",
        r.pick(&["AKIA", "ASIA"]),
        r.pick_n(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
    )
}

pub(crate) fn aws_secret_key(r: &mut Rng) -> String {
    r.pick_n(B64, 40)
}

pub(crate) fn google_api_key(r: &mut Rng) -> String {
    format!("AIza{}", r.pick_n(B64URL, 35))
}

pub(crate) fn bearer(r: &mut Rng) -> String {
    let len = r.range(24, 48) as usize;
    r.pick_n(ALNUM, len)
}

pub(crate) fn basic(r: &mut Rng) -> String {
    let user = r.pick_n(LOWER, 6);
    let pass = r.pick_n(ALNUM, 12);
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
}

pub(crate) fn private_key(r: &mut Rng) -> String {
    let lines: Vec<String> = (0..4).map(|_| r.pick_n(B64, 64)).collect();
    let kind = r.pick(&["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY"]);
    format!(
        "-----BEGIN {kind}-----\n{}\n-----END {kind}-----",
        lines.join("\n")
    )
}

pub(crate) fn cookie(r: &mut Rng) -> String {
    r.pick_n(ALNUM, 32)
}

pub(crate) fn password(r: &mut Rng) -> String {
    format!(
        "{}{}!{}",
        r.pick_n(ALNUM, 8),
        r.digits(2),
        r.pick_n(LOWER, 3)
    )
}

/// A value of `category`.
pub(crate) fn value(r: &mut Rng, category: &str) -> String {
    match category {
        "EMAIL" => email(r),
        "PHONE" => phone(r),
        "CARD" => card(r),
        "SSN" => ssn(r),
        "IBAN" => iban(r),
        "IP" => ip(r),
        "JWT" => jwt(r),
        "AWS_ACCESS_KEY" => aws_access_key(r),
        "AWS_SECRET_KEY" => aws_secret_key(r),
        "GOOGLE_API_KEY" => google_api_key(r),
        "BEARER" => bearer(r),
        "BASIC" => basic(r),
        "PRIVATE_KEY" => private_key(r),
        "COOKIE" => cookie(r),
        _ => password(r),
    }
}

/// Values that look like personal data but are not, by kind.
pub(crate) fn look_alike(r: &mut Rng) -> (&'static str, String) {
    match r.below(10) {
        0 => (
            "uuid",
            format!(
                "{}-{}-4{}-{}{}-{}",
                r.pick_n(HEX, 8),
                r.pick_n(HEX, 4),
                r.pick_n(HEX, 3),
                r.pick(&["8", "9", "a", "b"]),
                r.pick_n(HEX, 3),
                r.pick_n(HEX, 12)
            ),
        ),
        1 => (
            "timestamp",
            format!(
                "20{:02}-{:02}-{:02}T{:02}:{:02}:{:02}.{}Z",
                r.range(10, 30),
                r.range(1, 12),
                r.range(1, 28),
                r.below(24),
                r.below(60),
                r.below(60),
                r.digits(3)
            ),
        ),
        2 => (
            "order",
            format!("ORD-{}-{}", r.range(2015, 2030), r.digits(6)),
        ),
        3 => {
            let len = r.range(6, 10) as usize;
            (
                "order",
                format!("{}7", r.digits(len).trim_start_matches('0')),
            )
        }
        4 => (
            "version",
            format!("{}.{}.{}", r.below(20), r.below(40), r.below(200)),
        ),
        5 => (
            "version",
            format!(
                "v{}.{}.{}-rc.{}",
                r.below(5),
                r.below(30),
                r.below(10),
                r.below(9)
            ),
        ),
        6 => {
            let len = *r.pick(&[24, 32, 40, 64]);
            ("hex", r.pick_n(HEX, len))
        }
        7 => (
            "price",
            format!("{}.{:02}", r.range(1, 99_999), r.below(100)),
        ),
        8 => (
            "epoch_ms",
            format!("{}", 1_600_000_000_000u64 + r.below(200_000_000_000)),
        ),
        _ => (
            "epoch_s",
            format!("{}", 1_600_000_000u64 + r.below(200_000_000)),
        ),
    }
}

/// One realistic JSON API record (an order with its customer). With
/// `personal`, it carries an email, a phone, a card, an address and an IP
/// (about 5 findings per ~1 KiB); without, the same shape holds only ids,
/// timestamps, amounts and product text.
pub(crate) fn order_json(r: &mut Rng, personal: bool) -> String {
    let id = r.pick_n(HEX, 24);
    let ts = format!(
        "2026-{:02}-{:02}T{:02}:{:02}:{:02}.{}Z",
        r.range(1, 12),
        r.range(1, 28),
        r.below(24),
        r.below(60),
        r.below(60),
        r.digits(3)
    );
    let items: Vec<String> = (0..r.range(2, 4))
        .map(|_| {
            format!(
                r#"{{"sku":"SKU-{}","name":"{} {}","quantity":{},"unit_price":{}.{:02},"currency":"EUR","tags":["{}","{}"]}}"#,
                r.digits(6),
                r.pick(&["Organic", "Classic", "Deluxe", "Compact", "Wireless"]),
                r.pick(&["coffee beans", "desk lamp", "notebook", "headphones", "water bottle"]),
                r.range(1, 5),
                r.range(1, 300),
                r.below(100),
                r.pick(&["sale", "new", "gift"]),
                r.pick(&["eco", "bestseller", "limited"])
            )
        })
        .collect();
    let customer = if personal {
        let ip4 = format!(
            "{}.{}.{}.{}",
            r.range(1, 223),
            r.below(256),
            r.below(256),
            r.range(1, 254)
        );
        format!(
            r#"{{"id":"cus_{}","name":"{} {}","email":"{}","phone":"{}","address":{{"line1":"{} Main Street","city":"Springfield","postal_code":"{}","country":"US"}},"payment":{{"type":"card","card_number":"{}","expiry":"{:02}/{}"}},"ip_address":"{}"}}"#,
            r.pick_n(ALNUM, 14),
            r.pick(&["Alice", "Bob", "Carol", "Dave"]),
            r.pick(&["Smith", "Jones", "Garcia", "Miller"]),
            email(r),
            phone(r),
            r.range(1, 999),
            r.digits(5),
            card(r),
            r.range(1, 12),
            r.range(27, 33),
            ip4
        )
    } else {
        format!(
            r#"{{"id":"cus_{}","segment":"{}","loyalty_tier":"{}","orders_count":{},"lifetime_value":{}.{:02},"marketing_opt_in":{}}}"#,
            r.pick_n(ALNUM, 14),
            r.pick(&["retail", "wholesale", "partner"]),
            r.pick(&["bronze", "silver", "gold"]),
            r.range(1, 300),
            r.range(10, 90_000),
            r.below(100),
            r.pick(&["true", "false"])
        )
    };
    format!(
        r#"{{"id":"ord_{id}","object":"order","created_at":"{ts}","updated_at":{},"status":"{}","customer":{customer},"items":[{}],"totals":{{"subtotal":{}.{:02},"tax":{}.{:02},"shipping":{}.{:02},"grand_total":{}.{:02}}},"shipping_method":"{}","trace_id":"{}","api_version":"2026-{:02}-01","metadata":{{"channel":"{}","campaign":"{}","request_id":"req_{}"}}}}"#,
        1_700_000_000_000u64 + r.below(100_000_000_000),
        r.pick(&["pending", "paid", "shipped", "delivered"]),
        items.join(","),
        r.range(10, 999),
        r.below(100),
        r.range(1, 99),
        r.below(100),
        r.range(0, 20),
        r.below(100),
        r.range(10, 999),
        r.below(100),
        r.pick(&["standard", "express", "pickup"]),
        r.pick_n(HEX, 32),
        r.range(1, 12),
        r.pick(&["web", "ios", "android"]),
        r.pick(&["spring_sale", "newsletter", "none"]),
        r.pick_n(ALNUM, 16)
    )
}

/// A JSON array of order records of about `target` bytes.
pub(crate) fn orders_body(r: &mut Rng, personal: bool, target: usize) -> String {
    orders_body_every(r, usize::from(personal), target)
}

/// As [`orders_body`], with personal data in every `every`-th record only
/// (none when `every` is 0): `every = 5` gives about 0.8 findings per KB.
pub(crate) fn orders_body_every(r: &mut Rng, every: usize, target: usize) -> String {
    let mut out = String::from("{\"data\":[");
    let mut n = 0;
    while out.len() < target {
        if n > 0 {
            out.push(',');
        }
        out.push_str(&order_json(r, every > 0 && n % every == 0));
        n += 1;
    }
    out.push_str("],\"has_more\":true}");
    out
}

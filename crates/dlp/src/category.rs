//! What kind of value a finding is: the built-in categories and the ones a
//! configuration adds with its own patterns.

/// A category as the scanner hands it around: an index into the redactor's
/// name table. Built-ins have fixed indices; configured patterns follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Cat(pub(crate) u16);

impl Cat {
    pub(crate) const EMAIL: Cat = Cat(0);
    pub(crate) const PHONE: Cat = Cat(1);
    pub(crate) const CARD: Cat = Cat(2);
    pub(crate) const SSN: Cat = Cat(3);
    pub(crate) const IBAN: Cat = Cat(4);
    pub(crate) const IP: Cat = Cat(5);
    pub(crate) const JWT: Cat = Cat(6);
    pub(crate) const AWS_ACCESS_KEY: Cat = Cat(7);
    pub(crate) const AWS_SECRET_KEY: Cat = Cat(8);
    pub(crate) const GOOGLE_API_KEY: Cat = Cat(9);
    pub(crate) const BEARER: Cat = Cat(10);
    pub(crate) const BASIC: Cat = Cat(11);
    pub(crate) const CREDENTIAL: Cat = Cat(12);
    pub(crate) const PRIVATE_KEY: Cat = Cat(13);
    pub(crate) const COOKIE: Cat = Cat(14);
    pub(crate) const SECRET: Cat = Cat(15);
    pub(crate) const ENCODED_BODY: Cat = Cat(16);
    /// First index of configured patterns.
    pub(crate) const FIRST_CUSTOM: u16 = 17;

    /// When two findings cover the same bytes, the lower rank wins: a JWT
    /// found under a `token` key is reported as a JWT, not as a secret.
    pub(crate) fn rank(self) -> u16 {
        match self {
            Cat::SECRET => 2,
            Cat::CREDENTIAL | Cat::COOKIE => 1,
            _ => 0,
        }
    }
}

/// Names of the built-in categories, in `Cat` index order. They appear in
/// tokens and redaction records, so they are part of the stored format.
pub(crate) const BUILTIN_NAMES: [&str; Cat::FIRST_CUSTOM as usize] = [
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
    "CREDENTIAL",
    "PRIVATE_KEY",
    "COOKIE",
    "SECRET",
    "ENCODED_BODY",
];

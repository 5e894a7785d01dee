//! Data-loss prevention for captured traffic: finds personal data and
//! secrets in exchanges and replaces them with deterministic tokens before
//! anything is stored.
//!
//! Build a [`Redactor`] from a [`DlpConfig`] (YAML, see `docs/dlp.md`) and a
//! per-installation [`RedactionKey`], then pass every exchange through
//! [`Redactor::redact`]. The result is a [`Redacted`] value, which only this
//! crate can construct: sinks that accept `Redacted<…>` cannot be handed an
//! exchange that skipped redaction. A policy with `enabled: false` still goes
//! through the redactor, so turning DLP off is an explicit choice that shows
//! in the stored tags (`dlp=off`).
//!
//! A replaced value becomes `REDACTED-<CATEGORY>-<12 hex>`, the hex being
//! HMAC-SHA256 of the value under the key: the same value gives the same
//! token in every field and exchange, so mocks still match after redaction.

mod category;
mod config;
mod decode;
#[doc(hidden)]
pub mod fuzzing;
mod index;
mod json;
mod keys;
mod redactor;
mod scan;
mod token;
mod validate;

use std::ops::Deref;

use serde::{Serialize, Serializer};
use tapwire_model::Exchange;

pub use config::{
    Allow, ConfigError, Cookies, Detectors, DlpConfig, EncodedBodies, HeaderRules, Pattern,
    DEFAULT_SKIPPED_HEADERS, DEFAULT_YAML,
};
pub use keys::DEFAULT_SECRET_KEYS;
pub use redactor::{Finding, Redactor, Report};
pub use token::{KeyError, RedactionKey, TOKEN_HASH_HEX};

/// A value that has been through a [`Redactor`]. The field is private and
/// there is no public constructor (nor `Deserialize`): the only way to get
/// one is to redact. Sinks take `Redacted<Exchange>` or [`RedactedBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted<T>(T);

/// A batch of redacted exchanges, the unit sinks write.
pub type RedactedBatch = Redacted<Vec<Exchange>>;

impl<T> Redacted<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(value)
    }

    /// The redacted value.
    pub fn get(&self) -> &T {
        &self.0
    }

    /// Gives the redacted value up, e.g. to encode it. The value cannot be
    /// wrapped again: only a redactor makes `Redacted` values.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Redacted<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Serialize> Serialize for Redacted<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// Exchanges redacted one by one can be gathered into a batch.
impl FromIterator<Redacted<Exchange>> for RedactedBatch {
    fn from_iter<I: IntoIterator<Item = Redacted<Exchange>>>(iter: I) -> Self {
        Redacted(iter.into_iter().map(Redacted::into_inner).collect())
    }
}

impl Redacted<Vec<Exchange>> {
    /// Number of exchanges in the batch.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the batch holds no exchange.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

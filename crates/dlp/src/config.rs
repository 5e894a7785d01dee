//! The DLP policy as users write it (YAML), with embedded defaults and
//! errors that name the field at fault.

use std::path::Path;

use serde::Deserialize;

use crate::category::BUILTIN_NAMES;
use crate::keys::{check_pattern, DEFAULT_SECRET_KEYS};

/// The documented default policy; `DlpConfig::default()` is equal to it.
pub const DEFAULT_YAML: &str = include_str!("../default.yaml");

/// Header fields that are never scanned by default: they describe the
/// message, and redacting `Host` would break routing and mock matching.
pub const DEFAULT_SKIPPED_HEADERS: &[&str] = &[
    "host",
    ":authority",
    ":method",
    ":path",
    ":scheme",
    ":status",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "accept",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "cache-control",
    "pragma",
    "date",
    "expires",
    "last-modified",
    "etag",
    "if-none-match",
    "if-modified-since",
    "vary",
    "age",
    "server",
    "user-agent",
    "grpc-status",
    "grpc-encoding",
    "grpc-accept-encoding",
];

/// A DLP policy. Every field is optional in YAML; missing ones take the
/// defaults shown in [`DEFAULT_YAML`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DlpConfig {
    /// `false` turns redaction off: exchanges still pass through the
    /// redactor (and come out as `Redacted`), unchanged but tagged `dlp=off`.
    pub enabled: bool,
    /// Built-in detectors, each on unless set to `false`.
    pub detectors: Detectors,
    /// Password-like field names whose values are redacted whole. Replaces
    /// the built-in list when given; see [`DlpConfig::extra_secret_keys`] to
    /// add to it instead.
    pub secret_keys: Vec<String>,
    /// Names added to `secret_keys`.
    pub extra_secret_keys: Vec<String>,
    /// Extra patterns, each with its own category.
    pub patterns: Vec<Pattern>,
    /// Values that are never redacted.
    pub allow: Allow,
    /// Cookie handling.
    pub cookies: Cookies,
    /// Header handling.
    pub headers: HeaderRules,
    /// What to do with bodies that carry a `Content-Encoding` (gzip, br,
    /// …): their bytes cannot be scanned as captured.
    pub encoded_bodies: EncodedBodies,
    /// At most this many distinct field paths are recorded per exchange (the
    /// rest are counted in the `dlp.paths_omitted` tag).
    pub max_recorded_paths: usize,
}

impl Default for DlpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            detectors: Detectors::default(),
            secret_keys: DEFAULT_SECRET_KEYS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            extra_secret_keys: Vec::new(),
            patterns: Vec::new(),
            allow: Allow::default(),
            cookies: Cookies::default(),
            headers: HeaderRules::default(),
            encoded_bodies: EncodedBodies::Drop,
            max_recorded_paths: 256,
        }
    }
}

/// Switches for the built-in detectors.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Detectors {
    /// Email addresses.
    pub email: bool,
    /// Phone numbers: E.164 (`+` and 8–15 digits) and North American formats;
    /// bare digits under phone-like keys.
    pub phone: bool,
    /// Payment card numbers (issuer range and Luhn).
    pub card: bool,
    /// US social security numbers (never-issued ranges excluded).
    pub ssn: bool,
    /// IBANs (country length and mod-97).
    pub iban: bool,
    /// IPv4 and IPv6 addresses.
    pub ip: bool,
    /// JSON Web Tokens.
    pub jwt: bool,
    /// AWS access key ids (`AKIA…`, `ASIA…`).
    pub aws_access_key: bool,
    /// AWS secret access keys (40 base64 characters, or under an AWS secret key name).
    pub aws_secret_key: bool,
    /// Google API keys (`AIza…`).
    pub google_api_key: bool,
    /// `Authorization` / `Proxy-Authorization` credentials.
    pub credentials: bool,
    /// PEM private keys.
    pub private_key: bool,
    /// `Cookie` and `Set-Cookie` values.
    pub cookies: bool,
    /// Values under password-like keys (`secret_keys`).
    pub secret_keys: bool,
}

impl Default for Detectors {
    fn default() -> Self {
        Self {
            email: true,
            phone: true,
            card: true,
            ssn: true,
            iban: true,
            ip: true,
            jwt: true,
            aws_access_key: true,
            aws_secret_key: true,
            google_api_key: true,
            credentials: true,
            private_key: true,
            cookies: true,
            secret_keys: true,
        }
    }
}

impl Detectors {
    /// Every detector off (configured patterns still run).
    pub fn none() -> Self {
        Self {
            email: false,
            phone: false,
            card: false,
            ssn: false,
            iban: false,
            ip: false,
            jwt: false,
            aws_access_key: false,
            aws_secret_key: false,
            google_api_key: false,
            credentials: false,
            private_key: false,
            cookies: false,
            secret_keys: false,
        }
    }
}

/// A configured pattern.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pattern {
    /// Category name, letters, digits and `_`; upper-cased in tokens
    /// (`employee_id` → `REDACTED-EMPLOYEE_ID-…`).
    pub name: String,
    /// Regular expression (Rust `regex` syntax); every match is redacted.
    pub regex: String,
}

/// Values that are never redacted, whatever detector finds them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Allow {
    /// Exact values.
    pub values: Vec<String>,
    /// Regular expressions that must match the whole found value.
    pub regex: Vec<String>,
}

/// Cookie handling.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cookies {
    /// Cookie names (case-insensitive) whose values are kept as they are.
    pub allow: Vec<String>,
}

/// Header handling.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderRules {
    /// Header names (case-insensitive) that are never scanned. Replaces the
    /// built-in list when given.
    pub skip: Vec<String>,
}

impl Default for HeaderRules {
    fn default() -> Self {
        Self {
            skip: DEFAULT_SKIPPED_HEADERS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

/// Policy for bodies with a `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodedBodies {
    /// Remove the captured bytes (the body keeps its size and is marked
    /// truncated) and record an `ENCODED_BODY` redaction.
    Drop,
    /// Keep the bytes unscanned. Only for traffic known to hold no personal
    /// data.
    Keep,
}

/// A configuration that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading dlp config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not YAML of the right shape (the message names the field, line and column).
    #[error("dlp config: {0}")]
    Yaml(#[from] serde_norway::Error),
    /// A field holds a value that cannot be used.
    #[error("dlp config: {field}: {message}")]
    Invalid {
        /// The field, e.g. `patterns[1].regex`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl DlpConfig {
    /// Parses and validates a YAML policy. An empty document is the default policy.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let cfg: DlpConfig = if text.trim().is_empty() {
            DlpConfig::default()
        } else {
            serde_norway::from_str(text)?
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads, parses and validates a YAML policy file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    /// A policy with redaction turned off. Exchanges still go through the
    /// redactor, which makes turning DLP off an explicit, visible choice.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Checks what serde cannot: key patterns, regexes, names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, list) in [
            ("secret_keys", &self.secret_keys),
            ("extra_secret_keys", &self.extra_secret_keys),
        ] {
            for (i, k) in list.iter().enumerate() {
                check_pattern(k).map_err(|e| {
                    ConfigError::invalid(format!("{field}[{i}]"), format!("{k:?} {e}"))
                })?;
            }
        }
        let mut names: Vec<String> = Vec::new();
        for (i, p) in self.patterns.iter().enumerate() {
            let name = p.name.to_ascii_uppercase();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(ConfigError::invalid(
                    format!("patterns[{i}].name"),
                    format!(
                        "{:?} must be non-empty and hold only letters, digits and `_`",
                        p.name
                    ),
                ));
            }
            if BUILTIN_NAMES.contains(&name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("patterns[{i}].name"),
                    format!("{name:?} is a built-in category; pick another name"),
                ));
            }
            if names.contains(&name) {
                return Err(ConfigError::invalid(
                    format!("patterns[{i}].name"),
                    format!("{name:?} is used by an earlier pattern"),
                ));
            }
            names.push(name);
            compile(&p.regex)
                .map_err(|e| ConfigError::invalid(format!("patterns[{i}].regex"), e))?;
            if regex::bytes::Regex::new(&p.regex).is_ok_and(|r| r.is_match(b"")) {
                return Err(ConfigError::invalid(
                    format!("patterns[{i}].regex"),
                    "matches the empty string, so it would redact nothing useful",
                ));
            }
        }
        for (i, r) in self.allow.regex.iter().enumerate() {
            compile(&format!("^(?:{r})$"))
                .map_err(|e| ConfigError::invalid(format!("allow.regex[{i}]"), e))?;
        }
        if self.max_recorded_paths == 0 {
            return Err(ConfigError::invalid(
                "max_recorded_paths",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Compiles a user regex with a size limit, so a hostile config cannot
/// exhaust memory; the error text is regex's own, on one line.
pub(crate) fn compile(re: &str) -> Result<regex::bytes::Regex, String> {
    regex::bytes::RegexBuilder::new(re)
        .size_limit(4 << 20)
        .build()
        .map_err(|e| {
            e.to_string()
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_yaml_is_the_default() {
        assert_eq!(
            DlpConfig::from_yaml(DEFAULT_YAML).unwrap(),
            DlpConfig::default()
        );
        assert_eq!(DlpConfig::from_yaml("").unwrap(), DlpConfig::default());
    }

    #[test]
    fn partial_config_keeps_defaults() {
        let c = DlpConfig::from_yaml("detectors:\n  ip: false\nextra_secret_keys: [pin_code]\n")
            .unwrap();
        assert!(!c.detectors.ip);
        assert!(c.detectors.email);
        assert_eq!(c.secret_keys, DlpConfig::default().secret_keys);
        assert_eq!(c.extra_secret_keys, vec!["pin_code"]);
    }

    fn err(yaml: &str) -> String {
        DlpConfig::from_yaml(yaml).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_field() {
        let e = err("detectors:\n  emial: true\n");
        assert!(e.contains("emial") && e.contains("line 2"), "{e}");
        let e = err("detectors:\n  email: sometimes\n");
        assert!(
            e.contains("detectors.email") && e.contains("boolean"),
            "{e}"
        );
        let e = err("patterns:\n  - name: emp\n    regex: 'EMP-[0-9'\n");
        assert!(e.contains("patterns[0].regex"), "{e}");
        let e = err("patterns:\n  - name: email\n    regex: x\n");
        assert!(
            e.contains("patterns[0].name") && e.contains("built-in"),
            "{e}"
        );
        let e = err("patterns:\n  - name: 'a b'\n    regex: x\n");
        assert!(e.contains("patterns[0].name"), "{e}");
        let e = err("patterns:\n  - name: a\n    regex: 'x*'\n");
        assert!(e.contains("empty string"), "{e}");
        let e = err("secret_keys: ['pass*word']\n");
        assert!(e.contains("secret_keys[0]"), "{e}");
        let e = err("allow:\n  regex: ['(']\n");
        assert!(e.contains("allow.regex[0]"), "{e}");
        let e = err("encoded_bodies: scan\n");
        assert!(e.contains("encoded_bodies") && e.contains("drop"), "{e}");
        let e = err("max_recorded_paths: 0\n");
        assert!(e.contains("max_recorded_paths"), "{e}");
    }
}

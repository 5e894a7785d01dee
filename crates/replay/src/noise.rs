//! Noise: response fields that differ between two identical requests
//! (timestamps, random ids), learnt per endpoint and then ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::diff::{differing_paths, PathPattern};
use crate::ReplayError;

/// What varies for one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointNoise {
    /// JSON paths (array indexes as `*`) whose values varied.
    #[serde(default)]
    pub paths: BTreeSet<String>,
    /// Response header names (lowercase) whose values varied.
    #[serde(default)]
    pub headers: BTreeSet<String>,
    /// The whole body varied and is not JSON: body comparison is skipped.
    #[serde(default)]
    pub body: bool,
}

/// The `--learn-noise` / `--noise` file: noise per endpoint
/// (`METHOD /path/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Noise {
    /// Format version; 1.
    pub v: u32,
    /// Noise by endpoint.
    pub endpoints: BTreeMap<String, EndpointNoise>,
}

impl Default for Noise {
    fn default() -> Self {
        Self::new()
    }
}

impl Noise {
    /// An empty noise file.
    pub fn new() -> Self {
        Self {
            v: 1,
            endpoints: BTreeMap::new(),
        }
    }

    /// Reads a noise file.
    pub fn read(path: &Path) -> Result<Self, ReplayError> {
        let data = std::fs::read(path).map_err(|source| ReplayError::Io {
            op: "read",
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&data)
            .map_err(|e| ReplayError::Config(format!("noise file {}: {e}", path.display())))
    }

    /// Parses and checks a noise file's JSON; the error says what is wrong
    /// (the caller adds where).
    pub fn from_json(json: &[u8]) -> Result<Self, String> {
        let n: Self = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        if n.v != 1 {
            return Err(format!("version {} is not supported (expected 1)", n.v));
        }
        for p in n.endpoints.values().flat_map(|e| &e.paths) {
            PathPattern::parse(p).map_err(|e| e.to_string())?;
        }
        Ok(n)
    }

    /// Writes the file as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<(), ReplayError> {
        let data =
            serde_json::to_vec_pretty(self).map_err(|e| ReplayError::Internal(e.to_string()))?;
        std::fs::write(path, data).map_err(|source| ReplayError::Io {
            op: "write",
            path: path.to_owned(),
            source,
        })
    }

    /// Adds what differs between two answers to the same request.
    pub(crate) fn learn(&mut self, endpoint: &str, a: &Observed, b: &Observed) {
        let e = self.endpoints.entry(endpoint.to_owned()).or_default();
        for (name, va) in &a.headers {
            if b.headers.get(name) != Some(va) {
                e.headers.insert(name.clone());
            }
        }
        for name in b.headers.keys().filter(|n| !a.headers.contains_key(*n)) {
            e.headers.insert(name.clone());
        }
        match (&a.json, &b.json) {
            (Some(x), Some(y)) => e.paths.extend(differing_paths(x, y)),
            _ if a.body != b.body => e.body = true,
            _ => {}
        }
    }

    /// Merges another noise set in.
    pub fn merge(&mut self, other: &Noise) {
        for (k, v) in &other.endpoints {
            let e = self.endpoints.entry(k.clone()).or_default();
            e.paths.extend(v.paths.iter().cloned());
            e.headers.extend(v.headers.iter().cloned());
            e.body |= v.body;
        }
    }

    /// Noise for one endpoint, with paths parsed.
    pub(crate) fn for_endpoint(
        &self,
        endpoint: &str,
    ) -> (Vec<PathPattern>, BTreeSet<String>, bool) {
        match self.endpoints.get(endpoint) {
            None => (Vec::new(), BTreeSet::new(), false),
            Some(e) => (
                e.paths
                    .iter()
                    .filter_map(|p| PathPattern::parse(p).ok())
                    .collect(),
                e.headers.clone(),
                e.body,
            ),
        }
    }
}

/// One response as seen by the replayer.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    pub(crate) status: u16,
    /// Lowercase name to values joined by `, `.
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: bytes::Bytes,
    pub(crate) json: Option<serde_json::Value>,
}

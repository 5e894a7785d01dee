//! The results file: one JSON line per request the mock answered, and the
//! accuracy summary the replay report reads from it.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tapwire_model::ExchangeId;

/// How one request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A recorded response answered it.
    Hit,
    /// Nothing recorded matched; the mock answered 404 (502 for a CONNECT).
    Miss,
    /// Nothing recorded matched; the request went to the real host.
    Passthrough,
}

impl Outcome {
    /// `hit`, `miss` or `passthrough`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Passthrough => "passthrough",
        }
    }
}

/// One line of the results file (JSON Lines, see `docs/mock.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultRecord {
    /// When the request arrived.
    pub time: DateTime<Utc>,
    /// Traffic key `service:host:port`.
    pub key: String,
    /// Request method.
    pub method: String,
    /// Request path (no query: queries may hold secrets).
    pub path: String,
    /// How it was answered.
    pub outcome: Outcome,
    /// The recorded exchange that answered it (hits only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<ExchangeId>,
    /// Why nothing matched (misses and passthroughs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How well a recording covered the calls a run made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MockAccuracy {
    /// Requests answered from the recording.
    pub hits: u64,
    /// Requests nothing recorded matched.
    pub misses: u64,
    /// Misses forwarded to the real host.
    pub passthroughs: u64,
}

impl MockAccuracy {
    /// Counts one outcome.
    pub fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Hit => self.hits += 1,
            Outcome::Miss => self.misses += 1,
            Outcome::Passthrough => self.passthroughs += 1,
        }
    }

    /// All requests seen.
    pub fn total(&self) -> u64 {
        self.hits + self.misses + self.passthroughs
    }

    /// hits / (hits + misses + passthroughs); 1.0 when nothing was asked.
    pub fn ratio(&self) -> f64 {
        match self.total() {
            0 => 1.0,
            t => self.hits as f64 / t as f64,
        }
    }
}

impl std::fmt::Display for MockAccuracy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mock accuracy {:.1}% ({} hits, {} misses, {} passthroughs)",
            self.ratio() * 100.0,
            self.hits,
            self.misses,
            self.passthroughs
        )
    }
}

/// Counts the outcomes of `results`.
pub fn summarize<'a>(results: impl IntoIterator<Item = &'a ResultRecord>) -> MockAccuracy {
    let mut acc = MockAccuracy::default();
    for r in results {
        acc.add(r.outcome);
    }
    acc
}

/// Error reading or writing a results file.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The file system refused.
    #[error("{op} results file {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a result record.
    #[error("results file {path} line {line}: {source}")]
    Decode {
        /// Which file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// Reads every record of a results file.
pub fn read_results(path: &Path) -> Result<Vec<ResultRecord>, ResultsError> {
    let io = |op| {
        move |source| ResultsError::Io {
            op,
            path: path.to_owned(),
            source,
        }
    };
    let file = File::open(path).map_err(io("open"))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io("read"))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line).map_err(|source| ResultsError::Decode {
                path: path.to_owned(),
                line: i + 1,
                source,
            })?,
        );
    }
    Ok(out)
}

/// Appends records to a results file.
///
/// Writes go to an in-memory buffer under a mutex; a record is ~200 bytes,
/// so the occasional 8 KiB flush is the only syscall and is short enough
/// to do on a runtime thread.
#[derive(Debug)]
pub struct ResultsWriter {
    path: PathBuf,
    out: Mutex<BufWriter<File>>,
}

impl ResultsWriter {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> Result<Self, ResultsError> {
        let file = File::create(path).map_err(|source| ResultsError::Io {
            op: "create",
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            path: path.to_owned(),
            out: Mutex::new(BufWriter::new(file)),
        })
    }

    /// Appends one record; a failed write is logged, not fatal.
    pub fn write(&self, rec: &ResultRecord) {
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let res = serde_json::to_writer(&mut *out, rec)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"));
        if let Err(e) = res {
            tracing::error!(path = %self.path.display(), error = %e, "cannot write to the results file; results are lost");
        }
    }

    /// Writes everything buffered to the file.
    pub fn flush(&self) -> Result<(), ResultsError> {
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        out.flush().map_err(|source| ResultsError::Io {
            op: "flush",
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_summarize() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let w = ResultsWriter::create(&path).unwrap();
        for (o, reason) in [
            (Outcome::Hit, None),
            (Outcome::Hit, None),
            (Outcome::Miss, Some("no traffic to x:80 was recorded")),
            (Outcome::Passthrough, Some("path differs")),
        ] {
            w.write(&ResultRecord {
                time: Utc::now(),
                key: "shop:x:80".into(),
                method: "GET".into(),
                path: "/".into(),
                outcome: o,
                exchange: (o == Outcome::Hit).then(ExchangeId::new),
                reason: reason.map(str::to_owned),
            });
        }
        w.flush().unwrap();
        let back = read_results(&path).unwrap();
        assert_eq!(back.len(), 4);
        let acc = summarize(&back);
        assert_eq!((acc.hits, acc.misses, acc.passthroughs), (2, 1, 1));
        assert!((acc.ratio() - 0.5).abs() < 1e-9);
        assert_eq!(
            acc.to_string(),
            "mock accuracy 50.0% (2 hits, 1 misses, 1 passthroughs)"
        );
        let line = std::fs::read_to_string(&path).unwrap();
        assert!(line.contains(r#""outcome":"miss""#), "{line}");
        assert_eq!(MockAccuracy::default().ratio(), 1.0);
    }
}

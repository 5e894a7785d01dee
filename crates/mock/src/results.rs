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

/// How well a recording covered the calls a run made: the one mock-accuracy
/// type, used by the running mock (its metric and exit line) and by the
/// replay report (`--mock-results`).
///
/// Serialized (in `report.json`) as
/// `{"total", "hit", "miss", "passthrough", "other", "hit_rate"}`; `total`
/// and `hit_rate` are derived and ignored when read back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "AccuracyJson", from = "AccuracyJson")]
pub struct MockAccuracy {
    /// Requests answered from the recording.
    pub hits: u64,
    /// Requests nothing recorded matched.
    pub misses: u64,
    /// Misses forwarded to the real host.
    pub passthroughs: u64,
    /// Lines of a results file with no known outcome (unreadable, or written
    /// by another tool); a running mock never counts any.
    pub other: u64,
}

/// The serialized form of [`MockAccuracy`] (the `mock` object of `report.json`).
#[derive(Serialize, Deserialize)]
struct AccuracyJson {
    #[serde(default)]
    total: u64,
    #[serde(default)]
    hit: u64,
    #[serde(default)]
    miss: u64,
    #[serde(default)]
    passthrough: u64,
    #[serde(default)]
    other: u64,
    #[serde(default)]
    hit_rate: f64,
}

impl From<MockAccuracy> for AccuracyJson {
    fn from(a: MockAccuracy) -> Self {
        Self {
            total: a.total(),
            hit: a.hits,
            miss: a.misses,
            passthrough: a.passthroughs,
            other: a.other,
            hit_rate: a.ratio(),
        }
    }
}

impl From<AccuracyJson> for MockAccuracy {
    fn from(j: AccuracyJson) -> Self {
        Self {
            hits: j.hit,
            misses: j.miss,
            passthroughs: j.passthrough,
            other: j.other,
        }
    }
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

    /// All requests seen (and, when read from a file, lines with no known outcome).
    pub fn total(&self) -> u64 {
        self.hits + self.misses + self.passthroughs + self.other
    }

    /// hits / total; 1.0 when nothing was asked (nothing was missed).
    pub fn ratio(&self) -> f64 {
        match self.total() {
            0 => 1.0,
            t => self.hits as f64 / t as f64,
        }
    }

    /// Counts the outcomes in a results file leniently: only each line's
    /// `outcome` is read, other fields are ignored, and a line that is not
    /// JSON or has no known outcome counts as [`other`](Self::other). So a
    /// results file from a newer mock, or a hand-written one, still
    /// summarizes; use [`read_results`] to read every record strictly.
    pub fn read(path: &Path) -> Result<Self, ResultsError> {
        let io = |op| {
            move |source| ResultsError::Io {
                op,
                path: path.to_owned(),
                source,
            }
        };
        let file = File::open(path).map_err(io("open"))?;
        let mut acc = Self::default();
        for line in BufReader::new(file).lines() {
            let line = line.map_err(io("read"))?;
            acc.add_line(&line);
        }
        Ok(acc)
    }

    /// Counts one line of a results file (see [`read`](Self::read)); blank
    /// lines are skipped.
    pub fn add_line(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        #[derive(Deserialize)]
        struct OutcomeOnly {
            outcome: Option<Outcome>,
        }
        match serde_json::from_str::<OutcomeOnly>(line) {
            Ok(OutcomeOnly { outcome: Some(o) }) => self.add(o),
            _ => self.other += 1,
        }
    }
}

impl std::fmt::Display for MockAccuracy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mock accuracy {:.1}% ({} hits, {} misses, {} passthroughs",
            self.ratio() * 100.0,
            self.hits,
            self.misses,
            self.passthroughs
        )?;
        if self.other > 0 {
            write!(f, ", {} lines without a known outcome", self.other)?;
        }
        f.write_str(")")
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
        assert_eq!(MockAccuracy::read(&path).unwrap(), acc);
    }

    #[test]
    fn lenient_reading_counts_unknown_lines_as_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        std::fs::write(
            &path,
            concat!(
                "{\"outcome\":\"hit\",\"key\":\"GET /a\",\"future_field\":1}\n",
                "\n",
                "{\"outcome\":\"hit\"}\n",
                "{\"outcome\":\"miss\"}\n",
                "{\"outcome\":\"passthrough\"}\n",
                "{\"outcome\":\"teleported\"}\n",
                "not json\n",
            ),
        )
        .unwrap();
        let acc = MockAccuracy::read(&path).unwrap();
        assert_eq!(
            acc,
            MockAccuracy {
                hits: 2,
                misses: 1,
                passthroughs: 1,
                other: 2
            }
        );
        assert!((acc.ratio() - 2.0 / 6.0).abs() < 1e-9);
        assert!(acc
            .to_string()
            .ends_with("2 lines without a known outcome)"));
        assert!(MockAccuracy::read(&dir.path().join("absent")).is_err());
    }

    #[test]
    fn accuracy_serializes_as_the_report_section() {
        let acc = MockAccuracy {
            hits: 3,
            misses: 1,
            passthroughs: 0,
            other: 0,
        };
        let v = serde_json::to_value(acc).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"total": 4, "hit": 3, "miss": 1, "passthrough": 0, "other": 0, "hit_rate": 0.75})
        );
        let back: MockAccuracy = serde_json::from_value(v).unwrap();
        assert_eq!(back, acc);
    }
}

//! What a replay does: target, load shape, assertions and goals.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::diff::PathPattern;
use crate::goal::Goal;
use crate::noise::Noise;
use crate::progress::Progress;
use crate::ReplayError;

/// How requests are paced.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Closed model: this many virtual users, each sending its next request
    /// as soon as the previous answer arrived.
    Vus(u32),
    /// Open model: requests start at fixed intervals, this many per second,
    /// whether or not earlier ones have been answered.
    Rps(f64),
    /// Open model on the recording's own clock: recorded inter-arrival
    /// times divided by this factor (2.0 replays twice as fast).
    Speed(f64),
}

/// One stage of a ramp: over `duration`, the target (VUs or requests per
/// second, as the mode says) moves linearly from the previous stage's
/// target (0 before the first) to `target`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// How long the stage lasts, e.g. `"10s"`, `"1m30s"`.
    #[serde(with = "humantime_serde_compat")]
    pub duration: Duration,
    /// VUs (closed model) or requests per second (open model) at the end.
    pub target: f64,
}

/// A `--stage` value that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stage {value:?}: {why}; use DURATION:TARGET such as 30s:50 (move to 50 VUs, or 50 req/s with --rps, over 30 seconds)")]
pub struct StageError {
    value: String,
    why: String,
}

/// `DURATION:TARGET`, e.g. `30s:50` or `1m30s:0`: the command-line form of
/// one entry of the `--config` file's `stages`.
impl std::str::FromStr for Stage {
    type Err = StageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: String| StageError {
            value: s.to_owned(),
            why,
        };
        let (duration, target) = s
            .rsplit_once(':')
            .ok_or_else(|| err("no `:` between the duration and the target".into()))?;
        let duration = humantime::parse_duration(duration.trim())
            .map_err(|e| err(format!("duration {:?}: {e}", duration.trim())))?;
        let target = target
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| {
                err(format!(
                    "target {:?} is not a number of zero or more",
                    target.trim()
                ))
            })?;
        Ok(Self { duration, target })
    }
}

/// The `--config` file: `{"stages": [{"duration": "10s", "target": 50}]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadFile {
    /// Ramp stages, run in order; the run lasts as long as they do.
    pub stages: Vec<Stage>,
}

impl LoadFile {
    /// Reads a JSON load file (YAML is not supported: see docs/replay.md).
    pub fn read(path: &Path) -> Result<Self, ReplayError> {
        let text = std::fs::read(path).map_err(|source| ReplayError::Io {
            op: "read",
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&text).map_err(|e| ReplayError::Config(format!("{}: {e}", path.display())))
    }

    /// Parses and checks a load file's JSON; the error says what is wrong
    /// (the caller adds where).
    pub fn from_json(json: &[u8]) -> Result<Self, String> {
        let f: Self = serde_json::from_slice(json).map_err(|e| {
            format!("{e} (expected JSON like {{\"stages\": [{{\"duration\": \"10s\", \"target\": 50}}]}})")
        })?;
        if f.stages.is_empty() {
            return Err("`stages` is empty".into());
        }
        check_stages(&f.stages)?;
        Ok(f)
    }
}

/// Checks stages however they were made: targets zero or more, and a total
/// length that a clock can hold.
fn check_stages(stages: &[Stage]) -> Result<(), String> {
    if let Some(s) = stages.iter().find(|s| s.target.is_nan() || s.target < 0.0) {
        return Err(format!("stage target {} must be zero or more", s.target));
    }
    if stages_duration(stages).is_none() {
        return Err("the stages last longer than tapwire can count".into());
    }
    Ok(())
}

/// How long `stages` last together; `None` when the sum overflows.
pub(crate) fn stages_duration(stages: &[Stage]) -> Option<Duration> {
    stages
        .iter()
        .try_fold(Duration::ZERO, |acc, s| acc.checked_add(s.duration))
}

mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map_err(|e| serde::de::Error::custom(format!("duration {s:?}: {e}")))
    }
}

/// Everything a replay needs besides the snapshot.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// Base URL of the build under test, `http://host:port` or
    /// `https://host:port` (an optional path prefix is prepended to every
    /// recorded path).
    pub target: String,
    /// Pacing.
    pub mode: Mode,
    /// Stop starting requests after this long.
    pub duration: Option<Duration>,
    /// Passes over the recorded requests, per VU in the closed model and in
    /// total in the open model. When neither this nor `duration` nor
    /// `stages` is set, one pass.
    pub iterations: Option<u64>,
    /// Ramp stages; they set the run's length.
    pub stages: Vec<Stage>,
    /// Talk HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
    pub http2: bool,
    /// Send the recorded `Host` instead of the target's.
    pub keep_host: bool,
    /// PEM bundle of CAs trusted for an `https://` target, besides the
    /// system roots.
    pub cacert: Option<PathBuf>,
    /// Do not verify the `https://` target's certificate at all (a warning
    /// is logged): for self-signed test builds only.
    pub insecure: bool,
    /// Per-request deadline.
    pub timeout: Duration,
    /// Open model: sends that would exceed this many requests in flight are
    /// dropped and counted, like k6's dropped iterations.
    pub max_in_flight: usize,
    /// Response headers whose values must equal the recording's.
    pub assert_headers: Vec<String>,
    /// JSON paths left out of body comparison.
    pub ignore_paths: Vec<PathPattern>,
    /// Noise learnt earlier (`--noise`).
    pub noise: Option<Noise>,
    /// Learn noise first by sending every request twice, then replay with it;
    /// the learnt noise is in [`Report::learned_noise`](crate::Report).
    pub learn_noise: bool,
    /// Whether body and header comparisons run at all (status always counts).
    pub check_bodies: bool,
    /// Goals that fail the run.
    pub goals: Vec<Goal>,
    /// Traffic keys (`service:host:port`, or `*`) of the inbound requests to
    /// replay; empty replays them all (see [`tapwire_model::selects`]). The
    /// report lists them.
    pub keys: Vec<String>,
    /// JSON Lines written by the mock responder, for the mock accuracy section.
    pub mock_results: Option<PathBuf>,
    /// Base URL of a running mock responder's admin port (e.g.
    /// `http://orders-responder.shop.svc:4146`): its `/accuracy` is read
    /// after the run for the mock accuracy section. Excludes `mock_results`.
    pub mock_admin: Option<String>,
    /// A label for the build under test (`--build-tag`), carried into the report.
    pub build_tag: Option<String>,
    /// Live counters for a progress display.
    pub progress: Option<Arc<Progress>>,
}

impl ReplayConfig {
    /// A one-pass, one-VU replay against `target` with default checks.
    pub fn new(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            mode: Mode::Vus(1),
            duration: None,
            iterations: None,
            stages: Vec::new(),
            http2: false,
            keep_host: false,
            cacert: None,
            insecure: false,
            timeout: Duration::from_secs(30),
            max_in_flight: 1000,
            assert_headers: Vec::new(),
            ignore_paths: Vec::new(),
            noise: None,
            learn_noise: false,
            check_bodies: true,
            goals: Vec::new(),
            keys: Vec::new(),
            mock_results: None,
            mock_admin: None,
            build_tag: None,
            progress: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ReplayError> {
        let bad = |m: String| Err(ReplayError::Config(m));
        match self.mode {
            Mode::Vus(0) if self.stages.is_empty() => return bad("--vus must be at least 1".into()),
            Mode::Rps(r) if (r.is_nan() || r <= 0.0) && self.stages.is_empty() => {
                return bad(format!("--rps must be more than 0, not {r}"))
            }
            Mode::Speed(s) if s.is_nan() || s <= 0.0 => {
                return bad(format!("--speed must be more than 0, not {s}"))
            }
            Mode::Speed(_) if !self.stages.is_empty() => {
                return bad(
                    "stages (--stage or --config) work with --vus or --rps, not --speed".into(),
                )
            }
            _ => {}
        }
        check_stages(&self.stages).map_err(|e| ReplayError::Config(format!("stages: {e}")))?;
        if let Some(bad_key) = self.keys.iter().find(|k| !tapwire_model::is_selector(k)) {
            return bad(format!(
                "--key {bad_key:?} is not a selector; use service:host:port (e.g. orders:127.0.0.1:8080) or *"
            ));
        }
        if let Some(url) = &self.mock_admin {
            if self.mock_results.is_some() {
                return bad(
                    "--mock-admin and --mock-results both give the mock accuracy; choose one"
                        .into(),
                );
            }
            crate::mock_admin::accuracy_uri(url).map_err(ReplayError::Config)?;
        }
        if self.iterations == Some(0) {
            return bad("--iterations must be at least 1".into());
        }
        let rest = ["http://", "https://"]
            .iter()
            .find_map(|scheme| self.target.strip_prefix(scheme));
        match rest {
            None => {
                return bad(format!(
                    "target {:?} must be an http:// or https:// URL",
                    self.target
                ))
            }
            Some(r) if r.is_empty() || r.starts_with('/') => {
                return bad(format!("target {:?} has no host", self.target))
            }
            Some(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn load_files_are_checked() {
        let f =
            LoadFile::from_json(br#"{"stages": [{"duration": "1m30s", "target": 5}]}"#).unwrap();
        assert_eq!(f.stages[0].duration, Duration::from_secs(90));
        for (bad, why) in [
            (&br#"{"stages": []}"#[..], "empty"),
            (br#"{"stages": [{"duration": "1s", "target": -1}]}"#, "zero or more"),
            (br#"{"stages": [{"duration": "1s", "target": 1, "vus": 2}]}"#, "vus"),
            (br#"{"stages": [{"duration": "soon", "target": 1}]}"#, "soon"),
            // Each fits in a Duration; their sum does not.
            (
                br#"{"stages": [{"duration": "500000000000y", "target": 1}, {"duration": "500000000000y", "target": 1}]}"#,
                "longer than tapwire can count",
            ),
        ] {
            let e = LoadFile::from_json(bad).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn stages_parse_from_the_command_line() {
        let s: Stage = "1m30s:50".parse().unwrap();
        assert_eq!((s.duration, s.target), (Duration::from_secs(90), 50.0));
        let s: Stage = "500ms:0.5".parse().unwrap();
        assert_eq!((s.duration, s.target), (Duration::from_millis(500), 0.5));
        for (bad, why) in [
            ("30s", "no `:`"),
            ("soon:5", "duration \"soon\""),
            ("30s:many", "target \"many\""),
            ("30s:-1", "zero or more"),
            ("30s:inf", "zero or more"),
        ] {
            let e = bad.parse::<Stage>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains("DURATION:TARGET such as 30s:50"), "{e}");
        }
    }

    #[test]
    fn keys_and_the_mock_admin_url_are_checked() {
        let mut cfg = ReplayConfig::new("http://127.0.0.1:1");
        cfg.keys = vec!["svc:127.0.0.1:1".into(), "*".into()];
        cfg.mock_admin = Some("http://responder.shop.svc:4146/".into());
        assert!(cfg.validate().is_ok());
        cfg.keys = vec!["svc".into()];
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("--key \"svc\" is not a selector"), "{e}");
        cfg.keys.clear();
        cfg.mock_results = Some("results.jsonl".into());
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("choose one"), "{e}");
        cfg.mock_results = None;
        for bad in ["responder:4146", "https://responder:4146", "http://"] {
            cfg.mock_admin = Some(bad.into());
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains("--mock-admin"), "{bad}: {e}");
        }
    }
}

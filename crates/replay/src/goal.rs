//! Pass/fail goals over a run's summary: `latency.p99 > 200ms` fails the run
//! when it holds.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::report::Summary;

/// A number a goal can be about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Latency percentile or maximum, in milliseconds.
    Latency(LatencyStat),
    /// Share of requests that got no response (0..1).
    ErrorRate,
    /// Share of checked requests whose assertions all passed (0..1).
    PassRate,
    /// Completed requests per second over the run.
    Rps,
}

/// Which latency figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyStat {
    /// Median.
    P50,
    /// 90th percentile.
    P90,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
    /// Slowest request.
    Max,
}

const METRICS: &str = "latency.p50, latency.p90, latency.p95, latency.p99, latency.max, errors.rate, assertions.pass_rate, throughput.rps";

impl Metric {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "latency.p50" => Self::Latency(LatencyStat::P50),
            "latency.p90" => Self::Latency(LatencyStat::P90),
            "latency.p95" => Self::Latency(LatencyStat::P95),
            "latency.p99" => Self::Latency(LatencyStat::P99),
            "latency.max" => Self::Latency(LatencyStat::Max),
            "errors.rate" => Self::ErrorRate,
            "assertions.pass_rate" => Self::PassRate,
            "throughput.rps" => Self::Rps,
            _ => return None,
        })
    }

    /// The metric's value in `s` (latencies in milliseconds).
    pub fn value(&self, s: &Summary) -> f64 {
        match self {
            Self::Latency(l) => {
                let p = &s.latency_ms;
                match l {
                    LatencyStat::P50 => p.p50,
                    LatencyStat::P90 => p.p90,
                    LatencyStat::P95 => p.p95,
                    LatencyStat::P99 => p.p99,
                    LatencyStat::Max => p.max,
                }
            }
            Self::ErrorRate => s.error_rate,
            Self::PassRate => s.assertions.pass_rate,
            Self::Rps => s.throughput_rps,
        }
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => (a - b).abs() < 1e-9,
            Op::Ne => (a - b).abs() >= 1e-9,
        }
    }
}

/// `--fail-if METRIC OP VALUE`: the run fails when the comparison holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    text: String,
    metric: Metric,
    op: Op,
    /// Threshold, in the metric's unit (milliseconds for latency).
    threshold: f64,
}

/// A goal that could not be parsed; the message says what was expected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("bad goal {text:?}: {reason}")]
pub struct GoalError {
    /// The goal as given.
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

impl FromStr for Goal {
    type Err = GoalError;

    fn from_str(text: &str) -> Result<Self, GoalError> {
        let err = |reason: String| GoalError {
            text: text.to_owned(),
            reason,
        };
        let ops = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        let (pos, len, op) = ops
            .iter()
            .filter_map(|(s, op)| text.find(s).map(|p| (p, s.len(), *op)))
            .min_by_key(|(p, len, _)| (*p, usize::MAX - len))
            .ok_or_else(|| err("expected `METRIC OP VALUE`, e.g. `latency.p99 > 200ms`, with OP one of < <= > >= == !=".into()))?;
        let name = text[..pos].trim();
        let value = text[pos + len..].trim();
        let metric = Metric::parse(name)
            .ok_or_else(|| err(format!("unknown metric {name:?}; known: {METRICS}")))?;
        let threshold = match metric {
            Metric::Latency(_) => parse_ms(value).ok_or_else(|| {
                err(format!(
                    "{value:?} is not a duration (e.g. 200ms, 1.5s; a bare number is milliseconds)"
                ))
            })?,
            _ => parse_ratio(value)
                .ok_or_else(|| err(format!("{value:?} is not a number (e.g. 0.99 or 99%)")))?,
        };
        Ok(Self {
            text: text.trim().to_owned(),
            metric,
            op,
            threshold,
        })
    }
}

fn parse_ms(v: &str) -> Option<f64> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let n: f64 = v[..split].parse().ok()?;
    let factor = match v[split..].trim() {
        "" | "ms" => 1.0,
        "us" | "µs" => 1e-3,
        "s" => 1e3,
        "m" | "min" => 60e3,
        _ => return None,
    };
    Some(n * factor)
}

fn parse_ratio(v: &str) -> Option<f64> {
    match v.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok().map(|n| n / 100.0),
        None => v.parse().ok(),
    }
}

impl fmt::Display for Goal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Goal {
    /// Judges the goal against a summary.
    pub fn evaluate(&self, s: &Summary) -> GoalResult {
        let actual = self.metric.value(s);
        GoalResult {
            goal: self.text.clone(),
            actual,
            threshold: self.threshold,
            unit: match self.metric {
                Metric::Latency(_) => "ms",
                Metric::Rps => "req/s",
                _ => "ratio",
            }
            .to_owned(),
            passed: !self.op.holds(actual, self.threshold),
        }
    }
}

/// A goal and its verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoalResult {
    /// The goal as written (`latency.p99 > 200ms`).
    pub goal: String,
    /// The measured value.
    pub actual: f64,
    /// The threshold, in the same unit.
    pub threshold: f64,
    /// `ms`, `ratio` or `req/s`.
    pub unit: String,
    /// False when the fail condition held.
    pub passed: bool,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_goals_and_units() {
        let g: Goal = "latency.p99 > 200ms".parse().unwrap();
        assert_eq!(g.threshold, 200.0);
        assert_eq!(g.op, Op::Gt);
        let g: Goal = "latency.max>=1.5s".parse().unwrap();
        assert_eq!((g.threshold, g.op), (1500.0, Op::Ge));
        let g: Goal = "assertions.pass_rate < 99%".parse().unwrap();
        assert!((g.threshold - 0.99).abs() < 1e-9);
        let g: Goal = "errors.rate <= 0.01".parse().unwrap();
        assert_eq!(g.op, Op::Le);
        assert!("throughput.rps < 10".parse::<Goal>().is_ok());
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = "latency.p42 > 1ms".parse::<Goal>().unwrap_err();
        assert!(e.reason.contains("unknown metric"), "{e}");
        let e = "latency.p99 > fast".parse::<Goal>().unwrap_err();
        assert!(e.reason.contains("not a duration"), "{e}");
        let e = "latency.p99".parse::<Goal>().unwrap_err();
        assert!(e.reason.contains("METRIC OP VALUE"), "{e}");
    }

    #[test]
    fn verdicts() {
        let mut s = Summary::default();
        s.latency_ms.p99 = 250.0;
        s.assertions.pass_rate = 1.0;
        assert!(
            !"latency.p99 > 200ms"
                .parse::<Goal>()
                .unwrap()
                .evaluate(&s)
                .passed
        );
        assert!(
            "latency.p99 > 300ms"
                .parse::<Goal>()
                .unwrap()
                .evaluate(&s)
                .passed
        );
        assert!(
            "assertions.pass_rate < 0.99"
                .parse::<Goal>()
                .unwrap()
                .evaluate(&s)
                .passed
        );
    }
}

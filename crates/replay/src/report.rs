//! The outcome of a replay: what `report.json` holds, and how it is written
//! as JSON, HTML and JUnit XML.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path as Key;
use serde::{Deserialize, Serialize};
use tapwire_store::Location;

use crate::check::Problem;
use crate::goal::GoalResult;
use crate::noise::Noise;
use crate::ReplayError;

/// The report's machine-readable file, in a directory or a store location.
pub const REPORT_JSON: &str = "report.json";
/// Version of the `report.json` format.
pub const REPORT_VERSION: u32 = 1;
/// At most this many failed requests are listed in a report; all are counted.
pub const MAX_FAILURES: usize = 500;
/// Failed requests shown per endpoint in `junit.xml`.
const JUNIT_FAILURES: usize = 20;

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of latencies given in microseconds (sorted in place).
    pub fn of(us: &mut [u64]) -> Self {
        us.sort_unstable();
        let at = |q: f64| -> f64 {
            if us.is_empty() {
                return 0.0;
            }
            let rank = ((q * us.len() as f64).ceil() as usize).clamp(1, us.len());
            us[rank - 1] as f64 / 1e3
        };
        Self {
            p50: at(0.50),
            p90: at(0.90),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// Assertion counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Assertions {
    /// Requests whose answer was compared with a recorded response.
    pub checked: u64,
    /// Of those, requests with no problem.
    pub passed: u64,
    /// Of those, requests with at least one problem.
    pub failed: u64,
    /// `passed / checked`, 1 when nothing was checked.
    pub pass_rate: f64,
}

/// Run-wide figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Requests started.
    pub requests: u64,
    /// Requests that got no answer (connect error, reset, timeout).
    pub errors: u64,
    /// `errors / requests`.
    pub error_rate: f64,
    /// Open model: sends that started later than planned by more than
    /// one interval (their latency still counts from the planned time).
    pub late_sends: u64,
    /// Open model: planned sends skipped because too many were in flight.
    pub dropped_sends: u64,
    /// Assertion counts.
    pub assertions: Assertions,
    /// Latency of answered requests, measured from the planned send time
    /// in the open model.
    pub latency_ms: Percentiles,
    /// Answered requests per second of run time.
    pub throughput_rps: f64,
}

/// Figures for one endpoint (`METHOD /path/{id}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointStats {
    /// `METHOD /path/{id}`.
    pub endpoint: String,
    /// Requests sent.
    pub count: u64,
    /// Requests with no answer.
    pub errors: u64,
    /// Requests that failed an assertion (errors included).
    pub failed: u64,
    /// Latency of answered requests.
    pub latency_ms: Percentiles,
    /// Answers by status code.
    pub statuses: BTreeMap<String, u64>,
}

/// Requests finished in one second of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// Seconds since the run started.
    pub second: u64,
    /// Requests answered in that second.
    pub requests: u64,
    /// Requests with no answer in that second.
    pub errors: u64,
}

/// One request that failed, with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// Id of the recorded exchange.
    pub exchange: String,
    /// `METHOD /path/{id}`.
    pub endpoint: String,
    /// The path and query sent.
    pub target: String,
    /// What did not match.
    pub problems: Vec<Problem>,
}

/// What the cluster said about the workload under test while it was
/// replayed against: its events and the tails of its containers' logs.
/// Filled in by the replay controller, never by `tapwire replay` itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterFacts {
    /// The workload, as `Kind namespace/name` (e.g. `Deployment shop/orders`).
    pub workload: String,
    /// Events about the workload and its pods, oldest first.
    #[serde(default)]
    pub events: Vec<ClusterEvent>,
    /// The last lines each container logged.
    #[serde(default)]
    pub logs: Vec<ContainerLog>,
}

impl ClusterFacts {
    /// How many of the events are warnings.
    pub fn warnings(&self) -> usize {
        self.events.iter().filter(|e| e.is_warning()).count()
    }
}

/// One Kubernetes event, as `kubectl get events` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterEvent {
    /// When it last happened, when the cluster said.
    #[serde(default)]
    pub time: Option<DateTime<Utc>>,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short machine-readable reason, e.g. `BackOff` or `OOMKilling`.
    pub reason: String,
    /// What it is about, as `Kind/name` (e.g. `Pod/orders-7d9f-abc`).
    pub object: String,
    /// What happened, in the cluster's words.
    pub message: String,
    /// How many times it happened.
    pub count: i32,
}

impl ClusterEvent {
    /// True for a `Warning` event.
    pub fn is_warning(&self) -> bool {
        self.kind.eq_ignore_ascii_case("warning")
    }
}

/// The tail of one container's log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerLog {
    /// Pod name.
    pub pod: String,
    /// Container name.
    pub container: String,
    /// The last lines, oldest first.
    #[serde(default)]
    pub lines: Vec<String>,
    /// Why the log could not be read (then `lines` is empty or partial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything a replay found; serialized as `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Format version ([`REPORT_VERSION`]).
    pub v: u32,
    /// Snapshot id.
    pub snapshot_id: String,
    /// Snapshot name.
    pub snapshot_name: String,
    /// Base URL replayed against.
    pub target: String,
    /// The build under test, as `--build-tag` named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_tag: Option<String>,
    /// Load shape, in words (`1 VU, 1 iteration`).
    pub load: String,
    /// When the run started.
    pub started: DateTime<Utc>,
    /// How long it ran, in seconds.
    pub duration_s: f64,
    /// Run-wide figures.
    pub summary: Summary,
    /// Per endpoint, by key.
    pub endpoints: Vec<EndpointStats>,
    /// Throughput per second of the run.
    pub throughput: Vec<Second>,
    /// Failed requests (at most [`MAX_FAILURES`]).
    pub failures: Vec<Failure>,
    /// Goals and verdicts.
    pub goals: Vec<GoalResult>,
    /// Traffic keys of the inbound requests replayed (`--key`); empty when
    /// all were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// Mock responder accuracy read from `--mock-results` or
    /// `--mock-admin`, when given and readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock: Option<tapwire_mock::MockAccuracy>,
    /// Why the mock accuracy asked for could not be read (then `mock` is
    /// absent): a `--mock-admin` that did not answer, or answered wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock_error: Option<String>,
    /// Noise learnt by this run (`--learn-noise`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned_noise: Option<Noise>,
    /// Events and logs of the workload under test, added by the replay
    /// controller after the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterFacts>,
    /// No goal missed and no assertion failed.
    pub passed: bool,
}

impl Report {
    /// True when every goal passed.
    pub fn goals_passed(&self) -> bool {
        self.goals.iter().all(|g| g.passed)
    }

    /// Writes `report.json`, `report.html` and `junit.xml` into `dir`
    /// (created if needed).
    pub fn write(&self, dir: &Path) -> Result<(), ReplayError> {
        let io = |op, path: &Path| {
            let path = path.to_owned();
            move |source| ReplayError::Io { op, path, source }
        };
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        for (name, data) in self.files()? {
            let p = dir.join(name);
            std::fs::write(&p, data).map_err(io("write", &p))?;
        }
        Ok(())
    }

    /// The report's files by name, `report.json` last.
    fn files(&self) -> Result<[(&'static str, Vec<u8>); 3], ReplayError> {
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| ReplayError::Internal(e.to_string()))?;
        Ok([
            ("report.html", crate::html::render(self).into_bytes()),
            ("junit.xml", self.junit().into_bytes()),
            (REPORT_JSON, json),
        ])
    }

    /// Uploads `report.html`, `junit.xml` and `report.json` into the store
    /// location `to`, each object whole or not at all; `report.json` goes
    /// last, so a reader that finds it finds the other two.
    pub async fn upload(&self, to: &Location) -> Result<(), ReplayError> {
        for (name, data) in self.files()? {
            to.put(&Key::from(name), Bytes::from(data)).await?;
        }
        Ok(())
    }

    /// Reads the `report.json` that [`upload`](Self::upload) wrote into `from`.
    pub async fn fetch(from: &Location) -> Result<Self, ReplayError> {
        let data = from.get(&Key::from(REPORT_JSON)).await?;
        serde_json::from_slice(&data).map_err(|e| {
            ReplayError::Config(format!(
                "{}/{REPORT_JSON} is not a tapwire report: {e}",
                from.url()
            ))
        })
    }

    /// Reads a `report.json`.
    pub fn read(dir_or_file: &Path) -> Result<Self, ReplayError> {
        let p = if dir_or_file.is_dir() {
            dir_or_file.join("report.json")
        } else {
            dir_or_file.to_owned()
        };
        let data = std::fs::read(&p).map_err(|source| ReplayError::Io {
            op: "read",
            path: p.clone(),
            source,
        })?;
        serde_json::from_slice(&data).map_err(|e| {
            ReplayError::Config(format!("{} is not a tapwire report: {e}", p.display()))
        })
    }

    /// JUnit XML: one test case per endpoint (per-request cases would run
    /// to millions in a load test), its failure listing the failed requests.
    pub fn junit(&self) -> String {
        let mut by_ep: BTreeMap<&str, Vec<&Failure>> = BTreeMap::new();
        for f in &self.failures {
            by_ep.entry(&f.endpoint).or_default().push(f);
        }
        let failing = self.endpoints.iter().filter(|e| e.failed > 0).count();
        let goals_failed = self.goals.iter().filter(|g| !g.passed).count();
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        x.push_str(&format!(
            "<testsuites name=\"tapwire replay\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">\n",
            self.endpoints.len() + self.goals.len(),
            failing + goals_failed,
            self.duration_s
        ));
        x.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\" timestamp=\"{}\">\n",
            esc(&format!("replay {}", self.snapshot_name)),
            self.endpoints.len(),
            failing,
            self.duration_s,
            self.started.to_rfc3339()
        ));
        for e in &self.endpoints {
            x.push_str(&format!(
                "    <testcase classname=\"endpoints\" name=\"{}\" time=\"{:.3}\">\n",
                esc(&e.endpoint),
                e.latency_ms.p50 / 1e3
            ));
            if e.failed > 0 {
                let mut body = String::new();
                let listed = by_ep.get(e.endpoint.as_str()).map_or(&[][..], |v| &v[..]);
                for f in listed.iter().take(JUNIT_FAILURES) {
                    body.push_str(&format!("{} (exchange {})\n", f.target, f.exchange));
                    for p in &f.problems {
                        body.push_str(&format!("  {}\n", p.summary()));
                        if let Problem::Json { diffs, .. } = p {
                            for d in diffs {
                                body.push_str(&format!(
                                    "    {}: expected {} got {}\n",
                                    d.path,
                                    show(&d.expected),
                                    show(&d.actual)
                                ));
                            }
                        }
                    }
                }
                if listed.len() > JUNIT_FAILURES {
                    body.push_str(&format!(
                        "… {} more in report.json\n",
                        listed.len() - JUNIT_FAILURES
                    ));
                }
                x.push_str(&format!(
                    "      <failure message=\"{}\" type=\"assertion\">{}</failure>\n",
                    esc(&format!("{} of {} requests failed", e.failed, e.count)),
                    esc(&body)
                ));
            }
            x.push_str("    </testcase>\n");
        }
        x.push_str("  </testsuite>\n");
        x.push_str(&format!(
            "  <testsuite name=\"goals\" tests=\"{}\" failures=\"{}\">\n",
            self.goals.len(),
            goals_failed
        ));
        for g in &self.goals {
            x.push_str(&format!(
                "    <testcase classname=\"goals\" name=\"{}\">\n",
                esc(&g.goal)
            ));
            if !g.passed {
                x.push_str(&format!(
                    "      <failure message=\"{}\" type=\"goal\"/>\n",
                    esc(&format!("measured {:.3} {}", g.actual, g.unit))
                ));
            }
            x.push_str("    </testcase>\n");
        }
        x.push_str("  </testsuite>\n</testsuites>\n");
        x
    }
}

/// A JSON value for a diff line; `(absent)` for a missing one.
pub(crate) fn show(v: &Option<serde_json::Value>) -> String {
    v.as_ref()
        .map_or_else(|| "(absent)".to_owned(), |v| v.to_string())
}

/// Escapes text for XML and HTML, dropping characters XML 1.0 cannot carry.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            '\n' | '\t' | '\r' => o.push(c),
            c if (c as u32) < 0x20 => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).map(|n| n * 1000).collect();
        let p = Percentiles::of(&mut v);
        assert_eq!((p.p50, p.p99, p.max), (50.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(&mut []).p99, 0.0);
    }

    #[test]
    fn long_figures_survive_a_json_round_trip() {
        // A throughput that once came back one ulp off without serde_json's
        // float_roundtrip feature, failing a report comparison in CI.
        let rps = 3_825.985_018_973_059_6_f64;
        let text = serde_json::to_string(&rps).expect("encode");
        assert_eq!(serde_json::from_str::<f64>(&text).expect("decode"), rps);
    }

    fn json_build_tag(r: &Report) -> String {
        serde_json::to_value(r).expect("encode")["build_tag"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn sample() -> Report {
        Report {
            v: REPORT_VERSION,
            snapshot_id: "snap-1".into(),
            snapshot_name: "nightly".into(),
            target: "http://orders:8080".into(),
            build_tag: Some("v2.3.1".into()),
            load: "1 VU, 1 iteration".into(),
            started: DateTime::<Utc>::from_timestamp(1_700_000_000, 0).expect("time"),
            duration_s: 1.5,
            summary: Summary {
                requests: 10,
                ..Summary::default()
            },
            endpoints: Vec::new(),
            throughput: Vec::new(),
            failures: Vec::new(),
            goals: Vec::new(),
            keys: Vec::new(),
            mock: None,
            mock_error: None,
            learned_noise: None,
            cluster: None,
            passed: true,
        }
    }

    fn with_cluster() -> Report {
        Report {
            cluster: Some(ClusterFacts {
                workload: "Deployment shop/orders".into(),
                events: vec![
                    ClusterEvent {
                        time: DateTime::<Utc>::from_timestamp(1_700_000_010, 0),
                        kind: "Normal".into(),
                        reason: "Pulled".into(),
                        object: "Pod/orders-7d9f-abc".into(),
                        message: "image pulled".into(),
                        count: 1,
                    },
                    ClusterEvent {
                        time: None,
                        kind: "Warning".into(),
                        reason: "BackOff".into(),
                        object: "Pod/orders-7d9f-abc".into(),
                        message: "Back-off <restarting> failed container & \"app\"".into(),
                        count: 3,
                    },
                ],
                logs: vec![
                    ContainerLog {
                        pod: "orders-7d9f-abc".into(),
                        container: "app".into(),
                        lines: vec!["panic: <nil> map & \"boom\"".into()],
                        error: None,
                    },
                    ContainerLog {
                        pod: "orders-7d9f-abc".into(),
                        container: "tapwire-proxy".into(),
                        lines: Vec::new(),
                        error: Some("container is waiting to start".into()),
                    },
                ],
            }),
            ..sample()
        }
    }

    #[test]
    fn cluster_facts_round_trip_and_render_escaped() {
        let report = with_cluster();
        let json = serde_json::to_value(&report).expect("encode");
        let cluster = &json["cluster"];
        assert_eq!(cluster["workload"], "Deployment shop/orders");
        assert_eq!(cluster["events"][1]["type"], "Warning");
        assert_eq!(cluster["events"][0]["time"], "2023-11-14T22:13:30Z");
        assert!(cluster["logs"][0].get("error").is_none(), "{cluster}");
        let back: Report = serde_json::from_value(json).expect("decode");
        assert_eq!(back, report);
        assert_eq!(report.cluster.as_ref().map(ClusterFacts::warnings), Some(1));

        let html = crate::html::render(&report);
        assert!(html.contains("<h2>Cluster</h2>"), "{html}");
        assert!(
            html.contains("Back-off &lt;restarting&gt; failed container &amp; &quot;app&quot;"),
            "{html}"
        );
        assert!(
            html.contains("panic: &lt;nil&gt; map &amp; &quot;boom&quot;"),
            "{html}"
        );
        assert!(html.contains("container is waiting to start"), "{html}");
        assert!(!html.contains("<restarting>") && !html.contains("<nil>"));
        assert!(html.contains("(build <code>v2.3.1</code>)"), "{html}");
        assert_eq!(json_build_tag(&report), "v2.3.1");
        // A report without cluster facts has no section and no key.
        let plain = sample();
        assert!(!crate::html::render(&plain).contains("<h2>Cluster</h2>"));
        let json = serde_json::to_value(&plain).expect("encode");
        for absent in ["cluster", "keys", "mock", "mock_error"] {
            assert!(json.get(absent).is_none(), "{absent}: {json}");
        }
        // Fields may be left out by a writer: lists default to empty.
        let minimal: ClusterFacts =
            serde_json::from_str(r#"{"workload": "Deployment shop/orders"}"#).expect("decode");
        assert!(minimal.events.is_empty() && minimal.logs.is_empty());
    }

    #[test]
    fn an_unavailable_mock_accuracy_is_said_in_every_format() {
        let report = Report {
            mock_error: Some(
                "GET http://responder:4146/accuracy failed: connection refused".into(),
            ),
            ..sample()
        };
        let json = serde_json::to_value(&report).expect("encode");
        assert!(json.get("mock").is_none());
        assert_eq!(
            json["mock_error"],
            "GET http://responder:4146/accuracy failed: connection refused"
        );
        let html = crate::html::render(&report);
        assert!(html.contains("Mock accuracy"), "{html}");
        assert!(html.contains("unavailable"), "{html}");
        assert!(html.contains("connection refused"), "{html}");
    }

    async fn round_trip(to: &Location) {
        let report = with_cluster();
        report.upload(to).await.expect("upload");
        assert_eq!(Report::fetch(to).await.expect("fetch"), report);
        for name in ["report.html", "junit.xml"] {
            assert!(to.exists(&Key::from(name)).await.expect("stat"), "{name}");
        }
    }

    #[tokio::test]
    async fn a_report_uploaded_to_a_file_url_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("file://{}/reports/shop/nightly", dir.path().display());
        round_trip(&Location::open(&url).expect("open")).await;
        assert!(dir
            .path()
            .join("reports/shop/nightly/report.json")
            .is_file());
        // Nothing there yet: an error, not a panic.
        let empty = Location::open(&format!("file://{}/none", dir.path().display())).expect("open");
        assert!(matches!(
            Report::fetch(&empty).await,
            Err(ReplayError::Store(_))
        ));
    }

    #[tokio::test]
    async fn a_report_uploaded_to_s3_reads_back() {
        if !tapwire_test_support::require_python_modules(&["moto.server"]) {
            return;
        }
        let s3 = tapwire_test_support::cloud::ObjectServer::moto_s3("reports");
        let config: Vec<(String, String)> = s3
            .env
            .iter()
            .map(|(k, v)| (k.to_lowercase(), v.clone()))
            .collect();
        let config: Vec<(&str, &str)> = config
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let to = Location::open_with(&s3.url("reports/shop/nightly"), &config).expect("open");
        round_trip(&to).await;
    }

    #[test]
    fn escaping() {
        assert_eq!(
            esc("<a href=\"x\">&\u{1}"),
            "&lt;a href=&quot;x&quot;&gt;&amp;\u{fffd}"
        );
    }
}

//! The `TrafficReplay` custom resource (`tapwire.dev/v1alpha1`): replay a
//! snapshot against a workload, and read the verdict from its status.
//!
//! The CRD YAML under `charts/tapwire/crds/` is generated from these types
//! (`tapwire operator crd`); a test fails when the committed file drifts.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What to replay, against what, and how.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tapwire.dev",
    version = "v1alpha1",
    kind = "TrafficReplay",
    plural = "trafficreplays",
    singular = "trafficreplay",
    shortname = "replay",
    namespaced,
    status = "TrafficReplayStatus",
    printcolumn = r#"{"name":"Workload","type":"string","jsonPath":".spec.workload.name"}"#,
    printcolumn = r#"{"name":"Snapshot","type":"string","jsonPath":".spec.snapshot"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Pass Rate","type":"number","jsonPath":".status.summary.passRate"}"#,
    printcolumn = r#"{"name":"P99 ms","type":"number","jsonPath":".status.summary.p99Ms"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TrafficReplaySpec {
    /// The snapshot to replay (its id or name in the store).
    pub snapshot: String,
    /// The workload under test.
    pub workload: WorkloadRef,
    /// Which halves run: mocks and tests (`full-replay`, the default),
    /// mocks only (`responder-only`), or tests against real dependencies
    /// (`generator-only`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ReplayMode>,
    /// The load and the checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<TestSpec>,
    /// Outbound keys (`service:host:port`, `*` for all) answered by mocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mocks: Option<Vec<String>>,
    /// Inbound keys (`service:host:port`, `*` for all) replayed as tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<Vec<String>>,
    /// What to undo afterwards: `inventory` (default) restores the
    /// workload's saved spec, `all` also deletes the workload, `none`
    /// leaves everything as the replay left it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<Cleanup>,
    /// The longest the whole replay may take (`15m` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// A label for the build under test, carried into the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_tag: Option<String>,
}

/// A workload in the cluster.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    /// `Deployment` (default), `StatefulSet` or `DaemonSet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Its name.
    pub name: String,
    /// Its namespace; the resource's own by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Which components a replay runs.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ReplayMode {
    /// Responder for the outbound calls and generator for the inbound ones.
    FullReplay,
    /// Only the responder: the workload runs against mocks, traffic comes from elsewhere.
    ResponderOnly,
    /// Only the generator, against the workload's real dependencies.
    GeneratorOnly,
}

impl ReplayMode {
    /// Whether a generator Job runs.
    pub fn needs_generator(self) -> bool {
        !matches!(self, Self::ResponderOnly)
    }

    /// Whether a responder runs.
    pub fn needs_responder(self) -> bool {
        !matches!(self, Self::GeneratorOnly)
    }
}

/// What to undo when the replay ends.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Cleanup {
    /// Delete what the replay created and restore the workload's saved spec.
    Inventory,
    /// As `inventory`, and delete the workload too.
    All,
    /// Leave everything in place (for debugging).
    None,
}

/// Load shape and checks, as `tapwire replay` takes them.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestSpec {
    /// Closed model: this many virtual users, each replaying in recorded order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vus: Option<u32>,
    /// Open model: this many requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rps: Option<f64>,
    /// Stop after this long (`30s`, `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Passes over the snapshot's requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<u64>,
    /// Ramp stages: `{duration: 30s, target: 50}` (VUs, or req/s with `rps`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageSpec>,
    /// Response headers whose values must equal the recording's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assert_headers: Vec<String>,
    /// JSON paths left out of body comparison (`$.id`, `$.items[*].ts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_paths: Vec<String>,
    /// Goals that fail the replay: `latency.p99 > 200ms`, `assertions.pass_rate < 0.99`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub goals: Vec<String>,
}

/// One ramp stage.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct StageSpec {
    /// How long the stage lasts (`10s`, `1m30s`).
    pub duration: String,
    /// VUs or requests per second at the end of the stage.
    pub target: f64,
}

/// Where a replay is.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// Accepted, nothing started.
    Pending,
    /// The responder is starting.
    StartingMocks,
    /// Waiting for the workload to be ready with its outbound calls routed.
    WaitingForWorkload,
    /// The generator is running.
    Running,
    /// Restoring the workload and removing what the replay created.
    CleaningUp,
    /// Done; the report's verdict is in the `Ready` condition.
    Complete,
    /// Ended without a verdict; `Ready` says why.
    Failed,
}

/// Figures from the report.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SummaryStatus {
    /// Requests sent.
    pub requests: u64,
    /// Share of checked responses that matched the recording (0..1).
    pub pass_rate: f64,
    /// Latency percentiles in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Share of outbound calls the responder answered from the recording (0..1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock_accuracy: Option<f64>,
}

/// What the controller has done and found.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficReplayStatus {
    /// Where the replay is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// `MocksReady`, and `Ready` with reason `Passed`, `MissedGoals` or `Error`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// When the controller started work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When it finished (including cleanup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// The report's headline figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<SummaryStatus>,
    /// Where the full report is stored (a store URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// A human sentence about the current state or the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

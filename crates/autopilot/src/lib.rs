//! GKE Autopilot readiness: checks Kubernetes manifests against the rules
//! Autopilot's admission enforces, and writes the WorkloadAllowlist that
//! tapwire's eBPF DaemonSet needs there.
//!
//! ```
//! use tapwire_autopilot::{check, CheckOptions, Manifests};
//! let manifests = Manifests::parse("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: true\n  containers: []\n")?;
//! let violations = check(&manifests.workloads, &CheckOptions::default());
//! assert_eq!(violations[0].message, "enabling hostNetwork is not allowed in Autopilot.");
//! # Ok::<(), tapwire_autopilot::ParseError>(())
//! ```

mod allowlist;
mod check;
mod manifest;
mod quantity;

pub use allowlist::{allowlist, nettap, Allowlist, AllowlistError, PinnedImage};
pub use check::{
    check, denial, CheckOptions, Policy, Violation, DEFAULT_CAPABILITIES, HOST_PATH_PREFIX,
    RESOURCES,
};
pub use manifest::{Manifests, ObjectRef, ParseError, Workload, WORKLOAD_KINDS};
pub use quantity::{Quantity, QuantityError};

//! GKE WorkloadAllowlists: writing the one tapwire's eBPF DaemonSet needs,
//! and reading allowlists so that `check` exempts the workloads they cover.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use serde::{Deserialize, Serialize};

use crate::check::Policy;

/// The eBPF DaemonSet as the Helm chart renders it; the allowlist matches
/// exactly this, so the chart and [`allowlist`] must change together
/// (`crates/cli/tests/helm_chart.rs` checks one against the other).
pub mod nettap {
    /// The DaemonSet's container.
    pub const CONTAINER: &str = "nettap";
    /// Its arguments (the image's entrypoint is `tapwire`).
    pub const ARGS: &[&str] = &["nettap"];
    /// hostPath volumes: (volume name, host path, mount path, read-only).
    pub const HOST_PATHS: &[(&str, &str, &str, bool)] = &[
        ("debugfs", "/sys/kernel/debug", "/sys/kernel/debug", false),
        ("bpffs", "/sys/fs/bpf", "/sys/fs/bpf", false),
        ("host-proc", "/proc", "/host/proc", true),
    ];
    /// The Autopilot policies it needs lifted.
    pub const EXEMPTIONS: &[&str] = &[
        "autogke-disallow-privilege",
        "autogke-disallow-hostnamespaces",
        "autogke-no-write-mode-hostpath",
    ];
    /// The first GKE version that installs customer WorkloadAllowlists.
    pub const MIN_GKE_VERSION: &str = "1.32.0-gke.1000000";
    /// Name prefix; the allowlist is named after the digest it pins, so
    /// every release of the image gets its own.
    pub const NAME_PREFIX: &str = "tapwire-nettap-";
    /// The pod label pointing Autopilot at the allowlist.
    pub const MATCHING_LABEL: &str = "cloud.google.com/matching-allowlist";
}

/// A reference that cannot be pinned, or an allowlist that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowlistError {
    /// The image reference has no usable digest.
    #[error("{reference:?} is not pinned to a digest: a WorkloadAllowlist admits exactly one image build, so give the reference as REPOSITORY@sha256:<64 hex digits> (find the digest with `docker buildx imagetools inspect IMAGE:TAG` or `crane digest IMAGE:TAG`){why}")]
    NotPinned {
        /// What was given.
        reference: String,
        /// More detail, starting with `: ` when present.
        why: String,
    },
    /// A WorkloadAllowlist document that does not parse.
    #[error("not a WorkloadAllowlist: {0}")]
    Invalid(String),
}

/// An image reference split at its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedImage {
    /// Registry and repository, without tag (`ghcr.io/tapwire/tapwire`).
    pub repository: String,
    /// `sha256:` and 64 lower-case hex digits.
    pub digest: String,
}

impl PinnedImage {
    /// Parses `REPOSITORY[:TAG]@sha256:<64 hex>`.
    pub fn parse(reference: &str) -> Result<Self, AllowlistError> {
        let not_pinned = |why: &str| AllowlistError::NotPinned {
            reference: reference.to_owned(),
            why: if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            },
        };
        let Some((name, digest)) = reference.trim().split_once('@') else {
            return Err(not_pinned(""));
        };
        let Some(hex) = digest.strip_prefix("sha256:") else {
            return Err(not_pinned("only sha256 digests are accepted"));
        };
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(not_pinned(&format!(
                "the digest has {} characters; it must be 64 lower-case hex digits",
                hex.len()
            )));
        }
        // A tag follows the last `:` after the last `/` (a registry port does not).
        let repository = match name.rfind(':') {
            Some(i) if !name[i..].contains('/') => &name[..i],
            _ => name,
        };
        if repository.is_empty() || repository.contains(char::is_whitespace) {
            return Err(not_pinned("the repository name is missing or has spaces"));
        }
        Ok(Self {
            repository: repository.to_owned(),
            digest: digest.to_owned(),
        })
    }

    /// `tapwire-nettap-` and the digest's first 12 hex digits.
    pub fn allowlist_name(&self) -> String {
        let hex = self.digest.trim_start_matches("sha256:");
        format!("{}{}", nettap::NAME_PREFIX, &hex[..12])
    }
}

/// The WorkloadAllowlist (`auto.gke.io/v1`) that lets tapwire's eBPF
/// DaemonSet (`tapwire nettap`: privileged, hostPID, hostNetwork, hostPath
/// mounts of /sys/kernel/debug, /sys/fs/bpf and /proc) run on GKE Autopilot,
/// pinned to the image digest in `image_ref`.
pub fn allowlist(image_ref: &str) -> Result<String, AllowlistError> {
    let image = PinnedImage::parse(image_ref)?;
    let mounts = nettap::HOST_PATHS
        .iter()
        .map(|&(name, _, mount, read_only)| MountOut {
            name,
            mount_path: mount,
            read_only,
        })
        .collect();
    let volumes = nettap::HOST_PATHS
        .iter()
        .map(|&(name, path, _, _)| VolumeOut {
            name,
            host_path: HostPathOut { path },
        })
        .collect();
    let doc = AllowlistOut {
        api_version: "auto.gke.io/v1",
        kind: "WorkloadAllowlist",
        min_gke_version: nettap::MIN_GKE_VERSION,
        metadata: MetadataOut {
            name: image.allowlist_name(),
            labels: BTreeMap::from([("app.kubernetes.io/name", "tapwire")]),
        },
        exemptions: nettap::EXEMPTIONS.to_vec(),
        matching_criteria: CriteriaOut {
            host_pid: true,
            host_network: true,
            containers: vec![ContainerOut {
                name: nettap::CONTAINER,
                image: image.repository.clone(),
                args: nettap::ARGS.to_vec(),
                security_context: SecurityOut { privileged: true },
                volume_mounts: mounts,
            }],
            volumes,
        },
        container_image_digests: vec![DigestsOut {
            container_name: nettap::CONTAINER,
            image_digests: vec![image.digest.clone()],
        }],
    };
    let yaml = serde_norway::to_string(&doc)
        .map_err(|e| AllowlistError::Invalid(format!("cannot write YAML: {e}")))?;
    Ok(format!(
        "# WorkloadAllowlist for tapwire's eBPF DaemonSet (tapwire nettap), pinned to\n\
         # {}@{}.\n\
         # Upload it to the Cloud Storage bucket your organization policy allows and\n\
         # install it with an AllowlistSynchronizer (see docs/helm.md). A new image\n\
         # digest needs a new allowlist.\n{yaml}",
        image.repository, image.digest
    ))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AllowlistOut {
    api_version: &'static str,
    kind: &'static str,
    #[serde(rename = "minGKEVersion")]
    min_gke_version: &'static str,
    metadata: MetadataOut,
    exemptions: Vec<&'static str>,
    matching_criteria: CriteriaOut,
    container_image_digests: Vec<DigestsOut>,
}

#[derive(Serialize)]
struct MetadataOut {
    name: String,
    labels: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CriteriaOut {
    #[serde(rename = "hostPID")]
    host_pid: bool,
    host_network: bool,
    containers: Vec<ContainerOut>,
    volumes: Vec<VolumeOut>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContainerOut {
    name: &'static str,
    image: String,
    args: Vec<&'static str>,
    security_context: SecurityOut,
    volume_mounts: Vec<MountOut>,
}

#[derive(Serialize)]
struct SecurityOut {
    privileged: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MountOut {
    name: &'static str,
    mount_path: &'static str,
    read_only: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VolumeOut {
    name: &'static str,
    host_path: HostPathOut,
}

#[derive(Serialize)]
struct HostPathOut {
    path: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DigestsOut {
    container_name: &'static str,
    image_digests: Vec<String>,
}

/// A WorkloadAllowlist as `check` uses it: which containers, pinned to
/// which digests, are exempt from which policies.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    /// `metadata.name`.
    pub name: String,
    /// The policies it lifts (names tapwire does not know are ignored).
    pub exemptions: Vec<Policy>,
    /// Accepted digests per container name.
    pub digests: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AllowlistIn {
    kind: String,
    #[serde(default)]
    metadata: MetadataIn,
    #[serde(default)]
    exemptions: Vec<String>,
    #[serde(default)]
    container_image_digests: Vec<DigestsIn>,
}

#[derive(Deserialize, Default)]
struct MetadataIn {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DigestsIn {
    container_name: String,
    #[serde(default)]
    image_digests: Vec<String>,
}

impl Allowlist {
    /// Reads the WorkloadAllowlists in a YAML stream (other kinds are ignored).
    pub fn parse_all(text: &str) -> Result<Vec<Self>, AllowlistError> {
        let mut out = Vec::new();
        for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
            let value = serde_json::Value::deserialize(doc)
                .map_err(|e| AllowlistError::Invalid(format!("document {}: {e}", i + 1)))?;
            if value.get("kind").and_then(|k| k.as_str()) != Some("WorkloadAllowlist") {
                continue;
            }
            let a: AllowlistIn = serde_json::from_value(value)
                .map_err(|e| AllowlistError::Invalid(format!("document {}: {e}", i + 1)))?;
            debug_assert_eq!(a.kind, "WorkloadAllowlist");
            out.push(Self {
                name: a.metadata.name,
                exemptions: a
                    .exemptions
                    .iter()
                    .filter_map(|n| Policy::from_name(n))
                    .collect(),
                digests: a
                    .container_image_digests
                    .into_iter()
                    .map(|d| (d.container_name, d.image_digests))
                    .collect(),
            });
        }
        Ok(out)
    }

    /// True when the pod runs at least one container the allowlist pins,
    /// and every such container uses an image with a pinned digest.
    ///
    /// Autopilot matches more than this (the whole `matchingCriteria`:
    /// arguments, mounts, security context); this is the part a manifest
    /// gets wrong most often, the digest.
    pub fn matches(&self, pod: &PodSpec) -> bool {
        let mut any = false;
        for c in pod.init_containers.iter().flatten().chain(&pod.containers) {
            let Some(accepted) = self.digests.get(&c.name) else {
                continue;
            };
            let digest = c
                .image
                .as_deref()
                .and_then(|i| i.split_once('@'))
                .map(|(_, d)| d);
            match digest {
                Some(d) if accepted.iter().any(|a| a == d) => any = true,
                _ => return false,
            }
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn allowlist_pins_the_digest() {
        let y = allowlist(&format!("ghcr.io/tapwire/tapwire:1.2.3@{DIGEST}")).unwrap();
        let v: serde_json::Value = serde_norway::from_str(&y).unwrap();
        assert_eq!(v["apiVersion"], "auto.gke.io/v1");
        assert_eq!(v["kind"], "WorkloadAllowlist");
        assert_eq!(v["metadata"]["name"], "tapwire-nettap-0123456789ab");
        assert_eq!(v["matchingCriteria"]["hostPID"], true);
        assert_eq!(v["matchingCriteria"]["hostNetwork"], true);
        let c = &v["matchingCriteria"]["containers"][0];
        assert_eq!(c["name"], "nettap");
        assert_eq!(c["image"], "ghcr.io/tapwire/tapwire");
        assert_eq!(c["args"], serde_json::json!(["nettap"]));
        assert_eq!(c["securityContext"]["privileged"], true);
        let paths: Vec<&str> = v["matchingCriteria"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["hostPath"]["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, ["/sys/kernel/debug", "/sys/fs/bpf", "/proc"]);
        assert_eq!(c["volumeMounts"][2]["readOnly"], true);
        assert_eq!(
            v["containerImageDigests"][0],
            serde_json::json!({"containerName": "nettap", "imageDigests": [DIGEST]})
        );
        assert!(v["exemptions"]
            .as_array()
            .unwrap()
            .contains(&"autogke-disallow-privilege".into()));
        // What it writes, it reads back.
        let read = Allowlist::parse_all(&y).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].name, "tapwire-nettap-0123456789ab");
        assert_eq!(
            read[0].exemptions,
            [Policy::Privileged, Policy::HostNamespaces, Policy::HostPath]
        );
    }

    #[test]
    fn registry_ports_are_not_tags() {
        let p = PinnedImage::parse(&format!("localhost:5000/tapwire@{DIGEST}")).unwrap();
        assert_eq!(p.repository, "localhost:5000/tapwire");
        let p = PinnedImage::parse(&format!("localhost:5000/tapwire:v1@{DIGEST}")).unwrap();
        assert_eq!(p.repository, "localhost:5000/tapwire");
        assert_eq!(p.digest, DIGEST);
    }

    #[test]
    fn unpinned_references_are_refused() {
        for bad in [
            "ghcr.io/tapwire/tapwire:1.2.3",
            "ghcr.io/tapwire/tapwire@sha512:abcd",
            "ghcr.io/tapwire/tapwire@sha256:0123",
            &format!(
                "ghcr.io/tapwire/tapwire@{}",
                DIGEST.to_uppercase().replace("SHA256", "sha256")
            ),
            &format!("@{DIGEST}"),
        ] {
            let e = allowlist(bad).unwrap_err().to_string();
            assert!(e.contains("is not pinned to a digest"), "{bad}: {e}");
            assert!(e.contains("REPOSITORY@sha256:<64 hex digits>"), "{e}");
        }
    }

    #[test]
    fn matches_needs_the_pinned_digest() {
        let a = Allowlist::parse_all(&allowlist(&format!("r/t@{DIGEST}")).unwrap())
            .unwrap()
            .remove(0);
        let pod = |image: &str| -> PodSpec {
            serde_json::from_value(serde_json::json!({
                "containers": [{"name": "nettap", "image": image}]
            }))
            .unwrap()
        };
        assert!(a.matches(&pod(&format!("r/t@{DIGEST}"))));
        assert!(!a.matches(&pod("r/t:latest")));
        assert!(!a.matches(&pod(&format!("r/t@sha256:{}", "f".repeat(64)))));
        let other: PodSpec = serde_json::from_value(serde_json::json!({
            "containers": [{"name": "app", "image": format!("r/t@{DIGEST}")}]
        }))
        .unwrap();
        assert!(!a.matches(&other));
    }
}

//! Reading manifests: multi-document YAML, JSON (one object, a stream of
//! them, or an array) and `List` objects, down to the pod specs inside.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which object a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    /// `Deployment`, `Pod`, …
    pub kind: String,
    /// `metadata.namespace`; manifests rendered by `helm template` often have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.name` (or `generateName`), empty when absent.
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    /// `Deployment/shop/orders`, or `Deployment/orders` without a namespace.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// An object that runs pods, with the spec of the pods it creates.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The object.
    pub object: ObjectRef,
    /// Where it was in the input, counted from 1 (`document 3`, or `document 3, item 2` in a List).
    pub position: String,
    /// The pod spec (a Pod's own, or the template's).
    pub pod: PodSpec,
}

/// Everything read from one input.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    /// Objects that run pods (Pod, Deployment, StatefulSet, DaemonSet,
    /// ReplicaSet, Job, CronJob).
    pub workloads: Vec<Workload>,
    /// Objects of other kinds (Service, ConfigMap, CRDs …): not checked.
    pub skipped: Vec<ObjectRef>,
}

/// Input that could not be read; names the document, counted from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not YAML or JSON at all.
    #[error("document {position}: not valid {format}: {message}")]
    Syntax {
        /// `3`, or `3, item 2`.
        position: String,
        /// `YAML` or `JSON`.
        format: &'static str,
        /// The parser's message.
        message: String,
    },
    /// Valid YAML, but not a Kubernetes object.
    #[error("document {position}: {message}")]
    NotAnObject {
        /// `3`, or `3, item 2`.
        position: String,
        /// What is wrong.
        message: String,
    },
    /// A workload kind whose fields do not fit the Kubernetes type.
    #[error("document {position} ({object}): not a valid {kind}: {message}")]
    Invalid {
        /// `3`, or `3, item 2`.
        position: String,
        /// The object (boxed: it is large and errors are rare).
        object: Box<ObjectRef>,
        /// Its kind.
        kind: String,
        /// The deserializer's message.
        message: String,
    },
}

/// Kinds whose pods are checked.
pub const WORKLOAD_KINDS: &[&str] = &[
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
];

impl Manifests {
    /// Reads every object in `text`: YAML documents separated by `---`, or
    /// JSON (one object, several, or an array); `List` objects are opened.
    /// Empty documents are ignored.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut out = Self::default();
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            let stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
            for (i, doc) in stream.enumerate() {
                let position = (i + 1).to_string();
                let doc = doc.map_err(|e| ParseError::Syntax {
                    position: position.clone(),
                    format: "JSON",
                    message: e.to_string(),
                })?;
                out.add(doc, position)?;
            }
        } else {
            for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
                let position = (i + 1).to_string();
                let doc = Value::deserialize(doc).map_err(|e| ParseError::Syntax {
                    position: position.clone(),
                    format: "YAML",
                    message: e.to_string(),
                })?;
                out.add(doc, position)?;
            }
        }
        Ok(out)
    }

    fn add(&mut self, doc: Value, position: String) -> Result<(), ParseError> {
        match doc {
            Value::Null => Ok(()),
            Value::Array(items) => self.add_items(items, &position),
            Value::Object(ref map) => {
                let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
                if kind.is_empty() {
                    return Err(ParseError::NotAnObject {
                        position,
                        message: "has no `kind`: not a Kubernetes object".into(),
                    });
                }
                if kind == "List" || (kind.ends_with("List") && map.contains_key("items")) {
                    let items = match doc {
                        Value::Object(mut m) => m.remove("items"),
                        _ => None,
                    };
                    return match items {
                        Some(Value::Array(items)) => self.add_items(items, &position),
                        Some(Value::Null) | None => Ok(()),
                        Some(_) => Err(ParseError::NotAnObject {
                            position,
                            message: "`items` of a List must be a list".into(),
                        }),
                    };
                }
                self.add_object(doc, position)
            }
            other => Err(ParseError::NotAnObject {
                position,
                message: format!(
                    "a {} where a Kubernetes object (a mapping with apiVersion and kind) was expected",
                    type_name(&other)
                ),
            }),
        }
    }

    fn add_items(&mut self, items: Vec<Value>, position: &str) -> Result<(), ParseError> {
        for (j, item) in items.into_iter().enumerate() {
            let position = format!("{position}, item {}", j + 1);
            match item {
                Value::Object(_) => self.add(item, position)?,
                other => {
                    return Err(ParseError::NotAnObject {
                        position,
                        message: format!(
                            "a {} where a Kubernetes object was expected",
                            type_name(&other)
                        ),
                    })
                }
            }
        }
        Ok(())
    }

    fn add_object(&mut self, doc: Value, position: String) -> Result<(), ParseError> {
        let object = object_ref(&doc);
        let kind = object.kind.clone();
        let invalid = |e: serde_json::Error| ParseError::Invalid {
            position: position.clone(),
            object: Box::new(object.clone()),
            kind: kind.clone(),
            message: e.to_string(),
        };
        // An object of a workload kind from another API group (a CRD that
        // happens to be called `Deployment`) is not Kubernetes' own: skip it.
        let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let core_group = match kind.as_str() {
            "Pod" => "",
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => "apps",
            "Job" | "CronJob" => "batch",
            _ => {
                self.skipped.push(object);
                return Ok(());
            }
        };
        if group != core_group {
            self.skipped.push(object);
            return Ok(());
        }
        let pod = match kind.as_str() {
            "Pod" => serde_json::from_value::<Pod>(doc).map_err(invalid)?.spec,
            "Deployment" => serde_json::from_value::<Deployment>(doc)
                .map_err(invalid)?
                .spec
                .and_then(|s| s.template.spec),
            "StatefulSet" => serde_json::from_value::<StatefulSet>(doc)
                .map_err(invalid)?
                .spec
                .and_then(|s| s.template.spec),
            "DaemonSet" => serde_json::from_value::<DaemonSet>(doc)
                .map_err(invalid)?
                .spec
                .and_then(|s| s.template.spec),
            "ReplicaSet" => serde_json::from_value::<ReplicaSet>(doc)
                .map_err(invalid)?
                .spec
                .and_then(|s| s.template.and_then(|t| t.spec)),
            "Job" => serde_json::from_value::<Job>(doc)
                .map_err(invalid)?
                .spec
                .and_then(|s| s.template.spec),
            _ => serde_json::from_value::<CronJob>(doc)
                .map_err(invalid)?
                .spec
                .and_then(|s| s.job_template.spec)
                .and_then(|s| s.template.spec),
        };
        // A workload without a pod spec runs nothing Autopilot would check.
        self.workloads.push(Workload {
            object,
            position,
            pod: pod.unwrap_or_default(),
        });
        Ok(())
    }
}

fn object_ref(doc: &Value) -> ObjectRef {
    let meta = doc
        .get("metadata")
        .cloned()
        .and_then(|m| serde_json::from_value::<ObjectMeta>(m).ok())
        .unwrap_or_default();
    ObjectRef {
        kind: doc
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        namespace: meta.namespace,
        name: meta.name.or(meta.generate_name).unwrap_or_default(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}"#;

    #[test]
    fn yaml_stream_with_empty_documents_and_other_kinds() {
        let y = "---\n# Source: chart/templates/a.yaml\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: v1\nkind: Pod\nmetadata: {generateName: web-}\nspec: {containers: []}\n---\n";
        let m = Manifests::parse(y).unwrap();
        assert_eq!(m.workloads.len(), 1);
        assert_eq!(m.workloads[0].object.name, "web-");
        assert_eq!(m.workloads[0].position, "3");
        assert_eq!(m.skipped.len(), 1);
        assert_eq!(m.skipped[0].to_string(), "Service/s");
    }

    #[test]
    fn json_object_stream_and_array() {
        let m = Manifests::parse(POD).unwrap();
        assert_eq!(m.workloads[0].object.to_string(), "Pod/n/p");
        let m = Manifests::parse(&format!("{POD}\n{POD}")).unwrap();
        assert_eq!(m.workloads.len(), 2);
        let m = Manifests::parse(&format!("[{POD}, {POD}]")).unwrap();
        assert_eq!(m.workloads.len(), 2);
        assert_eq!(m.workloads[1].position, "1, item 2");
    }

    #[test]
    fn lists_are_opened() {
        let list = format!(
            r#"{{"apiVersion": "v1", "kind": "List", "items": [{POD}, {{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "c"}}}}]}}"#
        );
        let m = Manifests::parse(&list).unwrap();
        assert_eq!(m.workloads.len(), 1);
        assert_eq!(m.skipped.len(), 1);
        let yaml = "apiVersion: v1\nkind: PodList\nitems: []\n";
        assert!(Manifests::parse(yaml).unwrap().workloads.is_empty());
    }

    #[test]
    fn workload_kinds_of_other_groups_are_skipped() {
        let y = "apiVersion: example.com/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {whatever: 1}\n";
        let m = Manifests::parse(y).unwrap();
        assert!(m.workloads.is_empty());
        assert_eq!(m.skipped.len(), 1);
    }

    #[test]
    fn malformed_documents_name_their_index() {
        let e = Manifests::parse("apiVersion: v1\nkind: Service\n---\nkind: [unclosed\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("document 2: not valid YAML"), "{e}");

        let e = Manifests::parse(&format!("{POD}\n{{\"kind\": "))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("document 2: not valid JSON"), "{e}");

        let e = Manifests::parse("just a string\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "document 1: a string where a Kubernetes object (a mapping with apiVersion and kind) was expected"
        );

        let e = Manifests::parse("---\napiVersion: v1\nkind: Service\n---\nmetadata: {name: x}\n")
            .unwrap_err()
            .to_string();
        // A leading `---` starts the first document, it does not end an empty one.
        assert_eq!(e, "document 2: has no `kind`: not a Kubernetes object");

        let e = Manifests::parse(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  template:\n    spec:\n      containers: {name: not-a-list}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("document 1 (Deployment/shop/web): not a valid Deployment: "),
            "{e}"
        );

        let e = Manifests::parse(&format!(
            r#"{{"apiVersion": "v1", "kind": "List", "items": [{POD}, 3]}}"#
        ))
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "document 1, item 2: a number where a Kubernetes object was expected"
        );
    }
}

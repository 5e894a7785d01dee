//! The CRD committed under `charts/tapwire/crds/` is the one the Rust types
//! generate: regenerate it with
//! `tapwire operator crd > charts/tapwire/crds/trafficreplays.tapwire.dev.yaml`.

#[test]
fn committed_crd_matches_the_rust_types() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../charts/tapwire/crds/trafficreplays.tapwire.dev.yaml"
    );
    let committed = std::fs::read_to_string(path).expect("the committed CRD");
    let generated = tapwire_operator::replay::crd_yaml().expect("generates");
    assert!(
        committed.trim_end() == generated.trim_end(),
        "{path} is out of date with crates/operator/src/replay/crd.rs: run `tapwire operator crd > charts/tapwire/crds/trafficreplays.tapwire.dev.yaml`"
    );
}

#[test]
fn the_crd_schema_is_structural_enough_for_kubernetes_1_20() {
    // Kubernetes 1.20 rejects schemas without a type at each level; every
    // property must carry one (or x-kubernetes-int-or-string).
    let crd: serde_json::Value =
        serde_norway::from_str(&tapwire_operator::replay::crd_yaml().expect("yaml"))
            .expect("parses");
    fn walk(v: &serde_json::Value, path: &str) {
        if let Some(props) = v.get("properties").and_then(|p| p.as_object()) {
            for (k, p) in props {
                let here = format!("{path}.{k}");
                assert!(
                    p.get("type").is_some() || p.get("x-kubernetes-int-or-string").is_some(),
                    "{here} has no type"
                );
                walk(p, &here);
            }
        }
        if let Some(items) = v.get("items") {
            walk(items, &format!("{path}[]"));
        }
    }
    walk(&crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"], "");
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "replay");
}

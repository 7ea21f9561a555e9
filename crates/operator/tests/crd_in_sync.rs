//! The CRD in `crds/` is what the Rust types generate: regenerate it with
//! `cargo run -p operator --bin crdgen > crds/coordinationclusters.conclave.dev.json`.

use kube::CustomResourceExt as _;

#[test]
fn the_checked_in_crd_is_generated_from_the_types() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../crds/coordinationclusters.conclave.dev.json"
    );
    let checked_in: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("crds/ file")).expect("JSON");
    let generated = serde_json::to_value(operator::crd::CoordinationCluster::crd()).expect("CRD");
    assert_eq!(
        checked_in, generated,
        "crds/ is stale: regenerate it with `cargo run -p operator --bin crdgen`"
    );
}

#[test]
fn replicas_are_bounded_and_the_scale_subresource_points_at_them() {
    let crd = serde_json::to_value(operator::crd::CoordinationCluster::crd()).expect("CRD");
    let version = &crd["spec"]["versions"][0];
    let replicas =
        &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["replicas"];
    assert_eq!(replicas["minimum"].as_f64(), Some(1.0));
    assert_eq!(replicas["maximum"].as_f64(), Some(9.0));
    assert_eq!(
        version["subresources"]["scale"]["specReplicasPath"],
        ".spec.replicas"
    );
    assert!(version["subresources"]["status"].is_object());
}

//! Prints the `CoordinationCluster` CRD as YAML-compatible JSON (the file
//! in `crds/`), generated from the Rust types.

use kube::CustomResourceExt as _;

fn main() {
    let crd = operator::crd::CoordinationCluster::crd();
    match serde_json::to_string_pretty(&crd) {
        Ok(text) => println!("{text}"),
        Err(e) => {
            eprintln!("cannot serialize the CRD: {e}");
            std::process::exit(1);
        }
    }
}

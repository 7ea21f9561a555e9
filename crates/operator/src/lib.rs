//! `conclave-operator`'s library: the `CoordinationCluster` resource
//! (`crd.rs`) and the Kubernetes objects it is reconciled into, built by
//! pure functions of the resource (`build/`), so that each is unit-tested
//! on its own, and the next membership step as a pure function of what was
//! observed (`plan.rs`).
//!
//! Not done yet (issue 7): the controller (watching, applying, status,
//! membership steps through the servers' admin API, rolling upgrades), the
//! chart, the manifests, the image and the end-to-end tests.

pub mod build;
pub mod crd;
pub mod observe;
pub mod plan;

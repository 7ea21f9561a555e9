//! `conclave-operator`'s library.
//!
//! - `crd.rs`: the `CoordinationCluster` resource.
//! - `build/`: the Kubernetes objects it is reconciled into, each a pure
//!   function of the resource.
//! - `pki.rs`: the cluster's CA and the servers' quorum and admin
//!   certificates.
//! - `admin.rs`, `observe.rs`: reading the ensemble's committed membership
//!   from the servers' admin API.
//! - `plan.rs`, `decide.rs`: the next action, a pure function of what was
//!   observed; `status.rs`: the status, likewise; `version.rs`: which image
//!   changes may be rolled.
//! - `controller/`: the kube-rs controller that observes, applies, acts and
//!   reports; `metrics.rs`: its Prometheus metrics.

pub mod admin;
pub mod build;
pub mod controller;
pub mod crd;
pub mod decide;
pub mod metrics;
pub mod observe;
pub mod pki;
pub mod plan;
pub mod status;
pub mod version;

//! The objects a `CoordinationCluster` is reconciled into, each a pure
//! function of the resource: the ConfigMap with zoo.cfg (`config.rs`), the
//! peer and client Services (`services.rs`), the StatefulSet
//! (`statefulset.rs`), the PodDisruptionBudget (`pdb.rs`), the
//! NetworkPolicy (`network_policy.rs`), the stages and Secrets of quorum and
//! admin TLS (`internal_tls.rs`) and, when asked for, the Prometheus
//! Operator ServiceMonitor (`service_monitor.rs`).

pub mod config;
pub mod internal_tls;
pub mod network_policy;
pub mod pdb;
pub mod service_monitor;
pub mod services;
pub mod statefulset;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource as _;

use crate::crd::CoordinationCluster;

/// Why a resource cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    #[error("the resource has no {0}")]
    Missing(&'static str),
    #[error("spec.config.{key}: {reason}")]
    Config { key: String, reason: String },
}

/// Names derived from the resource's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub cluster: String,
    pub namespace: String,
}

impl Names {
    pub fn of(cc: &CoordinationCluster) -> Result<Names, BuildError> {
        Ok(Names {
            cluster: cc
                .metadata
                .name
                .clone()
                .ok_or(BuildError::Missing("name"))?,
            namespace: cc
                .metadata
                .namespace
                .clone()
                .ok_or(BuildError::Missing("namespace"))?,
        })
    }

    /// The headless Service peers find each other through.
    pub fn peers(&self) -> String {
        format!("{}-peers", self.cluster)
    }

    /// The Service clients connect to.
    pub fn client(&self) -> String {
        format!("{}-client", self.cluster)
    }

    pub fn config(&self) -> String {
        format!("{}-config", self.cluster)
    }

    /// The DNS name of server `id` (pod ordinal `id - 1`).
    pub fn server_host(&self, id: u64) -> String {
        format!(
            "{}-{}.{}.{}.svc.cluster.local",
            self.cluster,
            id.saturating_sub(1),
            self.peers(),
            self.namespace
        )
    }
}

/// The labels every object and pod of the cluster carries; the selector.
pub fn labels(names: &Names) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "conclave".to_owned()),
        (
            "app.kubernetes.io/instance".to_owned(),
            names.cluster.clone(),
        ),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "conclave-operator".to_owned(),
        ),
    ])
}

/// The label selector every pod of the cluster matches, as text
/// (`status.selector`, list calls).
pub fn selector(names: &Names) -> String {
    labels(names)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Metadata of an object owned by the resource (deleted with it).
pub fn owned_meta(cc: &CoordinationCluster, name: String) -> Result<ObjectMeta, BuildError> {
    let names = Names::of(cc)?;
    let owner: OwnerReference = cc
        .controller_owner_ref(&())
        .ok_or(BuildError::Missing("uid"))?;
    Ok(ObjectMeta {
        name: Some(name),
        namespace: Some(names.namespace.clone()),
        labels: Some(labels(&names)),
        owner_references: Some(vec![owner]),
        ..ObjectMeta::default()
    })
}

/// Whether the resource owns an object with this metadata (as
/// [`owned_meta`] makes it): one of the same name that it does not own is
/// not the operator's to delete.
pub fn owned_by(meta: &ObjectMeta, cc: &CoordinationCluster) -> bool {
    let Some(uid) = cc.meta().uid.as_deref() else {
        return false;
    };
    meta.owner_references
        .iter()
        .flatten()
        .any(|owner| owner.uid == uid)
}

#[cfg(test)]
pub(crate) mod fixtures {
    use crate::crd::{CoordinationCluster, CoordinationClusterSpec};

    /// A three-server cluster `zk` in namespace `apps`, as the API server
    /// would hand it over (with a uid).
    pub(crate) fn cluster() -> CoordinationCluster {
        let spec: CoordinationClusterSpec = serde_json::from_value(serde_json::json!({
            "replicas": 3,
            "image": "conclave:dev",
        }))
        .expect("a valid spec");
        let mut cc = CoordinationCluster::new("zk", spec);
        cc.metadata.namespace = Some("apps".into());
        cc.metadata.uid = Some("1234".into());
        cc
    }
}

//! Reading the cluster's StatefulSet, pods and data volume claims into
//! `KubeState`.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::ListParams;
use kube::{Api, Client};

use super::Error;
use crate::build::statefulset::DATA_VOLUME;
use crate::build::{Names, internal_tls, selector};
use crate::crd::InternalTlsStage;
use crate::decide::{KubeState, PodState};

/// The server id of `<cluster>-<ordinal>` (ordinal + 1).
pub(super) fn server_id(prefix: &str, name: &str) -> Option<u64> {
    let ordinal: u64 = name.strip_prefix(prefix)?.strip_prefix('-')?.parse().ok()?;
    ordinal.checked_add(1)
}

pub(super) fn pod_state(cluster: &str, pod: &Pod) -> Option<PodState> {
    let name = pod.metadata.name.clone()?;
    let id = server_id(cluster, &name)?;
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    Some(PodState {
        id,
        ip: status
            .and_then(|s| s.pod_ip.clone())
            .filter(|ip| !ip.is_empty()),
        running: status.and_then(|s| s.phase.as_deref()) == Some("Running"),
        ready,
        revision: pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("controller-revision-hash"))
            .cloned(),
        terminating: pod.metadata.deletion_timestamp.is_some(),
        image: pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.iter().find(|c| c.name == "conclave"))
            .and_then(|c| c.image.clone()),
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        name,
    })
}

/// The internal TLS stage a StatefulSet's pod template runs: its
/// annotation, or `Off` without one (templates made before internal TLS,
/// or with it off). Only the operator writes it; a value it does not know
/// (a hand edit) is logged and read as `Off`.
fn template_stage(statefulset: &StatefulSet) -> InternalTlsStage {
    let value = statefulset
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(internal_tls::STAGE_ANNOTATION));
    let Some(value) = value else {
        return InternalTlsStage::Off;
    };
    serde_json::from_value(serde_json::Value::from(value.as_str())).unwrap_or_else(|_| {
        tracing::warn!(%value, "unknown internal TLS stage on the pod template; read as Off");
        InternalTlsStage::Off
    })
}

pub(super) async fn read(client: &Client, names: &Names) -> Result<KubeState, Error> {
    let ns = &names.namespace;
    let statefulset = Api::<StatefulSet>::namespaced(client.clone(), ns)
        .get_opt(&names.cluster)
        .await?;
    let params = ListParams::default().labels(&selector(names));
    let mut pods: Vec<PodState> = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&params)
        .await?
        .items
        .iter()
        .filter_map(|p| pod_state(&names.cluster, p))
        .collect();
    pods.sort_by_key(|p| p.id);
    // Claims made from the StatefulSet's template are named
    // `<template>-<statefulset>-<ordinal>`.
    let claim_prefix = format!("{DATA_VOLUME}-{}", names.cluster);
    let mut volumes: Vec<(u64, String)> =
        Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
            .list(&params)
            .await?
            .items
            .into_iter()
            .filter(|c| c.metadata.deletion_timestamp.is_none())
            .filter_map(|c| {
                let name = c.metadata.name?;
                Some((server_id(&claim_prefix, &name)?, name))
            })
            .collect();
    volumes.sort();
    Ok(KubeState {
        statefulset_replicas: statefulset
            .as_ref()
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| s.replicas)
            .and_then(|r| u64::try_from(r).ok()),
        update_revision: statefulset
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .and_then(|s| s.update_revision.clone()),
        template_image: statefulset
            .as_ref()
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.containers.iter().find(|c| c.name == "conclave"))
            .and_then(|c| c.image.clone()),
        template_internal_tls: statefulset.as_ref().map(template_stage),
        rollout_observed: statefulset.as_ref().is_some_and(|s| {
            let observed = s.status.as_ref().and_then(|st| st.observed_generation);
            observed.is_some() && observed >= s.metadata.generation
        }),
        pods,
        volumes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ids_come_from_ordinals() {
        assert_eq!(server_id("zk", "zk-0"), Some(1));
        assert_eq!(server_id("zk", "zk-12"), Some(13));
        assert_eq!(server_id("zk", "zk-a-0"), None);
        assert_eq!(server_id("zk", "zkx-0"), None);
        assert_eq!(server_id("data-zk", "data-zk-2"), Some(3));
    }

    #[test]
    fn a_pod_reads_as_ready_running_and_revisioned() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "zk-1", "labels": {"controller-revision-hash": "zk-abc"}},
            "spec": {"containers": [{"name": "conclave", "image": "conclave:2"}]},
            "status": {"phase": "Running", "podIP": "10.1.0.7",
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        let state = pod_state("zk", &pod).unwrap();
        assert_eq!(state.id, 2);
        assert!(state.ready && state.running && !state.terminating);
        assert_eq!(state.ip.as_deref(), Some("10.1.0.7"));
        assert_eq!(state.revision.as_deref(), Some("zk-abc"));
        assert_eq!(state.image.as_deref(), Some("conclave:2"));
    }
}

//! The PodDisruptionBudget: voluntary evictions (node drains) take one
//! server at a time. policy/v1; a cluster that serves only policy/v1beta1
//! (Kubernetes before 1.21) gets the same object under that version
//! (`pdb_v1beta1`), which the controller chooses by discovery.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{BuildError, Names, labels, owned_meta};
use crate::crd::CoordinationCluster;

/// The budget, or None when `spec.podDisruptionBudget.enabled` is false.
pub fn pdb(cc: &CoordinationCluster) -> Result<Option<PodDisruptionBudget>, BuildError> {
    if !cc.spec.pod_disruption_budget.enabled {
        return Ok(None);
    }
    let names = Names::of(cc)?;
    Ok(Some(PodDisruptionBudget {
        metadata: owned_meta(cc, names.cluster.clone())?,
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(
                cc.spec.pod_disruption_budget.max_unavailable.max(1),
            )),
            selector: Some(LabelSelector {
                match_labels: Some(labels(&names)),
                ..LabelSelector::default()
            }),
            // A pod that is already unhealthy may be evicted (a drain
            // must not hang on a crash-looping server that counts for
            // nothing). Kubernetes before 1.26 ignores the field.
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".to_owned()),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }))
}

/// The same budget as policy/v1beta1 JSON (same fields; k8s-openapi has no
/// v1beta1 type for current Kubernetes).
pub fn pdb_v1beta1(pdb: &PodDisruptionBudget) -> serde_json::Value {
    let mut value = serde_json::to_value(pdb).unwrap_or_default();
    value["apiVersion"] = "policy/v1beta1".into();
    value["kind"] = "PodDisruptionBudget".into();
    // Only clusters before 1.21 get this form, and they lack the field
    // (server-side apply refuses fields a type does not declare).
    if let Some(spec) = value.get_mut("spec").and_then(|s| s.as_object_mut()) {
        spec.remove("unhealthyPodEvictionPolicy");
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures::cluster;

    #[test]
    fn one_server_at_a_time() {
        let pdb = pdb(&cluster()).unwrap().unwrap();
        let spec = pdb.spec.clone().unwrap();
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
        assert_eq!(spec.min_available, None);
        let beta = pdb_v1beta1(&pdb);
        assert_eq!(beta["apiVersion"], "policy/v1beta1");
        assert_eq!(beta["spec"]["maxUnavailable"], 1);
        assert_eq!(
            spec.unhealthy_pod_eviction_policy.as_deref(),
            Some("AlwaysAllow")
        );
        assert!(beta["spec"].get("unhealthyPodEvictionPolicy").is_none());
    }

    #[test]
    fn it_can_be_turned_off() {
        let mut cc = cluster();
        cc.spec.pod_disruption_budget.enabled = false;
        assert_eq!(pdb(&cc).unwrap(), None);
    }
}

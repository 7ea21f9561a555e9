//! The NetworkPolicy over a cluster's pods: in a Kubernetes cluster every
//! pod can reach every pod, and a server's quorum port decides the
//! ensemble's state (`docs/security.md`). Ingress only, port by port:
//!
//! - quorum and election ports: the cluster's own pods;
//! - admin port: the operator's pods (it reads state and changes the
//!   membership there), and `spec.networkPolicy.adminFrom`;
//! - client ports (plain and TLS): `spec.networkPolicy.clientFrom`, by
//!   default every pod of the cluster's namespace.
//!
//! Kubelet probes come from the node, which network plugins let through.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{BuildError, Names, labels, owned_meta};
use crate::crd::CoordinationCluster;

/// The label the operator's pods carry (the chart's and `manifests/`).
pub const OPERATOR_LABEL: (&str, &str) = ("app.kubernetes.io/name", "conclave-operator");
/// The label Kubernetes (1.21 and later) puts on every namespace: its name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The policy, or None when `spec.networkPolicy.enabled` is false.
/// `operator_namespace` is where the operator runs.
pub fn network_policy(
    cc: &CoordinationCluster,
    operator_namespace: &str,
) -> Result<Option<NetworkPolicy>, BuildError> {
    let spec = &cc.spec.network_policy;
    if !spec.enabled {
        return Ok(None);
    }
    let names = Names::of(cc)?;
    let ports = &cc.spec.ports;
    let own_pods = NetworkPolicyPeer {
        pod_selector: Some(select(labels(&names))),
        ..NetworkPolicyPeer::default()
    };
    let operator_pods = NetworkPolicyPeer {
        pod_selector: Some(select(BTreeMap::from([(
            OPERATOR_LABEL.0.to_owned(),
            OPERATOR_LABEL.1.to_owned(),
        )]))),
        // A peer with only a pod selector means the policy's namespace,
        // which needs no namespace label (Kubernetes before 1.21 has none).
        namespace_selector: (operator_namespace != names.namespace).then(|| {
            select(BTreeMap::from([(
                NAMESPACE_NAME_LABEL.to_owned(),
                operator_namespace.to_owned(),
            )]))
        }),
        ..NetworkPolicyPeer::default()
    };
    let same_namespace = NetworkPolicyPeer {
        pod_selector: Some(LabelSelector::default()),
        ..NetworkPolicyPeer::default()
    };
    let mut client_ports = vec![tcp(ports.client)];
    if let Some(tls) = &cc.spec.tls {
        client_ports.push(tcp(tls.port));
    }
    let admin_from = std::iter::once(operator_pods)
        .chain(spec.admin_from.iter().cloned())
        .collect();
    let client_from = spec
        .client_from
        .clone()
        .unwrap_or_else(|| vec![same_namespace]);
    Ok(Some(NetworkPolicy {
        metadata: owned_meta(cc, names.cluster.clone())?,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(select(labels(&names))),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(vec![
                rule(vec![tcp(ports.quorum), tcp(ports.election)], vec![own_pods]),
                rule(vec![tcp(ports.admin)], admin_from),
                rule(client_ports, client_from),
            ]),
            ..NetworkPolicySpec::default()
        }),
    }))
}

fn select(labels: BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels),
        ..LabelSelector::default()
    }
}

fn tcp(port: u16) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(i32::from(port))),
        protocol: Some("TCP".to_owned()),
        ..NetworkPolicyPort::default()
    }
}

fn rule(ports: Vec<NetworkPolicyPort>, from: Vec<NetworkPolicyPeer>) -> NetworkPolicyIngressRule {
    NetworkPolicyIngressRule {
        ports: Some(ports),
        from: Some(from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures::cluster;

    fn rules(policy: &NetworkPolicy) -> Vec<(Vec<i32>, Vec<NetworkPolicyPeer>)> {
        let spec = policy.spec.as_ref().unwrap();
        spec.ingress
            .as_ref()
            .unwrap()
            .iter()
            .map(|r| {
                let ports = r
                    .ports
                    .as_ref()
                    .unwrap()
                    .iter()
                    .map(|p| match p.port {
                        Some(IntOrString::Int(n)) => n,
                        _ => panic!("a named port"),
                    })
                    .collect();
                (ports, r.from.clone().unwrap())
            })
            .collect()
    }

    /// Which peers may reach `port`.
    fn who_reaches(policy: &NetworkPolicy, port: i32) -> Vec<NetworkPolicyPeer> {
        rules(policy)
            .into_iter()
            .filter(|(ports, _)| ports.contains(&port))
            .flat_map(|(_, from)| from)
            .collect()
    }

    #[test]
    fn the_quorum_port_takes_only_the_clusters_pods() {
        let cc = cluster();
        let policy = network_policy(&cc, "conclave-system").unwrap().unwrap();
        let names = Names::of(&cc).unwrap();
        let spec = policy.spec.as_ref().unwrap();
        assert_eq!(
            spec.pod_selector.as_ref().unwrap().match_labels,
            Some(labels(&names))
        );
        assert_eq!(spec.policy_types, Some(vec!["Ingress".to_owned()]));
        for port in [cc.spec.ports.quorum, cc.spec.ports.election] {
            let peers = who_reaches(&policy, i32::from(port));
            assert_eq!(peers.len(), 1);
            assert_eq!(
                peers[0].pod_selector.as_ref().unwrap().match_labels,
                Some(labels(&names))
            );
            assert_eq!(
                peers[0].namespace_selector, None,
                "the cluster's namespace only"
            );
        }
    }

    #[test]
    fn the_admin_port_takes_the_operator_and_whom_the_spec_adds() {
        let mut cc = cluster();
        let prometheus = NetworkPolicyPeer {
            namespace_selector: Some(select(BTreeMap::from([(
                NAMESPACE_NAME_LABEL.to_owned(),
                "monitoring".to_owned(),
            )]))),
            ..NetworkPolicyPeer::default()
        };
        cc.spec.network_policy.admin_from = vec![prometheus.clone()];
        let elsewhere = network_policy(&cc, "conclave-system").unwrap().unwrap();
        let peers = who_reaches(&elsewhere, i32::from(cc.spec.ports.admin));
        assert_eq!(peers.len(), 2);
        let operator = &peers[0];
        assert_eq!(
            operator.pod_selector.as_ref().unwrap().match_labels,
            Some(BTreeMap::from([(
                "app.kubernetes.io/name".to_owned(),
                "conclave-operator".to_owned()
            )]))
        );
        assert_eq!(
            operator.namespace_selector.as_ref().unwrap().match_labels,
            Some(BTreeMap::from([(
                NAMESPACE_NAME_LABEL.to_owned(),
                "conclave-system".to_owned()
            )]))
        );
        assert_eq!(peers[1], prometheus);
        // An operator in the cluster's own namespace needs no namespace
        // label (which Kubernetes before 1.21 lacks).
        let ns = cc.metadata.namespace.clone().unwrap();
        let here = network_policy(&cc, &ns).unwrap().unwrap();
        let peers = who_reaches(&here, i32::from(cc.spec.ports.admin));
        assert_eq!(peers[0].namespace_selector, None);
    }

    #[test]
    fn clients_come_from_the_namespace_unless_told() {
        let mut cc = cluster();
        let policy = network_policy(&cc, "x").unwrap().unwrap();
        let peers = who_reaches(&policy, i32::from(cc.spec.ports.client));
        assert_eq!(
            peers,
            vec![NetworkPolicyPeer {
                pod_selector: Some(LabelSelector::default()),
                ..NetworkPolicyPeer::default()
            }]
        );
        let anywhere = NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector::default()),
            ..NetworkPolicyPeer::default()
        };
        cc.spec.network_policy.client_from = Some(vec![anywhere.clone()]);
        let policy = network_policy(&cc, "x").unwrap().unwrap();
        assert_eq!(
            who_reaches(&policy, i32::from(cc.spec.ports.client)),
            vec![anywhere]
        );
        // Nobody but the cluster reaches the quorum port either way, and
        // the admin port is not the clients'.
        assert_eq!(
            who_reaches(&policy, i32::from(cc.spec.ports.quorum)).len(),
            1
        );
    }

    #[test]
    fn turned_off_there_is_none() {
        let mut cc = cluster();
        cc.spec.network_policy.enabled = false;
        assert!(network_policy(&cc, "x").unwrap().is_none());
    }
}

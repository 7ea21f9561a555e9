//! The two Services: a headless one through which peers find each other by
//! pod DNS name, publishing addresses before the pods are Ready (a server
//! is Ready only once it has a quorum, and it needs its peers for that),
//! and the one clients connect to.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};

use super::{BuildError, Names, labels, owned_meta};
use crate::crd::CoordinationCluster;

/// Tells the two Services apart (they carry the same cluster labels): a
/// ServiceMonitor selects the peer Service by it, the only one with the
/// admin port.
pub const SERVICE_LABEL: &str = "conclave.dev/service";

/// The peer Service's labels: the cluster's and `SERVICE_LABEL: peers`.
pub fn peer_service_labels(names: &Names) -> BTreeMap<String, String> {
    service_labels(names, "peers")
}

fn service_labels(names: &Names, service: &str) -> BTreeMap<String, String> {
    let mut labels = labels(names);
    labels.insert(SERVICE_LABEL.to_owned(), service.to_owned());
    labels
}

fn port(name: &str, number: u16) -> ServicePort {
    ServicePort {
        name: Some(name.to_owned()),
        port: i32::from(number),
        // Written out: server-side apply of a Service on Kubernetes 1.20
        // needs it on every port.
        protocol: Some("TCP".to_owned()),
        ..ServicePort::default()
    }
}

/// The headless peer Service.
pub fn peer_service(cc: &CoordinationCluster) -> Result<Service, BuildError> {
    let names = Names::of(cc)?;
    let ports = &cc.spec.ports;
    let mut metadata = owned_meta(cc, names.peers())?;
    metadata.labels = Some(peer_service_labels(&names));
    Ok(Service {
        metadata,
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            publish_not_ready_addresses: Some(true),
            selector: Some(labels(&names)),
            ports: Some(vec![
                port("quorum", ports.quorum),
                port("election", ports.election),
                port("admin", ports.admin),
            ]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}

/// The client Service (only Ready servers: those serving in a quorum).
pub fn client_service(cc: &CoordinationCluster) -> Result<Service, BuildError> {
    let names = Names::of(cc)?;
    let mut metadata = owned_meta(cc, names.client())?;
    metadata.labels = Some(service_labels(&names, "client"));
    Ok(Service {
        metadata,
        spec: Some(ServiceSpec {
            selector: Some(labels(&names)),
            ports: Some(
                std::iter::once(port("client", cc.spec.ports.client))
                    .chain(cc.spec.tls.as_ref().map(|t| port("secure-client", t.port)))
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}

/// What applications connect to: the client Service's DNS name and port.
pub fn connection_string(cc: &CoordinationCluster) -> Result<String, BuildError> {
    Ok(client_address(&Names::of(cc)?, cc.spec.ports.client))
}

/// The client Service's DNS name with `port`.
pub fn client_address(names: &Names, port: u16) -> String {
    format!(
        "{}.{}.svc.cluster.local:{port}",
        names.client(),
        names.namespace
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures::cluster;

    #[test]
    fn peers_are_published_before_they_are_ready() {
        let svc = peer_service(&cluster()).unwrap();
        let spec = svc.spec.unwrap();
        assert_eq!(svc.metadata.name.as_deref(), Some("zk-peers"));
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        let ports: Vec<i32> = spec.ports.unwrap().iter().map(|p| p.port).collect();
        assert_eq!(ports, vec![2888, 3888, 8080]);
    }

    #[test]
    fn the_two_services_are_told_apart_by_a_label() {
        let cc = cluster();
        let label = |svc: Service| svc.metadata.labels.unwrap()[SERVICE_LABEL].clone();
        assert_eq!(label(peer_service(&cc).unwrap()), "peers");
        assert_eq!(label(client_service(&cc).unwrap()), "client");
        // Both still carry the cluster's labels (the controller watches by
        // them); the pods are selected by those alone.
        let peer = peer_service(&cc).unwrap();
        let cluster_labels = labels(&Names::of(&cc).unwrap());
        let carried = peer.metadata.labels.unwrap();
        assert!(
            cluster_labels
                .iter()
                .all(|(k, v)| carried.get(k) == Some(v))
        );
        assert_eq!(peer.spec.unwrap().selector.unwrap(), cluster_labels);
    }

    #[test]
    fn tls_adds_the_secure_port_to_the_client_service_only() {
        let mut cc = cluster();
        cc.spec.tls =
            Some(serde_json::from_value(serde_json::json!({"secretName": "zk-tls"})).unwrap());
        let ports = |svc: Service| -> Vec<(String, i32)> {
            svc.spec
                .unwrap()
                .ports
                .unwrap()
                .into_iter()
                .map(|p| (p.name.unwrap(), p.port))
                .collect()
        };
        assert_eq!(
            ports(client_service(&cc).unwrap()),
            vec![
                ("client".to_owned(), 2181),
                ("secure-client".to_owned(), 2281)
            ]
        );
        assert_eq!(ports(peer_service(&cc).unwrap()).len(), 3);
    }

    #[test]
    fn clients_reach_the_client_port_by_dns() {
        let cc = cluster();
        let svc = client_service(&cc).unwrap();
        let spec = svc.spec.unwrap();
        assert_eq!(spec.cluster_ip, None);
        assert_eq!(spec.ports.unwrap()[0].port, 2181);
        assert_eq!(spec.selector.unwrap()["app.kubernetes.io/instance"], "zk");
        assert_eq!(
            connection_string(&cc).unwrap(),
            "zk-client.apps.svc.cluster.local:2181"
        );
    }
}

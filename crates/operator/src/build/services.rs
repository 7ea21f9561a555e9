//! The two Services: a headless one through which peers find each other by
//! pod DNS name, publishing addresses before the pods are Ready (a server
//! is Ready only once it has a quorum, and it needs its peers for that),
//! and the one clients connect to.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};

use super::{BuildError, Names, labels, owned_meta};
use crate::crd::CoordinationCluster;

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
    Ok(Service {
        metadata: owned_meta(cc, names.peers())?,
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
    Ok(Service {
        metadata: owned_meta(cc, names.client())?,
        spec: Some(ServiceSpec {
            selector: Some(labels(&names)),
            ports: Some(vec![port("client", cc.spec.ports.client)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}

/// What applications connect to: the client Service's DNS name and port.
pub fn connection_string(cc: &CoordinationCluster) -> Result<String, BuildError> {
    let names = Names::of(cc)?;
    Ok(format!(
        "{}.{}.svc.cluster.local:{}",
        names.client(),
        names.namespace,
        cc.spec.ports.client
    ))
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

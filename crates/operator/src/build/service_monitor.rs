//! The Prometheus Operator ServiceMonitor (`monitoring.coreos.com/v1`) of
//! `spec.metrics.serviceMonitor`: Prometheus scrapes `/metrics` on every
//! server's admin port through the peer Service. That Service is headless
//! and publishes pods before they are Ready, so a server that lost its
//! quorum is still scraped. The client Service carries the same cluster
//! labels but no admin port, so the selector also names the peer Service's
//! own label.
//!
//! The Prometheus Operator's types are not a dependency: the object is a
//! `DynamicObject` of the few fields set here.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

use super::services::peer_service_labels;
use super::{BuildError, Names, internal_tls, labels, owned_meta};
use crate::crd::{CoordinationCluster, InternalTlsStage};

pub const GROUP: &str = "monitoring.coreos.com";
pub const VERSION: &str = "v1";
pub const KIND: &str = "ServiceMonitor";
/// The resource name API discovery lists it under.
pub const PLURAL: &str = "servicemonitors";
/// Where the server serves Prometheus text (on its admin port).
pub const METRICS_PATH: &str = "/metrics";
/// The peer Service's name for the admin port (`services.rs`).
pub const ADMIN_PORT_NAME: &str = "admin";

/// `monitoring.coreos.com/v1`, as API discovery is asked for it.
pub fn group_version() -> String {
    format!("{GROUP}/{VERSION}")
}

/// Where ServiceMonitors are, for `Api::<DynamicObject>`.
pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, KIND), PLURAL)
}

/// The ServiceMonitor `<name>`, owned by the resource like its other
/// objects, labelled with `serviceMonitor.labels` and the cluster's labels
/// (which win a clash: they are what the operator's objects are known by).
/// On an internal TLS stage whose admin ports speak HTTPS, Prometheus
/// scrapes over HTTPS, checking the servers' certificates against the
/// cluster's CA for the name they all carry.
pub fn service_monitor(
    cc: &CoordinationCluster,
    stage: InternalTlsStage,
) -> Result<DynamicObject, BuildError> {
    let names = Names::of(cc)?;
    let spec = &cc.spec.metrics.service_monitor;
    let mut metadata = owned_meta(cc, names.cluster.clone())?;
    let mut monitor_labels = spec.labels.clone();
    monitor_labels.extend(labels(&names));
    metadata.labels = Some(monitor_labels);

    let mut endpoint = serde_json::json!({
        "port": ADMIN_PORT_NAME,
        "path": METRICS_PATH,
    });
    if internal_tls::admin_https(stage) {
        endpoint["scheme"] = serde_json::Value::from("https");
        endpoint["tlsConfig"] = serde_json::json!({
            "ca": {"secret": {"name": internal_tls::secret_name(&names), "key": internal_tls::CA_CERT}},
            "serverName": internal_tls::shared_host(&names),
        });
    }
    // An empty interval is the same as none: Prometheus's own.
    if let Some(interval) = spec.interval.as_deref().filter(|i| !i.is_empty()) {
        endpoint["interval"] = serde_json::Value::from(interval);
    }
    let mut monitor = DynamicObject::new(&names.cluster, &api_resource()).data(serde_json::json!({
        "spec": {
            "selector": {"matchLabels": peer_service_labels(&names)},
            "endpoints": [endpoint],
        }
    }));
    monitor.metadata = metadata;
    Ok(monitor)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::Service;

    use super::*;
    use crate::build::fixtures::cluster;
    use crate::build::services::{client_service, peer_service};

    fn enabled(interval: Option<&str>, extra: &[(&str, &str)]) -> CoordinationCluster {
        let mut cc = cluster();
        let monitor = &mut cc.spec.metrics.service_monitor;
        monitor.enabled = true;
        monitor.interval = interval.map(str::to_owned);
        monitor.labels = extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        cc
    }

    /// Whether the ServiceMonitor's selector picks `service`, as the
    /// Prometheus Operator matches `matchLabels`.
    fn selects(monitor: &serde_json::Value, service: &Service) -> bool {
        let wanted: BTreeMap<String, String> =
            serde_json::from_value(monitor["spec"]["selector"]["matchLabels"].clone())
                .expect("matchLabels");
        let carried = service.metadata.labels.clone().unwrap_or_default();
        !wanted.is_empty() && wanted.iter().all(|(k, v)| carried.get(k) == Some(v))
    }

    #[test]
    fn it_is_a_v1_service_monitor_owned_by_the_cluster() {
        let monitor = serde_json::to_value(
            service_monitor(&enabled(None, &[]), InternalTlsStage::Off).unwrap(),
        )
        .unwrap();
        assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
        assert_eq!(monitor["kind"], "ServiceMonitor");
        assert_eq!(monitor["metadata"]["name"], "zk");
        assert_eq!(monitor["metadata"]["namespace"], "apps");
        let owner = &monitor["metadata"]["ownerReferences"][0];
        assert_eq!(owner["uid"], "1234");
        assert_eq!(owner["kind"], "CoordinationCluster");
        assert_eq!(owner["controller"], true);
        assert_eq!(
            monitor["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "conclave-operator"
        );
    }

    #[test]
    fn it_selects_the_peer_service_and_not_the_client_service() {
        let cc = enabled(None, &[]);
        let monitor =
            serde_json::to_value(service_monitor(&cc, InternalTlsStage::Off).unwrap()).unwrap();
        assert!(selects(&monitor, &peer_service(&cc).unwrap()));
        assert!(!selects(&monitor, &client_service(&cc).unwrap()));
    }

    #[test]
    fn it_scrapes_the_admin_port_that_the_peer_service_names() {
        let cc = enabled(None, &[]);
        let monitor =
            serde_json::to_value(service_monitor(&cc, InternalTlsStage::Off).unwrap()).unwrap();
        let endpoints = monitor["spec"]["endpoints"].as_array().unwrap();
        assert_eq!(endpoints.len(), 1);
        assert_eq!(endpoints[0]["port"], "admin");
        assert_eq!(endpoints[0]["path"], "/metrics");
        assert!(endpoints[0].get("interval").is_none(), "{endpoints:?}");
        let ports = peer_service(&cc).unwrap().spec.unwrap().ports.unwrap();
        let admin = ports
            .iter()
            .find(|p| p.name.as_deref() == Some(ADMIN_PORT_NAME))
            .expect("the peer Service names the admin port");
        assert_eq!(admin.port, 8080);
    }

    #[test]
    fn the_interval_is_set_only_when_given() {
        for (interval, expected) in [
            (Some("30s"), serde_json::json!("30s")),
            (Some(""), serde_json::Value::Null),
            (None, serde_json::Value::Null),
        ] {
            let monitor = serde_json::to_value(
                service_monitor(&enabled(interval, &[]), InternalTlsStage::Off).unwrap(),
            )
            .unwrap();
            let endpoint = &monitor["spec"]["endpoints"][0];
            assert_eq!(
                endpoint.get("interval").cloned().unwrap_or_default(),
                expected,
                "{interval:?}"
            );
        }
    }

    #[test]
    fn extra_labels_are_added_and_the_clusters_own_win() {
        let cc = enabled(
            None,
            &[
                ("release", "prometheus"),
                ("app.kubernetes.io/instance", "other"),
            ],
        );
        let monitor =
            serde_json::to_value(service_monitor(&cc, InternalTlsStage::Off).unwrap()).unwrap();
        let labels = &monitor["metadata"]["labels"];
        assert_eq!(labels["release"], "prometheus");
        assert_eq!(labels["app.kubernetes.io/instance"], "zk");
        assert_eq!(labels["app.kubernetes.io/name"], "conclave");
    }

    #[test]
    fn a_resource_without_a_uid_cannot_own_it() {
        let mut cc = enabled(None, &[]);
        cc.metadata.uid = None;
        assert_eq!(
            service_monitor(&cc, InternalTlsStage::Off).unwrap_err(),
            BuildError::Missing("uid")
        );
    }
}

//! Prints, as a JSON `List`, the objects the operator would create for the
//! `CoordinationCluster` read from stdin (JSON) when the ensemble is first
//! formed: for reading them, and for `kubectl apply --dry-run=server`.
//! The ServiceMonitor is printed when `spec.metrics.serviceMonitor` is
//! enabled, as if its CRD were served.
//! The resource needs a namespace and a uid (any value). The
//! NetworkPolicy lets the operator's pods in `$POD_NAMESPACE` (`default`
//! when unset) reach the admin port.

use std::io::Read as _;

use operator::build::{
    config, internal_tls, network_policy, pdb, service_monitor, services, statefulset,
};
use operator::crd::CoordinationCluster;

fn main() {
    if let Err(e) = run() {
        eprintln!("render: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let cc: CoordinationCluster = serde_json::from_str(&input)?;
    let servers = config::initial_servers(&cc);
    // A new cluster starts on the internal TLS stage its spec asks for.
    let stage = internal_tls::target(&cc);
    let mut items = vec![
        serde_json::to_value(config::config_map(&cc, &servers, false, None)?)?,
        serde_json::to_value(services::peer_service(&cc)?)?,
        serde_json::to_value(services::client_service(&cc)?)?,
        serde_json::to_value(statefulset::statefulset(
            &cc,
            cc.spec.replicas + cc.spec.observers,
            None,
            stage,
        )?)?,
    ];
    if let Some(budget) = pdb::pdb(&cc)? {
        items.push(serde_json::to_value(budget)?);
    }
    let operator_namespace =
        std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "default".to_owned());
    if let Some(policy) = network_policy::network_policy(&cc, &operator_namespace)? {
        items.push(serde_json::to_value(policy)?);
    }
    if cc.spec.metrics.service_monitor.enabled {
        items.push(serde_json::to_value(service_monitor::service_monitor(
            &cc, stage,
        )?)?);
    }
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    println!("{}", serde_json::to_string_pretty(&list)?);
    Ok(())
}

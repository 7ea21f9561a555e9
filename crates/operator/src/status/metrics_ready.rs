//! The `MetricsReady` condition: whether what `spec.metrics` asks for is in
//! place. True when the ServiceMonitor is applied or none is asked for;
//! False when one is asked for and the API server has no ServiceMonitor
//! resource (the Prometheus Operator's CRDs are not installed), which is
//! the one thing a person has to do something about.

use crate::build::service_monitor::group_version;

/// The condition's type.
pub const METRICS_READY: &str = "MetricsReady";
/// Its reason while the Prometheus Operator's CRDs are missing; the
/// Warning Event is published once per stretch of it.
pub const CRD_MISSING: &str = "ServiceMonitorCRDMissing";

/// What became of `spec.metrics.serviceMonitor` in one reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceMonitorState {
    /// Not asked for; one the operator had made is gone.
    Disabled,
    /// Asked for and applied.
    Applied,
    /// Asked for, but the API server serves no ServiceMonitor.
    CrdMissing,
}

/// The condition for `state` of cluster `cluster`: (status, reason,
/// message).
pub fn condition(state: ServiceMonitorState, cluster: &str) -> (bool, &'static str, String) {
    match state {
        ServiceMonitorState::Disabled => (
            true,
            "ServiceMonitorDisabled",
            "spec.metrics.serviceMonitor.enabled is false: no ServiceMonitor".to_owned(),
        ),
        ServiceMonitorState::Applied => (
            true,
            "ServiceMonitorApplied",
            format!("ServiceMonitor {cluster} scrapes /metrics on every server's admin port"),
        ),
        ServiceMonitorState::CrdMissing => (
            false,
            CRD_MISSING,
            format!(
                "the API server serves no {} ServiceMonitor: install the Prometheus Operator's \
                 CRDs, or set spec.metrics.serviceMonitor.enabled to false",
                group_version()
            ),
        ),
    }
}

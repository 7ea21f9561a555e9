//! The operator's Prometheus metrics (`GET /metrics`): reconciles, their
//! failures and durations, and per-cluster gauges (members, ready pods,
//! whether a leader is known, whether an operation is in flight). Series
//! are labelled by cluster (`namespace/name`), never by pod.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabel {
    pub cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub cluster: String,
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    pub cluster: String,
    pub action: String,
}

#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub reconciles: Family<ClusterLabel, Counter>,
    pub failures: Family<ErrorLabel, Counter>,
    pub duration: Family<ClusterLabel, Histogram>,
    pub members: Family<ClusterLabel, Gauge>,
    pub ready_pods: Family<ClusterLabel, Gauge>,
    pub leader_known: Family<ClusterLabel, Gauge>,
    pub operation_in_flight: Family<ClusterLabel, Gauge>,
    pub actions: Family<ActionLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("conclave_operator");
        let reconciles = Family::<ClusterLabel, Counter>::default();
        let failures = Family::<ErrorLabel, Counter>::default();
        let duration = Family::<ClusterLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 2.0, 14))
        });
        let members = Family::<ClusterLabel, Gauge>::default();
        let ready_pods = Family::<ClusterLabel, Gauge>::default();
        let leader_known = Family::<ClusterLabel, Gauge>::default();
        let operation_in_flight = Family::<ClusterLabel, Gauge>::default();
        let actions = Family::<ActionLabel, Counter>::default();
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register(
            "reconcile_failures",
            "Reconciles that failed, by error kind",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "How long reconciles took",
            duration.clone(),
        );
        registry.register(
            "members",
            "Members of the committed configuration",
            members.clone(),
        );
        registry.register("ready_pods", "Pods that are Ready", ready_pods.clone());
        registry.register(
            "leader_known",
            "1 when the last reconcile read the ensemble from its leader",
            leader_known.clone(),
        );
        registry.register(
            "operation_in_flight",
            "1 while a membership change or roll is under way",
            operation_in_flight.clone(),
        );
        registry.register("actions", "Actions taken, by kind", actions.clone());
        Metrics {
            registry: Arc::new(registry),
            reconciles,
            failures,
            duration,
            members,
            ready_pods,
            leader_known,
            operation_in_flight,
            actions,
        }
    }
}

impl Metrics {
    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_labelled_by_cluster() {
        let metrics = Metrics::default();
        let label = ClusterLabel {
            cluster: "apps/zk".into(),
        };
        metrics.reconciles.get_or_create(&label).inc();
        metrics.members.get_or_create(&label).set(3);
        let text = metrics.encode();
        assert!(
            text.contains("conclave_operator_reconciles_total{cluster=\"apps/zk\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("conclave_operator_members{cluster=\"apps/zk\"} 3"),
            "{text}"
        );
    }
}

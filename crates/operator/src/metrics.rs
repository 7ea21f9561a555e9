//! The operator's Prometheus metrics (`GET /metrics`): reconciles, their
//! failures and durations, and per-cluster gauges (members, ready pods,
//! whether a leader is known, whether an operation is in flight, seconds
//! since the cluster last made progress). Series are labelled by cluster
//! (`namespace/name`), never by pod.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

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
    pub seconds_since_progress: Family<ClusterLabel, Gauge<f64, AtomicU64>>,
    pub actions: Family<ActionLabel, Counter>,
    pub progress: Arc<ProgressClock>,
}

/// When each cluster last made progress: an action was taken, an
/// operation's step changed, or nothing was left to do. While a cluster
/// waits (a roll stalled on a pod that does not come back, a joiner that
/// does not catch up) the time since grows, which is what an alert on
/// `seconds_since_progress` looks for; a cluster at rest stays at 0.
#[derive(Debug, Default)]
pub struct ProgressClock {
    last: Mutex<HashMap<String, Instant>>,
}

impl ProgressClock {
    /// Records one reconcile of `cluster` at `now` and answers the seconds
    /// since its last progress. A cluster seen for the first time starts
    /// its clock now: a restarted operator does not know what happened
    /// before it.
    pub fn observe(&self, cluster: &str, progressed: bool, now: Instant) -> f64 {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let since = last.entry(cluster.to_owned()).or_insert(now);
        if progressed {
            *since = now;
        }
        now.saturating_duration_since(*since).as_secs_f64()
    }

    /// Forgets a deleted cluster.
    pub fn forget(&self, cluster: &str) {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(cluster);
    }
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
        let seconds_since_progress = Family::<ClusterLabel, Gauge<f64, AtomicU64>>::default();
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
        registry.register(
            "seconds_since_progress",
            "Seconds since the cluster last made progress (an action taken, a step finished, or nothing left to do), as of its last reconcile",
            seconds_since_progress.clone(),
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
            seconds_since_progress,
            actions,
            progress: Arc::default(),
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

    #[test]
    fn the_progress_clock_runs_only_while_a_cluster_waits() {
        let clock = ProgressClock::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + std::time::Duration::from_secs(s);
        // First sight starts the clock, progress or not.
        assert_eq!(clock.observe("a/zk", false, at(0)), 0.0);
        assert_eq!(clock.observe("a/zk", false, at(5)), 5.0);
        assert_eq!(clock.observe("a/zk", false, at(65)), 65.0);
        assert_eq!(clock.observe("a/zk", true, at(70)), 0.0);
        assert_eq!(clock.observe("a/zk", false, at(75)), 5.0);
        // Clusters have their own clocks.
        assert_eq!(clock.observe("b/zk", false, at(75)), 0.0);
        clock.forget("a/zk");
        assert_eq!(clock.observe("a/zk", false, at(80)), 0.0);
    }
}

//! The `mntr` metric table (`MonitorCommand`) and its expansion into `mntr`
//! keys; the admin API's `monitor` command and `/metrics` read the same
//! table.
//!
//! `mntr` carries every key a standalone ZooKeeper 3.8 prints, in its order.
//! Keys for quantities Conclave has carry real values; the others (JVM
//! pauses, snapshots, the request pipeline's internal queues, quorum and TLS
//! counters) carry a neutral zero. [`Metric::real`] says which is which, and
//! `/metrics` repeats it in each metric's HELP text.

use super::environment::file_descriptors;
use super::{VERSION, java_double};
use crate::processor::ServerSnapshot;
use crate::stats::{BufferStats, Summary};

/// A value as `mntr` prints it and the admin API serialises it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Value {
    /// `MonitorCommand.print`: integers as integers, other numbers as Java
    /// doubles, the rest as text.
    pub fn mntr(&self) -> String {
        match self {
            Value::Int(v) => v.to_string(),
            Value::Float(v) => java_double(*v),
            Value::Text(v) => v.clone(),
        }
    }
}

/// One metric of ZooKeeper's `ServerMetrics` / gauge registry.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    Gauge(Value),
    Counter(u64),
    /// Printed as `avg_`, `min_`, `max_`, `cnt_`, `sum_` + name.
    Summary(Summary),
    /// A summary plus `p50_`, `p95_`, `p99_`, `p999_` + name.
    Percentiles(Summary, [u64; 4]),
    /// A summary per key, printed as summaries named `<key>_` + name; no
    /// keys, no lines.
    SummarySet(Vec<(String, Summary)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub value: MetricValue,
    /// False when Conclave has no such quantity and reports a neutral value.
    pub real: bool,
    pub help: &'static str,
}

/// HELP text of the metrics Conclave has no counterpart for.
pub const PLACEHOLDER_HELP: &str =
    "ZooKeeper metric with no counterpart in Conclave; always reports a neutral value";

/// The counters of a standalone ZooKeeper 3.8, in the order its `mntr`
/// prints them (the iteration order of its metric registry).
#[rustfmt::skip]
pub const COUNTERS: &[&str] = &[
    "proposal_count", "watch_bytes", "outstanding_changes_removed", "throttled_ops",
    "stale_requests_dropped", "large_requests_rejected", "insecure_admin_count",
    "connection_rejected", "cnxn_closed_without_zk_server_running",
    "sessionless_connections_expired", "looking_count", "dead_watchers_queued", "stale_requests",
    "connection_drop_count", "learner_proposal_received_count", "digest_mismatches_count",
    "dead_watchers_cleared", "response_packet_cache_hits", "bytes_received_count",
    "add_dead_watcher_stall_time", "request_throttle_wait_count",
    "requests_not_forwarded_to_commit_processor", "response_packet_cache_misses",
    "ensemble_auth_success", "prep_processor_request_queued", "learner_commit_received_count",
    "stale_replies", "connection_request_count", "response_bytes", "ensemble_auth_fail",
    "diff_count", "response_packet_get_children_cache_misses", "connection_revalidate_count",
    "quit_leading_due_to_disloyal_voter", "snap_count", "unrecoverable_error_count",
    "unsuccessful_handshake", "commit_count", "stale_sessions_expired",
    "response_packet_get_children_cache_hits", "sync_processor_request_queued",
    "outstanding_changes_queued", "request_commit_queued", "ensemble_auth_skip",
    "skip_learner_request_to_next_processor_count", "tls_handshake_exceeded", "revalidate_count",
];

/// The avg/min/max summaries, in `mntr` order.
#[rustfmt::skip]
pub const SUMMARIES: &[&str] = &[
    "socket_closing_time", "proposal_process_time", "leader_unavailable_time",
    "node_created_watch_count", "session_queues_drained", "write_commit_proc_req_queued",
    "connection_token_deficit", "read_commit_proc_req_queued", "node_deleted_watch_count",
    "startup_txns_load_time", "sync_processor_queue_size", "follower_sync_time",
    "prep_processor_queue_size", "fsynctime", "inflight_snap_count",
    "reads_issued_from_session_queue", "learner_request_processor_queue_size", "snapshottime",
    "unavailable_time", "startup_txns_loaded", "reads_after_write_in_session_queue",
    "requests_in_session_queue", "write_commit_proc_issued", "prep_process_time",
    "pending_session_queue_size", "time_waiting_empty_pool_in_commit_processor_read_ms",
    "commit_process_time", "dbinittime", "inflight_diff_count", "netty_queued_buffer_capacity",
    "election_time", "commit_commit_proc_req_queued", "sync_processor_batch_size",
    "node_children_watch_count", "write_batch_time_in_commit_processor", "read_commit_proc_issued",
    "concurrent_request_processing_in_commit_processor", "observer_sync_time",
    "node_changed_watch_count", "sync_process_time", "startup_snap_load_time",
];

/// The summaries with percentiles, in `mntr` order.
#[rustfmt::skip]
pub const PERCENTILE_SUMMARIES: &[&str] = &[
    "prep_processor_queue_time_ms", "jvm_pause_time_ms", "close_session_prep_time",
    "read_commitproc_time_ms", "updatelatency", "local_write_committed_time_ms",
    "request_throttle_queue_time_ms", "readlatency", "quorum_ack_latency",
    "om_commit_process_time_ms", "read_final_proc_time_ms", "commit_propagation_latency",
    "dead_watchers_cleaner_latency", "write_final_proc_time_ms", "proposal_ack_creation_latency",
    "proposal_latency", "om_proposal_process_time_ms", "sync_processor_queue_and_flush_time_ms",
    "propagation_latency", "server_write_committed_time_ms", "sync_processor_queue_time_ms",
    "sync_processor_queue_flush_time_ms", "write_commitproc_time_ms",
];

/// Every metric `mntr` reports after `version` and `server_state`, in
/// ZooKeeper's order: gauges, counters, summaries, percentile summaries.
pub fn metrics(s: &ServerSnapshot) -> Vec<Metric> {
    let l = &s.stats.latency;
    let rs = &s.stats.client_response;
    let (fds_open, fds_max) = file_descriptors();
    let int = |v: u64| Value::Int(i64::try_from(v).unwrap_or(i64::MAX));
    let count = |v: usize| int(v as u64);
    let gauge = |name, real, value, help| Metric {
        name,
        value: MetricValue::Gauge(value),
        real,
        help,
    };
    let mut out = vec![
        gauge(
            "ephemerals_count",
            true,
            count(s.ephemerals_count),
            "Ephemeral znodes",
        ),
        gauge(
            "num_alive_connections",
            true,
            count(s.connections.len()),
            "Open client connections",
        ),
        gauge(
            "avg_latency",
            true,
            Value::Float(l.avg()),
            "Average request latency in ms",
        ),
        gauge(
            "outstanding_requests",
            false,
            Value::Int(0),
            "Requests queued but not yet processed; always 0 in Conclave, whose processor handles each request as it is dequeued",
        ),
        gauge(
            "znode_count",
            true,
            count(s.node_count),
            "Znodes in the tree",
        ),
        gauge(
            "global_sessions",
            true,
            count(s.sessions.len()),
            "Live sessions",
        ),
        gauge(
            "non_mtls_remote_conn_count",
            false,
            Value::Int(0),
            PLACEHOLDER_HELP,
        ),
        gauge(
            "last_client_response_size",
            true,
            Value::Int(BufferStats::java(rs.last)),
            "Size in bytes of the last response or notification; -1 before the first",
        ),
        gauge(
            "packets_sent",
            true,
            int(s.stats.packets_sent),
            "Packets sent to clients",
        ),
        gauge(
            "packets_received",
            true,
            int(s.stats.packets_received),
            "Packets received from clients",
        ),
        gauge(
            "max_client_response_size",
            true,
            Value::Int(BufferStats::java(rs.max)),
            "Largest response or notification in bytes; -1 before the first",
        ),
        gauge(
            "connection_drop_probability",
            false,
            Value::Float(0.0),
            PLACEHOLDER_HELP,
        ),
        gauge(
            "watch_count",
            true,
            count(s.watch_count),
            "Data and child watches registered",
        ),
        gauge(
            "auth_failed_count",
            true,
            int(s.stats.auth_failed),
            "Failed authentications",
        ),
        gauge(
            "min_latency",
            true,
            int(l.min()),
            "Minimum request latency in ms",
        ),
        gauge(
            "max_file_descriptor_count",
            true,
            int(fds_max),
            "File descriptor limit of the process",
        ),
        gauge(
            "approximate_data_size",
            true,
            Value::Int(s.approximate_data_size),
            "Approximate bytes of znode paths and data",
        ),
        gauge(
            "open_file_descriptor_count",
            true,
            count(fds_open),
            "Open file descriptors of the process",
        ),
        gauge("local_sessions", false, Value::Int(0), PLACEHOLDER_HELP),
        gauge(
            "uptime",
            true,
            int(s.uptime_ms),
            "Milliseconds since the server started",
        ),
        gauge(
            "max_latency",
            true,
            int(l.max()),
            "Maximum request latency in ms",
        ),
        gauge(
            "outstanding_tls_handshake",
            false,
            Value::Int(0),
            PLACEHOLDER_HELP,
        ),
        gauge(
            "min_client_response_size",
            true,
            Value::Int(BufferStats::java(rs.min)),
            "Smallest response or notification in bytes; -1 before the first",
        ),
        gauge(
            "non_mtls_local_conn_count",
            false,
            Value::Int(0),
            PLACEHOLDER_HELP,
        ),
    ];
    for &name in COUNTERS {
        let real = match name {
            "watch_bytes" => Some((s.stats.watch_bytes, "Bytes of watch notifications sent")),
            "connection_rejected" => Some((
                s.connections_rejected,
                "Connections refused by the connection limits",
            )),
            "bytes_received_count" => Some((s.bytes_received, "Bytes of client packets received")),
            "connection_request_count" => {
                Some((s.stats.connection_requests, "Connect requests received"))
            }
            "response_bytes" => Some((s.stats.response_bytes, "Bytes of replies sent")),
            "commit_count" => Some((s.stats.commit_count, "Transactions applied to the tree")),
            _ => None,
        };
        out.push(match real {
            Some((v, help)) => Metric {
                name,
                value: MetricValue::Counter(v),
                real: true,
                help,
            },
            None => Metric {
                name,
                value: MetricValue::Counter(0),
                real: false,
                help: PLACEHOLDER_HELP,
            },
        });
    }
    for &name in SUMMARIES {
        let st = &s.stats;
        let real = match name {
            "node_created_watch_count" => Some((
                &st.node_created_watchers,
                "Watchers fired per NodeCreated event",
            )),
            "node_deleted_watch_count" => Some((
                &st.node_deleted_watchers,
                "Watchers fired per NodeDeleted event",
            )),
            "node_changed_watch_count" => Some((
                &st.node_changed_watchers,
                "Watchers fired per NodeDataChanged event",
            )),
            "node_children_watch_count" => Some((
                &st.node_children_watchers,
                "Watchers fired per NodeChildrenChanged event",
            )),
            "fsynctime" => Some((&st.fsync_time, "Time of each log sync in ms")),
            "sync_processor_batch_size" => Some((
                &st.sync_batch_size,
                "Log entries made durable by one sync (group commit)",
            )),
            _ => None,
        };
        out.push(match real {
            Some((v, help)) => Metric {
                name,
                value: MetricValue::Summary(v.clone()),
                real: true,
                help,
            },
            None => Metric {
                name,
                value: MetricValue::Summary(Summary::default()),
                real: false,
                help: PLACEHOLDER_HELP,
            },
        });
    }
    for &name in PERCENTILE_SUMMARIES {
        let real = match name {
            "readlatency" => Some((
                &s.stats.read_latency,
                "Latency in ms of requests without a transaction (reads, pings)",
            )),
            "updatelatency" => Some((
                &s.stats.update_latency,
                "Latency in ms of transactions (writes, sessions)",
            )),
            _ => None,
        };
        out.push(match real {
            Some((v, help)) => Metric {
                name,
                value: MetricValue::Percentiles(v.summary.clone(), v.percentiles()),
                real: true,
                help,
            },
            None => Metric {
                name,
                value: MetricValue::Percentiles(Summary::default(), [0; 4]),
                real: false,
                help: PLACEHOLDER_HELP,
            },
        });
    }
    let namespaces = |m: &std::collections::BTreeMap<String, Summary>| {
        MetricValue::SummarySet(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    };
    out.push(Metric {
        name: "read_per_namespace",
        value: namespaces(&s.stats.read_per_namespace),
        real: true,
        help: "Bytes per read (path, data or child names, and a stat) by top-level namespace",
    });
    out.push(Metric {
        name: "write_per_namespace",
        value: namespaces(&s.stats.write_per_namespace),
        real: true,
        help: "Bytes per write (path and data) by top-level namespace",
    });
    out
}

/// `mntr` keys (without the `zk_` prefix) and values, in ZooKeeper's order:
/// version and state, then [`metrics`] with summaries expanded.
pub fn monitor(s: &ServerSnapshot) -> Vec<(String, Value)> {
    let mut out = vec![
        ("version".to_owned(), Value::Text(VERSION.to_owned())),
        (
            "server_state".to_owned(),
            Value::Text(s.server_state().to_owned()),
        ),
    ];
    for m in metrics(s) {
        monitor_values(&m, &mut out);
    }
    out.extend(ensemble(s));
    out
}

/// The keys a member of an ensemble adds to `mntr` (none standalone); the
/// numeric ones are also Prometheus gauges, as ZooKeeper's quorum and
/// leader gauges are.
pub fn ensemble(s: &ServerSnapshot) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Some(r) = &s.replica {
        ensemble_values(r, &mut out);
    }
    out
}

/// The keys a member of a ZooKeeper ensemble adds to `mntr`: every member
/// its peer state and quorum size, the leader its learners and how many of
/// them are in sync.
fn ensemble_values(r: &crate::processor::ReplicaStatus, out: &mut Vec<(String, Value)>) {
    let int = |v: usize| Value::Int(i64::try_from(v).unwrap_or(i64::MAX));
    let peer_state = match r.state {
        "leader" => "leading - broadcast",
        "follower" => "following - broadcast",
        "observer" => "observing - broadcast",
        _ => "looking - election",
    };
    out.push(("peer_state".to_owned(), Value::Text(peer_state.to_owned())));
    let voters = r
        .members
        .iter()
        .filter(|(_, role, _)| *role == crate::ensemble_config::MemberRole::Participant)
        .count();
    out.push(("quorum_size".to_owned(), int(voters)));
    // Conclave's own: the committed membership (`/zookeeper/config`).
    out.push((
        "membership_version".to_owned(),
        Value::Text(format!("{:x}", r.membership.version)),
    ));
    out.push((
        "membership_observers".to_owned(),
        int(r.members.len() - voters),
    ));
    out.push((
        "reconfig_in_progress".to_owned(),
        int(usize::from(r.reconfig_in_progress)),
    ));
    if r.state == "leader" {
        let others = || r.progress.iter().filter(|p| p.id != r.my_id);
        let synced = |learner: bool| {
            others()
                .filter(|p| p.learner == learner && p.recent_active)
                .count()
        };
        out.push(("learners".to_owned(), int(others().count())));
        out.push(("synced_followers".to_owned(), int(synced(false))));
        out.push(("synced_non_voting_followers".to_owned(), int(0)));
        out.push(("synced_observers".to_owned(), int(synced(true))));
        out.push(("pending_syncs".to_owned(), int(r.pending_syncs)));
    }
}

/// One metric as `mntr` keys.
pub fn monitor_values(m: &Metric, out: &mut Vec<(String, Value)>) {
    let int = |v: u64| Value::Int(i64::try_from(v).unwrap_or(i64::MAX));
    let keyed = |sum: &Summary, name: &str, out: &mut Vec<(String, Value)>| {
        out.push((format!("avg_{name}"), Value::Float(sum.avg())));
        out.push((format!("min_{name}"), int(sum.min())));
        out.push((format!("max_{name}"), int(sum.max())));
        out.push((format!("cnt_{name}"), int(sum.count)));
        out.push((format!("sum_{name}"), int(sum.total)));
    };
    let summary = |sum: &Summary, out: &mut Vec<(String, Value)>| keyed(sum, m.name, out);
    match &m.value {
        MetricValue::Gauge(v) => out.push((m.name.to_owned(), v.clone())),
        MetricValue::Counter(v) => out.push((m.name.to_owned(), int(*v))),
        MetricValue::Summary(sum) => summary(sum, out),
        MetricValue::Percentiles(sum, p) => {
            summary(sum, out);
            for (prefix, v) in ["p50", "p95", "p99", "p999"].iter().zip(p) {
                out.push((format!("{prefix}_{}", m.name), int(*v)));
            }
        }
        MetricValue::SummarySet(set) => {
            for (key, sum) in set {
                keyed(sum, &format!("{key}_{}", m.name), out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_tables_have_zookeepers_sizes() {
        // A standalone ZooKeeper 3.8.0 prints 24 gauges, 47 counters, 41
        // summaries and 23 percentile summaries (plus per-namespace sets).
        assert_eq!(
            (COUNTERS.len(), SUMMARIES.len(), PERCENTILE_SUMMARIES.len()),
            (47, 41, 23)
        );
        let mut all: Vec<&str> = COUNTERS
            .iter()
            .chain(SUMMARIES)
            .chain(PERCENTILE_SUMMARIES)
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 47 + 41 + 23, "no duplicates");
    }
}

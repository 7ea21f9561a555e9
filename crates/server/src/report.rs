//! Text and key/value renderings of server state shared by the four-letter
//! words and the admin HTTP API, in ZooKeeper 3.8's formats
//! (`ServerStats.toString`, `ServerCnxn.dumpConnectionInfo`,
//! `ZooKeeperServer.dumpConf`, `SessionTrackerImpl.dumpSessions`,
//! `ExpiryQueue.dump`, `MonitorCommand`, `Environment.list`).
//!
//! `mntr` carries every key a standalone ZooKeeper 3.8 prints, in its order.
//! Keys for quantities Conclave has carry real values; the others (JVM
//! pauses, snapshots, the request pipeline's internal queues, quorum and TLS
//! counters) carry a neutral zero. [`Metric::real`] says which is which, and
//! `/metrics` repeats it in each metric's HELP text.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::oneshot;

use crate::config::Config;
use crate::processor::{AdminAnswer, AdminQuery, Command, ConnectionInfo, ServerSnapshot};
use crate::server::Shared;
use crate::stats::{BufferStats, ConnStats, Summary};

/// The version Conclave reports: the ZooKeeper release whose protocol and
/// semantics it implements, then its own name and version. Clients such as
/// kazoo parse the leading digits to decide which features they may use.
pub const VERSION: &str = concat!(
    "3.8.0-conclave-",
    env!("CARGO_PKG_VERSION"),
    ", built on conclave"
);

/// `ZooTrace.getTextTraceLevel()` default.
pub const DEFAULT_TRACE_MASK: i64 = 306;

/// The trace mask `stmk` sets and `gtmk` reads. Process-wide, like
/// ZooKeeper's static `ZooTrace` level; Conclave's logging does not use it.
static TRACE_MASK: AtomicI64 = AtomicI64::new(DEFAULT_TRACE_MASK);

pub fn trace_mask() -> i64 {
    TRACE_MASK.load(Ordering::Relaxed)
}

pub fn set_trace_mask(mask: i64) {
    TRACE_MASK.store(mask, Ordering::Relaxed);
}

pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// ZooKeeper's `zookeeper.nio.sessionlessCnxnTimeout` default: the timeout of
/// a connection without a session, and the width of the connection expiry
/// buckets that `dump` prints.
pub const SESSIONLESS_CNXN_TIMEOUT_MS: i32 = 10_000;

/// Asks the processor something; `None` if it is gone.
pub async fn query(shared: &Shared, query: AdminQuery) -> Option<AdminAnswer> {
    let (tx, rx) = oneshot::channel();
    shared.commands.send(Command::Admin(query, tx)).await.ok()?;
    rx.await.ok()
}

/// The processor's snapshot plus the counters the listeners keep.
pub async fn snapshot(shared: &Shared) -> Option<ServerSnapshot> {
    match query(shared, AdminQuery::Snapshot).await? {
        AdminAnswer::Snapshot(s) => {
            let mut s = *s;
            s.connections_rejected = shared.connections_rejected.load(Ordering::Relaxed);
            s.bytes_received = shared.bytes_received.load(Ordering::Relaxed);
            Some(s)
        }
        AdminAnswer::Done => None,
    }
}

/// Is the server serving requests (`ZooKeeperServer.isRunning`)?
pub async fn is_serving(shared: &Shared) -> bool {
    query(shared, AdminQuery::Ping).await.is_some()
}

/// `srst`: the processor's statistics and every metric counter start over,
/// the listeners' counters included (`ServerMetrics.resetAll`).
pub async fn reset_server_stats(shared: &Shared) -> bool {
    let done = query(shared, AdminQuery::ResetServerStats).await.is_some();
    if done {
        shared.connections_rejected.store(0, Ordering::Relaxed);
        shared.bytes_received.store(0, Ordering::Relaxed);
    }
    done
}

/// `crst`.
pub async fn reset_connection_stats(shared: &Shared) -> bool {
    query(shared, AdminQuery::ResetConnectionStats)
        .await
        .is_some()
}

/// Counts a four-letter word as a received packet of four bytes, as
/// ZooKeeper does before running (or refusing) it; false if the processor
/// is gone.
pub async fn count_four_letter_word(shared: &Shared) -> bool {
    shared.bytes_received.fetch_add(4, Ordering::Relaxed);
    query(shared, AdminQuery::FourLetterWord).await.is_some()
}

/// Counts the packets a four-letter word's output of `output` is sent in:
/// one per 8192 characters (the size of ZooKeeper's buffered writer, each
/// flush of which is a packet sent), none for no output.
pub async fn count_four_letter_output(shared: &Shared, output: &str) {
    let chars = output.encode_utf16().count() as u64;
    let packets = chars.div_ceil(8192);
    if packets > 0 {
        query(shared, AdminQuery::FourLetterOutput { packets }).await;
    }
}

/// The connection a four-letter word arrives on. ZooKeeper lists it among
/// the connections while the command runs (`stat`, `cons`, `dump`, and the
/// connection counts of `srvr` and `mntr`): no session, one packet received,
/// interest 0.
pub fn four_letter_connection(remote: SocketAddr) -> ConnectionInfo {
    ConnectionInfo {
        remote,
        session_id: 0,
        timeout_ms: SESSIONLESS_CNXN_TIMEOUT_MS,
        interest_ops: 0,
        stats: ConnStats {
            packets_received: 1,
            ..ConnStats::new()
        },
    }
}

/// `ServerStats.toString()` plus the node count, as `srvr` and `stat` print
/// them.
pub fn server_stats_text(s: &ServerSnapshot) -> String {
    let l = &s.stats.latency;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Latency min/avg/max: {}/{}/{}",
        l.min(),
        java_double(l.avg()),
        l.max()
    );
    let _ = writeln!(out, "Received: {}", s.stats.packets_received);
    let _ = writeln!(out, "Sent: {}", s.stats.packets_sent);
    let _ = writeln!(out, "Connections: {}", s.connections.len());
    let _ = writeln!(out, "Outstanding: 0");
    let _ = writeln!(out, "Zxid: 0x{:x}", s.last_zxid);
    let _ = writeln!(out, "Mode: standalone");
    let _ = writeln!(out, "Node count: {}", s.node_count);
    out
}

/// A Java `double` as `Double.toString` prints it: at least one fractional
/// digit, scientific notation outside [1e-3, 1e7).
pub fn java_double(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".to_owned()
        } else if v > 0.0 {
            "Infinity".to_owned()
        } else {
            "-Infinity".to_owned()
        };
    }
    if v == 0.0 || (1e-3..1e7).contains(&v.abs()) {
        let s = format!("{v}");
        return if s.contains('.') { s } else { format!("{s}.0") };
    }
    let s = format!("{v:e}");
    let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_owned()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exponent}")
}

/// A socket address as Java's `InetSocketAddress` prints it without a
/// host name: IPv6 addresses in full, uncompressed form inside brackets.
pub fn java_socket_addr(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => {
            let segments: Vec<String> =
                a.ip().segments().iter().map(|s| format!("{s:x}")).collect();
            let scope = if a.scope_id() != 0 {
                format!("%{}", a.scope_id())
            } else {
                String::new()
            };
            format!("[{}{scope}]:{}", segments.join(":"), a.port())
        }
    }
}

/// One line of `cons` (brief for `stat`), without the newline
/// (`ServerCnxn.dumpConnectionInfo`).
pub fn connection_line(c: &ConnectionInfo, brief: bool) -> String {
    let st = &c.stats;
    let interest = if c.interest_ops == 0 {
        "0".to_owned()
    } else {
        format!("{:x}", c.interest_ops)
    };
    let mut out = format!(
        " /{}[{interest}](queued=0,recved={},sent={}",
        java_socket_addr(&c.remote),
        st.packets_received,
        st.packets_sent
    );
    if !brief && c.session_id != 0 {
        let _ = write!(
            out,
            ",sid=0x{:x},lop={},est={},to={}",
            c.session_id, st.last_op, st.established_ms, c.timeout_ms
        );
        if st.last_cxid >= 0 {
            let _ = write!(out, ",lcxid=0x{:x}", st.last_cxid);
        }
        let _ = write!(
            out,
            ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
            st.last_zxid,
            st.last_response_ms,
            st.last_latency_ms,
            st.latency.min_ms,
            st.latency.avg(),
            st.latency.max_ms
        );
    }
    out.push(')');
    out
}

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
            Value::Text("standalone".to_owned()),
        ),
    ];
    for m in metrics(s) {
        monitor_values(&m, &mut out);
    }
    out
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

/// Open and maximum file descriptors of this process (Linux `/proc`).
fn file_descriptors() -> (usize, u64) {
    let open = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);
    let max = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    (open, max)
}

/// Where ZooKeeper keeps snapshots and logs under `dataDir` / `dataLogDir`
/// (`FileTxnSnapLog.VERSION`): `conf`, `dirs` and the admin API report this
/// directory and the size of the files in it, as ZooKeeper does.
pub fn snap_dir(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("version-2")
}

/// A path made absolute without resolving links (`File.getAbsolutePath`).
pub fn absolute(p: &std::path::Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_owned())
        .display()
        .to_string()
}

/// `conf` (`ZooKeeperServer.dumpConf`).
pub fn conf_text(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "clientPort={}", config.client_addr.port());
    let _ = writeln!(out, "secureClientPort=-1");
    let _ = writeln!(out, "dataDir={}", absolute(&snap_dir(&config.data_dir)));
    let _ = writeln!(out, "dataDirSize={}", dir_size(&snap_dir(&config.data_dir)));
    let _ = writeln!(
        out,
        "dataLogDir={}",
        absolute(&snap_dir(&config.data_log_dir))
    );
    let _ = writeln!(
        out,
        "dataLogSize={}",
        dir_size(&snap_dir(&config.data_log_dir))
    );
    let _ = writeln!(out, "tickTime={}", config.tick_time_ms);
    let _ = writeln!(out, "maxClientCnxns={}", config.max_client_cnxns);
    let _ = writeln!(out, "minSessionTimeout={}", config.min_session_timeout_ms);
    let _ = writeln!(out, "maxSessionTimeout={}", config.max_session_timeout_ms);
    let _ = writeln!(out, "clientPortListenBacklog=-1");
    let _ = writeln!(out, "serverId={}", config.server_id.unwrap_or(0));
    out
}

/// `dirs`.
pub fn dirs_text(config: &Config) -> String {
    format!(
        "datadir_size: {}\nlogdir_size: {}\n",
        dir_size(&snap_dir(&config.data_dir)),
        dir_size(&snap_dir(&config.data_log_dir))
    )
}

/// Total size of the files directly in a directory (ZooKeeper sums its
/// snapshot and log directories the same way).
pub fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// `envi` (`Environment.list`), with this process's facts in place of the
/// JVM's: `java.*` entries Conclave has no value for are `<NA>`, and the
/// memory lines report the process's resident size (`total`), the memory
/// limit (`max`: the cgroup limit, else the machine's memory) and the
/// machine's available memory (`free`), in MB like ZooKeeper.
pub fn environment() -> Vec<(&'static str, String)> {
    let na = || "<NA>".to_owned();
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| na());
    let proc_text = |p: &str| std::fs::read_to_string(p).map(|h| h.trim().to_owned()).ok();
    let mb = |bytes: Option<u64>| bytes.map_or_else(na, |b| format!("{}MB", b / (1024 * 1024)));
    let (free, max, total) = memory();
    vec![
        ("zookeeper.version", VERSION.to_owned()),
        (
            "host.name",
            proc_text("/proc/sys/kernel/hostname").unwrap_or_else(na),
        ),
        ("java.version", na()),
        ("java.vendor", na()),
        ("java.home", na()),
        ("java.class.path", na()),
        ("java.library.path", na()),
        ("java.io.tmpdir", std::env::temp_dir().display().to_string()),
        ("java.compiler", na()),
        ("os.name", java_os_name()),
        ("os.arch", java_os_arch().to_owned()),
        (
            "os.version",
            proc_text("/proc/sys/kernel/osrelease").unwrap_or_else(na),
        ),
        ("user.name", user_name().unwrap_or_else(na)),
        ("user.home", var("HOME")),
        (
            "user.dir",
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| na()),
        ),
        ("os.memory.free", mb(free)),
        ("os.memory.max", mb(max)),
        ("os.memory.total", mb(total)),
    ]
}

/// The name of the user running the process (`user.name`): `$USER`, else
/// the process's uid looked up in `/etc/passwd`.
fn user_name() -> Option<String> {
    if let Ok(user) = std::env::var("USER") {
        return Some(user);
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?;
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_owned())
    })
}

/// `os.name` as Java spells it.
pub fn java_os_name() -> String {
    match std::env::consts::OS {
        "linux" => "Linux".to_owned(),
        "macos" => "Mac OS X".to_owned(),
        "windows" => "Windows".to_owned(),
        "freebsd" => "FreeBSD".to_owned(),
        other => other.to_owned(),
    }
}

/// `os.arch` as Java spells it.
pub fn java_os_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        other => other,
    }
}

/// (available memory, memory limit, resident size) in bytes, from `/proc`
/// and the cgroup.
fn memory() -> (Option<u64>, Option<u64>, Option<u64>) {
    let kb_field = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cgroup_limit = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    let machine = kb_field(&meminfo, "MemTotal:");
    let max = match (cgroup_limit, machine) {
        (Some(c), Some(m)) => Some(c.min(m)),
        (c, m) => c.or(m),
    };
    (
        kb_field(&meminfo, "MemAvailable:"),
        max,
        kb_field(&status, "VmRSS:"),
    )
}

pub fn environment_text() -> String {
    let mut out = "Environment:\n".to_owned();
    for (k, v) in environment() {
        let _ = writeln!(out, "{k}={v}");
    }
    out
}

/// A wall-clock time as Java's `Date.toString` prints it, in UTC:
/// `Wed Nov 25 22:32:24 UTC 2026`.
pub fn java_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        year
    )
}

/// Groups (id, expiry) pairs into expiry buckets, sorted by time
/// (`ExpiryQueue`'s map from expiry time to elements).
pub fn expiry_buckets<T: Clone>(items: &[(T, u64)]) -> Vec<(u64, Vec<T>)> {
    let mut buckets: std::collections::BTreeMap<u64, Vec<T>> = std::collections::BTreeMap::new();
    for (item, at) in items {
        buckets.entry(*at).or_default().push(item.clone());
    }
    buckets.into_iter().collect()
}

/// Session expiry buckets: expiry on the snapshot's monotonic clock ->
/// session ids.
pub fn session_buckets(s: &ServerSnapshot) -> Vec<(u64, Vec<i64>)> {
    expiry_buckets(&s.session_expiries)
}

/// Connection expiry buckets as ZooKeeper's NIO server keeps them: each
/// connection expires one timeout after its last activity, rounded up to the
/// next multiple of the sessionless-connection timeout.
pub fn connection_buckets(s: &ServerSnapshot) -> Vec<(u64, Vec<&ConnectionInfo>)> {
    let interval = SESSIONLESS_CNXN_TIMEOUT_MS as u64;
    let items: Vec<(&ConnectionInfo, u64)> = s
        .connections
        .iter()
        .map(|c| {
            let active_wall = c.stats.established_ms.max(c.stats.last_response_ms);
            let idle = u64::try_from(s.wall_clock_ms.saturating_sub(active_wall)).unwrap_or(0);
            let active = s.uptime_ms.saturating_sub(idle);
            let timeout = u64::try_from(c.timeout_ms).unwrap_or(0);
            (c, ((active + timeout) / interval + 1) * interval)
        })
        .collect();
    expiry_buckets(&items)
}

/// `dump`: session expiry buckets, ephemerals by session, connection expiry
/// buckets (`SessionTrackerImpl.dumpSessions`, `DataTree.dumpEphemerals`,
/// `NIOServerCnxnFactory.dumpConnections`).
pub fn dump_text(s: &ServerSnapshot) -> String {
    let date = |at: u64| {
        let delta = i64::try_from(at).unwrap_or(i64::MAX) - i64::try_from(s.uptime_ms).unwrap_or(0);
        java_date(s.wall_clock_ms.saturating_add(delta))
    };
    let mut out = "SessionTracker dump:\n".to_owned();
    let sessions = session_buckets(s);
    let _ = writeln!(
        out,
        "Session Sets ({})/({}):",
        sessions.len(),
        s.session_expiries.len()
    );
    for (at, ids) in &sessions {
        let _ = writeln!(out, "{} expire at {}:", ids.len(), date(*at));
        for id in ids {
            let _ = writeln!(out, "\t0x{id:x}");
        }
    }
    out.push_str("ephemeral nodes dump:\n");
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", s.ephemerals.len());
    for (session, paths) in &s.ephemerals {
        let _ = writeln!(out, "0x{session:x}:");
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }
    out.push_str("Connections dump:\n");
    let connections = connection_buckets(s);
    let _ = writeln!(
        out,
        "Connections Sets ({})/({}):",
        connections.len(),
        s.connections.len()
    );
    for (at, conns) in &connections {
        let _ = writeln!(out, "{} expire at {}:", conns.len(), date(*at));
        for c in conns {
            let _ = writeln!(
                out,
                "\tip: /{} sessionId: 0x{:x}",
                java_socket_addr(&c.remote),
                c.session_id
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_doubles() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(3.6667), "3.6667");
        assert_eq!(java_double(25.0), "25.0");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(12_345_678.5), "1.23456785E7");
        assert_eq!(java_double(0.0001), "1.0E-4");
    }

    #[test]
    fn java_dates() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        // The reference server's `dump` printed this for 1795645944000.
        assert_eq!(java_date(1_795_645_944_000), "Wed Nov 25 22:32:24 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    }

    #[test]
    fn socket_addresses_print_like_java() {
        let v4: SocketAddr = "127.0.0.1:34690".parse().unwrap();
        assert_eq!(java_socket_addr(&v4), "127.0.0.1:34690");
        let v6: SocketAddr = "[::1]:2181".parse().unwrap();
        assert_eq!(java_socket_addr(&v6), "[0:0:0:0:0:0:0:1]:2181");
    }

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

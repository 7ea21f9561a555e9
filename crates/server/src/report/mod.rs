//! Server state for operators, shared by the four-letter words and the admin
//! HTTP API, in ZooKeeper 3.8's formats. This module owns the questions put
//! to the processor (snapshot, ping, resets, four-letter-word accounting)
//! and the constants both front ends print (version, trace mask, the
//! not-serving text); the renderings live in submodules:
//!
//! - `text`: the four-letter words' text (`srvr`, `stat`, `cons`, `conf`,
//!   `dirs`, `envi`, `dump`);
//! - `metrics`: the `mntr` metric table and its key/value expansion;
//! - `environment`: process and machine facts (`envi`, file descriptors);
//! - `data_dirs`: the snapshot and log directories and their sizes;
//! - `expiry`: the session and connection expiry buckets `dump` prints;
//! - `java_format`: numbers, dates and addresses as Java prints them.
//!
//! Everything public is re-exported here, so callers write `report::name`.

mod data_dirs;
mod environment;
mod expiry;
mod java_format;
mod metrics;
mod text;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::oneshot;

use crate::processor::{AdminAnswer, AdminQuery, Command, ConnectionInfo, ServerSnapshot};
use crate::server::Shared;
use crate::stats::ConnStats;

pub use data_dirs::{absolute, dir_size, snap_dir};
pub use environment::{environment, java_os_arch, java_os_name};
pub use expiry::{connection_buckets, expiry_buckets, session_buckets};
pub use java_format::{java_date, java_double, java_socket_addr};
pub use metrics::{
    COUNTERS, Metric, MetricValue, PERCENTILE_SUMMARIES, PLACEHOLDER_HELP, SUMMARIES, Value,
    ensemble, metrics, monitor, monitor_values,
};
pub use text::{
    conf_ensemble_text, conf_text, connection_line, dirs_text, dump_text, environment_text,
    server_stats_text,
};

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
        AdminAnswer::Done | AdminAnswer::NotServing => None,
    }
}

/// `isro`: "rw" when serving, "ro" when an ensemble member without a
/// quorum serves read-only sessions (`readonlymode.enabled`), "null"
/// otherwise.
pub async fn read_only_state(shared: &Shared) -> &'static str {
    match query(shared, AdminQuery::Ping).await {
        Some(AdminAnswer::Done) => "rw",
        Some(AdminAnswer::NotServing) if shared.config.read_only_mode => "ro",
        _ => "null",
    }
}

/// Is the server serving requests (`ZooKeeperServer.isRunning`)? In an
/// ensemble: is there a leader, so a quorum, to serve with.
pub async fn is_serving(shared: &Shared) -> bool {
    matches!(
        query(shared, AdminQuery::Ping).await,
        Some(AdminAnswer::Done)
    )
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
/// ZooKeeper does before running (or refusing) it; whether the server
/// serves ([`is_serving`]), false if the processor is gone.
pub async fn count_four_letter_word(shared: &Shared) -> bool {
    shared.bytes_received.fetch_add(4, Ordering::Relaxed);
    matches!(
        query(shared, AdminQuery::FourLetterWord).await,
        Some(AdminAnswer::Done)
    )
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

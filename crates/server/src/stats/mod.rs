//! Request statistics as ZooKeeper keeps them: the server-wide counters of
//! `ServerStats` and `ServerMetrics`, and the per-connection counters of
//! `ServerCnxn`. Owned by the processor task, so plain fields suffice.
//!
//! The metric classes the counters are built from are in `summary`.

mod summary;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use proto::EventType;

pub use summary::{PercentileSummary, Summary};

/// Milliseconds since the Unix epoch (for txn times and `est=`).
pub fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Per-connection latency as `ServerCnxn` keeps it: min/avg/max in whole
/// milliseconds, the average by integer division (`cons` prints `avglat=4`).
#[derive(Debug, Clone, Default)]
pub struct Latency {
    pub min_ms: u64,
    pub max_ms: u64,
    pub total_ms: u64,
    pub count: u64,
}

impl Latency {
    pub fn record(&mut self, ms: u64) {
        if self.count == 0 || ms < self.min_ms {
            self.min_ms = ms;
        }
        self.max_ms = self.max_ms.max(ms);
        self.total_ms = self.total_ms.saturating_add(ms);
        self.count += 1;
    }

    /// `ServerCnxn.getAvgLatency`: integer division, 0 while empty.
    pub fn avg(&self) -> u64 {
        self.total_ms.checked_div(self.count).unwrap_or(0)
    }

    pub fn reset(&mut self) {
        *self = Latency::default();
    }
}

/// Sizes of the responses sent (`BufferStats`: -1 until the first one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BufferStats {
    pub last: Option<usize>,
    pub min: Option<usize>,
    pub max: Option<usize>,
}

impl BufferStats {
    pub fn record(&mut self, size: usize) {
        self.last = Some(size);
        self.min = Some(self.min.map_or(size, |m| m.min(size)));
        self.max = Some(self.max.map_or(size, |m| m.max(size)));
    }

    /// A size as ZooKeeper reports it: -1 when nothing was recorded.
    pub fn java(v: Option<usize>) -> i64 {
        v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX))
    }
}

/// Server-wide counters: `ServerStats` plus the `ServerMetrics` Conclave has
/// a real quantity for.
#[derive(Debug, Clone, Default)]
pub struct ServerStats {
    /// Packets in: requests, connect requests and four-letter words.
    pub packets_received: u64,
    /// Packets out: replies, notifications and connect responses.
    pub packets_sent: u64,
    /// Every request's latency (`srvr`'s `Latency min/avg/max`).
    pub latency: Summary,
    /// Reads, pings and other requests without a transaction
    /// (`readlatency`).
    pub read_latency: PercentileSummary,
    /// Requests that are transactions (`updatelatency`).
    pub update_latency: PercentileSummary,
    /// Transactions applied to the tree.
    pub commit_count: u64,
    pub auth_failed: u64,
    /// Sizes of replies and notifications, without the length prefix.
    pub client_response: BufferStats,
    /// Bytes of replies (`response_bytes`).
    pub response_bytes: u64,
    /// Bytes of watch notifications (`watch_bytes`).
    pub watch_bytes: u64,
    /// Connect requests (`connection_request_count`).
    pub connection_requests: u64,
    /// Watchers fired per event, by event type (`node_*_watch_count`).
    pub node_created_watchers: Summary,
    pub node_deleted_watchers: Summary,
    pub node_changed_watchers: Summary,
    pub node_children_watchers: Summary,
    /// Bytes read per top-level namespace (`read_per_namespace`).
    pub read_per_namespace: BTreeMap<String, Summary>,
    /// Bytes written per top-level namespace (`write_per_namespace`).
    pub write_per_namespace: BTreeMap<String, Summary>,
    /// Time of each log sync, in ms (`fsynctime`).
    pub fsync_time: Summary,
    /// Log entries made durable by each sync: the group-commit batch
    /// (`sync_processor_batch_size`).
    pub sync_batch_size: Summary,
}

impl ServerStats {
    /// One log sync made `entries` entries durable in `duration`.
    pub fn record_sync(&mut self, entries: usize, duration: std::time::Duration) {
        self.fsync_time
            .record(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
        self.sync_batch_size
            .record(u64::try_from(entries).unwrap_or(u64::MAX));
    }

    /// A request answered after `latency_ms`: `update` when it was a
    /// transaction (`ServerStats.updateLatency`).
    pub fn record_request(&mut self, latency_ms: u64, update: bool) {
        self.latency.record(latency_ms);
        if update {
            self.update_latency.record(latency_ms);
        } else {
            self.read_latency.record(latency_ms);
        }
    }

    /// A reply of `size` bytes (without the length prefix).
    pub fn record_reply(&mut self, size: usize) {
        self.client_response.record(size);
        self.response_bytes = self.response_bytes.saturating_add(size as u64);
    }

    /// A watch notification of `size` bytes (without the length prefix).
    pub fn record_notification(&mut self, size: usize) {
        self.client_response.record(size);
        self.watch_bytes = self.watch_bytes.saturating_add(size as u64);
    }

    /// The watchers one change fired, by their event types
    /// (`WatchManager.triggerWatch` records one value per event type).
    pub fn record_watchers_fired(&mut self, events: impl IntoIterator<Item = EventType>) {
        let (mut created, mut deleted, mut changed, mut children) = (0, 0, 0, 0);
        for event in events {
            match event {
                EventType::NodeCreated => created += 1,
                EventType::NodeDeleted => deleted += 1,
                EventType::NodeDataChanged => changed += 1,
                EventType::NodeChildrenChanged => children += 1,
                EventType::None => {}
            }
        }
        for (summary, n) in [
            (&mut self.node_created_watchers, created),
            (&mut self.node_deleted_watchers, deleted),
            (&mut self.node_changed_watchers, changed),
            (&mut self.node_children_watchers, children),
        ] {
            if n > 0 {
                summary.record(n);
            }
        }
    }

    /// A read of `path` that returned `bytes` of data or child names
    /// (`DataTree.updateReadStat`: the path, the bytes and a stat's size).
    pub fn record_read(&mut self, path: &str, bytes: usize) {
        if let Some(ns) = top_namespace(path) {
            let value = java_len(path) + bytes as u64 + STAT_OVERHEAD_BYTES;
            self.read_per_namespace
                .entry(ns.to_owned())
                .or_default()
                .record(value);
        }
    }

    /// A write of `bytes` of data to `path` (`DataTree.updateWriteStat`).
    pub fn record_write(&mut self, path: &str, bytes: usize) {
        if let Some(ns) = top_namespace(path) {
            let value = java_len(path) + bytes as u64;
            self.write_per_namespace
                .entry(ns.to_owned())
                .or_default()
                .record(value);
        }
    }

    /// `srst` (`ServerStats.reset`): latency, packet counts and response
    /// sizes start over, and so does every metric (`ServerMetrics.resetAll`:
    /// counters and summaries; the per-namespace summaries keep their
    /// namespaces at zero). The auth-failure gauge is kept, as in ZooKeeper.
    pub fn reset(&mut self) {
        let zeroed = |m: &BTreeMap<String, Summary>| {
            m.keys().map(|k| (k.clone(), Summary::default())).collect()
        };
        *self = ServerStats {
            auth_failed: self.auth_failed,
            read_per_namespace: zeroed(&self.read_per_namespace),
            write_per_namespace: zeroed(&self.write_per_namespace),
            ..ServerStats::default()
        };
    }
}

/// What ZooKeeper adds to a read's size for the stat (`DataTree.STAT_OVERHEAD_BYTES`).
const STAT_OVERHEAD_BYTES: u64 = 6 * 8 + 5 * 4;

/// The first component of a path (`PathUtils.getTopNamespace`); none for `/`.
pub fn top_namespace(path: &str) -> Option<&str> {
    path.split('/').nth(1).filter(|ns| !ns.is_empty())
}

/// A string's length as Java counts it (UTF-16 units).
fn java_len(s: &str) -> u64 {
    s.encode_utf16().count() as u64
}

/// Per-connection counters (`ServerCnxn.dumpConnectionInfo`).
#[derive(Debug, Clone)]
pub struct ConnStats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub last_op: &'static str,
    pub established_ms: i64,
    pub last_cxid: i64,
    pub last_zxid: i64,
    pub last_response_ms: i64,
    pub last_latency_ms: u64,
    pub latency: Latency,
}

impl ConnStats {
    pub fn new() -> Self {
        ConnStats {
            packets_received: 0,
            packets_sent: 0,
            last_op: "NA",
            established_ms: wall_clock_ms(),
            last_cxid: -1,
            last_zxid: -1,
            last_response_ms: 0,
            last_latency_ms: 0,
            latency: Latency::default(),
        }
    }

    /// `crst`.
    pub fn reset(&mut self) {
        self.packets_received = 0;
        self.packets_sent = 0;
        self.last_op = "NA";
        self.last_cxid = -1;
        self.last_zxid = -1;
        self.last_response_ms = 0;
        self.last_latency_ms = 0;
        self.latency.reset();
    }
}

impl Default for ConnStats {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_statistics() {
        assert_eq!(top_namespace("/"), None);
        assert_eq!(top_namespace("/app"), Some("app"));
        assert_eq!(top_namespace("/app/data"), Some("app"));
        let mut s = ServerStats::default();
        s.record_read("/", 5);
        s.record_read("/app/data", 5);
        s.record_write("/app/data", 5);
        s.record_write("/zookeeper/config", 0);
        assert_eq!(s.read_per_namespace.len(), 1);
        assert_eq!(s.read_per_namespace["app"].total, 9 + 5 + 68);
        assert_eq!(s.write_per_namespace["app"].total, 9 + 5);
        assert_eq!(s.write_per_namespace["zookeeper"].total, 17);
        s.reset();
        assert_eq!(
            s.write_per_namespace.keys().collect::<Vec<_>>(),
            ["app", "zookeeper"]
        );
        assert_eq!(s.write_per_namespace["app"], Summary::default());
    }

    #[test]
    fn connection_average_is_integer_division() {
        let mut l = Latency::default();
        assert_eq!(l.avg(), 0);
        l.record(3);
        l.record(4);
        assert_eq!((l.min_ms, l.avg(), l.max_ms), (3, 3, 4));
    }

    #[test]
    fn server_reset_keeps_only_the_auth_gauge() {
        let mut s = ServerStats {
            packets_received: 3,
            auth_failed: 2,
            commit_count: 5,
            ..Default::default()
        };
        s.record_request(4, true);
        s.record_request(1, false);
        s.record_reply(16);
        s.record_notification(40);
        s.record_watchers_fired([EventType::NodeDataChanged, EventType::NodeDataChanged]);
        assert_eq!(
            s.client_response,
            BufferStats {
                last: Some(40),
                min: Some(16),
                max: Some(40)
            }
        );
        assert_eq!((s.response_bytes, s.watch_bytes), (16, 40));
        assert_eq!(
            (s.node_changed_watchers.count, s.node_changed_watchers.total),
            (1, 2)
        );
        assert_eq!(s.node_created_watchers.count, 0);
        assert_eq!(
            (s.update_latency.summary.count, s.read_latency.summary.count),
            (1, 1)
        );
        s.reset();
        assert_eq!(s.auth_failed, 2);
        assert_eq!(
            (s.packets_received, s.commit_count, s.latency.count),
            (0, 0, 0)
        );
        assert_eq!(s.client_response, BufferStats::default());
    }
}

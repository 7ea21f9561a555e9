//! Request statistics as ZooKeeper's `ServerStats` and per-connection
//! `ServerCnxn` stats keep them: counts, and min/avg/max latency in ms.
//! Owned by the processor task, so plain fields suffice.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (for txn times and `est=`).
pub fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// min/avg/max over a window that `reset` starts afresh.
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
        self.total_ms += ms;
        self.count += 1;
    }

    /// ZooKeeper prints the average as a decimal (`zk_avg_latency 0.1234`).
    pub fn avg(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.total_ms as f64 / self.count as f64 }
    }

    pub fn reset(&mut self) {
        *self = Latency::default();
    }
}

/// Server-wide counters (`ServerStats`).
#[derive(Debug, Clone, Default)]
pub struct ServerStats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub latency: Latency,
    pub commit_count: u64,
    pub connection_rejected: u64,
    pub auth_failed: u64,
    pub last_client_response_size: Option<usize>,
    pub min_client_response_size: Option<usize>,
    pub max_client_response_size: Option<usize>,
}

impl ServerStats {
    pub fn record_response_size(&mut self, size: usize) {
        self.last_client_response_size = Some(size);
        self.min_client_response_size = Some(self.min_client_response_size.map_or(size, |m| m.min(size)));
        self.max_client_response_size = Some(self.max_client_response_size.map_or(size, |m| m.max(size)));
    }

    /// `srst`: latency and packet counts start over.
    pub fn reset(&mut self) {
        self.packets_received = 0;
        self.packets_sent = 0;
        self.latency.reset();
        self.last_client_response_size = None;
        self.min_client_response_size = None;
        self.max_client_response_size = None;
    }
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

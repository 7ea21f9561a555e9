//! What the four-letter words and the admin HTTP API report, gathered by the
//! processor (which owns the state) and rendered elsewhere.

use std::net::SocketAddr;

use super::Processor;
use crate::stats::{ConnStats, ServerStats};

/// A question for the processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminQuery {
    Snapshot,
    /// `srst`.
    ResetServerStats,
    /// `crst`.
    ResetConnectionStats,
}

#[derive(Debug)]
pub enum AdminAnswer {
    Snapshot(Box<ServerSnapshot>),
    Done,
}

/// One client connection (`cons`).
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub remote: SocketAddr,
    pub session_id: i64,
    pub timeout_ms: i32,
    pub stats: ConnStats,
}

/// Everything the reports need, copied at one instant.
#[derive(Debug, Clone)]
pub struct ServerSnapshot {
    pub last_zxid: i64,
    pub node_count: usize,
    pub watch_count: usize,
    pub ephemerals_count: usize,
    pub approximate_data_size: i64,
    pub uptime_ms: u64,
    pub stats: ServerStats,
    pub connections: Vec<ConnectionInfo>,
    /// (session id, timeout ms), sorted.
    pub sessions: Vec<(i64, i32)>,
    /// Session id -> its ephemeral paths.
    pub ephemerals: Vec<(i64, Vec<String>)>,
    /// (connections, paths, watches) of the data-watch table (`wchs`).
    pub watch_summary: (usize, usize, usize),
    /// Session id -> watched paths (`wchc`).
    pub watches_by_session: Vec<(i64, Vec<String>)>,
    /// Path -> session ids (`wchp`).
    pub watches_by_path: Vec<(String, Vec<i64>)>,
}

impl Processor {
    pub(super) fn admin(&mut self, query: AdminQuery) -> AdminAnswer {
        match query {
            AdminQuery::Snapshot => AdminAnswer::Snapshot(Box::new(self.snapshot())),
            AdminQuery::ResetServerStats => {
                self.stats.reset();
                AdminAnswer::Done
            }
            AdminQuery::ResetConnectionStats => {
                for conn in self.conns.values_mut() {
                    conn.stats.reset();
                }
                AdminAnswer::Done
            }
        }
    }

    fn session_of(&self, conn: super::ConnId) -> i64 {
        self.conns.get(&conn).map_or(0, |c| c.session_id)
    }

    fn snapshot(&self) -> ServerSnapshot {
        let mut connections: Vec<ConnectionInfo> = self
            .conns
            .values()
            .filter(|c| !c.closing)
            .map(|c| ConnectionInfo {
                remote: c.remote,
                session_id: c.session_id,
                timeout_ms: c.timeout_ms,
                stats: c.stats.clone(),
            })
            .collect();
        connections.sort_by_key(|c| (c.stats.established_ms, c.remote));
        let mut watches_by_session: Vec<(i64, Vec<String>)> = self
            .watches
            .data_by_watcher()
            .map(|(conn, paths)| (self.session_of(*conn), paths.iter().cloned().collect()))
            .collect();
        watches_by_session.sort();
        let mut watches_by_path: Vec<(String, Vec<i64>)> = self
            .watches
            .data_by_path()
            .map(|(path, conns)| (path.clone(), conns.map(|c| self.session_of(*c)).collect()))
            .collect();
        watches_by_path.sort();
        ServerSnapshot {
            last_zxid: self.tree.last_zxid(),
            node_count: self.tree.node_count(),
            watch_count: self.watches.count(),
            ephemerals_count: self.tree.ephemeral_count(),
            approximate_data_size: self.tree.approximate_data_size(),
            uptime_ms: self.now_ms(),
            stats: self.stats.clone(),
            connections,
            sessions: self.sessions.all(),
            ephemerals: self
                .tree
                .ephemerals_by_session()
                .iter()
                .map(|(s, paths)| (*s, paths.iter().cloned().collect()))
                .collect(),
            watch_summary: self.watches.data_summary(),
            watches_by_session,
            watches_by_path,
        }
    }
}

//! What the four-letter words and the admin HTTP API report, gathered by the
//! processor (which owns the state) and rendered elsewhere.

use std::net::SocketAddr;

use proto::{MultiReadOp, Request};
use tree::Change;

use consensus::membership::{MemberRole, Membership};

use super::ZooKeeper;
use crate::stats::{ConnStats, ServerStats, wall_clock_ms};

/// What a read returns, for its statistics.
#[derive(Debug, Clone, Copy)]
enum Read {
    Data,
    Stat,
    Children,
}

/// A question for the processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminQuery {
    Snapshot,
    /// `srst`.
    ResetServerStats,
    /// `crst`.
    ResetConnectionStats,
    /// A four-letter word arrived: ZooKeeper counts its four bytes as a
    /// received packet (`ServerCnxn.packetReceived`) before running it.
    /// Answered like `Ping`.
    FourLetterWord,
    /// A four-letter word's output went out in this many packets (ZooKeeper
    /// counts each flush of its 8192-character writer as a packet sent).
    FourLetterOutput {
        packets: u64,
    },
    /// Is the processor serving? (Answered `Done`, or `NotServing` by an
    /// ensemble member without a leader.)
    Ping,
}

#[derive(Debug)]
pub enum AdminAnswer {
    Snapshot(Box<ServerSnapshot>),
    Done,
    /// Answered to `Ping` by a member of an ensemble that knows no leader.
    NotServing,
}

/// One client connection (`cons`).
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub remote: SocketAddr,
    /// 0 until the handshake established a session.
    pub session_id: i64,
    pub timeout_ms: i32,
    /// The selector interest ZooKeeper prints in brackets: 1 (read) for a
    /// client connection, 0 for a connection running a four-letter word.
    pub interest_ops: u32,
    pub stats: ConnStats,
}

/// Everything the reports need, copied at one instant.
#[derive(Debug, Clone)]
pub struct ServerSnapshot {
    pub last_zxid: i64,
    pub node_count: usize,
    /// Data and child watches (`zk_watch_count`).
    pub watch_count: usize,
    pub ephemerals_count: usize,
    pub approximate_data_size: i64,
    /// Monotonic milliseconds since the processor started; session expiry
    /// times are on this clock.
    pub uptime_ms: u64,
    /// The wall clock at the same instant, to turn expiry times into dates.
    pub wall_clock_ms: i64,
    pub stats: ServerStats,
    pub connections: Vec<ConnectionInfo>,
    /// (session id, timeout ms), sorted.
    pub sessions: Vec<(i64, i32)>,
    /// (session id, expiry on the `uptime_ms` clock), sorted by id.
    pub session_expiries: Vec<(i64, u64)>,
    /// Session id -> its ephemeral paths.
    pub ephemerals: Vec<(i64, Vec<String>)>,
    /// (connections, paths, watches) of the data-watch table (`wchs`).
    pub watch_summary: (usize, usize, usize),
    /// Session id -> watched paths (`wchc`).
    pub watches_by_session: Vec<(i64, Vec<String>)>,
    /// Path -> session ids (`wchp`).
    pub watches_by_path: Vec<(String, Vec<i64>)>,
    /// Connections refused by the accept loop (`connection_rejected`);
    /// counted by the listener, filled in by `report::snapshot`.
    pub connections_rejected: u64,
    /// Bytes of client packets received (`bytes_received_count`); counted
    /// by the connections, filled in by `report::snapshot`.
    pub bytes_received: u64,
    /// This server's part in its ensemble; `None` when standalone.
    pub replica: Option<ReplicaStatus>,
}

/// This server's part in its ensemble, for the reports.
#[derive(Debug, Clone)]
pub struct ReplicaStatus {
    pub my_id: u64,
    /// "leader", "follower", "observer", "looking" (no leader known),
    /// "discovering", "joining", "restoring" or "removed".
    pub state: &'static str,
    /// A leader is known and this server is a member with its state.
    pub serving: bool,
    pub leader: Option<u64>,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub applied_zxid: i64,
    /// The leader's view of every member; empty elsewhere.
    pub progress: Vec<consensus::PeerProgress>,
    /// Members by id: (id, role, connected from here).
    pub members: Vec<(u64, MemberRole, bool)>,
    /// While leading: each member's last reported applied (index, zxid),
    /// this server's own included.
    pub member_applied: Vec<(u64, u64, i64)>,
    pub pending_syncs: usize,
    /// The committed membership.
    pub membership: Membership,
    pub init_limit: u32,
    pub sync_limit: u32,
    /// A membership change is under way (this server leads it).
    pub reconfig_in_progress: bool,
    /// Members heard from within the last election timeout (this server
    /// included).
    pub live: Vec<u64>,
}

/// The report of a member's driver, with what the transport knows.
pub(super) fn replica_status(
    driver: &super::EnsembleDriver,
    config: &crate::config::Config,
    serving: bool,
) -> ReplicaStatus {
    let status = driver.status();
    let peers = driver.transport_ref();
    let my_id = status.my_id;
    ReplicaStatus {
        members: status
            .membership
            .members
            .iter()
            .map(|m| (m.id, m.role, m.id == my_id || peers.is_connected(m.id)))
            .collect(),
        my_id,
        state: status.state,
        serving,
        leader: status.leader,
        term: status.term,
        commit_index: status.commit_index,
        applied_index: status.applied_index,
        applied_zxid: status.applied_zxid,
        progress: status.progress,
        member_applied: status.member_applied,
        pending_syncs: status.pending_reads,
        membership: status.membership,
        init_limit: config.init_limit.unwrap_or(0),
        sync_limit: config.sync_limit.unwrap_or(0),
        reconfig_in_progress: status.reconfig_in_progress,
        live: status.live,
    }
}

impl ServerSnapshot {
    /// ZooKeeper's name for the server's state: "standalone", "leader",
    /// "follower", "observer", or "looking" while no leader is known.
    pub fn server_state(&self) -> &'static str {
        self.replica.as_ref().map_or("standalone", |r| r.state)
    }

    /// Whether this server serves clients now: standalone, or in an
    /// ensemble with a leader it can reach (a quorum).
    pub fn serving(&self) -> bool {
        self.replica.as_ref().is_none_or(|r| r.serving)
    }
}

impl ZooKeeper {
    /// Answers a query; `serving`: this server serves clients now
    /// (standalone, or a member that knows its leader).
    pub(super) fn admin(&mut self, query: AdminQuery, serving: bool) -> AdminAnswer {
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
            AdminQuery::FourLetterWord => {
                self.stats.packets_received += 1;
                serving_answer(serving)
            }
            AdminQuery::FourLetterOutput { packets } => {
                self.stats.packets_sent += packets;
                AdminAnswer::Done
            }
            AdminQuery::Ping => serving_answer(serving),
        }
    }

    /// Per-namespace read statistics of a read that succeeded
    /// (`DataTree.getData`, `statNode`, `getChildren`): the data, nothing,
    /// or the child names.
    pub(super) fn record_read_stats(&mut self, request: &Request) {
        let reads: Vec<(&str, Read)> = match request {
            Request::GetData(r) => vec![(&r.path, Read::Data)],
            Request::Exists(r) => vec![(&r.path, Read::Stat)],
            Request::GetChildren(r) | Request::GetChildren2(r) => vec![(&r.path, Read::Children)],
            Request::MultiRead(ops) => ops
                .iter()
                .filter_map(|op| match op {
                    MultiReadOp::GetData(r) => Some((r.path.as_str(), Read::Data)),
                    MultiReadOp::GetChildren(r) => Some((r.path.as_str(), Read::Children)),
                    MultiReadOp::Write(_) => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for (path, read) in reads {
            let Some(node) = self.tree.node(path) else {
                continue;
            };
            let bytes = match read {
                Read::Data => node.data.as_ref().map_or(0, Vec::len),
                Read::Stat => 0,
                Read::Children => node.children.iter().map(|c| c.encode_utf16().count()).sum(),
            };
            self.stats.record_read(path, bytes);
        }
    }

    /// Per-namespace write statistics of an applied transaction
    /// (`DataTree.createNode`, `setData`, `deleteNode`).
    pub(super) fn record_write_stats(&mut self, changes: &[Change]) {
        for change in changes {
            let (path, bytes) = match change {
                Change::Created { path, .. } | Change::DataChanged { path, .. } => {
                    let bytes = self
                        .tree
                        .node(path)
                        .and_then(|n| n.data.as_ref())
                        .map_or(0, Vec::len);
                    (path, bytes)
                }
                Change::Deleted { path, .. } => (path, 0),
            };
            self.stats.record_write(path, bytes);
        }
    }

    fn session_of(&self, conn: super::ConnId) -> i64 {
        self.conns.get(&conn).map_or(0, |c| c.session_id)
    }

    pub(super) fn snapshot(&self) -> ServerSnapshot {
        let mut connections: Vec<ConnectionInfo> = self
            .conns
            .values()
            .filter(|c| !c.closing)
            .map(|c| ConnectionInfo {
                remote: c.remote,
                session_id: c.session_id,
                timeout_ms: c.timeout_ms,
                interest_ops: 1,
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
            wall_clock_ms: wall_clock_ms(),
            stats: self.stats.clone(),
            connections,
            sessions: self.sessions.all(),
            session_expiries: self.sessions.expiries(),
            ephemerals: self
                .tree
                .ephemerals_by_session()
                .iter()
                .map(|(s, paths)| (*s, paths.iter().cloned().collect()))
                .collect(),
            watch_summary: self.watches.data_summary(),
            watches_by_session,
            watches_by_path,
            connections_rejected: 0,
            bytes_received: 0,
            replica: None,
        }
    }
}

/// `Done` while serving; `NotServing` for a member of an ensemble that
/// knows no leader.
fn serving_answer(serving: bool) -> AdminAnswer {
    if serving {
        AdminAnswer::Done
    } else {
        AdminAnswer::NotServing
    }
}

//! The processor as a member of an ensemble: it drives the consensus core
//! (`consensus::Node`, raft-rs underneath) through the cycle its docs
//! describe, with the log writer thread as the disk and `crate::peers` as
//! the network.
//!
//! - Writes: the leader prepares them against its tree plus its pending
//!   writes (as a standalone server does) and proposes the transaction; a
//!   follower forwards them to the leader (`crate::service_message`). Every
//!   server applies a transaction once it is committed; the server whose
//!   client sent it answers then, matching it by (session, cxid).
//! - Durability: entries and the hard state go to the log writer; the
//!   messages that promise them to others (votes, acknowledgements) wait
//!   until the writer reports the ready that produced them synced.
//! - Sessions are global: created and closed through the log on any
//!   server; the leader alone expires them, from the activity followers
//!   report every tick (with how far they have applied).
//! - `sync` is a ReadIndex round: answered once the leader has confirmed
//!   with a quorum that it still leads, and this server has applied up to
//!   the commit index it had then (linearizable, unlike ZooKeeper's).
//!   A session re-opened on a server that does not know it waits for the
//!   same round before it is called expired: the client may have created
//!   it on another server a moment ago (ZooKeeper's followers ask the
//!   leader instead, `revalidateSession`).
//! - Without a leader this server serves nobody: new sessions are refused
//!   and clients are disconnected, as a ZooKeeper server that lost its
//!   quorum does; they reconnect to a server that has one.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use consensus::raft::eraftpb::{ConfState, Entry, EntryType, Message, MessageType, Snapshot};
use consensus::{
    CommittedKind, ConsensusError, LogCore, MemLog, Node, NodeConfig, PeerProgress, Ready, Role,
    RoleChange,
};
use proto::{ErrorCode, Id, OpCode, PathResponse, Response};
use storage::{ApplyBatch, EntryKind, Image, LogEntry, Store};
use tree::{Context, Pending, Txn, TxnOp, WriteRequest, apply, prepare};

use super::pipeline::Waiter;
use super::{Processor, ProcessorError};
use crate::durability::WriterCommand;
use crate::ensemble_config::{Ensemble, MemberRole};
use crate::membership::Membership;
use crate::peers::{PeerEvent, Peers};
use crate::service_message::{FollowerStatus, Forwarded, ForwardedWrite, ServiceMessage};
use crate::sessions::ConnId;
use crate::stats::wall_clock_ms;

/// Most log entries an ensemble member keeps behind its applied index
/// (`snapCount × autopurge.snapRetainCount` when smaller).
const MAX_RETAINED_ENTRIES: u64 = 20_000;

/// A follower reports its status to the leader every this many raft ticks.
const STATUS_EVERY_TICKS: u64 = 5;

/// How this server takes part in an ensemble.
#[derive(Debug, Clone)]
pub struct ReplicaSetup {
    pub ensemble: Ensemble,
    /// `conclave.join`: a new server joining an existing ensemble.
    pub join: bool,
    /// The transport to the other members.
    pub peers: Peers,
    /// Seeds this server's election timeouts.
    pub seed: u64,
}

/// A write for the leader to prepare and propose.
#[derive(Debug)]
pub(super) struct Proposal {
    pub(super) kind: ProposalKind,
    pub(super) session_id: i64,
    pub(super) cxid: i32,
    pub(super) auth: Vec<Id>,
}

#[derive(Debug)]
pub(super) enum ProposalKind {
    Write(WriteRequest),
    /// Committed as an error transaction.
    Error(ErrorCode),
}

/// A `sync` waiting for its ReadIndex round, then for the apply.
#[derive(Debug)]
struct PendingSync {
    conn: ConnId,
    xid: i32,
    path: String,
    received: Instant,
}

/// What waits for a ReadIndex round, then for the apply.
#[derive(Debug)]
enum ReadIndexWaiter {
    Sync(PendingSync),
    /// A session this server did not know when a client re-opened it.
    Reopen(super::connect::PendingReopen),
}

impl ReadIndexWaiter {
    fn conn(&self) -> ConnId {
        match self {
            ReadIndexWaiter::Sync(sync) => sync.conn,
            ReadIndexWaiter::Reopen(reopen) => reopen.conn,
        }
    }
}

/// The ensemble side of the processor.
pub(super) struct Replica {
    pub(super) node: Node<MemLog>,
    pub(super) log: MemLog,
    pub(super) peers: Peers,
    pub(super) my_id: u64,
    /// zoo.cfg's settings, with the committed members.
    pub(super) ensemble: Ensemble,
    /// The committed membership (what `/zookeeper/config` shows).
    pub(super) membership: Membership,
    /// A new server not yet added: it serves nobody and never campaigns.
    pub(super) joining: bool,
    /// Removed from the ensemble: serves nobody, ever again.
    pub(super) removed: bool,
    /// The membership change this leader is carrying out.
    pub(super) job: Option<super::reconfig::ReconfigJob>,
    /// The log index of the change that made the committed membership
    /// (leadership goes only to a member that has applied it: raft-rs
    /// refuses to campaign before).
    pub(super) membership_index: u64,
    /// Until this raft tick, a leaderless moment is a planned handover
    /// (see `ServiceMessage::HandingOver`).
    pub(super) handover_until: u64,
    /// How long a handover may take, in raft ticks (two election timeouts).
    pub(super) handover_ticks: u64,
    /// The raft tick each peer was last heard from (any message): raft-rs's
    /// `recent_active` is cleared at every check-quorum round, so it says
    /// little just after one.
    pub(super) last_heard: HashMap<u64, u64>,
    /// Election timeout, in raft ticks.
    pub(super) election_ticks: u64,
    /// When this server last logged that it lost its data (a joining
    /// server the leader takes for a member with a log).
    lost_data_warned: Option<u64>,
    /// A joining server saw a heartbeat showing the leader knows it as new.
    join_confirmed: bool,
    /// An admin request to move leadership, until it moved.
    pub(super) transfer: Option<super::reconfig::PendingTransfer>,
    pub(super) role: RoleChange,
    /// Messages that may go out only once the ready that made them is
    /// synced, by ready number.
    held: VecDeque<(u64, Vec<Message>)>,
    /// Clients' writes not yet applied, by (session, cxid).
    pub(super) awaiting: HashMap<(i64, i32), Waiter>,
    /// Writes a new leader cannot propose before it has applied the
    /// entries of earlier terms.
    deferred: VecDeque<Proposal>,
    /// Syncs and re-opened sessions waiting for their ReadIndex round, by
    /// the round's context.
    read_index_waiters: HashMap<u64, ReadIndexWaiter>,
    next_read_index: u64,
    /// Those whose ReadIndex came back: done once applied that far.
    read_index_ready: Vec<(u64, ReadIndexWaiter)>,
    /// Sessions with client activity since the last report to the leader.
    touched: HashSet<i64>,
    /// While leading: what each follower and observer last reported of its
    /// applied position (index, zxid).
    pub(super) member_applied: HashMap<u64, (u64, i64)>,
    applied_index: u64,
    applied_zxid: i64,
    compacted_through: u64,
    /// Raft ticks since start.
    pub(super) ticks: u64,
    /// A consensus failure that stops the server (checked by `run`).
    pub(super) failure: Option<String>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("my_id", &self.my_id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// What the reports say about this server's part in the ensemble.
#[derive(Debug, Clone)]
pub struct ReplicaStatus {
    pub my_id: u64,
    /// "leader", "follower", "observer" or "looking" (no leader known).
    pub state: &'static str,
    pub leader: Option<u64>,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub applied_zxid: i64,
    /// The leader's view of every member; empty elsewhere.
    pub progress: Vec<PeerProgress>,
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

/// The membership as stored: which members vote and which only learn.
pub fn encode_conf_state(conf: &ConfState) -> Vec<u8> {
    let list = |ids: &[u64]| ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    format!(
        "voters={};learners={}",
        list(&conf.voters),
        list(&conf.learners)
    )
    .into_bytes()
}

/// Reads [`encode_conf_state`]'s bytes.
pub fn decode_conf_state(bytes: &[u8]) -> Option<ConfState> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut conf = ConfState::default();
    for part in text.split(';') {
        let (key, ids) = part.split_once('=')?;
        let ids: Vec<u64> = ids
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        match key {
            "voters" => conf.voters = ids,
            "learners" => conf.learners = ids,
            _ => return None,
        }
    }
    Some(conf)
}

/// The stored membership record, read: a Raft configuration, or one of the
/// marks a server must not start on as it is.
#[derive(Debug, Clone, PartialEq)]
pub enum MembershipRecord {
    Conf(ConfState),
    /// The server was removed, by the membership version (hex) that follows.
    Removed(String),
    /// `recover-alone` was interrupted making this server id the only
    /// member.
    Recovering(String),
    /// None of those: the text as stored.
    Unreadable(String),
}

impl MembershipRecord {
    pub fn read(bytes: &[u8]) -> MembershipRecord {
        let text = String::from_utf8_lossy(bytes);
        if let Some(version) = text.strip_prefix(super::membership_apply::REMOVED_MARK) {
            return MembershipRecord::Removed(version.to_owned());
        }
        if let Some(survivor) = text.strip_prefix(crate::recover_alone::RECOVERING_MARK) {
            return MembershipRecord::Recovering(survivor.to_owned());
        }
        match decode_conf_state(bytes) {
            Some(conf) => MembershipRecord::Conf(conf),
            None => MembershipRecord::Unreadable(text.into_owned()),
        }
    }
}

/// A fresh member's store: the membership from zoo.cfg as a snapshot at
/// index 1 of term 1. Every initial member writes the same point, so their
/// logs match from there; a joining server (whose log is empty at index 0)
/// can then only be caught up by a snapshot, which carries the membership,
/// and never replays membership changes onto a base it does not have.
fn bootstrap(
    store: &mut dyn Store,
    tree: &tree::DataTree,
    conf: &ConfState,
) -> Result<(), ProcessorError> {
    let mut nodes: Vec<(String, storage::NodeRecord)> = tree
        .nodes()
        .map(|(path, node)| (path.clone(), crate::persistence::node_record(node)))
        .collect();
    nodes.sort_by(|a, b| a.0.cmp(&b.0));
    store.install_image(&Image {
        index: BOOTSTRAP_INDEX,
        term: BOOTSTRAP_TERM,
        zxid: consensus::zxid::make_zxid(BOOTSTRAP_TERM, 0),
        nodes,
        sessions: Vec::new(),
    })?;
    store.set_hard_state(storage::HardState {
        term: BOOTSTRAP_TERM,
        vote: 0,
        commit: BOOTSTRAP_INDEX,
    })?;
    store.set_config(&encode_conf_state(conf))?;
    store.sync()?;
    Ok(())
}

/// Where every initial member's log starts (see [`bootstrap`]).
const BOOTSTRAP_INDEX: u64 = 1;
const BOOTSTRAP_TERM: u64 = 1;

fn raft_entry(entry: &LogEntry) -> Entry {
    Entry {
        index: entry.index,
        term: entry.term,
        entry_type: match entry.kind {
            EntryKind::Config => EntryType::EntryConfChangeV2,
            EntryKind::Txn | EntryKind::Empty => EntryType::EntryNormal,
        },
        data: entry.data.clone().into(),
        ..Entry::default()
    }
}

fn log_entry(entry: &Entry) -> LogEntry {
    LogEntry {
        index: entry.index,
        term: entry.term,
        kind: match entry.get_entry_type() {
            EntryType::EntryNormal if entry.data.is_empty() => EntryKind::Empty,
            EntryType::EntryNormal => EntryKind::Txn,
            EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => EntryKind::Config,
        },
        data: entry.data.to_vec(),
    }
}

impl Replica {
    /// The consensus state as the store holds it: hard state, membership
    /// (zoo.cfg's on a first start), the log after the compaction point.
    pub(super) fn new(
        setup: ReplicaSetup,
        store: &mut dyn Store,
        tree: &tree::DataTree,
        heartbeat_ticks: usize,
        election_ticks: usize,
    ) -> Result<Replica, ProcessorError> {
        let my_id = setup.ensemble.my_id;
        let configured = Membership::new(0, setup.ensemble.members.clone());
        match store.meta().config.as_deref().map(MembershipRecord::read) {
            Some(MembershipRecord::Removed(version)) => {
                return Err(ProcessorError::Consensus(format!(
                    "server {my_id} was removed from the ensemble (membership version {version}); \
                     it does not rejoin under its old identity: to join again, start it \
                     with an empty data directory and conclave.join=true, and add it with reconfig"
                )));
            }
            Some(MembershipRecord::Recovering(survivor)) => {
                return Err(ProcessorError::Consensus(format!(
                    "`conclave-server recover-alone` was interrupted on this data directory \
                     (making server {survivor} the only member): run it again to finish"
                )));
            }
            _ => {}
        }
        let committed = super::membership_apply::committed_membership(tree)
            .map_err(|e| ProcessorError::Consensus(format!("/zookeeper/config: {e}")))?;
        let mut joining = false;
        let membership = match committed {
            Some(committed) => {
                if !committed.contains(my_id) {
                    return Err(ProcessorError::Consensus(format!(
                        "server {my_id} was removed from the ensemble (membership version {:x}); \
                         it does not rejoin under its old identity: to join again, start it \
                         with an empty data directory and conclave.join=true, and add it with reconfig",
                        committed.version
                    )));
                }
                if committed.members != configured.members {
                    tracing::info!(
                        version = format_args!("{:x}", committed.version),
                        committed = %committed.server_lines().trim_end().replace('\n', ", "),
                        "adopting the committed membership from the store over zoo.cfg's server lines"
                    );
                }
                committed
            }
            None if store.meta().config.is_none() && setup.join => {
                // A new server: it knows no membership until the leader
                // adds it, and then learns everything from a snapshot.
                store.set_config(&encode_conf_state(&ConfState::default()))?;
                store.sync()?;
                joining = true;
                configured
            }
            None if store.meta().config.is_none() => {
                bootstrap(store, tree, &configured.conf_state())?;
                configured
            }
            None => {
                joining = store
                    .meta()
                    .config
                    .as_deref()
                    .and_then(decode_conf_state)
                    .is_some_and(|c| c.voters.is_empty() && c.learners.is_empty());
                configured
            }
        };
        let meta = store.meta();
        let conf_state = match meta.config.as_deref().and_then(decode_conf_state) {
            Some(stored) => stored,
            None => {
                return Err(ProcessorError::Consensus(
                    "the stored membership does not parse".into(),
                ));
            }
        };
        let mut peers = setup.peers;
        peers.set_members(&membership.members);
        let mut core = LogCore::default();
        core.conf_state = conf_state.clone();
        core.hard_state.term = meta.hard_state.term;
        core.hard_state.vote = meta.hard_state.vote;
        // Everything applied was committed; a crash can keep an apply batch
        // (or an installed snapshot) and lose the later hard state that
        // recorded the commit, and raft-rs refuses to start with applied
        // past commit.
        core.hard_state.commit = meta.hard_state.commit.max(meta.applied_index);
        let (compacted_index, compacted_term) = meta.compacted;
        let mut snapshot = Snapshot::default();
        snapshot.mut_metadata().index = compacted_index;
        snapshot.mut_metadata().term = compacted_term;
        snapshot.mut_metadata().set_conf_state(conf_state);
        core.snapshot = snapshot;
        let last = store.last_index();
        let mut next = store.first_index();
        while next <= last {
            let chunk = store.entries(next, (next + 4096).min(last + 1))?;
            let Some(end) = chunk.last().map(|e| e.index) else {
                break;
            };
            core.entries.extend(chunk.iter().map(raft_entry));
            next = end + 1;
        }
        // A commit index past the durable log would make raft-rs panic; it
        // cannot happen (the hard state is written after the entries it
        // covers), but a damaged store must not crash the server silently.
        if core.hard_state.commit > core.last_index() {
            return Err(ProcessorError::Consensus(format!(
                "the stored commit index {} is past the end of the log {}",
                core.hard_state.commit,
                core.last_index()
            )));
        }
        let log = MemLog::new(core);
        let mut config = NodeConfig::new(my_id, election_ticks, setup.seed);
        config.heartbeat_ticks = heartbeat_ticks;
        config.applied_index = meta.applied_index;
        config.applied_zxid = meta.applied_zxid;
        let node = Node::new(&config, log.clone()).map_err(consensus_error)?;
        let role = RoleChange {
            role: node.role(),
            leader: node.leader(),
            term: node.term(),
        };
        tracing::info!(
            id = my_id,
            term = role.term,
            applied = meta.applied_index,
            log_last = last,
            joining,
            "joining the ensemble"
        );
        let mut ensemble = setup.ensemble;
        ensemble.members = membership.members.clone();
        Ok(Replica {
            membership,
            joining,
            removed: false,
            job: None,
            membership_index: 0,
            handover_until: 0,
            handover_ticks: 2 * election_ticks as u64,
            last_heard: HashMap::new(),
            election_ticks: election_ticks as u64,
            lost_data_warned: None,
            join_confirmed: false,
            transfer: None,
            node,
            log,
            peers,
            my_id,
            ensemble,
            role,
            held: VecDeque::new(),
            awaiting: HashMap::new(),
            deferred: VecDeque::new(),
            read_index_waiters: HashMap::new(),
            next_read_index: 1,
            read_index_ready: Vec::new(),
            touched: HashSet::new(),
            member_applied: HashMap::new(),
            ticks: 0,
            applied_index: meta.applied_index,
            applied_zxid: meta.applied_zxid,
            compacted_through: meta.compacted.0,
            failure: None,
        })
    }

    pub(super) fn is_leader(&self) -> bool {
        self.role.role == Role::Leader
    }

    /// A leader is known (possibly this server), and this server is a
    /// member.
    pub(super) fn has_leader(&self) -> bool {
        self.role.leader.is_some() && !self.removed && !self.joining
    }

    /// Whether a joining server (no state of its own) takes a raft message.
    ///
    /// It votes for nobody: a server with no state must not help elect a
    /// leader that may lack what it once acknowledged. And it takes nothing
    /// from a leader before a heartbeat has shown that the leader knows it
    /// as new: a heartbeat carries `min(how far the leader believes this
    /// server's log reaches, commit)`, which is 0 for a server just added.
    /// Anything else means this server is still a member that lost its
    /// data; Raft cannot give it its log again under this id (the leader
    /// would go on counting entries it no longer holds), so it waits until
    /// it is removed and added again.
    fn admitted(&mut self, message: &Message) -> bool {
        match message.get_msg_type() {
            MessageType::MsgRequestVote | MessageType::MsgRequestPreVote => false,
            MessageType::MsgHeartbeat if message.commit == 0 => {
                if !self.join_confirmed {
                    tracing::info!(leader = message.from, "the leader knows this server as new");
                }
                self.join_confirmed = true;
                true
            }
            MessageType::MsgHeartbeat => {
                self.join_confirmed = false;
                let quiet = self.election_ticks * 10;
                if self
                    .lost_data_warned
                    .is_none_or(|t| self.ticks.saturating_sub(t) >= quiet)
                {
                    self.lost_data_warned = Some(self.ticks);
                    tracing::error!(
                        leader = message.from,
                        "this server is still a member but its data directory is empty: \
                         remove it from the ensemble and add it again to rejoin"
                    );
                }
                false
            }
            _ => self.join_confirmed,
        }
    }

    /// Heard from within the last election timeout (itself always).
    pub(super) fn is_live(&self, id: u64) -> bool {
        id == self.my_id
            || self
                .last_heard
                .get(&id)
                .is_some_and(|&t| self.ticks.saturating_sub(t) <= self.election_ticks)
    }

    fn is_observer(&self) -> bool {
        self.ensemble.observers().any(|m| m.id == self.my_id)
    }

    pub(super) fn status(&self) -> ReplicaStatus {
        let state = match (self.role.role, self.role.leader) {
            _ if self.removed => "removed",
            _ if self.joining => "joining",
            (Role::Leader, _) => "leader",
            (_, None) => "looking",
            _ if self.is_observer() => "observer",
            _ => "follower",
        };
        ReplicaStatus {
            my_id: self.my_id,
            state,
            leader: self.role.leader,
            term: self.role.term,
            commit_index: self.node.commit_index(),
            applied_index: self.applied_index,
            applied_zxid: self.applied_zxid,
            progress: self.node.progress(),
            members: self
                .ensemble
                .members
                .iter()
                .map(|m| {
                    let connected = m.id == self.my_id || self.peers.is_connected(m.id);
                    (m.id, m.role, connected)
                })
                .collect(),
            pending_syncs: self.read_index_waiters.len() + self.read_index_ready.len(),
            membership: self.membership.clone(),
            init_limit: self.ensemble.init_limit,
            sync_limit: self.ensemble.sync_limit,
            reconfig_in_progress: self.job.is_some() || self.node.membership_pending(),
            live: self
                .membership
                .members
                .iter()
                .map(|m| m.id)
                .filter(|&id| self.is_live(id))
                .collect(),
            member_applied: if self.is_leader() {
                let mut all: Vec<(u64, u64, i64)> = self
                    .member_applied
                    .iter()
                    .map(|(id, (index, zxid))| (*id, *index, *zxid))
                    .chain([(self.my_id, self.applied_index, self.applied_zxid)])
                    .collect();
                all.sort_unstable();
                all
            } else {
                Vec::new()
            },
        }
    }
}

fn consensus_error(e: ConsensusError) -> ProcessorError {
    ProcessorError::Consensus(e.to_string())
}

impl Processor {
    fn replica(&mut self) -> Option<&mut Replica> {
        self.replica.as_deref_mut()
    }

    /// One raft tick (half a ZooKeeper tick); followers report their
    /// clients' session activity to the leader at the same pace.
    pub(super) fn replica_tick(&mut self) {
        let Some(replica) = self.replica() else {
            return;
        };
        replica.ticks += 1;
        if replica.removed {
            // Not a member any more: no elections, no status reports.
            return;
        }
        replica.node.tick();
        // Status twice per ZooKeeper tick, with the heartbeats' rhythm.
        if !replica.is_leader()
            && replica.ticks % STATUS_EVERY_TICKS == 0
            && let Some(leader) = replica.role.leader
        {
            let status = FollowerStatus {
                applied_index: replica.applied_index,
                applied_zxid: replica.applied_zxid,
                sessions: replica.touched.drain().collect(),
            };
            let payload = ServiceMessage::Status(status).encode();
            replica.peers.send_service(leader, payload);
        }
        self.drive();
        self.reconfig_tick();
        self.offer_snapshot_if_wanted();
    }

    /// Notes client activity of a session, for the leader's expiry.
    pub(super) fn replica_touch(&mut self, session_id: i64) {
        if let Some(replica) = self.replica()
            && !replica.is_leader()
            && session_id != 0
        {
            replica.touched.insert(session_id);
        }
    }

    pub(super) fn peer_event(&mut self, event: PeerEvent) {
        let now = self.now_ms();
        let Some(replica) = self.replica() else {
            return;
        };
        match event {
            PeerEvent::Raft(message) => {
                replica.last_heard.insert(message.from, replica.ticks);
                if replica.joining && !replica.admitted(&message) {
                    return;
                }
                if let Err(e) = replica.node.step(*message) {
                    tracing::debug!(error = %e, "a peer message was not taken");
                }
            }
            PeerEvent::Unreachable(peer) => replica.node.report_unreachable(peer),
            PeerEvent::Gone(peer) => {
                // Survivors campaign one tick apart, lowest id first, so
                // they do not split their votes.
                let rank = replica
                    .ensemble
                    .voters()
                    .map(|m| m.id)
                    .filter(|&id| id != peer && id < replica.my_id)
                    .count();
                if replica.role.leader == Some(peer) {
                    tracing::info!(peer, "the leader's process is gone; electing a new one");
                }
                replica.node.leader_gone(peer, rank);
            }
            PeerEvent::SnapshotSent { peer, delivered } => {
                if delivered {
                    replica.node.report_snapshot_sent(peer);
                } else {
                    replica.node.report_snapshot_failed(peer);
                }
            }
            PeerEvent::Service { from, payload } => match ServiceMessage::decode(&payload) {
                Ok(ServiceMessage::Status(status)) => {
                    if replica.is_leader() {
                        replica
                            .member_applied
                            .insert(from, (status.applied_index, status.applied_zxid));
                        for session in status.sessions {
                            self.sessions.touch(session, now);
                        }
                    }
                }
                Ok(ServiceMessage::Forward(forwarded)) => self.forwarded(from, forwarded),
                Ok(ServiceMessage::Removed { version }) => self.told_removed(from, version),
                Ok(ServiceMessage::HandingOver { to }) => {
                    if replica.role.leader == Some(from) {
                        tracing::info!(leader = from, to, "the leader hands leadership over");
                        replica.handover_until = replica.ticks + replica.handover_ticks;
                    }
                }
                Err(e) => {
                    tracing::warn!(peer = from, error = %e, "undecodable message from a peer");
                }
            },
        }
    }

    /// A write another server forwarded: proposed if this server leads.
    fn forwarded(&mut self, from: u64, f: ForwardedWrite) {
        let leads = self.replica.as_ref().is_some_and(|r| r.is_leader());
        if !leads {
            // The sender thought this server leads; it will learn better
            // and fail its client's request (the client retries).
            tracing::debug!(
                peer = from,
                "a forwarded write reached a server that does not lead"
            );
            return;
        }
        let kind = match f.write {
            Forwarded::Request(request) => {
                if request.op() == OpCode::CloseSession {
                    // From now on the session cannot expire.
                    self.sessions.remove(f.session_id);
                }
                match super::writes::write_request(request) {
                    Some(write) => ProposalKind::Write(write),
                    None => return,
                }
            }
            Forwarded::CreateSession {
                timeout_ms,
                password,
            } => ProposalKind::Write(WriteRequest::CreateSession {
                timeout_ms,
                password,
            }),
            Forwarded::Error(code) => ProposalKind::Error(
                ErrorCode::from_code(code).unwrap_or(ErrorCode::MarshallingError),
            ),
        };
        self.propose(Proposal {
            kind,
            session_id: f.session_id,
            cxid: f.cxid,
            auth: f.auth,
        });
    }

    /// A write of this server's (a client's, or the leader's own expiry and
    /// reaping): proposed if this server leads, forwarded to the leader
    /// otherwise. Its waiter is answered when it is applied.
    pub(super) fn submit_replicated(
        &mut self,
        kind: WriteKind<'_>,
        session_id: i64,
        cxid: i32,
        auth_conn: Option<ConnId>,
        waiter: Waiter,
    ) {
        let auth: Vec<Id> = auth_conn
            .and_then(|c| self.conns.get(&c))
            .map(|c| c.auth.clone())
            .unwrap_or_default();
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        if let Some(conn) = waiter.conn() {
            replica.awaiting.insert((session_id, cxid), waiter);
            if let Some(c) = self.conns.get_mut(&conn) {
                c.pending_writes += 1;
            }
        }
        if replica.is_leader() {
            let kind = match kind {
                WriteKind::Write(write) => ProposalKind::Write(write.clone()),
                WriteKind::Error(code) => ProposalKind::Error(code),
            };
            self.propose(Proposal {
                kind,
                session_id,
                cxid,
                auth,
            });
            return;
        }
        let forwarded = match kind {
            WriteKind::Write(WriteRequest::CreateSession {
                timeout_ms,
                password,
            }) => Some(Forwarded::CreateSession {
                timeout_ms: *timeout_ms,
                password: password.clone(),
            }),
            WriteKind::Write(write) => super::writes::request_of(write).map(Forwarded::Request),
            WriteKind::Error(code) => Some(Forwarded::Error(code.code())),
        };
        let sent = match (replica.role.leader, forwarded) {
            (Some(leader), Some(write)) => {
                let message = ServiceMessage::Forward(ForwardedWrite {
                    session_id,
                    cxid,
                    auth,
                    write,
                });
                replica.peers.send_service(leader, message.encode())
            }
            _ => false,
        };
        if !sent {
            self.fail_write(session_id, cxid);
        }
    }

    /// Prepares a write against the tree and the pending writes and
    /// proposes its transaction; kept for later while this new leader has
    /// not applied its predecessors' entries.
    pub(super) fn propose(&mut self, proposal: Proposal) {
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        if !replica.deferred.is_empty() {
            replica.deferred.push_back(proposal);
            return;
        }
        self.propose_now(proposal);
    }

    /// [`Processor::propose`] without waiting behind deferred writes;
    /// false if the leader is not ready yet (the proposal is then first in
    /// line again).
    fn propose_now(&mut self, proposal: Proposal) -> bool {
        let Some(replica) = self.replica.as_deref_mut() else {
            return true;
        };
        let next = match replica.node.next_proposal() {
            Ok(next) => next,
            Err(ConsensusError::LeaderNotReady { .. }) => {
                replica.deferred.push_front(proposal);
                return false;
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot propose");
                self.fail_write(proposal.session_id, proposal.cxid);
                return true;
            }
        };
        if let ProposalKind::Write(WriteRequest::Reconfig(request)) = &proposal.kind {
            self.start_reconfig(proposal.session_id, proposal.cxid, request, proposal.auth);
            return true;
        }
        let time_ms = wall_clock_ms();
        let txn = match &proposal.kind {
            ProposalKind::Write(write) => {
                let ctx = Context {
                    session_id: proposal.session_id,
                    cxid: proposal.cxid,
                    zxid: next.zxid,
                    time_ms,
                    auth: &proposal.auth,
                    features: &self.features,
                };
                prepare(&self.tree, &mut self.pending, write, &ctx)
            }
            ProposalKind::Error(code) => Txn {
                session_id: proposal.session_id,
                cxid: proposal.cxid,
                zxid: next.zxid,
                time_ms,
                op: TxnOp::Error(*code),
            },
        };
        let Some(replica) = self.replica.as_deref_mut() else {
            return true;
        };
        if let Err(e) = replica.node.propose(storage::encode_txn(&txn), next) {
            tracing::debug!(error = %e, "proposal refused");
            // What it added to the pending writes will never commit.
            self.pending = Pending::new();
            self.fail_write(proposal.session_id, proposal.cxid);
        }
        true
    }

    /// A client's write that cannot be carried out now (no leader, or
    /// leadership changed under it): its connection is closed, as
    /// ZooKeeper closes a connection whose server lost its leader; the
    /// client reconnects and learns the outcome by reading.
    pub(super) fn fail_write(&mut self, session_id: i64, cxid: i32) {
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        if let Some(waiter) = replica.awaiting.remove(&(session_id, cxid))
            && let Some(conn) = waiter.conn()
        {
            self.close(conn);
        }
    }

    /// The log writer made the readies up to `number` durable: what they
    /// promised may go out now.
    pub(super) fn replica_persisted(&mut self, number: u64) {
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        replica.node.persisted(number);
        while replica.held.front().is_some_and(|(n, _)| *n <= number) {
            if let Some((_, messages)) = replica.held.pop_front() {
                send_all(replica, messages);
            }
        }
        self.drive();
    }

    /// After a batch of commands: every ready the node has, and a snapshot
    /// if raft-rs asked for one. Proposals and peer messages of one batch
    /// share one ready (one append message per follower, one sync).
    pub(super) fn after_commands(&mut self) {
        if self.replica.is_some() {
            self.drive();
            self.offer_snapshot_if_wanted();
        }
    }

    /// Handles every ready the node has.
    pub(super) fn drive(&mut self) {
        loop {
            let Some(replica) = self.replica.as_deref_mut() else {
                return;
            };
            if replica.failure.is_some() {
                return;
            }
            let rd = match replica.node.ready() {
                Ok(Some(rd)) => rd,
                Ok(None) => return,
                Err(e) => {
                    replica.failure = Some(format!("consensus: {e}"));
                    return;
                }
            };
            if let Err(e) = self.handle_ready(rd) {
                tracing::error!(error = %e, "replication failed; stopping");
                if let Some(replica) = self.replica() {
                    replica.failure = Some(e);
                }
                return;
            }
        }
    }

    fn handle_ready(&mut self, rd: Ready) -> Result<(), String> {
        let replica = self
            .replica
            .as_deref_mut()
            .ok_or("not a member of an ensemble")?;
        send_all(replica, rd.messages);
        let mut installed = None;
        if let Some(snapshot) = rd.snapshot {
            installed = Some(self.install_snapshot(snapshot)?);
        }
        let replica = self
            .replica
            .as_deref_mut()
            .ok_or("not a member of an ensemble")?;
        {
            let mut core = replica.log.core();
            if let Some(hs) = &rd.hard_state {
                core.hard_state = hs.clone();
            }
            core.append(&rd.entries)?;
        }
        if !rd.entries.is_empty() {
            let entries = rd.entries.iter().map(log_entry).collect();
            self.writer.send(WriterCommand::Append(entries));
        }
        if let Some(hs) = &rd.hard_state {
            self.writer
                .send(WriterCommand::HardState(storage::HardState {
                    term: hs.term,
                    vote: hs.vote,
                    commit: hs.commit,
                }));
        }
        if let Some(index) = installed {
            // A snapshot counts as applied only once it is durable (raft-rs:
            // applied <= persisted), and nothing may reach the node before
            // that: this ready is synced now, blocking the processor for
            // one write and sync, once per catch-up.
            let (done, result) = std::sync::mpsc::channel();
            self.writer.send(WriterCommand::SyncNow(done));
            match result.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(format!("installing a snapshot: {e}")),
                Err(_) => return Err("the log writer stopped".into()),
            }
            replica.node.appended(rd.number);
            replica.node.persisted(rd.number);
            while let Some((_, messages)) = replica.held.pop_front() {
                send_all(replica, messages);
            }
            send_all(replica, rd.persisted_messages);
            replica.node.applied(index);
        } else {
            self.writer.send(WriterCommand::Marker {
                number: rd.number,
                sync: rd.must_sync,
            });
            replica.node.appended(rd.number);
            if !rd.persisted_messages.is_empty() {
                replica.held.push_back((rd.number, rd.persisted_messages));
            }
        }
        if let Some(change) = rd.role_change {
            self.role_changed(change);
        }
        self.apply_committed(rd.committed)?;
        let replica = self
            .replica
            .as_deref_mut()
            .ok_or("not a member of an ensemble")?;
        for read in rd.read_states {
            let ctx = <[u8; 8]>::try_from(read.request_ctx.as_slice())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if let Some(waiter) = replica.read_index_waiters.remove(&ctx) {
                replica.read_index_ready.push((read.index, waiter));
            }
        }
        self.answer_read_index_waiters();
        self.propose_deferred();
        Ok(())
    }

    /// Applies committed entries in order, answering the writes of this
    /// server's clients among them.
    fn apply_committed(&mut self, committed: Vec<consensus::Committed>) -> Result<(), String> {
        if committed.is_empty() {
            return Ok(());
        }
        let mut batch = ApplyBatch::default();
        for c in committed {
            match c.kind {
                CommittedKind::Data(bytes) => {
                    let txn = storage::decode_txn(&bytes)
                        .map_err(|e| format!("committed entry {}: {e}", c.index))?;
                    if txn.zxid != c.zxid {
                        return Err(format!(
                            "committed entry {} carries zxid {:#x}, its position says {:#x}",
                            c.index, txn.zxid, c.zxid
                        ));
                    }
                    self.apply_txn(&txn, &mut batch, true);
                }
                CommittedKind::LeaderStart => {
                    self.tree.advance_zxid(c.zxid);
                    self.confirm_static_membership(c.zxid, &mut batch);
                }
                CommittedKind::Membership { conf, context } => {
                    self.membership_committed(c.index, c.zxid, conf, &context, &mut batch)?;
                }
            }
            batch.applied_index = c.index;
            batch.applied_zxid = c.zxid;
        }
        let (index, zxid) = (batch.applied_index, batch.applied_zxid);
        self.writer.send(WriterCommand::Apply(batch));
        let Some(replica) = self.replica() else {
            return Ok(());
        };
        replica.applied_index = index;
        replica.applied_zxid = zxid;
        replica.node.applied(index);
        self.compact_replica_log(index);
        self.advance_reconfig();
        Ok(())
    }

    /// Applies one committed transaction; `answer`: the server whose client
    /// sent it answers (false for the transactions a server derives, like
    /// an intermediate membership step's config write).
    pub(super) fn apply_txn(&mut self, txn: &Txn, batch: &mut ApplyBatch, answer: bool) {
        let applied = apply(&mut self.tree, txn);
        self.pending.applied(txn.zxid);
        self.stats.commit_count += 1;
        crate::persistence::record_effects(&self.tree, &applied, batch);
        self.record_write_stats(&applied.changes);
        self.deliver(&applied.changes);
        let waiter = self
            .replica()
            .filter(|_| answer)
            .and_then(|r| r.awaiting.remove(&(txn.session_id, txn.cxid)));
        let local = waiter.as_ref().and_then(Waiter::conn);
        // Sessions are global: every server tracks every session, so a
        // client may reconnect anywhere; the leader alone expires them.
        match (&txn.op, &waiter) {
            (TxnOp::CreateSession { timeout_ms, .. }, None) => {
                let now = self.now_ms();
                self.sessions.track(txn.session_id, *timeout_ms, None, now);
            }
            (TxnOp::CloseSession { .. }, _) => {
                self.sessions.remove(txn.session_id);
                // Expired by the leader, or closed through another server:
                // a connection holding it here goes.
                let holders: Vec<ConnId> = self
                    .conns
                    .iter()
                    .filter(|(id, c)| c.session_id == txn.session_id && Some(**id) != local)
                    .map(|(id, _)| *id)
                    .collect();
                for conn in holders {
                    self.close(conn);
                }
            }
            _ => {}
        }
        if let Some(waiter) = waiter {
            if let Some(c) = local.and_then(|c| self.conns.get_mut(&c)) {
                c.pending_writes = c.pending_writes.saturating_sub(1);
            }
            self.complete(waiter, txn, applied.outcome);
            if let Some(conn) = local {
                self.drain_queue(conn);
            }
        }
    }

    /// A new role or leader. Writes and syncs in flight through a leader
    /// that is gone fail (their clients reconnect); without a leader nobody
    /// is served.
    fn role_changed(&mut self, change: RoleChange) {
        let now = self.now_ms();
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        let before = replica.role;
        replica.role = change;
        tracing::info!(
            id = replica.my_id,
            role = ?change.role,
            leader = ?change.leader,
            term = change.term,
            "ensemble role changed"
        );
        let leader_changed = before.leader != change.leader || before.term != change.term;
        if !leader_changed {
            return;
        }
        replica.member_applied.clear();
        // Prepared writes of a lost leadership are forgotten; those that
        // still commit are applied like anyone else's.
        self.pending = Pending::new();
        let mut doomed: Vec<ConnId> = Vec::new();
        // A reconfig may outlive its leader (one that leaves hands the job
        // over): its waiter stays, with a deadline (`reconfig_tick`).
        let (kept, failed): (Vec<_>, Vec<_>) =
            replica.awaiting.drain().partition(|(_, w)| w.is_reconfig());
        replica.awaiting.extend(kept);
        doomed.extend(failed.into_iter().filter_map(|(_, w)| w.conn()));
        doomed.extend(replica.read_index_waiters.drain().map(|(_, w)| w.conn()));
        doomed.extend(replica.read_index_ready.drain(..).map(|(_, w)| w.conn()));
        let deferred: Vec<(i64, i32)> = replica
            .deferred
            .drain(..)
            .map(|p| (p.session_id, p.cxid))
            .collect();
        debug_assert!(deferred.iter().all(|k| !replica.awaiting.contains_key(k)));
        let has_leader = change.leader.is_some();
        let leads = change.role == Role::Leader;
        if has_leader {
            // Read-only sessions end with the read-only mode, as when
            // ZooKeeper's read-only server makes way for a follower.
            doomed.extend(
                self.conns
                    .iter()
                    .filter(|(_, c)| c.read_only)
                    .map(|(id, _)| *id),
            );
        } else if replica.ticks < replica.handover_until {
            // A planned handover: the new leader is moments away; only the
            // clients with writes in flight (doomed above) lose their
            // connection.
        } else {
            // No quorum: ZooKeeper's servers drop their clients then.
            doomed.extend(self.conns.keys().copied());
        }
        for conn in doomed {
            self.close(conn);
        }
        if leads {
            // The new leader expires sessions from now on: each gets its
            // full timeout to show activity (as after a restart).
            self.track_tree_sessions(now);
        }
        self.reconfig_role_changed();
    }

    /// Tracks every session of the tree with its full timeout from `now`,
    /// keeping the connection attached to it, if any.
    fn track_tree_sessions(&mut self, now: u64) {
        for (id, session) in self.tree.sessions() {
            let owner = self.sessions.owner(*id);
            self.sessions.track(*id, session.timeout_ms, owner, now);
        }
    }

    /// Proposes writes that waited for this new leader to be ready.
    fn propose_deferred(&mut self) {
        loop {
            let Some(replica) = self.replica.as_deref_mut() else {
                return;
            };
            if replica.deferred.is_empty() || !replica.is_leader() {
                return;
            }
            if let Err(ConsensusError::LeaderNotReady { .. }) = replica.node.next_proposal() {
                return;
            }
            let Some(proposal) = replica.deferred.pop_front() else {
                return;
            };
            // Not `propose`: it would queue the proposal behind the others
            // still waiting, and this loop would never end.
            if !self.propose_now(proposal) {
                return;
            }
        }
    }

    /// `sync` in an ensemble: a ReadIndex round (see the module docs).
    /// Later requests of the connection wait for it like for a write.
    pub(super) fn sync_replicated(
        &mut self,
        conn_id: ConnId,
        xid: i32,
        path: String,
        received: Instant,
    ) {
        self.start_read_index(ReadIndexWaiter::Sync(PendingSync {
            conn: conn_id,
            xid,
            path,
            received,
        }));
        if let Some(c) = self.conns.get_mut(&conn_id) {
            c.pending_writes += 1;
        }
    }

    /// A session this server does not know, re-opened by a client: decided
    /// once this server has applied what the leader had committed when
    /// asked (`connect::finish_reopen`).
    pub(super) fn revalidate_session(&mut self, reopen: super::connect::PendingReopen) {
        self.start_read_index(ReadIndexWaiter::Reopen(reopen));
    }

    fn start_read_index(&mut self, waiter: ReadIndexWaiter) {
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        let ctx = replica.next_read_index;
        replica.next_read_index += 1;
        replica.read_index_waiters.insert(ctx, waiter);
        replica.node.read_index(ctx.to_be_bytes().to_vec());
    }

    fn answer_read_index_waiters(&mut self) {
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        let applied = replica.applied_index;
        let (done, waiting): (Vec<_>, Vec<_>) = replica
            .read_index_ready
            .drain(..)
            .partition(|(index, _)| *index <= applied);
        replica.read_index_ready = waiting;
        for (_, waiter) in done {
            match waiter {
                ReadIndexWaiter::Sync(sync) => self.answer_sync(sync),
                ReadIndexWaiter::Reopen(reopen) => self.finish_reopen(reopen),
            }
        }
    }

    fn answer_sync(&mut self, sync: PendingSync) {
        if let Some(c) = self.conns.get_mut(&sync.conn) {
            c.pending_writes = c.pending_writes.saturating_sub(1);
        }
        let zxid = self.tree.last_zxid();
        let body = Response::Sync(PathResponse { path: sync.path });
        self.reply(
            sync.conn,
            sync.xid,
            zxid,
            ErrorCode::Ok,
            &body,
            OpCode::Sync,
            sync.received,
        );
        self.drain_queue(sync.conn);
    }

    /// Keeps entries behind the applied index for followers to catch up
    /// from; those further behind get a snapshot.
    fn compact_replica_log(&mut self, applied_index: u64) {
        // raft-rs reads the log from memory (`MemLog`), so an ensemble keeps
        // fewer entries than a standalone server's retention: a follower
        // further behind than that costs a snapshot, not memory on every
        // server.
        let retain = self
            .config
            .log_retention_entries
            .clamp(1, MAX_RETAINED_ENTRIES);
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        if applied_index <= replica.compacted_through + 2 * retain {
            return;
        }
        let through = applied_index - retain;
        let mut core = replica.log.core();
        let Some(term) = core.term(through) else {
            return;
        };
        let mut point = Snapshot::default();
        point.mut_metadata().index = through;
        point.mut_metadata().term = term;
        point.mut_metadata().set_conf_state(core.conf_state.clone());
        core.compact(point);
        drop(core);
        replica.compacted_through = through;
        self.writer.send(WriterCommand::Compact(through));
    }

    /// raft-rs wants to send a snapshot: make one of the tree as applied.
    fn offer_snapshot_if_wanted(&mut self) {
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        if !replica.log.core().snapshot_wanted() {
            return;
        }
        let index = replica.applied_index;
        let zxid = replica.applied_zxid;
        let (term, conf) = {
            let core = replica.log.core();
            (core.term(index), core.conf_state.clone())
        };
        let Some(term) = term else {
            return;
        };
        let started = Instant::now();
        let mut nodes: Vec<(String, storage::NodeRecord)> = self
            .tree
            .nodes()
            .map(|(path, node)| (path.clone(), crate::persistence::node_record(node)))
            .collect();
        nodes.sort_by(|a, b| a.0.cmp(&b.0));
        let image = Image {
            index,
            term,
            zxid,
            nodes,
            sessions: self
                .tree
                .sessions()
                .iter()
                .map(|(id, s)| (*id, s.clone()))
                .collect(),
        };
        let data = storage::encode_image(&image);
        let mut snapshot = Snapshot::default();
        snapshot.mut_metadata().index = index;
        snapshot.mut_metadata().term = term;
        snapshot.mut_metadata().set_conf_state(conf);
        tracing::info!(
            index,
            zxid = format_args!("0x{zxid:x}"),
            bytes = data.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "made a snapshot for a follower too far behind"
        );
        snapshot.data = data.into();
        if let Some(replica) = self.replica() {
            replica.log.core().offer_snapshot(snapshot);
        }
    }

    /// Catching up by snapshot: the tree becomes the leader's as of the
    /// snapshot's index (made durable with the rest of its ready). Clients
    /// connected here are disconnected (they reconnect and re-register
    /// their watches, which fire for what changed).
    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<u64, String> {
        let image = storage::decode_image(&snapshot.data).map_err(|e| e.to_string())?;
        let meta = snapshot.get_metadata();
        let conf = meta.get_conf_state().clone();
        if image.index != meta.index || image.term != meta.term {
            return Err(format!(
                "a snapshot for {}/{} carries the image of {}/{}",
                meta.index, meta.term, image.index, image.term
            ));
        }
        let tree = tree::DataTree::restore(
            image.nodes.iter().map(|(path, record)| {
                (
                    path.clone(),
                    tree::Node::new(
                        record.data.clone(),
                        std::sync::Arc::new(record.acl.clone()),
                        record.stat,
                    ),
                )
            }),
            image.sessions.clone(),
            image.zxid,
        )
        .map_err(|e| format!("the snapshot's tree is inconsistent: {e}"))?;
        let (index, zxid) = (image.index, image.zxid);
        self.writer
            .send(WriterCommand::InstallImage(Box::new(image)));
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.close(conn);
        }
        self.tree = tree;
        self.pending = Pending::new();
        // Every connection was closed above: no session has an owner.
        let now = self.now_ms();
        self.track_tree_sessions(now);
        let replica = self
            .replica
            .as_deref_mut()
            .ok_or("not a member of an ensemble")?;
        replica.log.core().install(snapshot);
        replica.node.resume_zxids(index, zxid);
        replica.applied_index = index;
        replica.applied_zxid = zxid;
        replica.compacted_through = index;
        tracing::info!(
            index,
            zxid = format_args!("0x{zxid:x}"),
            "installed a snapshot from the leader"
        );
        match super::membership_apply::committed_membership(&self.tree) {
            Ok(Some(membership)) => self.adopt_membership(membership, Some(conf)),
            Ok(None) => {}
            Err(e) => return Err(format!("the snapshot's /zookeeper/config: {e}")),
        }
        Ok(index)
    }
}

/// What a write is, for [`Processor::submit_replicated`].
#[derive(Debug, Clone, Copy)]
pub(super) enum WriteKind<'a> {
    Write(&'a WriteRequest),
    Error(ErrorCode),
}

fn send_all(replica: &mut Replica, messages: Vec<Message>) {
    for message in messages {
        let to = message.to;
        if !replica.peers.send(message) {
            replica.node.report_unreachable(to);
        }
    }
}

//! The ensemble driver: everything between raft-rs (`crate::node`) and the
//! three things a server has — a network, a disk and the ZooKeeper layer —
//! without doing any I/O itself. The server runs it over its peer
//! connections, its log writer thread and its data tree; the deterministic
//! simulator runs the very same driver over a simulated network, an
//! in-memory store and the same data tree (`io` has the three traits).
//!
//! The path of a replicated write, file by file:
//!
//! 1. [`Driver::submit`] (`propose.rs`): the leader asks the state machine
//!    to prepare the write at the index and zxid its entry will take, and
//!    proposes it; a follower forwards it to the leader (`notice.rs`); a
//!    new leader holds writes until it has applied its predecessors'
//!    entries.
//! 2. `ready.rs`: raft-rs's output — messages to send now, entries and
//!    hard state to write, messages to send only once those are durable
//!    (votes, acknowledgements), committed entries.
//! 3. [`Driver::persisted`]: the log writer made a ready durable; what it
//!    promised goes out.
//! 4. `apply.rs`: committed entries go to the state machine in log order,
//!    membership changes through `adopt.rs` first.
//!
//! Around it: ReadIndex rounds for `sync` and session re-opens
//! (`read_index.rs`); snapshots for laggards and log compaction
//! (`snapshot.rs`); roles, liveness and hand-overs (`roles.rs`);
//! membership changes carried out by the leader (`reconfig.rs`); what a
//! server is in its ensemble — discovering, joining, restoring after a
//! lost disk, member, removed — and the messages that decide it
//! (`standing.rs`); the checks every peer message passes before raft-rs
//! sees it (`guard.rs`); the status reports (`status.rs`).
//!
//! Invariants: nothing here reads a clock, a socket, a disk or a random
//! source (time is ticks, randomness is seeded by the caller); every input
//! from a peer is checked before raft-rs sees it, and refused with a log
//! line rather than a panic; a broken invariant of the driver's own panics
//! with its context, as raft-rs's `fatal!` does.

mod adopt;
mod apply;
pub mod backoff;
pub mod error;
mod guard;
pub mod image_stream;
pub mod io;
pub mod notice;
mod propose;
mod read_index;
mod ready;
mod reconfig;
pub mod record;
mod roles;
mod snapshot;
mod standing;
mod status;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use raft::eraftpb::{ConfState, Entry, HardState, Message, Snapshot};

pub use error::DriverError;
pub use io::{
    ApplyKind, Applying, Installed, LogWriter, MembershipAnswer, MembershipResult, Prepared,
    RoleView, SnapshotId, Staged, StateMachine, Submission, Transport,
};
pub use notice::{Configured, Notice, Requester};
pub use reconfig::MembershipOp;
pub use record::{MembershipRecord, StoredConf};
pub use standing::StandingKind;
pub use status::Status;

use crate::membership::{Member, Membership};
use crate::memlog::{LogCore, MemLog};
use crate::node::{Node, NodeConfig, Role, RoleChange};
use crate::random::SplitMix;

/// Where every initial member's log starts: the bootstrap configuration as
/// a snapshot point at index 1 of term 1. Every initial member writes the
/// same point, so their logs match from there; a server that starts empty
/// later (a joiner, a member that lost its disk) has nothing at index 1 and
/// can only be caught up by a snapshot, which carries the membership.
pub const BOOTSTRAP_INDEX: u64 = 1;
pub const BOOTSTRAP_TERM: u64 = 1;

/// How a driver is set up. Times are in ticks; the caller decides how long
/// a tick is.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    pub my_id: u64,
    /// The members zoo.cfg lists (the committed membership wins once this
    /// server knows one).
    pub configured: Vec<Member>,
    /// `conclave.join=true`: a fresh store joins an existing ensemble
    /// without asking (it is discovered otherwise; see `standing.rs`).
    pub join: bool,
    pub heartbeat_ticks: usize,
    pub election_ticks: usize,
    /// A follower reports its status to its leader every this many ticks;
    /// discovery and restore requests go out at the same pace.
    pub status_every_ticks: u64,
    /// How long a membership step (a joiner catching up, a hand-over) may
    /// take: ZooKeeper's `initLimit`.
    pub reconfig_deadline_ticks: u64,
    /// Log entries kept behind the applied index for followers to catch up
    /// from; those further behind get a snapshot...
    pub retained_entries: u64,
    /// ...within this many bytes of memory (the log is in memory: a
    /// count alone would let large values take gigabytes).
    pub retained_bytes: u64,
    /// Seeds election timeouts, back-off jitter and restore nonces.
    pub seed: u64,
    pub max_size_per_msg: u64,
    pub max_inflight_msgs: usize,
    /// A snapshot's image travels in chunks of this many bytes
    /// (`image_stream.rs`)...
    pub snapshot_chunk_bytes: usize,
    /// ...at most this many of them unacknowledged per follower...
    pub snapshot_window_chunks: usize,
    /// ...and at most this many bytes per tick over every transfer.
    pub snapshot_bytes_per_tick: u64,
    /// Deliberately broken behaviours, for the simulator to show that its
    /// checks catch them. Never set by the server.
    pub faults: DriverFaults,
}

/// Deliberately broken behaviours of the driver (all off by default): each
/// one breaks a rule the driver keeps for safety, and the simulator's
/// tests show that its invariants notice. The server never sets them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverFaults {
    /// A brand-new ensemble bootstraps at index 0 instead of a snapshot
    /// point at index 1: a joiner is then sent the whole log and replays
    /// its membership changes onto a configuration it never had.
    pub bootstrap_at_zero: bool,
    /// A membership job proposes every step towards its target in one
    /// change (raft-rs makes that a joint configuration).
    pub jump_to_goal: bool,
    /// A member that lost its store votes (and campaigns) while it takes
    /// the ensemble's state back, before it holds what it may have voted
    /// for and acknowledged.
    pub vote_while_restoring: bool,
    /// A server with no state takes a heartbeat with commit 0 as the
    /// leader knowing it as new, and then the leader's appends and
    /// snapshot: a member that lost its store becomes a voter again
    /// without restoring when a leader elected just now reaches it first.
    pub join_on_empty_heartbeat: bool,
}

impl DriverConfig {
    pub fn new(my_id: u64, configured: Vec<Member>, election_ticks: usize, seed: u64) -> Self {
        DriverConfig {
            my_id,
            configured,
            join: false,
            heartbeat_ticks: 1,
            election_ticks,
            status_every_ticks: 5,
            reconfig_deadline_ticks: 100,
            retained_entries: 20_000,
            retained_bytes: 64 << 20,
            seed,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            snapshot_chunk_bytes: 1 << 20,
            snapshot_window_chunks: 8,
            snapshot_bytes_per_tick: u64::MAX,
            faults: DriverFaults::default(),
        }
    }
}

/// What a server's store holds for the driver, read at start
/// (`storage::consensus_state` reads it from a store).
#[derive(Debug, Clone, Default)]
pub struct StoredState {
    pub hard_state: HardState,
    pub record: Option<MembershipRecord>,
    /// (index, term) of the last entry compaction removed; (0, 0) if none.
    pub compacted: (u64, u64),
    /// The log after the compaction point.
    pub entries: Vec<Entry>,
    /// The last entry the state machine applied durably, and its zxid.
    pub applied_index: u64,
    pub applied_zxid: i64,
    /// The committed membership the state machine holds
    /// (`/zookeeper/config`), if a leader ever committed one.
    pub committed: Option<Membership>,
}

/// One server's ensemble driver. `W` is the state machine's write type, `T`
/// the transport and `L` the log writer (see `io.rs`).
pub struct Driver<W, T, L> {
    node: Node<MemLog>,
    log: MemLog,
    net: T,
    disk: L,
    config: DriverConfig,
    my_id: u64,
    /// The committed membership (what `/zookeeper/config` shows), or
    /// zoo.cfg's while none is known.
    membership: Membership,
    /// The log index of the change that made the committed membership
    /// (leadership goes only to a member that has applied it).
    membership_index: u64,
    /// The membership the applied state holds (`/zookeeper/config`):
    /// version 0 while the static one is unconfirmed. What an apply does
    /// depends on it, never on `membership`, which a server without its
    /// state takes from its peers.
    applied_membership: Option<Membership>,
    standing: standing::Standing,
    /// The membership version that removed this server, while it runs
    /// removed: a later one that holds it again takes it back.
    removed_version: Option<i64>,
    /// The membership change this leader is carrying out.
    job: Option<reconfig::ReconfigJob>,
    /// An admin request to move leadership, until it moved.
    transfer: Option<reconfig::PendingTransfer>,
    /// A client's change the previous leader handed over, until this new
    /// leader may propose.
    continued: Option<(Requester, Vec<Member>)>,
    /// Until this tick, a leaderless moment is a planned hand-over.
    handover_until: u64,
    /// The tick each peer was last heard from (any message).
    last_heard: BTreeMap<u64, u64>,
    role: RoleChange,
    /// Messages that may go out only once the ready that made them is
    /// durable, by ready number.
    held: VecDeque<(u64, Vec<Message>)>,
    /// Writes a new leader holds until it has applied its predecessors'
    /// entries.
    deferred: VecDeque<Submission<W>>,
    /// ReadIndex rounds asked and not answered: context → the tick it was
    /// (last) asked.
    reads_waiting: BTreeMap<u64, u64>,
    /// Rounds answered, waiting for the apply to reach their index:
    /// (index, context).
    reads_ready: Vec<(u64, u64)>,
    /// While leading: what each member last reported of its applied
    /// position (index, zxid).
    member_applied: BTreeMap<u64, (u64, i64)>,
    /// While leading: the restore attempt (nonce) each member that lost
    /// its store was taken back for.
    restores_accepted: BTreeMap<u64, u64>,
    /// While leading: members taken back after losing their store that
    /// have not reported as members since. They vote for nobody yet, so
    /// they count neither as caught up for a promotion nor toward the
    /// quorum a membership change must keep.
    restoring: BTreeSet<u64>,
    /// While leading: the tick each follower's stale progress was last
    /// forgotten (at most once per election timeout).
    stale_forgotten: BTreeMap<u64, u64>,
    applied_index: u64,
    applied_zxid: i64,
    compacted_through: u64,
    /// Ticks since start.
    ticks: u64,
    /// The caller's wall clock at the last tick, in milliseconds (stamped
    /// on membership changes as the config node's mtime; never read
    /// here).
    wall_ms: i64,
    rng: SplitMix,
    /// Refusals of peer messages already logged, by peer and reason:
    /// logged again only after a message of that peer was taken.
    refusals: BTreeMap<u64, BTreeSet<&'static str>>,
    /// The image the state machine is making for raft-rs, if any.
    making: Option<image_stream::Making>,
    /// No image is made before this tick (after one failed or a follower
    /// refused one).
    make_after_tick: u64,
    /// While leading: snapshots on their way, by follower.
    images_out: BTreeMap<u64, image_stream::Outgoing>,
    /// Bytes of images that may still go out this tick.
    send_budget: u64,
}

impl<W, T, L> std::fmt::Debug for Driver<W, T, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("my_id", &self.my_id)
            .field("role", &self.role)
            .field("standing", &self.standing.kind())
            .finish_non_exhaustive()
    }
}

impl<W, T: Transport, L: LogWriter> Driver<W, T, L> {
    /// A driver over what the store holds. Refuses a store this server
    /// must not run on as it is (removed, an interrupted recovery,
    /// another server's); a fresh store starts by discovering whether its
    /// ensemble already exists (`standing.rs`).
    pub fn new(
        config: DriverConfig,
        stored: StoredState,
        mut net: T,
        mut disk: L,
    ) -> Result<Self, DriverError> {
        let my_id = config.my_id;
        let configured = Membership::new(0, config.configured.clone());
        let mut standing = standing::Standing::at_start(my_id, &stored, &config, &mut disk)?;
        let membership = match &stored.committed {
            Some(committed) => {
                if committed.members != configured.members {
                    tracing::info!(
                        version = format_args!("{:x}", committed.version),
                        committed = %committed.summary(),
                        "adopting the committed membership from the store over zoo.cfg's server lines"
                    );
                }
                committed.clone()
            }
            None => configured,
        };
        // Raft's configuration at the applied index is the committed
        // membership the applied tree holds (`/zookeeper/config`, written
        // in the same batch as the applied marker), never the record's
        // copy, which is a separate write a crash can keep or lose on its
        // own. Stores of earlier releases without one fall back to it.
        let conf = match (&stored.record, &stored.committed) {
            (
                Some(
                    MembershipRecord::Member(_)
                    | MembershipRecord::Restoring(_)
                    | MembershipRecord::Joining
                    // Added back since (`Standing::at_start` checked).
                    | MembershipRecord::Removed { .. },
                ),
                Some(committed),
            ) => committed.conf_state(),
            (Some(MembershipRecord::Member(c) | MembershipRecord::Restoring(c)), None) => {
                c.conf_state()
            }
            _ => ConfState::default(),
        };
        let log = MemLog::new(log_core(&stored, conf)?);
        let mut rng = SplitMix::new(config.seed);
        standing.reseed(rng.next_u64());
        let node = new_node(
            &config,
            &log,
            stored.applied_index,
            stored.applied_zxid,
            &mut rng,
        )?;
        let role = RoleChange {
            role: node.role(),
            leader: node.leader(),
            term: node.term(),
        };
        tracing::info!(
            id = my_id,
            term = role.term,
            applied = stored.applied_index,
            log_last = node.last_index(),
            standing = ?standing.kind(),
            "taking part in the ensemble"
        );
        net.set_members(&membership.members);
        Ok(Driver {
            node,
            log,
            net,
            disk,
            my_id,
            membership,
            membership_index: 0,
            applied_membership: stored.committed.clone(),
            removed_version: standing.is_removed().then(|| match &stored.record {
                Some(MembershipRecord::Removed { version }) => *version,
                _ => stored.committed.as_ref().map_or(0, |c| c.version),
            }),
            standing,
            job: None,
            transfer: None,
            continued: None,
            handover_until: 0,
            last_heard: BTreeMap::new(),
            role,
            held: VecDeque::new(),
            deferred: VecDeque::new(),
            reads_waiting: BTreeMap::new(),
            reads_ready: Vec::new(),
            member_applied: BTreeMap::new(),
            restores_accepted: BTreeMap::new(),
            restoring: BTreeSet::new(),
            stale_forgotten: BTreeMap::new(),
            applied_index: stored.applied_index,
            applied_zxid: stored.applied_zxid,
            compacted_through: stored.compacted.0,
            ticks: 0,
            wall_ms: 0,
            rng,
            refusals: BTreeMap::new(),
            making: None,
            make_after_tick: 0,
            images_out: BTreeMap::new(),
            send_budget: config.snapshot_bytes_per_tick.max(1),
            config,
        })
    }

    /// One tick. `wall_ms` is the caller's wall clock (only stamped on
    /// membership changes).
    pub fn tick(&mut self, wall_ms: i64, sm: &mut dyn StateMachine<W>) -> Result<(), DriverError> {
        self.ticks += 1;
        self.wall_ms = wall_ms;
        if self.standing.is_removed() {
            // It still votes for members that have not applied its removal
            // (see `guard`), so its leader's lease must run out as
            // anyone's does; it never campaigns. It cannot win anyway: the
            // majority that committed its removal has a longer log.
            self.node.tick_without_campaign();
            return self.drive(sm);
        }
        // A server that may not vote (it has no state yet, or is taking it
        // back) must not campaign either: its election timer stands still.
        if self.standing.may_campaign(&self.config.faults) {
            self.node.tick();
        }
        // The first tick too: a server that starts asks its peers what the
        // ensemble is at once, not a status period later.
        if self.ticks == 1
            || self
                .ticks
                .is_multiple_of(self.config.status_every_ticks.max(1))
        {
            self.report_status(sm);
            self.standing_tick();
            // A server that is a majority of its zoo.cfg's participants
            // by itself (a one-server ensemble) has nobody to ask.
            self.bootstrap_if_unformed(sm);
        }
        self.retry_reads();
        self.image_streams_tick();
        self.poll_snapshot(sm);
        self.drive(sm)?;
        self.reconfig_tick(sm);
        self.drive(sm)
    }

    /// A Raft message from peer `from` (the transport checked the
    /// connection's Hello named `from`).
    pub fn receive(
        &mut self,
        from: u64,
        message: Message,
        sm: &mut dyn StateMachine<W>,
    ) -> Result<(), DriverError> {
        if self.admit(from, &message, sm) {
            // Live, for membership changes: taking part in Raft. A server
            // whose messages are refused (one taking its state back) is
            // not, however often it writes.
            self.last_heard.insert(from, self.ticks);
            self.refusals.remove(&from);
            let snapshot = message.get_msg_type() == raft::eraftpb::MessageType::MsgSnapshot;
            if let Err(e) = self.node.step(message) {
                tracing::debug!(peer = from, error = %e, "a peer message was not taken");
            }
            if snapshot {
                tracing::info!(peer = from, "a snapshot from the leader arrived");
            }
        }
        self.drive(sm)
    }

    /// A notice (`notice.rs`) from peer `from`.
    pub fn notice(
        &mut self,
        from: u64,
        bytes: &[u8],
        sm: &mut dyn StateMachine<W>,
    ) -> Result<(), DriverError> {
        let notice = match Notice::decode(bytes) {
            Ok(notice) => notice,
            Err(e) => {
                self.refuse(from, "undecodable notice", &e.to_string());
                return Ok(());
            }
        };
        // Servers without their state (discovering, restoring) speak
        // too; only members' notices show a server that takes part.
        if !matches!(
            notice,
            Notice::Discover { .. }
                | Notice::DiscoverReply(_)
                | Notice::Rejoining { .. }
                // A server being caught up takes no part yet.
                | Notice::SnapshotAck { .. }
        ) {
            self.last_heard.insert(from, self.ticks);
        }
        self.on_notice(from, notice, sm);
        self.drive(sm)
    }

    /// The transport could not reach `peer`, or its connection broke:
    /// what was on its way may be lost. Through the leader, that is
    /// forwarded writes and ReadIndex rounds: their clients are failed
    /// (they reconnect and learn the outcome), as ZooKeeper fails a
    /// follower's clients when its connection to the leader breaks.
    pub fn unreachable(&mut self, peer: u64, sm: &mut dyn StateMachine<W>) {
        self.node.report_unreachable(peer);
        self.image_stream_interrupted(peer);
        if self.role.leader == Some(peer) && !self.is_leader() {
            self.drop_reads();
            sm.leader_unreachable();
        }
    }

    /// A snapshot to `peer` was written out (`delivered`) or could not be.
    pub fn snapshot_sent(&mut self, peer: u64, delivered: bool) {
        if delivered {
            self.node.report_snapshot_sent(peer);
        } else {
            self.node.report_snapshot_failed(peer);
        }
    }

    /// The log writer made every ready up to `number` durable.
    pub fn persisted(
        &mut self,
        number: u64,
        sm: &mut dyn StateMachine<W>,
    ) -> Result<(), DriverError> {
        self.node.persisted(number);
        while self.held.front().is_some_and(|(n, _)| *n <= number) {
            if let Some((_, messages)) = self.held.pop_front() {
                self.send_all(messages);
            }
        }
        self.drive(sm)
    }

    /// After a batch of inputs: every ready the node has, and a snapshot
    /// if raft-rs asked for one.
    pub fn flush(&mut self, sm: &mut dyn StateMachine<W>) -> Result<(), DriverError> {
        self.drive(sm)
    }

    pub fn my_id(&self) -> u64 {
        self.my_id
    }

    /// This server leads now.
    pub fn is_leader(&self) -> bool {
        self.role.role == Role::Leader
    }

    /// A leader is known and this server is a member with its state: it
    /// serves clients.
    pub fn serving(&self) -> bool {
        self.role.leader.is_some() && self.standing.is_member()
    }

    /// The committed membership (zoo.cfg's while none is known).
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    pub fn standing(&self) -> StandingKind {
        self.standing.kind()
    }

    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// Snapshot images on their way to followers (not yet held whole).
    pub fn images_being_sent(&self) -> usize {
        self.images_out
            .values()
            .filter(|out| out.is_sending())
            .count()
    }

    pub fn node(&self) -> &Node<MemLog> {
        &self.node
    }

    /// The transport, for callers that own a simulated one.
    pub fn transport(&mut self) -> &mut T {
        &mut self.net
    }

    /// The transport, to read what it knows (connections up).
    pub fn transport_ref(&self) -> &T {
        &self.net
    }

    /// The log writer, for callers that own a simulated one.
    pub fn log_writer(&mut self) -> &mut L {
        &mut self.disk
    }

    fn send_all(&mut self, messages: Vec<Message>) {
        for message in messages {
            if message.get_msg_type() == raft::eraftpb::MessageType::MsgSnapshot {
                self.send_image(message);
                continue;
            }
            self.send_now(message);
        }
    }

    /// Sends `message` as it is; raft-rs hears of it if it was dropped.
    fn send_now(&mut self, message: Message) {
        let to = message.to;
        if !self.net.send(message) {
            self.node.report_unreachable(to);
        }
    }

    fn notify(&mut self, to: u64, notice: &Notice) -> bool {
        self.net.notify(to, notice.encode())
    }

    /// Logs a refused peer input once per peer and reason.
    fn refuse(&mut self, peer: u64, reason: &'static str, detail: &str) {
        if self.refusals.entry(peer).or_default().insert(reason) {
            tracing::warn!(peer, reason, detail, "refused a message from a peer");
        }
    }

    /// Rebuilds the node from the log as it is now (after bootstrapping).
    fn restart_node(&mut self) -> Result<(), DriverError> {
        self.node = new_node(
            &self.config,
            &self.log,
            self.applied_index,
            self.applied_zxid,
            &mut self.rng,
        )?;
        Ok(())
    }
}

/// The log as raft-rs reads it, from the store's copy.
fn log_core(stored: &StoredState, conf: ConfState) -> Result<LogCore, DriverError> {
    let mut core = LogCore::default();
    core.conf_state = conf.clone();
    core.hard_state.term = stored.hard_state.term;
    core.hard_state.vote = stored.hard_state.vote;
    // Everything applied was committed; a crash can keep an apply batch
    // (or an installed snapshot) and lose the later hard state that
    // recorded the commit, and raft-rs refuses to start with applied past
    // commit.
    core.hard_state.commit = stored.hard_state.commit.max(stored.applied_index);
    let (index, term) = stored.compacted;
    let mut point = Snapshot::default();
    point.mut_metadata().index = index;
    point.mut_metadata().term = term;
    point.mut_metadata().set_conf_state(conf);
    core.snapshot = point;
    core.replace_entries(stored.entries.clone());
    // A commit index past the durable log would make raft-rs panic; it
    // cannot happen (the hard state is written after the entries it
    // covers), but a damaged store must stop the server with a reason.
    if core.hard_state.commit > core.last_index() {
        return Err(DriverError::CommitPastLog {
            commit: core.hard_state.commit,
            last: core.last_index(),
        });
    }
    Ok(core)
}

fn new_node(
    config: &DriverConfig,
    log: &MemLog,
    applied_index: u64,
    applied_zxid: i64,
    rng: &mut SplitMix,
) -> Result<Node<MemLog>, DriverError> {
    let mut node_config = NodeConfig::new(config.my_id, config.election_ticks, rng.next_u64());
    node_config.heartbeat_ticks = config.heartbeat_ticks;
    node_config.applied_index = applied_index;
    node_config.applied_zxid = applied_zxid;
    node_config.max_size_per_msg = config.max_size_per_msg;
    node_config.max_inflight_msgs = config.max_inflight_msgs;
    Ok(Node::new(&node_config, log.clone())?)
}

//! One server's replication state machine: raft-rs's `RawNode` behind an
//! API that takes inputs and hands back what to do, never doing it.
//!
//! The driver (the server, or the simulator) runs this cycle:
//!
//! 1. feed inputs: [`Node::tick`], [`Node::step`] (a peer's message),
//!    [`Node::propose`], [`Node::read_index`];
//! 2. while [`Node::has_ready`]: take a [`Ready`] with [`Node::ready`];
//!    send `messages` now; write `hard_state`, `snapshot` and `entries` to
//!    storage so that the `raft::Storage` the node reads sees them; call
//!    [`Node::appended`] with the ready's number;
//! 3. once a sync has made those writes durable: [`Node::persisted`] with
//!    the highest number it covers, then send the ready's
//!    `persisted_messages` (votes and acknowledgements must never promise
//!    what a crash could take back). One sync may cover many readies: that
//!    is group commit;
//! 4. apply `committed` in order (each carries its zxid) and report
//!    progress with [`Node::applied`].
//!
//! Nothing here reads a clock, a socket, a disk or a random source: time
//! is ticks, and election timeouts come from a generator seeded by the
//! caller ([`NodeConfig::seed`]), so a seed replays exactly.

use raft::eraftpb::{ConfChangeV2, ConfState, Entry, EntryType, HardState, Message, Snapshot};
use raft::{RawNode, ReadState, StateRole, Storage};

use crate::error::ConsensusError;
use crate::logging::raft_logger;
use crate::zxid::{ZxidCounter, make_zxid};

/// How a node is set up. Times are in ticks; the driver decides how long a
/// tick is.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This server's id (ZooKeeper's `myid`); never 0.
    pub id: u64,
    /// A leader sends heartbeats every this many ticks.
    pub heartbeat_ticks: usize,
    /// The election timeout every server agrees on; a leader that has not
    /// heard from a quorum for this long steps down (check-quorum).
    pub election_ticks: usize,
    /// Seeds the draws of this server's election timeouts, each in
    /// `[election_ticks, 2 × election_ticks)`, made whenever its election
    /// timer restarts. raft-rs would draw them from its thread RNG; here
    /// the caller's seed decides (random in production, the run's seed in
    /// a simulation), so that runs replay.
    pub seed: u64,
    /// The last log index whose entry the state machine has applied
    /// durably; at most the durable commit index.
    pub applied_index: u64,
    /// The zxid of that entry (0 for an empty log).
    pub applied_zxid: i64,
    /// Most bytes of entries in one append message.
    pub max_size_per_msg: u64,
    /// Most append messages in flight to one follower.
    pub max_inflight_msgs: usize,
}

impl NodeConfig {
    /// Defaults for everything but the id and the timeouts.
    pub fn new(id: u64, election_ticks: usize, seed: u64) -> NodeConfig {
        NodeConfig {
            id,
            heartbeat_ticks: 1,
            election_ticks,
            seed,
            applied_index: 0,
            applied_zxid: 0,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
        }
    }

    fn to_raft(&self) -> raft::Config {
        raft::Config {
            id: self.id,
            election_tick: self.election_ticks,
            heartbeat_tick: self.heartbeat_ticks,
            min_election_tick: self.election_ticks,
            max_election_tick: 2 * self.election_ticks,
            applied: self.applied_index,
            max_size_per_msg: self.max_size_per_msg,
            max_inflight_msgs: self.max_inflight_msgs,
            check_quorum: true,
            pre_vote: true,
            ..raft::Config::default()
        }
    }
}

/// What this server is in the ensemble right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate,
    PreCandidate,
    Leader,
}

impl From<StateRole> for Role {
    fn from(role: StateRole) -> Role {
        match role {
            StateRole::Follower => Role::Follower,
            StateRole::Candidate => Role::Candidate,
            StateRole::PreCandidate => Role::PreCandidate,
            StateRole::Leader => Role::Leader,
        }
    }
}

/// A change of role or leader, reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleChange {
    pub role: Role,
    /// The leader this server knows of, if any.
    pub leader: Option<u64>,
    pub term: u64,
}

/// A member's replication as its leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerProgress {
    pub id: u64,
    /// The highest log index known to be in its log.
    pub matched: u64,
    /// It answered within the last election timeout.
    pub recent_active: bool,
    /// A learner (a ZooKeeper observer): it never votes.
    pub learner: bool,
}

/// A proposal accepted into the leader's log (not yet committed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposed {
    pub index: u64,
    pub term: u64,
    pub zxid: i64,
}

/// A committed entry, in log order, with its zxid.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    pub index: u64,
    pub term: u64,
    pub zxid: i64,
    pub kind: CommittedKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CommittedKind {
    /// The empty entry a new leader appends; nothing to apply.
    LeaderStart,
    /// A proposal's data.
    Data(Vec<u8>),
    /// A membership change, already applied to the node's configuration,
    /// with the context its proposer attached (the server's description
    /// of the new configuration: addresses, version, who asked).
    Membership { conf: ConfState, context: Vec<u8> },
}

/// One round of work for the driver (see the module documentation).
#[derive(Debug, Default)]
pub struct Ready {
    /// Identifies this ready for [`Node::appended`] and [`Node::persisted`].
    pub number: u64,
    /// Send now (a leader's appends go out while it writes its own copy).
    pub messages: Vec<Message>,
    /// Write before calling [`Node::appended`].
    pub hard_state: Option<HardState>,
    /// Write before calling [`Node::appended`]; replaces everything from
    /// its first index on.
    pub entries: Vec<Entry>,
    /// Install before the entries, if present.
    pub snapshot: Option<Snapshot>,
    /// Whether the writes must be synced before `persisted_messages` go
    /// out (false for a commit-index-only hard state change).
    pub must_sync: bool,
    /// Send only after [`Node::persisted`] for this number.
    pub persisted_messages: Vec<Message>,
    /// Apply in order, then report with [`Node::applied`].
    pub committed: Vec<Committed>,
    /// Answers to [`Node::read_index`]: the context given and the commit
    /// index a read must wait for.
    pub read_states: Vec<ReadState>,
    /// Set when the role or the known leader changed.
    pub role_change: Option<RoleChange>,
}

/// The replication core of one server. See the module documentation.
pub struct Node<S: Storage> {
    raw: RawNode<S>,
    /// zxids of committed entries, in log order; `None` after a snapshot
    /// arrived until the driver says where it ends.
    committed_zxids: Option<ZxidCounter>,
    /// While leader: the term and the index of its first entry, to predict
    /// the zxid of the next proposal.
    leading: Option<ZxidCounter>,
    /// The raft-rs ready handed out and not yet passed to `appended`.
    outstanding: Option<raft::Ready>,
    /// What the driver reported through `applied`.
    applied_index: u64,
    /// splitmix64 state for election timeouts.
    timeout_seed: u64,
    last_role: RoleChange,
}

impl<S: Storage> std::fmt::Debug for Node<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.raw.raft.id)
            .field("role", &self.last_role)
            .field("committed_zxids", &self.committed_zxids)
            .finish_non_exhaustive()
    }
}

impl<S: Storage> Node<S> {
    /// A node over `storage`, which holds the durable hard state, the
    /// membership (`ConfState`) and the log, and must show every write the
    /// driver makes as soon as it is made.
    pub fn new(config: &NodeConfig, storage: S) -> Result<Node<S>, ConsensusError> {
        let raw = RawNode::new(&config.to_raft(), storage, &raft_logger(config.id))?;
        let mut node = Node {
            raw,
            committed_zxids: Some(ZxidCounter::resume(
                config.applied_index,
                config.applied_zxid,
            )),
            leading: None,
            outstanding: None,
            applied_index: config.applied_index,
            timeout_seed: config.seed,
            last_role: RoleChange {
                role: Role::Follower,
                leader: None,
                term: 0,
            },
        };
        node.observe();
        Ok(node)
    }

    pub fn id(&self) -> u64 {
        self.raw.raft.id
    }

    /// Advances time by one tick.
    pub fn tick(&mut self) {
        self.raw.tick();
        self.observe();
    }

    /// Starts an election now (used when a single voter starts, and by
    /// tests); normally elections start from ticks.
    pub fn campaign(&mut self) -> Result<(), ConsensusError> {
        self.raw.campaign()?;
        self.observe();
        Ok(())
    }

    /// A message from a peer. Messages for another node are refused.
    pub fn step(&mut self, message: Message) -> Result<(), ConsensusError> {
        self.raw.step(message)?;
        self.observe();
        Ok(())
    }

    /// The zxid and index the next proposal would take, if this server
    /// leads: what `tree::prepare` stamps on the transaction it builds.
    pub fn next_proposal(&self) -> Result<Proposed, ConsensusError> {
        let leading = self.leading_counter()?;
        let index = self.raw.raft.raft_log.last_index() + 1;
        Ok(Proposed {
            index,
            term: leading.term(),
            zxid: leading.predict(index)?,
        })
    }

    /// Appends `data` to the log as leader. `expected`, from
    /// [`Node::next_proposal`], must still hold: the entry lands at that
    /// index with that zxid, or the proposal is refused.
    pub fn propose(&mut self, data: Vec<u8>, expected: Proposed) -> Result<(), ConsensusError> {
        let now = self.next_proposal()?;
        if now != expected {
            // Leadership changed hands (and back) or someone else proposed
            // in between: the caller prepares again.
            return Err(self.not_leader());
        }
        let proposed = self.raw.propose(Vec::new(), data);
        self.refused_if_dropped(proposed)?;
        let last = self.raw.raft.raft_log.last_index();
        debug_assert_eq!(last, expected.index, "a proposal lands at the next index");
        if last != expected.index {
            return Err(self.not_leader());
        }
        self.observe();
        Ok(())
    }

    /// Proposes a membership change (one step at a time: refused while an
    /// earlier change is not applied, where raft-rs would silently turn it
    /// into an empty entry).
    pub fn propose_membership(&mut self, change: ConfChangeV2) -> Result<(), ConsensusError> {
        self.leading_counter()?;
        if self.raw.raft.has_pending_conf() {
            return Err(ConsensusError::MembershipInProgress {
                index: self.raw.raft.pending_conf_index,
            });
        }
        let proposed = self.raw.propose_conf_change(Vec::new(), change);
        self.refused_if_dropped(proposed)?;
        self.observe();
        Ok(())
    }

    /// raft-rs drops a proposal when this server cannot take it (not the
    /// leader, or handing leadership over): that is `NotLeader`.
    fn refused_if_dropped(&self, proposed: raft::Result<()>) -> Result<(), ConsensusError> {
        match proposed {
            Err(raft::Error::ProposalDropped) => Err(self.not_leader()),
            other => Ok(other?),
        }
    }

    /// `NotLeader`, naming the leader this server knows of unless that is
    /// itself (a leader handing over, say): the hint says where to go.
    fn not_leader(&self) -> ConsensusError {
        ConsensusError::NotLeader {
            leader: self.leader().filter(|&l| l != self.id()),
        }
    }

    /// Starts a ReadIndex round: a later [`Ready::read_states`] carries
    /// `context` back with the commit index a linearizable read must wait
    /// for (after the leader confirmed with a quorum that it leads).
    pub fn read_index(&mut self, context: Vec<u8>) {
        self.raw.read_index(context);
        self.observe();
    }

    /// Asks the leader to hand leadership to `transferee`.
    pub fn transfer_leader(&mut self, transferee: u64) {
        self.raw.transfer_leader(transferee);
        self.observe();
    }

    /// The transport could not reach `peer`.
    pub fn report_unreachable(&mut self, peer: u64) {
        self.raw.report_unreachable(peer);
    }

    /// The transport found `peer`'s process gone: the connection it had
    /// closed, and its port now refuses connections (a crash or a restart,
    /// not a network partition, where connecting times out). If `peer` is
    /// this follower's leader, waiting out the election timeout would only
    /// delay the inevitable: its lease is over now (this server grants
    /// other candidates' votes), and it campaigns itself after
    /// `delay_ticks` ticks. The caller staggers the delays of the survivors
    /// so they do not split their votes. Safety does not depend on this:
    /// pre-vote, check-quorum and the vote rules are unchanged; a wrong
    /// guess costs an election.
    pub fn leader_gone(&mut self, peer: u64, delay_ticks: usize) {
        let raft = &mut self.raw.raft;
        if raft.state != StateRole::Follower || raft.leader_id != peer {
            return;
        }
        raft.leader_id = raft::INVALID_ID;
        if raft.promotable() {
            let timeout = raft.randomized_election_timeout();
            let target = timeout.saturating_sub(1 + delay_ticks).max(1);
            raft.election_elapsed = raft.election_elapsed.max(target);
        }
        self.observe();
    }

    /// A tick for a follower that must never campaign (a removed server
    /// that still votes): its leader's lease runs out as anyone's does,
    /// and it grants votes after that, but its own election timer never
    /// fires. Whether it is in its own configuration (told of its removal
    /// before applying it) or not does not matter.
    pub fn tick_without_campaign(&mut self) {
        let raft = &mut self.raw.raft;
        if raft.state == StateRole::Follower {
            raft.election_elapsed = raft.election_elapsed.saturating_add(1);
        }
    }

    /// A leader sends `peer` what it lacks now, instead of at the next
    /// heartbeat (a member taken back after losing its store). Nothing if
    /// this server does not lead or does not know `peer`.
    pub fn send_append_now(&mut self, peer: u64) {
        let raft = &mut self.raw.raft;
        if raft.state == StateRole::Leader && peer != raft.id && raft.prs().get(peer).is_some() {
            raft.send_append(peer);
        }
    }

    /// A leader sends again to every follower that waits for a snapshot
    /// (raft-rs found none at hand when it probed it): one was just made.
    pub fn resend_to_snapshot_waiters(&mut self) {
        let raft = &mut self.raw.raft;
        if raft.state != StateRole::Leader {
            return;
        }
        let first = raft.raft_log.first_index();
        let me = raft.id;
        let waiting: Vec<u64> = raft
            .prs()
            .iter()
            .filter(|&(&id, pr)| {
                id != me
                    && pr.state == raft::ProgressState::Probe
                    && !pr.is_paused()
                    && pr.next_idx < first
            })
            .map(|(&id, _)| id)
            .collect();
        for id in waiting {
            raft.send_append(id);
        }
    }

    /// The leader forgets what it knew of `peer`'s log: it probes it again
    /// from the start (a snapshot, for a log that lost everything) and
    /// counts it toward a quorum only for what it acknowledges from now on.
    /// For a member that lost its store: the leader's record of what it
    /// once acknowledged is no longer true. False if this server does not
    /// lead or does not know `peer`.
    pub fn forget_progress(&mut self, peer: u64) -> bool {
        let raft = &mut self.raw.raft;
        if raft.state != StateRole::Leader || peer == raft.id {
            return false;
        }
        let Some(pr) = raft.mut_prs().get_mut(peer) else {
            return false;
        };
        pr.matched = 0;
        pr.become_probe();
        pr.next_idx = 1;
        true
    }

    /// Whether this server leads and may propose now (it has applied its
    /// term's first entry, so everything committed before its term).
    pub fn ready_to_propose(&self) -> bool {
        self.leading_counter().is_ok()
    }

    /// Whether this server votes in the configuration it runs.
    pub fn is_voter(&self) -> bool {
        self.raw.raft.prs().conf().voters().contains(self.id())
    }

    /// A snapshot message to `peer` was delivered (its transport wrote it
    /// out): the leader goes back to probing `peer`, even if the peer's
    /// acknowledgement gets lost.
    pub fn report_snapshot_sent(&mut self, peer: u64) {
        self.raw.report_snapshot(peer, raft::SnapshotStatus::Finish);
    }

    /// A snapshot message to `peer` could not be delivered (its connection
    /// broke): the leader must be told, or it waits for that snapshot's
    /// acknowledgement forever and sends `peer` nothing else.
    pub fn report_snapshot_failed(&mut self, peer: u64) {
        self.raw
            .report_snapshot(peer, raft::SnapshotStatus::Failure);
        self.raw.report_unreachable(peer);
    }

    /// Whether [`Node::ready`] has work (a role change to report is work).
    pub fn has_ready(&self) -> bool {
        self.outstanding.is_none()
            && (self.raw.has_ready() || self.current_role() != self.last_role)
    }

    /// The next round of work, if any. The previous one must have been
    /// passed to [`Node::appended`] first.
    pub fn ready(&mut self) -> Result<Option<Ready>, ConsensusError> {
        if !self.has_ready() {
            return Ok(None);
        }
        let mut rd = self.raw.ready();
        let mut ready = Ready {
            number: rd.number(),
            messages: rd.take_messages(),
            hard_state: rd.hs().cloned(),
            entries: rd.take_entries(),
            snapshot: (!rd.snapshot().is_empty()).then(|| rd.snapshot().clone()),
            must_sync: rd.must_sync(),
            persisted_messages: rd.take_persisted_messages(),
            committed: Vec::new(),
            read_states: rd.take_read_states(),
            role_change: None,
        };
        if ready.snapshot.is_some() {
            // The state jumps to the snapshot. Its last entry's zxid is in
            // the snapshot's data, which only the driver reads: until it
            // calls `resume_zxids`, committed entries cannot be numbered.
            self.committed_zxids = None;
        }
        let committed = rd.take_committed_entries();
        ready.committed = self.committed(committed)?;
        self.outstanding = Some(rd);
        ready.role_change = self.role_change();
        Ok(Some(ready))
    }

    /// The ready `number` has been written (readable through storage, not
    /// necessarily durable).
    pub fn appended(&mut self, number: u64) {
        if let Some(rd) = self.outstanding.take() {
            debug_assert_eq!(rd.number(), number);
            self.raw.advance_append_async(rd);
        }
        self.observe();
    }

    /// Every ready up to `number` is durable.
    pub fn persisted(&mut self, number: u64) {
        // raft-rs counts a leader's own entries as acknowledged on persist
        // and unwraps its own progress, which a leader that applied its
        // own removal no longer has (it has handed over by now, or tried):
        // it is no leader of a configuration without itself.
        let raft = &mut self.raw.raft;
        if raft.state == StateRole::Leader && raft.prs().get(raft.id).is_none() {
            let term = raft.term;
            raft.become_follower(term, raft::INVALID_ID);
        }
        self.raw.on_persist_ready(number);
        self.observe();
    }

    /// The state machine has applied every committed entry up to `index`.
    pub fn applied(&mut self, index: u64) {
        self.applied_index = self.applied_index.max(index);
        self.raw.advance_apply_to(index);
    }

    /// After installing a snapshot whose last entry has `zxid`: zxids of
    /// later entries continue from there.
    pub fn resume_zxids(&mut self, index: u64, zxid: i64) {
        self.committed_zxids = Some(ZxidCounter::resume(index, zxid));
    }

    pub fn role(&self) -> Role {
        self.raw.raft.state.into()
    }

    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    /// The leader this server knows of. A learner (a ZooKeeper observer)
    /// never campaigns, so raft-rs keeps naming a leader it has not heard
    /// from in any time; here a learner that has heard nothing from its
    /// leader for the longest election timeout knows of no leader, as a
    /// ZooKeeper observer that lost its leader.
    pub fn leader(&self) -> Option<u64> {
        let raft = &self.raw.raft;
        if !raft.promotable()
            && raft.state == StateRole::Follower
            && raft.election_elapsed >= 2 * raft.election_timeout()
        {
            return None;
        }
        match raft.leader_id {
            raft::INVALID_ID => None,
            id => Some(id),
        }
    }

    /// The highest log index known committed.
    pub fn commit_index(&self) -> u64 {
        self.raw.raft.raft_log.committed
    }

    /// The highest log index known durable here.
    pub fn persisted_index(&self) -> u64 {
        self.raw.raft.raft_log.persisted
    }

    /// The last log index (durable or not).
    pub fn last_index(&self) -> u64 {
        self.raw.raft.raft_log.last_index()
    }

    /// raft-rs's view of each peer's replication progress (a leader's), as
    /// text for logs and test failures.
    pub fn debug_progress(&self) -> String {
        let status = self.raw.status();
        let Some(progress) = status.progress else {
            return String::new();
        };
        let mut peers: Vec<String> = progress
            .iter()
            .map(|(id, p)| {
                format!(
                    "{id}: {:?} matched {} next {} pending snapshot {}",
                    p.state, p.matched, p.next_idx, p.pending_snapshot
                )
            })
            .collect();
        peers.sort();
        peers.join("; ")
    }

    /// What a leader knows of each member's replication (empty unless this
    /// server leads), sorted by id; itself included.
    pub fn progress(&self) -> Vec<PeerProgress> {
        if self.raw.raft.state != StateRole::Leader {
            return Vec::new();
        }
        let learners: Vec<u64> = self
            .raw
            .raft
            .prs()
            .conf()
            .learners()
            .iter()
            .copied()
            .collect();
        let mut out: Vec<PeerProgress> = self
            .raw
            .raft
            .prs()
            .iter()
            .map(|(&id, p)| PeerProgress {
                id,
                matched: p.matched,
                recent_active: p.recent_active,
                learner: learners.contains(&id),
            })
            .collect();
        out.sort_by_key(|p| p.id);
        out
    }

    /// The highest index a leader knows to be in `peer`'s log (`None`
    /// unless this server leads and `peer` is in its configuration).
    pub fn matched(&self, peer: u64) -> Option<u64> {
        if self.raw.raft.state != StateRole::Leader {
            return None;
        }
        self.raw.raft.prs().get(peer).map(|p| p.matched)
    }

    /// The membership in force (the last applied change).
    pub fn conf_state(&self) -> ConfState {
        self.raw.raft.prs().conf().to_conf_state()
    }

    /// The member leadership is being handed to, if a transfer is on.
    pub fn transferring_to(&self) -> Option<u64> {
        self.raw.raft.lead_transferee
    }

    /// A proposed membership change is not yet applied.
    pub fn membership_pending(&self) -> bool {
        self.raw.raft.has_pending_conf()
    }

    /// The storage the node reads.
    pub fn storage(&self) -> &S {
        self.raw.store()
    }

    /// The zxid counter of this leader's term, if it may propose now.
    ///
    /// A new leader proposes only once it has applied its own first entry
    /// (and so every entry before it, from earlier terms): `prepare` judges
    /// a write against the applied tree plus this leader's own pending
    /// writes, which is only right when nothing else sits between them in
    /// the log. This is Zab's rule that a leader serves only after its
    /// synchronisation phase.
    ///
    /// A leader that a membership change demoted or removed proposes
    /// nothing more: raft-rs keeps it leading (check-quorum counts only the
    /// voters) until it hands over.
    fn leading_counter(&self) -> Result<ZxidCounter, ConsensusError> {
        let voter = self.raw.raft.prs().conf().voters().contains(self.id());
        match self.leading {
            Some(counter)
                if self.raw.raft.state == StateRole::Leader
                    && self.raw.raft.lead_transferee.is_none()
                    && voter =>
            {
                if self.applied_index < counter.term_start() {
                    return Err(ConsensusError::LeaderNotReady {
                        term_start: counter.term_start(),
                        applied: self.applied_index,
                    });
                }
                Ok(counter)
            }
            _ => Err(self.not_leader()),
        }
    }

    /// Tracks where the current leadership term starts. raft-rs appends
    /// the new leader's empty entry when it wins, and every public method
    /// calls this before returning, so the first time we see a new term as
    /// leader the log's last entry is that empty entry.
    fn observe(&mut self) {
        // The election timer restarted (a new term or role, or a message
        // from the leader): raft-rs drew a timeout from its thread RNG, or
        // kept the last one; replace it with a draw from our seed.
        if self.raw.raft.election_elapsed == 0 {
            let min = self.raw.raft.election_timeout();
            let timeout = min + (self.next_random() % min as u64) as usize;
            self.raw.raft.set_randomized_election_timeout(timeout);
        }
        let raft = &self.raw.raft;
        if raft.state != StateRole::Leader {
            self.leading = None;
            return;
        }
        if self.leading.is_some_and(|l| l.term() == raft.term) {
            return;
        }
        let start = raft.raft_log.last_index();
        debug_assert_eq!(raft.raft_log.term(start).ok(), Some(raft.term));
        self.leading = Some(ZxidCounter::resume(start, make_zxid(raft.term, 0)));
    }

    /// splitmix64: deterministic from the configured seed.
    fn next_random(&mut self) -> u64 {
        self.timeout_seed = self.timeout_seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.timeout_seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn current_role(&self) -> RoleChange {
        RoleChange {
            role: self.role(),
            leader: self.leader(),
            term: self.term(),
        }
    }

    fn role_change(&mut self) -> Option<RoleChange> {
        let now = self.current_role();
        (now != self.last_role).then(|| {
            self.last_role = now;
            now
        })
    }

    fn committed(&mut self, entries: Vec<Entry>) -> Result<Vec<Committed>, ConsensusError> {
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let counter = self
                .committed_zxids
                .as_mut()
                .ok_or(ConsensusError::SnapshotNotResumed)?;
            let zxid = counter.next(entry.index, entry.term)?;
            let kind = match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => CommittedKind::LeaderStart,
                EntryType::EntryNormal => CommittedKind::Data(entry.data.to_vec()),
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    let (conf, context) = apply_membership(&mut self.raw, &entry)?;
                    CommittedKind::Membership { conf, context }
                }
            };
            out.push(Committed {
                index: entry.index,
                term: entry.term,
                zxid,
                kind,
            });
        }
        Ok(out)
    }
}

/// Applies a committed membership entry (either encoding) to the node's
/// configuration. These bytes were written by a leader of this ensemble and
/// came through the log, never straight from an unauthenticated peer.
fn apply_membership<S: Storage>(
    raw: &mut RawNode<S>,
    entry: &Entry,
) -> Result<(ConfState, Vec<u8>), ConsensusError> {
    use protobuf::Message as _;
    let codec = |e: protobuf::ProtobufError| ConsensusError::Raft(raft::Error::CodecError(e));
    if entry.get_entry_type() == EntryType::EntryConfChange {
        let mut cc = raft::eraftpb::ConfChange::default();
        cc.merge_from_bytes(&entry.data).map_err(codec)?;
        Ok((raw.apply_conf_change(&cc)?, cc.context.to_vec()))
    } else {
        let mut cc = ConfChangeV2::default();
        cc.merge_from_bytes(&entry.data).map_err(codec)?;
        Ok((raw.apply_conf_change(&cc)?, cc.context.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::storage::MemStorage;

    fn single(id: u64) -> Node<MemStorage> {
        let storage = MemStorage::new_with_conf_state((vec![id], vec![]));
        Node::new(&NodeConfig::new(id, 10, 12), storage).expect("node")
    }

    /// Writes and syncs every ready at once, returning what was committed.
    fn drive(node: &mut Node<MemStorage>) -> Vec<Committed> {
        let mut committed = Vec::new();
        while let Some(rd) = node.ready().expect("ready") {
            let store = node.storage().clone();
            if let Some(hs) = &rd.hard_state {
                store.wl().set_hardstate(hs.clone());
            }
            store.wl().append(&rd.entries).expect("append");
            node.appended(rd.number);
            node.persisted(rd.number);
            for c in &rd.committed {
                node.applied(c.index);
            }
            committed.extend(rd.committed);
        }
        committed
    }

    #[test]
    fn a_single_voter_leads_and_commits_with_predicted_zxids() {
        let mut node = single(1);
        assert!(matches!(
            node.next_proposal(),
            Err(ConsensusError::NotLeader { .. })
        ));
        node.campaign().expect("campaign");
        let first = drive(&mut node);
        assert_eq!(node.role(), Role::Leader);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].kind, CommittedKind::LeaderStart);
        let term = node.term();
        assert_eq!(first[0].zxid, make_zxid(term, 0));

        let mut predicted = Vec::new();
        for i in 0..3u8 {
            let next = node.next_proposal().expect("leader");
            node.propose(vec![i], next).expect("propose");
            predicted.push(next.zxid);
        }
        let committed = drive(&mut node);
        let zxids: Vec<i64> = committed.iter().map(|c| c.zxid).collect();
        assert_eq!(zxids, predicted);
        assert_eq!(
            zxids,
            vec![make_zxid(term, 1), make_zxid(term, 2), make_zxid(term, 3)]
        );
        assert_eq!(committed[2].kind, CommittedKind::Data(vec![2]));
    }

    #[test]
    fn a_new_leader_proposes_only_after_applying_its_first_entry() {
        let mut node = single(1);
        node.campaign().expect("campaign");
        assert_eq!(node.role(), Role::Leader);
        // Elected, its first entry not yet written, committed and applied.
        assert!(matches!(
            node.next_proposal(),
            Err(ConsensusError::LeaderNotReady { .. })
        ));
        let rd = node.ready().expect("ready").expect("work");
        let store = node.storage().clone();
        if let Some(hs) = &rd.hard_state {
            store.wl().set_hardstate(hs.clone());
        }
        store.wl().append(&rd.entries).expect("append");
        node.appended(rd.number);
        node.persisted(rd.number);
        // Durable, so committed: the next ready hands it over to apply.
        let rd = node.ready().expect("ready").expect("the commit");
        assert_eq!(rd.committed.len(), 1);
        assert_eq!(rd.committed[0].kind, CommittedKind::LeaderStart);
        node.appended(rd.number);
        assert!(
            matches!(
                node.next_proposal(),
                Err(ConsensusError::LeaderNotReady { .. })
            ),
            "committed is not applied"
        );
        node.applied(rd.committed[0].index);
        let first = node.next_proposal().expect("ready to propose");
        assert_eq!(first.zxid, make_zxid(node.term(), 1));
    }

    #[test]
    fn a_stale_prediction_is_refused() {
        let mut node = single(1);
        node.campaign().expect("campaign");
        drive(&mut node);
        let next = node.next_proposal().expect("leader");
        node.propose(b"a".to_vec(), next).expect("propose");
        assert!(matches!(
            node.propose(b"b".to_vec(), next),
            Err(ConsensusError::NotLeader { .. })
        ));
    }

    #[test]
    fn election_timeouts_come_from_the_seed() {
        let timeouts = |seed| {
            let mut node = Node::new(
                &NodeConfig::new(1, 10, seed),
                MemStorage::new_with_conf_state((vec![1, 2, 3], vec![])),
            )
            .expect("node");
            (0..20)
                .map(|_| {
                    node.observe();
                    node.raw.raft.randomized_election_timeout()
                })
                .collect::<Vec<_>>()
        };
        let a = timeouts(7);
        assert_eq!(a, timeouts(7), "the same seed draws the same timeouts");
        assert_ne!(a, timeouts(8));
        assert!(a.iter().all(|t| (10..20).contains(t)), "{a:?}");
    }
}

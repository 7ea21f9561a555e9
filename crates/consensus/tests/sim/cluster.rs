//! A whole ensemble in one thread: real `consensus::Node`s over simulated
//! disks and a simulated network, every event chosen by the seed.
//!
//! Faults: messages lost, duplicated and delivered in any order; partitions
//! that split the ensemble and heal, both ways or one way only (one side
//! hears the other but cannot answer); crashes that lose every write not
//! yet synced, and restarts; clocks that jitter (a lone server ticks now
//! and then) and drift (a server's clock runs at half, 1.5×, double or
//! triple speed until its next drift); log compaction. After every event
//! the invariants (`invariants.rs`, and the durable-quorum check of
//! [`Cluster::apply`]) are checked.

use std::collections::{BTreeMap, BTreeSet};

use consensus::raft::eraftpb::{ConfState, Entry, Message, Snapshot, SnapshotMetadata};
use consensus::{Committed, CommittedKind, LogCore, Node, NodeConfig, Role, make_zxid, wire};

use crate::sim::disk::{AppliedEntry, Disk};
use crate::sim::invariants::History;
use crate::sim::machine::{Machine, Prepared, Requests, random_write};
use crate::sim::rng::Rng;
use consensus::MemLog as SimLog;

/// How hostile a run is. Rates are per mille of events.
#[derive(Debug, Clone)]
pub(crate) struct Faults {
    pub(crate) drop: u64,
    pub(crate) duplicate: u64,
    pub(crate) crash: u64,
    pub(crate) restart: u64,
    pub(crate) partition: u64,
    /// A partition that cuts one direction only: servers on one side
    /// still reach the other, and hear nothing back.
    pub(crate) one_way: u64,
    pub(crate) heal: u64,
    /// A server's clock changes speed (see [`Clock`]).
    pub(crate) drift: u64,
    /// A server compacts its log up to what it has applied, keeping a
    /// snapshot of its tree: laggards then catch up by snapshot.
    pub(crate) compact: u64,
    /// A deliberately broken driver: votes and acknowledgements go out
    /// before the sync that makes them true. Used to show the invariants
    /// catch what this breaks.
    pub(crate) ack_before_sync: bool,
    /// A deliberately broken server: `sync` answered from its own commit
    /// index, without a ReadIndex round.
    pub(crate) sync_locally: bool,
    /// A deliberately broken state machine: entries applied as soon as
    /// they reach the log, before they are committed.
    pub(crate) apply_before_commit: bool,
    /// A deliberately misconfigured ensemble: the servers count observers
    /// as voters (the invariants still do not).
    pub(crate) observers_vote: bool,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            drop: 50,
            duplicate: 20,
            crash: 8,
            restart: 30,
            partition: 4,
            one_way: 2,
            heal: 15,
            drift: 6,
            compact: 15,
            ack_before_sync: false,
            sync_locally: false,
            apply_before_commit: false,
            observers_vote: false,
        }
    }
}

pub(crate) const ELECTION_TICKS: usize = 10;

/// Who is in the ensemble: voters with ids `1..=voters`, then observers,
/// which are raft-rs learners: they receive every entry but never vote or
/// campaign, and no quorum counts them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ensemble {
    pub(crate) voters: u64,
    pub(crate) observers: u64,
}

impl Ensemble {
    pub(crate) fn voters(voters: u64) -> Ensemble {
        Ensemble {
            voters,
            observers: 0,
        }
    }

    pub(crate) fn with_observers(self, observers: u64) -> Ensemble {
        Ensemble { observers, ..self }
    }
}

impl std::fmt::Display for Ensemble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.observers {
            0 => write!(f, "{} servers", self.voters),
            n => write!(f, "{} voters + {n} observers", self.voters),
        }
    }
}

struct SimNode {
    id: u64,
    node: Option<Node<SimLog>>,
    disk: Disk,
    applied: Vec<AppliedEntry>,
    machine: Machine,
    /// Messages to send once the next sync covers them.
    held: Vec<Message>,
    /// The highest ready number written and not yet synced.
    unsynced: Option<u64>,
    /// Seeds the server's election timeouts; a restart continues with a
    /// new seed drawn from it, as a restarted process would.
    seed: u64,
    /// The machine's clock, which keeps its speed across restarts.
    clock: Clock,
}

/// A server's clock. Ticks that reach every server (the common clock)
/// advance each by `speed` quarter ticks: a server whose clock runs fast
/// times out sooner than the others for as long as it runs fast, which
/// the occasional lone tick (jitter) does not model.
#[derive(Debug, Clone, Copy)]
struct Clock {
    /// Quarter ticks per common tick; 4 is true time.
    speed: u64,
    /// Quarter ticks accumulated and not yet ticked.
    quarters: u64,
}

impl Clock {
    const TRUE: Clock = Clock {
        speed: 4,
        quarters: 0,
    };
    /// Half, true (twice as likely: drifts also end), 1.5×, double and
    /// triple speed.
    const SPEEDS: [u64; 6] = [2, 4, 4, 6, 8, 12];

    /// Advances by one common tick: how many ticks the server sees.
    fn advance(&mut self) -> u64 {
        self.quarters += self.speed;
        let ticks = self.quarters / 4;
        self.quarters %= 4;
        ticks
    }
}

pub(crate) struct Cluster {
    pub(crate) rng: Rng,
    faults: Faults,
    voters: Vec<u64>,
    observers: Vec<u64>,
    /// Voters then observers, in id order.
    nodes: Vec<SimNode>,
    network: Vec<Message>,
    /// Links (from, to) that lose every message: a partition.
    cut: BTreeSet<(u64, u64)>,
    pub(crate) history: History,
    next_command: u64,
    requests: Requests,
    /// Syncs asked and not answered yet: context → the last acknowledged
    /// index when asked.
    syncs: BTreeMap<Vec<u8>, u64>,
    /// Snapshot index → the state machine at that index (the data a
    /// snapshot carries; the same at an index on every server).
    snapshots: BTreeMap<u64, (tree::DataTree, Vec<AppliedEntry>)>,
    /// The last events, printed when an invariant fails.
    pub(crate) trace: Vec<String>,
    pub(crate) events: u64,
}

impl Cluster {
    pub(crate) fn new(seed: u64, ensemble: Ensemble, faults: Faults) -> Cluster {
        let mut rng = Rng::new(seed);
        let voters: Vec<u64> = (1..=ensemble.voters).collect();
        let observers: Vec<u64> =
            (ensemble.voters + 1..=ensemble.voters + ensemble.observers).collect();
        // What the servers are configured with; the invariants go by
        // `voters` and `observers` whatever the servers believe.
        let conf = if faults.observers_vote {
            ConfState::from(([&voters[..], &observers[..]].concat(), Vec::new()))
        } else {
            ConfState::from((voters.clone(), observers.clone()))
        };
        let nodes: Vec<SimNode> = voters
            .iter()
            .chain(&observers)
            .map(|&id| {
                let seed = rng.next_u64();
                let mut n = SimNode {
                    id,
                    node: None,
                    disk: Disk::new(&conf),
                    applied: Vec::new(),
                    machine: Machine::genesis(),
                    held: Vec::new(),
                    unsynced: None,
                    seed,
                    clock: Clock::TRUE,
                };
                start(&mut n);
                n
            })
            .collect();
        Cluster {
            rng,
            faults,
            cut: BTreeSet::new(),
            voters,
            observers,
            nodes,
            network: Vec::new(),
            history: History::default(),
            next_command: 1,
            requests: Requests::default(),
            snapshots: BTreeMap::new(),
            syncs: BTreeMap::new(),
            trace: Vec::new(),
            events: 0,
        }
    }

    /// One event chosen by the seed, then the invariants.
    pub(crate) fn step(&mut self) -> Result<(), String> {
        self.events += 1;
        let f = self.faults.clone();
        let roll = self.rng.below(1000) as u64;
        let mut at = 0;
        let mut pick = |rate: u64| {
            at += rate;
            roll < at
        };
        if pick(f.crash) {
            let i = self.rng.below(self.nodes.len());
            self.crash(i);
        } else if pick(f.restart) {
            let i = self.rng.below(self.nodes.len());
            self.restart(i)?;
        } else if pick(f.partition) {
            self.partition(false);
        } else if pick(f.one_way) {
            self.partition(true);
        } else if pick(f.heal) {
            self.heal();
        } else if pick(f.drift) {
            let i = self.rng.below(self.nodes.len());
            self.drift(i);
        } else if pick(f.compact) {
            let i = self.rng.below(self.nodes.len());
            self.compact(i)?;
        } else if pick(100) {
            self.propose()?;
        } else if pick(30) {
            self.sync_request()?;
        } else if pick(120) {
            let i = self.rng.below(self.nodes.len());
            self.sync(i)?;
        } else if pick(60) {
            self.tick_everywhere()?;
        } else if pick(40) {
            let i = self.rng.below(self.nodes.len());
            self.tick(i)?;
        } else {
            self.deliver()?;
        }
        self.check()
    }

    /// Heals everything, restarts every server and runs up to `rounds`
    /// rounds of a good network (a tick everywhere, then every message
    /// delivered, in a seeded order, and every disk synced) until the
    /// ensemble has settled.
    pub(crate) fn settle(&mut self, rounds: u64) -> Result<(), String> {
        self.heal();
        for i in 0..self.nodes.len() {
            if self.nodes[i].node.is_none() {
                self.restart(i)?;
            }
        }
        for _ in 0..rounds {
            self.events += 1;
            for i in 0..self.nodes.len() {
                self.tick(i)?;
            }
            for _ in 0..20 {
                for i in 0..self.nodes.len() {
                    self.sync(i)?;
                }
                if self.network.is_empty() {
                    break;
                }
                while !self.network.is_empty() {
                    let i = self.rng.below(self.network.len());
                    let m = self.network.swap_remove(i);
                    self.receive(m)?;
                }
            }
            self.check()?;
            if self.check_settled().is_ok() {
                break;
            }
        }
        Ok(())
    }

    /// The state machines agree and hold every acknowledged write.
    pub(crate) fn check_settled(&self) -> Result<(), String> {
        let leaders: Vec<u64> = self
            .nodes
            .iter()
            .filter(|n| n.node.as_ref().is_some_and(|x| x.role() == Role::Leader))
            .map(|n| n.id)
            .collect();
        if leaders.len() != 1 {
            let states: Vec<String> = self
                .nodes
                .iter()
                .map(|n| match &n.node {
                    Some(x) => format!(
                        "{}: {:?} term {} last {} committed {} applied {}",
                        n.id,
                        x.role(),
                        x.term(),
                        x.last_index(),
                        x.commit_index(),
                        n.applied.len()
                    ),
                    None => format!("{}: down", n.id),
                })
                .collect();
            return Err(format!(
                "after settling, leaders: {leaders:?}; {}",
                states.join("; ")
            ));
        }
        let longest = self
            .nodes
            .iter()
            .map(|n| n.applied.len())
            .max()
            .unwrap_or(0);
        for n in &self.nodes {
            if n.applied.len() != longest {
                let (first, last) = {
                    let log = n.disk.live.core();
                    (log.first_index(), log.last_index())
                };
                return Err(format!(
                    "after settling, server {} applied {} entries, others {longest}; its log {}..={}, {:?}",
                    n.id,
                    n.applied.len(),
                    first,
                    last,
                    n.node.as_ref().map(|x| (
                        x.role(),
                        x.term(),
                        x.commit_index(),
                        x.persisted_index()
                    )),
                ) + &self
                    .nodes
                    .iter()
                    .map(|o| {
                        let log = o.disk.live.core();
                        format!(
                            "\n  server {}: log {}..={} {:?} {}",
                            o.id,
                            log.first_index(),
                            log.last_index(),
                            o.node
                                .as_ref()
                                .map(|x| (x.role(), x.term(), x.commit_index())),
                            o.node
                                .as_ref()
                                .map(|x| x.debug_progress())
                                .unwrap_or_default()
                        )
                    })
                    .collect::<String>());
            }
            self.history.holds_every_ack(n.id, &n.applied)?;
        }
        let first = self.nodes[0].machine.fingerprint();
        for n in &self.nodes[1..] {
            if n.machine.fingerprint() != first {
                return Err(format!(
                    "after settling, server {} holds a different tree than server 1",
                    n.id
                ));
            }
        }
        Ok(())
    }

    /// The fewest entries any observer has applied (0 without observers).
    pub(crate) fn least_applied_by_observers(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| self.observers.contains(&n.id))
            .map(|n| n.applied.len())
            .min()
            .unwrap_or(0)
    }

    pub(crate) fn acknowledged(&self) -> usize {
        self.history.acknowledged()
    }

    fn log(&mut self, line: String) {
        if self.trace.len() >= 60 {
            self.trace.remove(0);
        }
        self.trace.push(format!("#{} {line}", self.events));
    }

    fn crash(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        if n.node.take().is_none() {
            return;
        }
        n.disk.crash();
        n.applied = n.disk.durable.applied.clone();
        n.machine.crash();
        n.held.clear();
        n.unsynced = None;
        let id = n.id;
        self.log(format!("crash {id}"));
    }

    fn restart(&mut self, i: usize) -> Result<(), String> {
        if self.nodes[i].node.is_some() {
            return Ok(());
        }
        start(&mut self.nodes[i]);
        let id = self.nodes[i].id;
        self.log(format!("restart {id}"));
        self.drive(i)
    }

    /// Splits the servers into two random sides (replacing any partition):
    /// nothing crosses between them, or, `one_way`, only what the first
    /// side sends to the second gets through.
    fn partition(&mut self, one_way: bool) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for n in &self.nodes {
            if self.rng.below(2) == 0 {
                a.push(n.id);
            } else {
                b.push(n.id);
            }
        }
        self.cut.clear();
        for &x in &a {
            for &y in &b {
                self.cut.insert((y, x));
                if !one_way {
                    self.cut.insert((x, y));
                }
            }
        }
        let line = if one_way {
            format!("one-way partition: {a:?} reach {b:?}, not back")
        } else {
            format!("partition {a:?} | {b:?}")
        };
        self.log(line);
    }

    fn heal(&mut self) {
        self.cut.clear();
    }

    /// Server `i`'s clock changes speed.
    fn drift(&mut self, i: usize) {
        let speed = Clock::SPEEDS[self.rng.below(Clock::SPEEDS.len())];
        let n = &mut self.nodes[i];
        n.clock.speed = speed;
        let id = n.id;
        self.log(format!("{id}'s clock runs at {speed}/4 speed"));
    }

    /// A tick of the common clock: each server ticks as its clock says.
    fn tick_everywhere(&mut self) -> Result<(), String> {
        for i in 0..self.nodes.len() {
            for _ in 0..self.nodes[i].clock.advance() {
                self.tick(i)?;
            }
        }
        Ok(())
    }

    fn tick(&mut self, i: usize) -> Result<(), String> {
        let Some(node) = self.nodes[i].node.as_mut() else {
            return Ok(());
        };
        node.tick();
        self.drive(i)
    }

    /// A client write arrives at a random server; if it leads (and is
    /// ready), it prepares the write against its tree and pending writes,
    /// stamped with the zxid its proposal will take, and proposes it.
    fn propose(&mut self) -> Result<(), String> {
        let i = self.rng.below(self.nodes.len());
        let (session_id, request) = random_write(&mut self.rng);
        let time_ms = self.events as i64;
        let n = &mut self.nodes[i];
        let Some(node) = n.node.as_mut() else {
            return Ok(());
        };
        let Ok(next) = node.next_proposal() else {
            return Ok(());
        };
        let number = self.next_command;
        self.next_command += 1;
        let cxid = number as i32;
        let features = tree::Features::default();
        let ctx = tree::Context {
            session_id,
            cxid,
            zxid: next.zxid,
            time_ms,
            auth: &[],
            features: &features,
        };
        let txn = tree::prepare(&n.machine.tree, &mut n.machine.pending, &request, &ctx);
        let data = number.to_be_bytes().to_vec();
        node.propose(data.clone(), next)
            .map_err(|e| format!("server {}: a checked proposal was refused: {e}", n.id))?;
        let id = n.id;
        self.requests.insert(
            number,
            Prepared {
                request,
                session_id,
                cxid,
                time_ms,
                txn,
            },
        );
        self.history.proposed(id, data, next)?;
        self.log(format!(
            "{id} proposes request {number} at {} zxid {:#x}",
            next.index, next.zxid
        ));
        self.drive(i)
    }

    /// A client asks a random server for `sync`: a ReadIndex round.
    fn sync_request(&mut self) -> Result<(), String> {
        let i = self.rng.below(self.nodes.len());
        let Some(node) = self.nodes[i].node.as_mut() else {
            return Ok(());
        };
        let context = format!("sync {}", self.next_command).into_bytes();
        self.next_command += 1;
        let acked_before = self.history.last_acknowledged();
        if self.faults.sync_locally {
            let commit = node.commit_index();
            let id = self.nodes[i].id;
            return self.history.synced(id, commit, acked_before);
        }
        self.syncs.insert(context.clone(), acked_before);
        node.read_index(context);
        self.drive(i)
    }

    pub(crate) fn syncs_answered(&self) -> u64 {
        self.history.syncs()
    }

    fn deliver(&mut self) -> Result<(), String> {
        if self.network.is_empty() {
            return Ok(());
        }
        let i = self.rng.below(self.network.len());
        if self.rng.chance(self.faults.drop) {
            let m = self.network.swap_remove(i);
            return self.lost(&m);
        }
        let m = if self.rng.chance(self.faults.duplicate) {
            self.network[i].clone()
        } else {
            self.network.swap_remove(i)
        };
        if self.cut.contains(&(m.from, m.to)) {
            return self.lost(&m);
        }
        self.receive(m)
    }

    /// A message was lost. Between real servers that means the connection
    /// broke, which the sender's transport notices; for a snapshot it must
    /// tell raft, or the leader waits for the snapshot forever.
    fn lost(&mut self, m: &Message) -> Result<(), String> {
        if m.get_msg_type() != consensus::raft::eraftpb::MessageType::MsgSnapshot {
            return Ok(());
        }
        let Some(i) = self.nodes.iter().position(|n| n.id == m.from) else {
            return Ok(());
        };
        let Some(node) = self.nodes[i].node.as_mut() else {
            return Ok(());
        };
        node.report_snapshot_failed(m.to);
        self.drive(i)
    }

    fn receive(&mut self, m: Message) -> Result<(), String> {
        if !self.nodes.iter().any(|n| n.id == m.to && n.node.is_some()) {
            return self.lost(&m);
        }
        // Every message crosses the real peer encoding, as on a socket.
        let mut bytes = Vec::new();
        wire::encode_frame(&wire::Frame::Raft(Box::new(m)), &mut bytes);
        let m = match wire::decode_frame(&bytes[4..]) {
            Ok(wire::Frame::Raft(m)) => *m,
            other => return Err(format!("a message did not survive the wire: {other:?}")),
        };
        let Some(i) = self.nodes.iter().position(|n| n.id == m.to) else {
            return Ok(());
        };
        let Some(node) = self.nodes[i].node.as_mut() else {
            return Ok(());
        };
        let snapshot_from = (m.get_msg_type()
            == consensus::raft::eraftpb::MessageType::MsgSnapshot)
            .then_some((m.from, m.to));
        // A message raft refuses (from a stale term, say) is not a fault.
        let _ = node.step(m);
        self.drive(i)?;
        // The sender's transport wrote the snapshot out: it says so.
        if let Some((from, to)) = snapshot_from
            && let Some(s) = self.nodes.iter().position(|n| n.id == from)
            && let Some(sender) = self.nodes[s].node.as_mut()
        {
            sender.report_snapshot_sent(to);
            self.drive(s)?;
        }
        Ok(())
    }

    /// Server `i` compacts its log up to the last entry it applied,
    /// keeping a snapshot of its tree there.
    fn compact(&mut self, i: usize) -> Result<(), String> {
        let n = &mut self.nodes[i];
        if n.node.is_none() {
            return Ok(());
        }
        let Some(last) = n.applied.last() else {
            return Ok(());
        };
        let (index, term) = (last.index, last.term);
        let mut core = n.disk.live.core();
        if index <= core.first_index() {
            return Ok(());
        }
        if core.term(index) != Some(term) {
            return Err(format!(
                "server {}: applied entry {index} of term {term} is not in its log",
                n.id
            ));
        }
        match self.snapshots.get(&index) {
            Some((tree, _)) => {
                if crate::sim::machine::fingerprint(tree) != n.machine.fingerprint() {
                    return Err(format!(
                        "server {} at index {index} holds a different tree than another server had there",
                        n.id
                    ));
                }
            }
            None => {
                self.snapshots
                    .insert(index, (n.machine.tree.clone(), n.applied.clone()));
            }
        }
        let mut meta = SnapshotMetadata {
            index,
            term,
            ..SnapshotMetadata::default()
        };
        meta.set_conf_state(core.conf_state.clone());
        let mut snapshot = Snapshot::default();
        snapshot.set_metadata(meta);
        snapshot.data = index.to_be_bytes().to_vec().into();
        core.compact(snapshot);
        drop(core);
        let id = n.id;
        self.log(format!("{id} compacts through {index}"));
        Ok(())
    }

    /// A sync: everything written is durable; held messages go out.
    fn sync(&mut self, i: usize) -> Result<(), String> {
        let n = &mut self.nodes[i];
        let Some(node) = n.node.as_mut() else {
            return Ok(());
        };
        n.disk.sync(&n.applied);
        n.machine.sync();
        if let Some(number) = n.unsynced.take() {
            node.persisted(number);
        }
        self.network.append(&mut n.held);
        self.drive(i)
    }

    /// Handles every ready of server `i`, as the server's driver does.
    fn drive(&mut self, i: usize) -> Result<(), String> {
        loop {
            let n = &mut self.nodes[i];
            let Some(node) = n.node.as_mut() else {
                return Ok(());
            };
            let rd = match node.ready() {
                Ok(Some(rd)) => rd,
                Ok(None) => return Ok(()),
                Err(e) => return Err(format!("server {}: ready failed: {e}", n.id)),
            };
            self.network.extend(rd.messages);
            let installed = rd.snapshot.as_ref().map(|s| s.get_metadata().index);
            if let Some(snapshot) = rd.snapshot {
                // Catching up by snapshot: the tree as of its index.
                let index = snapshot.get_metadata().index;
                let Some((tree, applied)) = self.snapshots.get(&index) else {
                    return Err(format!("server {}: snapshot {index} is unknown", n.id));
                };
                n.machine.install(tree.clone());
                n.applied = applied.clone();
                let zxid = applied.last().map_or(0, |e| e.zxid);
                n.disk.live.core().install(snapshot);
                node.resume_zxids(index, zxid);
                let id = n.id;
                self.log(format!("{id} installs snapshot {index}"));
            }
            let n = &mut self.nodes[i];
            let Some(node) = n.node.as_mut() else {
                return Ok(());
            };
            {
                let mut core = n.disk.live.core();
                if let Some(hs) = rd.hard_state {
                    core.hard_state = hs;
                }
                core.append(&rd.entries)
                    .map_err(|e| format!("server {}: append: {e}", n.id))?;
            }
            node.appended(rd.number);
            n.unsynced = Some(rd.number);
            if self.faults.ack_before_sync {
                node.persisted(rd.number);
                self.network.extend(rd.persisted_messages);
            } else {
                n.held.extend(rd.persisted_messages);
            }
            if let Some(index) = installed {
                // A snapshot is synced at once, and only then counts as
                // applied (raft-rs: applied <= persisted). Nothing else
                // reaches the node in between, so it never sees a log that
                // starts after what it believes applied.
                n.disk.sync(&n.applied);
                n.machine.sync();
                node.persisted(rd.number);
                n.unsynced = None;
                self.network.append(&mut n.held);
                node.applied(index);
            }
            if rd.role_change.is_some() {
                // Prepared writes of a lost leadership are forgotten; those
                // that still commit are applied like anyone else's.
                n.machine.pending = tree::Pending::new();
            }
            if self.faults.apply_before_commit {
                self.apply_appended(i, &rd.entries)?;
            }
            let last_committed = rd.committed.last().map(|c| c.index);
            self.apply_committed(i, rd.committed)?;
            let n = &mut self.nodes[i];
            let Some(node) = n.node.as_mut() else {
                return Ok(());
            };
            if let Some(index) = last_committed {
                node.applied(index);
            }
            for read in rd.read_states {
                if let Some(acked_before) = self.syncs.remove(&read.request_ctx) {
                    self.history.synced(n.id, read.index, acked_before)?;
                }
            }
            if let Some(change) = rd.role_change {
                let id = n.id;
                if change.role == Role::Leader {
                    self.history.leader(id, change.term)?;
                }
                self.log(format!("{id} is {change:?}"));
            }
        }
    }

    /// Applies the entries raft-rs handed over as committed, in order.
    fn apply_committed(&mut self, i: usize, committed: Vec<Committed>) -> Result<(), String> {
        for c in committed {
            if self.faults.apply_before_commit && c.index <= self.last_applied(i) {
                // The broken server applied it when it was appended.
                continue;
            }
            let data = match c.kind {
                CommittedKind::Data(d) => d,
                CommittedKind::LeaderStart | CommittedKind::Membership { .. } => Vec::new(),
            };
            self.apply(
                i,
                AppliedEntry {
                    index: c.index,
                    term: c.term,
                    zxid: c.zxid,
                    data,
                },
            )?;
        }
        Ok(())
    }

    /// The broken server of [`Faults::apply_before_commit`]: every entry is
    /// applied as soon as it is written to the log, the next index after
    /// the last applied one (anything at or below counts as done), with the
    /// zxid a leader gives it (a transaction carries its own, a leader's
    /// first entry takes counter 0).
    fn apply_appended(&mut self, i: usize, entries: &[Entry]) -> Result<(), String> {
        for e in entries {
            if e.index != self.last_applied(i) + 1 {
                continue;
            }
            let data = e.data.to_vec();
            let zxid = if data.is_empty() {
                make_zxid(e.term, 0)
            } else {
                self.requests.get(&data)?.txn.zxid
            };
            self.apply(
                i,
                AppliedEntry {
                    index: e.index,
                    term: e.term,
                    zxid,
                    data,
                },
            )?;
        }
        Ok(())
    }

    fn last_applied(&self, i: usize) -> u64 {
        self.nodes[i].applied.last().map_or(0, |e| e.index)
    }

    /// Server `i`'s state machine applies `entry`: its transaction, if it
    /// has one, goes into the tree, and the history checks its place.
    fn apply(&mut self, i: usize, entry: AppliedEntry) -> Result<(), String> {
        self.held_by_voters(self.nodes[i].id, &entry)?;
        let n = &mut self.nodes[i];
        if !entry.data.is_empty() {
            let prepared = self.requests.get(&entry.data)?;
            if prepared.txn.zxid != entry.zxid {
                return Err(format!(
                    "server {}: entry {} has zxid {:#x}, its transaction {:#x}",
                    n.id, entry.index, entry.zxid, prepared.txn.zxid
                ));
            }
            n.machine.apply(n.id, entry.index, prepared)?;
        }
        self.history.applied(n.id, &n.applied, &entry)?;
        n.applied.push(entry);
        Ok(())
    }

    /// Committed means durable on a majority of the voters, whatever any
    /// server's commit index says: when a server applies an entry, a
    /// majority of the voters' disks (what survives a crash) must hold it,
    /// or have compacted past it (which a server does only to what it
    /// applied, itself checked here). Observers never count.
    fn held_by_voters(&self, id: u64, entry: &AppliedEntry) -> Result<(), String> {
        let holders: Vec<u64> = self
            .nodes
            .iter()
            .filter(|n| self.voters.contains(&n.id) && holds(&n.disk.durable.log, entry))
            .map(|n| n.id)
            .collect();
        if holders.len() * 2 > self.voters.len() {
            return Ok(());
        }
        Err(format!(
            "server {id} applied {entry:?}, which only voters {holders:?} of {:?} hold durably: it was never committed",
            self.voters
        ))
    }

    fn check(&mut self) -> Result<(), String> {
        for n in &self.nodes {
            if let Some(node) = &n.node {
                if self.observers.contains(&n.id) && node.role() != Role::Follower {
                    return Err(format!(
                        "server {} is an observer but is {:?} in term {}",
                        n.id,
                        node.role(),
                        node.term()
                    ));
                }
                if node.role() == Role::Leader {
                    self.history.leader(n.id, node.term())?;
                }
                if node.persisted_index() > node.last_index() {
                    return Err(format!("server {}: persisted beyond the log", n.id));
                }
            }
        }
        Ok(())
    }
}

/// Whether a durable log holds `entry`, or has compacted past it.
fn holds(log: &LogCore, entry: &AppliedEntry) -> bool {
    let compacted_through = log.first_index() - 1;
    entry.index < compacted_through || log.term(entry.index) == Some(entry.term)
}

/// (Re)starts a server from its disk, as the server binary does: the log
/// and hard state as stored, `applied` as the state machine stored it.
fn start(n: &mut SimNode) {
    let (applied_index, applied_zxid) = n.applied.last().map_or((0, 0), |e| (e.index, e.zxid));
    n.seed = n
        .seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1);
    let mut config = NodeConfig::new(n.id, ELECTION_TICKS, n.seed);
    config.heartbeat_ticks = 2;
    config.applied_index = applied_index;
    config.applied_zxid = applied_zxid;
    n.node = Some(Node::new(&config, n.disk.live.clone()).expect("a valid configuration"));
}

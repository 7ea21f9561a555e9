//! A whole ensemble in one thread: real `consensus::Node`s over simulated
//! disks and a simulated network, every event chosen by the seed.
//!
//! Faults: messages lost, duplicated and delivered in any order; partitions
//! that split the ensemble and heal, both ways or one way only (one side
//! hears the other but cannot answer); crashes that lose every write not
//! yet synced, and restarts; clocks that jitter (a lone server ticks now
//! and then) and drift (a server's clock runs at half, 1.5×, double or
//! triple speed until its next drift); log compaction. With a membership
//! plan, the leader of the moment also takes the plan's next change now
//! and then (`reconfig.rs`). After every event the invariants
//! (`invariants.rs`, `configs.rs`, and the durable-quorum, role and
//! configuration checks here) are checked.
//!
//! The initial members bootstrap from the same configuration with their
//! log's snapshot point at index 1, term 1, as the server does; joiners
//! start with nothing (see [`Disk::bootstrap`]).

use std::collections::{BTreeMap, BTreeSet};

use consensus::raft::eraftpb::{
    ConfChangeV2, ConfState, Entry, EntryType, Message, Snapshot, SnapshotMetadata,
};
use consensus::{Committed, CommittedKind, LogCore, Node, NodeConfig, Role, make_zxid, wire};

use crate::sim::configs::Configs;
use crate::sim::disk::{AppliedEntry, Disk};
use crate::sim::invariants::History;
use crate::sim::machine::{Machine, Prepared, Requests, random_write};
use crate::sim::membership::{Config, Plan};
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
    /// A deliberately broken bootstrap: the initial servers start at index
    /// 0 rather than 1, so a joiner (empty log, no configuration) is sent
    /// the whole log and replays its changes onto an empty configuration.
    pub(crate) bootstrap_at_zero: bool,
    /// A deliberately broken server: a change's configuration is stored
    /// when its entry is written, not when it is applied, so a restart
    /// runs with a change that may never commit.
    pub(crate) persist_conf_on_append: bool,
    /// A deliberately broken leader: all the steps toward a goal go into
    /// one change (raft-rs makes that a joint configuration).
    pub(crate) jump_to_goal: bool,
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
            bootstrap_at_zero: false,
            persist_conf_on_append: false,
            jump_to_goal: false,
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

pub(super) struct SimNode {
    pub(super) id: u64,
    pub(super) node: Option<Node<SimLog>>,
    pub(super) disk: Disk,
    pub(super) applied: Vec<AppliedEntry>,
    machine: Machine,
    /// Messages to send once the next sync covers them.
    pub(super) held: Vec<Message>,
    /// The highest ready number written and not yet synced.
    unsynced: Option<u64>,
    /// Seeds the server's election timeouts; a restart continues with a
    /// new seed drawn from it, as a restarted process would.
    seed: u64,
    /// The machine's clock, which keeps its speed across restarts.
    clock: Clock,
    /// The process was started: initial members from the beginning,
    /// joiners when a leader first proposes to add them. Only started
    /// servers crash and restart.
    pub(super) started: bool,
    /// It applied a configuration without itself and stopped for good
    /// (its disk stays, as a removed server's would).
    pub(super) retired: bool,
    /// It applied a configuration without itself during the current
    /// ready; it stops once that ready is handled.
    pub(super) retiring: bool,
    /// The term in which it last became leader as a voter: a leader
    /// demoted while leading (raft-rs keeps it leading) stays allowed in
    /// that term while it hands leadership over.
    pub(super) led_as_voter: Option<u64>,
    /// Not in the initial ensemble: it starts empty when a leader first
    /// proposes to add it.
    pub(super) joiner: bool,
    /// The last hand-over asked of it as leader: (term, successor).
    pub(super) handing_over: Option<(u64, u64)>,
    /// The applied index at which raft-rs's configuration was last found
    /// to be the one in force (reset at every start).
    conf_checked: Option<u64>,
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
    pub(super) faults: Faults,
    /// The initial observers (for the observer test's summary).
    observers: Vec<u64>,
    /// Every server that is ever a member, in id order: the initial ones,
    /// then any joiners of the plan.
    pub(super) nodes: Vec<SimNode>,
    pub(super) network: Vec<Message>,
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
    /// The configuration in force at each index, as applied.
    pub(crate) configs: Configs,
    /// The membership changes a scenario asks for, if any.
    pub(super) plan: Option<Plan>,
    pub(crate) membership: MembershipWork,
    /// The last events, printed when an invariant fails.
    pub(crate) trace: Vec<String>,
    /// Every event is also printed as it happens (`CONCLAVE_SIM_TRACE`
    /// set), to follow a replayed seed from its start.
    echo: bool,
    pub(crate) events: u64,
}

/// What the membership changes of a run did (for the test's summary).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MembershipWork {
    /// Changes a leader proposed (committed or not).
    pub(crate) proposed: usize,
    /// Leadership hand-overs asked for so that a leader can leave.
    pub(crate) transfers: usize,
    /// Joiners that started empty and caught up by a snapshot.
    pub(crate) joined_by_snapshot: usize,
    /// Servers that applied their own removal and stopped.
    pub(crate) retired: usize,
    /// Of those, servers that were leading then (they won an election
    /// while their removal was on its way).
    pub(crate) leaders_removed: usize,
    /// Leaders that applied their own demotion (raft-rs kept them leading
    /// until they handed over).
    pub(crate) leaders_demoted: usize,
}

impl Cluster {
    /// A fixed ensemble: `ensemble`'s voters and observers, no changes.
    pub(crate) fn new(seed: u64, ensemble: Ensemble, faults: Faults) -> Cluster {
        let voters = 1..=ensemble.voters;
        let observers = ensemble.voters + 1..=ensemble.voters + ensemble.observers;
        Cluster::build(seed, Config::new(voters, observers), None, faults)
    }

    /// An ensemble that starts as `plan.initial` and changes as the plan
    /// asks, while everything else goes on as in [`Cluster::new`].
    pub(crate) fn with_plan(seed: u64, plan: Plan, faults: Faults) -> Cluster {
        Cluster::build(seed, plan.initial.clone(), Some(plan), faults)
    }

    fn build(seed: u64, initial: Config, plan: Option<Plan>, faults: Faults) -> Cluster {
        let mut rng = Rng::new(seed);
        let voters: Vec<u64> = initial.voters.iter().copied().collect();
        let observers: Vec<u64> = initial.learners.iter().copied().collect();
        // What the servers are configured with; the invariants go by
        // `initial` whatever the servers believe.
        let conf = if faults.observers_vote {
            ConfState::from(([&voters[..], &observers[..]].concat(), Vec::new()))
        } else {
            initial.to_conf_state()
        };
        let bootstrap = if faults.bootstrap_at_zero { 0 } else { 1 };
        let mut servers = plan.as_ref().map(Plan::servers).unwrap_or_default();
        servers.extend(voters.iter().chain(&observers));
        let nodes: Vec<SimNode> = servers
            .iter()
            .map(|&id| {
                let seed = rng.next_u64();
                let member = initial.contains(id);
                let mut n = SimNode {
                    id,
                    node: None,
                    disk: if member {
                        Disk::bootstrap(&conf, bootstrap)
                    } else {
                        Disk::empty()
                    },
                    applied: Vec::new(),
                    machine: Machine::genesis(),
                    held: Vec::new(),
                    unsynced: None,
                    seed,
                    clock: Clock::TRUE,
                    started: member,
                    retired: false,
                    retiring: false,
                    led_as_voter: None,
                    joiner: !member,
                    handing_over: None,
                    conf_checked: None,
                };
                if member {
                    start(&mut n);
                }
                n
            })
            .collect();
        Cluster {
            rng,
            faults,
            cut: BTreeSet::new(),
            observers,
            nodes,
            network: Vec::new(),
            history: History::default(),
            next_command: 1,
            requests: Requests::default(),
            snapshots: BTreeMap::new(),
            syncs: BTreeMap::new(),
            configs: Configs::new(bootstrap, initial),
            plan,
            membership: MembershipWork::default(),
            trace: Vec::new(),
            echo: std::env::var_os("CONCLAVE_SIM_TRACE").is_some(),
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
        } else if pick(self.plan.as_ref().map_or(0, |p| p.pace)) {
            self.reconfigure()?;
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
            self.restart(i)?;
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

    /// The members agree and hold every acknowledged write: one leader
    /// among the running servers, a voter, and every member of its
    /// configuration running and applied as far, with the same tree.
    /// Servers outside that configuration (removed, or joiners whose
    /// addition never committed) take no part.
    pub(crate) fn check_settled(&self) -> Result<(), String> {
        let leaders: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i]
                    .node
                    .as_ref()
                    .is_some_and(|x| x.role() == Role::Leader)
            })
            .collect();
        let [leader] = leaders[..] else {
            let ids: Vec<u64> = leaders.iter().map(|&i| self.nodes[i].id).collect();
            let states: Vec<String> = self
                .nodes
                .iter()
                .map(|n| match &n.node {
                    Some(x) => format!(
                        "{}: {:?} term {} last {} committed {} applied {} conf {}",
                        n.id,
                        x.role(),
                        x.term(),
                        x.last_index(),
                        x.commit_index(),
                        n.applied.len(),
                        Config::of(&x.conf_state())
                    ),
                    None if n.retired => format!("{}: removed", n.id),
                    None if !n.started => format!("{}: never started", n.id),
                    None => format!("{}: down", n.id),
                })
                .collect();
            return Err(format!(
                "after settling, leaders: {ids:?}; {}",
                states.join("; ")
            ));
        };
        let members = match &self.nodes[leader].node {
            Some(x) => Config::of(&x.conf_state()),
            None => Config::default(),
        };
        if !members.is_voter(self.nodes[leader].id) {
            return Err(format!(
                "after settling, server {} leads but is not a voter of {members}",
                self.nodes[leader].id
            ));
        }
        let members: Vec<&SimNode> = self
            .nodes
            .iter()
            .filter(|n| members.contains(n.id))
            .collect();
        let longest = members.iter().map(|n| n.applied.len()).max().unwrap_or(0);
        for n in &members {
            if n.node.is_none() {
                return Err(format!(
                    "after settling, member {} is not running (retired: {})",
                    n.id, n.retired
                ));
            }
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
        let first = &members[0];
        for n in &members[1..] {
            if n.machine.fingerprint() != first.machine.fingerprint() {
                return Err(format!(
                    "after settling, server {} holds a different tree than server {}",
                    n.id, first.id
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

    pub(super) fn log(&mut self, line: String) {
        if self.trace.len() >= 60 {
            self.trace.remove(0);
        }
        let line = format!("#{} {line}", self.events);
        if self.echo {
            eprintln!("{line}");
        }
        self.trace.push(line);
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

    pub(super) fn restart(&mut self, i: usize) -> Result<(), String> {
        let n = &self.nodes[i];
        if n.node.is_some() || !n.started || n.retired {
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

    /// Server `i` compacts its log up to the last entry it applied. As on
    /// the server, the compaction point carries no state: a laggard is
    /// sent a snapshot made for it on demand ([`Cluster::offer_snapshot`]).
    /// The tree at that index is still remembered, to check that every
    /// server held the same one there.
    fn compact(&mut self, i: usize) -> Result<(), String> {
        if self.nodes[i].node.is_none() {
            return Ok(());
        }
        let Some(last) = self.nodes[i].applied.last() else {
            return Ok(());
        };
        let (index, term) = (last.index, last.term);
        let n = &self.nodes[i];
        let conf = {
            let core = n.disk.live.core();
            if index <= core.first_index() {
                return Ok(());
            }
            if core.term(index) != Some(term) {
                return Err(format!(
                    "server {}: applied entry {index} of term {term} is not in its log",
                    n.id
                ));
            }
            core.conf_state.clone()
        };
        self.remember_state(i, index)?;
        let mut meta = SnapshotMetadata {
            index,
            term,
            ..SnapshotMetadata::default()
        };
        meta.set_conf_state(conf);
        let mut point = Snapshot::default();
        point.set_metadata(meta);
        let n = &mut self.nodes[i];
        n.disk.live.core().compact(point);
        let id = n.id;
        self.log(format!("{id} compacts through {index}"));
        Ok(())
    }

    /// Records server `i`'s state machine as the one at `index` (its last
    /// applied), or checks it against the one recorded there before.
    fn remember_state(&mut self, i: usize, index: u64) -> Result<(), String> {
        let n = &self.nodes[i];
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
        Ok(())
    }

    /// raft-rs on server `i` wants a snapshot to send and has none at
    /// hand: the driver makes one of its state machine as applied, with
    /// the configuration in force there, as the server does.
    fn offer_snapshot(&mut self, i: usize) -> Result<(), String> {
        let index = applied_index(&self.nodes[i]);
        let (term, conf) = {
            let core = self.nodes[i].disk.live.core();
            (core.term(index), core.conf_state.clone())
        };
        let Some(term) = term else {
            return Ok(());
        };
        self.remember_state(i, index)?;
        let mut meta = SnapshotMetadata {
            index,
            term,
            ..SnapshotMetadata::default()
        };
        meta.set_conf_state(conf);
        let mut snapshot = Snapshot::default();
        snapshot.set_metadata(meta);
        snapshot.data = index.to_be_bytes().to_vec().into();
        let n = &mut self.nodes[i];
        n.disk.live.core().offer_snapshot(snapshot);
        let id = n.id;
        self.log(format!("{id} offers a snapshot at {index}"));
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
    pub(super) fn drive(&mut self, i: usize) -> Result<(), String> {
        let mut housekept = false;
        loop {
            if self.nodes[i].retiring {
                self.retire(i);
                return Ok(());
            }
            let n = &mut self.nodes[i];
            let Some(node) = n.node.as_mut() else {
                return Ok(());
            };
            let rd = match node.ready() {
                Ok(Some(rd)) => rd,
                Ok(None) if housekept => return Ok(()),
                Ok(None) => {
                    // Between rounds, as the server's loop does: a snapshot
                    // raft-rs asked for, a leader that must hand over.
                    housekept = true;
                    if n.disk.live.core().snapshot_wanted() {
                        self.offer_snapshot(i)?;
                    }
                    self.hand_over_if_not_a_voter(i);
                    continue;
                }
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
                self.configs
                    .installed(n.id, index, snapshot.get_metadata().get_conf_state())?;
                if n.joiner && n.applied.is_empty() {
                    self.membership.joined_by_snapshot += 1;
                }
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
                if self.faults.persist_conf_on_append {
                    store_conf_on_append(&mut core, &rd.entries);
                }
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
                    // Only a voter wins an election (an observer never
                    // does, nor a server demoted or not yet promoted).
                    let in_force = self.configs.at(applied_index(n));
                    if !in_force.is_voter(id) {
                        return Err(format!(
                            "server {id} became leader in term {} but is no voter of {in_force}",
                            change.term
                        ));
                    }
                    n.led_as_voter = Some(change.term);
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
            let entry = |data| AppliedEntry {
                index: c.index,
                term: c.term,
                zxid: c.zxid,
                data,
            };
            match c.kind {
                CommittedKind::Data(d) => self.apply(i, entry(d), false)?,
                CommittedKind::LeaderStart => self.apply(i, entry(Vec::new()), false)?,
                CommittedKind::Membership { conf, context } => {
                    self.apply(i, entry(Vec::new()), true)?;
                    self.apply_membership(i, c.index, &conf, &context)?;
                }
            }
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
                false,
            )?;
        }
        Ok(())
    }

    fn last_applied(&self, i: usize) -> u64 {
        self.nodes[i].applied.last().map_or(0, |e| e.index)
    }

    /// Server `i`'s state machine applies `entry`: its transaction, if it
    /// has one, goes into the tree, and the history checks its place.
    /// `change`: the entry is a membership change.
    fn apply(&mut self, i: usize, entry: AppliedEntry, change: bool) -> Result<(), String> {
        self.held_by_quorum(self.nodes[i].id, &entry, change)?;
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

    /// Committed means durable on a quorum, whatever any server's commit
    /// index says: when a server applies an entry, the synced logs of a
    /// majority of the voters of a configuration that may have committed
    /// it ([`Configs::committers`]: for a membership change, the
    /// configuration it changes) must hold it, or have compacted past it
    /// (which a server does only to what it applied, itself checked here).
    /// Learners never count, nor joiners before their promotion. The
    /// configurations are the ones the changes really made, whatever the
    /// servers believe.
    fn held_by_quorum(&self, id: u64, entry: &AppliedEntry, change: bool) -> Result<(), String> {
        let holders: BTreeSet<u64> = self
            .nodes
            .iter()
            .filter(|n| holds(&n.disk.durable.log, entry))
            .map(|n| n.id)
            .collect();
        let committers = self.configs.committers(entry.index, change);
        if committers.iter().any(|(_, c)| c.is_quorum(&holders)) {
            return Ok(());
        }
        let configs: Vec<String> = committers
            .iter()
            .map(|(from, c)| format!("{c} (in force from index {from})"))
            .collect();
        Err(format!(
            "server {id} applied {}{entry:?}, which only {holders:?} hold durably, no quorum of {}: it was never committed",
            if change { "the membership change " } else { "" },
            configs.join(" or ")
        ))
    }

    /// The invariants on each running server's state, after every event.
    fn check(&mut self) -> Result<(), String> {
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            let Some(node) = &n.node else {
                continue;
            };
            let term = node.term();
            let applied = applied_index(n);
            // Roles by the configuration really in force at what the
            // server applied: only voters campaign; a leader is a voter,
            // or was one when it won this term (raft-rs keeps a leader
            // that its own change demoted leading; it hands over).
            let role = node.role();
            let voter = role == Role::Follower || self.configs.is_voter_at(applied, n.id);
            match role {
                Role::PreCandidate | Role::Candidate if !voter => {
                    return Err(format!(
                        "server {} is {role:?} in term {term} but no voter of {}",
                        n.id,
                        self.configs.at(applied)
                    ));
                }
                Role::Leader if !voter && n.led_as_voter != Some(term) => {
                    return Err(format!(
                        "server {} leads in term {term} but is no voter of {}",
                        n.id,
                        self.configs.at(applied)
                    ));
                }
                _ => {}
            }
            if role == Role::Leader {
                self.history.leader(n.id, term)?;
                self.one_change_at_a_time(n)?;
            }
            if node.persisted_index() > node.last_index() {
                return Err(format!("server {}: persisted beyond the log", n.id));
            }
            // The configuration raft-rs runs is the one the server's
            // applied log prefix makes (a misconfigured ensemble runs
            // another on purpose; a joiner with nothing yet has none).
            // It changes only with what the server applied, or at a
            // restart, so it is compared once per applied index.
            if n.conf_checked == Some(applied) || self.faults.observers_vote {
                continue;
            }
            let running = Config::of(&node.conf_state());
            let in_force = self.configs.at(applied);
            let blank = running.is_empty() && n.applied.is_empty();
            if !blank && running != in_force {
                return Err(format!(
                    "server {} runs with {running}, but {in_force} is in force at its applied index {applied}",
                    n.id
                ));
            }
            self.nodes[i].conf_checked = Some(applied);
        }
        Ok(())
    }

    /// A leader's log holds at most one membership change it has not
    /// applied.
    fn one_change_at_a_time(&self, n: &SimNode) -> Result<(), String> {
        let applied = applied_index(n);
        let core = n.disk.live.core();
        // Only the entries past the applied index (few) are looked at.
        let skip =
            usize::try_from((applied + 1).saturating_sub(core.first_index())).unwrap_or(usize::MAX);
        let pending: Vec<u64> = core
            .entries
            .iter()
            .skip(skip)
            .filter(|e| e.index > applied && is_membership(e))
            .map(|e| e.index)
            .collect();
        drop(core);
        if pending.len() > 1 {
            return Err(format!(
                "leader {} holds membership changes at {pending:?} past its applied index {applied}",
                n.id
            ));
        }
        Ok(())
    }
}

/// The last index server `n`'s state machine applied: its last applied
/// entry, or its log's snapshot point (the bootstrap index, or 0 for a
/// joiner with nothing yet).
pub(super) fn applied_index(n: &SimNode) -> u64 {
    n.applied
        .last()
        .map_or_else(|| n.disk.live.core().first_index() - 1, |e| e.index)
}

fn is_membership(e: &Entry) -> bool {
    matches!(
        e.get_entry_type(),
        EntryType::EntryConfChange | EntryType::EntryConfChangeV2
    )
}

/// The broken server of [`Faults::persist_conf_on_append`]: the
/// configuration a change describes is stored as soon as its entry is
/// written (raft-rs itself still switches when it applies the change).
fn store_conf_on_append(core: &mut LogCore, entries: &[Entry]) {
    use protobuf::Message as _;
    for e in entries.iter().filter(|e| is_membership(e)) {
        let mut cc = ConfChangeV2::default();
        if cc.merge_from_bytes(&e.data).is_err() {
            continue;
        }
        if let Ok(described) = Config::decode(&cc.context) {
            core.conf_state = described.to_conf_state();
        }
    }
}

/// Whether a durable log holds `entry`, or has compacted past it.
fn holds(log: &LogCore, entry: &AppliedEntry) -> bool {
    let compacted_through = log.first_index() - 1;
    entry.index < compacted_through || log.term(entry.index) == Some(entry.term)
}

/// (Re)starts a server from its disk, as the server binary does: the log
/// and hard state as stored, `applied` as the state machine stored it.
pub(super) fn start(n: &mut SimNode) {
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
    n.conf_checked = None;
}

//! A whole ensemble in one thread: every server runs the driver that ships
//! over a simulated disk and network, every event is chosen by the seed,
//! and the checks (`checks.rs`, `configs.rs`) run after every event.
//!
//! Events: a message delivered (or lost, duplicated, held back), a
//! server's log writer syncing, ticks (everywhere at each server's clock
//! speed, or a lone one), a client operation started, and the faults
//! (`faults.rs`): crashes and restarts, partitions and heals, clock drift,
//! pauses, lost and corrupted disks, stale or wrong zoo.cfg, and, with a
//! plan, membership changes racing all of them.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use consensus::driver::{MembershipOp, Notice, SnapshotId, StandingKind};
use consensus::membership::{Member, MemberRole, Membership};
use consensus::raft::eraftpb::EntryType;
use consensus::random::SplitMix;
use consensus::{Role, make_zxid};

use crate::checks::{AppliedEntry, Checks};
use crate::configs::{Config, Configs};
use crate::faults::Faults;
use crate::machine::{Event, Registry};
use crate::net::{Body, Envelope, Network};
use crate::plans::Plan;
use crate::server::{Clock, ELECTION_TICKS, Server};
use crate::workload::{Action, Workload};
use storage::image::ImageDir;

/// Who is in the ensemble at the start: voters with ids `1..=voters`, then
/// observers.
#[derive(Debug, Clone, Copy)]
pub struct Ensemble {
    pub voters: u64,
    pub observers: u64,
}

impl Ensemble {
    pub fn voters(voters: u64) -> Ensemble {
        Ensemble {
            voters,
            observers: 0,
        }
    }

    pub fn with_observers(self, observers: u64) -> Ensemble {
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

/// What a run's faults and changes did, for the summaries.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunStats {
    pub crashes: u64,
    pub partitions: u64,
    pub pauses: u64,
    pub lost_disks: u64,
    pub corrupt_disks: u64,
    pub stale_configs: u64,
    /// Members that lost their disk and were taken back.
    pub restored: u64,
    /// Joiners (started empty) that became members.
    pub joined: u64,
    /// Membership changes asked of a leader, and committed.
    pub changes_asked: u64,
    pub messages: u64,
    /// Chunks of snapshot images delivered, and lost on the way.
    pub image_chunks: u64,
    pub image_chunks_lost: u64,
    /// Chunks sent again (after a gap, a stall or a broken connection).
    pub image_chunks_resent: u64,
    /// Transfers a receiver saw replaced by another image before it had
    /// the first whole (a new leader, or a new image).
    pub images_superseded: u64,
    /// Crashes of a server holding a partly received image.
    pub crashes_mid_image: u64,
    /// Crashes of a leader while it was sending an image.
    pub crashes_sending_image: u64,
}

/// Events a client waits for an answer before it gives up on it (about
/// forty election timeouts).
const CLIENT_PATIENCE: u64 = 4000;

/// The address every simulated server has.
pub fn member(id: u64, role: MemberRole) -> Member {
    Member {
        id,
        host: format!("s{id}"),
        quorum_port: 2888,
        election_port: 3888,
        role,
        client: None,
    }
}

fn members_of(config: &Config) -> Vec<Member> {
    let mut out: Vec<Member> = config
        .voters
        .iter()
        .map(|&id| member(id, MemberRole::Participant))
        .chain(
            config
                .learners
                .iter()
                .map(|&id| member(id, MemberRole::Observer)),
        )
        .collect();
    out.sort_by_key(|m| m.id);
    out
}

pub struct Cluster {
    pub rng: SplitMix,
    pub faults: Faults,
    /// By id − 1: every server that is ever a member.
    pub servers: Vec<Server>,
    outbox: Rc<RefCell<Vec<Envelope>>>,
    network: Network,
    registry: Registry,
    clock: Rc<Cell<i64>>,
    pub workload: Workload,
    pub checks: Checks,
    plan: Option<Plan>,
    /// The admin request a leader is working on: (ticket, server).
    asked: Option<(u64, u64)>,
    next_ticket: u64,
    /// Lost or corrupted disks whose servers have not rejoined yet.
    disks_out: BTreeSet<u64>,
    /// What lost disks held when they were lost: an entry a member
    /// acknowledged before its disk was lost was durable on it when it was
    /// counted toward a quorum (the leader may commit with that
    /// acknowledgement a moment later).
    lost_stores: Vec<(u64, storage::memory::MemoryStore)>,
    /// The term in which each server last became leader as a voter.
    led_as_voter: BTreeMap<u64, u64>,
    pub stats: RunStats,
    /// Per receiver, the image it was last sent a chunk of and how far
    /// that chunk reached.
    receiving: BTreeMap<u64, (SnapshotId, u64)>,
    /// The last events, printed when a check fails.
    pub trace: Vec<String>,
    echo: bool,
    /// Every applied entry and outcome is traced too
    /// (`CONCLAVE_SIM_TRACE=2`).
    verbose: bool,
    pub events: u64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("events", &self.events)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    pub fn new(seed: u64, ensemble: Ensemble, faults: Faults) -> Cluster {
        let initial = Config::new(
            1..=ensemble.voters,
            ensemble.voters + 1..=ensemble.voters + ensemble.observers,
        );
        Cluster::build(seed, initial, None, faults)
    }

    pub fn with_plan(seed: u64, plan: Plan, faults: Faults) -> Cluster {
        Cluster::build(seed, plan.initial.clone(), Some(plan), faults)
    }

    fn build(seed: u64, initial: Config, plan: Option<Plan>, faults: Faults) -> Cluster {
        let mut rng = SplitMix::new(seed ^ 0x5eed);
        // What the servers are configured with; the checks go by `initial`
        // whatever the servers believe.
        let configured_roles = if faults.observers_vote {
            Config::new(initial.voters.iter().chain(&initial.learners).copied(), [])
        } else {
            initial.clone()
        };
        let configured = members_of(&configured_roles);
        let mut ids: BTreeSet<u64> = plan.as_ref().map(Plan::servers).unwrap_or_default();
        ids.extend(initial.voters.iter().chain(&initial.learners));
        let max = ids.iter().copied().max().unwrap_or(0);
        let servers = (1..=max)
            .map(|id| {
                let role = if configured_roles.is_voter(id) {
                    MemberRole::Participant
                } else {
                    MemberRole::Observer
                };
                Server::new(member(id, role), configured.clone(), rng.next_u64())
            })
            .collect();
        let registry: Registry = Rc::new(RefCell::new(BTreeMap::new()));
        let mut cluster = Cluster {
            rng,
            servers,
            outbox: Rc::new(RefCell::new(Vec::new())),
            network: Network::default(),
            workload: Workload::new(6, registry.clone()),
            registry,
            clock: Rc::new(Cell::new(0)),
            checks: Checks::new(Configs::new(
                if faults.driver.bootstrap_at_zero {
                    0
                } else {
                    1
                },
                initial.clone(),
            )),
            plan,
            asked: None,
            next_ticket: 1,
            disks_out: BTreeSet::new(),
            lost_stores: Vec::new(),
            led_as_voter: BTreeMap::new(),
            stats: RunStats::default(),
            receiving: BTreeMap::new(),
            trace: Vec::new(),
            echo: std::env::var_os("CONCLAVE_SIM_TRACE").is_some(),
            verbose: std::env::var("CONCLAVE_SIM_TRACE").is_ok_and(|v| v == "2"),
            events: 0,
            faults,
        };
        for id in initial.voters.iter().chain(&initial.learners) {
            let i = (*id - 1) as usize;
            if let Err(e) = cluster.start(i) {
                cluster.log(format!("{id} refused to start: {e}"));
            }
        }
        cluster
    }

    /// One event chosen by the seed, then the checks.
    pub fn step(&mut self) -> Result<(), String> {
        self.events += 1;
        self.clock.set(self.events as i64);
        self.workload.now = self.events;
        self.workload.time_out(CLIENT_PATIENCE)?;
        let f = self.faults.clone();
        let roll = self.rng.below(1000);
        let mut at = 0;
        let mut pick = |rate: u64| {
            at += rate;
            roll < at
        };
        let n = self.servers.len() as u64;
        let i = self.rng.below(n) as usize;
        if pick(f.crash) {
            // A removed server does not start again: its crash is a loss
            // for good, within the budget of servers without their state.
            if !self.is_removed(i) || self.stateless_others(i) < self.faults.max_lost_disks {
                self.crash(i)?;
            }
        } else if pick(f.restart) {
            self.restart(i)?;
        } else if pick(f.partition) {
            self.partition(false);
        } else if pick(f.one_way) {
            self.partition(true);
        } else if pick(f.heal) {
            self.network.cut.clear();
        } else if pick(f.drift) {
            let speed = Clock::SPEEDS[self.rng.below(Clock::SPEEDS.len() as u64) as usize];
            self.servers[i].clock.speed = speed;
            self.log(format!("{}'s clock runs at {speed}/4 speed", i + 1));
        } else if pick(f.lose_disk) {
            self.lose_disk(i)?;
        } else if pick(f.corrupt_disk) {
            self.corrupt_disk(i)?;
        } else if pick(f.stale_config) {
            self.stale_config(i)?;
        } else if pick(f.pause) {
            self.pause(i);
        } else if pick(self.plan.as_ref().map_or(0, |p| p.pace)) {
            self.reconfigure()?;
        } else if pick(120) {
            self.client_op()?;
        } else if pick(150) {
            // A log writer with work takes its turn (a real one syncs as
            // soon as it has something).
            let busy: Vec<usize> = (0..self.servers.len())
                .filter(|&j| self.servers[j].disk.has_queued())
                .collect();
            let j = if busy.is_empty() {
                i
            } else {
                busy[self.rng.below(busy.len() as u64) as usize]
            };
            self.sync(j)?;
        } else if pick(60) {
            self.tick_everywhere()?;
        } else if pick(30) {
            self.tick(i)?;
        } else {
            self.deliver()?;
        }
        self.check()
    }

    /// Heals everything (the operator fixes configurations and empties
    /// corrupted stores), restarts every server, and runs rounds of a good
    /// network until the ensemble has settled; then reads every key and
    /// session through the leader.
    pub fn settle(&mut self, rounds: u64) -> Result<(), String> {
        self.faults = Faults {
            driver: self.faults.driver,
            ack_before_sync: self.faults.ack_before_sync,
            sync_locally: self.faults.sync_locally,
            reopen_locally: self.faults.reopen_locally,
            apply_before_commit: self.faults.apply_before_commit,
            observers_vote: self.faults.observers_vote,
            ..Faults::none()
        };
        self.network.cut.clear();
        for i in 0..self.servers.len() {
            self.servers[i].paused_until = None;
            self.servers[i].clock = Clock::TRUE;
            let s = &self.servers[i];
            let removed = s
                .running
                .as_ref()
                .is_some_and(|r| r.driver.standing() == consensus::driver::StandingKind::Removed);
            if !removed && (s.my_id != s.id || s.configured != s.intended) {
                // The operator puts the right zoo.cfg and myid back (not
                // for a removed server: no member to render a zoo.cfg
                // for; it runs until it is stopped).
                self.crash(i)?;
                self.fix_config(i);
            }
            if self.servers[i].disk.state().corrupt {
                // The documented way back: empty the store; it rejoins.
                // What it acknowledged before stays a fact of its moment.
                let emptied = self.servers[i].disk.state().store.clone();
                self.lost_stores.push((self.servers[i].id, emptied));
                self.servers[i].disk.lose();
                self.operator_renders_zoo_cfg(i);
                self.log(format!("operator empties {}'s corrupted store", i + 1));
            }
            if self.servers[i].started && !self.servers[i].is_running() {
                self.restart(i)?;
            }
        }
        let mut settled = false;
        for _ in 0..rounds {
            self.round()?;
            self.check()?;
            if self.check_settled().is_ok() {
                settled = true;
                break;
            }
        }
        if !settled {
            return self.check_settled();
        }
        self.final_reads(rounds)
    }

    /// One round of a good network: a tick everywhere, then every message
    /// delivered (in a seeded order) and every disk synced, until quiet.
    fn round(&mut self) -> Result<(), String> {
        self.events += 1;
        self.clock.set(self.events as i64);
        self.workload.now = self.events;
        self.workload.time_out(CLIENT_PATIENCE)?;
        for i in 0..self.servers.len() {
            self.tick(i)?;
        }
        for _ in 0..30 {
            for i in 0..self.servers.len() {
                self.sync(i)?;
            }
            if self.network.in_flight.is_empty() {
                break;
            }
            while !self.network.in_flight.is_empty() {
                let k = self.rng.below(self.network.in_flight.len() as u64) as usize;
                let envelope = self.network.in_flight.swap_remove(k);
                self.receive(envelope)?;
            }
        }
        Ok(())
    }

    /// Reads every key and every session through the leader (each a
    /// ReadIndex round), so the history ends with what the ensemble holds.
    fn final_reads(&mut self, rounds: u64) -> Result<(), String> {
        let Some(leader) = self.leader_now() else {
            return Err("no leader for the final reads".into());
        };
        let leader_id = self.servers[leader].id;
        let verifier = self.workload.verifier();
        for key in 0..self.workload.final_reads() {
            let mut done = false;
            for _ in 0..rounds {
                if self.workload.idle(verifier) {
                    if done {
                        break;
                    }
                    let Some(action) = self.workload.final_read(verifier, leader_id, key) else {
                        break;
                    };
                    self.perform(leader, action)?;
                    done = true;
                }
                self.round()?;
            }
            if !self.workload.idle(verifier) {
                return Err(format!("the final read of key {key} was never answered"));
            }
        }
        Ok(())
    }

    /// The members agree and hold every acknowledged write: one leader
    /// among the running servers, a voter, and every member of its
    /// configuration running, a member again (restored), applied as far,
    /// with the same tree.
    pub fn check_settled(&self) -> Result<(), String> {
        let leaders: Vec<usize> = (0..self.servers.len())
            .filter(|&i| self.driver_role(i) == Some(Role::Leader))
            .collect();
        let [leader] = leaders[..] else {
            return Err(format!(
                "after settling, leaders: {:?}; {}",
                leaders.iter().map(|i| i + 1).collect::<Vec<_>>(),
                self.describe()
            ));
        };
        let Some(running) = &self.servers[leader].running else {
            return Err("the leader is not running".into());
        };
        let conf = Config::of(&running.driver.node().conf_state());
        let leader_id = self.servers[leader].id;
        if !conf.is_voter(leader_id) {
            return Err(format!(
                "after settling, server {leader_id} leads but is not a voter of {conf}"
            ));
        }
        let applied = running.driver.applied_index();
        let fingerprint = fingerprint(&running.machine.tree);
        for s in &self.servers {
            if !conf.contains(s.id) {
                continue;
            }
            let Some(r) = &s.running else {
                return Err(format!(
                    "after settling, member {} is not running ({:?}); {}",
                    s.id,
                    s.refused,
                    self.describe()
                ));
            };
            if r.driver.standing() != StandingKind::Member {
                return Err(format!(
                    "after settling, member {} is {:?}; {}",
                    s.id,
                    r.driver.standing(),
                    self.describe()
                ));
            }
            if r.driver.applied_index() != applied {
                return Err(format!(
                    "after settling, server {} applied {}, the leader {applied}; {}",
                    s.id,
                    r.driver.applied_index(),
                    self.describe()
                ));
            }
            let theirs = self::fingerprint(&r.machine.tree);
            if theirs != fingerprint {
                let differ: Vec<String> = theirs
                    .iter()
                    .zip(&fingerprint)
                    .filter(|(a, b)| a != b)
                    .take(3)
                    .map(|(a, b)| format!("{a:?} vs the leader's {b:?}"))
                    .collect();
                return Err(format!(
                    "after settling, server {} holds a different tree than the leader ({} nodes vs {}): {}",
                    s.id,
                    theirs.len(),
                    fingerprint.len(),
                    differ.join("; ")
                ));
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        self.servers
            .iter()
            .map(|s| match &s.running {
                Some(r) => {
                    let node = r.driver.node();
                    format!(
                        "\n  {}: {:?} {:?} term {} last {} commit {} applied {} conf {}",
                        s.id,
                        r.driver.standing(),
                        node.role(),
                        node.term(),
                        node.last_index(),
                        node.commit_index(),
                        r.driver.applied_index(),
                        Config::of(&node.conf_state())
                    )
                }
                None if !s.started => format!("\n  {}: never started", s.id),
                None => format!("\n  {}: down ({:?})", s.id, s.refused),
            })
            .collect()
    }

    pub fn log(&mut self, line: String) {
        if self.trace.len() >= 80 {
            self.trace.remove(0);
        }
        let line = format!("#{} {line}", self.events);
        if self.echo {
            eprintln!("{line}");
        }
        self.trace.push(line);
    }

    fn driver_role(&self, i: usize) -> Option<Role> {
        self.servers[i]
            .running
            .as_ref()
            .map(|r| r.driver.node().role())
    }

    /// The running server that leads in the highest term, if any.
    fn leader_now(&self) -> Option<usize> {
        (0..self.servers.len())
            .filter(|&i| !self.servers[i].is_paused(self.events))
            .filter_map(|i| {
                let r = self.servers[i].running.as_ref()?;
                (r.driver.is_leader()).then_some((r.driver.node().term(), i))
            })
            .max()
            .map(|(_, i)| i)
    }

    // ---- servers' lives ----

    fn start(&mut self, i: usize) -> Result<(), String> {
        let faults = self.faults.driver;
        let lies = self.faults.ack_before_sync;
        let capture = self.faults.apply_before_commit;
        {
            let mut disk = self.servers[i].disk.state();
            disk.lies = lies;
            disk.capture_appends = capture;
        }
        // What its previous life sent and is still on its way is never
        // delivered now: a receiver drops a connection once the same
        // server connects again (`server::peers`), so no acknowledgement
        // of entries a lost disk took away counts after the restart.
        let id = self.servers[i].id;
        self.network.in_flight.retain(|e| e.from != id);
        let result = self.servers[i].start(&self.outbox, &self.registry, &self.clock, faults);
        if let Some(r) = &self.servers[i].running {
            let (index, zxid) = {
                let meta = storage::Store::meta(&self.servers[i].disk);
                (meta.applied_index, meta.applied_zxid)
            };
            let _ = r;
            self.checks.resumed(self.servers[i].id, index, zxid);
            self.settle_server(i)?;
        }
        result
    }

    fn crash(&mut self, i: usize) -> Result<(), String> {
        let was_removed = self.is_removed(i);
        let sending = self.servers[i]
            .running
            .as_ref()
            .is_some_and(|r| r.driver.images_being_sent() > 0);
        self.stats.crashes_sending_image += u64::from(sending);
        if self.servers[i].running.take().is_none() {
            return Ok(());
        }
        if was_removed {
            // It will not start again (until it is added back empty): it
            // counts as without its state from now on.
            self.servers[i].refused = Some("removed".into());
        }
        let staged = self.servers[i]
            .disk
            .images()
            .names()
            .is_ok_and(|names| names.iter().any(|n| n.starts_with("staged-")));
        self.stats.crashes_mid_image += u64::from(staged);
        let unsynced = self.servers[i].disk.unsynced() as u64;
        let kept = self.rng.below(unsynced + 1) as usize;
        self.servers[i].disk.crash(kept);
        self.servers[i].paused_until = None;
        let id = self.servers[i].id;
        self.stats.crashes += 1;
        self.log(format!(
            "crash {id} (kept {kept} of {unsynced} unsynced writes)"
        ));
        self.workload.server_lost(id)?;
        // What was on its way to it dies with its connections (its senders
        // see them break): a process started again gets only what is sent
        // to it after it starts.
        let (dead, alive) = std::mem::take(&mut self.network.in_flight)
            .into_iter()
            .partition(|e| e.to == id);
        self.network.in_flight = alive;
        for envelope in dead {
            self.lost(envelope, true)?;
        }
        if self.asked.is_some_and(|(_, s)| s == id) {
            self.asked = None;
        }
        // The others' transports see the connection close and the port
        // refuse: they may end its lease at once.
        for j in 0..self.servers.len() {
            if j != i && self.rng.below(2) == 0 && self.servers[j].running.is_some() {
                if let Some(r) = self.servers[j].running.as_mut() {
                    r.driver.peer_gone(id);
                }
                self.settle_server(j)?;
            }
        }
        Ok(())
    }

    fn restart(&mut self, i: usize) -> Result<(), String> {
        let s = &self.servers[i];
        if s.is_running() || !s.started {
            return Ok(());
        }
        let id = s.id;
        match self.start(i) {
            Ok(()) => {
                self.log(format!("restart {id}"));
                Ok(())
            }
            Err(e) if expected_refusal(&e) => {
                self.log(format!("{id} refuses to start: {e}"));
                if self.servers[i].my_id != id {
                    // The operator reads the refusal and puts the right
                    // myid back; the next start works.
                    self.fix_config(i);
                }
                Ok(())
            }
            Err(e) => Err(format!("server {id} failed to start: {e}")),
        }
    }

    /// A stopped server's disk is lost; it comes back empty with its id.
    fn lose_disk(&mut self, i: usize) -> Result<(), String> {
        if !self.disk_fault_allowed(i) {
            return Ok(());
        }
        self.crash(i)?;
        let lost = self.servers[i].disk.state().store.clone();
        self.lost_stores.push((self.servers[i].id, lost));
        self.servers[i].disk.lose();
        self.disks_out.insert(self.servers[i].id);
        self.stats.lost_disks += 1;
        // The operator renders `conclave.join=true` once the ensemble has
        // formed, so a pod back without its volume starts with it; a
        // server started by hand may not.
        self.servers[i].join = self.rng.below(2) == 0;
        self.operator_renders_zoo_cfg(i);
        let id = self.servers[i].id;
        let how = if self.servers[i].join {
            " (back with conclave.join=true)"
        } else {
            ""
        };
        self.log(format!("{id} loses its disk{how}"));
        self.restart(i)
    }

    /// A stopped server's store fails its checks at the next start.
    fn corrupt_disk(&mut self, i: usize) -> Result<(), String> {
        if !self.disk_fault_allowed(i) {
            return Ok(());
        }
        self.crash(i)?;
        self.servers[i].disk.state().corrupt = true;
        self.disks_out.insert(self.servers[i].id);
        self.stats.corrupt_disks += 1;
        let id = self.servers[i].id;
        self.log(format!("{id}'s store is corrupted"));
        self.restart(i)
    }

    /// Only a server that has its state and takes part may lose it, and
    /// only while the members without their state (a lost disk not yet
    /// restored, a server that never had any) stay within the budget: the
    /// guarantees hold for one lost disk at a time. Learners count too: a
    /// plan may promote one (a leader that was paused may even promote one
    /// that died meanwhile, as it may on ZooKeeper).
    ///
    /// Counted are the members of the latest configuration and every voter
    /// a server still counts (running, or in what it durably applied): it
    /// may not have applied a later change:
    /// a removed server that is gone for good (it refuses to start again)
    /// is a voter without its state to a member that has not applied its
    /// removal, and such members may have to elect the leader that tells
    /// them (a leader that commits a removal and loses its disk before the
    /// others hear would otherwise leave them without a majority).
    fn disk_fault_allowed(&self, i: usize) -> bool {
        let s = &self.servers[i];
        self.stateless_others(i) < self.faults.max_lost_disks
            && has_state(s)
            && s.running
                .as_ref()
                .is_some_and(|r| r.driver.standing() == StandingKind::Member)
    }

    fn is_removed(&self, i: usize) -> bool {
        self.servers[i]
            .running
            .as_ref()
            .is_some_and(|r| r.driver.standing() == StandingKind::Removed)
    }

    /// How many servers other than `i` that some configuration still
    /// counts cannot be relied on to vote: without their state, or
    /// removed.
    fn stateless_others(&self, i: usize) -> usize {
        let me = self.servers[i].id;
        let in_force = self.checks.configs.latest();
        let mut counted: BTreeSet<u64> = self
            .servers
            .iter()
            .filter(|o| in_force.contains(o.id))
            .map(|o| o.id)
            .collect();
        for o in &self.servers {
            if let Some(r) = &o.running {
                counted.extend(r.driver.node().conf_state().voters);
            }
            // A server that is down starts again in the configuration of
            // what it durably applied.
            if has_state(o) {
                let applied = o.disk.state().store.durable_applied_index();
                counted.extend(self.checks.configs.at(applied).voters);
            }
        }
        // A removed server still votes while it runs, but only for a
        // candidate whose log is as long as its own: one that holds more
        // than every candidate (entries its last leader sent it before it
        // left) helps nobody. It counts as without its state.
        let removed = |o: &Server| {
            o.running
                .as_ref()
                .is_some_and(|r| r.driver.standing() == StandingKind::Removed)
        };
        let gone = |o: &Server| o.running.is_none() && o.refused.is_some();
        self.servers
            .iter()
            .filter(|o| {
                o.id != me && counted.contains(&o.id) && (!has_state(o) || removed(o) || gone(o))
            })
            .count()
    }

    /// A server restarts with a zoo.cfg that lists a member too many or one
    /// too few, or with another server's id.
    fn stale_config(&mut self, i: usize) -> Result<(), String> {
        // A server that has its state: a brand-new ensemble forms only from
        // identical configurations, which is the operator's part.
        if !self.servers[i].started || !has_state(&self.servers[i]) {
            return Ok(());
        }
        self.crash(i)?;
        // One stale step from the intended zoo.cfg (an old ConfigMap), not
        // several piled up: a zoo.cfg that lists a server alone makes it
        // an ensemble of its own, on ZooKeeper too.
        self.fix_config(i);
        let s = &mut self.servers[i];
        let kind = self.rng.below(3);
        match kind {
            0 => s
                .configured
                .push(member(90 + s.id, MemberRole::Participant)),
            1 => {
                let id = s.id;
                if let Some(k) = s.configured.iter().position(|m| m.id != id) {
                    s.configured.remove(k);
                }
            }
            _ => {
                let others: Vec<u64> = s
                    .configured
                    .iter()
                    .map(|m| m.id)
                    .filter(|&x| x != s.id)
                    .collect();
                if let Some(&other) = others.first() {
                    s.my_id = other;
                }
            }
        }
        self.stats.stale_configs += 1;
        let id = self.servers[i].id;
        let what = ["an extra member", "a member missing", "another server's id"][kind as usize];
        self.log(format!("{id} restarts with a zoo.cfg with {what}"));
        self.restart(i)
    }

    /// The zoo.cfg an operator gives a server that starts without its
    /// state: the committed membership as the most advanced running
    /// member knows it (perhaps a change behind), plus the server itself.
    /// Not the zoo.cfg the ensemble started from: servers removed since
    /// must not count among the participants a new ensemble would form
    /// from.
    fn operator_renders_zoo_cfg(&mut self, i: usize) {
        let latest = self
            .servers
            .iter()
            .filter_map(|s| s.running.as_ref())
            .filter(|r| r.driver.standing() == StandingKind::Member)
            .map(|r| r.driver.membership())
            .filter(|m| m.version != 0)
            .max_by_key(|m| m.version)
            .cloned();
        let Some(latest) = latest else {
            return;
        };
        let s = &mut self.servers[i];
        let mut configured = latest.members;
        if !configured.iter().any(|m| m.id == s.id) {
            configured.push(s.line.clone());
        }
        s.intended = configured.clone();
        s.configured = configured;
        s.my_id = s.id;
    }

    fn fix_config(&mut self, i: usize) {
        let s = &mut self.servers[i];
        s.my_id = s.id;
        s.configured = s.intended.clone();
    }

    /// A server stops (SIGSTOP) for a while, the leader more often.
    fn pause(&mut self, i: usize) {
        let i = match self.leader_now() {
            Some(leader) if self.rng.below(2) == 0 => leader,
            _ => i,
        };
        if !self.servers[i].is_running() || self.servers[i].is_paused(self.events) {
            return;
        }
        // Up to several election timeouts, in events (a tick is one event
        // in about 17).
        let events = 20 + self.rng.below(25 * ELECTION_TICKS as u64);
        self.servers[i].paused_until = Some(self.events + events);
        self.stats.pauses += 1;
        let id = self.servers[i].id;
        self.log(format!("{id} pauses for {events} events"));
    }

    fn partition(&mut self, one_way: bool) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for s in &self.servers {
            if self.rng.below(2) == 0 {
                a.push(s.id);
            } else {
                b.push(s.id);
            }
        }
        self.network.cut.clear();
        for &x in &a {
            for &y in &b {
                self.network.cut.insert((y, x));
                if !one_way {
                    self.network.cut.insert((x, y));
                }
            }
        }
        self.stats.partitions += 1;
        let line = if one_way {
            format!("one-way partition: {a:?} reach {b:?}, not back")
        } else {
            format!("partition {a:?} | {b:?}")
        };
        self.log(line);
    }

    // ---- time, disks and messages ----

    fn tick_everywhere(&mut self) -> Result<(), String> {
        for i in 0..self.servers.len() {
            for _ in 0..self.servers[i].clock.advance() {
                self.tick(i)?;
            }
        }
        Ok(())
    }

    fn tick(&mut self, i: usize) -> Result<(), String> {
        if self.servers[i].is_paused(self.events) {
            return Ok(());
        }
        let now = self.events as i64;
        let Some(r) = self.servers[i].running.as_mut() else {
            return Ok(());
        };
        let result = r.driver.tick(now, &mut r.machine);
        self.driver_result(i, result)?;
        self.settle_server(i)
    }

    /// Server `i`'s log writer takes its turn: what was queued is written
    /// and synced, and the readies it covers are reported durable.
    fn sync(&mut self, i: usize) -> Result<(), String> {
        if self.servers[i].is_paused(self.events) || !self.servers[i].is_running() {
            return Ok(());
        }
        let written = self.servers[i]
            .disk
            .write_queued()
            .map_err(|e| format!("server {}: the store refused a write: {e}", i + 1))?;
        if let Some(number) = written.and_then(|w| w.marker)
            && let Some(r) = self.servers[i].running.as_mut()
        {
            let result = r.driver.persisted(number, &mut r.machine);
            self.driver_result(i, result)?;
        }
        self.settle_server(i)
    }

    fn deliver(&mut self) -> Result<(), String> {
        let Some(envelope) = self.network.take(&mut self.rng, self.events) else {
            return Ok(());
        };
        if self.rng.below(1000) < self.faults.drop {
            let broke = self.rng.below(4) == 0;
            return self.lost(envelope, broke);
        }
        // Raft's messages may come twice (a retransmission after a
        // reconnection); notices travel once on a connection (TCP), and a
        // write forwarded twice would be applied twice.
        if matches!(envelope.body, Body::Raft(_)) && self.rng.below(1000) < self.faults.duplicate {
            self.network.in_flight.push(envelope.clone());
        }
        if self.rng.below(1000) < self.faults.delay {
            let mut held = envelope;
            held.not_before = self.events + 1 + self.rng.below(200);
            self.network.in_flight.push(held);
            return Ok(());
        }
        if self.network.is_cut(envelope.from, envelope.to) {
            return self.lost(envelope, true);
        }
        self.receive(envelope)
    }

    /// A message was lost. Between real servers that means the connection
    /// broke, which the sender's transport notices (`broke`: a partition
    /// always, a lost message now and then): raft-rs is told, and for a
    /// snapshot it must be, or the leader waits for it forever.
    fn lost(&mut self, envelope: Envelope, broke: bool) -> Result<(), String> {
        if chunk_of(&envelope).is_some() {
            self.stats.image_chunks_lost += 1;
        }
        let Some(i) = self.index_of(envelope.from) else {
            return Ok(());
        };
        if !broke && !envelope.is_snapshot() {
            return Ok(());
        }
        let Some(r) = self.servers[i].running.as_mut() else {
            return Ok(());
        };
        if envelope.is_snapshot() {
            r.driver.snapshot_sent(envelope.to, false);
        }
        if broke {
            r.driver.unreachable(envelope.to, &mut r.machine);
        }
        self.settle_server(i)
    }

    fn receive(&mut self, envelope: Envelope) -> Result<(), String> {
        let Some(i) = self.index_of(envelope.to) else {
            return self.lost(envelope, true);
        };
        if !self.servers[i].is_running() {
            return self.lost(envelope, true);
        }
        if self.servers[i].is_paused(self.events) {
            // A paused process reads nothing: it waits in its socket.
            let mut held = envelope;
            held.not_before = self.servers[i].paused_until.unwrap_or(self.events);
            self.network.in_flight.push(held);
            return Ok(());
        }
        let envelope = envelope.through_the_wire()?;
        self.stats.messages += 1;
        if let Some((id, offset, end)) = chunk_of(&envelope) {
            self.stats.image_chunks += 1;
            match self.receiving.insert(envelope.to, (id, end)) {
                Some((previous, reached)) if previous != id && reached < previous.bytes => {
                    self.stats.images_superseded += 1;
                }
                Some((previous, reached)) if previous == id && offset < reached => {
                    self.stats.image_chunks_resent += 1;
                }
                _ => {}
            }
        }
        let snapshot = envelope
            .is_snapshot()
            .then_some((envelope.from, envelope.to));
        let from = envelope.from;
        let Some(r) = self.servers[i].running.as_mut() else {
            return Ok(());
        };
        let result = match envelope.body {
            Body::Raft(m) => r.driver.receive(from, *m, &mut r.machine),
            Body::Notice(bytes) => r.driver.notice(from, &bytes, &mut r.machine),
        };
        self.driver_result(i, result)?;
        self.settle_server(i)?;
        // The sender's transport wrote the snapshot out: it says so.
        if let Some((from, to)) = snapshot
            && let Some(s) = self.index_of(from)
            && let Some(r) = self.servers[s].running.as_mut()
        {
            r.driver.snapshot_sent(to, true);
            self.settle_server(s)?;
        }
        Ok(())
    }

    fn index_of(&self, id: u64) -> Option<usize> {
        self.servers.iter().position(|s| s.id == id)
    }

    /// A driver call failed: the server's process stops with that error.
    /// No peer input may lead here, so it fails the run.
    fn driver_result(
        &mut self,
        i: usize,
        result: Result<(), consensus::driver::DriverError>,
    ) -> Result<(), String> {
        result.map_err(|e| format!("server {} stopped: {e}", i + 1))
    }

    /// After anything reached server `i`: what it sent joins the network,
    /// what its state machine reported is processed, and a lying disk's
    /// early reports are delivered, until nothing more happens.
    fn settle_server(&mut self, i: usize) -> Result<(), String> {
        for _ in 0..10_000 {
            let mut busy = false;
            let sent: Vec<Envelope> = std::mem::take(&mut *self.outbox.borrow_mut());
            if !sent.is_empty() {
                busy = true;
                self.check_votes(&sent)?;
                self.network.in_flight.extend(sent);
            }
            let early: Vec<u64> = std::mem::take(&mut self.servers[i].disk.state().early_markers);
            for number in early {
                busy = true;
                if let Some(r) = self.servers[i].running.as_mut() {
                    let result = r.driver.persisted(number, &mut r.machine);
                    self.driver_result(i, result)?;
                }
            }
            let appended = std::mem::take(&mut self.servers[i].disk.state().appended);
            if !appended.is_empty()
                && let Some(r) = self.servers[i].running.as_mut()
            {
                let last = r.driver.applied_index();
                r.machine.apply_from_log(&appended, last);
            }
            let events = match self.servers[i].running.as_mut() {
                Some(r) => std::mem::take(&mut r.machine.events),
                None => Vec::new(),
            };
            for event in events {
                busy = true;
                self.machine_event(i, event)?;
            }
            if !busy {
                return Ok(());
            }
        }
        Err(format!("server {} never went quiet", i + 1))
    }

    /// A server without its state must grant no vote.
    fn check_votes(&self, sent: &[Envelope]) -> Result<(), String> {
        for e in sent.iter().filter(|e| e.grants_vote()) {
            let Some(i) = self.index_of(e.from) else {
                continue;
            };
            // A removed server may have granted the vote in the same turn
            // its removal applied: it still had its state.
            if let Some(r) = &self.servers[i].running
                && matches!(
                    r.driver.standing(),
                    StandingKind::Discovering | StandingKind::Joining | StandingKind::Restoring
                )
            {
                return Err(format!(
                    "server {} granted a vote while {:?}",
                    e.from,
                    r.driver.standing()
                ));
            }
        }
        Ok(())
    }

    fn machine_event(&mut self, i: usize, event: Event) -> Result<(), String> {
        let id = self.servers[i].id;
        match event {
            Event::Applied {
                index,
                term,
                zxid,
                digest,
                membership,
            } => {
                let entry = AppliedEntry {
                    index,
                    term,
                    zxid,
                    digest,
                };
                if self.verbose {
                    self.log(format!(
                        "{id} applied {index}/{term} zxid {zxid:#x} digest {digest:x}"
                    ));
                }
                let servers = &self.servers;
                let lost = &self.lost_stores;
                let holders = |index: u64, term: u64| -> BTreeSet<u64> {
                    servers
                        .iter()
                        .filter(|s| s.started && s.disk.durably_holds(index, term))
                        .map(|s| s.id)
                        .chain(
                            lost.iter()
                                .filter(|(_, store)| store.durably_holds(index, term))
                                .map(|(id, _)| *id),
                        )
                        .collect()
                };
                self.checks.applied(id, entry, membership, &holders)?;
            }
            Event::Outcome { requester, outcome } => {
                if self.verbose {
                    self.log(format!(
                        "{id} applies {:x}/{}: {outcome:?}",
                        requester.session_id, requester.cxid
                    ));
                }
                self.workload.outcome(id, requester, &outcome)?;
            }
            Event::ReadReady(context) => {
                if let Some(r) = &self.servers[i].running {
                    self.workload.read_ready(id, context, &r.machine.tree)?;
                }
            }
            Event::Failed(requester) => self.workload.failed(id, requester)?,
            Event::LeaderUnreachable => self.workload.server_lost(id)?,
            Event::Role(view) => {
                if view.leader_changed {
                    self.workload.server_lost(id)?;
                }
                if view.role == Role::Leader {
                    let applied = self.servers[i]
                        .running
                        .as_ref()
                        .map_or(0, |r| r.driver.applied_index());
                    self.checks.leader(id, view.term)?;
                    let in_force = self.checks.config_at(applied);
                    if !in_force.is_voter(id) {
                        return Err(format!(
                            "server {id} became leader in term {} but is no voter of {in_force}",
                            view.term
                        ));
                    }
                    self.led_as_voter.insert(id, view.term);
                }
                self.log(format!(
                    "{id} is {:?} of term {} (leader {:?})",
                    view.role, view.term, view.leader
                ));
            }
            Event::Membership { index, membership } => {
                let reached = Config::of_membership(&membership);
                if !self.faults.observers_vote {
                    self.checks.configs.applied(id, index, reached.clone())?;
                }
                self.log(format!("{id} applies the membership at {index}: {reached}"));
            }
            Event::Installed(index) => {
                let zxid = self.checks.at(index).map_or(make_zxid(1, 0), |e| e.zxid);
                self.checks.resumed(id, index, zxid);
                self.log(format!("{id} installs a snapshot at {index}"));
            }
            Event::MembershipAnswered(ticket, ok, text) => {
                if self.asked.is_some_and(|(t, _)| t == ticket) {
                    self.asked = None;
                }
                self.log(format!(
                    "membership request {ticket}: {} {text}",
                    if ok { "done" } else { "refused" }
                ));
            }
            Event::Removed => self.log(format!("{id} is removed and serves nobody")),
        }
        self.note_standing(i);
        Ok(())
    }

    /// Counts a member that finished restoring or joining.
    fn note_standing(&mut self, i: usize) {
        let id = self.servers[i].id;
        let member = self.servers[i]
            .running
            .as_ref()
            .is_some_and(|r| r.driver.standing() == StandingKind::Member);
        if member && self.disks_out.remove(&id) {
            self.stats.restored += 1;
            self.log(format!("{id} has its state back"));
        }
    }

    // ---- clients and membership ----

    /// A client starts an operation against a random running server.
    fn client_op(&mut self) -> Result<(), String> {
        let idle: Vec<usize> = (0..self.workload.clients())
            .filter(|&c| self.workload.idle(c))
            .collect();
        if idle.is_empty() {
            return Ok(());
        }
        let c = idle[self.rng.below(idle.len() as u64) as usize];
        let i = self.rng.below(self.servers.len() as u64) as usize;
        let s = &self.servers[i];
        // A server without a leader refuses clients (they try another):
        // as its client layer knows it from the driver's reports.
        let serving = s.running.as_ref().is_some_and(|r| r.machine.serving);
        if serving != s.running.as_ref().is_some_and(|r| r.driver.serving()) {
            return Err(format!(
                "server {}: the state machine was told it serves: {serving}, but the driver says otherwise",
                s.id
            ));
        }
        if !serving || s.is_paused(self.events) {
            return Ok(());
        }
        let id = s.id;
        let Some(action) = self.workload.start(&mut self.rng, c, id) else {
            return Ok(());
        };
        self.perform(i, action)
    }

    fn perform(&mut self, i: usize, action: Action) -> Result<(), String> {
        let id = self.servers[i].id;
        let local = self.faults.sync_locally || self.faults.reopen_locally;
        let Some(r) = self.servers[i].running.as_mut() else {
            return Ok(());
        };
        match action {
            Action::Submit(submission) => r.driver.submit(submission, &mut r.machine),
            Action::ReadIndex(context) if local => {
                // The broken server answers from its own state at once.
                self.workload.read_ready(id, context, &r.machine.tree)?;
            }
            Action::ReadIndex(context) => {
                if r.driver.read_index(context).is_err() {
                    self.workload.read_refused(id, context)?;
                }
            }
        }
        let result = r.driver.flush(&mut r.machine);
        self.driver_result(i, result)?;
        self.settle_server(i)
    }

    /// The leader of the moment is asked for the plan's current goal (once
    /// the last request was answered); joiners it names are started first,
    /// empty.
    fn reconfigure(&mut self) -> Result<(), String> {
        if self.asked.is_some() {
            return Ok(());
        }
        let Some(leader) = self.leader_now() else {
            return Ok(());
        };
        let Some(r) = self.servers[leader].running.as_ref() else {
            return Ok(());
        };
        let current = Config::of_membership(r.driver.membership());
        let committed = r.driver.membership().clone();
        let leader_id = self.servers[leader].id;
        let Some(plan) = self.plan.as_mut() else {
            return Ok(());
        };
        let Some(goal) = plan.goal(&current, leader_id) else {
            return Ok(());
        };
        for id in goal.voters.iter().chain(&goal.learners) {
            let Some(j) = self.index_of(*id) else {
                return Err(format!("the plan adds server {id}, which has no slot"));
            };
            if !self.servers[j].started {
                self.start_joiner(j, &committed)?;
            } else if !committed.contains(*id) {
                // A server removed earlier is added again: as the docs say
                // (and an operator does, with a new volume), it comes back
                // with an empty store, as a new server.
                self.crash(j)?;
                let emptied = self.servers[j].disk.state().store.clone();
                self.lost_stores.push((*id, emptied));
                self.servers[j].disk.lose();
                self.log(format!(
                    "{id} was removed before: its store is emptied to add it again"
                ));
                self.start_joiner(j, &committed)?;
            }
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.asked = Some((ticket, leader_id));
        self.stats.changes_asked += 1;
        self.log(format!(
            "{leader_id} is asked for {goal} (request {ticket})"
        ));
        let Some(r) = self.servers[leader].running.as_mut() else {
            return Ok(());
        };
        let op = MembershipOp::Reach {
            members: members_of(&goal),
            expected_version: -1,
        };
        r.driver.membership_request(op, ticket, &mut r.machine);
        let result = r.driver.flush(&mut r.machine);
        self.driver_result(leader, result)?;
        self.settle_server(leader)
    }

    /// A new server starts empty to join, the way ZooKeeper documents it
    /// (zoo.cfg: the current members plus itself; no Conclave-only key),
    /// or, every other seed, with `conclave.join=true`.
    fn start_joiner(&mut self, j: usize, committed: &Membership) -> Result<(), String> {
        let s = &mut self.servers[j];
        let mut configured = committed.members.clone();
        configured.push(s.line.clone());
        s.configured = configured.clone();
        s.intended = configured;
        s.join = self.rng.below(2) == 0;
        let id = s.id;
        let how = if s.join {
            "conclave.join=true"
        } else {
            "as ZooKeeper documents"
        };
        self.log(format!("{id} starts empty, to join ({how})"));
        self.stats.joined += 1;
        self.start(j)
    }

    // ---- the checks after every event ----

    fn check(&mut self) -> Result<(), String> {
        for i in 0..self.servers.len() {
            let Some(r) = &self.servers[i].running else {
                continue;
            };
            let id = self.servers[i].id;
            let node = r.driver.node();
            let term = node.term();
            let role = node.role();
            let applied = r.driver.applied_index();
            let standing = r.driver.standing();
            let voter = role == Role::Follower || self.checks.configs.is_voter_at(applied, id);
            match role {
                Role::PreCandidate | Role::Candidate if !voter && !self.faults.observers_vote => {
                    return Err(format!(
                        "server {id} is {role:?} in term {term} but no voter of {}",
                        self.checks.config_at(applied)
                    ));
                }
                Role::PreCandidate | Role::Candidate if standing != StandingKind::Member => {
                    return Err(format!("server {id} campaigns while {standing:?}"));
                }
                Role::Leader
                    if !voter
                        && !self.faults.observers_vote
                        && self.led_as_voter.get(&id) != Some(&term) =>
                {
                    return Err(format!(
                        "server {id} leads in term {term} but is no voter of {}",
                        self.checks.config_at(applied)
                    ));
                }
                _ => {}
            }
            if role == Role::Leader {
                self.checks.leader(id, term)?;
                one_change_at_a_time(id, r, applied)?;
            }
            if standing == StandingKind::Member && !self.faults.observers_vote {
                let running = Config::of(&node.conf_state());
                let in_force = self.checks.config_at(applied);
                if !running.is_empty() && !self.checks.configs.may_run(applied, &running) {
                    return Err(format!(
                        "server {id} runs with {running}, but {in_force} is in force at its applied index {applied}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Client operations checked, and the verdict of the linearizability
    /// check on the whole history.
    pub fn check_history(&self) -> Result<lincheck::Summary, String> {
        // A deterministic budget (never a time limit: the verdict must not
        // depend on the machine); `CONCLAVE_SIM_STATES` raises it for the
        // rare history too tangled for the default.
        let states = std::env::var("CONCLAVE_SIM_STATES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(lincheck::Budget::DEFAULT_MAX_STATES_PER_PARTITION);
        let report = lincheck::check(
            &lincheck::models::znode::ZnodeModel::new(),
            self.workload.recorder.history(),
            lincheck::Budget::states(states),
        );
        if report.verdict.is_linearizable() {
            Ok(report.summary)
        } else {
            Err(format!("the client history is not linearizable: {report}"))
        }
    }
}

/// A leader's log holds at most one membership change it has not applied.
fn one_change_at_a_time(id: u64, r: &crate::server::Running, applied: u64) -> Result<(), String> {
    let core = r.driver.node().storage().core();
    let pending: Vec<u64> = core
        .entries()
        .iter()
        .filter(|e| e.index > applied && e.get_entry_type() == EntryType::EntryConfChangeV2)
        .map(|e| e.index)
        .collect();
    if pending.len() > 1 {
        return Err(format!(
            "leader {id} holds membership changes at {pending:?} past its applied index {applied}"
        ));
    }
    Ok(())
}

/// Whether a server's store holds its state (a member's record, and not
/// corrupted).
fn has_state(s: &Server) -> bool {
    if s.disk.state().corrupt {
        return false;
    }
    let meta = storage::Store::meta(&s.disk);
    matches!(
        meta.config
            .as_deref()
            .map(storage::membership_record::decode),
        Some(consensus::driver::MembershipRecord::Member(_))
    )
}

/// Refusals at start that are the expected outcome of a fault: a removed
/// server, a store of another server's (a wrong myid), a corrupted store.
fn expected_refusal(reason: &str) -> bool {
    ["was removed", "belongs to server", "fails its checksums"]
        .iter()
        .any(|r| reason.contains(r))
}

/// Every znode with its data and Stat, in path order.
fn fingerprint(tree: &tree::DataTree) -> Vec<(String, Option<Vec<u8>>, tree::StatPersisted)> {
    let mut out: Vec<_> = tree
        .nodes()
        .map(|(path, node)| (path.to_owned(), node.data.clone(), node.stat))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A snapshot chunk's image, offset and end, if the envelope carries one.
fn chunk_of(envelope: &Envelope) -> Option<(SnapshotId, u64, u64)> {
    let Body::Notice(bytes) = &envelope.body else {
        return None;
    };
    match Notice::decode(bytes) {
        Ok(Notice::SnapshotChunk { id, offset, bytes }) => {
            Some((id, offset, offset + bytes.len() as u64))
        }
        _ => None,
    }
}

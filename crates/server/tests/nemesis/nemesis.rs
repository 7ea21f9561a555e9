//! The nemesis: faults at random intervals, drawn from the run's seed.
//!
//! Kinds: `kill -9` of a server (the leader more often) restarted after a
//! while; a pause (SIGSTOP, SIGCONT 0.5–6 s later: some longer than an
//! election timeout); a partition (one server isolated, both ways or one
//! way; with five servers also two against three), healed after a while;
//! a wipe (`kill -9`, the data directory emptied but `myid`, a restart:
//! the server must rejoin by itself); a power cut (`kill -9`, every write
//! its disk had not synced dropped, a restart).
//!
//! The budget keeps the ensemble able to make progress: a server counts
//! as impaired from the fault until it serves again (a restarted, resumed
//! or healed server too), at most `(n - 1) / 2` servers are impaired at
//! once, and at most one is without its data (a wiped server counts until
//! it serves again). A server that exits by itself, or does not serve again
//! within a minute, is a problem the run reports.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::proxy::Link;
use crate::rng::Rng;

/// How long a restarted (or resumed, or healed) server may take to serve
/// again before the run calls it a problem.
const RECOVERY_LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Up,
    /// Killed; restarted at `until` (its data already wiped if `wiped`).
    Down {
        until: Instant,
        wiped: bool,
    },
    Paused {
        until: Instant,
    },
    /// Restarted, resumed or healed: impaired until it serves.
    Recovering {
        since: Instant,
        wiped: bool,
        reported: bool,
    },
}

#[derive(Debug)]
struct Partition {
    links: Vec<Link>,
    /// The members cut off from a majority.
    minority: Vec<usize>,
    until: Instant,
}

#[derive(Debug)]
pub struct Nemesis {
    rng: Rng,
    started: Instant,
    states: Vec<State>,
    partitions: Vec<Partition>,
    next_fault: Instant,
    /// Faults injected, by kind.
    pub counts: BTreeMap<&'static str, u64>,
    /// What went wrong on the servers' side.
    pub problems: Vec<String>,
    /// Every event, with its time since the start.
    pub events: Vec<String>,
    /// Bytes and files dropped by power cuts.
    pub power_cut_dropped: (u64, u64),
    /// How long wiped servers took to serve again after their restart.
    pub rejoin_times: Vec<Duration>,
}

impl Nemesis {
    pub fn new(rng: Rng, members: usize) -> Nemesis {
        let now = Instant::now();
        Nemesis {
            rng,
            started: now,
            states: vec![State::Up; members],
            partitions: Vec::new(),
            next_fault: now + Duration::from_secs(2),
            counts: BTreeMap::new(),
            problems: Vec::new(),
            events: Vec::new(),
            power_cut_dropped: (0, 0),
            rejoin_times: Vec::new(),
        }
    }

    fn log(&mut self, what: String) {
        let line = format!("[{:7.2}s] {what}", self.started.elapsed().as_secs_f64());
        println!("{line}");
        self.events.push(line);
    }

    fn count(&mut self, kind: &'static str) {
        *self.counts.entry(kind).or_default() += 1;
    }

    fn budget(&self) -> usize {
        (self.states.len() - 1) / 2
    }

    fn impaired(&self, i: usize) -> bool {
        self.states[i] != State::Up || self.partitions.iter().any(|p| p.minority.contains(&i))
    }

    fn impaired_count(&self) -> usize {
        (0..self.states.len()).filter(|&i| self.impaired(i)).count()
    }

    fn without_data(&self) -> bool {
        self.states.iter().any(|s| {
            matches!(
                s,
                State::Down { wiped: true, .. } | State::Recovering { wiped: true, .. }
            )
        })
    }

    /// Runs faults until `deadline`.
    pub fn run_until(&mut self, cluster: &mut Cluster, deadline: Instant) {
        while Instant::now() < deadline {
            self.step(cluster, true);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Heals, resumes and restarts everything; faults end here.
    pub fn finish(&mut self, cluster: &mut Cluster) {
        let now = Instant::now();
        for p in &mut self.partitions {
            p.until = now;
        }
        for state in &mut self.states {
            match state {
                State::Down { until, .. } | State::Paused { until } => *until = now,
                _ => {}
            }
        }
        self.log("end of faults: healing, resuming and restarting everything".into());
        self.step(cluster, false);
    }

    /// Waits until every member serves again after [`Nemesis::finish`],
    /// still watching for servers that exit by themselves.
    pub fn settle(&mut self, cluster: &mut Cluster, limit: Duration) -> Result<usize, String> {
        let deadline = Instant::now() + limit;
        loop {
            self.step(cluster, false);
            if self.states.iter().all(|s| *s == State::Up) {
                // Every member said it serves; now one leader and all
                // serving at once.
                return cluster.await_healthy(deadline.saturating_duration_since(Instant::now()));
            }
            if Instant::now() >= deadline {
                return cluster.await_healthy(Duration::ZERO);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One round: servers that exited, timers that ran out, recoveries, and
    /// (if `faults`) maybe a new fault.
    fn step(&mut self, cluster: &mut Cluster, faults: bool) {
        let now = Instant::now();
        for i in 0..self.states.len() {
            if let Some(status) = cluster.exited_by_itself(i) {
                let id = cluster.members[i].id;
                self.problems.push(format!(
                    "server {id} exited by itself ({status}) {:.1}s into the run; log: {}",
                    self.started.elapsed().as_secs_f64(),
                    cluster.current_log(i).display()
                ));
                self.log(format!(
                    "server {id} EXITED BY ITSELF ({status}); restarting it"
                ));
                self.count("server exited by itself");
                let wiped = matches!(
                    self.states[i],
                    State::Recovering { wiped: true, .. } | State::Down { wiped: true, .. }
                );
                self.states[i] = State::Down {
                    until: now + Duration::from_secs(1),
                    wiped,
                };
            }
        }
        for i in 0..self.states.len() {
            let id = cluster.members[i].id;
            match self.states[i] {
                State::Down { until, wiped } if until <= now => {
                    cluster.spawn(i);
                    self.log(format!("server {id} started again"));
                    self.states[i] = State::Recovering {
                        since: now,
                        wiped,
                        reported: false,
                    };
                }
                State::Paused { until } if until <= now => {
                    cluster.pause(i, false);
                    self.log(format!("server {id} resumed (SIGCONT)"));
                    self.states[i] = State::Recovering {
                        since: now,
                        wiped: false,
                        reported: false,
                    };
                }
                State::Recovering {
                    since,
                    wiped,
                    reported,
                } => {
                    if cluster.serving(i) {
                        if wiped {
                            self.rejoin_times.push(since.elapsed());
                        }
                        self.log(format!(
                            "server {id} serves again ({:.1}s after it was let back{})",
                            since.elapsed().as_secs_f64(),
                            if wiped { ", its data restored" } else { "" }
                        ));
                        self.states[i] = State::Up;
                    } else if !reported && since.elapsed() > RECOVERY_LIMIT {
                        self.problems.push(format!(
                            "server {id} did not serve again within {RECOVERY_LIMIT:?} \
                             (after {}); ensemble status: {}",
                            if wiped {
                                "its data was wiped"
                            } else {
                                "a fault"
                            },
                            cluster.ensemble_status(i).replace('\n', " ")
                        ));
                        self.log(format!("server {id} DOES NOT SERVE AGAIN"));
                        self.states[i] = State::Recovering {
                            since,
                            wiped,
                            reported: true,
                        };
                    }
                }
                _ => {}
            }
        }
        let (done, kept): (Vec<Partition>, Vec<Partition>) = std::mem::take(&mut self.partitions)
            .into_iter()
            .partition(|p| p.until <= now);
        self.partitions = kept;
        if !done.is_empty() {
            // Partitions may share links (two isolated servers): what stays
            // blocked is what the remaining partitions block.
            cluster
                .proxy
                .block_only(self.partitions.iter().flat_map(|p| p.links.iter().copied()));
        }
        for p in done {
            self.log(format!(
                "healed the partition of {}",
                ids(cluster, &p.minority)
            ));
            for i in p.minority {
                if self.states[i] == State::Up {
                    self.states[i] = State::Recovering {
                        since: now,
                        wiped: false,
                        reported: false,
                    };
                }
            }
        }
        if faults && now >= self.next_fault {
            if self.fault(cluster) {
                self.next_fault = now + self.rng.millis(500, 3500);
            } else {
                // Nothing allowed now: try again soon.
                self.next_fault = now + Duration::from_millis(200);
            }
        }
    }

    /// Members that may be faulted now.
    fn candidates(&self) -> Vec<usize> {
        (0..self.states.len())
            .filter(|&i| !self.impaired(i))
            .collect()
    }

    /// Picks `leader` with probability `percent` if it is a candidate, else
    /// a random candidate.
    fn target(&mut self, candidates: &[usize], leader: Option<usize>, percent: u64) -> usize {
        match leader {
            Some(l) if candidates.contains(&l) && self.rng.percent(percent) => l,
            _ => candidates[self.rng.index(candidates.len())],
        }
    }

    /// Injects one fault if the budget allows; whether it did.
    fn fault(&mut self, cluster: &mut Cluster) -> bool {
        let room = self.budget().saturating_sub(self.impaired_count());
        let candidates = self.candidates();
        if room == 0 || candidates.is_empty() {
            return false;
        }
        let leader = cluster.leader();
        let now = Instant::now();
        let roll = self.rng.below(100);
        if roll < 25 {
            let i = self.target(&candidates, leader, 60);
            let down = self.rng.millis(300, 5000);
            cluster.kill9(i);
            let is_leader = leader == Some(i);
            self.count(if is_leader {
                "kill -9 (leader)"
            } else {
                "kill -9"
            });
            self.log(format!(
                "kill -9 server {}{}; restart in {:.1}s",
                cluster.members[i].id,
                if is_leader { " (the leader)" } else { "" },
                down.as_secs_f64()
            ));
            self.states[i] = State::Down {
                until: now + down,
                wiped: false,
            };
        } else if roll < 45 {
            let i = self.target(&candidates, leader, 50);
            let pause = self.rng.millis(500, 6000);
            cluster.pause(i, true);
            let is_leader = leader == Some(i);
            self.count(if is_leader { "pause (leader)" } else { "pause" });
            self.log(format!(
                "SIGSTOP server {}{} for {:.1}s",
                cluster.members[i].id,
                if is_leader { " (the leader)" } else { "" },
                pause.as_secs_f64()
            ));
            self.states[i] = State::Paused { until: now + pause };
        } else if roll < 72 {
            self.partition(cluster, &candidates, leader, room);
        } else if roll < 82 {
            if self.without_data() {
                return false;
            }
            let i = self.target(&candidates, leader, 30);
            let down = self.rng.millis(300, 3000);
            cluster.kill9(i);
            let removed = cluster.wipe(i);
            let is_leader = leader == Some(i);
            self.count(if is_leader { "wipe (leader)" } else { "wipe" });
            self.log(format!(
                "kill -9 server {}{}, its data directory emptied ({removed} entries; myid kept); \
                 restart in {:.1}s",
                cluster.members[i].id,
                if is_leader { " (the leader)" } else { "" },
                down.as_secs_f64()
            ));
            self.states[i] = State::Down {
                until: now + down,
                wiped: true,
            };
        } else {
            let i = self.target(&candidates, leader, 40);
            let down = self.rng.millis(200, 3000);
            cluster.kill9(i);
            let (files, bytes) = cluster.power_cut(i);
            self.power_cut_dropped.0 += files;
            self.power_cut_dropped.1 += bytes;
            let is_leader = leader == Some(i);
            self.count(if is_leader {
                "power cut (leader)"
            } else {
                "power cut"
            });
            self.log(format!(
                "power cut of server {}{}: kill -9, {bytes} unsynced bytes in {files} files \
                 dropped; restart in {:.1}s",
                cluster.members[i].id,
                if is_leader { " (the leader)" } else { "" },
                down.as_secs_f64()
            ));
            self.states[i] = State::Down {
                until: now + down,
                wiped: false,
            };
        }
        true
    }

    fn partition(
        &mut self,
        cluster: &mut Cluster,
        candidates: &[usize],
        leader: Option<usize>,
        room: usize,
    ) {
        let n = self.states.len();
        let ids_of = |members: &[usize]| -> Vec<u64> {
            members.iter().map(|&i| cluster.members[i].id).collect()
        };
        let heal = self.rng.millis(1000, 8000);
        let (minority, kind): (Vec<usize>, &'static str) =
            if room >= 2 && candidates.len() >= 2 && self.rng.percent(40) {
                // Two against the rest (five servers).
                let first = self.target(candidates, leader, 50);
                let others: Vec<usize> =
                    candidates.iter().copied().filter(|&c| c != first).collect();
                let second = others[self.rng.index(others.len())];
                (vec![first, second], "split")
            } else {
                (vec![self.target(candidates, leader, 50)], "isolate")
            };
        let majority: Vec<usize> = (0..n).filter(|i| !minority.contains(i)).collect();
        let (small, large) = (ids_of(&minority), ids_of(&majority));
        let way = self.rng.below(100);
        let mut links = Vec::new();
        for &a in &small {
            for &b in &large {
                if way < 80 {
                    links.push((a, b));
                }
                if !(60..80).contains(&way) {
                    links.push((b, a));
                }
            }
        }
        let direction = if way < 60 {
            "both ways"
        } else if way < 80 {
            "one way: it cannot send"
        } else {
            "one way: it cannot hear"
        };
        let one_way = way >= 60;
        cluster.proxy.block(&links);
        let label: &'static str = match (kind, one_way) {
            ("split", false) => "partition: split",
            ("split", true) => "partition: split, one-way",
            (_, false) => "partition: isolate",
            (_, true) => "partition: isolate, one-way",
        };
        self.count(label);
        let led = leader.is_some_and(|l| minority.contains(&l));
        self.log(format!(
            "partition {small:?} | {large:?} ({direction}){}; heal in {:.1}s",
            if led {
                ", the leader in the minority"
            } else {
                ""
            },
            heal.as_secs_f64()
        ));
        self.partitions.push(Partition {
            links,
            minority,
            until: Instant::now() + heal,
        });
    }

    /// The demonstration that the checks can fail (`CONCLAVE_NEMESIS_
    /// SABOTAGE=wipe-all`, never in CI): every server killed and wiped at
    /// once, so the ensemble forgets every acknowledged write, then
    /// started again (they form a new, empty ensemble).
    pub fn sabotage(&mut self, cluster: &mut Cluster) {
        self.finish(cluster);
        for i in 0..self.states.len() {
            cluster.kill9(i);
        }
        for i in 0..self.states.len() {
            cluster.wipe(i);
        }
        self.log("SABOTAGE: every server killed and wiped at once".into());
        self.count("sabotage: every server wiped");
        for i in 0..self.states.len() {
            cluster.spawn(i);
            self.states[i] = State::Recovering {
                since: Instant::now(),
                wiped: false,
                reported: false,
            };
        }
    }
}

fn ids(cluster: &Cluster, members: &[usize]) -> String {
    let ids: Vec<String> = members
        .iter()
        .map(|&i| cluster.members[i].id.to_string())
        .collect();
    format!("server {}", ids.join(", "))
}

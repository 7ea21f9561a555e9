//! Deterministic simulation of whole ensembles from a seed.
//!
//! Each run drives real `consensus::Node`s (raft-rs underneath), each with
//! the real data tree as its state machine (`sim/machine.rs`: client
//! writes prepared on the leader, applied everywhere), and checks the
//! invariants (`sim/invariants.rs`, the durable-quorum and observer checks
//! in `sim/cluster.rs`, and `Machine::apply`'s re-prepare check) after
//! every event; then heals everything and checks that every server
//! converged on the same tree and kept every acknowledged write.
//!
//! Covered:
//!
//! - ensembles of 3, 5 and 7 voters, and 3 voters with 1 or 2 observers
//!   (raft-rs learners: they replicate everything, never vote, and no
//!   quorum counts them);
//! - messages lost, duplicated and delivered in any order, each through
//!   the real peer encoding;
//! - partitions into two sides, cut both ways or one way only (one side
//!   reaches the other and hears nothing back), and heals;
//! - crashes that lose every unsynced write, and restarts;
//! - clocks that jitter (a lone server ticks) and drift (a server's clock
//!   runs at half to triple speed for a while);
//! - log compaction, with laggards catching up by snapshot;
//! - `sync` (ReadIndex) on any server, observers included.
//!
//! Deliberately broken servers show the invariants are not vacuous, each
//! behind a `Faults` switch and caught by its own test: acknowledging
//! before sync, answering `sync` locally, applying before commit, and
//! counting observers as voters.
//!
//! A failure prints the command that replays it alone:
//! `CONCLAVE_SIM_SEED=<seed> cargo test -p consensus --test simulation <test>`.
//! Run more seeds with `CONCLAVE_SIM_SEEDS=<count>` (default 200) and
//! longer runs with `CONCLAVE_SIM_EVENTS=<count>` (default 4000); many
//! seeds are best run with `--release`.

mod sim {
    pub(crate) mod cluster;
    pub(crate) mod disk;
    pub(crate) mod invariants;
    pub(crate) mod machine;
    pub(crate) mod rng;
}

use sim::cluster::{Cluster, ELECTION_TICKS, Ensemble, Faults};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs one seed; the error names the seed and the last events.
fn run(seed: u64, ensemble: Ensemble, events: u64, faults: Faults) -> Result<Cluster, String> {
    let mut cluster = Cluster::new(seed, ensemble, faults);
    let outcome = (|| {
        for _ in 0..events {
            cluster.step()?;
        }
        cluster.settle(20 * ELECTION_TICKS as u64)?;
        cluster.check_settled()
    })();
    match outcome {
        Ok(()) => Ok(cluster),
        Err(e) => Err(format!(
            "seed {seed} ({ensemble}) failed after {} events: {e}\nlast events:\n{}",
            cluster.events,
            cluster.trace.join("\n")
        )),
    }
}

fn seeds() -> Vec<u64> {
    match std::env::var("CONCLAVE_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("CONCLAVE_SIM_SEED is a number")],
        Err(_) => (1..=env_u64("CONCLAVE_SIM_SEEDS", 200)).collect(),
    }
}

/// What the runs of one test checked, summed over its seeds.
#[derive(Debug, Default)]
struct Work {
    acknowledged: usize,
    syncs: u64,
    /// Entries applied by every observer of a run.
    learned: usize,
}

impl std::fmt::Display for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} acknowledged writes and {} syncs checked",
            self.acknowledged, self.syncs
        )?;
        if self.learned > 0 {
            write!(f, ", {} entries applied by every observer", self.learned)?;
        }
        Ok(())
    }
}

/// Runs every seed of [`seeds`] with default faults on the ensemble
/// `ensemble(seed)`; `offset` is added to each seed so that each test
/// drives its own runs. A failure panics with the line that replays it.
fn run_seeds(test: &str, offset: u64, ensemble: impl Fn(u64) -> Ensemble) -> Work {
    let events = env_u64("CONCLAVE_SIM_EVENTS", 4000);
    let mut work = Work::default();
    for seed in seeds() {
        let cluster = run(seed + offset, ensemble(seed), events, Faults::default())
            .unwrap_or_else(|e| {
                panic!(
                    "{e}\nreplay: CONCLAVE_SIM_SEED={seed} cargo test -p consensus --test simulation {test}"
                )
            });
        work.acknowledged += cluster.acknowledged();
        work.syncs += cluster.syncs_answered();
        work.learned += cluster.least_applied_by_observers();
    }
    // The runs must do real work, or the invariants prove nothing.
    assert!(work.acknowledged > 0, "no write was ever acknowledged");
    assert!(work.syncs > 0, "no sync was ever answered");
    work
}

#[test]
fn three_servers_keep_one_history_under_faults() {
    let work = run_seeds("three_servers", 0, |_| Ensemble::voters(3));
    eprintln!("3 servers: {work}");
}

#[test]
fn five_servers_keep_one_history_under_faults() {
    let work = run_seeds("five_servers", 10_000, |_| Ensemble::voters(5));
    eprintln!("5 servers: {work}");
}

/// Seven servers: quorums of four, and more ways for partitions and
/// crashes to leave minorities that still hear each other. Fewer writes
/// commit per run (a quorum is harder to gather), but the default seeds
/// take only seconds more.
#[test]
fn seven_servers_keep_one_history_under_faults() {
    let work = run_seeds("seven_servers", 20_000, |_| Ensemble::voters(7));
    eprintln!("7 servers: {work}");
}

/// Observers (raft-rs learners), one or two beside three voters: they
/// must apply every committed entry and end with the same tree (checked
/// after settling, as for every server), while the invariants never count
/// them toward a quorum (every applied entry is durable on a majority of
/// the voters alone) and never see one campaign or lead.
#[test]
fn observers_learn_everything_and_never_vote() {
    let work = run_seeds("observers_learn", 30_000, |seed| {
        Ensemble::voters(3).with_observers(1 + seed % 2)
    });
    assert!(work.learned > 0, "no observer ever applied an entry");
    eprintln!("3 voters + 1 or 2 observers: {work}");
}

#[test]
fn a_seed_replays_exactly() {
    let a = run(7, Ensemble::voters(3), 2000, Faults::default()).unwrap_or_else(|e| panic!("{e}"));
    let b = run(7, Ensemble::voters(3), 2000, Faults::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.trace, b.trace);
    assert_eq!(a.acknowledged(), b.acknowledged());
}

/// The invariants are not vacuous: a driver that sends votes and
/// acknowledgements before they are durable commits entries that no
/// majority holds durably (and loses them when servers crash), and the
/// checks notice within a few seeds.
#[test]
fn acknowledging_before_sync_is_caught() {
    let faults = Faults {
        ack_before_sync: true,
        crash: 40,
        restart: 60,
        ..Faults::default()
    };
    // raft-rs's own assertions may be what notices (a follower asked to
    // commit entries it lost): a panic counts as caught too.
    let caught = (1..=200u64).find_map(|seed| {
        let faults = faults.clone();
        match std::panic::catch_unwind(move || run(seed, Ensemble::voters(3), 4000, faults)) {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(format!("seed {seed}: raft-rs panicked")),
        }
    });
    let caught = caught.expect("200 seeds of a broken driver and no invariant failed");
    eprintln!(
        "caught as expected: {}",
        caught.lines().next().unwrap_or("")
    );
}

/// The sync check is not vacuous either: a server that answers `sync` from
/// its own commit index, without confirming with a quorum, is caught
/// serving a stale read.
#[test]
fn a_sync_without_read_index_is_caught() {
    let faults = Faults {
        sync_locally: true,
        ..Faults::default()
    };
    let caught =
        (1..=200u64).find_map(|seed| run(seed, Ensemble::voters(3), 4000, faults.clone()).err());
    let caught = caught.expect("200 seeds of local syncs and no stale read noticed");
    assert!(caught.contains("answered a sync"), "{caught}");
    eprintln!(
        "caught as expected: {}",
        caught.lines().next().unwrap_or("")
    );
}

/// Runs seeds 1..=20 of a deliberately broken ensemble, which must fail
/// some invariant; prints which seeds caught it and the first failure.
fn caught(bug: &str, ensemble: Ensemble, faults: Faults) {
    let caught: Vec<(u64, String)> = (1..=20u64)
        .filter_map(|seed| {
            run(seed, ensemble, 4000, faults.clone())
                .err()
                .map(|e| (seed, e))
        })
        .collect();
    let Some((_, first)) = caught.first() else {
        panic!("20 seeds of {bug} and no invariant failed");
    };
    let seeds: Vec<u64> = caught.iter().map(|(seed, _)| *seed).collect();
    eprintln!(
        "{bug} caught as expected by seeds {seeds:?}: {}",
        first.lines().next().unwrap_or("")
    );
}

/// Nor is the history check: a server that applies entries as soon as they
/// reach its log, before a majority of voters holds them, is caught
/// applying what was never committed.
#[test]
fn applying_before_commit_is_caught() {
    let faults = Faults {
        apply_before_commit: true,
        ..Faults::default()
    };
    caught("applying before commit", Ensemble::voters(3), faults);
}

/// The observer checks are not vacuous: servers configured to count
/// observers as voters commit what only a minority of the real voters
/// holds, or let an observer campaign, and the invariants notice.
#[test]
fn counting_observers_as_voters_is_caught() {
    let faults = Faults {
        observers_vote: true,
        ..Faults::default()
    };
    caught(
        "counting observers as voters",
        Ensemble::voters(3).with_observers(2),
        faults,
    );
}

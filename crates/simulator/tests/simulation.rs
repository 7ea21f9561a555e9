//! Whole ensembles of the driver that ships, from seeds, under every fault
//! (`simulator::Faults`), checked after every event and, at the end, for
//! linearizability of everything the clients did.
//!
//! A failure prints the command that replays it alone:
//! `CONCLAVE_SIM_SEED=<seed> cargo test -p simulator --test simulation <test>`;
//! add `CONCLAVE_SIM_TRACE=1` (and `-- --nocapture`) to see every event as
//! it happens. More seeds: `CONCLAVE_SIM_SEEDS=<count>` (per test); longer
//! runs: `CONCLAVE_SIM_EVENTS=<count>` (default 3000). Many seeds are best
//! run with `--release` (`docs/simulation.md` has the figures).

use simulator::{Cluster, Ensemble, Faults, Plan};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `CONCLAVE_SIM_SEED` alone, or seeds 1..=`CONCLAVE_SIM_SEEDS`
/// (`default` if unset).
fn seeds(default: u64) -> Vec<u64> {
    match std::env::var("CONCLAVE_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("CONCLAVE_SIM_SEED is a number")],
        Err(_) => (1..=env_u64("CONCLAVE_SIM_SEEDS", default)).collect(),
    }
}

fn events() -> u64 {
    env_u64("CONCLAVE_SIM_EVENTS", 3000)
}

/// Rounds of a good network the settling phase may take.
const SETTLE_ROUNDS: u64 = 400;

/// `events` events, then settling, the final checks and the history check.
fn drive(mut cluster: Cluster, events: u64, what: &str) -> Result<(Cluster, Work), String> {
    let outcome = (|| {
        for _ in 0..events {
            cluster.step()?;
        }
        cluster.settle(SETTLE_ROUNDS)?;
        cluster.check_history()
    })();
    match outcome {
        Ok(summary) => {
            let work = Work::of(&cluster, summary.operations_checked as u64);
            Ok((cluster, work))
        }
        Err(e) => Err(format!(
            "{what} failed after {} events: {e}\nlast events:\n{}",
            cluster.events,
            cluster.trace.join("\n")
        )),
    }
}

/// The servers' own logs, with `RUST_LOG` set (to follow a replayed seed).
fn logs() {
    if let Ok(filter) = std::env::var("RUST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
}

fn run(
    seed: u64,
    ensemble: Ensemble,
    events: u64,
    faults: Faults,
) -> Result<(Cluster, Work), String> {
    logs();
    drive(
        Cluster::new(seed, ensemble, faults),
        events,
        &format!("seed {seed} ({ensemble})"),
    )
}

fn run_plan(seed: u64, plan: Plan, events: u64, faults: Faults) -> Result<(Cluster, Work), String> {
    logs();
    let name = plan.name;
    drive(
        Cluster::with_plan(seed, plan, faults),
        events,
        &format!("seed {seed} ({name})"),
    )
}

/// What the runs of one test did, summed over its seeds.
#[derive(Debug, Default, Clone, Copy)]
struct Work {
    runs: u64,
    events: u64,
    operations_checked: u64,
    acknowledged: u64,
    unknown: u64,
    entries_applied: u64,
    crashes: u64,
    partitions: u64,
    pauses: u64,
    lost_disks: u64,
    corrupt_disks: u64,
    restored: u64,
    stale_configs: u64,
    joined: u64,
    changes_asked: u64,
    membership_changes: u64,
    image_chunks: u64,
    image_chunks_lost: u64,
    image_chunks_resent: u64,
    images_superseded: u64,
    crashes_mid_image: u64,
    crashes_sending_image: u64,
}

impl Work {
    fn of(cluster: &Cluster, operations: u64) -> Work {
        let s = cluster.stats;
        Work {
            runs: 1,
            events: cluster.events,
            operations_checked: operations,
            acknowledged: cluster.workload.counts.acknowledged,
            unknown: cluster.workload.counts.unknown,
            entries_applied: cluster.checks.applied_entries,
            crashes: s.crashes,
            partitions: s.partitions,
            pauses: s.pauses,
            lost_disks: s.lost_disks,
            corrupt_disks: s.corrupt_disks,
            restored: s.restored,
            stale_configs: s.stale_configs,
            joined: s.joined,
            changes_asked: s.changes_asked,
            membership_changes: cluster.checks.configs.changes() as u64,
            image_chunks: s.image_chunks,
            image_chunks_lost: s.image_chunks_lost,
            image_chunks_resent: s.image_chunks_resent,
            images_superseded: s.images_superseded,
            crashes_mid_image: s.crashes_mid_image,
            crashes_sending_image: s.crashes_sending_image,
        }
    }

    fn add(&mut self, o: Work) {
        self.runs += o.runs;
        self.events += o.events;
        self.operations_checked += o.operations_checked;
        self.acknowledged += o.acknowledged;
        self.unknown += o.unknown;
        self.entries_applied += o.entries_applied;
        self.crashes += o.crashes;
        self.partitions += o.partitions;
        self.pauses += o.pauses;
        self.lost_disks += o.lost_disks;
        self.corrupt_disks += o.corrupt_disks;
        self.restored += o.restored;
        self.stale_configs += o.stale_configs;
        self.joined += o.joined;
        self.changes_asked += o.changes_asked;
        self.membership_changes += o.membership_changes;
        self.image_chunks += o.image_chunks;
        self.image_chunks_lost += o.image_chunks_lost;
        self.image_chunks_resent += o.image_chunks_resent;
        self.images_superseded += o.images_superseded;
        self.crashes_mid_image += o.crashes_mid_image;
        self.crashes_sending_image += o.crashes_sending_image;
    }
}

impl std::fmt::Display for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} runs, {} events, {} entries applied; {} client operations checked \
             ({} acknowledged, {} unknown); faults: {} crashes, {} partitions, {} pauses, \
             {} lost and {} corrupted disks ({} members restored), {} stale configs; \
             {} joiners, {} membership changes committed; snapshot images: {} chunks delivered, \
             {} lost, {} sent again, {} transfers superseded, {} crashes mid-receive, \
             {} crashes mid-send",
            self.runs,
            self.events,
            self.entries_applied,
            self.operations_checked,
            self.acknowledged,
            self.unknown,
            self.crashes,
            self.partitions,
            self.pauses,
            self.lost_disks,
            self.corrupt_disks,
            self.restored,
            self.stale_configs,
            self.joined,
            self.membership_changes,
            self.image_chunks,
            self.image_chunks_lost,
            self.image_chunks_resent,
            self.images_superseded,
            self.crashes_mid_image,
            self.crashes_sending_image
        )
    }
}

/// Runs every seed (+ `offset`, so each test drives its own runs) on
/// `ensemble(seed)` with default faults; a failure panics with the line
/// that replays it.
fn run_seeds(test: &str, offset: u64, default: u64, ensemble: impl Fn(u64) -> Ensemble) -> Work {
    let mut work = Work::default();
    for seed in seeds(default) {
        let (_, w) = run(seed + offset, ensemble(seed), events(), Faults::default()).unwrap_or_else(|e| {
            panic!(
                "{e}\nreplay: CONCLAVE_SIM_SEED={seed} cargo test -p simulator --test simulation {test}"
            )
        });
        work.add(w);
    }
    // The runs must do real work, or the checks prove nothing.
    if replaying_one() {
        return work;
    }
    assert!(work.acknowledged > 0, "no write was ever acknowledged");
    assert!(work.operations_checked > 0, "no operation was checked");
    work
}

/// A single seed is being replayed: the tests' totals say nothing.
fn replaying_one() -> bool {
    std::env::var_os("CONCLAVE_SIM_SEED").is_some()
}

#[test]
fn three_servers_keep_one_history_under_faults() {
    let work = run_seeds("three_servers", 0, 300, |_| Ensemble::voters(3));
    assert!(
        work.restored > 0 || replaying_one(),
        "no member ever lost its disk and came back"
    );
    eprintln!("3 servers: {work}");
}

#[test]
fn five_servers_keep_one_history_under_faults() {
    let work = run_seeds("five_servers", 10_000, 150, |_| Ensemble::voters(5));
    eprintln!("5 servers: {work}");
}

#[test]
fn seven_servers_keep_one_history_under_faults() {
    let work = run_seeds("seven_servers", 20_000, 75, |_| Ensemble::voters(7));
    eprintln!("7 servers: {work}");
}

/// Observers (raft-rs learners), one or two beside three voters: they
/// apply every committed entry and end with the same tree, while no quorum
/// ever counts them and none ever campaigns.
#[test]
fn observers_learn_everything_and_never_vote() {
    let work = run_seeds("observers_learn", 30_000, 100, |seed| {
        Ensemble::voters(3).with_observers(1 + seed % 2)
    });
    eprintln!("3 voters + 1 or 2 observers: {work}");
}

#[test]
fn a_seed_replays_exactly() {
    let once = || {
        let (cluster, work) =
            run(7, Ensemble::voters(3), 1500, Faults::default()).unwrap_or_else(|e| panic!("{e}"));
        (cluster.trace, work.acknowledged, work.entries_applied)
    };
    assert_eq!(once(), once());
}

// Membership: each scenario follows a plan of goals; the leader of the
// moment is asked for the current goal and takes single steps toward it,
// while clients write and every fault goes on. Joiners start empty (half
// of them the way ZooKeeper documents, half with conclave.join=true) and
// are caught up by snapshot.

/// The faults of the membership runs: crashes and partitions half as
/// often, so a leader with a quorum is around often enough for plans to
/// get somewhere.
fn membership_faults() -> Faults {
    Faults {
        crash: 3,
        restart: 40,
        partition: 2,
        one_way: 1,
        heal: 20,
        ..Faults::default()
    }
}

/// The faults of the wiped-member runs: disks lost often, with crashes to
/// bring the wiped members back.
fn disk_loss_faults() -> Faults {
    Faults {
        lose_disk: 12,
        crash: 10,
        ..Faults::default()
    }
}

fn run_plans(test: &str, offset: u64, plan: impl Fn(u64) -> Plan) -> Work {
    let mut work = Work::default();
    for seed in seeds(40) {
        let (_, w) = run_plan(seed + offset, plan(seed), events(), membership_faults())
            .unwrap_or_else(|e| {
                panic!(
                    "{e}\nreplay: CONCLAVE_SIM_SEED={seed} cargo test -p simulator --test simulation {test}"
                )
            });
        work.add(w);
    }
    if !replaying_one() {
        assert!(
            work.membership_changes > 0,
            "no membership change ever committed"
        );
        assert!(work.acknowledged > 0, "no write was ever acknowledged");
    }
    work
}

#[test]
fn membership_grows_three_to_five_and_back() {
    let work = run_plans("grows_three_to_five", 40_000, Plan::grow_and_shrink);
    assert!(work.joined > 0 || replaying_one(), "no joiner");
    eprintln!("grow 3 to 5 and back: {work}");
}

#[test]
fn membership_replaces_members() {
    let work = run_plans("replaces_members", 50_000, Plan::replace_members);
    eprintln!("replace a member: {work}");
}

#[test]
fn membership_removes_the_leader() {
    let work = run_plans("removes_the_leader", 60_000, Plan::remove_the_leader);
    eprintln!("remove the leader: {work}");
}

#[test]
fn membership_demotes_a_voter_and_promotes_it_back() {
    let work = run_plans("demotes_a_voter", 70_000, Plan::demote_and_promote);
    eprintln!("demote and promote back: {work}");
}

#[test]
fn membership_observers_come_and_go() {
    let work = run_plans("observers_come_and_go", 80_000, Plan::observers_come_and_go);
    eprintln!("observers come and go: {work}");
}

// The checks are not vacuous: each deliberately broken behaviour below is
// caught within a few seeds.

/// Runs seeds 1..=`max` of `ensemble` (or of `plan`) with `faults`, which
/// must fail a check whose message holds one of `expected`; prints which
/// seeds caught it.
fn caught(
    bug: &str,
    max: u64,
    faults: Faults,
    ensemble: Ensemble,
    plan: Option<fn(u64) -> Plan>,
    expected: &[&str],
) {
    let mut first = None;
    let mut seeds = Vec::new();
    let tried: Vec<u64> = match std::env::var("CONCLAVE_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("CONCLAVE_SIM_SEED is a number")],
        Err(_) => (1..=max).collect(),
    };
    for seed in tried {
        let faults = faults.clone();
        let outcome = std::panic::catch_unwind(move || match plan {
            Some(plan) => run_plan(seed, plan(seed), 3000, faults).err(),
            None => run(seed, ensemble, 3000, faults).err(),
        });
        let failure = match outcome {
            Ok(failure) => failure,
            Err(panic) => Some(format!(
                "panicked: {}",
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default()
            )),
        };
        if let Some(failure) = failure {
            seeds.push(seed);
            first.get_or_insert(failure);
            if seeds.len() >= 2 {
                break;
            }
        }
    }
    let Some(first) = first else {
        panic!("{max} seeds of {bug} and no check failed");
    };
    assert!(
        expected.iter().any(|e| first.contains(e)),
        "{bug} failed otherwise than expected: {first}"
    );
    eprintln!(
        "{bug} caught as expected by seeds {seeds:?}: {}",
        first.lines().next().unwrap_or("")
    );
}

const LOST_WRITE: &[&str] = &[
    "not linearizable",
    "never committed",
    "was applied there before",
    "two leaders",
];

#[test]
fn acknowledging_before_sync_is_caught() {
    let faults = Faults {
        ack_before_sync: true,
        crash: 40,
        restart: 60,
        ..Faults::default()
    };
    caught(
        "acknowledging before sync",
        200,
        faults,
        Ensemble::voters(3),
        None,
        LOST_WRITE,
    );
}

#[test]
fn a_sync_without_read_index_is_caught() {
    let faults = Faults {
        sync_locally: true,
        ..Faults::default()
    };
    caught(
        "sync answered locally",
        100,
        faults,
        Ensemble::voters(3),
        None,
        &["not linearizable"],
    );
}

#[test]
fn a_reopen_answered_without_the_leader_is_caught() {
    let faults = Faults {
        reopen_locally: true,
        partition: 12,
        ..Faults::default()
    };
    caught(
        "re-open answered locally",
        100,
        faults,
        Ensemble::voters(3),
        None,
        &["not linearizable"],
    );
}

#[test]
fn applying_before_commit_is_caught() {
    let faults = Faults {
        apply_before_commit: true,
        ..Faults::default()
    };
    caught(
        "applying before commit",
        60,
        faults,
        Ensemble::voters(3),
        None,
        LOST_WRITE,
    );
}

#[test]
fn counting_observers_as_voters_is_caught() {
    let faults = Faults {
        observers_vote: true,
        ..Faults::default()
    };
    caught(
        "counting observers as voters",
        60,
        faults,
        Ensemble::voters(3).with_observers(2),
        None,
        &[LOST_WRITE, &["but is no voter"]].concat(),
    );
}

#[test]
fn a_wiped_member_that_votes_at_once_is_caught() {
    let mut faults = disk_loss_faults();
    faults.driver.vote_while_restoring = true;
    caught(
        "a wiped member voting at once",
        200,
        faults,
        Ensemble::voters(3),
        None,
        &[
            "granted a vote while Restoring",
            "campaigns while Restoring",
            "not linearizable",
            "never committed",
        ],
    );
}

#[test]
fn bootstrapping_at_index_zero_is_caught() {
    let mut faults = membership_faults();
    faults.driver.bootstrap_at_zero = true;
    caught(
        "bootstrapping at index 0",
        20,
        faults,
        Ensemble::voters(3),
        Some(Plan::grow_and_shrink),
        &["removed all voters", "describes", "stopped"],
    );
}

#[test]
fn more_than_one_step_per_change_is_caught() {
    let mut faults = membership_faults();
    faults.driver.jump_to_goal = true;
    caught(
        "two steps in one change",
        20,
        faults,
        Ensemble::voters(3),
        Some(Plan::replace_members),
        &["describes", "diverged"],
    );
}

/// Without faults every operation is answered: a calm ensemble forms,
/// serves, and the history is full of acknowledged operations.
#[test]
fn a_calm_ensemble_answers_every_operation() {
    let (cluster, work) =
        run(1, Ensemble::voters(3), 3000, Faults::none()).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("calm: {work}; {:?}", cluster.workload.counts);
    assert!(work.acknowledged > 50, "{work}");
    assert_eq!(work.unknown, 0, "{work}");
}

/// The join the e2e found broken: a server with no state took a heartbeat
/// with commit 0 as "the leader knows me as new" and its snapshot, and so
/// voted again without restoring when a leader elected just now reached it
/// first (`guard.rs`, Joining).
#[test]
fn a_wiped_member_taken_as_new_is_caught() {
    let mut faults = disk_loss_faults();
    faults.driver.join_on_empty_heartbeat = true;
    caught(
        "a wiped member taken as new on a heartbeat with commit 0",
        400,
        faults,
        Ensemble::voters(3),
        None,
        &["two leaders in term", "not linearizable", "never committed"],
    );
}

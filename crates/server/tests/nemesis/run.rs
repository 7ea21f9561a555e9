//! One run: the ensemble, the clients, the nemesis, the end (heal, final
//! reads on every member), the checks, and the verdict — a summary on a
//! pass; on a failure, the evidence kept in the run's directory, the seed
//! and the command that replays it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lincheck::models::sequential::check_sequential_creates;
use lincheck::models::znode::ZnodeModel;
use lincheck::{Budget, History};
use serde::Serialize;

use crate::cluster::{Cluster, Unavailable};
use crate::nemesis::Nemesis;
use crate::raw_client::{Client, create_request};
use crate::rng::{self, Rng};
use crate::workload::{Env, REGISTER_EPOCH, REQUEST_TIMEOUT, SEQUENTIAL_EPOCH, SESSION_MS, Stats};
use crate::{ephemerals, registers, sequential};

/// The longest stretch without any acknowledged write the run accepts
/// while faults are injected: the budget leaves a majority able to serve,
/// and an election takes a second or two.
const LIVENESS_LIMIT: Duration = Duration::from_secs(30);

/// How long the ensemble may take to serve again once every fault ends.
const SETTLE_LIMIT: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub members: usize,
    pub default_secs: u64,
    pub test: &'static str,
}

/// The two tests take turns, also when a runner puts them in separate
/// processes (nextest): two ensembles at once on a small machine would
/// measure the machine. An exclusive lock on a file in the temporary
/// directory, held for the whole run (released when the process ends).
fn take_turn() -> std::fs::File {
    let path = std::env::temp_dir().join("conclave-nemesis.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    file.lock()
        .unwrap_or_else(|e| panic!("locking {}: {e}", path.display()));
    file
}

/// Sets the stop flag when dropped, so client threads end even when the
/// run panics.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn required() -> bool {
    ["CONCLAVE_NEMESIS_REQUIRE", "LAZYFS_REQUIRE_FUSE"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| s != "0" && !s.is_empty()))
}

pub fn run(settings: Settings) {
    let _turn = take_turn();
    let seed = rng::seed();
    let secs: u64 = std::env::var("CONCLAVE_NEMESIS_SECS")
        .ok()
        .map(|s| {
            s.trim()
                .parse()
                .expect("CONCLAVE_NEMESIS_SECS: a number of seconds")
        })
        .unwrap_or(settings.default_secs);
    let sabotage = std::env::var("CONCLAVE_NEMESIS_SABOTAGE").ok();
    let replay = format!(
        "CONCLAVE_NEMESIS_SEED={seed} CONCLAVE_NEMESIS_SECS={secs}{} cargo test -p server \
         --test nemesis {} -- --exact --nocapture",
        sabotage
            .as_ref()
            .map(|s| format!(" CONCLAVE_NEMESIS_SABOTAGE={s}"))
            .unwrap_or_default(),
        settings.test
    );
    println!(
        "nemesis seed {seed}: {} servers for {secs} s (replay: {replay})",
        settings.members
    );
    let root = std::env::temp_dir().join(format!(
        "conclave-nemesis-{}-{}-servers",
        std::process::id(),
        settings.members
    ));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    println!("run directory: {}", root.display());

    let mut cluster = match Cluster::start(settings.members, &root) {
        Ok(cluster) => cluster,
        Err(Unavailable(why)) => {
            assert!(!required(), "the nemesis test is required but: {why}");
            eprintln!("SKIPPED: cannot run the nemesis test here: {why}");
            let _ = std::fs::remove_dir_all(&root);
            return;
        }
    };
    let mut rng = Rng::new(seed);
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_guard = StopOnDrop(stop.clone());
    let stats = Arc::new(Stats::default());
    let mut env = Env {
        addrs: cluster.client_addrs(),
        stop: stop.clone(),
        stats: stats.clone(),
        started: Instant::now(),
        // The faults, the settling, the last writes, and some slack.
        horizon: Duration::from_secs(secs) + SETTLE_LIMIT + Duration::from_secs(60),
    };
    let parents = env.epochs(SEQUENTIAL_EPOCH);
    setup(&cluster, parents);
    env.started = Instant::now();
    let keys = settings.members + 2;
    let register_recorder = registers::Recorder::new();
    let sequential_recorder = sequential::Recorder::new();
    let ephemeral_recorder = ephemerals::Recorder::new();
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name)
            .spawn(f)
            .expect("spawn a client thread")
    };
    for member in 0..settings.members {
        for k in 0..2u64 {
            let id = member as u64 * 2 + k + 1;
            let (env, rec, r) = (env.clone(), register_recorder.clone(), rng.fork());
            threads.push(spawn(
                format!("registers-{id}"),
                Box::new(move || registers::client(env, rec, id, member, keys, r)),
            ));
        }
        let id = member as u64 + 1;
        let (env2, rec, r) = (env.clone(), sequential_recorder.clone(), rng.fork());
        threads.push(spawn(
            format!("sequential-{id}"),
            Box::new(move || sequential::client(env2, rec, id, member, r)),
        ));
        let (env3, rec, r) = (env.clone(), ephemeral_recorder.clone(), rng.fork());
        threads.push(spawn(
            format!("ephemerals-{id}"),
            Box::new(move || ephemerals::client(env3, rec, id, member, r)),
        ));
    }

    let mut nemesis = Nemesis::new(rng.fork(), settings.members);
    stats.reset_gap();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    if sabotage.as_deref() == Some("wipe-all") {
        nemesis.run_until(&mut cluster, started + Duration::from_secs(secs / 2));
        nemesis.sabotage(&mut cluster);
        if let Err(e) = nemesis.settle(&mut cluster, SETTLE_LIMIT) {
            nemesis.problems.push(format!("after the sabotage: {e}"));
        }
        setup(&cluster, parents);
    } else if let Some(other) = &sabotage {
        panic!("CONCLAVE_NEMESIS_SABOTAGE={other}: the only sabotage is wipe-all");
    }
    nemesis.run_until(&mut cluster, deadline);
    let gap_under_faults = stats.longest_gap();
    nemesis.finish(&mut cluster);
    let mut problems = std::mem::take(&mut nemesis.problems);
    let healthy = nemesis.settle(&mut cluster, SETTLE_LIMIT);
    problems.append(&mut nemesis.problems);
    let healed_at = Instant::now();
    let writes_before = stats.writes();
    match &healthy {
        Ok(leader) => {
            println!(
                "every member serves again, server {} leads ({:.1}s after the faults ended)",
                cluster.members[*leader].id,
                healed_at.duration_since(deadline).as_secs_f64()
            );
            // The ensemble must make progress again: writes acknowledged
            // within a few seconds.
            let until = Instant::now() + Duration::from_secs(10);
            while stats.writes() < writes_before + 20 && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            if stats.writes() < writes_before + 20 {
                problems.push(format!(
                    "after healing, only {} writes were acknowledged in 10 s",
                    stats.writes() - writes_before
                ));
            }
        }
        Err(e) => problems.push(format!("after healing: {e}")),
    }
    if gap_under_faults > LIVENESS_LIMIT {
        problems.push(format!(
            "no write was acknowledged for {:.1}s while faults were injected (limit {LIVENESS_LIMIT:?})",
            gap_under_faults.as_secs_f64()
        ));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        if t.join().is_err() {
            problems.push("a client thread panicked (see above)".into());
        }
    }
    for panic in panics_in_logs(&cluster.log_paths()) {
        problems.push(format!("a server panicked: {panic}"));
    }
    if healthy.is_ok() {
        final_reads(
            &cluster,
            &env,
            keys,
            &register_recorder,
            &sequential_recorder,
            &ephemeral_recorder,
            &mut problems,
        );
    }

    // The checks.
    // Every client thread has ended, so these are the last handles: the
    // histories are taken, not copied (a long run's are large).
    let registers_history = register_recorder
        .try_into_history()
        .unwrap_or_else(|r| r.snapshot());
    let sequential_history = sequential_recorder
        .try_into_history()
        .unwrap_or_else(|r| r.snapshot());
    let ephemerals_history = ephemeral_recorder
        .try_into_history()
        .unwrap_or_else(|r| r.snapshot());
    let checked = Instant::now();
    let registers_report = lincheck::check(
        &ZnodeModel::new(),
        &registers_history,
        Budget::default().with_time_limit(Duration::from_secs(300)),
    );
    let sequential_report = check_sequential_creates(&sequential_history, &[]);
    let ephemerals_report = ephemerals::check(&ephemerals_history);
    let check_time = checked.elapsed();
    let mut failures = problems;
    if !registers_report.verdict.is_linearizable() {
        failures.push(format!("registers: {registers_report}"));
    }
    if !sequential_report.is_ok() {
        failures.push(format!("sequential creates: {sequential_report}"));
    }
    if !ephemerals_report.is_ok() {
        failures.push(format!("ephemerals: {ephemerals_report}"));
    }
    for (name, acked) in [
        ("registers", counts(&registers_history).0),
        ("sequential", counts(&sequential_history).0),
        ("ephemerals", counts(&ephemerals_history).0),
    ] {
        if acked < 10 {
            failures.push(format!(
                "{name}: only {acked} operations acknowledged in the whole run"
            ));
        }
    }

    let mut summary = String::new();
    let mut line = |s: String| {
        summary.push_str(&s);
        summary.push('\n');
    };
    line(format!(
        "== nemesis: {} servers, {secs} s of faults, seed {seed} ==",
        settings.members
    ));
    let faults: Vec<String> = nemesis
        .counts
        .iter()
        .map(|(kind, n)| format!("{kind}: {n}"))
        .collect();
    line(format!(
        "faults ({} in all): {}",
        nemesis.counts.values().sum::<u64>(),
        faults.join(", ")
    ));
    line(format!(
        "power cuts dropped {} unsynced bytes in {} files; wiped servers served again after {}; \
         {} peer connections through the proxy; {} client sessions",
        nemesis.power_cut_dropped.1,
        nemesis.power_cut_dropped.0,
        durations(&nemesis.rejoin_times),
        cluster.proxy.connections(),
        stats.sessions.load(Ordering::Relaxed)
    ));
    line(format!(
        "longest stretch without an acknowledged write while faults ran: {:.1}s",
        gap_under_faults.as_secs_f64()
    ));
    for (name, (acked, unknown)) in [
        ("registers", counts(&registers_history)),
        ("sequential", counts(&sequential_history)),
        ("ephemerals", counts(&ephemerals_history)),
    ] {
        line(format!(
            "{name}: {} operations, {acked} acknowledged, {unknown} unknown",
            acked + unknown
        ));
    }
    let unexpected = stats.unexpected_codes();
    if !unexpected.is_empty() {
        let list: Vec<String> = unexpected
            .iter()
            .map(|((w, code), n)| format!("{w} error {code}: {n}"))
            .collect();
        line(format!(
            "replies recorded as unknown outcomes: {}",
            list.join(", ")
        ));
    }
    line(format!(
        "registers check: {} [{}]",
        verdict_line(&registers_report.verdict),
        registers_report.summary
    ));
    line(format!(
        "sequential check: {}",
        sequential_report
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
    ));
    line(format!(
        "ephemerals check: {}",
        ephemerals_report
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
    ));
    line(format!("checks took {:.1}s", check_time.as_secs_f64()));
    print!("{summary}");

    if failures.is_empty() {
        let errors = cluster.shutdown();
        drop(cluster);
        assert!(errors.is_empty(), "cleaning up: {errors:?}");
        let _ = std::fs::remove_dir_all(&root);
        println!("PASS");
        return;
    }
    keep_evidence(
        &root,
        &summary,
        &failures,
        &nemesis.events,
        &registers_history,
        &sequential_history,
        &ephemerals_history,
    );
    let logs = cluster.log_paths();
    let errors = cluster.shutdown();
    drop(cluster);
    let mut message = format!("FAIL: {} problems\n", failures.len());
    for failure in &failures {
        message.push_str(&format!("- {}\n", clip(failure, 60)));
    }
    message.push_str(&format!(
        "evidence kept in {} (histories as JSON lines, nemesis.log, report.txt, the servers' \
         logs: {} files under member-*/, their disks under member-*/disk)\nseed {seed}; replay: {replay}\n",
        root.display(),
        logs.len()
    ));
    if !errors.is_empty() {
        message.push_str(&format!("cleaning up: {errors:?}\n"));
    }
    panic!("{message}");
}

/// Creates the parents of the sequential and ephemeral workloads (before
/// any client runs, and again after the sabotage).
fn setup(cluster: &Cluster, parents: u64) {
    let mut paths = vec![sequential::ROOT.to_owned(), ephemerals::PARENT.to_owned()];
    paths.extend((0..parents).map(sequential::parent));
    let addrs = cluster.client_addrs();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut client: Option<Client> = None;
    let mut member = 0;
    let mut created = 0;
    while created < paths.len() {
        assert!(
            Instant::now() < deadline,
            "cannot create {}\n{}",
            paths[created],
            cluster.log_tails(30)
        );
        let Some(c) = client.as_mut() else {
            member = (member + 1) % addrs.len();
            client = Client::connect(addrs[member], SESSION_MS).ok();
            if client.is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
            continue;
        };
        match c.call(&create_request(&paths[created], b"", 0), REQUEST_TIMEOUT) {
            Ok(reply) if reply.err == 0 || reply.err == proto::ErrorCode::NodeExists as i32 => {
                created += 1;
            }
            _ => client = None,
        }
    }
    if let Some(c) = client {
        let _ = c.close_session(REQUEST_TIMEOUT);
    }
}

/// After healing: on every member, a read of every register and of the
/// children of every sequential parent (of every epoch so far) and of
/// `/eph`, each right after `sync`, recorded like the workloads' reads (a
/// few attempts each).
fn final_reads(
    cluster: &Cluster,
    env: &Env,
    keys: usize,
    register_recorder: &registers::Recorder,
    sequential_recorder: &sequential::Recorder,
    ephemeral_recorder: &ephemerals::Recorder,
    problems: &mut Vec<String>,
) {
    const FINAL_CLIENT: u64 = 0;
    for (i, addr) in cluster.client_addrs().into_iter().enumerate() {
        let id = cluster.members[i].id;
        let mut done = false;
        for _ in 0..5 {
            let Ok(mut client) = Client::connect(addr, SESSION_MS) else {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            };
            let mut versions = Default::default();
            let registers_ok = (0..=env.epoch(REGISTER_EPOCH)).all(|epoch| {
                (0..keys).all(|k| {
                    registers::perform(
                        &mut client,
                        register_recorder,
                        FINAL_CLIENT,
                        &lincheck::models::znode::ZnodeOp::GetData {
                            path: registers::key(epoch, k),
                        },
                        env,
                        &mut versions,
                    )
                })
            });
            let sequential_ok = registers_ok
                && (0..=env.epoch(SEQUENTIAL_EPOCH)).all(|epoch| {
                    sequential::read_children(
                        &mut client,
                        sequential_recorder,
                        FINAL_CLIENT,
                        env,
                        &sequential::parent(epoch),
                    )
                    .is_some()
                });
            if sequential_ok
                && ephemerals::read_on(&mut client, env, ephemeral_recorder, FINAL_CLIENT).is_some()
            {
                let _ = client.close_session(REQUEST_TIMEOUT);
                done = true;
                break;
            }
        }
        if !done {
            problems.push(format!("the final reads on server {id} failed"));
        }
    }
}

/// At most `lines` lines of `text` (a check may report thousands of
/// violations after one loss).
fn clip(text: &str, lines: usize) -> String {
    let total = text.lines().count();
    if total <= lines {
        return text.to_owned();
    }
    let mut out: Vec<&str> = text.lines().take(lines).collect();
    let more = format!("  ... {} more lines (report.txt has more)", total - lines);
    out.push(&more);
    out.join("\n")
}

/// Lines of the servers' logs that say a thread panicked.
fn panics_in_logs(logs: &[PathBuf]) -> Vec<String> {
    let mut found = Vec::new();
    for path in logs {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for line in text.lines().filter(|l| l.contains("panicked at")) {
            found.push(format!("{}: {line}", path.display()));
        }
    }
    found
}

/// (acknowledged, unknown) operations of a history.
fn counts<I, O>(history: &History<I, O>) -> (usize, usize) {
    let acked = history
        .operations()
        .iter()
        .filter(|op| op.completion.is_some())
        .count();
    (acked, history.len() - acked)
}

fn verdict_line(verdict: &lincheck::Verdict) -> String {
    verdict
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn durations(times: &[Duration]) -> String {
    if times.is_empty() {
        return "(no wipe)".into();
    }
    let list: Vec<String> = times
        .iter()
        .map(|t| format!("{:.1}s", t.as_secs_f64()))
        .collect();
    list.join(", ")
}

fn save<I: Serialize, O: Serialize>(root: &Path, name: &str, history: &History<I, O>) -> PathBuf {
    let path = root.join(name);
    if let Err(e) = history.save_jsonl(&path) {
        eprintln!("saving {}: {e}", path.display());
    }
    path
}

fn keep_evidence(
    root: &Path,
    summary: &str,
    failures: &[String],
    events: &[String],
    registers: &History<lincheck::models::znode::ZnodeOp, lincheck::models::znode::ZnodeOutput>,
    sequential: &History<
        lincheck::models::sequential::SequentialOp,
        lincheck::models::sequential::SequentialOutput,
    >,
    ephemerals: &History<ephemerals::EphOp, ephemerals::EphOutput>,
) {
    let files: BTreeMap<&str, PathBuf> = [
        ("registers", save(root, "registers.jsonl", registers)),
        ("sequential", save(root, "sequential.jsonl", sequential)),
        ("ephemerals", save(root, "ephemerals.jsonl", ephemerals)),
    ]
    .into_iter()
    .collect();
    let _ = std::fs::write(root.join("nemesis.log"), events.join("\n") + "\n");
    let mut report = summary.to_owned();
    report.push_str("\nfailures:\n");
    for f in failures {
        report.push_str(&clip(f, 5000));
        report.push('\n');
    }
    report.push_str("\nhistories:\n");
    for (name, path) in files {
        report.push_str(&format!("{name}: {}\n", path.display()));
    }
    let _ = std::fs::write(root.join("report.txt"), report);
}

//! The throughput/latency benchmark: `sessions` sessions, each with
//! `in_flight` requests outstanding at all times (closed loop), for a warm-up
//! and then a measured window.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use proto::{Acl, CreateRequest, ErrorCode, PathWatchRequest, Request, SetDataRequest, perms};
use rand::rngs::SmallRng;
use rand::{Rng as _, RngCore as _, SeedableRng as _};
use serde::Serialize;

use crate::mntr::{self, GroupCommit};
use crate::pipeline;
use crate::session::{Session, error_name};
use crate::stats::{OpStats, own_cpu_seconds};

/// Where the benchmark keeps its znodes.
const ROOT: &str = "/loadgen";
/// Session timeout asked for; sessions are never idle while measuring.
const SESSION_TIMEOUT_MS: i32 = 30_000;
/// A session that gets no reply for this long fails the run.
const STALL: Duration = Duration::from_secs(60);

/// What a write is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum WriteOp {
    /// setData on one of `sessions × in_flight` existing znodes (the tree
    /// does not grow).
    Set,
    /// create of a new persistent znode per write (the tree grows).
    Create,
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct BenchArgs {
    /// host:port of the server, or of an ensemble's servers separated by
    /// commas: session i connects to server i mod n (setup and mntr use
    /// the first).
    #[arg(long, default_value = "127.0.0.1:2181")]
    server: String,
    /// Concurrent sessions (one TCP connection each).
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Requests kept outstanding per session.
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
    /// Measured window, seconds.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Load before the measured window, seconds (not measured).
    #[arg(long, default_value_t = 5.0)]
    warmup: f64,
    /// Bytes of data per write (random, incompressible).
    #[arg(long, default_value_t = 1024)]
    value_size: usize,
    /// The write.
    #[arg(long, value_enum, default_value_t = WriteOp::Set)]
    op: WriteOp,
    /// Fraction of requests that are getData of a benchmark znode (0..=1).
    #[arg(long, default_value_t = 0.0)]
    read_ratio: f64,
    /// Read `mntr` at the start and end of the window and report the
    /// group-commit figures (mntr must be whitelisted).
    #[arg(long)]
    mntr: bool,
    /// A label for the report (e.g. the server's name).
    #[arg(long, default_value = "")]
    label: String,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also report the window in slices of this many seconds (0: not),
    /// by completion time: what a disturbance in the middle of the window
    /// (a catch-up's phases) does to the latencies.
    #[arg(long, default_value_t = 0.0)]
    slice_s: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    label: String,
    server: String,
    sessions: usize,
    in_flight: usize,
    concurrency: usize,
    op: WriteOp,
    value_size: usize,
    read_ratio: f64,
    warmup_s: f64,
    window_s: f64,
    writes: OpStats,
    reads: Option<OpStats>,
    /// Error replies during the whole run (warm-up included), by code.
    errors: BTreeMap<String, u64>,
    group_commit: Option<GroupCommit>,
    /// CPU seconds the load generator itself used during the run.
    client_cpu_s: Option<f64>,
    /// With `--slice-s`: the window's slices in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    slices: Vec<Slice>,
}

/// The completions of one slice of the window.
#[derive(Debug, Serialize)]
struct Slice {
    /// Seconds from the window's start to the slice's.
    from_s: f64,
    writes: OpStats,
    reads: Option<OpStats>,
}

/// Samples of one session, for completions inside the window: latencies
/// in nanoseconds, each with its completion's offset in the window.
#[derive(Debug, Default)]
struct Samples {
    writes: Vec<(Duration, u64)>,
    reads: Vec<(Duration, u64)>,
    errors: BTreeMap<i32, u64>,
}

/// The latencies of the samples completed in `[from, to)` of the window.
fn within(samples: &[(Duration, u64)], from: Duration, to: Duration) -> Vec<u64> {
    samples
        .iter()
        .filter(|(at, _)| *at >= from && *at < to)
        .map(|&(_, nanos)| nanos)
        .collect()
}

/// The window cut into slices of `slice_s` seconds (the last may be
/// shorter).
fn slices(all: &Samples, window_s: f64, slice_s: f64, reads: bool) -> Vec<Slice> {
    let mut out = Vec::new();
    if slice_s <= 0.0 {
        return out;
    }
    let mut from = 0.0;
    while from < window_s {
        let to = (from + slice_s).min(window_s);
        let (a, b) = (Duration::from_secs_f64(from), Duration::from_secs_f64(to));
        out.push(Slice {
            from_s: from,
            writes: OpStats::from_nanos(within(&all.writes, a, b), to - from),
            reads: reads.then(|| OpStats::from_nanos(within(&all.reads, a, b), to - from)),
        });
        from = to;
    }
    out
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Write,
    Read,
}

pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.sessions > 0 && args.in_flight > 0,
        "sessions and in-flight must be > 0"
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.read_ratio),
        "read-ratio must be within 0..=1"
    );
    let targets = Arc::new(setup(&args).await?);

    let servers: Vec<&str> = args.server.split(',').collect();
    let mut sessions = Vec::with_capacity(args.sessions);
    for i in 0..args.sessions {
        let server = servers[i % servers.len()];
        sessions.push(Session::connect(server, SESSION_TIMEOUT_MS, Duration::from_secs(10)).await?);
    }
    let cpu_before = own_cpu_seconds();
    let begin = Instant::now();
    let start = begin + Duration::from_secs_f64(args.warmup);
    let end = start + Duration::from_secs_f64(args.duration);

    let mut tasks = Vec::with_capacity(args.sessions);
    for (index, session) in sessions.into_iter().enumerate() {
        let worker = Worker {
            index,
            in_flight: args.in_flight,
            op: args.op,
            read_ratio: args.read_ratio,
            targets: Arc::clone(&targets),
            value_size: args.value_size,
            start,
            end,
        };
        tasks.push(tokio::spawn(worker.run(session)));
    }
    let group_commit = if args.mntr {
        tokio::time::sleep_until(start.into()).await;
        let before = mntr::fetch(servers[0]).await?;
        tokio::time::sleep_until(end.into()).await;
        let after = mntr::fetch(servers[0]).await?;
        Some(GroupCommit::between(&before, &after, args.duration)?)
    } else {
        None
    };
    let mut all = Samples::default();
    for task in tasks {
        let s = task.await.context("a session task panicked")??;
        all.writes.extend(s.writes);
        all.reads.extend(s.reads);
        for (code, n) in s.errors {
            *all.errors.entry(code).or_default() += n;
        }
    }
    let client_cpu_s = cpu_before.zip(own_cpu_seconds()).map(|(a, b)| b - a);

    let report = Report {
        label: args.label.clone(),
        server: args.server.clone(),
        sessions: args.sessions,
        in_flight: args.in_flight,
        concurrency: args.sessions * args.in_flight,
        op: args.op,
        value_size: args.value_size,
        read_ratio: args.read_ratio,
        warmup_s: args.warmup,
        window_s: args.duration,
        slices: slices(&all, args.duration, args.slice_s, args.read_ratio > 0.0),
        writes: OpStats::from_nanos(
            all.writes.iter().map(|&(_, nanos)| nanos).collect(),
            args.duration,
        ),
        reads: (args.read_ratio > 0.0).then(|| {
            OpStats::from_nanos(
                all.reads.iter().map(|&(_, nanos)| nanos).collect(),
                args.duration,
            )
        }),
        errors: all
            .errors
            .iter()
            .map(|(&c, &n)| (error_name(c), n))
            .collect(),
        group_commit,
        client_cpu_s,
    };
    print_table(&report);
    let json = serde_json::to_string(&report)?;
    println!("{json}");
    if let Some(path) = &args.json {
        std::fs::write(path, format!("{json}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Creates the benchmark's znodes; returns the paths writes and reads use.
async fn setup(args: &BenchArgs) -> anyhow::Result<Vec<String>> {
    let first = args.server.split(',').next().unwrap_or_default();
    let mut session = Session::connect(first, SESSION_TIMEOUT_MS, Duration::from_secs(10)).await?;
    let mut rng = SmallRng::seed_from_u64(u64::MAX);
    let mut paths = vec![ROOT.to_owned()];
    let targets: Vec<String> = (0..args.sessions * args.in_flight)
        .map(|i| format!("{ROOT}/k{i}"))
        .collect();
    paths.extend(targets.iter().cloned());
    for path in paths {
        let reply = session
            .call(&create(
                path.clone(),
                random_bytes(&mut rng, args.value_size),
            ))
            .await?;
        if reply.err != ErrorCode::Ok.code() && reply.err != ErrorCode::NodeExists.code() {
            anyhow::bail!("creating {path}: {}", error_name(reply.err));
        }
    }
    session.close().await?;
    Ok(targets)
}

/// `len` fresh random bytes: every value differs and none compresses, so a
/// server that compresses what it stores gains nothing from the benchmark.
pub(crate) fn random_bytes(rng: &mut SmallRng, len: usize) -> Vec<u8> {
    let mut value = vec![0; len];
    rng.fill_bytes(&mut value);
    value
}

/// A persistent znode with the open ACL.
pub(crate) fn create(path: String, data: Vec<u8>) -> Request {
    Request::Create(CreateRequest {
        path,
        data: Some(data),
        acl: vec![Acl::new(perms::ALL, "world", "anyone")],
        flags: 0,
    })
}

#[derive(Debug)]
struct Worker {
    index: usize,
    in_flight: usize,
    op: WriteOp,
    read_ratio: f64,
    targets: Arc<Vec<String>>,
    value_size: usize,
    start: Instant,
    end: Instant,
}

impl Worker {
    async fn run(self, mut session: Session) -> anyhow::Result<Samples> {
        let mut samples = Samples::default();
        let mut sent: u64 = 0;
        let mut rng = SmallRng::seed_from_u64(self.index as u64);
        // This session's own znodes: one per slot.
        let first = self.index * self.in_flight;
        let tag = session_tag(self.index);
        let next = || {
            if Instant::now() >= self.end {
                return None;
            }
            let target = &self.targets[first + (sent % self.in_flight as u64) as usize];
            let seq = sent;
            sent += 1;
            if self.read_ratio > 0.0 && rng.random::<f64>() < self.read_ratio {
                let read = Request::GetData(PathWatchRequest {
                    path: target.clone(),
                    watch: false,
                });
                return Some((read, Kind::Read));
            }
            let write = match self.op {
                WriteOp::Set => Request::SetData(SetDataRequest {
                    path: target.clone(),
                    data: Some(random_bytes(&mut rng, self.value_size)),
                    version: -1,
                }),
                WriteOp::Create => create(
                    format!("{ROOT}/c{tag:x}-{seq}"),
                    random_bytes(&mut rng, self.value_size),
                ),
            };
            Some((write, Kind::Write))
        };
        let done = |kind: Kind, at: Instant, reply: crate::session::Reply| {
            if reply.err != 0 {
                *samples.errors.entry(reply.err).or_default() += 1;
                return;
            }
            let now = Instant::now();
            if now < self.start || now >= self.end {
                return;
            }
            let nanos = u64::try_from((now - at).as_nanos()).unwrap_or(u64::MAX);
            let offset = now - self.start;
            match kind {
                Kind::Write => samples.writes.push((offset, nanos)),
                Kind::Read => samples.reads.push((offset, nanos)),
            }
        };
        pipeline::run(&mut session, self.in_flight, STALL, next, done).await?;
        session.close().await?;
        Ok(samples)
    }
}

/// A per-run, per-session prefix so creates of two runs do not collide.
fn session_tag(index: usize) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (now << 16) | (index as u64 & 0xffff)
}

fn print_table(r: &Report) {
    println!(
        "{}  concurrency {} = {} session(s) x {} in flight; {:?} {} B; read ratio {}; {:.1} s after {:.1} s warm-up",
        if r.label.is_empty() {
            &r.server
        } else {
            &r.label
        },
        r.concurrency,
        r.sessions,
        r.in_flight,
        r.op,
        r.value_size,
        r.read_ratio,
        r.window_s,
        r.warmup_s,
    );
    println!(
        "{:<6} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "op", "count", "ops/s", "mean ms", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    let row = |name: &str, s: &OpStats| {
        println!(
            "{:<6} {:>10} {:>10.0} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            name,
            s.ops,
            s.ops_per_s,
            s.mean_us / 1e3,
            s.p50_us / 1e3,
            s.p90_us / 1e3,
            s.p99_us / 1e3,
            s.p999_us / 1e3,
            s.max_us / 1e3,
        );
    };
    row("write", &r.writes);
    if let Some(reads) = &r.reads {
        row("read", reads);
    }
    if let Some(g) = &r.group_commit {
        println!(
            "group commit: {} syncs ({:.0}/s) covered {} log entries: {:.2} per sync; avg fsync {:.3} ms (ms-granular)",
            g.syncs, g.syncs_per_s, g.entries, g.entries_per_sync, g.avg_fsync_ms
        );
    }
    if !r.errors.is_empty() {
        println!("errors: {:?}", r.errors);
    }
    if let Some(cpu) = r.client_cpu_s {
        println!("load generator CPU: {cpu:.1} s");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_fall_in_the_slice_of_their_completion() {
        let ms = Duration::from_millis;
        let all = Samples {
            writes: vec![(ms(100), 1_000), (ms(999), 2_000), (ms(1_000), 9_000)],
            reads: vec![(ms(2_400), 5_000)],
            errors: BTreeMap::new(),
        };
        let cut = slices(&all, 2.5, 1.0, true);
        assert_eq!(cut.len(), 3);
        assert_eq!(
            cut.iter().map(|s| s.from_s).collect::<Vec<_>>(),
            [0.0, 1.0, 2.0]
        );
        assert_eq!(cut[0].writes.ops, 2);
        assert_eq!(cut[0].writes.max_us, 2.0);
        assert_eq!(cut[1].writes.ops, 1);
        assert_eq!(cut[1].writes.max_us, 9.0);
        let reads = |i: usize| cut[i].reads.as_ref().map_or(0, |r| r.ops);
        assert_eq!((reads(0), reads(1), reads(2)), (0, 0, 1));
        assert!(slices(&all, 2.5, 0.0, true).is_empty());
    }
}

//! Fills a server with `count` znodes in a two-level tree, as fast as the
//! server takes them: `<root>/d<i>` parents, each with up to `fanout`
//! children `<root>/d<i>/n<j>`, created over several pipelined sessions.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use rand::SeedableRng as _;
use rand::rngs::SmallRng;

use crate::bench::{create, random_bytes};
use crate::pipeline;
use crate::session::{Session, error_name};

const SESSION_TIMEOUT_MS: i32 = 30_000;
const STALL: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PopulateArgs {
    /// host:port of the server.
    #[arg(long, default_value = "127.0.0.1:2181")]
    server: String,
    /// Leaf znodes to create (parents come on top).
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Children per parent.
    #[arg(long, default_value_t = 1000)]
    fanout: u64,
    /// Bytes of data per leaf (random, incompressible).
    #[arg(long, default_value_t = 32)]
    value_size: usize,
    /// Parent of the tree.
    #[arg(long, default_value = "/pop")]
    root: String,
    /// Sessions creating in parallel.
    #[arg(long, default_value_t = 4)]
    sessions: usize,
    /// Creates outstanding per session. Keep sessions × in-flight under the
    /// server's globalOutstandingLimit (1000 by default).
    #[arg(long, default_value_t = 200)]
    in_flight: usize,
}

#[derive(Debug, Serialize)]
struct Report {
    server: String,
    root: String,
    leaves: u64,
    parents: u64,
    created: u64,
    already_existed: u64,
    seconds: f64,
    creates_per_s: f64,
    /// The last leaf, for a restart probe.
    last_path: String,
}

pub(crate) async fn run(args: PopulateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.fanout > 0 && args.sessions > 0 && args.in_flight > 0,
        "fanout, sessions and in-flight must be > 0"
    );
    let parents = args.count.div_ceil(args.fanout);
    let started = Instant::now();

    let mut root =
        Session::connect(&args.server, SESSION_TIMEOUT_MS, Duration::from_secs(10)).await?;
    let reply = root.call(&create(args.root.clone(), Vec::new())).await?;
    let mut created = u64::from(reply.err == 0);
    let mut existed = u64::from(reply.err == proto::ErrorCode::NodeExists.code());
    anyhow::ensure!(
        created + existed == 1,
        "creating {}: {}",
        args.root,
        error_name(reply.err)
    );
    root.close().await?;

    let parent_path = {
        let root = args.root.clone();
        move |i: u64| format!("{root}/d{i}")
    };
    let leaf_path = {
        let root = args.root.clone();
        let fanout = args.fanout;
        move |k: u64| format!("{root}/d{}/n{}", k / fanout, k % fanout)
    };
    for (c, e) in [
        create_all(&args, parents, Arc::new(parent_path), 0).await?,
        create_all(
            &args,
            args.count,
            Arc::new(leaf_path.clone()),
            args.value_size,
        )
        .await?,
    ] {
        created += c;
        existed += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    let report = Report {
        server: args.server.clone(),
        root: args.root.clone(),
        leaves: args.count,
        parents,
        created,
        already_existed: existed,
        seconds,
        creates_per_s: created as f64 / seconds,
        last_path: leaf_path(args.count.saturating_sub(1)),
    };
    println!(
        "populated {}: {} leaves under {} parents; {} created, {} already there; {:.1} s, {:.0} creates/s",
        report.root,
        report.leaves,
        report.parents,
        report.created,
        report.already_existed,
        report.seconds,
        report.creates_per_s
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Creates `path(0..total)` with `value_size` random bytes each, over the
/// sessions; returns (created, existed).
async fn create_all(
    args: &PopulateArgs,
    total: u64,
    path: Arc<dyn Fn(u64) -> String + Send + Sync>,
    value_size: usize,
) -> anyhow::Result<(u64, u64)> {
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for index in 0..args.sessions {
        let mut session =
            Session::connect(&args.server, SESSION_TIMEOUT_MS, Duration::from_secs(10)).await?;
        let (counter, path) = (Arc::clone(&counter), Arc::clone(&path));
        let mut rng = SmallRng::seed_from_u64(index as u64);
        let depth = args.in_flight;
        tasks.push(tokio::spawn(async move {
            let (mut created, mut existed, mut failed) = (0u64, 0u64, None);
            let next = || {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                (i < total).then(|| (create(path(i), random_bytes(&mut rng, value_size)), i))
            };
            let done = |i: u64, _sent: Instant, reply: crate::session::Reply| match reply.err {
                0 => created += 1,
                e if e == proto::ErrorCode::NodeExists.code() => existed += 1,
                e => {
                    failed.get_or_insert((i, e));
                }
            };
            pipeline::run(&mut session, depth, STALL, next, done).await?;
            session.close().await?;
            if let Some((i, e)) = failed {
                anyhow::bail!("creating {}: {}", path(i), error_name(e));
            }
            anyhow::Ok((created, existed))
        }));
    }
    let (mut created, mut existed) = (0, 0);
    for task in tasks {
        let (c, e) = task.await.context("a populate task panicked")??;
        created += c;
        existed += e;
    }
    Ok((created, existed))
}

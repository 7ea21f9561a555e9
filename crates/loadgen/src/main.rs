//! `conclave-loadgen`: load for any ZooKeeper-protocol server (Conclave or
//! Apache ZooKeeper), for the benchmarks in docs/benchmarks.md.
//!
//! - `bench`: N sessions × K requests in flight each (closed loop), writes
//!   (setData or create of S-byte values) with an optional read mix, for a
//!   warm-up and a measured window; prints throughput and latency
//!   percentiles as a table and as JSON, and with `--mntr` the group-commit
//!   figures (log entries per sync) from the server's `mntr`.
//! - `populate`: creates M znodes in a two-level tree, pipelined.
//! - `probe`: polls connect + getData until it succeeds (restart timing).
//! - `mntr`: prints the server's `mntr`.
//! - `acked-writes` / `check-acked`: writes through failures and the check
//!   that none acknowledged was lost (the operator's end-to-end tests).
//!
//! It speaks the protocol itself through `proto` so that pipelining is
//! exact: every session keeps exactly K requests outstanding.

mod acked;
mod bench;
mod mntr;
mod pipeline;
mod populate;
mod probe;
mod reconfig;
mod session;
mod stats;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "conclave-loadgen",
    version,
    about = "Closed-loop load for ZooKeeper-protocol servers."
)]
struct Args {
    /// Runtime worker threads; 1 runs everything on one thread, which
    /// leaves the other cores to the server.
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Throughput and latency of writes (and optional reads).
    Bench(bench::BenchArgs),
    /// Create many znodes fast.
    Populate(populate::PopulateArgs),
    /// Wait until the server answers getData.
    Probe(probe::ProbeArgs),
    /// Create znodes one at a time through failures, printing each
    /// acknowledged one (end-to-end tests).
    AckedWrites(acked::AckedWritesArgs),
    /// Check that every acknowledged write (stdin) exists.
    CheckAcked(acked::CheckAckedArgs),
    /// Add a server to an ensemble (`reconfig -add`), timed.
    Reconfig(reconfig::ReconfigArgs),
    /// Print the server's mntr.
    Mntr {
        /// host:port of the server.
        #[arg(long, default_value = "127.0.0.1:2181")]
        server: String,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .context("starting the runtime")?;
    runtime.block_on(async move {
        match args.command {
            Command::Bench(a) => bench::run(a).await,
            Command::Populate(a) => populate::run(a).await,
            Command::Probe(a) => probe::run(a).await,
            Command::AckedWrites(a) => acked::writes(a).await,
            Command::CheckAcked(a) => acked::check(a).await,
            Command::Reconfig(a) => reconfig::run(a).await,
            Command::Mntr { server } => {
                print!("{}", mntr::fetch_text(&server).await?);
                Ok(())
            }
        }
    })
}

//! Acknowledged writes and their check, for end-to-end tests that change
//! an ensemble under load (scale, roll, kill the leader):
//! - `acked-writes` creates `<path>/w-<n>` for n = 0, 1, 2, … one at a
//!   time, reconnecting (to the next server of the list) whenever the
//!   connection breaks, and prints `acked <n>` for every create the server
//!   acknowledged. A create retried after a broken connection that finds
//!   its znode already there counts as acknowledged then (the first
//!   attempt committed).
//! - `check-acked` reads `acked <n>` lines on stdin and checks that every
//!   such znode exists; it fails naming the missing ones.

use std::io::{BufRead as _, Write as _};
use std::time::{Duration, Instant};

use proto::{PathWatchRequest, Request};

use crate::session::{Session, error_name};

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AckedWritesArgs {
    /// host:port of the servers, separated by commas (a client's
    /// connection string; a Service name works).
    #[arg(long)]
    server: String,
    /// Parent znode (created if missing).
    #[arg(long, default_value = "/e2e")]
    path: String,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Stop after this many acknowledged writes (0: no limit).
    #[arg(long, default_value_t = 0)]
    count: u64,
    /// Pause between writes, milliseconds.
    #[arg(long, default_value_t = 20)]
    interval_ms: u64,
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CheckAckedArgs {
    /// host:port of the servers, separated by commas.
    #[arg(long)]
    server: String,
    /// Parent znode the writes went under.
    #[arg(long, default_value = "/e2e")]
    path: String,
}

const SESSION_TIMEOUT_MS: i32 = 10_000;
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

async fn connect(servers: &[&str], next: &mut usize) -> Session {
    loop {
        let server = servers[*next % servers.len()];
        *next += 1;
        match Session::connect(server, SESSION_TIMEOUT_MS, CALL_TIMEOUT).await {
            Ok(session) => return session,
            Err(e) => {
                eprintln!("connect {server}: {e:#}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

fn create(path: String) -> Request {
    crate::bench::create(path, b"acked".to_vec())
}

pub(crate) async fn writes(args: AckedWritesArgs) -> anyhow::Result<()> {
    let servers: Vec<&str> = args.server.split(',').collect();
    let parent = args.path.trim_end_matches('/').to_owned();
    let deadline = Instant::now() + Duration::from_secs_f64(args.duration);
    let mut next_server = 0;
    let mut session = connect(&servers, &mut next_server).await;
    let mut parent_made = false;
    let mut n: u64 = 0;
    let mut retried = false;
    let mut reconnects = 0u64;
    let stdout = std::io::stdout();
    while Instant::now() < deadline && (args.count == 0 || n < args.count) {
        let request = if parent_made {
            create(format!("{parent}/w-{n}"))
        } else {
            create(parent.clone())
        };
        let reply = tokio::time::timeout(CALL_TIMEOUT, session.call(&request)).await;
        match reply {
            Ok(Ok(reply)) => {
                let exists = reply.err == proto::ErrorCode::NodeExists as i32;
                if !parent_made {
                    anyhow::ensure!(
                        reply.err == 0 || exists,
                        "create {parent}: {}",
                        error_name(reply.err)
                    );
                    parent_made = true;
                    continue;
                }
                if reply.err == 0 || (exists && retried) {
                    let mut out = stdout.lock();
                    writeln!(out, "acked {n}")?;
                    out.flush()?;
                    n += 1;
                    retried = false;
                } else if exists {
                    anyhow::bail!(
                        "{parent}/w-{n} existed before it was written: use a fresh --path"
                    );
                } else {
                    // Not acknowledged (e.g. no quorum for a moment): the
                    // same write is tried again.
                    eprintln!("create {parent}/w-{n}: {}", error_name(reply.err));
                    retried = true;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            Ok(Err(e)) => {
                eprintln!("write {n}: {e:#}; reconnecting");
                reconnects += 1;
                retried = true;
                session = connect(&servers, &mut next_server).await;
            }
            Err(_) => {
                eprintln!("write {n}: no answer in {CALL_TIMEOUT:?}; reconnecting");
                reconnects += 1;
                retried = true;
                session = connect(&servers, &mut next_server).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
    }
    eprintln!("{n} writes acknowledged, {reconnects} reconnects");
    let _ = session.close().await;
    Ok(())
}

pub(crate) async fn check(args: CheckAckedArgs) -> anyhow::Result<()> {
    let servers: Vec<&str> = args.server.split(',').collect();
    let parent = args.path.trim_end_matches('/').to_owned();
    let mut acked = Vec::new();
    for line in std::io::stdin().lock().lines() {
        if let Some(n) = line?.strip_prefix("acked ") {
            acked.push(n.trim().parse::<u64>()?);
        }
    }
    let mut next_server = 0;
    let mut session = connect(&servers, &mut next_server).await;
    let mut missing = Vec::new();
    for n in &acked {
        let request = Request::GetData(PathWatchRequest {
            path: format!("{parent}/w-{n}"),
            watch: false,
        });
        let reply = loop {
            match tokio::time::timeout(CALL_TIMEOUT, session.call(&request)).await {
                Ok(Ok(reply)) => break reply,
                _ => session = connect(&servers, &mut next_server).await,
            }
        };
        if reply.err != 0 {
            missing.push(*n);
        }
    }
    let _ = session.close().await;
    anyhow::ensure!(
        missing.is_empty(),
        "{} of {} acknowledged writes are missing: {:?}",
        missing.len(),
        acked.len(),
        missing
    );
    println!("all {} acknowledged writes are present", acked.len());
    Ok(())
}

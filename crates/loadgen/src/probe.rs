//! Waits for a server to serve: repeatedly connect, create a session and
//! getData a path (or, with `--write`, create a znode), until one attempt
//! succeeds. Used to time a restart from the moment the server process was
//! started, and an ensemble's failover from the moment its leader was
//! killed (`--write` against every server, tried in turn).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proto::{PathWatchRequest, Request};
use serde::Serialize;

use crate::session::{Session, error_name};

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ProbeArgs {
    /// host:port of the server, or several separated by commas (tried in
    /// turn, as a client's connection string).
    #[arg(long, default_value = "127.0.0.1:2181")]
    server: String,
    /// Create a sequential znode `<path>probe-` instead of reading `path`:
    /// the first accepted write.
    #[arg(long)]
    write: bool,
    /// The znode to read; it must exist (so a server that is up but has not
    /// loaded its data does not count).
    #[arg(long, default_value = "/")]
    path: String,
    /// When the server process was started, in nanoseconds since the Unix
    /// epoch (`date +%s%N`); the time is measured from the probe's own start
    /// without it.
    #[arg(long)]
    since_unix_ns: Option<u128>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600.0)]
    timeout: f64,
    /// Pause between attempts, milliseconds.
    #[arg(long, default_value_t = 5)]
    interval_ms: u64,
    /// Give up on one attempt after this many milliseconds. Short, because
    /// a starting ZooKeeper may accept a connection and never answer it:
    /// the measurement is only as precise as this.
    #[arg(long, default_value_t = 100)]
    attempt_timeout_ms: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    server: String,
    path: String,
    ready_ms: f64,
    attempts: u64,
    last_error: Option<String>,
}

pub(crate) async fn run(args: ProbeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let offset = match args.since_unix_ns {
        Some(since) => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
            Duration::from_nanos(u64::try_from(now.saturating_sub(since))?)
        }
        None => Duration::ZERO,
    };
    let deadline = started + Duration::from_secs_f64(args.timeout);
    let mut attempts = 0;
    let mut last_error = None;
    let servers: Vec<&str> = args.server.split(',').collect();
    let mut next_server = servers.iter().cycle();
    let ready = loop {
        let server = next_server.next().copied().unwrap_or_default();
        attempts += 1;
        match attempt(&args, server).await {
            Ok(session) => {
                let ready = offset + started.elapsed();
                session.close().await?;
                break ready;
            }
            Err(e) => last_error = Some(format!("{e:#}")),
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "{} did not serve {} within {} s; last error: {}",
                args.server,
                args.path,
                args.timeout,
                last_error.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
    };
    let report = Report {
        server: args.server.clone(),
        path: args.path.clone(),
        ready_ms: ready.as_secs_f64() * 1e3,
        attempts,
        last_error,
    };
    println!(
        "{} served {} {} {:.0} ms after {} ({} attempts)",
        report.server,
        if args.write {
            "a create under"
        } else {
            "getData"
        },
        report.path,
        report.ready_ms,
        if args.since_unix_ns.is_some() {
            "the given instant"
        } else {
            "the probe started"
        },
        report.attempts
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// One connect + getData (or create); the session on success.
async fn attempt(args: &ProbeArgs, server: &str) -> anyhow::Result<Session> {
    let timeout = Duration::from_millis(args.attempt_timeout_ms);
    let mut session = Session::connect(server, 10_000, timeout).await?;
    let request = if args.write {
        let path = format!("{}/probe-", args.path.trim_end_matches('/'));
        match crate::bench::create(path, Vec::new()) {
            Request::Create(mut create) => {
                create.flags = proto::CreateMode::PersistentSequential as i32;
                Request::Create(create)
            }
            other => other,
        }
    } else {
        Request::GetData(PathWatchRequest {
            path: args.path.clone(),
            watch: false,
        })
    };
    let reply = tokio::time::timeout(timeout, session.call(&request)).await??;
    anyhow::ensure!(
        reply.err == 0,
        "{} {}: {}",
        if args.write {
            "create under"
        } else {
            "getData"
        },
        args.path,
        error_name(reply.err)
    );
    Ok(session)
}

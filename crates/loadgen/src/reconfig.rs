//! Adds a server to an ensemble with ZooKeeper's `reconfig` request (as
//! `zkCli.sh reconfig -add` does) and reports how long the request took:
//! the leader answers once the new membership is committed, which on both
//! Apache ZooKeeper and Conclave waits for the new server to catch up.
//! The servers must allow it (`reconfigEnabled=true`; ZooKeeper also wants
//! a superuser or `skipACL=yes`).

use std::time::{Duration, Instant};

use anyhow::bail;
use proto::OpCode;
use proto::jute::{write_i64, write_ustring};
use serde::Serialize;

use crate::session::{Session, error_name};

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ReconfigArgs {
    /// host:port of a member.
    #[arg(long, default_value = "127.0.0.1:2181")]
    server: String,
    /// The server line to add, `server.N=host:quorum:election[:role];clientPort`.
    #[arg(long)]
    add: String,
    /// Session timeout and limit on the whole request, seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    server: String,
    add: String,
    ms: f64,
}

pub(crate) async fn run(args: ReconfigArgs) -> anyhow::Result<()> {
    let limit = Duration::from_secs(args.timeout);
    let session_timeout_ms = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX);
    let mut session = Session::connect(&args.server, session_timeout_ms, limit).await?;
    // ZooKeeper's client sends the fields it does not use as null strings:
    // an empty `newMembers` would make the leader read a non-incremental
    // reconfig naming no one.
    let body = |out: &mut Vec<u8>| {
        write_ustring(out, Some(&args.add));
        write_ustring(out, None);
        write_ustring(out, None);
        write_i64(out, -1);
    };
    let started = Instant::now();
    let xid = session.queue_raw(OpCode::Reconfig, body);
    session.flush().await?;
    // The answer may take longer than the session's timeout (the server
    // waits for the new server to catch up): ping meanwhile, as a
    // ZooKeeper client does.
    let ping_every = Duration::from_millis(1000);
    let reply = loop {
        if let Some(reply) = session.buffered_reply()? {
            if reply.xid != xid {
                bail!("reply for xid {} while waiting for {xid}", reply.xid);
            }
            break reply;
        }
        if started.elapsed() > limit {
            bail!("no answer to reconfig -add {} in {limit:?}", args.add);
        }
        if tokio::time::timeout(ping_every, session.fill())
            .await
            .is_err()
        {
            session.queue_ping();
            session.flush().await?;
        }
    };
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if reply.err != 0 {
        bail!(
            "reconfig -add {} failed after {ms:.0} ms: {}",
            args.add,
            error_name(reply.err)
        );
    }
    let report = Report {
        server: args.server,
        add: args.add,
        ms,
    };
    println!("{}", serde_json::to_string(&report)?);
    session.close().await
}

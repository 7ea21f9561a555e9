//! The closed loop: keep a fixed number of requests in flight on one session.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use proto::Request;

use crate::session::{Reply, Session};

/// Keeps up to `depth` requests of `session` in flight. Whenever a slot is
/// free it asks `next` for a request (with a tag of the caller's); every
/// reply goes to `done` with its tag and the instant its request was queued.
/// Once `next` returns `None` no more requests are sent; the function
/// returns when every request sent has been answered. Fails if no reply
/// arrives for `stall`.
pub(crate) async fn run<T>(
    session: &mut Session,
    depth: usize,
    stall: Duration,
    mut next: impl FnMut() -> Option<(Request, T)>,
    mut done: impl FnMut(T, Instant, Reply),
) -> anyhow::Result<()> {
    let mut in_flight: VecDeque<(i32, Instant, T)> = VecDeque::with_capacity(depth);
    let mut exhausted = false;
    loop {
        while !exhausted && in_flight.len() < depth {
            match next() {
                Some((request, tag)) => {
                    let xid = session.queue(&request);
                    in_flight.push_back((xid, Instant::now(), tag));
                }
                None => exhausted = true,
            }
        }
        session.flush().await?;
        if in_flight.is_empty() {
            return Ok(());
        }
        tokio::time::timeout(stall, session.fill())
            .await
            .with_context(|| format!("no reply for {stall:?}"))??;
        while let Some(reply) = session.buffered_reply()? {
            let (xid, sent, tag) = in_flight
                .pop_front()
                .context("a reply with no request in flight")?;
            if reply.xid != xid {
                bail!("reply for xid {} while expecting {xid}", reply.xid);
            }
            done(tag, sent, reply);
        }
    }
}

//! Snapshots for laggards and log compaction. raft-rs reads the log from
//! memory (`MemLog`), so a member keeps a bounded number of entries behind
//! its applied index; a follower further behind gets a snapshot, made on
//! demand: when raft-rs asks for one newer than any at hand, the log says
//! "temporarily unavailable" and raises a flag, and the state machine is
//! asked to make an image of its applied state — from its store, off the
//! thread that serves clients, so it may take a while. Once made, the
//! image's id is offered to raft-rs, which sends it at its next contact
//! with each follower waiting; the image itself follows as a stream
//! (`image_stream.rs`).

use raft::eraftpb::Snapshot;

use super::Driver;
use super::image_stream::Making;
use super::io::{LogWriter, StateMachine, Transport};

impl<W, T: Transport, L: LogWriter> Driver<W, T, L> {
    /// raft-rs wants a snapshot to send: the state machine starts making
    /// an image of the state as applied (one at a time).
    pub(super) fn make_snapshot_if_wanted(&mut self, sm: &mut dyn StateMachine<W>) {
        if !self.log.core().snapshot_wanted()
            || self.making.is_some()
            || self.ticks < self.make_after_tick
        {
            return;
        }
        let index = self.applied_index;
        let (term, conf) = {
            let core = self.log.core();
            (core.term(index), core.conf_state.clone())
        };
        let Some(term) = term else {
            return;
        };
        tracing::info!(
            index,
            zxid = format_args!("0x{:x}", self.applied_zxid),
            "making a snapshot for a follower too far behind"
        );
        // A follower being sent an older image (one that does not serve
        // the follower this one is for, e.g. a member added since) goes on
        // receiving it.
        let in_use = self.images_in_use();
        sm.make_snapshot(index, term, self.applied_zxid, &in_use);
        self.making = Some(Making { index, term, conf });
    }

    /// Once a tick while an image is being made: offered to raft-rs once
    /// it is.
    pub(super) fn poll_snapshot(&mut self, sm: &mut dyn StateMachine<W>) {
        if self.making.is_none() {
            return;
        }
        let Some(made) = sm.snapshot_made() else {
            return;
        };
        let Some(making) = self.making.take() else {
            return;
        };
        let id = match made {
            Ok(id) if id.index == making.index && id.term == making.term => id,
            Ok(id) => {
                tracing::warn!(
                    image = %id,
                    wanted = making.index,
                    "the state machine made an image of another index"
                );
                self.make_after_tick = self.ticks + self.config.election_ticks as u64;
                return;
            }
            Err(why) => {
                tracing::warn!(index = making.index, why, "could not make a snapshot");
                // Tried again after an election timeout, not in a loop.
                self.make_after_tick = self.ticks + self.config.election_ticks as u64;
                return;
            }
        };
        tracing::info!(image = %id, "made a snapshot");
        let mut snapshot = Snapshot::default();
        snapshot.mut_metadata().index = making.index;
        snapshot.mut_metadata().term = making.term;
        snapshot.mut_metadata().set_conf_state(making.conf);
        snapshot.data = id.encode().into();
        self.log.core().offer_snapshot(snapshot);
        // The followers that asked for it get it now, not at their next
        // heartbeat; `drive` sends what this queues.
        self.node.resend_to_snapshot_waiters();
    }

    /// Keeps `retained_entries` behind the applied index within
    /// `retained_bytes`, dropping older ones in steps (so a compaction is
    /// not one write per entry): at twice the count, or a quarter over
    /// the bytes.
    pub(super) fn compact_log(&mut self, applied_index: u64) {
        let retain = self.config.retained_entries.max(1);
        let budget = self.config.retained_bytes.max(1);
        // Never past what is applied; and a follower being sent an image
        // goes on from the log after it.
        let limit = self
            .oldest_image_in_use()
            .map_or(applied_index, |oldest| oldest.min(applied_index));
        if limit <= self.compacted_through {
            return;
        }
        let mut core = self.log.core();
        let by_count =
            (applied_index > self.compacted_through + 2 * retain).then(|| applied_index - retain);
        let by_bytes = if core.bytes() > budget.saturating_add(budget / 4) {
            core.compaction_for_bytes(budget, limit)
        } else {
            None
        };
        let Some(through) = by_count.max(by_bytes).map(|t| t.min(limit)) else {
            return;
        };
        if through <= self.compacted_through {
            return;
        }
        let Some(term) = core.term(through) else {
            return;
        };
        let mut point = Snapshot::default();
        point.mut_metadata().index = through;
        point.mut_metadata().term = term;
        point.mut_metadata().set_conf_state(core.conf_state.clone());
        core.compact(point);
        drop(core);
        self.compacted_through = through;
        self.disk.compact(through);
    }
}

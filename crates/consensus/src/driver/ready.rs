//! raft-rs's output, handled in the order Raft's safety needs (raft-rs's
//! `Ready` documentation; TiKV's `handle_raft_ready`):
//!
//! 1. messages that may go now (a leader's appends go out while it writes
//!    its own copy);
//! 2. a snapshot to install: the state machine's state is replaced and the
//!    store synced at once, before anything else reaches the node (raft-rs
//!    counts a snapshot as applied only once it is durable);
//! 3. entries and the hard state to the log writer, then a marker: the
//!    writer reports the ready durable (`Driver::persisted`) after the
//!    sync that covers it, and only then do the messages that promise
//!    those writes (votes, acknowledgements) go out — Zab's rule that a
//!    follower acknowledges nothing it could lose;
//! 4. a change of role or leader;
//! 5. committed entries to the state machine (`apply.rs`);
//! 6. ReadIndex answers; writes a new leader held back.

use raft::eraftpb::Snapshot;

use super::io::{LogWriter, StateMachine, Transport};
use super::{Driver, DriverError};
use crate::node::Ready;

impl<W, T: Transport, L: LogWriter> Driver<W, T, L> {
    /// Handles every ready the node has, then the housekeeping that
    /// follows a round (a snapshot raft-rs asked for, images on their
    /// way).
    pub(super) fn drive(&mut self, sm: &mut dyn StateMachine<W>) -> Result<(), DriverError> {
        while let Some(rd) = self.node.ready()? {
            self.handle_ready(rd, sm)?;
        }
        self.removed_if_left_out(sm);
        self.make_snapshot_if_wanted(sm);
        self.pump_images(sm);
        Ok(())
    }

    fn handle_ready(&mut self, rd: Ready, sm: &mut dyn StateMachine<W>) -> Result<(), DriverError> {
        self.send_all(rd.messages);
        let installed = match rd.snapshot {
            Some(snapshot) => Some(self.install_snapshot(snapshot, sm)?),
            None => None,
        };
        {
            let mut core = self.log.core();
            if let Some(hs) = &rd.hard_state {
                core.hard_state = hs.clone();
            }
            // raft-rs hands over entries that follow its log: a refusal
            // here is the driver's own bug.
            if let Err(e) = core.append(&rd.entries) {
                panic!(
                    "server {}: raft-rs handed over entries the log cannot take: {e}",
                    self.my_id
                );
            }
        }
        if !rd.entries.is_empty() {
            self.disk.append(&rd.entries);
        }
        if let Some(hs) = &rd.hard_state {
            self.disk.set_hard_state(hs);
        }
        match installed {
            Some(index) => {
                // A snapshot counts as applied only once it is durable
                // (raft-rs: applied <= persisted), and nothing may reach
                // the node before that: this ready is synced now, once per
                // catch-up.
                self.disk.sync_now()?;
                self.node.appended(rd.number);
                self.node.persisted(rd.number);
                while let Some((_, messages)) = self.held.pop_front() {
                    self.send_all(messages);
                }
                self.send_all(rd.persisted_messages);
                self.node.applied(index);
                self.restore_progress(sm);
            }
            None => {
                self.disk.persist(rd.number, rd.must_sync);
                self.node.appended(rd.number);
                if !rd.persisted_messages.is_empty() {
                    self.held.push_back((rd.number, rd.persisted_messages));
                }
            }
        }
        if let Some(change) = rd.role_change {
            self.role_changed(change, sm);
        }
        self.apply_committed(rd.committed, sm)?;
        for read in rd.read_states {
            let context = <[u8; 8]>::try_from(read.request_ctx.as_slice())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if self.reads_waiting.remove(&context).is_some() {
                self.reads_ready.push((read.index, context));
            }
        }
        self.answer_reads(sm);
        self.propose_deferred(sm);
        Ok(())
    }

    /// Catching up by snapshot: the state machine's state becomes the
    /// leader's as of the snapshot's index (the caller syncs it with the
    /// rest of its ready).
    fn install_snapshot(
        &mut self,
        snapshot: Snapshot,
        sm: &mut dyn StateMachine<W>,
    ) -> Result<u64, DriverError> {
        let meta = snapshot.get_metadata();
        let (index, term) = (meta.index, meta.term);
        let conf = meta.get_conf_state().clone();
        let installed = sm
            .install_snapshot(index, term, &snapshot.data)
            .map_err(|reason| DriverError::Snapshot { index, reason })?;
        // The image it names was the leader's and is gone once installed:
        // as a leader, this server makes its own.
        let mut snapshot = snapshot;
        snapshot.data = Default::default();
        self.log.core().install(snapshot);
        self.node.resume_zxids(index, installed.zxid);
        self.applied_index = index;
        self.applied_zxid = installed.zxid;
        self.compacted_through = index;
        tracing::info!(
            index,
            zxid = format_args!("0x{:x}", installed.zxid),
            "installed a snapshot from the leader"
        );
        self.applied_membership = installed.membership.clone();
        match installed.membership {
            Some(membership) => self.adopt_membership(membership, Some(conf), sm),
            None => self.store_conf(&conf),
        }
        Ok(index)
    }
}

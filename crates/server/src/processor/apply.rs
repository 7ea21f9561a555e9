//! Applying a committed transaction: the one path of every write, on a
//! standalone server (once the log writer reports it durable, `pipeline`)
//! and on every member of an ensemble (once the driver hands it over as
//! committed, `ensemble`). The tree changes, its effects are added to the
//! store's next apply batch, watches fire, and the waiter — the client that
//! sent the write, if it is connected here — is answered.

use storage::ApplyBatch;
use tree::{Txn, TxnOp, apply};

use super::ZooKeeper;
use super::pipeline::Waiter;
use crate::sessions::ConnId;

impl ZooKeeper {
    pub(super) fn apply_txn(&mut self, txn: &Txn, waiter: Option<Waiter>, batch: &mut ApplyBatch) {
        let applied = apply(&mut self.tree, txn);
        self.pending.applied(txn.zxid);
        self.stats.commit_count += 1;
        storage::recovery::record_effects(&self.tree, &applied, batch);
        self.record_write_stats(&applied.changes);
        self.deliver(&applied.changes);
        let local = waiter.as_ref().and_then(Waiter::conn);
        if self.ensemble.is_some() {
            self.follow_global_sessions(txn, waiter.is_some(), local);
        }
        if let Some(waiter) = waiter {
            if let Some(c) = local.and_then(|c| self.conns.get_mut(&c)) {
                c.pending_writes = c.pending_writes.saturating_sub(1);
            }
            self.complete(waiter, txn, applied.outcome);
            // Queued reads of this connection may go now, before the next
            // transaction changes the tree.
            if let Some(conn) = local {
                self.drain_queue(conn);
            }
        }
    }

    /// Sessions are global in an ensemble: every server tracks every
    /// session, so a client may reconnect anywhere; the leader alone
    /// expires them.
    fn follow_global_sessions(&mut self, txn: &Txn, answered_here: bool, local: Option<ConnId>) {
        match &txn.op {
            TxnOp::CreateSession { timeout_ms, .. } if !answered_here => {
                let now = self.now_ms();
                self.sessions.track(txn.session_id, *timeout_ms, None, now);
            }
            TxnOp::CloseSession { .. } => {
                self.sessions.remove(txn.session_id);
                // Expired by the leader, or closed through another server:
                // a connection holding it here goes.
                let holders: Vec<ConnId> = self
                    .conns
                    .iter()
                    .filter(|(id, c)| c.session_id == txn.session_id && Some(**id) != local)
                    .map(|(id, _)| *id)
                    .collect();
                for conn in holders {
                    self.close(conn);
                }
            }
            _ => {}
        }
    }
}

//! Time-driven writes: expiring sessions (the leader's job in an ensemble)
//! and reaping empty containers and expired TTL nodes
//! (`SessionTrackerImpl.run`, `ContainerManager`). Both go through the log
//! like any write.

use tree::WriteRequest;

use super::ZooKeeper;
use super::pipeline::Waiter;
use crate::stats::wall_clock_ms;

impl ZooKeeper {
    /// Closes every session past its deadline: a closeSession transaction
    /// deletes its ephemerals (their watches fire), and once it is applied
    /// the connection still attached to the session is closed without a
    /// reply.
    pub(super) fn expire_sessions(&mut self) {
        if self.ensemble.as_ref().is_some_and(|e| !e.leads()) {
            return;
        }
        let now = self.now_ms();
        for session_id in self.sessions.expired(now) {
            tracing::info!(
                session = format_args!("0x{session_id:x}"),
                "session expired"
            );
            let owner = self.sessions.owner(session_id);
            self.sessions.remove(session_id);
            self.submit(
                &WriteRequest::CloseSession,
                session_id,
                0,
                None,
                Waiter::Expired { owner },
            );
        }
    }

    /// Deletes containers that have become empty and TTL nodes past their
    /// TTL, at most `znode.container.maxPerMinute` per minute of interval.
    /// Candidates come from the applied tree; one whose deletion is still
    /// in flight from the last round fails harmlessly (NoNode).
    pub(super) fn reap_containers(&mut self) {
        if self.ensemble.as_ref().is_some_and(|e| !e.leads()) {
            return;
        }
        let candidates = self
            .tree
            .reap_candidates(wall_clock_ms(), self.config.container_max_never_used_ms);
        let interval_ms = self.config.container_check_interval.as_millis().max(1);
        let budget =
            (u128::from(self.config.container_max_per_minute) * interval_ms / 60_000).max(1);
        for path in candidates
            .into_iter()
            .take(usize::try_from(budget).unwrap_or(usize::MAX))
        {
            tracing::debug!(%path, "reaping container or TTL node");
            self.submit(
                &WriteRequest::DeleteContainer(path),
                0,
                0,
                None,
                Waiter::Internal,
            );
        }
    }
}

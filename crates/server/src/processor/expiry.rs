//! Time-driven writes: expiring sessions (the leader's job in an ensemble)
//! and reaping empty containers and expired TTL nodes
//! (`SessionTrackerImpl.run`, `ContainerManager`).

use tree::{Outcome, WriteRequest};

use super::Processor;
use crate::stats::wall_clock_ms;

impl Processor {
    /// Closes every session past its deadline: a closeSession transaction
    /// deletes its ephemerals (their watches fire), and the connection still
    /// attached to it is closed without a reply.
    pub(super) fn expire_sessions(&mut self) {
        let now = self.now_ms();
        for session_id in self.sessions.expired(now) {
            tracing::info!(
                session = format_args!("0x{session_id:x}"),
                "session expired"
            );
            let owner = self.sessions.owner(session_id);
            self.sessions.remove(session_id);
            self.commit_internal(session_id, &WriteRequest::CloseSession);
            if let Some(conn) = owner {
                self.close(conn);
            }
        }
    }

    /// Deletes containers that have become empty and TTL nodes past their
    /// TTL, at most `znode.container.maxPerMinute` per minute of interval.
    pub(super) fn reap_containers(&mut self) {
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
            match self.commit_internal(0, &WriteRequest::DeleteContainer(path.clone())) {
                Outcome::Deleted => tracing::debug!(%path, "reaped container or TTL node"),
                other => tracing::debug!(%path, ?other, "container reaping skipped"),
            }
        }
    }
}

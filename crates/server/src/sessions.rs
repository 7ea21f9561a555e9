//! Session liveness: which sessions are alive, when each expires, and which
//! connection currently holds it (`SessionTrackerImpl`, `ExpiryQueue`).
//! The replicated facts (id, timeout, password) live in the tree's session
//! table; this is the server-local part that needs a clock.

use std::collections::HashMap;

/// A connection, as the processor names it.
pub type ConnId = u64;

#[derive(Debug, Clone)]
struct Tracked {
    timeout_ms: i32,
    /// Monotonic milliseconds at which the session expires, rounded up to
    /// the next tick as ZooKeeper's expiry buckets do.
    expires_at_ms: u64,
    /// The connection attached to the session, if any.
    owner: Option<ConnId>,
}

#[derive(Debug)]
pub struct SessionTracker {
    tick_ms: u64,
    next_id: i64,
    sessions: HashMap<i64, Tracked>,
}

impl SessionTracker {
    /// `server_id` goes in the top byte of every id; the rest starts from
    /// the wall clock (`initializeNextSessionId`) so ids are not reused
    /// across restarts.
    pub fn new(tick_ms: u32, server_id: u8, wall_clock_ms: u64) -> Self {
        let mut next_id = (((wall_clock_ms << 24) >> 8) as i64) | (i64::from(server_id) << 56);
        if next_id == tree::node::owner::CONTAINER {
            next_id += 1;
        }
        SessionTracker {
            tick_ms: u64::from(tick_ms.max(1)),
            next_id,
            sessions: HashMap::new(),
        }
    }

    fn expiry(&self, now_ms: u64, timeout_ms: i32) -> u64 {
        let t = now_ms + u64::try_from(timeout_ms.max(0)).unwrap_or(0);
        (t / self.tick_ms + 1) * self.tick_ms
    }

    /// Picks the id for a new session.
    pub fn next_session_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// Starts tracking a session (after its createSession committed, or on
    /// recovery).
    pub fn track(&mut self, session_id: i64, timeout_ms: i32, owner: Option<ConnId>, now_ms: u64) {
        let expires_at_ms = self.expiry(now_ms, timeout_ms);
        self.sessions.insert(
            session_id,
            Tracked {
                timeout_ms,
                expires_at_ms,
                owner,
            },
        );
    }

    /// `touchSession`: pushes expiry out; false if the session is gone.
    pub fn touch(&mut self, session_id: i64, now_ms: u64) -> bool {
        let tick = self.tick_ms;
        match self.sessions.get_mut(&session_id) {
            Some(s) => {
                let t = now_ms + u64::try_from(s.timeout_ms.max(0)).unwrap_or(0);
                s.expires_at_ms = (t / tick + 1) * tick;
                true
            }
            None => false,
        }
    }

    /// Re-open on a new connection with a newly negotiated timeout.
    pub fn reattach(
        &mut self,
        session_id: i64,
        timeout_ms: i32,
        owner: ConnId,
        now_ms: u64,
    ) -> bool {
        if !self.sessions.contains_key(&session_id) {
            return false;
        }
        self.track(session_id, timeout_ms, Some(owner), now_ms);
        true
    }

    pub fn is_alive(&self, session_id: i64) -> bool {
        self.sessions.contains_key(&session_id)
    }

    pub fn owner(&self, session_id: i64) -> Option<ConnId> {
        self.sessions.get(&session_id).and_then(|s| s.owner)
    }

    pub fn timeout_ms(&self, session_id: i64) -> Option<i32> {
        self.sessions.get(&session_id).map(|s| s.timeout_ms)
    }

    /// The connection went away; the session lives on until it expires.
    pub fn detach(&mut self, session_id: i64, conn: ConnId) {
        if let Some(s) = self.sessions.get_mut(&session_id)
            && s.owner == Some(conn)
        {
            s.owner = None;
        }
    }

    /// Stops tracking (the session was closed or expired).
    pub fn remove(&mut self, session_id: i64) {
        self.sessions.remove(&session_id);
    }

    /// Sessions whose deadline has passed, in id order.
    pub fn expired(&self, now_ms: u64) -> Vec<i64> {
        let mut out: Vec<i64> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.expires_at_ms <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        out.sort_unstable();
        out
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// (id, timeout) of every session, for `dump`.
    pub fn all(&self) -> Vec<(i64, i32)> {
        let mut out: Vec<(i64, i32)> = self
            .sessions
            .iter()
            .map(|(id, s)| (*id, s.timeout_ms))
            .collect();
        out.sort_unstable();
        out
    }

    /// (id, expiry in monotonic ms) of every session, for `dump`.
    pub fn expiries(&self) -> Vec<(i64, u64)> {
        let mut out: Vec<(i64, u64)> = self
            .sessions
            .iter()
            .map(|(id, s)| (*id, s.expires_at_ms))
            .collect();
        out.sort_unstable();
        out
    }
}

/// Clamps a requested timeout into [min, max] (`processConnectRequest`).
pub fn negotiate_timeout(requested_ms: i32, min_ms: i32, max_ms: i32) -> i32 {
    requested_ms.max(min_ms).min(max_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_bucketed_to_the_next_tick() {
        let mut t = SessionTracker::new(2000, 1, 0);
        let id = t.next_session_id();
        assert_eq!(id >> 56, 1);
        t.track(id, 4000, None, 500);
        // 500 + 4000 = 4500, rounded up to 6000.
        assert!(t.expired(5999).is_empty());
        assert_eq!(t.expired(6000), vec![id]);
        assert!(t.touch(id, 3000));
        assert!(t.expired(6000).is_empty());
    }

    #[test]
    fn negotiation_clamps() {
        assert_eq!(negotiate_timeout(1, 4000, 40000), 4000);
        assert_eq!(negotiate_timeout(100_000, 4000, 40000), 40000);
        assert_eq!(negotiate_timeout(10_000, 4000, 40000), 10_000);
    }
}

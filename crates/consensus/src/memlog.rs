//! The Raft log as raft-rs reads it: hard state, membership, the entries
//! after the last compaction point, and that point's snapshot metadata, in
//! memory. The server keeps its durable copy in its store and mirrors every
//! write here (so raft-rs reads never touch the disk); the simulator models
//! its disks with it.
//!
//! raft-rs's own `MemStorage` cannot compact a log without forgetting the
//! term of the compaction point, which replication needs; this one keeps it.
//!
//! Snapshots for laggards are made on demand: when raft-rs asks for one and
//! none is at hand, [`MemLog`] answers "temporarily unavailable" and raises
//! [`LogCore::snapshot_wanted`]; the driver, which owns the state machine,
//! then builds one ([`LogCore::offer_snapshot`]) and raft-rs asks again on
//! its next contact with the peer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};

/// Everything the log holds.
#[derive(Debug, Clone, Default)]
pub struct LogCore {
    pub hard_state: HardState,
    pub conf_state: ConfState,
    /// The compaction point: the metadata (index, term, membership) of the
    /// last entry removed from the log, (0, 0) for none. Its data is the
    /// state machine at that index when the driver has it at hand, or empty.
    pub snapshot: Snapshot,
    /// Entries after the compaction point, contiguous.
    entries: Vec<Entry>,
    /// What `entries` take in memory ([`retained_size`] of each).
    bytes: u64,
    /// A snapshot of the state machine offered for sending to laggards.
    offered: Option<Snapshot>,
    /// raft-rs asked for a snapshot newer than any at hand.
    wanted: bool,
    /// Where each server was last made a member, for the servers added
    /// while this log was in memory: a snapshot older than that would make
    /// it replay its own earlier removal (it may be back under the same id,
    /// empty) and take itself for removed.
    added_at: BTreeMap<u64, u64>,
}

impl LogCore {
    fn snapshot_index(&self) -> u64 {
        self.snapshot.get_metadata().index
    }

    pub fn first_index(&self) -> u64 {
        self.snapshot_index() + 1
    }

    pub fn last_index(&self) -> u64 {
        self.entries
            .last()
            .map_or(self.snapshot_index(), |e| e.index)
    }

    /// The entries after the compaction point.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Replaces the entries after the compaction point (a log read back
    /// from the store, or emptied).
    pub fn replace_entries(&mut self, entries: Vec<Entry>) {
        self.bytes = entries.iter().map(retained_size).sum();
        self.entries = entries;
    }

    /// About what the entries take in memory.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The index through which to compact so that the entries left take
    /// at most `budget` bytes, but not past `limit`; `None` if they already
    /// do. Reads the entries it would drop, no more.
    pub fn compaction_for_bytes(&self, budget: u64, limit: u64) -> Option<u64> {
        let mut left = self.bytes;
        let mut through = None;
        for e in &self.entries {
            if left <= budget || e.index > limit {
                break;
            }
            left -= retained_size(e);
            through = Some(e.index);
        }
        through
    }

    /// Writes entries, replacing everything from the first one's index on.
    pub fn append(&mut self, new: &[Entry]) -> Result<(), String> {
        let Some(first) = new.first() else {
            return Ok(());
        };
        if first.index < self.first_index() || first.index > self.last_index() + 1 {
            return Err(format!(
                "append at {} to a log holding {}..={}",
                first.index,
                self.first_index(),
                self.last_index()
            ));
        }
        let keep = usize::try_from(first.index - self.first_index()).unwrap_or(usize::MAX);
        if keep < self.entries.len() {
            let dropped: u64 = self.entries[keep..].iter().map(retained_size).sum();
            self.bytes -= dropped;
            self.entries.truncate(keep);
        }
        self.bytes += new.iter().map(retained_size).sum::<u64>();
        self.entries.extend_from_slice(new);
        Ok(())
    }

    /// Drops the entries up to `snapshot`'s index, which it replaces.
    pub fn compact(&mut self, snapshot: Snapshot) {
        let index = snapshot.get_metadata().index;
        if index <= self.snapshot_index() {
            return;
        }
        let drop = usize::try_from(index - self.snapshot_index())
            .unwrap_or(usize::MAX)
            .min(self.entries.len());
        let dropped: u64 = self.entries[..drop].iter().map(retained_size).sum();
        self.bytes -= dropped;
        self.entries.drain(..drop);
        self.snapshot = snapshot;
    }

    /// Installs a snapshot received from the leader: the log restarts
    /// after it.
    pub fn install(&mut self, snapshot: Snapshot) {
        let meta = snapshot.get_metadata();
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.conf_state = meta.get_conf_state().clone();
        self.replace_entries(Vec::new());
        self.offered = None;
        self.snapshot = snapshot;
    }

    /// The term of the entry at `index`, if this log knows it.
    pub fn term(&self, index: u64) -> Option<u64> {
        if index == self.snapshot_index() {
            return Some(self.snapshot.get_metadata().term);
        }
        if index < self.first_index() || index > self.last_index() {
            return None;
        }
        let at = usize::try_from(index - self.first_index()).ok()?;
        self.entries.get(at).map(|e| e.term)
    }

    /// Whether raft-rs is waiting for a snapshot to send; cleared by
    /// [`LogCore::offer_snapshot`].
    pub fn snapshot_wanted(&self) -> bool {
        self.wanted
    }

    /// A snapshot of the state machine (at an index at or past the
    /// compaction point) for raft-rs to send to laggards.
    pub fn offer_snapshot(&mut self, snapshot: Snapshot) {
        self.wanted = false;
        self.offered = Some(snapshot);
    }

    /// The offered snapshot of `index` cannot be sent (its image is gone):
    /// raft-rs's next request makes a new one.
    pub fn withdraw_offered(&mut self, index: u64) {
        if self
            .offered
            .as_ref()
            .is_some_and(|s| s.get_metadata().index == index)
        {
            self.offered = None;
        }
    }

    /// Server `id` became a member with the change at `index`.
    pub fn member_added(&mut self, id: u64, index: u64) {
        self.added_at.insert(id, index);
    }

    /// The snapshot to send to peer `to`, which needs the state at
    /// `request_index` or later, if one is at hand. It must name `to` as a
    /// member: raft-rs refuses to restore a snapshot whose membership
    /// lacks it (a server added after the snapshot was made); and it must
    /// be from after `to` was last added.
    fn snapshot_for(&mut self, request_index: u64, to: u64) -> Option<Snapshot> {
        let added = self.added_at.get(&to).copied().unwrap_or(0);
        let needed = request_index.max(self.snapshot_index()).max(added);
        let usable = |s: &Snapshot| {
            let conf = s.get_metadata().get_conf_state();
            s.get_metadata().index >= needed
                && (conf.voters.contains(&to) || conf.learners.contains(&to))
        };
        if let Some(offered) = &self.offered
            && usable(offered)
        {
            return Some(offered.clone());
        }
        let compaction = self.snapshot.get_metadata().index;
        if compaction > 0 && usable(&self.snapshot) && !self.snapshot.data.is_empty() {
            return Some(self.snapshot.clone());
        }
        self.wanted = true;
        None
    }
}

/// A shared handle: raft-rs reads through it, the driver writes.
#[derive(Debug, Clone, Default)]
pub struct MemLog(Arc<Mutex<LogCore>>);

impl MemLog {
    pub fn new(core: LogCore) -> MemLog {
        MemLog(Arc::new(Mutex::new(core)))
    }

    /// The log, locked. A panic while it was held cannot leave it half
    /// written (every write is one call), so a poisoned lock is taken over.
    pub fn core(&self) -> MutexGuard<'_, LogCore> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl raft::Storage for MemLog {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let core = self.core();
        Ok(RaftState::new(
            core.hard_state.clone(),
            core.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let core = self.core();
        if low < core.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > core.last_index() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let from = usize::try_from(low - core.first_index()).unwrap_or(usize::MAX);
        let to = usize::try_from(high - core.first_index()).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut size = 0u64;
        let max = max_size.into().unwrap_or(u64::MAX);
        for e in core.entries.get(from..to).unwrap_or_default() {
            size += entry_size(e);
            // At least one entry, as raft-rs's `limit_size`.
            if !out.is_empty() && size > max {
                break;
            }
            out.push(e.clone());
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let core = self.core();
        if idx < core.snapshot_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        core.term(idx)
            .ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.core().first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.core().last_index())
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        self.core()
            .snapshot_for(request_index, to)
            .ok_or(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ))
    }
}

/// An entry's size for batching (data and context dominate).
fn entry_size(e: &Entry) -> u64 {
    (e.data.len() + e.context.len() + 24) as u64
}

/// What an entry kept in the log takes in memory: its data and context
/// and the entry itself.
fn retained_size(e: &Entry) -> u64 {
    (e.data.len() + e.context.len() + std::mem::size_of::<Entry>()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::Storage as _;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Entry::default()
        }
    }

    fn snapshot(index: u64, term: u64, data: &[u8]) -> Snapshot {
        let mut s = Snapshot::default();
        s.mut_metadata().index = index;
        s.mut_metadata().term = term;
        s.mut_metadata().mut_conf_state().voters = vec![1, 2];
        s.data = data.to_vec().into();
        s
    }

    fn sized(index: u64, data: usize) -> Entry {
        Entry {
            index,
            term: 1,
            data: vec![0; data].into(),
            ..Entry::default()
        }
    }

    /// What the log takes follows every way it changes, and the byte
    /// compaction point leaves at most the budget, never passing its limit.
    #[test]
    fn bytes_follow_appends_overwrites_compactions_and_installs() {
        let per = std::mem::size_of::<Entry>() as u64;
        let log = MemLog::default();
        let mut core = log.core();
        core.append(&(1..=10).map(|i| sized(i, 100)).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(core.bytes(), 10 * (100 + per));
        // Raft's overwrite of a suffix.
        core.append(&[sized(8, 1000)]).unwrap();
        assert_eq!(core.bytes(), 7 * (100 + per) + 1000 + per);
        assert_eq!(core.compaction_for_bytes(u64::MAX, 8), None);
        // Keeping the 1000-byte entry and one more takes dropping 1..=6.
        let budget = 1000 + 100 + 2 * per;
        assert_eq!(core.compaction_for_bytes(budget, 8), Some(6));
        assert_eq!(core.compaction_for_bytes(budget, 3), Some(3));
        core.compact(snapshot(6, 1, b""));
        assert_eq!(core.bytes(), budget);
        core.replace_entries(vec![sized(7, 5)]);
        assert_eq!(core.bytes(), 5 + per);
        core.install(snapshot(20, 2, b""));
        assert_eq!((core.bytes(), core.entries().len()), (0, 0));
    }

    #[test]
    fn compaction_keeps_the_term_of_the_compaction_point() {
        let log = MemLog::default();
        log.core()
            .append(&[entry(1, 1), entry(2, 1), entry(3, 2)])
            .unwrap();
        log.core().compact(snapshot(2, 1, b""));
        assert_eq!(log.term(2).unwrap(), 1);
        assert!(log.term(1).is_err());
        assert_eq!(log.first_index().unwrap(), 3);
        assert_eq!(log.last_index().unwrap(), 3);
    }

    #[test]
    fn snapshots_are_made_on_demand_when_the_compaction_point_has_no_data() {
        let log = MemLog::default();
        log.core()
            .append(&[entry(1, 1), entry(2, 1), entry(3, 1)])
            .unwrap();
        log.core().compact(snapshot(2, 1, b""));
        assert!(log.snapshot(0, 2).is_err());
        assert!(log.core().snapshot_wanted());
        log.core().offer_snapshot(snapshot(3, 1, b"tree"));
        assert!(!log.core().snapshot_wanted());
        assert_eq!(log.snapshot(0, 2).unwrap().get_metadata().index, 3);
        // An offer older than the peer needs does not do.
        assert!(log.snapshot(4, 2).is_err());
        assert!(log.core().snapshot_wanted());
        // Nor one made before the peer was a member.
        log.core().offer_snapshot(snapshot(4, 1, b"tree"));
        assert!(log.snapshot(4, 3).is_err());
        assert!(log.core().snapshot_wanted());
        // Nor one made before the peer was last added (it may be back,
        // empty, under an id that was removed), though it names the peer.
        log.core().offer_snapshot(snapshot(4, 1, b"tree"));
        log.core().member_added(2, 5);
        assert!(log.snapshot(0, 2).is_err());
        log.core().offer_snapshot(snapshot(5, 1, b"tree"));
        assert_eq!(log.snapshot(0, 2).unwrap().get_metadata().index, 5);
    }

    #[test]
    fn an_append_must_touch_the_log() {
        let mut core = LogCore::default();
        assert!(core.append(&[entry(2, 1)]).is_err());
        core.append(&[entry(1, 1), entry(2, 1)]).unwrap();
        core.append(&[entry(2, 2)]).unwrap();
        assert_eq!(core.term(2), Some(2));
    }
}

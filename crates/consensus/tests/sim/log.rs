//! The simulator's Raft log storage: what a server's store holds for raft-rs
//! (hard state, membership, entries after the last snapshot, and that
//! snapshot), in memory, with compaction. raft-rs's own `MemStorage` cannot
//! compact a log without forgetting the term of the compaction point, which
//! replication needs; this one keeps it.

use std::sync::{Arc, Mutex, MutexGuard};

use consensus::raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use consensus::raft::{self, GetEntriesContext, RaftState, StorageError};

/// Everything the log holds; cloned whole to model the durable copy.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogCore {
    pub(crate) hard_state: HardState,
    pub(crate) conf_state: ConfState,
    /// The last snapshot taken or received; its metadata's index and term
    /// are the compaction point (0, 0 for none).
    pub(crate) snapshot: Snapshot,
    /// Entries after the compaction point, contiguous.
    pub(crate) entries: Vec<Entry>,
}

impl LogCore {
    fn snapshot_index(&self) -> u64 {
        self.snapshot.get_metadata().index
    }

    pub(crate) fn first_index(&self) -> u64 {
        self.snapshot_index() + 1
    }

    pub(crate) fn last_index(&self) -> u64 {
        self.entries
            .last()
            .map_or(self.snapshot_index(), |e| e.index)
    }

    /// Writes entries, replacing everything from the first one's index on.
    pub(crate) fn append(&mut self, new: &[Entry]) -> Result<(), String> {
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
        let keep = (first.index - self.first_index()) as usize;
        self.entries.truncate(keep);
        self.entries.extend_from_slice(new);
        Ok(())
    }

    /// Drops the entries up to `snapshot`'s index, which it replaces.
    pub(crate) fn compact(&mut self, snapshot: Snapshot) {
        let index = snapshot.get_metadata().index;
        if index <= self.snapshot_index() {
            return;
        }
        let drop = ((index - self.snapshot_index()) as usize).min(self.entries.len());
        self.entries.drain(..drop);
        self.snapshot = snapshot;
    }

    /// Installs a snapshot received from the leader: the log restarts
    /// after it.
    pub(crate) fn install(&mut self, snapshot: Snapshot) {
        let meta = snapshot.get_metadata();
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.conf_state = meta.get_conf_state().clone();
        self.entries.clear();
        self.snapshot = snapshot;
    }

    /// The term of the entry at `index`, if this log knows it.
    pub(crate) fn term(&self, index: u64) -> Option<u64> {
        if index == self.snapshot_index() {
            return Some(self.snapshot.get_metadata().term);
        }
        if index < self.first_index() || index > self.last_index() {
            return None;
        }
        Some(self.entries[(index - self.first_index()) as usize].term)
    }
}

/// A shared handle: raft-rs reads through it, the driver writes.
#[derive(Debug, Clone, Default)]
pub(crate) struct SimLog(Arc<Mutex<LogCore>>);

impl SimLog {
    pub(crate) fn new(core: LogCore) -> SimLog {
        SimLog(Arc::new(Mutex::new(core)))
    }

    pub(crate) fn core(&self) -> MutexGuard<'_, LogCore> {
        self.0.lock().expect("one thread")
    }
}

impl raft::Storage for SimLog {
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
        let from = (low - core.first_index()) as usize;
        let to = (high - core.first_index()) as usize;
        let mut out = Vec::new();
        let mut size = 0u64;
        let max = max_size.into().unwrap_or(u64::MAX);
        for e in &core.entries[from..to] {
            size += u64::from(protobuf_size(e));
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

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let core = self.core();
        if core.snapshot_index() < request_index || core.snapshot_index() == 0 {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(core.snapshot.clone())
    }
}

/// An entry's size for batching (data and context dominate).
fn protobuf_size(e: &Entry) -> u32 {
    (e.data.len() + e.context.len() + 24) as u32
}

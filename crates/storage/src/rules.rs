//! The log's rules, shared by both stores so that they refuse exactly the
//! same operations with exactly the same errors.

use crate::{ApplyBatch, LogEntry, StorageError};

/// Where the log and the applied marker stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// (index, term) of the last compacted entry; (0, 0) if none.
    pub(crate) compacted: (u64, u64),
    /// Index of the last entry, or the compacted index if the log is empty.
    pub(crate) last: u64,
    pub(crate) applied: u64,
}

impl Bounds {
    pub(crate) fn first(&self) -> u64 {
        self.compacted.0 + 1
    }

    /// Checks an append; `Ok(None)` for an empty one (nothing to do), else
    /// the index from which the log is replaced.
    pub(crate) fn check_append(&self, entries: &[LogEntry]) -> Result<Option<u64>, StorageError> {
        let Some(first) = entries.first() else {
            return Ok(None);
        };
        let start = first.index;
        for (offset, entry) in entries.iter().enumerate() {
            let expected = start.checked_add(offset as u64);
            if expected != Some(entry.index) {
                return Err(StorageError::InvalidAppend {
                    index: entry.index,
                    reason: format!(
                        "entries are not consecutive: entry {offset} of the batch starting at {start} has index {}",
                        entry.index
                    ),
                });
            }
        }
        if start > self.last.saturating_add(1) {
            return Err(StorageError::InvalidAppend {
                index: start,
                reason: format!("would leave a gap: the log ends at {}", self.last),
            });
        }
        if start <= self.compacted.0 {
            return Err(StorageError::InvalidAppend {
                index: start,
                reason: format!(
                    "would overwrite compacted entries: the log starts at {}",
                    self.first()
                ),
            });
        }
        if start <= self.applied {
            return Err(StorageError::InvalidAppend {
                index: start,
                reason: format!(
                    "would overwrite applied entries: the applied index is {}",
                    self.applied
                ),
            });
        }
        Ok(Some(start))
    }

    /// Checks a suffix truncation; `Ok(false)` if there is nothing to remove.
    pub(crate) fn check_truncate(&self, from: u64) -> Result<bool, StorageError> {
        if from > self.last {
            return Ok(false);
        }
        if from <= self.compacted.0 {
            return Err(StorageError::InvalidLogChange {
                operation: "truncation",
                index: from,
                reason: format!(
                    "would remove compacted entries: the log starts at {}",
                    self.first()
                ),
            });
        }
        if from <= self.applied {
            return Err(StorageError::InvalidLogChange {
                operation: "truncation",
                index: from,
                reason: format!(
                    "would remove applied entries: the applied index is {}",
                    self.applied
                ),
            });
        }
        Ok(true)
    }

    /// Checks a prefix compaction; `Ok(false)` if it is already compacted.
    pub(crate) fn check_compact(&self, through: u64) -> Result<bool, StorageError> {
        if through <= self.compacted.0 {
            return Ok(false);
        }
        if through > self.applied {
            return Err(StorageError::InvalidLogChange {
                operation: "compaction",
                index: through,
                reason: format!(
                    "entries above the applied index {} are never compacted",
                    self.applied
                ),
            });
        }
        if through > self.last {
            return Err(StorageError::InvalidLogChange {
                operation: "compaction",
                index: through,
                reason: format!("the log ends at {}", self.last),
            });
        }
        Ok(true)
    }

    /// Checks a read of `[lo, hi)`.
    pub(crate) fn check_range(&self, lo: u64, hi: u64) -> Result<(), StorageError> {
        if lo > hi {
            return Err(StorageError::InvalidRange { lo, hi });
        }
        if lo < self.first() {
            return Err(StorageError::Compacted {
                index: lo,
                first_index: self.first(),
            });
        }
        if hi > self.last.saturating_add(1) {
            return Err(StorageError::Unavailable {
                index: hi - 1,
                last_index: self.last,
            });
        }
        Ok(())
    }

    /// Checks `term(index)`: `Ok(Some(term))` when the answer is the
    /// compaction boundary, `Ok(None)` when the entry must be read.
    pub(crate) fn check_term(&self, index: u64) -> Result<Option<u64>, StorageError> {
        if index == self.compacted.0 {
            return Ok(Some(self.compacted.1));
        }
        if index < self.compacted.0 {
            return Err(StorageError::Compacted {
                index,
                first_index: self.first(),
            });
        }
        if index > self.last {
            return Err(StorageError::Unavailable {
                index,
                last_index: self.last,
            });
        }
        Ok(None)
    }

    pub(crate) fn check_apply(&self, batch: &ApplyBatch) -> Result<(), StorageError> {
        if batch.applied_index < self.applied {
            return Err(StorageError::InvalidApply {
                reason: format!(
                    "the applied index would go back from {} to {}",
                    self.applied, batch.applied_index
                ),
            });
        }
        if batch.applied_index > self.last {
            return Err(StorageError::InvalidApply {
                reason: format!(
                    "applied index {} is past the end of the log ({})",
                    batch.applied_index, self.last
                ),
            });
        }
        Ok(())
    }
}

/// Keeps the first entry, then every entry while the total stays within
/// `max_bytes` (raft-rs's `limit_size`).
pub(crate) fn within_limit(sizes_so_far: u64, next: u64, taken: usize, max_bytes: u64) -> bool {
    taken == 0 || sizes_so_far.saturating_add(next) <= max_bytes
}

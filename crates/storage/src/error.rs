//! What can go wrong in the store, in terms a person can act on: every
//! variant says what was found and, where it matters, where.

use std::path::PathBuf;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// RocksDB reported an error; `context` says what we were doing.
    #[cfg(feature = "rocks")]
    #[error("{context}: {source}")]
    RocksDb {
        context: String,
        #[source]
        source: rocksdb::Error,
    },

    /// A file-system operation outside RocksDB failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// Stored bytes do not decode: a checksum mismatch, a torn value, a
    /// value under the wrong key, a missing record, a log with a gap.
    /// Nothing is decoded into a value when this is returned.
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: String, detail: String },

    /// The data directory was written by a build with another on-disk format.
    #[error(
        "data directory {path} has storage format version {found}; this build reads versions 1 to {supported}"
    )]
    UnknownFormatVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// Another process (or another `RocksStore` in this process) has the
    /// data directory open: RocksDB's `LOCK` file is held.
    #[error(
        "data directory {path} is locked: another Conclave server (or another store in this process) has it open"
    )]
    Locked {
        path: PathBuf,
        /// What reported the lock: our own lock file or RocksDB's.
        detail: String,
    },

    /// The directory holds files but is not a Conclave data directory, or
    /// is a RocksDB database of something else. Nothing was written to it.
    #[error("{path} is not a Conclave data directory: {reason}")]
    NotAStore { path: PathBuf, reason: String },

    /// The entry was removed by log compaction: the log starts after it.
    #[error("log entry {index} was compacted away; the log starts at {first_index}")]
    Compacted { index: u64, first_index: u64 },

    /// The entry is past the end of the log.
    #[error("log entry {index} is not in the log; the log ends at {last_index}")]
    Unavailable { index: u64, last_index: u64 },

    /// An append that would leave a gap, overwrite compacted or applied
    /// entries, or whose entries are not consecutive.
    #[error("invalid append at index {index}: {reason}")]
    InvalidAppend { index: u64, reason: String },

    /// A truncation or compaction the log cannot honour (below the applied
    /// index, into the compacted prefix, past the end).
    #[error("invalid log {operation} at index {index}: {reason}")]
    InvalidLogChange {
        operation: &'static str,
        index: u64,
        reason: String,
    },

    /// A read range with `lo > hi`.
    #[error("invalid log range [{lo}, {hi})")]
    InvalidRange { lo: u64, hi: u64 },

    /// An apply batch whose applied index goes backwards or points past the
    /// end of the log.
    #[error("invalid apply batch: {reason}")]
    InvalidApply { reason: String },

    /// An earlier write or sync failed, so what is durable is unknown; the
    /// store refuses everything until it is reopened (a failed fsync must not
    /// be retried into a false success).
    #[error("store unusable after an earlier failure: {cause}")]
    Poisoned { cause: String },
}

impl StorageError {
    pub(crate) fn corrupt(what: impl Into<String>, detail: impl Into<String>) -> Self {
        StorageError::Corrupt {
            what: what.into(),
            detail: detail.into(),
        }
    }

    #[cfg(feature = "rocks")]
    pub(crate) fn rocks(context: impl Into<String>, source: rocksdb::Error) -> Self {
        StorageError::RocksDb {
            context: context.into(),
            source,
        }
    }

    /// Whether this is a read of a compacted entry (raft-rs's
    /// `StorageError::Compacted`).
    pub fn is_compacted(&self) -> bool {
        matches!(self, StorageError::Compacted { .. })
    }

    /// Whether this is a read past the end of the log (raft-rs's
    /// `StorageError::Unavailable`).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StorageError::Unavailable { .. })
    }
}

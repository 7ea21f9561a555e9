//! Conclave's durable store: the log of transactions, the data tree, the
//! sessions and the metadata, in one RocksDB database with a column family
//! for each (`rocks`), and an in-memory store with the same behaviour for
//! the deterministic simulator and for tests (`memory`).
//!
//! The log is designed to be the consensus log of the replicated ensemble
//! (raft-rs): entries carry an index and a term, and the API offers what a
//! Raft log store needs (append, truncate a suffix, compact a prefix, read a
//! range, the term of an index, the hard state). In a standalone server the
//! log holds the same entries with term 0.
//!
//! Durability contract: [`Store::append`] makes entries readable at once but
//! durable only after [`Store::sync`] returns; a caller acknowledges nothing
//! before that. One `sync` covers every append before it (group commit).
//! [`Store::apply`] writes the tree, the sessions and the applied marker in
//! one atomic batch without syncing: if it is lost in a crash, recovery
//! re-applies the logged entries after the applied marker. The same holds
//! for every other mutation (truncation, compaction, hard state, config):
//! each is atomic, readable at once, and durable at the next `sync`; a crash
//! keeps a prefix of the mutations since the last sync (possibly none), in
//! the order they were made. `docs/storage.md` has the details.
//!
//! The rules every implementation enforces with the same errors: the log
//! has no gaps and starts right after the compacted index; nothing at or
//! below the applied index is overwritten or truncated; nothing above it is
//! compacted; the applied index never goes back and never passes the end of
//! the log.
//!
//! Architecture invariant: the on-disk format lives here and only here
//! (`codec`); nothing above this crate knows a key or a byte layout.

mod codec;
pub mod consensus_log;
mod error;
pub mod image;
pub mod membership_record;
pub mod memory;
pub mod recovery;
#[cfg(feature = "rocks")]
pub mod rocks;
mod rules;
mod writeback;
pub mod writer;

pub use codec::{Crc32c, decode_image, decode_txn, encode_image, encode_txn};
pub use error::StorageError;

use tree::{SessionRecord, StatPersisted};

/// The on-disk format version this build writes. It reads this one and
/// version 1, whose tree and sessions are always in the `tree` and
/// `sessions` column families (version 2 names which pair holds them,
/// `rocks/generation.rs`); a version 1 store becomes version 2 when it
/// installs a snapshot's image.
pub const FORMAT_VERSION: u32 = 2;

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Position in the log, from 1, without gaps.
    pub index: u64,
    /// Consensus term (the ZooKeeper epoch); 0 for a standalone server.
    pub term: u64,
    pub kind: EntryKind,
    /// The encoded transaction ([`encode_txn`]) or configuration change.
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A ZooKeeper transaction.
    Txn,
    /// A membership change (used by the ensemble).
    Config,
    /// An entry with no payload (a new leader's first entry).
    Empty,
}

/// Raft's hard state: what must survive a restart for votes to be safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardState {
    pub term: u64,
    pub vote: u64,
    pub commit: u64,
}

/// A znode as stored: everything but its children, which are rebuilt from
/// the paths on load (so creating a child never rewrites its parent's list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub data: Option<Vec<u8>>,
    /// Shared with the tree's node: records are made for every write and
    /// read for every node at start, and most nodes carry one of a few
    /// lists.
    pub acl: std::sync::Arc<Vec<proto::Acl>>,
    pub stat: StatPersisted,
}

/// What applying one or more committed entries changed, written atomically.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyBatch {
    /// Index of the last entry this batch applies.
    pub applied_index: u64,
    /// zxid of the last transaction applied.
    pub applied_zxid: i64,
    /// Nodes to write (`Some`) or remove (`None`), by path.
    pub nodes: Vec<(String, Option<NodeRecord>)>,
    /// Sessions to write or remove, by id.
    pub sessions: Vec<(i64, Option<SessionRecord>)>,
}

/// Metadata kept beside the log and the tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    pub format_version: u32,
    pub applied_index: u64,
    pub applied_zxid: i64,
    pub hard_state: HardState,
    /// The committed ensemble configuration, opaque to this crate.
    pub config: Option<Vec<u8>>,
    /// (index, term) of the last entry removed by compaction; (0, 0) if none.
    pub compacted: (u64, u64),
}

/// Everything a server needs to start serving from a store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Loaded {
    pub meta: Meta,
    /// Every node, in path order.
    pub nodes: Vec<(String, NodeRecord)>,
    pub sessions: Vec<(i64, SessionRecord)>,
}

/// The state machine as of one log entry: what a snapshot carries to a
/// server too far behind to catch up from the log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Image {
    /// The last entry the image reflects.
    pub index: u64,
    pub term: u64,
    /// The zxid of that entry.
    pub zxid: i64,
    /// Every node, in path order.
    pub nodes: Vec<(String, NodeRecord)>,
    pub sessions: Vec<(i64, SessionRecord)>,
}

/// The storage API, implemented by [`rocks::RocksStore`] and
/// [`memory::MemoryStore`]. `&mut self` everywhere: one owner writes.
pub trait Store: Send {
    /// Appends entries. The first entry's index must be `last_index() + 1`,
    /// or lower to overwrite a suffix (everything from that index on is
    /// replaced, as Raft requires when a leader overrides a follower).
    fn append(&mut self, entries: &[LogEntry]) -> Result<(), StorageError>;

    /// Makes every append so far durable (fsync of the write-ahead log).
    fn sync(&mut self) -> Result<(), StorageError>;

    /// Removes every entry with index >= `from` (nothing if `from` is past
    /// the end). Refused if that would remove compacted or applied entries.
    fn truncate_suffix(&mut self, from: u64) -> Result<(), StorageError>;

    /// Removes every entry with index <= `through`, remembering its term
    /// (nothing if already compacted). Entries above the applied index are
    /// never compacted: that is refused.
    fn compact_prefix(&mut self, through: u64) -> Result<(), StorageError>;

    /// Entries with `lo <= index < hi`: [`StorageError::Compacted`] if `lo`
    /// is below [`Store::first_index`], [`StorageError::Unavailable`] if `hi`
    /// is beyond `last_index() + 1`.
    fn entries(&self, lo: u64, hi: u64) -> Result<Vec<LogEntry>, StorageError> {
        self.entries_limited(lo, hi, u64::MAX)
    }

    /// Like [`Store::entries`], but stops before the entry that would take
    /// the total stored size past `max_bytes`; always returns at least one
    /// entry when `lo < hi` (raft-rs's `Storage::entries` with `max_size`).
    fn entries_limited(
        &self,
        lo: u64,
        hi: u64,
        max_bytes: u64,
    ) -> Result<Vec<LogEntry>, StorageError>;

    /// The term of the entry at `index`, also for the last compacted one.
    fn term(&self, index: u64) -> Result<u64, StorageError>;

    /// Index of the first entry still in the log (compacted + 1).
    fn first_index(&self) -> u64;

    /// Index of the last entry, or the last compacted one if the log is empty.
    fn last_index(&self) -> u64;

    fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError>;

    fn set_config(&mut self, config: &[u8]) -> Result<(), StorageError>;

    /// Writes the tree and session changes and the applied marker in one
    /// atomic batch (not synced; see the crate docs). Changes apply in order,
    /// so a later change of the same path or session wins. Refused if the
    /// applied index would go back or pass the end of the log.
    fn apply(&mut self, batch: &ApplyBatch) -> Result<(), StorageError>;

    /// Replaces everything with a snapshot from the leader, atomically: the
    /// tree and the sessions become the image's, the log is emptied and
    /// restarts after the image's index (which becomes the compaction
    /// point), and that index is the applied one. Not synced, like every
    /// other mutation.
    fn install_image(&mut self, image: &Image) -> Result<(), StorageError>;

    /// [`Store::install_image`] with the image as a stream
    /// (`image::stream`), checked whole before anything changes; a store
    /// that can writes it without holding the decoded image. The stream's
    /// records must have been decoded and checked once already (as a
    /// staged image's are, `image::Images`): a store may take them in
    /// their encoding without decoding them again.
    fn install_image_stream(&mut self, input: &mut dyn std::io::Read) -> Result<(), StorageError> {
        let image = image::read_image(input)?;
        self.install_image(&image)
    }

    /// A consistent view of the tree and sessions as they are now (every
    /// write made so far, synced or not), to make an image from on
    /// another thread while this store goes on taking writes.
    fn image_view(&self) -> Result<Box<dyn image::ImageView>, StorageError>;

    /// Reads everything back: metadata, nodes, sessions.
    fn load(&self) -> Result<Loaded, StorageError>;

    fn meta(&self) -> Meta;

    /// An orderly shutdown: makes everything durable. RocksDB also flushes
    /// its memtables, so nothing lives only in the write-ahead log.
    fn shutdown(&mut self) -> Result<(), StorageError> {
        self.sync()
    }
}

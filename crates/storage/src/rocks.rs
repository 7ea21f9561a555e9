//! [`RocksStore`]: the storage API on RocksDB.
//!
//! One RocksDB database is the data directory, with a column family each
//! for the log, the tree, the sessions and the metadata (layout and
//! encodings: `codec` and `docs/storage.md`). Every mutation is one
//! `WriteBatch` written to the write-ahead log without syncing; [`Store::sync`]
//! is `FlushWAL(sync = true)`, which makes every earlier write durable with
//! one `fdatasync`, so the writes that queue up while a sync runs share the
//! next one (group commit with no artificial delay).
//!
//! # Options, for a small latency-sensitive store
//!
//! - `wal_recovery_mode = TolerateCorruptedTailRecords`: after a crash the
//!   store accepts an incomplete record at the end of the write-ahead log
//!   (the write the crash interrupted, never acknowledged) and refuses a
//!   damaged record anywhere before it. `PointInTime` would stop at a
//!   damaged record in the middle and then delete the rest of the WAL,
//!   silently losing acknowledged writes (the server's integration suite
//!   flips one byte in the middle of a WAL to check this);
//!   `AbsoluteConsistency` would refuse even the torn tail a power loss
//!   leaves; `SkipAnyCorruptedRecords` would drop records silently.
//! - `recycle_log_file_num` is **not** set, although reusing WAL files
//!   would spare `fdatasync` the file-size and block-allocation metadata
//!   updates: RocksDB honours it only with `SkipAnyCorruptedRecords`, the
//!   silent data loss ruled out above. RocksDB preallocates WAL space
//!   (`allow_fallocate`) instead.
//! - Opening checks everything (format version, metadata, every log entry,
//!   every node and session record) through a read-only handle first,
//!   whose info log goes to a temporary directory: a store that is refused
//!   is never opened for writing, so nothing in it is rewritten. An
//!   advisory lock (`flock`) on the directory itself is taken before
//!   anything else, so a second server refused as `Locked` touches nothing
//!   of the running one.
//! - `track_and_verify_wals` (set through an option string; the rocksdb
//!   crate does not wrap it) and `track_and_verify_wals_in_manifest`: each
//!   WAL records its predecessor and closed WALs are recorded in the
//!   manifest, so a data directory whose WAL files are missing (even the
//!   only one) or cut short is refused instead of silently losing
//!   acknowledged writes. What no option can catch is the live WAL emptied
//!   or cut at a record boundary: that is indistinguishable from a crash
//!   before those writes were synced. Two things shrink that window: the
//!   format version is flushed into a table file when a store is created,
//!   and [`RocksStore::close`] flushes every memtable on a clean shutdown.
//! - `manual_wal_flush = false`: every write reaches the OS at once, so a
//!   crash of the process alone (not of the machine) loses nothing.
//! - `use_fsync = false` (`fdatasync`), `paranoid_checks = true`.
//! - Memtables of 16 MiB per column family within a 64 MiB total, and
//!   `max_total_wal_size` 64 MiB, so a rarely written column family cannot
//!   pin old WAL files; two background jobs (flush and compaction) for a
//!   2-core machine; LZ4 on upper levels and Zstd on the bottommost level;
//!   at most 4 info `LOG` files of 1 MiB in the data directory.
//! - `bytes_per_sync` 1 MiB: flushes and compactions sync their table
//!   files as they write them, so gigabytes of them are never dirty at
//!   once in front of the WAL's syncs (`writeback.rs` does the same for
//!   images and an install's table files).
//! - One block cache of 8 MiB for every column family of every store in
//!   the process (RocksDB's default is 32 MiB per column family): clients
//!   are answered from the tree in memory, so the store is read only to
//!   load it at start, to make images and to replay the log, all of them
//!   whole scans that skip the cache (`fill_cache = false`).
//!
//! With the WAL on, a crash leaves the column families consistent with each
//! other without `atomic_flush`: RocksDB syncs closed WALs before a flush
//! of one column family when there are several.

mod generation;

use std::path::{Path, PathBuf};

use generation::{Generation, read_generation, tables_dir};
use rocksdb::checkpoint::Checkpoint;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType,
    DBRecoveryMode, Direction, ErrorKind, FlushOptions, IteratorMode, Options, ReadOptions,
    WriteBatch, WriteOptions,
};

use crate::codec::{self, meta_key};
use crate::rules::{Bounds, within_limit};
use crate::{ApplyBatch, FORMAT_VERSION, HardState, Loaded, LogEntry, Meta, StorageError, Store};

/// Column family of the log: key = index (u64 big-endian), value = entry.
pub const CF_LOG: &str = "log";
/// Column family of the tree: key = path (UTF-8), value = node record.
/// This is generation 0's; an installed image's are `tree.1`, `tree.2`, …
/// (`rocks/generation.rs`).
pub const CF_TREE: &str = "tree";
/// Column family of the sessions: key = id (i64, big-endian, sign bit
/// flipped), value = session record. Generation 0's, as [`CF_TREE`].
pub const CF_SESSIONS: &str = "sessions";
/// Column family of the metadata: key = a name, value = that field.
pub const CF_META: &str = "meta";
/// Every column family a store is created with (besides RocksDB's
/// `default`, which stays empty).
pub const COLUMN_FAMILIES: [&str; 4] = [CF_LOG, CF_TREE, CF_SESSIONS, CF_META];

/// The durable store: one RocksDB database in a data directory.
#[derive(Debug)]
pub struct RocksStore {
    db: DB,
    dir: PathBuf,
    /// The metadata as last written (reads of it never touch RocksDB).
    meta: Meta,
    /// The column families of the tree and the sessions.
    generation: Generation,
    /// Index of the last log entry, or the compacted index if none.
    last_index: u64,
    /// Set by a failed write or sync: from then on nothing is known about
    /// what is durable, so the store refuses everything.
    failed: Option<String>,
    /// The advisory lock on the store directory, held while it is open.
    _lock: Option<std::fs::File>,
    /// What the read-only validation loaded, handed out by the first
    /// `load()` so a server start reads the tree once.
    preloaded: std::sync::Mutex<Option<Loaded>>,
}

impl RocksStore {
    /// Opens the store in `dir`, creating it if `dir` is missing or empty
    /// (a `lost+found` directory alone counts as empty, as on a freshly
    /// formatted volume).
    ///
    /// Refuses, without writing anything: a directory that holds files but
    /// no RocksDB database, or a RocksDB database that is not a Conclave
    /// store ([`StorageError::NotAStore`]); a store of another format
    /// version ([`StorageError::UnknownFormatVersion`]); a store another
    /// process has open ([`StorageError::Locked`]); missing column families,
    /// undecodable metadata, a log with a gap or a checksum mismatch, a log
    /// that ends before the applied index ([`StorageError::Corrupt`]).
    ///
    /// Every log entry is read and checked here, so opening takes time in
    /// proportion to the uncompacted log.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        // Our own lock first, so that a refused second server touches
        // nothing of the running one's (RocksDB rotates its info log before
        // it takes its own lock).
        let lock = lock_store(dir)?;
        // A view left by a process that died while making an image holds
        // hard links to old table files: their space comes back now.
        if let Err(e) = remove_dir_if_present(&view_dir(dir)) {
            tracing::warn!(error = %e, "could not remove an old image view");
        }
        // So do the table files of an install that was interrupted.
        if let Err(e) = remove_dir_if_present(&tables_dir(dir)) {
            tracing::warn!(error = %e, "could not remove an old install's table files");
        }
        let mut store = match inspect_dir(dir)? {
            DirKind::Fresh => create(dir)?,
            DirKind::Database => {
                // Everything is checked through a read-only handle first:
                // a store that is refused is never opened for writing, so
                // RocksDB does not rewrite its manifest, WAL or options.
                let validated = validate_read_only(dir)?;
                let mut store = open_existing(dir, validated.as_ref().map(|(_, last)| *last))?;
                store.preloaded = std::sync::Mutex::new(validated.map(|(loaded, _)| loaded));
                store
            }
        };
        store._lock = Some(lock);
        Ok(store)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Closes the store cleanly: syncs the WAL and flushes the memtables of
    /// every column family into table files (synced, recorded in the
    /// manifest), so nothing lives only in the write-ahead log and the next
    /// open has nothing to replay. For a server's orderly shutdown.
    /// Dropping the store without `close` is safe too: every write has
    /// reached the OS, and what was synced survives a machine crash.
    pub fn close(mut self) -> Result<(), StorageError> {
        self.flush_everything()
    }

    fn flush_everything(&mut self) -> Result<(), StorageError> {
        self.check_usable()?;
        let context = || format!("closing the store in {}", self.dir.display());
        self.db
            .flush_wal(true)
            .map_err(|e| StorageError::rocks(context(), e))?;
        let cfs = [
            CF_LOG,
            self.generation.tree(),
            self.generation.sessions(),
            CF_META,
        ]
        .iter()
        .map(|name| self.cf(name))
        .collect::<Result<Vec<_>, _>>()?;
        self.db
            .flush_cfs_opt(&cfs, &FlushOptions::default())
            .map_err(|e| StorageError::rocks(context(), e))
    }

    /// Writes a consistent copy of the whole store (log, tree, sessions,
    /// metadata) into `target`, which must not exist yet: hard links to the
    /// immutable table files where possible, copies otherwise. The copy is a
    /// store [`RocksStore::open`] accepts, which is how a replica too far
    /// behind to catch up from the log receives the state. It includes
    /// writes not yet synced here.
    pub fn checkpoint(&self, target: &Path) -> Result<(), StorageError> {
        self.check_usable()?;
        let context = || {
            format!(
                "creating a checkpoint of {} in {}",
                self.dir.display(),
                target.display()
            )
        };
        let checkpoint =
            Checkpoint::new(&self.db).map_err(|e| StorageError::rocks(context(), e))?;
        checkpoint
            .create_checkpoint(target)
            .map_err(|e| StorageError::rocks(context(), e))
    }

    /// Every log entry from `from` on (from the first one if `from` is
    /// below it), decoded and checked, for inspection tools. The iteration
    /// sees the log as it was when this was called.
    pub fn log_entries(
        &self,
        from: u64,
    ) -> Result<impl Iterator<Item = Result<LogEntry, StorageError>> + '_, StorageError> {
        let cf = self.cf(CF_LOG)?;
        let start = codec::log_key(from);
        let iter = self
            .db
            .iterator_cf(cf, IteratorMode::From(&start, Direction::Forward));
        Ok(iter.map(|item| match item {
            Ok((key, value)) => codec::decode_entry_at(&key, &value),
            Err(e) => Err(StorageError::rocks("reading the log", e)),
        }))
    }

    /// Replaces everything with an image in one atomic batch: the log
    /// emptied, the tree and the sessions replaced by what `fill` puts in
    /// the batch (it returns the image's header), the applied and compacted
    /// markers set at its index. Nothing is written if `fill` fails.
    fn install_with(
        &mut self,
        fill: impl FnOnce(
            &mut WriteBatch,
            &ColumnFamily,
            &ColumnFamily,
        ) -> Result<crate::image::ImageHeader, StorageError>,
    ) -> Result<(), StorageError> {
        self.check_usable()?;
        let mut batch = WriteBatch::default();
        let tree = self.cf(self.generation.tree())?;
        // Node keys are UTF-8 paths: no key starts with 0xFF.
        batch.delete_range_cf(tree, Vec::new(), vec![0xFF]);
        let sessions = self.cf(self.generation.sessions())?;
        for item in self.db.iterator_cf(sessions, rocksdb::IteratorMode::Start) {
            let (key, _) =
                item.map_err(|e| StorageError::rocks("reading the sessions to replace", e))?;
            batch.delete_cf(sessions, key);
        }
        let header = fill(&mut batch, tree, sessions)?;
        self.put_image_point(&mut batch, &header)?;
        self.write(batch, "a snapshot image")?;
        self.at_image_point(&header);
        Ok(())
    }

    /// Puts into `batch` what makes an image's index the store's starting
    /// point: every log entry removed, the compacted and applied markers
    /// at that index.
    fn put_image_point(
        &self,
        batch: &mut WriteBatch,
        header: &crate::image::ImageHeader,
    ) -> Result<(), StorageError> {
        let first = self.bounds().first();
        if self.last_index >= first {
            batch.delete_range_cf(
                self.cf(CF_LOG)?,
                codec::log_key(first).to_vec(),
                log_end_key(self.last_index),
            );
        }
        let meta = self.cf(CF_META)?;
        batch.put_cf(
            meta,
            meta_key::COMPACTED,
            codec::encode_compacted(header.index, header.term),
        );
        batch.put_cf(
            meta,
            meta_key::APPLIED,
            codec::encode_applied(header.index, header.zxid),
        );
        Ok(())
    }

    /// What the store knows of itself once [`RocksStore::put_image_point`]'s
    /// batch is written.
    fn at_image_point(&mut self, header: &crate::image::ImageHeader) {
        self.meta.compacted = (header.index, header.term);
        self.meta.applied_index = header.index;
        self.meta.applied_zxid = header.zxid;
        self.last_index = header.index;
    }

    fn cf(&self, name: &str) -> Result<&ColumnFamily, StorageError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StorageError::corrupt(format!("column family {name}"), "missing"))
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            compacted: self.meta.compacted,
            last: self.last_index,
            applied: self.meta.applied_index,
        }
    }

    fn check_usable(&self) -> Result<(), StorageError> {
        match &self.failed {
            None => Ok(()),
            Some(cause) => Err(StorageError::Poisoned {
                cause: cause.clone(),
            }),
        }
    }

    /// Writes one batch to the WAL and the memtables, without syncing.
    fn write(&mut self, batch: WriteBatch, what: &str) -> Result<(), StorageError> {
        self.write_opt(batch, what, false)
    }

    /// Writes one batch to the WAL and the memtables, synced if `sync`.
    fn write_opt(&mut self, batch: WriteBatch, what: &str, sync: bool) -> Result<(), StorageError> {
        self.check_usable()?;
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        self.db.write_opt(batch, &options).map_err(|e| {
            let err = StorageError::rocks(format!("writing {what} to {}", self.dir.display()), e);
            self.failed = Some(err.to_string());
            err
        })
    }

    /// Reads entries `[lo, hi)` (already checked against the bounds), up to
    /// `max_bytes` but at least one.
    fn read_entries(
        &self,
        lo: u64,
        hi: u64,
        max_bytes: u64,
    ) -> Result<Vec<LogEntry>, StorageError> {
        let mut out = Vec::new();
        if lo >= hi {
            return Ok(out);
        }
        let cf = self.cf(CF_LOG)?;
        let mut options = scan_options();
        options.set_iterate_upper_bound(codec::log_key(hi).to_vec());
        let start = codec::log_key(lo);
        let mut total = 0u64;
        for item in
            self.db
                .iterator_cf_opt(cf, options, IteratorMode::From(&start, Direction::Forward))
        {
            let (key, value) = item.map_err(|e| StorageError::rocks("reading the log", e))?;
            let entry = codec::decode_entry_at(&key, &value)?;
            let expected = lo + out.len() as u64;
            if entry.index != expected {
                return Err(missing_entry(expected));
            }
            let size = codec::entry_size(&entry);
            if !within_limit(total, size, out.len(), max_bytes) {
                return Ok(out);
            }
            total = total.saturating_add(size);
            out.push(entry);
        }
        let expected = lo + out.len() as u64;
        if expected < hi {
            return Err(missing_entry(expected));
        }
        Ok(out)
    }
}

fn missing_entry(index: u64) -> StorageError {
    StorageError::corrupt(format!("log entry {index}"), "missing from the log")
}

/// The exclusive end key of the log range that ends with `last`.
fn log_end_key(last: u64) -> Vec<u8> {
    match last.checked_add(1) {
        Some(next) => codec::log_key(next).to_vec(),
        // Past every 8-byte key.
        None => vec![0xff; 9],
    }
}

impl Store for RocksStore {
    fn shutdown(&mut self) -> Result<(), StorageError> {
        self.flush_everything()
    }

    fn append(&mut self, entries: &[LogEntry]) -> Result<(), StorageError> {
        self.check_usable()?;
        let Some(start) = self.bounds().check_append(entries)? else {
            return Ok(());
        };
        let cf = self.cf(CF_LOG)?;
        let mut batch = WriteBatch::default();
        if start <= self.last_index {
            batch.delete_range_cf(
                cf,
                codec::log_key(start).to_vec(),
                log_end_key(self.last_index),
            );
        }
        for entry in entries {
            batch.put_cf(cf, codec::log_key(entry.index), codec::encode_entry(entry));
        }
        let last = entries.last().map_or(self.last_index, |e| e.index);
        self.write(batch, "log entries")?;
        self.last_index = last;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.check_usable()?;
        self.db.flush_wal(true).map_err(|e| {
            let err = StorageError::rocks(
                format!("syncing the write-ahead log in {}", self.dir.display()),
                e,
            );
            self.failed = Some(err.to_string());
            err
        })
    }

    fn truncate_suffix(&mut self, from: u64) -> Result<(), StorageError> {
        self.check_usable()?;
        if !self.bounds().check_truncate(from)? {
            return Ok(());
        }
        let cf = self.cf(CF_LOG)?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            cf,
            codec::log_key(from).to_vec(),
            log_end_key(self.last_index),
        );
        self.write(batch, "a log truncation")?;
        self.last_index = from - 1;
        Ok(())
    }

    fn compact_prefix(&mut self, through: u64) -> Result<(), StorageError> {
        self.check_usable()?;
        if !self.bounds().check_compact(through)? {
            return Ok(());
        }
        let term = self.term(through)?;
        let first = self.bounds().first();
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.cf(CF_LOG)?,
            codec::log_key(first).to_vec(),
            log_end_key(through),
        );
        batch.put_cf(
            self.cf(CF_META)?,
            meta_key::COMPACTED,
            codec::encode_compacted(through, term),
        );
        self.write(batch, "a log compaction")?;
        self.meta.compacted = (through, term);
        Ok(())
    }

    fn entries_limited(
        &self,
        lo: u64,
        hi: u64,
        max_bytes: u64,
    ) -> Result<Vec<LogEntry>, StorageError> {
        self.check_usable()?;
        self.bounds().check_range(lo, hi)?;
        self.read_entries(lo, hi, max_bytes)
    }

    fn term(&self, index: u64) -> Result<u64, StorageError> {
        self.check_usable()?;
        if let Some(term) = self.bounds().check_term(index)? {
            return Ok(term);
        }
        let key = codec::log_key(index);
        match self
            .db
            .get_pinned_cf(self.cf(CF_LOG)?, key)
            .map_err(|e| StorageError::rocks(format!("reading log entry {index}"), e))?
        {
            Some(value) => Ok(codec::decode_entry_at(&key, &value)?.term),
            None => Err(missing_entry(index)),
        }
    }

    fn first_index(&self) -> u64 {
        self.bounds().first()
    }

    fn last_index(&self) -> u64 {
        self.last_index
    }

    fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_META)?,
            meta_key::HARD_STATE,
            codec::encode_hard_state(&hard_state),
        );
        self.write(batch, "the hard state")?;
        self.meta.hard_state = hard_state;
        Ok(())
    }

    fn set_config(&mut self, config: &[u8]) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_META)?,
            meta_key::CONFIG,
            codec::encode_config(config),
        );
        self.write(batch, "the configuration")?;
        self.meta.config = Some(config.to_vec());
        Ok(())
    }

    fn apply(&mut self, apply: &ApplyBatch) -> Result<(), StorageError> {
        self.check_usable()?;
        self.bounds().check_apply(apply)?;
        let mut batch = WriteBatch::default();
        let tree = self.cf(self.generation.tree())?;
        for (path, node) in &apply.nodes {
            match node {
                Some(node) => batch.put_cf(tree, codec::node_key(path), codec::encode_node(node)),
                None => batch.delete_cf(tree, codec::node_key(path)),
            }
        }
        let sessions = self.cf(self.generation.sessions())?;
        for (id, session) in &apply.sessions {
            match session {
                Some(session) => batch.put_cf(
                    sessions,
                    codec::session_key(*id),
                    codec::encode_session(session),
                ),
                None => batch.delete_cf(sessions, codec::session_key(*id)),
            }
        }
        batch.put_cf(
            self.cf(CF_META)?,
            meta_key::APPLIED,
            codec::encode_applied(apply.applied_index, apply.applied_zxid),
        );
        self.write(batch, "an apply batch")?;
        self.meta.applied_index = apply.applied_index;
        self.meta.applied_zxid = apply.applied_zxid;
        Ok(())
    }

    fn install_image(&mut self, image: &crate::Image) -> Result<(), StorageError> {
        self.install_with(|batch, tree, sessions| {
            for (path, node) in &image.nodes {
                batch.put_cf(tree, codec::node_key(path), codec::encode_node(node));
            }
            for (id, session) in &image.sessions {
                batch.put_cf(
                    sessions,
                    codec::session_key(*id),
                    codec::encode_session(session),
                );
            }
            Ok(crate::image::ImageHeader {
                index: image.index,
                term: image.term,
                zxid: image.zxid,
            })
        })
    }

    /// Into the next generation's column families (`rocks/generation.rs`):
    /// the image's records go into table files as they are read, in the
    /// encoding they arrived in (a staged image was decoded and checked
    /// whole before it is installed; the stream's structure, order, counts
    /// and checksum are checked again as it is read), never into memory or
    /// one write batch.
    fn install_image_stream(&mut self, input: &mut dyn std::io::Read) -> Result<(), StorageError> {
        self.install_next_generation(input)
    }

    /// A checkpoint beside the store (hard links to its table files, after
    /// a flush of its memtables), opened read-only; removed when the view
    /// is dropped.
    fn image_view(&self) -> Result<Box<dyn crate::image::ImageView>, StorageError> {
        self.check_usable()?;
        let dir = view_dir(&self.dir);
        remove_dir_if_present(&dir)?;
        self.checkpoint(&dir)?;
        let db =
            DB::open_cf_for_read_only(&Options::default(), &dir, self.generation.names(), false)
                .map_err(|e| {
                    StorageError::rocks(format!("opening the view {}", dir.display()), e)
                })?;
        Ok(Box::new(RocksView {
            db: Some(db),
            dir,
            generation: self.generation.clone(),
            applied: (self.meta.applied_index, self.meta.applied_zxid),
        }))
    }

    fn load(&self) -> Result<Loaded, StorageError> {
        self.check_usable()?;
        let preloaded = self
            .preloaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match preloaded {
            Some(loaded) => Ok(loaded),
            None => load_from(&self.db, &self.dir),
        }
    }

    fn meta(&self) -> Meta {
        self.meta.clone()
    }
}

// ---------------------------------------------------------------- opening

enum DirKind {
    /// Missing or empty: create a store.
    Fresh,
    /// Holds a RocksDB database (a `CURRENT` file): open and check it.
    Database,
}

/// Where a store's image view lives: beside it, on the same file system
/// (its table files are hard links).
fn view_dir(store: &Path) -> PathBuf {
    beside(store, ".image-view")
}

/// The directory named as `store` with `suffix`, beside it (on the same
/// file system: what is in it can be linked into the store or from it).
fn beside(store: &Path, suffix: &str) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    store.with_file_name(name)
}

/// Removes `dir` and what it holds; nothing if it does not exist.
fn remove_dir_if_present(dir: &Path) -> Result<(), StorageError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StorageError::Io {
            context: format!("removing {}", dir.display()),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// A checkpoint of the store, read-only.
struct RocksView {
    db: Option<DB>,
    dir: PathBuf,
    generation: Generation,
    applied: (u64, i64),
}

impl Drop for RocksView {
    fn drop(&mut self) {
        drop(self.db.take());
        if let Err(e) = remove_dir_if_present(&self.dir) {
            tracing::warn!(error = %e, "could not remove an image view");
        }
    }
}

impl crate::image::ImageView for RocksView {
    fn applied(&self) -> (u64, i64) {
        self.applied
    }

    fn visit(
        &self,
        each: &mut dyn FnMut(crate::image::RawRecord<'_>) -> std::io::Result<()>,
    ) -> Result<(), StorageError> {
        let Some(db) = &self.db else {
            return Ok(());
        };
        let cf = |name| {
            db.cf_handle(name).ok_or_else(|| {
                StorageError::corrupt("image view", format!("no column family {name}"))
            })
        };
        let io = |source| StorageError::Io {
            context: "writing an image".into(),
            source,
        };
        for item in db.iterator_cf_opt(
            cf(self.generation.tree())?,
            scan_options(),
            IteratorMode::Start,
        ) {
            let (key, value) =
                item.map_err(|e| StorageError::rocks("reading the view's tree", e))?;
            let path = codec::decode_node_key(&key).map_err(|e| e.into_error("tree key"))?;
            each(crate::image::RawRecord::Node {
                path: &path,
                record: &value,
            })
            .map_err(io)?;
        }
        for item in db.iterator_cf_opt(
            cf(self.generation.sessions())?,
            scan_options(),
            IteratorMode::Start,
        ) {
            let (key, value) =
                item.map_err(|e| StorageError::rocks("reading the view's sessions", e))?;
            let id = codec::decode_session_key(&key).map_err(|e| e.into_error("session key"))?;
            each(crate::image::RawRecord::Session { id, record: &value }).map_err(io)?;
        }
        Ok(())
    }
}

fn io_error(context: String) -> impl FnOnce(std::io::Error) -> StorageError {
    move |source| StorageError::Io { context, source }
}

fn inspect_dir(dir: &Path) -> Result<DirKind, StorageError> {
    let metadata = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DirKind::Fresh),
        Err(e) => {
            return Err(io_error(format!(
                "inspecting data directory {}",
                dir.display()
            ))(e));
        }
    };
    if !metadata.is_dir() {
        return Err(StorageError::NotAStore {
            path: dir.to_owned(),
            reason: "it is not a directory".into(),
        });
    }
    let mut names = Vec::new();
    let listing = std::fs::read_dir(dir).map_err(io_error(format!(
        "listing data directory {}",
        dir.display()
    )))?;
    for item in listing {
        let item = item.map_err(io_error(format!(
            "listing data directory {}",
            dir.display()
        )))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if name != "lost+found" {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Ok(DirKind::Fresh);
    }
    if names.iter().any(|n| n == "CURRENT") {
        return Ok(DirKind::Database);
    }
    names.sort();
    let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
    Err(StorageError::NotAStore {
        path: dir.to_owned(),
        reason: format!(
            "it holds {} entries ({}{}) but no RocksDB database (no CURRENT file); \
             Conclave creates a store only in a missing or empty directory",
            names.len(),
            shown.join(", "),
            if names.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        ),
    })
}

/// Reads a consistent copy of everything from a snapshot of `db`.
fn load_from(db: &DB, dir: &Path) -> Result<Loaded, StorageError> {
    let cf = |name: &str| {
        db.cf_handle(name)
            .ok_or_else(|| StorageError::corrupt(format!("column family {name}"), "missing"))
    };
    let snapshot = db.snapshot();
    let get = |key: &[u8]| {
        snapshot
            .get_cf(cf(CF_META)?, key)
            .map_err(|e| StorageError::rocks("reading the metadata", e))
    };
    let meta = read_meta(dir, get)?;
    let generation = read_generation(dir, get)?;
    let mut nodes = Vec::new();
    let mut acl = codec::SharedAcl::default();
    for item in
        snapshot.iterator_cf_opt(cf(generation.tree())?, scan_options(), IteratorMode::Start)
    {
        let (key, value) = item.map_err(|e| StorageError::rocks("reading the tree", e))?;
        let path = codec::decode_node_key(&key).map_err(|e| e.into_error("tree key"))?;
        let node = codec::decode_node_sharing(&value, &mut acl)
            .map_err(|e| e.into_error(format!("node record {path}")))?;
        nodes.push((path, node));
    }
    let mut sessions = Vec::new();
    for item in snapshot.iterator_cf_opt(
        cf(generation.sessions())?,
        scan_options(),
        IteratorMode::Start,
    ) {
        let (key, value) = item.map_err(|e| StorageError::rocks("reading the sessions", e))?;
        let id = codec::decode_session_key(&key).map_err(|e| e.into_error("session key"))?;
        let session = codec::decode_session(&value)
            .map_err(|e| e.into_error(format!("session record {id:#x}")))?;
        sessions.push((id, session));
    }
    Ok(Loaded {
        meta,
        nodes,
        sessions,
    })
}

/// Takes an advisory lock (`flock`) on the store directory itself, creating
/// the directory if it is missing, or reports the store locked. Nothing is
/// written for it; it is released when the handle is closed (at the latest
/// when the process ends).
fn lock_store(dir: &Path) -> Result<std::fs::File, StorageError> {
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(io_error(format!(
            "creating data directory {}",
            dir.display()
        )))?;
    }
    let handle = std::fs::File::open(dir)
        .map_err(io_error(format!("opening {} to lock it", dir.display())))?;
    match handle.try_lock() {
        Ok(()) => Ok(handle),
        Err(std::fs::TryLockError::WouldBlock) => Err(StorageError::Locked {
            path: dir.to_owned(),
            detail: "the directory is locked by another process".to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(StorageError::Io {
            context: format!("locking {}", dir.display()),
            source: e,
        }),
    }
}

/// Opens the store read-only and runs every check `open_existing` runs,
/// plus decoding the whole tree and the sessions. RocksDB's info log of
/// this pass goes to a temporary directory, not into the store.
/// Returns what it loaded and the last log index.
fn validate_read_only(dir: &Path) -> Result<Option<(Loaded, u64)>, StorageError> {
    let log_dir = std::env::temp_dir().join(format!("conclave-validate-{}", std::process::id()));
    let result = (|| {
        let mut options = db_options()?;
        options.set_db_log_dir(&log_dir);
        let found = DB::list_cf(&options, dir).map_err(|e| open_error(dir, e))?;
        check_column_families(dir, &found, None)?;
        let db = DB::open_cf_descriptors_read_only(
            &options,
            dir,
            descriptors(found.iter().map(String::as_str))?,
            false,
        )
        .map_err(|e| open_error(dir, e))?;
        let Some(()) = check_format_version(&db, dir)? else {
            // An interrupted creation: `open_existing` decides, and may
            // finish it (the only case that writes to an existing store).
            return Ok(None);
        };
        check_column_families(dir, &found, Some(&read_generation_from(&db, dir)?))?;
        let (meta, last_index) = check_meta_and_log(&db, dir)?;
        let loaded = load_from(&db, dir)?;
        debug_assert_eq!(loaded.meta, meta);
        Ok(Some((loaded, last_index)))
    })();
    let _ = std::fs::remove_dir_all(&log_dir);
    result
}

/// The block cache every column family shares (see the module's notes).
fn block_cache() -> &'static Cache {
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| Cache::new_lru_cache(8 << 20))
}

/// How a whole column family is read: once, in key order, so nothing it
/// reads is worth keeping in the block cache.
fn scan_options() -> ReadOptions {
    let mut o = ReadOptions::default();
    o.fill_cache(false);
    o
}

fn db_options() -> Result<Options, StorageError> {
    let mut o = Options::default();
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(block_cache());
    o.set_block_based_table_factory(&table);
    o.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
    o.set_track_and_verify_wals_in_manifest(true);
    o.set_manual_wal_flush(false);
    o.set_use_fsync(false);
    o.set_paranoid_checks(true);
    o.set_max_total_wal_size(64 << 20);
    o.set_db_write_buffer_size(64 << 20);
    o.set_write_buffer_size(16 << 20);
    o.set_max_background_jobs(2);
    // Flushes and compactions write table files synced a MiB at a time,
    // not left dirty for the kernel to write in one burst in front of the
    // WAL's syncs (`writeback.rs`).
    o.set_bytes_per_sync(1 << 20);
    o.set_keep_log_file_num(4);
    o.set_max_log_file_size(1 << 20);
    o.set_compression_type(DBCompressionType::Lz4);
    o.set_bottommost_compression_type(DBCompressionType::Zstd);
    o.set_level_compaction_dynamic_level_bytes(true);
    // Not wrapped by the rocksdb crate: each new WAL records its
    // predecessor, so a missing WAL (even the only one) fails the open.
    o.get_options_from_string("track_and_verify_wals=true")
        .map_err(|e| StorageError::rocks("setting RocksDB options", e))
}

fn descriptors<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<ColumnFamilyDescriptor>, StorageError> {
    names
        .into_iter()
        .map(|name| Ok(ColumnFamilyDescriptor::new(name, db_options()?)))
        .collect()
}

/// RocksDB's messages when the `LOCK` file is held by another process
/// (`While lock file: …/LOCK: Resource temporarily unavailable`) or by
/// another handle in this process (`lock hold by current process, …`).
fn is_lock_error(e: &rocksdb::Error) -> bool {
    let message = e.as_ref();
    message.contains("While lock file") || message.contains("lock hold by current process")
}

fn open_error(dir: &Path, e: rocksdb::Error) -> StorageError {
    if is_lock_error(&e) {
        return StorageError::Locked {
            path: dir.to_owned(),
            detail: e.into_string(),
        };
    }
    if e.kind() == ErrorKind::Corruption {
        return StorageError::corrupt(
            format!("RocksDB database in {}", dir.display()),
            e.into_string(),
        );
    }
    StorageError::rocks(format!("opening data directory {}", dir.display()), e)
}

fn create(dir: &Path) -> Result<RocksStore, StorageError> {
    std::fs::create_dir_all(dir).map_err(io_error(format!(
        "creating data directory {}",
        dir.display()
    )))?;
    let mut options = db_options()?;
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.set_error_if_exists(true);
    let db = DB::open_cf_descriptors(&options, dir, descriptors(COLUMN_FAMILIES)?)
        .map_err(|e| open_error(dir, e))?;
    let store = initialize(db, dir)?;
    tracing::info!(dir = %dir.display(), format_version = FORMAT_VERSION, "created a new store");
    Ok(store)
}

/// Writes the format version into a store with no data, synced, and
/// flushes it into a table file: the version never depends on the WAL, so an
/// emptied WAL cannot make a used store look like one still being created.
fn initialize(db: DB, dir: &Path) -> Result<RocksStore, StorageError> {
    let meta_cf = db
        .cf_handle(CF_META)
        .ok_or_else(|| StorageError::corrupt("column family meta", "missing"))?;
    let mut options = WriteOptions::default();
    options.set_sync(true);
    db.put_cf_opt(
        meta_cf,
        meta_key::FORMAT_VERSION,
        codec::encode_format_version(FORMAT_VERSION),
        &options,
    )
    .map_err(|e| StorageError::rocks(format!("initializing the store in {}", dir.display()), e))?;
    db.flush_cf(meta_cf).map_err(|e| {
        StorageError::rocks(format!("initializing the store in {}", dir.display()), e)
    })?;
    Ok(RocksStore {
        db,
        dir: dir.to_owned(),
        meta: Meta {
            format_version: FORMAT_VERSION,
            ..Meta::default()
        },
        generation: Generation::new(0),
        last_index: 0,
        failed: None,
        _lock: None,
        preloaded: std::sync::Mutex::new(None),
    })
}

/// Opens the store for writing. `validated_last_index` is the last log
/// index a read-only validation of this same directory found (under our
/// lock, so nothing else wrote in between): every entry was checked then,
/// so only the metadata and the log's end are read again.
fn open_existing(
    dir: &Path,
    validated_last_index: Option<u64>,
) -> Result<RocksStore, StorageError> {
    let options = db_options()?;
    let found = DB::list_cf(&options, dir).map_err(|e| open_error(dir, e))?;
    check_column_families(dir, &found, None)?;
    let db = DB::open_cf_descriptors(
        &options,
        dir,
        descriptors(found.iter().map(String::as_str))?,
    )
    .map_err(|e| open_error(dir, e))?;
    // The format version first: nothing else is decoded before it matches.
    let Some(()) = check_format_version(&db, dir)? else {
        return finish_interrupted_creation(db, dir, &found);
    };
    let generation = read_generation_from(&db, dir)?;
    let leftovers = check_column_families(dir, &found, Some(&generation))?;
    let (meta, last_index) = match validated_last_index {
        None => check_meta_and_log(&db, dir)?,
        Some(validated) => {
            let meta = read_meta_from(&db, dir)?;
            let last_index = last_log_index(&db, &meta)?;
            if last_index != validated {
                return Err(StorageError::corrupt(
                    format!("log in {}", dir.display()),
                    format!(
                        "it ends at {last_index} when opened for writing but at {validated} when validated read-only"
                    ),
                ));
            }
            (meta, last_index)
        }
    };
    tracing::info!(
        dir = %dir.display(),
        first_index = meta.compacted.0 + 1,
        last_index,
        applied_index = meta.applied_index,
        "opened the store"
    );
    let mut store = RocksStore {
        db,
        dir: dir.to_owned(),
        meta,
        generation,
        last_index,
        failed: None,
        _lock: None,
        preloaded: std::sync::Mutex::new(None),
    };
    for name in leftovers {
        // Of an install that stopped before its switch (the new
        // generation, half filled) or after it (the replaced one).
        tracing::info!(name, "dropping the column family of another generation");
        store.db.drop_cf(&name).map_err(|e| {
            StorageError::rocks(
                format!("dropping column family {name} in {}", dir.display()),
                e,
            )
        })?;
    }
    Ok(store)
}

/// The column families a store must have: Conclave's `meta` at least (else
/// this is not a Conclave store); with the generation its metadata names,
/// the log's, the metadata's and that generation's. Returns those of other
/// generations, left by an interrupted install (a writable open drops
/// them); any other is refused.
fn check_column_families(
    dir: &Path,
    found: &[String],
    generation: Option<&Generation>,
) -> Result<Vec<String>, StorageError> {
    if !found.iter().any(|n| n == CF_META) {
        return Err(StorageError::NotAStore {
            path: dir.to_owned(),
            reason: format!(
                "it is a RocksDB database without Conclave's `meta` column family (column families: {})",
                found.join(", ")
            ),
        });
    }
    let Some(generation) = generation else {
        return Ok(Vec::new());
    };
    let required = [CF_LOG, CF_META, generation.tree(), generation.sessions()];
    for name in required {
        if !found.iter().any(|n| n == name) {
            return Err(StorageError::corrupt(
                format!("store in {}", dir.display()),
                format!("column family `{name}` is missing"),
            ));
        }
    }
    let mut leftovers = Vec::new();
    for name in found {
        if name == "default" || required.contains(&name.as_str()) {
            continue;
        }
        if !Generation::is_generation_name(name) {
            return Err(StorageError::corrupt(
                format!("store in {}", dir.display()),
                format!("column family `{name}` is not part of format version {FORMAT_VERSION}"),
            ));
        }
        leftovers.push(name.clone());
    }
    Ok(leftovers)
}

/// `Some(())` when the store's format version is this build's, `None` when
/// it has none yet (an interrupted creation).
fn check_format_version(db: &DB, dir: &Path) -> Result<Option<()>, StorageError> {
    let meta_cf = db
        .cf_handle(CF_META)
        .ok_or_else(|| StorageError::corrupt("column family meta", "missing"))?;
    let version = db
        .get_cf(meta_cf, meta_key::FORMAT_VERSION)
        .map_err(|e| StorageError::rocks("reading the format version", e))?;
    let Some(version) = version else {
        return Ok(None);
    };
    let version = codec::decode_format_version(&version)
        .map_err(|e| e.into_error(format!("format version in {}", dir.display())))?;
    if !(1..=FORMAT_VERSION).contains(&version) {
        return Err(StorageError::UnknownFormatVersion {
            path: dir.to_owned(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(Some(()))
}

/// Decodes the metadata and checks every log entry; returns the metadata
/// and the last log index.
fn check_meta_and_log(db: &DB, dir: &Path) -> Result<(Meta, u64), StorageError> {
    let meta = read_meta_from(db, dir)?;
    let last_index = verify_log(db, &meta)?;
    if meta.applied_index > last_index {
        return Err(StorageError::corrupt(
            format!("log in {}", dir.display()),
            format!(
                "the log ends at {last_index}, before the applied index {}: entries are missing",
                meta.applied_index
            ),
        ));
    }
    if meta.applied_index < meta.compacted.0 {
        return Err(StorageError::corrupt(
            format!("metadata in {}", dir.display()),
            format!(
                "the applied index {} is below the compacted index {}",
                meta.applied_index, meta.compacted.0
            ),
        ));
    }
    Ok((meta, last_index))
}

/// A database with Conclave's `meta` column family but no format version:
/// creation stopped between creating the database and writing the version.
/// Finished only if every column family is still empty; otherwise refused.
fn finish_interrupted_creation(
    mut db: DB,
    dir: &Path,
    found: &[String],
) -> Result<RocksStore, StorageError> {
    for name in found {
        let cf = db
            .cf_handle(name)
            .ok_or_else(|| StorageError::corrupt(format!("column family {name}"), "missing"))?;
        if let Some(item) = db.iterator_cf(cf, IteratorMode::Start).next() {
            item.map_err(|e| StorageError::rocks(format!("reading column family {name}"), e))?;
            return Err(StorageError::corrupt(
                format!("metadata in {}", dir.display()),
                format!("no format version, but column family `{name}` holds data"),
            ));
        }
        if name != "default" && !COLUMN_FAMILIES.contains(&name.as_str()) {
            return Err(StorageError::NotAStore {
                path: dir.to_owned(),
                reason: format!("it has a column family `{name}` that Conclave never creates"),
            });
        }
    }
    for name in COLUMN_FAMILIES {
        if !found.iter().any(|n| n == name) {
            db.create_cf(name, &db_options()?).map_err(|e| {
                StorageError::rocks(
                    format!("creating column family {name} in {}", dir.display()),
                    e,
                )
            })?;
        }
    }
    tracing::warn!(dir = %dir.display(), "finishing the creation of a store that was interrupted");
    initialize(db, dir)
}

/// Reads and decodes every metadata field through `get` (the database or a
/// snapshot of it); absent fields take their initial values.
fn read_meta(
    dir: &Path,
    get: impl Fn(&[u8]) -> Result<Option<Vec<u8>>, StorageError>,
) -> Result<Meta, StorageError> {
    let what = |field: &str| format!("{field} in {}", dir.display());
    let format_version = match get(meta_key::FORMAT_VERSION)? {
        Some(v) => {
            codec::decode_format_version(&v).map_err(|e| e.into_error(what("format version")))?
        }
        None => return Err(StorageError::corrupt(what("metadata"), "no format version")),
    };
    let (applied_index, applied_zxid) = match get(meta_key::APPLIED)? {
        Some(v) => codec::decode_applied(&v).map_err(|e| e.into_error(what("applied marker")))?,
        None => (0, 0),
    };
    let hard_state = match get(meta_key::HARD_STATE)? {
        Some(v) => codec::decode_hard_state(&v).map_err(|e| e.into_error(what("hard state")))?,
        None => HardState::default(),
    };
    let config = match get(meta_key::CONFIG)? {
        Some(v) => Some(codec::decode_config(&v).map_err(|e| e.into_error(what("configuration")))?),
        None => None,
    };
    let compacted = match get(meta_key::COMPACTED)? {
        Some(v) => {
            codec::decode_compacted(&v).map_err(|e| e.into_error(what("compaction marker")))?
        }
        None => (0, 0),
    };
    Ok(Meta {
        format_version,
        applied_index,
        applied_zxid,
        hard_state,
        config,
        compacted,
    })
}

fn read_generation_from(db: &DB, dir: &Path) -> Result<Generation, StorageError> {
    read_generation(dir, meta_field(db)?)
}

fn read_meta_from(db: &DB, dir: &Path) -> Result<Meta, StorageError> {
    read_meta(dir, meta_field(db)?)
}

/// Reads a metadata field by its key.
type MetaField<'a> = Box<dyn Fn(&[u8]) -> Result<Option<Vec<u8>>, StorageError> + 'a>;

/// [`MetaField`] of `db`.
fn meta_field(db: &DB) -> Result<MetaField<'_>, StorageError> {
    let meta_cf = db
        .cf_handle(CF_META)
        .ok_or_else(|| StorageError::corrupt("column family meta", "missing"))?;
    Ok(Box::new(move |key: &[u8]| {
        db.get_cf(meta_cf, key)
            .map_err(|e| StorageError::rocks("reading the metadata", e))
    }))
}

/// The index of the last log entry (its key and checksum checked), or the
/// compacted index when the log is empty.
fn last_log_index(db: &DB, meta: &Meta) -> Result<u64, StorageError> {
    let cf = db
        .cf_handle(CF_LOG)
        .ok_or_else(|| StorageError::corrupt("column family log", "missing"))?;
    match db.iterator_cf(cf, IteratorMode::End).next() {
        None => Ok(meta.compacted.0),
        Some(item) => {
            let (key, value) = item.map_err(|e| StorageError::rocks("reading the log", e))?;
            Ok(codec::decode_entry_at(&key, &value)?.index)
        }
    }
}

/// Reads every log entry: each must decode (checksum included), sit under
/// its own index, and follow the previous one without a gap, starting right
/// after the compacted index. Returns the last index.
fn verify_log(db: &DB, meta: &Meta) -> Result<u64, StorageError> {
    let cf = db
        .cf_handle(CF_LOG)
        .ok_or_else(|| StorageError::corrupt("column family log", "missing"))?;
    let mut expected = meta.compacted.0 + 1;
    for item in db.iterator_cf(cf, IteratorMode::Start) {
        let (key, value) = item.map_err(|e| StorageError::rocks("reading the log", e))?;
        let entry = codec::decode_entry_at(&key, &value)?;
        if entry.index != expected {
            return Err(StorageError::corrupt(
                "log",
                if entry.index < expected {
                    format!(
                        "entry {} is at or below the compacted index {}",
                        entry.index, meta.compacted.0
                    )
                } else {
                    format!("entries {expected} to {} are missing", entry.index - 1)
                },
            ));
        }
        expected += 1;
    }
    Ok(expected - 1)
}

//! A simulated server's disk: the real in-memory store
//! (`storage::memory::MemoryStore`, which keeps apart what a crash would
//! lose) behind the real log writer's work (`storage::writer`): the driver
//! and the state machine queue writes, and a sync event writes the queue
//! in one batch and syncs, exactly as the server's log writer thread does.
//! A crash drops what was queued and what the store had not synced (a
//! prefix of it may survive, as RocksDB recovers a prefix of its
//! write-ahead log).

use std::sync::{Arc, Mutex, MutexGuard};

use consensus::driver::{DriverError, LogWriter, MembershipRecord};
use consensus::raft::eraftpb::{Entry, HardState};
use storage::Store;
use storage::image::MemoryDir;
use storage::memory::MemoryStore;
use storage::writer::{WriteCommand, Written, write_batch};

/// One server's disk.
#[derive(Debug, Default)]
pub struct DiskState {
    pub store: MemoryStore,
    /// Writes queued and not yet written (the log writer's inbox).
    queue: Vec<WriteCommand>,
    /// The broken disk of `Faults::ack_before_sync`: every marker is
    /// reported durable as soon as it is queued.
    pub lies: bool,
    /// Markers a lying disk reported early, for the cluster to deliver.
    pub early_markers: Vec<u64>,
    /// Entries appended since the cluster last looked (for the broken state
    /// machine of `Faults::apply_before_commit`).
    pub appended: Vec<Entry>,
    pub capture_appends: bool,
    /// The store fails its checks at the next start.
    pub corrupt: bool,
    /// Snapshot images made and received (files beside the store on a
    /// server's disk: they survive a crash, not the disk's loss).
    pub images: MemoryDir,
}

/// A shared handle on a disk: the driver's writer, the state machine and
/// the cluster all hold one (a `Mutex` only because a store must be
/// `Send`; the simulation runs on one thread).
#[derive(Debug, Clone, Default)]
pub struct Disk(Arc<Mutex<DiskState>>);

impl Disk {
    pub fn new() -> Disk {
        Disk::default()
    }

    /// The disk's state, locked (one thread runs the whole simulation; a
    /// panic while it was held is a failed run anyway).
    pub fn state(&self) -> MutexGuard<'_, DiskState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn queue(&self, command: WriteCommand) {
        self.state().queue.push(command);
    }

    pub fn has_queued(&self) -> bool {
        !self.state().queue.is_empty()
    }

    /// The log writer's turn: everything queued is written and synced.
    pub fn write_queued(&self) -> Result<Option<Written>, String> {
        let mut state = self.state();
        let batch = std::mem::take(&mut state.queue);
        write_batch(&mut state.store, batch).map_err(|e| e.to_string())
    }

    /// The process died: the queue is gone, and of what the store had not
    /// synced only the first `kept` writes survive.
    pub fn crash(&self, kept: usize) {
        let mut state = self.state();
        state.queue.clear();
        state.early_markers.clear();
        state.appended.clear();
        state.store.crash_keeping(kept);
    }

    /// The disk is lost: an empty one takes its place.
    pub fn lose(&self) {
        let mut state = self.state();
        state.queue.clear();
        state.early_markers.clear();
        state.appended.clear();
        state.store = MemoryStore::new();
        state.corrupt = false;
        state.images.clear();
    }

    pub fn unsynced(&self) -> usize {
        self.state().store.unsynced()
    }

    pub fn durably_holds(&self, index: u64, term: u64) -> bool {
        self.state().store.durably_holds(index, term)
    }

    /// Where this disk keeps images.
    pub fn images(&self) -> MemoryDir {
        self.state().images.clone()
    }

    pub fn is_empty(&self) -> bool {
        let state = self.state();
        state.store.last_index() == 0 && state.store.meta().config.is_none()
    }
}

impl LogWriter for Disk {
    fn append(&mut self, entries: &[Entry]) {
        {
            let mut state = self.state();
            if state.capture_appends {
                state.appended.extend_from_slice(entries);
            }
        }
        let entries = entries
            .iter()
            .map(storage::consensus_log::log_entry)
            .collect();
        self.queue(WriteCommand::Append(entries));
    }

    fn set_hard_state(&mut self, hard_state: &HardState) {
        self.queue(WriteCommand::HardState(storage::HardState {
            term: hard_state.term,
            vote: hard_state.vote,
            commit: hard_state.commit,
        }));
    }

    fn set_membership(&mut self, record: &MembershipRecord) {
        self.queue(WriteCommand::Config(storage::membership_record::encode(
            record,
        )));
    }

    fn compact(&mut self, through: u64) {
        self.queue(WriteCommand::Compact(through));
    }

    fn persist(&mut self, number: u64, sync: bool) {
        let lies = self.state().lies;
        self.queue(WriteCommand::Marker { number, sync });
        if lies {
            self.state().early_markers.push(number);
        }
    }

    fn sync_now(&mut self) -> Result<(), DriverError> {
        self.write_queued().map_err(DriverError::Store)?;
        let mut state = self.state();
        state
            .store
            .sync()
            .map_err(|e| DriverError::Store(e.to_string()))
    }
}

/// The store behind a shared disk, for the code that takes a store by
/// value (recovery at start): the real `MemoryStore`, reached through the
/// handle, so the driver, the state machine and the cluster see one disk.
impl Store for Disk {
    fn append(&mut self, entries: &[storage::LogEntry]) -> Result<(), storage::StorageError> {
        self.state().store.append(entries)
    }

    fn sync(&mut self) -> Result<(), storage::StorageError> {
        self.state().store.sync()
    }

    fn truncate_suffix(&mut self, from: u64) -> Result<(), storage::StorageError> {
        self.state().store.truncate_suffix(from)
    }

    fn compact_prefix(&mut self, through: u64) -> Result<(), storage::StorageError> {
        self.state().store.compact_prefix(through)
    }

    fn entries_limited(
        &self,
        lo: u64,
        hi: u64,
        max_bytes: u64,
    ) -> Result<Vec<storage::LogEntry>, storage::StorageError> {
        self.state().store.entries_limited(lo, hi, max_bytes)
    }

    fn term(&self, index: u64) -> Result<u64, storage::StorageError> {
        self.state().store.term(index)
    }

    fn first_index(&self) -> u64 {
        self.state().store.first_index()
    }

    fn last_index(&self) -> u64 {
        self.state().store.last_index()
    }

    fn set_hard_state(
        &mut self,
        hard_state: storage::HardState,
    ) -> Result<(), storage::StorageError> {
        self.state().store.set_hard_state(hard_state)
    }

    fn set_config(&mut self, config: &[u8]) -> Result<(), storage::StorageError> {
        self.state().store.set_config(config)
    }

    fn apply(&mut self, batch: &storage::ApplyBatch) -> Result<(), storage::StorageError> {
        self.state().store.apply(batch)
    }

    fn install_image(&mut self, image: &storage::Image) -> Result<(), storage::StorageError> {
        self.state().store.install_image(image)
    }

    fn image_view(&self) -> Result<Box<dyn storage::image::ImageView>, storage::StorageError> {
        self.state().store.image_view()
    }

    fn load(&self) -> Result<storage::Loaded, storage::StorageError> {
        self.state().store.load()
    }

    fn meta(&self) -> storage::Meta {
        self.state().store.meta()
    }
}

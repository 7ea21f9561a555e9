//! [`MemoryStore`]: the storage API in memory, with exactly the semantics of
//! [`crate::rocks::RocksStore`] (the conformance suite runs against both),
//! for the deterministic simulator and for tests.
//!
//! It models what a crash does to RocksDB: every mutation (an append, a
//! truncation, a compaction, a hard-state or config write, an apply batch)
//! is one atomic record in the write-ahead log, readable at once and durable
//! only once a [`Store::sync`] covers it. [`MemoryStore::crash`] loses every
//! mutation since the last sync; [`MemoryStore::crash_keeping`] keeps a
//! prefix of them, as RocksDB's point-in-time recovery keeps the records
//! that reached the disk before the first torn one. Everything is in
//! `BTreeMap`s, so iteration order, and with it the simulator, is
//! deterministic.

use std::collections::BTreeMap;

use tree::SessionRecord;

use crate::rules::{Bounds, within_limit};
use crate::{
    ApplyBatch, FORMAT_VERSION, HardState, Loaded, LogEntry, Meta, NodeRecord, StorageError, Store,
    codec,
};

/// The in-memory store. Cloning it clones both the visible and the durable
/// state (handy for a simulator that forks a world).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    /// What reads see: everything written.
    current: State,
    /// What survives a crash: everything synced.
    durable: State,
    /// Mutations since the last sync, oldest first.
    unsynced: Vec<Mutation>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct State {
    log: BTreeMap<u64, LogEntry>,
    compacted: (u64, u64),
    applied_index: u64,
    applied_zxid: i64,
    hard_state: HardState,
    config: Option<Vec<u8>>,
    nodes: BTreeMap<String, NodeRecord>,
    sessions: BTreeMap<i64, SessionRecord>,
}

/// One write-ahead-log record: a checked mutation, replayed verbatim.
#[derive(Debug, Clone)]
enum Mutation {
    Append(Vec<LogEntry>),
    TruncateSuffix(u64),
    CompactPrefix { through: u64, term: u64 },
    SetHardState(HardState),
    SetConfig(Vec<u8>),
    Apply(ApplyBatch),
    InstallImage(Box<crate::Image>),
}

impl State {
    fn bounds(&self) -> Bounds {
        Bounds {
            compacted: self.compacted,
            last: self
                .log
                .last_key_value()
                .map_or(self.compacted.0, |(&index, _)| index),
            applied: self.applied_index,
        }
    }

    /// Performs a mutation that was checked against this state's bounds.
    fn perform(&mut self, mutation: &Mutation) {
        match mutation {
            Mutation::Append(entries) => {
                if let Some(first) = entries.first() {
                    let _replaced = self.log.split_off(&first.index);
                    for e in entries {
                        self.log.insert(e.index, e.clone());
                    }
                }
            }
            Mutation::TruncateSuffix(from) => {
                let _removed = self.log.split_off(from);
            }
            Mutation::CompactPrefix { through, term } => {
                self.log = self.log.split_off(&(through + 1));
                self.compacted = (*through, *term);
            }
            Mutation::SetHardState(hs) => self.hard_state = *hs,
            Mutation::SetConfig(config) => self.config = Some(config.clone()),
            Mutation::Apply(batch) => {
                for (path, node) in &batch.nodes {
                    match node {
                        Some(node) => {
                            self.nodes.insert(path.clone(), node.clone());
                        }
                        None => {
                            self.nodes.remove(path);
                        }
                    }
                }
                for (id, session) in &batch.sessions {
                    match session {
                        Some(session) => {
                            self.sessions.insert(*id, session.clone());
                        }
                        None => {
                            self.sessions.remove(id);
                        }
                    }
                }
                self.applied_index = batch.applied_index;
                self.applied_zxid = batch.applied_zxid;
            }
            Mutation::InstallImage(image) => {
                self.log.clear();
                self.compacted = (image.index, image.term);
                self.applied_index = image.index;
                self.applied_zxid = image.zxid;
                self.nodes = image.nodes.iter().cloned().collect();
                self.sessions = image.sessions.iter().cloned().collect();
            }
        }
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// Simulates a crash and restart: every mutation since the last
    /// [`Store::sync`] is lost; everything synced stays.
    pub fn crash(&mut self) {
        self.crash_keeping(0);
    }

    /// Simulates a crash in which the first `kept` unsynced mutations
    /// reached the disk anyway (RocksDB recovers a prefix of its write-ahead
    /// log); `kept` beyond [`MemoryStore::unsynced`] keeps them all.
    pub fn crash_keeping(&mut self, kept: usize) {
        let kept = kept.min(self.unsynced.len());
        for mutation in self.unsynced.drain(..kept) {
            self.durable.perform(&mutation);
        }
        self.unsynced.clear();
        self.current = self.durable.clone();
    }

    /// How many mutations a crash would lose now.
    pub fn unsynced(&self) -> usize {
        self.unsynced.len()
    }

    /// The applied index of what survives a crash.
    pub fn durable_applied_index(&self) -> u64 {
        self.durable.applied_index
    }

    /// Whether what survives a crash holds the entry at `index` of `term`,
    /// or has compacted (or installed an image) past it: the simulator's
    /// check that whatever is committed is durable on a quorum.
    pub fn durably_holds(&self, index: u64, term: u64) -> bool {
        let durable = &self.durable;
        index <= durable.compacted.0
            || durable
                .log
                .get(&index)
                .is_some_and(|entry| entry.term == term)
    }

    fn record(&mut self, mutation: Mutation) {
        self.current.perform(&mutation);
        self.unsynced.push(mutation);
    }
}

impl Store for MemoryStore {
    fn append(&mut self, entries: &[LogEntry]) -> Result<(), StorageError> {
        if self.current.bounds().check_append(entries)?.is_some() {
            self.record(Mutation::Append(entries.to_vec()));
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        for mutation in self.unsynced.drain(..) {
            self.durable.perform(&mutation);
        }
        Ok(())
    }

    fn truncate_suffix(&mut self, from: u64) -> Result<(), StorageError> {
        if self.current.bounds().check_truncate(from)? {
            self.record(Mutation::TruncateSuffix(from));
        }
        Ok(())
    }

    fn compact_prefix(&mut self, through: u64) -> Result<(), StorageError> {
        if self.current.bounds().check_compact(through)? {
            let term = self.term(through)?;
            self.record(Mutation::CompactPrefix { through, term });
        }
        Ok(())
    }

    fn entries_limited(
        &self,
        lo: u64,
        hi: u64,
        max_bytes: u64,
    ) -> Result<Vec<LogEntry>, StorageError> {
        self.current.bounds().check_range(lo, hi)?;
        let mut out = Vec::new();
        let mut total = 0u64;
        for (&index, entry) in self.current.log.range(lo..hi) {
            let size = codec::entry_size(entry);
            if !within_limit(total, size, out.len(), max_bytes) {
                break;
            }
            if index != lo + out.len() as u64 {
                // Unreachable while the rules hold; the same check in
                // `RocksStore` guards against a damaged database.
                return Err(StorageError::corrupt(
                    format!("log entry {}", lo + out.len() as u64),
                    "missing from the log",
                ));
            }
            total = total.saturating_add(size);
            out.push(entry.clone());
        }
        Ok(out)
    }

    fn term(&self, index: u64) -> Result<u64, StorageError> {
        if let Some(term) = self.current.bounds().check_term(index)? {
            return Ok(term);
        }
        match self.current.log.get(&index) {
            Some(entry) => Ok(entry.term),
            None => Err(StorageError::corrupt(
                format!("log entry {index}"),
                "missing from the log",
            )),
        }
    }

    fn first_index(&self) -> u64 {
        self.current.bounds().first()
    }

    fn last_index(&self) -> u64 {
        self.current.bounds().last
    }

    fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        self.record(Mutation::SetHardState(hard_state));
        Ok(())
    }

    fn set_config(&mut self, config: &[u8]) -> Result<(), StorageError> {
        self.record(Mutation::SetConfig(config.to_vec()));
        Ok(())
    }

    fn apply(&mut self, batch: &ApplyBatch) -> Result<(), StorageError> {
        self.current.bounds().check_apply(batch)?;
        self.record(Mutation::Apply(batch.clone()));
        Ok(())
    }

    fn install_image(&mut self, image: &crate::Image) -> Result<(), StorageError> {
        self.record(Mutation::InstallImage(Box::new(image.clone())));
        Ok(())
    }

    fn image_view(&self) -> Result<Box<dyn crate::image::ImageView>, StorageError> {
        Ok(Box::new(MemoryView {
            applied: (self.current.applied_index, self.current.applied_zxid),
            nodes: self.current.nodes.clone(),
            sessions: self.current.sessions.clone(),
        }))
    }

    fn load(&self) -> Result<Loaded, StorageError> {
        Ok(Loaded {
            meta: self.meta(),
            nodes: self
                .current
                .nodes
                .iter()
                .map(|(path, node)| (path.clone(), node.clone()))
                .collect(),
            sessions: self
                .current
                .sessions
                .iter()
                .map(|(&id, session)| (id, session.clone()))
                .collect(),
        })
    }

    fn meta(&self) -> Meta {
        Meta {
            format_version: FORMAT_VERSION,
            applied_index: self.current.applied_index,
            applied_zxid: self.current.applied_zxid,
            hard_state: self.current.hard_state,
            config: self.current.config.clone(),
            compacted: self.current.compacted,
        }
    }
}

/// A copy of the tree and sessions: the in-memory store's view.
struct MemoryView {
    applied: (u64, i64),
    nodes: BTreeMap<String, NodeRecord>,
    sessions: BTreeMap<i64, SessionRecord>,
}

impl crate::image::ImageView for MemoryView {
    fn applied(&self) -> (u64, i64) {
        self.applied
    }

    fn visit(
        &self,
        each: &mut dyn FnMut(crate::image::RawRecord<'_>) -> std::io::Result<()>,
    ) -> Result<(), StorageError> {
        let io = |source| StorageError::Io {
            context: "writing an image".into(),
            source,
        };
        for (path, node) in &self.nodes {
            let record = codec::encode_node(node);
            each(crate::image::RawRecord::Node {
                path,
                record: &record,
            })
            .map_err(io)?;
        }
        for (id, session) in &self.sessions {
            let record = codec::encode_session(session);
            each(crate::image::RawRecord::Session {
                id: *id,
                record: &record,
            })
            .map_err(io)?;
        }
        Ok(())
    }
}

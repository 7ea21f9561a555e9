//! The log writer's work, without its thread: what a server asks of its
//! store in order (entries, hard state, membership record, applied
//! effects, installed images, compaction), written in batches with one
//! sync per batch (group commit). The server runs it on its log writer
//! thread (`server::durability`); the simulator runs the very same
//! function on an in-memory store whenever its simulated disk syncs, so
//! the order of writes the simulator checks is the order the server makes.
//!
//! Consecutive appends in a batch are written as one (one write-ahead-log
//! record). An append may start at or before the end of the appends
//! before it — a deposed leader's unsynced entries replaced by its
//! successor's from the same index — and then replaces them, as the
//! store's own append does; commands otherwise keep their order, so an
//! apply batch never overtakes the entries it applies.

use std::time::{Duration, Instant};

use crate::image::ImageView;
use crate::{ApplyBatch, HardState, Image, LogEntry, StorageError, Store};

/// A write, in the order it must reach the store.
pub enum WriteCommand {
    /// Append (not yet durable), replacing everything from the first
    /// entry's index on.
    Append(Vec<LogEntry>),
    /// The effects of applied entries (atomic, not synced).
    Apply(ApplyBatch),
    /// Drop log entries up to this index (retention).
    Compact(u64),
    /// Raft's hard state (term, vote, commit).
    HardState(HardState),
    /// The membership record (`crate::membership_record`).
    Config(Vec<u8>),
    /// Everything queued before belongs to the consensus ready `number`:
    /// report it in [`Written::marker`] once written, after a sync if
    /// `sync`.
    Marker { number: u64, sync: bool },
    /// Replace everything with a snapshot (not synced).
    InstallImage(Box<Image>),
    /// Write and sync everything queued before, then call back with the
    /// outcome (for the rare caller that must wait: installing a snapshot,
    /// bootstrapping).
    SyncNow(Box<dyn FnOnce(Result<(), String>) + Send>),
    /// Replace everything with the image `input` streams (a staged image:
    /// read and written here, never whole in memory), then call `done`
    /// (not synced).
    InstallStream {
        input: Box<dyn std::io::Read + Send>,
        done: Box<dyn FnOnce() + Send>,
    },
    /// Call back with a consistent view of the store as written so far
    /// (everything queued before), to make a snapshot's image from.
    View(ViewCallback),
}

/// What [`WriteCommand::View`] calls with the view it took.
pub type ViewCallback = Box<dyn FnOnce(Result<Box<dyn ImageView>, StorageError>) + Send>;

impl std::fmt::Debug for WriteCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteCommand::Append(entries) => write!(
                f,
                "Append({}..={})",
                entries.first().map_or(0, |e| e.index),
                entries.last().map_or(0, |e| e.index)
            ),
            WriteCommand::Apply(batch) => write!(f, "Apply(..={})", batch.applied_index),
            WriteCommand::Compact(through) => write!(f, "Compact({through})"),
            WriteCommand::HardState(hs) => write!(f, "HardState({hs:?})"),
            WriteCommand::Config(bytes) => {
                write!(f, "Config({:?})", String::from_utf8_lossy(bytes))
            }
            WriteCommand::Marker { number, sync } => write!(f, "Marker({number}, sync {sync})"),
            WriteCommand::InstallImage(image) => write!(f, "InstallImage({})", image.index),
            WriteCommand::SyncNow(_) => write!(f, "SyncNow"),
            WriteCommand::View(_) => write!(f, "View"),
            WriteCommand::InstallStream { .. } => write!(f, "InstallStream"),
        }
    }
}

/// What one batch made durable (or written, for a marker that needs no
/// sync).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The last log index appended in this batch.
    pub last_appended: Option<u64>,
    /// The last consensus ready marker of this batch.
    pub marker: Option<u64>,
    pub sync: SyncStats,
}

/// One sync: how many entries it made durable and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncStats {
    pub entries: usize,
    pub duration: Duration,
    /// Whether a sync ran (a consensus ready that needs none is written
    /// without one).
    pub synced: bool,
}

/// Writes one drained batch of commands in order; syncs once at the end
/// if it appended anything or a marker asks for it. `None` when the batch
/// had nothing to report.
pub fn write_batch(
    store: &mut dyn Store,
    batch: Vec<WriteCommand>,
) -> Result<Option<Written>, StorageError> {
    let mut last_appended = None;
    let mut marker = None;
    let mut must_sync = false;
    let mut entries = 0;
    let mut appends: Vec<LogEntry> = Vec::new();
    for command in batch {
        match command {
            WriteCommand::Append(new) => {
                let Some(first) = new.first().map(|e| e.index) else {
                    continue;
                };
                // A later append replaces the suffix it overlaps.
                appends.retain(|e| e.index < first);
                if let Some(last) = new.last() {
                    last_appended = Some(last.index);
                    entries += new.len();
                }
                appends.extend(new);
            }
            WriteCommand::Apply(apply) => {
                flush_appends(store, &mut appends)?;
                store.apply(&apply)?;
            }
            WriteCommand::Compact(through) => {
                flush_appends(store, &mut appends)?;
                store.compact_prefix(through)?;
            }
            WriteCommand::HardState(hard_state) => {
                flush_appends(store, &mut appends)?;
                store.set_hard_state(hard_state)?;
            }
            WriteCommand::Config(config) => {
                flush_appends(store, &mut appends)?;
                store.set_config(&config)?;
            }
            WriteCommand::Marker { number, sync } => {
                marker = Some(number);
                must_sync |= sync;
            }
            WriteCommand::InstallImage(image) => {
                flush_appends(store, &mut appends)?;
                store.install_image(&image)?;
            }
            WriteCommand::SyncNow(done) => {
                flush_appends(store, &mut appends)?;
                if let Err(e) = store.sync() {
                    done(Err(e.to_string()));
                    return Err(e);
                }
                done(Ok(()));
            }
            WriteCommand::InstallStream { mut input, done } => {
                flush_appends(store, &mut appends)?;
                let installed = store.install_image_stream(&mut input);
                done();
                installed?;
            }
            WriteCommand::View(done) => {
                flush_appends(store, &mut appends)?;
                done(store.image_view());
            }
        }
    }
    flush_appends(store, &mut appends)?;
    if last_appended.is_none() && marker.is_none() {
        return Ok(None);
    }
    let started = Instant::now();
    let synced = last_appended.is_some() || must_sync;
    if synced {
        store.sync()?;
    }
    Ok(Some(Written {
        last_appended,
        marker,
        sync: SyncStats {
            entries,
            duration: started.elapsed(),
            synced,
        },
    }))
}

fn flush_appends(store: &mut dyn Store, appends: &mut Vec<LogEntry>) -> Result<(), StorageError> {
    if !appends.is_empty() {
        store.append(appends)?;
        appends.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EntryKind;
    use crate::memory::MemoryStore;

    fn entries(from: u64, to: u64, term: u64) -> Vec<LogEntry> {
        (from..=to)
            .map(|index| LogEntry {
                index,
                term,
                kind: EntryKind::Empty,
                data: Vec::new(),
            })
            .collect()
    }

    /// A deposed leader's unsynced entries and its successor's overwriting
    /// ones, queued together, are written as the successor's (the store
    /// refused the concatenation: "entries are not consecutive").
    #[test]
    fn an_overwriting_append_in_the_same_batch_replaces_the_suffix() {
        let mut store = MemoryStore::new();
        let batch = vec![
            WriteCommand::Append(entries(1, 10, 1)),
            WriteCommand::Append(entries(7, 8, 2)),
            WriteCommand::Marker {
                number: 1,
                sync: true,
            },
        ];
        let written = write_batch(&mut store, batch).expect("written");
        assert_eq!(written.and_then(|w| w.marker), Some(1));
        assert_eq!(store.last_index(), 8);
        assert_eq!(store.term(6).ok(), Some(1));
        assert_eq!(store.term(7).ok(), Some(2));
        // One that starts before everything queued replaces it all.
        let batch = vec![
            WriteCommand::Append(entries(9, 12, 2)),
            WriteCommand::Append(entries(5, 6, 3)),
        ];
        write_batch(&mut store, batch).expect("written");
        assert_eq!(store.last_index(), 6);
        assert_eq!(store.term(5).ok(), Some(3));
    }

    #[test]
    fn a_marker_without_appends_syncs_only_if_asked() {
        let mut store = MemoryStore::new();
        let written = write_batch(
            &mut store,
            vec![WriteCommand::Marker {
                number: 4,
                sync: false,
            }],
        )
        .expect("written")
        .expect("a marker to report");
        assert!(!written.sync.synced);
        assert_eq!(written.marker, Some(4));
        assert!(
            write_batch(&mut store, Vec::new())
                .expect("nothing")
                .is_none()
        );
    }
}

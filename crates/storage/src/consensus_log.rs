//! The consensus log as the driver sees it, read from and written to a
//! store: raft-rs entries as log entries and back, and everything the
//! driver needs at start (`consensus::driver::StoredState`). The server
//! and the simulator start their drivers through the same function.

use consensus::driver::StoredState;
use consensus::membership::Membership;
use consensus::raft::eraftpb::{Entry, EntryType, HardState};
use tree::{CONFIG, DataTree};

use crate::{EntryKind, LogEntry, StorageError, Store, membership_record};

/// A log entry as raft-rs holds it.
pub fn raft_entry(entry: &LogEntry) -> Entry {
    Entry {
        index: entry.index,
        term: entry.term,
        entry_type: match entry.kind {
            EntryKind::Config => EntryType::EntryConfChangeV2,
            EntryKind::Txn | EntryKind::Empty => EntryType::EntryNormal,
        },
        data: entry.data.clone().into(),
        ..Entry::default()
    }
}

/// A raft-rs entry as the store holds it.
pub fn log_entry(entry: &Entry) -> LogEntry {
    LogEntry {
        index: entry.index,
        term: entry.term,
        kind: match entry.get_entry_type() {
            EntryType::EntryNormal if entry.data.is_empty() => EntryKind::Empty,
            EntryType::EntryNormal => EntryKind::Txn,
            EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => EntryKind::Config,
        },
        data: entry.data.to_vec(),
    }
}

/// What the driver starts from: the store's hard state, membership record,
/// compaction point and log, and the committed membership the recovered
/// tree holds.
pub fn stored_state(store: &dyn Store, tree: &DataTree) -> Result<StoredState, StorageError> {
    let meta = store.meta();
    let committed = committed_membership(tree).map_err(|detail| StorageError::Corrupt {
        what: "the committed membership (/zookeeper/config)".into(),
        detail,
    })?;
    let mut entries = Vec::new();
    let last = store.last_index();
    let mut next = store.first_index();
    while next <= last {
        let chunk = store.entries(next, (next + 4096).min(last + 1))?;
        let Some(end) = chunk.last().map(|e| e.index) else {
            break;
        };
        entries.extend(chunk.iter().map(raft_entry));
        next = end + 1;
    }
    Ok(StoredState {
        hard_state: HardState {
            term: meta.hard_state.term,
            vote: meta.hard_state.vote,
            commit: meta.hard_state.commit,
            ..HardState::default()
        },
        record: meta.config.as_deref().map(membership_record::decode),
        compacted: meta.compacted,
        entries,
        applied_index: meta.applied_index,
        applied_zxid: meta.applied_zxid,
        committed,
    })
}

/// The committed membership the tree holds (`/zookeeper/config`), if a
/// leader ever committed one.
pub fn committed_membership(tree: &DataTree) -> Result<Option<Membership>, String> {
    let text = tree
        .node(CONFIG)
        .and_then(|n| n.data.as_deref())
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    if text.trim().is_empty() {
        return Ok(None);
    }
    Membership::parse(&text).map(Some)
}

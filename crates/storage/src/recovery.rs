//! Between the in-memory tree and the durable store: what applying a
//! transaction must write, how the tree becomes a snapshot's image and
//! back, and how a server comes back from its store at start — load the
//! tree as stored, then apply the logged entries that the stored tree does
//! not reflect yet. The server and the simulator restart the same way.

use tree::{Applied, DataTree, Node, RestoreError};

use crate::{ApplyBatch, EntryKind, Image, NodeRecord, StorageError, Store};

/// Why a server could not start from its data directory.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the stored tree is inconsistent: {0}")]
    Tree(#[from] RestoreError),
    #[error(
        "this data directory holds a standalone server's data (up to log index {last}); a member of an \
         ensemble starts from an empty data directory and receives the ensemble's data (copy data in \
         through a client if needed), or remove the server.N lines to run it standalone"
    )]
    StandaloneData { last: u64 },
    #[error(
        "this data directory belongs to a member of an ensemble; it cannot be served standalone \
         (its log may hold entries the ensemble never committed): add its server.N lines back, or \
         start the standalone server on an empty data directory"
    )]
    EnsembleData,
    #[error("log entry {index} has zxid {zxid:#x}, its position in the log says {expected:#x}")]
    ZxidMismatch {
        index: u64,
        zxid: i64,
        expected: i64,
    },
    #[error("numbering the log: {0}")]
    Zxid(#[from] consensus::ConsensusError),
    #[error("log entry {index} does not follow the applied state (zxid {zxid} <= {applied_zxid})")]
    OutOfOrder {
        index: u64,
        zxid: i64,
        applied_zxid: i64,
    },
}

/// The stored form of a node.
pub fn node_record(node: &Node) -> NodeRecord {
    NodeRecord {
        data: node.data.clone(),
        acl: node.acl.clone(),
        stat: node.stat,
    }
}

pub(crate) fn node_from_record(record: NodeRecord) -> Node {
    Node::new(record.data, record.acl, record.stat)
}

/// Adds what one applied transaction changed to `batch`, reading the
/// current records from the tree.
pub fn record_effects(tree: &DataTree, applied: &Applied, batch: &mut ApplyBatch) {
    for path in &applied.dirty_nodes {
        batch
            .nodes
            .push((path.clone(), tree.node(path).map(node_record)));
    }
    for session in &applied.dirty_sessions {
        batch
            .sessions
            .push((*session, tree.session(*session).cloned()));
    }
}

/// A server's state as recovered from its store.
pub struct Recovered {
    pub tree: DataTree,
    pub store: Box<dyn Store>,
    /// Index the next log entry gets.
    pub next_index: u64,
    /// How many logged entries were applied during recovery.
    pub replayed: usize,
}

impl std::fmt::Debug for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recovered")
            .field("last_zxid", &self.tree.last_zxid())
            .field("next_index", &self.next_index)
            .field("replayed", &self.replayed)
            .finish_non_exhaustive()
    }
}

/// Which logged entries recovery applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// All of them: a standalone server logs only what it has decided, and
    /// its zxids are its log indexes.
    Everything,
    /// Those up to the durable commit index: a member of an ensemble may
    /// hold entries that were never committed and will be replaced. Their
    /// zxids follow from their terms and positions (`consensus::zxid`).
    /// Replay stops before the first entry whose apply the ensemble driver
    /// does more with than the tree: a membership change (a crash can keep
    /// the hard state that committed it and lose the write of the
    /// membership it made), and, while the static membership is not
    /// confirmed yet (version 0), a leader's first entry (which confirms
    /// it, writing `/zookeeper/config`). It and every later entry are left
    /// for raft-rs to hand over again as committed.
    Committed,
    /// Every entry of a member's log, committed or not, numbered as in
    /// `Committed`; membership changes are passed over (they are
    /// superseded). Only `conclave-server recover-alone` replays this way:
    /// the survivor of a lost quorum keeps all it has.
    Forced,
}

/// Refuses a store written in the other mode: a standalone server's log
/// is its own history, which an ensemble member must not mix with the
/// ensemble's; an ensemble member's log may end in entries that were never
/// committed, which a standalone server would serve as if they were.
pub fn check_mode(store: &dyn Store, replay: Replay) -> Result<(), RecoveryError> {
    let meta = store.meta();
    let was_member = meta.config.is_some();
    let last = store.last_index().max(meta.applied_index);
    match replay {
        Replay::Committed | Replay::Forced if !was_member && last > 0 => {
            Err(RecoveryError::StandaloneData { last })
        }
        Replay::Everything if was_member => Err(RecoveryError::EnsembleData),
        _ => Ok(()),
    }
}

/// Loads the tree from `store` and applies the logged entries after the
/// applied marker. A fresh store gets the initial tree (`/`, `/zookeeper`
/// and its children) written into it.
pub fn recover(store: Box<dyn Store>) -> Result<Recovered, RecoveryError> {
    recover_with(store, Replay::Everything)
}

/// [`recover`], applying the entries `replay` says.
pub fn recover_with(mut store: Box<dyn Store>, replay: Replay) -> Result<Recovered, RecoveryError> {
    check_mode(store.as_ref(), replay)?;
    let loaded = store.load()?;
    let meta = loaded.meta;
    let mut tree = if loaded.nodes.is_empty() && meta.applied_index == 0 {
        let tree = DataTree::new();
        let mut batch = ApplyBatch::default();
        for path in ["/", tree::ZOOKEEPER, tree::QUOTA, tree::CONFIG] {
            batch
                .nodes
                .push((path.to_owned(), tree.node(path).map(node_record)));
        }
        store.apply(&batch)?;
        store.sync()?;
        tree
    } else {
        // Records come in path order (the store's key order): each node
        // is linked to its parent as it is inserted, in one pass.
        let mut builder = tree::TreeBuilder::with_capacity(loaded.nodes.len());
        for (path, record) in loaded.nodes {
            builder.push(path, node_from_record(record))?;
        }
        builder.finish(loaded.sessions, meta.applied_zxid)?
    };

    let mut replayed = 0;
    let last = match replay {
        Replay::Everything | Replay::Forced => store.last_index(),
        Replay::Committed => store.last_index().min(meta.hard_state.commit),
    };
    let mut zxids = consensus::ZxidCounter::resume(meta.applied_index, meta.applied_zxid);
    let mut next = meta.applied_index + 1;
    let mut stopped = false;
    while next <= last && !stopped {
        let chunk = store.entries(next, (next + 1024).min(last + 1))?;
        let mut batch = ApplyBatch::default();
        for entry in &chunk {
            if replay == Replay::Committed && driver_applies(entry.kind, &tree) {
                stopped = true;
                break;
            }
            batch.applied_index = entry.index;
            batch.applied_zxid = tree.last_zxid();
            let expected = match replay {
                Replay::Everything => None,
                Replay::Committed | Replay::Forced => Some(zxids.next(entry.index, entry.term)?),
            };
            if entry.kind != EntryKind::Txn {
                if let Some(zxid) = expected {
                    tree.advance_zxid(zxid);
                    batch.applied_zxid = zxid;
                }
                continue;
            }
            let txn = crate::decode_txn(&entry.data)?;
            if let Some(expected) = expected
                && txn.zxid != expected
            {
                return Err(RecoveryError::ZxidMismatch {
                    index: entry.index,
                    zxid: txn.zxid,
                    expected,
                });
            }
            if txn.zxid <= tree.last_zxid() {
                return Err(RecoveryError::OutOfOrder {
                    index: entry.index,
                    zxid: txn.zxid,
                    applied_zxid: tree.last_zxid(),
                });
            }
            let applied = tree::apply(&mut tree, &txn);
            record_effects(&tree, &applied, &mut batch);
            batch.applied_zxid = tree.last_zxid();
            replayed += 1;
        }
        next = chunk.last().map_or(last + 1, |e| e.index + 1);
        if batch.applied_index > 0 {
            store.apply(&batch)?;
        }
    }
    if replayed > 0 {
        store.sync()?;
    }
    Ok(Recovered {
        next_index: last.max(meta.applied_index) + 1,
        tree,
        store,
        replayed,
    })
}

/// The tree as a snapshot's image: every node in path order, every
/// session, as of the entry at `index` of `term` whose zxid is `zxid`.
pub fn image_of(tree: &DataTree, index: u64, term: u64, zxid: i64) -> Image {
    let mut nodes: Vec<(String, NodeRecord)> = tree
        .nodes()
        .map(|(path, node)| (path.to_owned(), node_record(node)))
        .collect();
    nodes.sort_by(|a, b| a.0.cmp(&b.0));
    Image {
        index,
        term,
        zxid,
        nodes,
        sessions: tree
            .sessions()
            .iter()
            .map(|(id, s)| (*id, s.clone()))
            .collect(),
    }
}

/// The tree an image holds (its nodes in path order), checked for
/// consistency.
pub fn tree_of(image: &Image) -> Result<DataTree, RestoreError> {
    let mut builder = tree::TreeBuilder::with_capacity(image.nodes.len());
    for (path, record) in &image.nodes {
        builder.push(path.clone(), node_from_record(record.clone()))?;
    }
    builder.finish(image.sessions.clone(), image.zxid)
}

/// Writes `/zookeeper/config` of a brand-new ensemble's tree (the static
/// membership, not yet confirmed by a leader: version 0), as the
/// transaction at the bootstrap point's zxid.
pub fn set_static_membership(tree: &mut DataTree, zxid: i64, text: &str) {
    let txn = tree::Txn {
        session_id: 0,
        cxid: 0,
        zxid,
        time_ms: 0,
        op: tree::TxnOp::SetData {
            path: tree::CONFIG.to_owned(),
            data: Some(text.as_bytes().to_vec()),
            version: -1,
        },
    };
    tree::apply(tree, &txn);
}

/// Whether applying an entry of this kind takes the ensemble driver (see
/// [`Replay::Committed`]).
fn driver_applies(kind: EntryKind, tree: &DataTree) -> bool {
    match kind {
        EntryKind::Config => true,
        EntryKind::Empty => crate::consensus_log::committed_membership(tree)
            .map_or(true, |m| m.is_none_or(|m| m.version == 0)),
        EntryKind::Txn => false,
    }
}

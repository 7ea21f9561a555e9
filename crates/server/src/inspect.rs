//! `conclave-server inspect`: what a data directory holds, and its log as
//! text — the roles of ZooKeeper's zkSnapShotToolkit and zkTxnLogToolkit.

use std::fmt::Write as _;

use storage::{EntryKind, Store};
use tree::{Txn, TxnOp};

/// A summary of a store: format, markers, log bounds, tree and sessions.
pub fn summary(store: &dyn Store) -> Result<String, storage::StorageError> {
    let loaded = store.load()?;
    let meta = &loaded.meta;
    let mut out = String::new();
    let _ = writeln!(out, "format version:   {}", meta.format_version);
    let _ = writeln!(out, "applied index:    {}", meta.applied_index);
    let _ = writeln!(out, "applied zxid:     0x{:x}", meta.applied_zxid);
    let _ = writeln!(
        out,
        "hard state:       term {} vote {} commit {}",
        meta.hard_state.term, meta.hard_state.vote, meta.hard_state.commit
    );
    let _ = writeln!(
        out,
        "log:              first index {} last index {}",
        store.first_index(),
        store.last_index()
    );
    if meta.compacted.0 > 0 {
        let _ = writeln!(
            out,
            "compacted:        through index {} (term {})",
            meta.compacted.0, meta.compacted.1
        );
    }
    let epoch = meta.applied_zxid >> 32;
    let _ = writeln!(out, "epoch:            {epoch}");
    let _ = writeln!(out, "znodes:           {}", loaded.nodes.len());
    let data: usize = loaded
        .nodes
        .iter()
        .map(|(_, n)| n.data.as_ref().map_or(0, Vec::len))
        .sum();
    let _ = writeln!(out, "data bytes:       {data}");
    let _ = writeln!(out, "sessions:         {}", loaded.sessions.len());
    for (id, session) in &loaded.sessions {
        let ephemerals = loaded
            .nodes
            .iter()
            .filter(|(_, n)| n.stat.ephemeral_owner == *id)
            .count();
        let _ = writeln!(
            out,
            "  0x{id:016x} timeout {} ms, {ephemerals} ephemerals",
            session.timeout_ms
        );
    }
    Ok(out)
}

/// The log from `from` (at most `limit` entries), one line per entry.
pub fn log_text(store: &dyn Store, from: u64, limit: u64) -> Result<String, storage::StorageError> {
    let lo = from.max(store.first_index());
    let hi = store
        .last_index()
        .saturating_add(1)
        .min(lo.saturating_add(limit));
    let mut out = String::new();
    for entry in store.entries(lo, hi)? {
        let _ = write!(out, "{:>10} term {} ", entry.index, entry.term);
        match entry.kind {
            EntryKind::Txn => {
                let txn = storage::decode_txn(&entry.data)?;
                let _ = writeln!(out, "{}", txn_line(&txn));
            }
            EntryKind::Config => {
                let _ = writeln!(out, "config {}", String::from_utf8_lossy(&entry.data));
            }
            EntryKind::Empty => {
                let _ = writeln!(out, "empty");
            }
        }
    }
    Ok(out)
}

/// One transaction as text, in the spirit of zkTxnLogToolkit.
pub fn txn_line(txn: &Txn) -> String {
    format!(
        "zxid 0x{:x} session 0x{:x} cxid 0x{:x} time {} {}",
        txn.zxid,
        txn.session_id,
        txn.cxid,
        txn.time_ms,
        op_text(&txn.op)
    )
}

fn op_text(op: &TxnOp) -> String {
    match op {
        TxnOp::CreateSession { timeout_ms, .. } => format!("createSession timeout {timeout_ms}"),
        TxnOp::CloseSession { paths_to_delete } => {
            format!("closeSession deleting {paths_to_delete:?}")
        }
        TxnOp::Create(c) => format!(
            "create {} ({} bytes, owner 0x{:x}, parent cversion {})",
            c.path,
            c.data.as_ref().map_or(0, Vec::len),
            c.ephemeral_owner,
            c.parent_cversion
        ),
        TxnOp::Delete { path } => format!("delete {path}"),
        TxnOp::SetData {
            path,
            data,
            version,
        } => {
            format!(
                "setData {path} ({} bytes) version {version}",
                data.as_ref().map_or(0, Vec::len)
            )
        }
        TxnOp::SetAcl {
            path,
            acl,
            aversion,
        } => format!("setACL {path} {acl:?} aversion {aversion}"),
        TxnOp::Check { path, version } => format!("check {path} version {version}"),
        TxnOp::Multi(ops) => {
            let inner: Vec<String> = ops.iter().map(op_text).collect();
            format!("multi [{}]", inner.join("; "))
        }
        TxnOp::Error(code) => format!("error {code}"),
    }
}

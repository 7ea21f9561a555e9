//! createSession and closeSession as transactions. Closing resolves the
//! session's ephemerals now, so every replica deletes the same paths, and
//! records their deletion as pending so that writes prepared behind the
//! close see them gone.

use super::{Context, View};
use crate::path;
use crate::txn::TxnOp;

pub(super) fn prepare_create(timeout_ms: i32, password: &[u8]) -> TxnOp {
    TxnOp::CreateSession {
        timeout_ms,
        password: password.to_vec(),
    }
}

pub(super) fn prepare_close(view: &mut View<'_>, ctx: &Context<'_>) -> TxnOp {
    let paths_to_delete = view.ephemerals_of(ctx.session_id);
    for p in &paths_to_delete {
        // Ephemerals have no children, so their parents lose one each.
        if let Some(parent_path) = path::parent_of(p)
            && let Ok(mut parent) = view.get(parent_path)
        {
            parent.child_count -= 1;
            parent.stat.pzxid = ctx.zxid;
            view.put(parent_path, Some(parent));
        }
        view.put(p, None);
    }
    TxnOp::CloseSession { paths_to_delete }
}

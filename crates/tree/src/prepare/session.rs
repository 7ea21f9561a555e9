//! createSession and closeSession as transactions. Closing resolves the
//! session's ephemerals now, so every replica deletes the same paths.

use super::{Context, View};
use crate::txn::TxnOp;

pub(super) fn prepare_create(timeout_ms: i32, password: &[u8]) -> TxnOp {
    TxnOp::CreateSession {
        timeout_ms,
        password: password.to_vec(),
    }
}

pub(super) fn prepare_close(view: &View<'_>, ctx: &Context<'_>) -> TxnOp {
    let paths_to_delete = view.tree().ephemerals_of(ctx.session_id).cloned().collect();
    TxnOp::CloseSession { paths_to_delete }
}

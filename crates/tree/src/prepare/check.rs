//! check, the version assertion of a multi (`CheckVersionTxn`).

use proto::{CheckVersionRequest, ErrorCode, perms};

use super::{Context, View, check_acl, check_and_inc_version, check_session, validate};
use crate::txn::TxnOp;

pub(super) fn prepare(
    view: &mut View<'_>,
    request: &CheckVersionRequest,
    ctx: &Context<'_>,
) -> Result<TxnOp, ErrorCode> {
    check_session(view, ctx)?;
    validate(&request.path)?;
    let node = view.get(&request.path)?;
    check_acl(&node, perms::READ, ctx)?;
    let version = check_and_inc_version(node.stat.version, request.version)?;
    Ok(TxnOp::Check {
        path: request.path.clone(),
        version,
    })
}

//! delete and deleteContainer (`PrepRequestProcessor.pRequest2Txn`).

use proto::{DeleteRequest, ErrorCode, perms};

use super::{Context, View, check_acl, check_and_inc_version, check_session};
use crate::node::owner;
use crate::tree::DataTree;
use crate::txn::TxnOp;

/// `getParentPathAndValidate`: needs a slash, no NUL, and not one of the
/// special nodes. No further path validation happens on delete.
fn parent_path(path: &str) -> Result<&str, ErrorCode> {
    match path.rfind('/') {
        Some(i) if !path.contains('\0') && !DataTree::is_special_path(path) => Ok(&path[..i]),
        _ => Err(ErrorCode::BadArguments),
    }
}

pub(super) fn prepare(
    view: &mut View<'_>,
    request: &DeleteRequest,
    ctx: &Context<'_>,
) -> Result<TxnOp, ErrorCode> {
    check_session(view, ctx)?;
    let path = &request.path;
    let parent_path = parent_path(path)?;
    let parent = view.get(parent_path)?;
    check_acl(&parent, perms::DELETE, ctx)?;
    let node = view.get(path)?;
    check_and_inc_version(node.stat.version, request.version)?;
    if node.child_count > 0 {
        return Err(ErrorCode::NotEmpty);
    }
    record_delete(view, parent_path, path, ctx.zxid)?;
    Ok(TxnOp::Delete { path: path.clone() })
}

/// deleteContainer: no session or ACL check (the reaper has no session);
/// refuses non-empty nodes and real ephemerals.
pub(super) fn prepare_container(
    view: &mut View<'_>,
    path: &str,
    ctx: &Context<'_>,
) -> Result<TxnOp, ErrorCode> {
    let parent_path = parent_path(path)?;
    let node = view.get(path)?;
    if node.child_count > 0 {
        return Err(ErrorCode::NotEmpty);
    }
    if matches!(
        owner::kind(node.stat.ephemeral_owner),
        owner::Kind::Normal(_)
    ) {
        return Err(ErrorCode::BadVersion);
    }
    record_delete(view, parent_path, path, ctx.zxid)?;
    Ok(TxnOp::Delete {
        path: path.to_owned(),
    })
}

fn record_delete(
    view: &mut View<'_>,
    parent_path: &str,
    path: &str,
    zxid: i64,
) -> Result<(), ErrorCode> {
    let mut parent = view.get(parent_path)?;
    parent.child_count -= 1;
    parent.stat.pzxid = zxid;
    view.put(parent_path, Some(parent));
    view.put(path, None);
    Ok(())
}

//! create, create2, createContainer, createTTL
//! (`PrepRequestProcessor.pRequest2TxnCreate`).

use std::sync::Arc;

use proto::{CreateMode, CreateTtlRequest, ErrorCode, OpCode, perms};

use super::{Context, Record, View, check_acl, check_session, validate};
use crate::node::{StatPersisted, owner};
use crate::txn::{CreateTxn, TxnOp};

pub(super) fn prepare(
    view: &mut View<'_>,
    op: OpCode,
    request: &CreateTtlRequest,
    ctx: &Context<'_>,
) -> Result<TxnOp, ErrorCode> {
    // CreateMode.fromFlag: unknown flags are BadArguments.
    let mode = CreateMode::from_code(request.flags).ok_or(ErrorCode::BadArguments)?;
    // validateCreateRequest: the TTL feature switch, then the TTL range,
    // then the session.
    if mode.is_ttl() && !ctx.features.extended_types {
        return Err(ErrorCode::Unimplemented);
    }
    validate_ttl(mode, request.ttl)?;
    check_session(view, ctx)?;
    // validatePathForCreate: only "has a slash, no NUL" before the parent
    // lookup; full validation comes after the sequence suffix.
    let path = &request.path;
    let Some(last_slash) = path.rfind('/') else {
        return Err(ErrorCode::BadArguments);
    };
    if path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    let parent_path = &path[..last_slash];
    let acl = crate::acl::fixup(&request.acl, ctx.auth, ctx.features.acl_providers)?;
    let parent = view.get(parent_path)?;
    check_acl(&parent, perms::CREATE, ctx)?;
    let parent_cversion = parent.stat.cversion;
    let path = if mode.is_sequential() {
        // `%010d` of the stored cversion; negative after int overflow, as in Java.
        format!("{path}{parent_cversion:010}")
    } else {
        path.clone()
    };
    validate(&path)?;
    if view.get(&path).is_ok() {
        return Err(ErrorCode::NodeExists);
    }
    if matches!(
        owner::kind(parent.stat.ephemeral_owner),
        owner::Kind::Normal(_)
    ) {
        return Err(ErrorCode::NoChildrenForEphemerals);
    }
    let new_cversion = parent_cversion.wrapping_add(1);

    // The op (not the flags) decides container/TTL for top-level requests;
    // inside a multi the op was already derived from the flags.
    let ephemeral_owner = match op {
        OpCode::CreateContainer => owner::CONTAINER,
        OpCode::CreateTtl => owner::ttl(request.ttl),
        _ if mode.is_ephemeral() => ctx.session_id,
        _ => 0,
    };
    // The pending record uses the mode's owner (ZooKeeper's ChangeRecord),
    // which only differs from the committed one for odd op/flag pairings.
    let record_owner = if mode.is_container() {
        owner::CONTAINER
    } else if mode.is_ttl() {
        owner::ttl(request.ttl)
    } else if mode.is_ephemeral() {
        ctx.session_id
    } else {
        0
    };

    let mut parent = parent;
    parent.child_count += 1;
    parent.stat.cversion = new_cversion;
    parent.stat.pzxid = ctx.zxid;
    view.put(parent_path, Some(parent));
    let acl_shared = Arc::new(acl.clone());
    view.put(
        &path,
        Some(Record {
            stat: StatPersisted::created(ctx.zxid, ctx.time_ms, record_owner),
            child_count: 0,
            acl: acl_shared,
        }),
    );

    Ok(TxnOp::Create(CreateTxn {
        path,
        data: request.data.clone(),
        acl,
        ephemeral_owner,
        parent_cversion: new_cversion,
        with_stat: op != OpCode::Create,
    }))
}

/// `EphemeralType.validateTTL`: TTL modes need 1..=2^40-1 ms; other modes
/// must not carry a TTL (ttl < 0).
fn validate_ttl(mode: CreateMode, ttl: i64) -> Result<(), ErrorCode> {
    let ok = if mode.is_ttl() {
        ttl > 0 && ttl <= owner::MAX_TTL_MS
    } else {
        ttl < 0
    };
    if ok {
        Ok(())
    } else {
        Err(ErrorCode::BadArguments)
    }
}

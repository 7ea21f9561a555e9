//! The membership API the operator drives (Conclave's own):
//!
//! - `GET /membership`: the committed membership and its version, the
//!   leader, and per member its role, addresses, last applied zxid, lag and
//!   health (as the leader sees them; a follower reports what it knows and
//!   names the leader).
//! - `POST /membership/add` `{"server": "server.4=host:2888:3888:participant;2181", "expected_version": "100000000"}`
//! - `POST /membership/remove` `{"id": 3, "expected_version": ...}`
//! - `POST /membership/promote` and `/membership/demote` `{"id": 4, "expected_version": ...}`
//! - `POST /leader/transfer` `{"to": 2}` (or `{}` for the most caught-up
//!   participant)
//!
//! Changes need `Authorization: Bearer <conclave.adminToken>` and go to the
//! leader (others answer 421 naming it); `expected_version` (hex, as in
//! `/zookeeper/config`, or -1 for any) plays `fromConfig`'s part. A change
//! is answered once committed, with the same errors as `reconfig`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::config::ServerLine;
use crate::ensemble_config::{MemberRole, parse_member};
use crate::membership::{Membership, ReconfigError, member_line};
use crate::processor::{Command, MembershipAnswer, MembershipOp, ReplicaStatus};
use crate::report;
use crate::server::Shared;

/// A change waits at most this long for its commit.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

fn json_response(status: StatusCode, doc: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{doc:#}\n"),
    )
        .into_response()
}

fn error_response(e: &ReconfigError) -> Response {
    let status = match e {
        ReconfigError::BadArguments(_) => StatusCode::BAD_REQUEST,
        ReconfigError::NoAuth | ReconfigError::Disabled => StatusCode::FORBIDDEN,
        ReconfigError::NotLeader(_) => StatusCode::MISDIRECTED_REQUEST,
        _ => StatusCode::CONFLICT,
    };
    let mut doc = json!({
        "error": e.name(),
        "code": crate::membership::reconfig_error_code(e).code(),
        "message": e.to_string(),
    });
    if let ReconfigError::NotLeader(leader) = e {
        doc["leader"] = json!(leader);
    }
    json_response(status, &doc)
}

/// The membership document.
pub(super) fn membership_doc(r: &ReplicaStatus, serving: bool) -> Value {
    let leading = r.state == "leader";
    let members: Vec<Value> = r
        .membership
        .members
        .iter()
        .map(|m| {
            let progress = r.progress.iter().find(|p| p.id == m.id);
            let applied = r.member_applied.iter().find(|(id, _, _)| *id == m.id);
            let connected = r.members.iter().any(|(id, _, c)| *id == m.id && *c);
            let lag = progress.map(|p| r.commit_index.saturating_sub(p.matched));
            let healthy = if m.id == r.my_id {
                Some(serving)
            } else {
                progress.map(|_| r.live.contains(&m.id) && lag.unwrap_or(u64::MAX) <= 1000)
            };
            json!({
                "id": m.id,
                "role": match m.role {
                    MemberRole::Participant => "participant",
                    MemberRole::Observer => "observer",
                },
                "server": member_line(m),
                "leader": r.leader == Some(m.id),
                "connected": connected,
                "last_applied_zxid": applied.map(|(_, _, zxid)| format!("0x{zxid:x}")),
                "matched_index": progress.map(|p| p.matched),
                "lag": lag,
                "healthy": healthy,
            })
        })
        .collect();
    json!({
        "version": format!("{:x}", r.membership.version),
        "config": r.membership.render(),
        "my_id": r.my_id,
        "server_state": r.state,
        "leader": r.leader,
        "reconfig_in_progress": r.reconfig_in_progress,
        "member_view": if leading { "leader" } else { "local" },
        "members": members,
    })
}

pub(super) async fn get_membership(State(shared): State<Arc<Shared>>) -> Response {
    let Some(s) = report::snapshot(&shared).await else {
        return (StatusCode::SERVICE_UNAVAILABLE, report::NOT_SERVING).into_response();
    };
    let serving = s.serving();
    match s.replica.as_ref() {
        Some(r) => json_response(StatusCode::OK, &membership_doc(r, serving)),
        None => (StatusCode::NOT_FOUND, "this server runs standalone\n").into_response(),
    }
}

/// Checks the bearer token; None when the request may go on.
fn unauthorized(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = shared.config.admin_token.as_deref() else {
        return Some(json_response(
            StatusCode::FORBIDDEN,
            &json!({
                "error": "AdminDisabled",
                "message": "membership changes through the admin API need conclave.adminToken (or conclave.adminTokenFile)",
            }),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
        None
    } else {
        Some(json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "Unauthorized", "message": "a valid bearer token is required"}),
        ))
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bad(message: impl Into<String>) -> ReconfigError {
    ReconfigError::BadArguments(message.into())
}

fn expected_version(body: &Value) -> Result<i64, ReconfigError> {
    match body.get("expected_version") {
        None | Some(Value::Null) => Ok(-1),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| bad("expected_version is not an integer")),
        Some(Value::String(s)) if s == "-1" => Ok(-1),
        Some(Value::String(s)) => i64::from_str_radix(s.trim_start_matches("0x"), 16)
            .map_err(|_| bad(format!("expected_version {s:?} is not hexadecimal"))),
        Some(_) => Err(bad("expected_version is a hex string or a number")),
    }
}

fn id_of(body: &Value) -> Result<u64, ReconfigError> {
    body.get("id")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("\"id\" (a server id) is required"))
}

/// Parses the request into an operation.
fn operation(action: &str, body: &Value) -> Result<MembershipOp, ReconfigError> {
    match action {
        "add" => {
            let line = body
                .get("server")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("\"server\" (a server.N=... line) is required"))?;
            let (key, spec) = line
                .split_once('=')
                .ok_or_else(|| bad(format!("{line:?} is not server.N=spec")))?;
            let id = key
                .trim()
                .strip_prefix("server.")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| bad(format!("{key:?} is not server.N")))?;
            let member = parse_member(&ServerLine {
                id,
                spec: spec.trim().to_owned(),
            })
            .map_err(|e| bad(e.to_string()))?;
            Ok(MembershipOp::Add {
                member,
                expected_version: expected_version(body)?,
            })
        }
        "remove" => Ok(MembershipOp::Remove {
            id: id_of(body)?,
            expected_version: expected_version(body)?,
        }),
        "promote" => Ok(MembershipOp::Promote {
            id: id_of(body)?,
            expected_version: expected_version(body)?,
        }),
        "demote" => Ok(MembershipOp::Demote {
            id: id_of(body)?,
            expected_version: expected_version(body)?,
        }),
        other => Err(bad(format!(
            "no membership action {other:?}: add, remove, promote or demote"
        ))),
    }
}

async fn run(shared: &Shared, op: MembershipOp) -> Response {
    let (tx, rx) = oneshot::channel();
    if shared
        .commands
        .send(Command::Membership(op, tx))
        .await
        .is_err()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, report::NOT_SERVING).into_response();
    }
    match tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
        Ok(Ok(Ok(MembershipAnswer::Committed(m)))) => json_response(StatusCode::OK, &committed(&m)),
        Ok(Ok(Ok(MembershipAnswer::Transferred { leader }))) => {
            json_response(StatusCode::OK, &json!({ "leader": leader }))
        }
        Ok(Ok(Err(e))) => error_response(&e),
        Ok(Err(_)) => (StatusCode::SERVICE_UNAVAILABLE, report::NOT_SERVING).into_response(),
        Err(_) => json_response(
            StatusCode::GATEWAY_TIMEOUT,
            &json!({"error": "Timeout", "message": "the change did not finish in time; read /membership"}),
        ),
    }
}

fn committed(m: &Membership) -> Value {
    json!({
        "version": format!("{:x}", m.version),
        "config": m.render(),
    })
}

fn body_json(body: &str) -> Result<Value, ReconfigError> {
    if body.trim().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(body).map_err(|e| bad(format!("the body is not JSON: {e}")))
}

pub(super) async fn change_membership(
    State(shared): State<Arc<Shared>>,
    Path(action): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(refused) = unauthorized(&shared, &headers) {
        return refused;
    }
    let op = match body_json(&body).and_then(|b| operation(&action, &b)) {
        Ok(op) => op,
        Err(e) => return error_response(&e),
    };
    run(&shared, op).await
}

pub(super) async fn transfer_leadership(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(refused) = unauthorized(&shared, &headers) {
        return refused;
    }
    let body = match body_json(&body) {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let to = match body.get("to") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(id) => Some(id),
            None => return error_response(&bad("\"to\" is a server id")),
        },
    };
    run(&shared, MembershipOp::TransferLeadership { to }).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_hex_or_numbers() {
        assert_eq!(expected_version(&json!({})).ok(), Some(-1));
        assert_eq!(
            expected_version(&json!({"expected_version": "10000000b"})).ok(),
            Some(0x1_0000_000b)
        );
        assert_eq!(
            expected_version(&json!({"expected_version": 5})).ok(),
            Some(5)
        );
        assert!(expected_version(&json!({"expected_version": "zz"})).is_err());
    }

    #[test]
    fn operations_parse_or_are_refused() {
        let op = operation(
            "add",
            &json!({"server": "server.4=127.0.0.1:1:2:observer;2184"}),
        )
        .ok();
        assert!(matches!(op, Some(MembershipOp::Add { member, .. }) if member.id == 4));
        assert!(operation("add", &json!({"server": "4=x"})).is_err());
        assert!(operation("remove", &json!({})).is_err());
        assert!(operation("explode", &json!({"id": 1})).is_err());
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}

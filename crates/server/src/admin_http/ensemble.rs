//! `GET /ensemble`: this server's part in its ensemble, as JSON, for
//! operators and people: its id and state, the leader and term, the commit
//! and applied positions, and every member with its role, whether this
//! server is connected to it, and (when this server leads) how far its log
//! matches the leader's, how many entries it lags behind the commit, and
//! the applied index and last zxid it reported.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::ensemble_config::MemberRole;
use crate::processor::{ReplicaStatus, ServerSnapshot};

/// The status document; `None` for a standalone server.
pub(super) fn ensemble_status(s: &ServerSnapshot) -> Option<Value> {
    let r: &ReplicaStatus = s.replica.as_ref()?;
    let members: Vec<Value> = r
        .members
        .iter()
        .map(|(id, role, connected)| {
            let progress = r.progress.iter().find(|p| p.id == *id);
            let applied = r.member_applied.iter().find(|(m, _, _)| m == id);
            json!({
                "id": id,
                "role": match role {
                    MemberRole::Participant => "participant",
                    MemberRole::Observer => "observer",
                },
                "leader": r.leader == Some(*id),
                "connected": connected,
                "matched_index": progress.map(|p| p.matched),
                "lag": progress.map(|p| r.commit_index.saturating_sub(p.matched)),
                "recently_active": progress.map(|p| p.recent_active),
                "applied_index": applied.map(|(_, index, _)| index),
                "last_zxid": applied.map(|(_, _, zxid)| format!("0x{zxid:x}")),
            })
        })
        .collect();
    Some(json!({
        "my_id": r.my_id,
        "server_state": r.state,
        "serving": s.serving(),
        "leader": r.leader,
        "term": r.term,
        "commit_index": r.commit_index,
        "applied_index": r.applied_index,
        "last_zxid": format!("0x{:x}", s.last_zxid),
        "members": members,
    }))
}

/// The HTTP status that goes with it: 404 when standalone.
pub(super) fn ensemble_response(s: &ServerSnapshot) -> (StatusCode, String) {
    match ensemble_status(s) {
        Some(doc) => (StatusCode::OK, format!("{doc:#}\n")),
        None => (
            StatusCode::NOT_FOUND,
            "this server runs standalone\n".to_owned(),
        ),
    }
}

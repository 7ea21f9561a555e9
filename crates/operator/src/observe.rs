//! Reading a server's `GET /membership` answer (see `docs/membership.md`)
//! into what the plan needs. Only the leader's answer has every member's
//! figures (`member_view: "leader"`); another server's names the leader to
//! ask instead.

use serde::Deserialize;

use crate::plan::{Observed, ObservedMember};

#[derive(Debug, Deserialize)]
struct Doc {
    version: String,
    leader: Option<u64>,
    member_view: String,
    members: Vec<Member>,
}

#[derive(Debug, Deserialize)]
struct Member {
    id: u64,
    role: String,
    leader: bool,
    healthy: Option<bool>,
}

/// What one server's answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The leader's view: the membership and every member's health.
    Leader(Vec<ObservedMember>, String),
    /// Another server: ask this one (None while no leader is known).
    AskLeader(Option<u64>),
}

/// Why an answer could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable /membership answer: {0}")]
pub struct ObserveError(#[from] serde_json::Error);

pub fn parse(body: &str) -> Result<Answer, ObserveError> {
    let doc: Doc = serde_json::from_str(body)?;
    if doc.member_view != "leader" {
        return Ok(Answer::AskLeader(doc.leader));
    }
    let members = doc
        .members
        .into_iter()
        .map(|m| ObservedMember {
            id: m.id,
            participant: m.role == "participant",
            healthy: m.healthy.unwrap_or(false),
            leader: m.leader,
        })
        .collect();
    Ok(Answer::Leader(members, doc.version))
}

/// The leader's answer with the StatefulSet's size: the plan's input.
pub fn observed(
    members: Vec<ObservedMember>,
    version: String,
    statefulset_replicas: u64,
) -> Observed {
    Observed {
        members,
        version,
        statefulset_replicas,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The shape `crates/server/src/admin_http/membership.rs` writes.
    const LEADER: &str = r#"{
      "version": "20000000b",
      "config": "server.1=...\nversion=20000000b",
      "my_id": 1, "server_state": "leader", "leader": 1,
      "reconfig_in_progress": false, "member_view": "leader",
      "members": [
        {"id": 1, "role": "participant", "server": "server.1=...", "leader": true,
         "connected": true, "last_applied_zxid": "0x20000000b", "matched_index": 12, "lag": 0, "healthy": true},
        {"id": 2, "role": "participant", "server": "server.2=...", "leader": false,
         "connected": true, "last_applied_zxid": null, "matched_index": 12, "lag": 0, "healthy": false},
        {"id": 4, "role": "observer", "server": "server.4=...", "leader": false,
         "connected": false, "last_applied_zxid": null, "matched_index": null, "lag": null, "healthy": null}
      ]
    }"#;

    #[test]
    fn the_leaders_view_becomes_the_plans_input() {
        let Answer::Leader(members, version) = parse(LEADER).unwrap() else {
            panic!("the leader's view");
        };
        assert_eq!(version, "20000000b");
        assert_eq!(members.len(), 3);
        assert!(members[0].leader && members[0].healthy && members[0].participant);
        assert!(!members[1].healthy);
        assert!(!members[2].participant && !members[2].healthy);
    }

    #[test]
    fn a_follower_names_the_leader_and_garbage_is_an_error() {
        let follower = LEADER
            .replace("\"member_view\": \"leader\"", "\"member_view\": \"local\"")
            .replace("\"leader\": 1,", "\"leader\": 3,");
        assert_eq!(parse(&follower).unwrap(), Answer::AskLeader(Some(3)));
        assert!(parse("not json").is_err());
    }
}

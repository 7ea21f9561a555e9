//! Reading a server's `GET /membership` answer (see `docs/membership.md`)
//! into what the plan needs. Only the leader's answer has every member's
//! figures (`member_view: "leader"`); another server's names the leader to
//! ask instead.

use serde::Deserialize;

use crate::admin::{AdminAddress, AdminError, Ensemble};
use crate::plan::ObservedMember;

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
    #[serde(default)]
    lag: Option<u64>,
    #[serde(default)]
    last_applied_zxid: Option<String>,
}

/// The committed membership and every member's figures, from one read of
/// the leader (so the leader and the members never disagree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsembleView {
    pub members: Vec<ObservedMember>,
    /// The membership's version (hex, as `/zookeeper/config` writes it).
    pub version: String,
    pub leader: u64,
}

/// What one server's answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The leader's view: the membership and every member's health.
    Leader(EnsembleView),
    /// Another server: ask this one (None while no leader is known).
    AskLeader(Option<u64>),
}

/// Why an answer could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable /membership answer: {0}")]
pub struct ObserveError(#[from] serde_json::Error);

pub fn parse(body: &str) -> Result<Answer, ObserveError> {
    let doc: Doc = serde_json::from_str(body)?;
    let leader = match (doc.member_view.as_str(), doc.leader) {
        ("leader", Some(leader)) => leader,
        _ => return Ok(Answer::AskLeader(doc.leader)),
    };
    let members = doc
        .members
        .into_iter()
        .map(|m| ObservedMember {
            id: m.id,
            participant: m.role == "participant",
            healthy: m.healthy.unwrap_or(false),
            leader: m.leader,
            lag: m.lag,
            last_zxid: m.last_applied_zxid,
        })
        .collect();
    Ok(Answer::Leader(EnsembleView {
        members,
        version: doc.version,
        leader,
    }))
}

/// Reads the leader's view: asks the servers in turn (`servers` maps a
/// server id to its admin address), following a follower's hint to the
/// leader. `Err` carries what each server said, for status.
pub async fn read_ensemble<E: Ensemble>(
    ensemble: &E,
    servers: &[(u64, AdminAddress)],
) -> Result<EnsembleView, String> {
    let mut problems = Vec::new();
    let address_of = |id: u64| servers.iter().find(|(s, _)| *s == id).map(|(_, a)| a);
    for (id, addr) in servers {
        match ask(ensemble, addr).await {
            Ok(Answer::Leader(view)) => return Ok(view),
            Ok(Answer::AskLeader(Some(leader))) => {
                if let Some(leader_addr) = address_of(leader)
                    && let Ok(Answer::Leader(view)) = ask(ensemble, leader_addr).await
                {
                    return Ok(view);
                }
                problems.push(format!(
                    "server {id} names leader {leader}, which did not answer as leader"
                ));
            }
            Ok(Answer::AskLeader(None)) => problems.push(format!("server {id} knows no leader")),
            Err(e) => problems.push(format!("server {id}: {e}")),
        }
    }
    if problems.is_empty() {
        problems.push("no server to ask".to_owned());
    }
    Err(problems.join("; "))
}

#[derive(Debug, thiserror::Error)]
enum AskError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Observe(#[from] ObserveError),
}

async fn ask<E: Ensemble>(ensemble: &E, addr: &AdminAddress) -> Result<Answer, AskError> {
    let body = ensemble.membership(addr).await?;
    Ok(parse(&body)?)
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
        let Answer::Leader(view) = parse(LEADER).unwrap() else {
            panic!("the leader's view");
        };
        assert_eq!(view.version, "20000000b");
        assert_eq!(view.leader, 1);
        let members = view.members;
        assert_eq!(members[0].lag, Some(0));
        assert_eq!(members[0].last_zxid.as_deref(), Some("0x20000000b"));
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

//! What a `reconfig` asks of the ensemble's membership, checked as
//! ZooKeeper checks it, and ZooKeeper's error codes for the ways a change
//! is refused. The membership itself (its members, its text in
//! `/zookeeper/config`, the single-server steps between two of them) is
//! `consensus::membership`, shared with the driver that carries changes
//! out.

use proto::{ErrorCode, ReconfigRequest};

pub use consensus::membership::{
    ChangeContext, Member, MemberRole, Membership, ReconfigError, Step, after_step, check_path,
    member_line, next_step, parse_server,
};

/// ZooKeeper's code for a refused or failed `reconfig`.
pub fn reconfig_error_code(error: &ReconfigError) -> ErrorCode {
    match error {
        ReconfigError::Disabled => ErrorCode::ReconfigDisabled,
        ReconfigError::BadArguments(_) => ErrorCode::BadArguments,
        ReconfigError::BadVersion { .. } => ErrorCode::BadVersion,
        ReconfigError::InProgress => ErrorCode::ReconfigInProgress,
        ReconfigError::NoQuorum(_) | ReconfigError::RemovesLeader(_) => {
            ErrorCode::NewConfigNoQuorum
        }
        ReconfigError::NoAuth => ErrorCode::NoAuth,
        ReconfigError::NotLeader(_) => ErrorCode::ConnectionLoss,
    }
}

/// The membership a `reconfig` asks for, checked as ZooKeeper checks it
/// (`PrepRequestProcessor`): the version first, then the arguments.
/// `standalone_enabled`: ZooKeeper refuses to shrink to one participant
/// unless it is off.
pub fn target_of(
    current: &Membership,
    request: &ReconfigRequest,
    standalone_enabled: bool,
) -> Result<Vec<Member>, ReconfigError> {
    if request.cur_config_id != -1 && request.cur_config_id != current.version {
        return Err(ReconfigError::BadVersion {
            expected: request.cur_config_id,
            actual: current.version,
        });
    }
    let bad = ReconfigError::BadArguments;
    let items = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let mut target: Vec<Member>;
    if !request.new_members.trim().is_empty() {
        if !request.joining_servers.trim().is_empty() || !request.leaving_servers.trim().is_empty()
        {
            return Err(bad(
                "a new member list cannot be combined with joining or leaving servers".into(),
            ));
        }
        target = Vec::new();
        for item in items(&request.new_members) {
            if item.starts_with("version=") {
                continue;
            }
            let m = parse_server(&item).map_err(bad)?;
            if target.iter().any(|t| t.id == m.id) {
                return Err(bad(format!("server {} is listed twice", m.id)));
            }
            target.push(m);
        }
    } else {
        target = current.members.clone();
        for item in items(&request.joining_servers) {
            let m = parse_server(&item).map_err(bad)?;
            target.retain(|t| t.id != m.id);
            target.push(m);
        }
        for item in items(&request.leaving_servers) {
            let id: u64 = item
                .parse()
                .map_err(|_| bad(format!("{item:?} is not a server id")))?;
            target.retain(|t| t.id != id);
        }
    }
    target.sort_by_key(|m| m.id);
    let voters = target
        .iter()
        .filter(|m| m.role == MemberRole::Participant)
        .count();
    if voters == 0 {
        return Err(bad("the new configuration has no participant".into()));
    }
    if voters < 2 && standalone_enabled {
        return Err(bad(
            "the new configuration would have one participant, which needs standaloneEnabled=false"
                .into(),
        ));
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: u64, role: MemberRole) -> Member {
        Member {
            id,
            host: "127.0.0.1".into(),
            quorum_port: 2000 + id as u16,
            election_port: 3000 + id as u16,
            role,
            client: None,
        }
    }
    const P: MemberRole = MemberRole::Participant;
    const O: MemberRole = MemberRole::Observer;

    fn request(joining: &str, leaving: &str, new: &str, version: i64) -> ReconfigRequest {
        ReconfigRequest {
            joining_servers: joining.into(),
            leaving_servers: leaving.into(),
            new_members: new.into(),
            cur_config_id: version,
        }
    }

    #[test]
    fn incremental_and_whole_list_targets() {
        let cur = Membership::new(7, vec![m(1, P), m(2, P), m(3, P)]);
        let t = target_of(
            &cur,
            &request(
                "server.4=127.0.0.1:2004:3004:observer;0.0.0.0:2184",
                "3",
                "",
                -1,
            ),
            true,
        )
        .unwrap();
        assert_eq!(t.iter().map(|m| m.id).collect::<Vec<_>>(), vec![1, 2, 4]);
        assert_eq!(t[2].role, O);
        let t = target_of(
            &cur,
            &request("", "", "server.1=127.0.0.1:2001:3001,server.5=h:1:2", 7),
            true,
        )
        .unwrap();
        assert_eq!(t.iter().map(|m| m.id).collect::<Vec<_>>(), vec![1, 5]);
    }

    #[test]
    fn refusals_carry_zookeepers_codes() {
        let cur = Membership::new(7, vec![m(1, P), m(2, P), m(3, P)]);
        let err = |r| reconfig_error_code(&target_of(&cur, &r, true).unwrap_err());
        assert_eq!(err(request("", "3", "", 8)), ErrorCode::BadVersion);
        assert_eq!(
            err(request("some thing", "", "", -1)),
            ErrorCode::BadArguments
        );
        assert_eq!(err(request("", "x", "", -1)), ErrorCode::BadArguments);
        assert_eq!(err(request("", "2,3", "", -1)), ErrorCode::BadArguments);
        assert_eq!(err(request("", "1,2,3", "", -1)), ErrorCode::BadArguments);
        assert!(target_of(&cur, &request("", "2,3", "", -1), false).is_ok());
    }
}

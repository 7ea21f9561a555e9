//! The ensemble's committed membership, as ZooKeeper shows it in
//! `/zookeeper/config`, and what a `reconfig` asks of it.
//!
//! The text is ZooKeeper's (`QuorumVerifier.toString()`): one
//! `server.N=host:quorumPort:electionPort:role[;clientHost:clientPort]` line
//! per member, sorted by id, then `version=<hex>`, where the version is the
//! zxid of the entry that committed the membership.
//!
//! A `reconfig` names a target membership: incrementally (servers joining,
//! ids leaving) or as a whole new member list. The leader reaches the target
//! one single-server step at a time ([`next_step`]); every step is one Raft
//! membership change, committed before the next is proposed.

use std::fmt::Write as _;

use consensus::raft::eraftpb::ConfState;
use proto::{ErrorCode, ReconfigRequest};

use crate::config::ServerLine;
use crate::ensemble_config::{Member, MemberRole, parse_member};

/// The committed membership and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The zxid of the entry that committed it; 0 for the static
    /// configuration before any leader confirmed it.
    pub version: i64,
    /// Sorted by id.
    pub members: Vec<Member>,
}

impl Membership {
    pub fn new(version: i64, mut members: Vec<Member>) -> Membership {
        members.sort_by_key(|m| m.id);
        Membership { version, members }
    }

    pub fn get(&self, id: u64) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    pub fn contains(&self, id: u64) -> bool {
        self.get(id).is_some()
    }

    pub fn voters(&self) -> impl Iterator<Item = u64> + '_ {
        self.members
            .iter()
            .filter(|m| m.role == MemberRole::Participant)
            .map(|m| m.id)
    }

    /// Raft's view: participants vote, observers learn.
    pub fn conf_state(&self) -> ConfState {
        ConfState {
            voters: self.voters().collect(),
            learners: self
                .members
                .iter()
                .filter(|m| m.role == MemberRole::Observer)
                .map(|m| m.id)
                .collect(),
            ..ConfState::default()
        }
    }

    /// The server lines alone (what `conf` prints before the version).
    pub fn server_lines(&self) -> String {
        let mut out = String::new();
        for m in &self.members {
            let _ = writeln!(out, "{}", member_line(m));
        }
        out
    }

    /// `/zookeeper/config`'s content.
    pub fn render(&self) -> String {
        format!("{}version={:x}", self.server_lines(), self.version)
    }

    /// Reads [`Membership::render`]'s text back (what the tree holds).
    pub fn parse(text: &str) -> Result<Membership, String> {
        let mut members = Vec::new();
        let mut version = None;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(v) = line.strip_prefix("version=") {
                version =
                    Some(i64::from_str_radix(v, 16).map_err(|_| format!("bad version {v:?}"))?);
            } else {
                members.push(parse_server(line)?);
            }
        }
        Ok(Membership::new(version.unwrap_or(0), members))
    }
}

/// `server.N=host:quorum:election:role[;clientHost:clientPort]`.
pub fn member_line(m: &Member) -> String {
    let host = |h: &str| {
        if h.contains(':') {
            format!("[{h}]")
        } else {
            h.to_owned()
        }
    };
    let role = match m.role {
        MemberRole::Participant => "participant",
        MemberRole::Observer => "observer",
    };
    let mut line = format!(
        "server.{}={}:{}:{}:{role}",
        m.id,
        host(&m.host),
        m.quorum_port,
        m.election_port
    );
    if let Some((client_host, client_port)) = &m.client {
        let _ = write!(line, ";{}:{client_port}", host(client_host));
    }
    line
}

/// One `server.N=...` item of a reconfig or of the stored text.
fn parse_server(item: &str) -> Result<Member, String> {
    let (key, spec) = item
        .split_once('=')
        .ok_or_else(|| format!("{item:?} is not server.N=spec"))?;
    let id = key
        .trim()
        .strip_prefix("server.")
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| format!("{key:?} is not server.N"))?;
    parse_member(&ServerLine {
        id,
        spec: spec.trim().to_owned(),
    })
    .map_err(|e| e.to_string())
}

/// Why a membership change was refused, with ZooKeeper's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconfigError {
    #[error("reconfig is disabled (reconfigEnabled=false)")]
    Disabled,
    #[error("bad arguments: {0}")]
    BadArguments(String),
    #[error("the membership is at version {actual:x}, not {expected:x}")]
    BadVersion { expected: i64, actual: i64 },
    #[error("a membership change is in progress")]
    InProgress,
    #[error("no quorum of live, caught-up participants: {0}")]
    NoQuorum(String),
    #[error("not authorized: reconfig needs the super user or WRITE on /zookeeper/config")]
    NoAuth,
    #[error("this server does not lead (leader: {0:?})")]
    NotLeader(Option<u64>),
    #[error("server {0} leads: transfer leadership first")]
    RemovesLeader(u64),
}

impl ReconfigError {
    /// ZooKeeper's code for the client's reply.
    pub fn code(&self) -> ErrorCode {
        match self {
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

    /// A short name for the admin API's answers.
    pub fn name(&self) -> &'static str {
        match self {
            ReconfigError::Disabled => "ReconfigDisabled",
            ReconfigError::BadArguments(_) => "BadArguments",
            ReconfigError::BadVersion { .. } => "BadVersion",
            ReconfigError::InProgress => "ReconfigInProgress",
            ReconfigError::NoQuorum(_) => "NewConfigNoQuorum",
            ReconfigError::NoAuth => "NoAuth",
            ReconfigError::NotLeader(_) => "NotLeader",
            ReconfigError::RemovesLeader(_) => "TransferLeadershipFirst",
        }
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

/// One single-server step towards a target membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A new server joins as an observer (a Raft learner) first.
    AddLearner(Member),
    /// An observer becomes a participant: only once it has caught up.
    Promote(Member),
    /// A participant becomes an observer.
    Demote(Member),
    Remove(u64),
    /// Addresses change, or nothing does: the membership is written again
    /// with a new version (ZooKeeper commits an empty reconfig too).
    Rewrite,
    /// The next step would remove or demote the leader: it hands over
    /// leadership first.
    TransferLeadership,
}

/// The next step from `current` towards `target`, or None when there is
/// nothing left but the final rewrite. Joins first, then promotions, then
/// demotions and removals, the leader's own last: the ensemble grows before
/// it shrinks, so it never has fewer voters than it needs.
pub fn next_step(current: &[Member], target: &[Member], leader: u64) -> Option<Step> {
    let find = |list: &[Member], id: u64| list.iter().find(|m| m.id == id).cloned();
    let role = MemberRole::Participant;
    if let Some(m) = target.iter().find(|t| find(current, t.id).is_none()) {
        return Some(Step::AddLearner(Member {
            role: MemberRole::Observer,
            ..m.clone()
        }));
    }
    if let Some(m) = target.iter().find(|t| {
        t.role == role && find(current, t.id).is_some_and(|c| c.role == MemberRole::Observer)
    }) {
        return Some(Step::Promote(m.clone()));
    }
    let demoted = |c: &&Member| {
        c.role == role && find(target, c.id).is_some_and(|t| t.role == MemberRole::Observer)
    };
    let removed = |c: &&Member| find(target, c.id).is_none();
    if let Some(m) = current.iter().filter(|c| c.id != leader).find(demoted) {
        let mut m = find(target, m.id).unwrap_or_else(|| m.clone());
        m.role = MemberRole::Observer;
        return Some(Step::Demote(m));
    }
    if let Some(m) = current.iter().filter(|c| c.id != leader).find(removed) {
        return Some(Step::Remove(m.id));
    }
    if current
        .iter()
        .filter(|c| c.id == leader)
        .any(|c| demoted(&c) || removed(&c))
    {
        return Some(Step::TransferLeadership);
    }
    None
}

/// The member list after `step`.
pub fn after_step(current: &[Member], target: &[Member], step: &Step) -> Vec<Member> {
    let mut next: Vec<Member> = current.to_vec();
    match step {
        Step::AddLearner(m) | Step::Promote(m) | Step::Demote(m) => {
            next.retain(|c| c.id != m.id);
            next.push(m.clone());
        }
        Step::Remove(id) => next.retain(|c| c.id != *id),
        Step::Rewrite => next = target.to_vec(),
        Step::TransferLeadership => {}
    }
    next.sort_by_key(|m| m.id);
    next
}

/// Checks that every configuration on the way from `current` to `target`
/// keeps a quorum of live, caught-up participants, counting a joining
/// server as live only from its promotion on (it is promoted only once it
/// has caught up). `live(id)` says whether an existing member is.
pub fn check_path(
    current: &[Member],
    target: &[Member],
    leader: u64,
    live: &dyn Fn(u64) -> bool,
) -> Result<(), ReconfigError> {
    let mut now = current.to_vec();
    let mut leader = leader;
    let joining: Vec<u64> = target
        .iter()
        .filter(|t| !current.iter().any(|c| c.id == t.id))
        .map(|t| t.id)
        .collect();
    let is_live = |id: u64| joining.contains(&id) || live(id);
    for _ in 0..(current.len() + target.len()) * 2 + 2 {
        let Some(step) = next_step(&now, target, leader) else {
            return Ok(());
        };
        if step == Step::TransferLeadership {
            // The new leader is a live participant that stays.
            let Some(next_leader) = now
                .iter()
                .filter(|c| c.role == MemberRole::Participant && c.id != leader)
                .filter(|c| {
                    target
                        .iter()
                        .any(|t| t.id == c.id && t.role == MemberRole::Participant)
                })
                .map(|c| c.id)
                .find(|&id| is_live(id))
            else {
                return Err(ReconfigError::NoQuorum(format!(
                    "server {leader} leads and no live participant that stays can take over"
                )));
            };
            leader = next_leader;
            continue;
        }
        let next = after_step(&now, target, &step);
        let voters: Vec<u64> = next
            .iter()
            .filter(|m| m.role == MemberRole::Participant)
            .map(|m| m.id)
            .collect();
        let live_voters = voters.iter().filter(|&&id| is_live(id)).count();
        if live_voters < voters.len() / 2 + 1 {
            return Err(ReconfigError::NoQuorum(format!(
                "after {step:?} the participants would be {voters:?}, of which only {live_voters} are live and caught up"
            )));
        }
        now = next;
    }
    Ok(())
}

/// What a membership entry carries besides Raft's change: the whole member
/// list after it, and whose request it answers (the last step of a
/// reconfig). Text, so a log dump stays readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeContext {
    pub members: Vec<Member>,
    /// (session, cxid) of the reconfig this entry completes.
    pub answers: Option<(i64, i32)>,
    /// The leader's clock when it proposed (the config node's mtime).
    pub time_ms: i64,
}

impl ChangeContext {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::from("conclave-membership 1\n");
        let _ = writeln!(out, "time={}", self.time_ms);
        if let Some((session, cxid)) = self.answers {
            let _ = writeln!(out, "answers={session:x}:{cxid}");
        }
        for m in &self.members {
            let _ = writeln!(out, "{}", member_line(m));
        }
        out.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<ChangeContext, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
        let mut lines = text.lines();
        if lines.next() != Some("conclave-membership 1") {
            return Err("not a membership context".into());
        }
        let mut ctx = ChangeContext {
            members: Vec::new(),
            answers: None,
            time_ms: 0,
        };
        for line in lines.filter(|l| !l.is_empty()) {
            if let Some(t) = line.strip_prefix("time=") {
                ctx.time_ms = t.parse().map_err(|_| format!("bad time {t:?}"))?;
            } else if let Some(a) = line.strip_prefix("answers=") {
                let (s, c) = a.split_once(':').ok_or("bad answers")?;
                let session = u64::from_str_radix(s, 16).map_err(|_| "bad session")? as i64;
                let cxid = c.parse().map_err(|_| "bad cxid")?;
                ctx.answers = Some((session, cxid));
            } else {
                ctx.members.push(parse_server(line)?);
            }
        }
        ctx.members.sort_by_key(|m| m.id);
        Ok(ctx)
    }
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
    fn renders_zookeepers_text_and_reads_it_back() {
        let mut four = m(4, O);
        four.client = Some(("0.0.0.0".into(), 2184));
        let ms = Membership::new(0x1_0000_000b, vec![m(2, P), m(1, P), four]);
        let text = ms.render();
        assert_eq!(
            text,
            "server.1=127.0.0.1:2001:3001:participant\n\
             server.2=127.0.0.1:2002:3002:participant\n\
             server.4=127.0.0.1:2004:3004:observer;0.0.0.0:2184\n\
             version=10000000b"
        );
        assert_eq!(Membership::parse(&text).unwrap(), ms);
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
        let err = |r| target_of(&cur, &r, true).unwrap_err().code();
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

    #[test]
    fn steps_grow_before_they_shrink_and_the_leader_goes_last() {
        let cur = vec![m(1, P), m(2, P), m(3, P)];
        let target = vec![m(2, P), m(3, P), m(4, P)];
        let mut now = cur.clone();
        let mut leader = 1;
        let mut steps = Vec::new();
        while let Some(step) = next_step(&now, &target, leader) {
            if step == Step::TransferLeadership {
                leader = 2;
            } else {
                now = after_step(&now, &target, &step);
            }
            steps.push(step);
        }
        assert_eq!(
            steps,
            vec![
                Step::AddLearner(m(4, O)),
                Step::Promote(m(4, P)),
                Step::TransferLeadership,
                Step::Remove(1),
            ]
        );
        assert_eq!(now, target);
    }

    #[test]
    fn a_path_through_too_few_live_voters_is_refused() {
        let cur = vec![m(1, P), m(2, P), m(3, P)];
        // 3 is down: removing 2 leaves {1, 3} with one live voter.
        let live = |id: u64| id != 3;
        let target = vec![m(1, P), m(3, P)];
        assert!(matches!(
            check_path(&cur, &target, 1, &live),
            Err(ReconfigError::NoQuorum(_))
        ));
        // Growing to five first is fine: {1,2,4,5} of {1..5} are live.
        let target = vec![m(1, P), m(2, P), m(3, P), m(4, P), m(5, P)];
        assert!(check_path(&cur, &target, 1, &live).is_ok());
        // An observer that is not running yet is no obstacle.
        let target = vec![m(1, P), m(2, P), m(3, P), m(9, O)];
        assert!(check_path(&cur, &target, 1, &live).is_ok());
        // But nothing changes without a live quorum of participants.
        assert!(check_path(&cur, &target, 1, &|id| id == 1).is_err());
    }

    #[test]
    fn contexts_round_trip() {
        let ctx = ChangeContext {
            members: vec![m(1, P), m(4, O)],
            answers: Some((0x1234_5678_9abc, 7)),
            time_ms: 1_700_000_000_000,
        };
        assert_eq!(ChangeContext::decode(&ctx.encode()).unwrap(), ctx);
        assert!(ChangeContext::decode(b"voters=1").is_err());
    }
}

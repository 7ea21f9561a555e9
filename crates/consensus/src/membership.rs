//! The ensemble's membership: who its members are (ZooKeeper's `server.N`
//! lines), the committed membership as ZooKeeper shows it in
//! `/zookeeper/config`, and the single-server steps that take one
//! membership to another.
//!
//! The text is ZooKeeper's (`QuorumVerifier.toString()`): one
//! `server.N=host:quorumPort:electionPort:role[;clientHost:clientPort]` line
//! per member, sorted by id, then `version=<hex>`, where the version is the
//! zxid of the entry that committed the membership.
//!
//! A change names a target membership; the leader reaches it one
//! single-server step at a time ([`next_step`]), every step one Raft
//! membership change committed before the next is proposed
//! (`driver::reconfig`). Everything here is pure: it parses, renders and
//! plans, and is shared by the server and the simulator.

use std::fmt::Write as _;

use raft::eraftpb::ConfState;
use thiserror::Error;

/// How a member takes part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemberRole {
    /// Votes and may lead.
    Participant,
    /// Receives every committed transaction and serves reads; never votes
    /// (a Raft learner).
    Observer,
}

/// One `server.N` line, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Member {
    pub id: u64,
    /// As written (a name or an address); IPv6 without brackets.
    pub host: String,
    /// ZooKeeper's quorum port: Conclave's peer port.
    pub quorum_port: u16,
    /// ZooKeeper's election port: accepted for compatibility, unused
    /// (elections travel over the peer port).
    pub election_port: u16,
    pub role: MemberRole,
    /// `;[clientAddress:]clientPort`, if given.
    pub client: Option<(String, u16)>,
}

impl Member {
    /// Whether `other` names the same server at the same peer address
    /// (its role and client address may differ).
    pub fn same_server(&self, other: &Member) -> bool {
        self.id == other.id && self.host == other.host && self.quorum_port == other.quorum_port
    }
}

/// Why a `server.N` value did not parse; the reason, as ZooKeeper words it
/// where it has words for it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{reason}")]
pub struct MemberSpecError {
    pub reason: String,
}

fn spec_error(reason: impl Into<String>) -> MemberSpecError {
    MemberSpecError {
        reason: reason.into(),
    }
}

/// ZooKeeper's `ConfigUtils.getHostAndPort`: `[v6]:a:b` or `host:a:b`.
fn host_and_ports(s: &str) -> Result<Vec<String>, MemberSpecError> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err(spec_error(format!(
                "{s} starts with '[' but has no matching ']'"
            )));
        };
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let Some(ports) = after.strip_prefix(':') else {
            return Err(spec_error(format!(
                "{s} doesn't have a port after the address"
            )));
        };
        if ports.is_empty() {
            return Err(spec_error(format!("{s} doesn't have a port after colon")));
        }
        let mut parts = vec![host.to_owned()];
        parts.extend(ports.split(':').map(str::to_owned));
        Ok(parts)
    } else {
        Ok(s.split(':').map(str::to_owned).collect())
    }
}

fn port(host: &str, value: &str) -> Result<u16, MemberSpecError> {
    match value.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(spec_error(format!("address unresolved: {host}:{value}"))),
    }
}

/// Parses one `server.N` value (what follows the `=`), with ZooKeeper
/// 3.8's rules (`QuorumPeer.QuorumServer`):
/// `host:quorumPort:electionPort[:participant|observer][;[clientAddress:]clientPort]`.
pub fn parse_member(id: u64, spec: &str) -> Result<Member, MemberSpecError> {
    let wrong_format = "does not have the form server_config or server_config;client_config where server_config is host:port:port or host:port:port:type and client_config is port or host:port";
    let halves: Vec<&str> = spec.split(';').collect();
    if halves.len() > 2 {
        return Err(spec_error(wrong_format));
    }
    if halves[0].contains('|') {
        return Err(spec_error(
            "multiple addresses per server (ZooKeeper's multiAddress) are not supported",
        ));
    }
    let parts = host_and_ports(halves[0].trim())?;
    if !(3..=4).contains(&parts.len()) {
        return Err(spec_error(wrong_format));
    }
    let host = parts[0].trim().to_owned();
    if host.is_empty() {
        return Err(spec_error("the host is empty"));
    }
    let quorum_port = port(&host, &parts[1])?;
    let election_port = port(&host, &parts[2])?;
    if quorum_port == election_port {
        return Err(spec_error(
            "the quorum and election ports must be different",
        ));
    }
    let role = match parts.get(3).map(|t| t.trim().to_ascii_lowercase()) {
        None => MemberRole::Participant,
        Some(t) if t == "participant" => MemberRole::Participant,
        Some(t) if t == "observer" => MemberRole::Observer,
        Some(t) => return Err(spec_error(format!("unrecognised peer type: {t}"))),
    };
    let client = match halves.get(1) {
        None => None,
        Some(client) => {
            let parts = host_and_ports(client.trim())?;
            match parts.as_slice() {
                [p] => Some(("0.0.0.0".to_owned(), port("0.0.0.0", p)?)),
                [h, p] => Some((h.clone(), port(h, p)?)),
                _ => return Err(spec_error(wrong_format)),
            }
        }
    };
    Ok(Member {
        id,
        host,
        quorum_port,
        election_port,
        role,
        client,
    })
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
pub fn parse_server(item: &str) -> Result<Member, String> {
    let (key, spec) = item
        .split_once('=')
        .ok_or_else(|| format!("{item:?} is not server.N=spec"))?;
    let id = key
        .trim()
        .strip_prefix("server.")
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| format!("{key:?} is not server.N"))?;
    parse_member(id, spec.trim()).map_err(|e| format!("server.{id}: {e}"))
}

/// The committed membership and its version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

    pub fn is_voter(&self, id: u64) -> bool {
        self.get(id)
            .is_some_and(|m| m.role == MemberRole::Participant)
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

    /// The server lines on one line, for logs.
    pub fn summary(&self) -> String {
        self.server_lines().trim_end().replace('\n', ", ")
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

/// Why a membership change was refused. The server maps each to
/// ZooKeeper's error code for a client's `reconfig`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
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

/// Whether two Raft configurations hold the same voters and learners.
pub fn same_conf(a: &ConfState, b: &ConfState) -> bool {
    let sorted = |v: &[u64]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        v
    };
    sorted(&a.voters) == sorted(&b.voters)
        && sorted(&a.learners) == sorted(&b.learners)
        && a.voters_outgoing.is_empty()
        && b.voters_outgoing.is_empty()
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

    #[test]
    fn the_forms_zookeeper_accepts() {
        let m = parse_member(1, "zk-0.zk.ns.svc:2888:3888").expect("plain");
        assert_eq!(
            (m.host.as_str(), m.quorum_port, m.election_port),
            ("zk-0.zk.ns.svc", 2888, 3888)
        );
        assert_eq!((m.role, m.client), (MemberRole::Participant, None));
        let m = parse_member(2, "h:2888:3888:Observer;2181").expect("observer");
        assert_eq!(m.role, MemberRole::Observer);
        assert_eq!(m.client, Some(("0.0.0.0".into(), 2181)));
        let m = parse_member(3, "[::1]:2888:3888:participant;[::1]:2182").expect("v6");
        assert_eq!(m.host, "::1");
        assert_eq!(m.client, Some(("::1".into(), 2182)));
    }

    #[test]
    fn malformed_specs_are_refused() {
        for spec in [
            "h:2888",
            "h:2888:3888:observer:x",
            "h:2888:2888",
            "h:x:3888",
            "h:2888:3888:voter",
            "h:2888:3888;a:b:c",
            "h:2888:3888;1;2",
            "a:1:2|b:1:2",
            "[::1:2888:3888",
            ":2888:3888",
        ] {
            assert!(parse_member(7, spec).is_err(), "{spec}");
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
        assert_eq!(Membership::parse(&text), Ok(ms));
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
        assert_eq!(ChangeContext::decode(&ctx.encode()), Ok(ctx));
        assert!(ChangeContext::decode(b"voters=1").is_err());
    }
}

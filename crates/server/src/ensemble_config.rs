//! The ensemble as zoo.cfg describes it: `server.N` lines, `myid`,
//! `peerType`, `standaloneEnabled`, `initLimit` and `syncLimit`, read with
//! the rules of Apache ZooKeeper 3.8 (`QuorumPeer.QuorumServer`,
//! `QuorumPeerConfig`).
//!
//! `server.N=host:quorumPort:electionPort[:participant|observer][;[clientAddress:]clientPort]`
//!
//! Host names are kept as written: they are resolved on every connection
//! attempt, because in Kubernetes a peer's StatefulSet DNS name resolves
//! only once its pod exists.

use crate::config::{Config, ConfigError, ServerLine};

pub use consensus::membership::{Member, MemberRole};

/// What zoo.cfg asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// No ensemble: no `server.N` lines, or one participant with
    /// `standaloneEnabled=true` (ZooKeeper's rule, kept for HBase-style
    /// configs).
    Standalone,
    Ensemble(Ensemble),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensemble {
    /// This server's id (`myid`).
    pub my_id: u64,
    pub members: Vec<Member>,
    /// Ticks a follower may take to connect and catch up with a leader.
    pub init_limit: u32,
    /// Ticks a follower may fall behind, or go unheard from, before it is
    /// dropped (and the election timeout a follower uses to give up on a
    /// silent leader).
    pub sync_limit: u32,
    /// Warnings to log once at start (as ZooKeeper logs them).
    pub warnings: Vec<String>,
}

impl Ensemble {
    pub fn me(&self) -> Option<&Member> {
        self.members.iter().find(|m| m.id == self.my_id)
    }

    pub fn voters(&self) -> impl Iterator<Item = &Member> {
        self.members
            .iter()
            .filter(|m| m.role == MemberRole::Participant)
    }

    pub fn observers(&self) -> impl Iterator<Item = &Member> {
        self.members
            .iter()
            .filter(|m| m.role == MemberRole::Observer)
    }
}

fn bad(line: &ServerLine, reason: impl Into<String>) -> ConfigError {
    ConfigError::BadValue {
        key: format!("server.{}", line.id),
        value: line.spec.clone(),
        reason: reason.into(),
    }
}

/// Parses one `server.N` value (`consensus::membership::parse_member`),
/// naming the key in the error.
pub fn parse_member(line: &ServerLine) -> Result<Member, ConfigError> {
    consensus::membership::parse_member(line.id, &line.spec).map_err(|e| bad(line, e.reason))
}

/// Decides the mode from zoo.cfg and `myid`, refusing what ZooKeeper 3.8
/// refuses and warning where it warns.
pub fn mode(config: &Config) -> Result<Mode, ConfigError> {
    let mut members = Vec::with_capacity(config.servers.len());
    for line in &config.servers {
        if members.iter().any(|m: &Member| m.id == line.id) {
            return Err(bad(line, "server id given twice"));
        }
        members.push(parse_member(line)?);
    }
    members.sort_by_key(|m| m.id);
    let participants = members
        .iter()
        .filter(|m| m.role == MemberRole::Participant)
        .count();
    let observers = members.len() - participants;
    if participants == 0 {
        if !config.standalone_enabled {
            return Err(ConfigError::Invalid(
                "standaloneEnabled=false needs at least one participant in the server.N lines"
                    .into(),
            ));
        }
        if observers > 0 {
            return Err(ConfigError::Invalid(
                "observers without participants is an invalid configuration".into(),
            ));
        }
        return Ok(Mode::Standalone);
    }
    if participants == 1 && config.standalone_enabled {
        if observers > 0 {
            return Err(ConfigError::Invalid(
                "observers without a quorum is an invalid configuration".into(),
            ));
        }
        // ZooKeeper logs this as an error and runs standalone.
        return Ok(Mode::Standalone);
    }
    let my_id = config.server_id.ok_or_else(|| {
        ConfigError::Invalid(format!(
            "myid file is missing: an ensemble member needs {}/myid holding its server id",
            config.data_dir.display()
        ))
    })?;
    let init_limit = config
        .init_limit
        .ok_or_else(|| ConfigError::Invalid("initLimit is not set".into()))?;
    let sync_limit = config
        .sync_limit
        .ok_or_else(|| ConfigError::Invalid("syncLimit is not set".into()))?;
    let mut warnings = Vec::new();
    if participants <= 2 {
        warnings.push("No server failure will be tolerated. You need at least 3 servers.".into());
    } else if participants % 2 == 0 {
        warnings.push("Non-optimal configuration, consider an odd number of servers.".into());
    }
    let Some(me) = members.iter().find(|m| m.id == my_id) else {
        return Err(ConfigError::Invalid(format!(
            "myid is {my_id} but there is no server.{my_id} line"
        )));
    };
    if let Some(peer_type) = config.peer_type
        && peer_type != me.role
    {
        warnings.push(format!(
            "Peer type from servers list ({:?}) doesn't match peerType ({peer_type:?}). Defaulting to servers list.",
            me.role
        ));
    }
    if let (Some((_, line_port)), Some(cfg_port)) = (&me.client, config.client_port_set)
        && *line_port != cfg_port
    {
        return Err(ConfigError::Invalid(format!(
            "the client port of this server (id = {my_id}) is {cfg_port} in clientPort but {line_port} in its server.{my_id} line"
        )));
    }
    Ok(Mode::Ensemble(Ensemble {
        my_id,
        members,
        init_limit,
        sync_limit,
        warnings,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: u64, spec: &str) -> ServerLine {
        ServerLine {
            id,
            spec: spec.into(),
        }
    }

    #[test]
    fn the_forms_zookeeper_accepts() {
        let m = parse_member(&line(1, "zk-0.zk.ns.svc:2888:3888")).expect("plain");
        assert_eq!(
            (m.host.as_str(), m.quorum_port, m.election_port),
            ("zk-0.zk.ns.svc", 2888, 3888)
        );
        assert_eq!((m.role, m.client), (MemberRole::Participant, None));

        let m = parse_member(&line(2, "h:2888:3888:Observer;2181")).expect("observer");
        assert_eq!(m.role, MemberRole::Observer);
        assert_eq!(m.client, Some(("0.0.0.0".into(), 2181)));

        let m = parse_member(&line(3, "[::1]:2888:3888:participant;[::1]:2182")).expect("v6");
        assert_eq!(m.host, "::1");
        assert_eq!(m.client, Some(("::1".into(), 2182)));

        let m = parse_member(&line(4, "h:2888:3888;127.0.0.1:2181")).expect("client address");
        assert_eq!(m.client, Some(("127.0.0.1".into(), 2181)));
    }

    #[test]
    fn malformed_lines_are_refused_with_their_key() {
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
            let err = parse_member(&line(7, spec)).expect_err(spec);
            assert!(err.to_string().starts_with("server.7"), "{spec}: {err}");
        }
    }

    fn config(text: &str) -> Config {
        let props = crate::config::parse_properties(text);
        Config::from_properties(&props).expect("valid zoo.cfg")
    }

    #[test]
    fn no_lines_or_one_participant_is_standalone() {
        assert_eq!(mode(&config("tickTime=2000")).ok(), Some(Mode::Standalone));
        assert_eq!(
            mode(&config("server.1=h:2888:3888")).ok(),
            Some(Mode::Standalone)
        );
        let err = mode(&config(
            "server.1=h:2888:3888\nserver.2=h:2889:3889:observer",
        ))
        .expect_err("observers without quorum");
        assert!(err.to_string().contains("observers"), "{err}");
    }

    #[test]
    fn an_ensemble_needs_myid_and_limits() {
        let text = "server.1=a:2888:3888\nserver.2=b:2888:3888\nserver.3=c:2888:3888";
        let err = mode(&config(text)).expect_err("no myid");
        assert!(err.to_string().contains("myid"), "{err}");
        let mut c = config(&format!("{text}\ninitLimit=10\nsyncLimit=5"));
        c.server_id = Some(4);
        assert!(
            mode(&c)
                .expect_err("not listed")
                .to_string()
                .contains("server.4")
        );
        c.server_id = Some(2);
        let Ok(Mode::Ensemble(e)) = mode(&c) else {
            panic!("an ensemble");
        };
        assert_eq!(e.my_id, 2);
        assert_eq!(e.voters().count(), 3);
        assert_eq!((e.init_limit, e.sync_limit), (10, 5));
        assert!(e.warnings.is_empty());
        let mut c = config(text);
        c.server_id = Some(1);
        assert!(
            mode(&c)
                .expect_err("no limits")
                .to_string()
                .contains("initLimit")
        );
    }

    #[test]
    fn zookeepers_warnings() {
        let mut c = config(
            "server.1=a:2888:3888\nserver.2=b:2888:3888\nserver.3=c:2888:3888\nserver.4=d:2888:3888\ninitLimit=5\nsyncLimit=2\npeerType=observer",
        );
        c.server_id = Some(1);
        let Ok(Mode::Ensemble(e)) = mode(&c) else {
            panic!("an ensemble");
        };
        assert_eq!(e.warnings.len(), 2, "{:?}", e.warnings);
        assert!(e.warnings[0].contains("odd number"));
        assert!(e.warnings[1].contains("peerType"));
    }

    #[test]
    fn standalone_disabled_keeps_one_server_an_ensemble() {
        let mut c =
            config("server.1=a:2888:3888\nstandaloneEnabled=false\ninitLimit=5\nsyncLimit=2");
        c.server_id = Some(1);
        assert!(matches!(mode(&c), Ok(Mode::Ensemble(_))));
    }

    #[test]
    fn the_client_port_must_agree() {
        let mut c = config(
            "clientPort=2181\nserver.1=a:2888:3888;2182\nserver.2=b:2888:3888\nserver.3=c:2888:3888\ninitLimit=5\nsyncLimit=2",
        );
        c.server_id = Some(1);
        assert!(
            mode(&c)
                .expect_err("2181 vs 2182")
                .to_string()
                .contains("2182")
        );
    }
}

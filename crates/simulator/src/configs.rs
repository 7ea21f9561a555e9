//! The configuration history of a run: which configuration is in force at
//! each log index, as the servers that applied the changes found it, and
//! the checks on membership that need no disks:
//!
//! - **one configuration per index**: every server that applies the change
//!   at an index ends in the same configuration;
//! - **which quorums may commit an entry** ([`Configs::committers`]), for
//!   the durable-quorum check in `checks.rs`.

use std::collections::BTreeSet;

use consensus::membership::{MemberRole, Membership};
use consensus::raft::eraftpb::ConfState;

/// A configuration: who votes and who only learns (observers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub voters: BTreeSet<u64>,
    pub learners: BTreeSet<u64>,
    /// The outgoing voters of a joint configuration. Ours never are joint
    /// (every change is one step), so a non-empty set here never equals
    /// any description a change carries: the context check catches it.
    pub outgoing: BTreeSet<u64>,
}

impl Config {
    pub fn new(
        voters: impl IntoIterator<Item = u64>,
        learners: impl IntoIterator<Item = u64>,
    ) -> Config {
        Config {
            voters: voters.into_iter().collect(),
            learners: learners.into_iter().collect(),
            outgoing: BTreeSet::new(),
        }
    }

    /// raft-rs's configuration as ours (`learners_next` only exists in a
    /// joint configuration, whose outgoing voters already tell it apart).
    pub fn of(conf: &ConfState) -> Config {
        Config {
            voters: conf.voters.iter().copied().collect(),
            learners: conf.learners.iter().copied().collect(),
            outgoing: conf.voters_outgoing.iter().copied().collect(),
        }
    }

    pub fn to_conf_state(&self) -> ConfState {
        ConfState::from((
            self.voters.iter().copied().collect::<Vec<u64>>(),
            self.learners.iter().copied().collect::<Vec<u64>>(),
        ))
    }

    pub fn is_voter(&self, id: u64) -> bool {
        self.voters.contains(&id) || self.outgoing.contains(&id)
    }

    pub fn contains(&self, id: u64) -> bool {
        self.is_voter(id) || self.learners.contains(&id)
    }

    pub fn is_empty(&self) -> bool {
        self.voters.is_empty() && self.learners.is_empty() && self.outgoing.is_empty()
    }

    /// Whether `holders` include a majority of the voters (of both halves,
    /// were the configuration joint). Learners never count.
    pub fn is_quorum(&self, holders: &BTreeSet<u64>) -> bool {
        let majority = |voters: &BTreeSet<u64>| {
            voters.is_empty() || voters.intersection(holders).count() * 2 > voters.len()
        };
        !self.voters.is_empty() && majority(&self.voters) && majority(&self.outgoing)
    }

    /// A committed membership's configuration.
    pub fn of_membership(m: &Membership) -> Config {
        Config::new(
            m.members
                .iter()
                .filter(|x| x.role == MemberRole::Participant)
                .map(|x| x.id),
            m.members
                .iter()
                .filter(|x| x.role == MemberRole::Observer)
                .map(|x| x.id),
        )
    }
}

impl std::fmt::Display for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "voters {:?} learners {:?}", self.voters, self.learners)?;
        if !self.outgoing.is_empty() {
            write!(f, " outgoing {:?}", self.outgoing)?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
pub struct Configs {
    /// (index, the configuration from that index on), in index order: the
    /// initial one at the bootstrap index, then one per applied change. A
    /// short list, looked up from its end (it is read after every event).
    at: Vec<(u64, Config)>,
    bootstrap: u64,
}

impl Configs {
    /// The servers start in `initial` with their logs' snapshot point at
    /// `bootstrap` (its entries, if any, were never replicated).
    pub fn new(bootstrap: u64, initial: Config) -> Configs {
        Configs {
            at: vec![(bootstrap, initial)],
            bootstrap,
        }
    }

    /// The configuration in force once every entry up to `index` is
    /// applied; empty before the bootstrap point (a joiner that has
    /// nothing yet).
    pub fn at(&self, index: u64) -> Config {
        self.entry_at(index)
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    }

    /// Whether `id` votes in the configuration in force at `index`.
    pub fn is_voter_at(&self, index: u64, id: u64) -> bool {
        self.entry_at(index).is_some_and(|(_, c)| c.is_voter(id))
    }

    fn entry_at(&self, index: u64) -> Option<(u64, &Config)> {
        self.at
            .iter()
            .rev()
            .find(|(from, _)| *from <= index)
            .map(|(from, c)| (*from, c))
    }

    /// Whether `running` is the configuration in force at `applied`, or
    /// one a change committed after it made (a server stores a change's
    /// configuration before the apply batch of the change, so a crash
    /// between the two restarts it with a committed change not yet
    /// applied, which raft-rs hands over again).
    pub fn may_run(&self, applied: u64, running: &Config) -> bool {
        self.at(applied) == *running
            || self
                .at
                .iter()
                .any(|(from, c)| *from > applied && c == running)
    }

    /// The latest configuration applied anywhere.
    pub fn latest(&self) -> Config {
        self.at.last().map(|(_, c)| c.clone()).unwrap_or_default()
    }

    /// Membership changes applied so far (by anyone).
    pub fn changes(&self) -> usize {
        self.at.len() - 1
    }

    /// Servers that were members once and are not in the latest
    /// configuration.
    pub fn left(&self) -> usize {
        let Some((_, last)) = self.at.last() else {
            return 0;
        };
        let mut ever = std::collections::BTreeSet::new();
        for (_, c) in &self.at {
            ever.extend(c.voters.iter().chain(&c.learners));
        }
        ever.iter().filter(|&&id| !last.contains(id)).count()
    }

    /// Server `id` applied the change at `index`, which reached
    /// `reached`.
    pub fn applied(&mut self, id: u64, index: u64, reached: Config) -> Result<(), String> {
        match self.at.iter().find(|(from, _)| *from == index) {
            Some((_, first)) if *first != reached => Err(format!(
                "server {id} reached {reached} at {index}, where {first} was reached before"
            )),
            Some(_) => Ok(()),
            None if index <= self.bootstrap => Err(format!(
                "server {id} applied a membership change at {index}, at or before the bootstrap point {}",
                self.bootstrap
            )),
            None => {
                let at = self.at.partition_point(|(from, _)| *from < index);
                self.at.insert(at, (index, reached));
                Ok(())
            }
        }
    }

    /// The configurations a quorum of which may have committed the entry
    /// at `index`: the one in force before it (for a membership change,
    /// only that one: a change is committed by the configuration it
    /// changes), or, for any other entry, also the one before the last
    /// change (a leader commits entries after a change together with it,
    /// before it applies the change and switches).
    pub fn committers(&self, index: u64, change: bool) -> Vec<(u64, &Config)> {
        let Some((from, config)) = self.entry_at(index.saturating_sub(1)) else {
            return Vec::new();
        };
        let mut out = vec![(from, config)];
        if !change
            && from > self.bootstrap
            && let Some(before) = self.entry_at(from - 1)
        {
            out.push(before);
        }
        out
    }
}

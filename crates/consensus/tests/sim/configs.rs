//! The configuration history of a run: which configuration is in force at
//! each log index, as the servers that applied the changes found it, and
//! the checks on membership that need no disks:
//!
//! - **one configuration per index**: every server that applies the change
//!   at an index ends in the same configuration, and a snapshot carries
//!   the configuration in force at its index;
//! - **the change is what it says**: the configuration raft-rs reaches by
//!   applying a change is the one the change's context describes (the
//!   server fail-stops otherwise), which also rules out joint
//!   configurations and changes replayed onto another base;
//! - **which quorums may commit an entry** ([`Configs::committers`]), for
//!   the durable-quorum check in `cluster.rs`.

use consensus::raft::eraftpb::ConfState;

use crate::sim::membership::Config;

#[derive(Debug, Default)]
pub(crate) struct Configs {
    /// (index, the configuration from that index on), in index order: the
    /// initial one at the bootstrap index, then one per applied change. A
    /// short list, looked up from its end (it is read after every event).
    at: Vec<(u64, Config)>,
    bootstrap: u64,
}

impl Configs {
    /// The servers start in `initial` with their logs' snapshot point at
    /// `bootstrap` (its entries, if any, were never replicated).
    pub(crate) fn new(bootstrap: u64, initial: Config) -> Configs {
        Configs {
            at: vec![(bootstrap, initial)],
            bootstrap,
        }
    }

    /// The configuration in force once every entry up to `index` is
    /// applied; empty before the bootstrap point (a joiner that has
    /// nothing yet).
    pub(crate) fn at(&self, index: u64) -> Config {
        self.entry_at(index)
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    }

    /// Whether `id` votes in the configuration in force at `index`.
    pub(crate) fn is_voter_at(&self, index: u64, id: u64) -> bool {
        self.entry_at(index).is_some_and(|(_, c)| c.is_voter(id))
    }

    fn entry_at(&self, index: u64) -> Option<(u64, &Config)> {
        self.at
            .iter()
            .rev()
            .find(|(from, _)| *from <= index)
            .map(|(from, c)| (*from, c))
    }

    /// Membership changes applied so far (by anyone).
    pub(crate) fn changes(&self) -> usize {
        self.at.len() - 1
    }

    /// Servers that were members once and are not in the latest
    /// configuration.
    pub(crate) fn left(&self) -> usize {
        let Some((_, last)) = self.at.last() else {
            return 0;
        };
        let mut ever = std::collections::BTreeSet::new();
        for (_, c) in &self.at {
            ever.extend(c.voters.iter().chain(&c.learners));
        }
        ever.iter().filter(|&&id| !last.contains(id)).count()
    }

    /// Server `id` applied the change at `index`, which raft-rs says led
    /// to `conf` and whose context was `context`.
    pub(crate) fn applied(
        &mut self,
        id: u64,
        index: u64,
        conf: &ConfState,
        context: &[u8],
    ) -> Result<(), String> {
        let reached = Config::of(conf);
        let described = Config::decode(context).map_err(|e| {
            format!("server {id} applied a membership change at {index} without a description: {e}")
        })?;
        if reached != described {
            return Err(format!(
                "server {id} applied the membership change at {index}: raft-rs reached {reached}, the change describes {described}"
            ));
        }
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

    /// Server `id` installed a snapshot at `index` carrying `conf`.
    pub(crate) fn installed(&self, id: u64, index: u64, conf: &ConfState) -> Result<(), String> {
        let carried = Config::of(conf);
        let in_force = self.at(index);
        if carried != in_force {
            return Err(format!(
                "server {id} installed a snapshot at {index} carrying {carried}, but {in_force} was in force there"
            ));
        }
        Ok(())
    }

    /// The configurations a quorum of which may have committed the entry
    /// at `index`: the one in force before it (for a membership change,
    /// only that one: a change is committed by the configuration it
    /// changes), or, for any other entry, also the one before the last
    /// change (a leader commits entries after a change together with it,
    /// before it applies the change and switches).
    pub(crate) fn committers(&self, index: u64, change: bool) -> Vec<(u64, &Config)> {
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

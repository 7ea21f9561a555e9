//! What must hold after every event, whatever the faults:
//!
//! - **one leader per term** (election safety);
//! - **one history**: every server applies, at each index, the same entry
//!   with the same term and zxid as every other server ever did (state
//!   machine safety; with crashes and lost disks it also means no
//!   committed entry is lost and replaced);
//! - **zxids** increase strictly along each server's applied sequence, and
//!   each server applies index after index (a restart resumes where its
//!   store's applied state is, a snapshot jumps);
//! - **committed means durable on a quorum**: when an entry is first
//!   applied anywhere (the leader applies as soon as it commits), the
//!   synced stores of a majority of the voters of a configuration that may
//!   have committed it hold it — learners, joiners and members taking their
//!   state back after a lost disk count only for what they hold;
//! - the configuration checks (`configs.rs`): one configuration per index,
//!   each change reaching what it describes, only voters campaigning or
//!   leading, raft-rs running the configuration in force at what the
//!   server applied, one change at a time on a leader;
//! - a server without its state (discovering, joining, restoring) grants
//!   no vote.
//!
//! Client histories are checked for linearizability separately
//! (`workload.rs`, with `lincheck`).

use std::collections::{BTreeMap, BTreeSet};

use crate::configs::{Config, Configs};

/// An entry as a server applied it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedEntry {
    pub index: u64,
    pub term: u64,
    pub zxid: i64,
    pub digest: u64,
}

#[derive(Debug, Default)]
pub struct Checks {
    leaders: BTreeMap<u64, u64>,
    /// index → the entry first applied there, by any server.
    committed: BTreeMap<u64, AppliedEntry>,
    /// server → the last entry it applied (index, zxid), or where it
    /// resumed.
    last: BTreeMap<u64, (u64, i64)>,
    pub configs: Configs,
    /// Entries checked (applied by some server), for the run's summary.
    pub applied_entries: u64,
}

impl Checks {
    pub fn new(configs: Configs) -> Checks {
        Checks {
            configs,
            ..Checks::default()
        }
    }

    pub fn leader(&mut self, id: u64, term: u64) -> Result<(), String> {
        match self.leaders.insert(term, id) {
            Some(other) if other != id => Err(format!(
                "two leaders in term {term}: servers {other} and {id}"
            )),
            _ => Ok(()),
        }
    }

    /// Server `id` resumes at `index` (a start from its store, or a
    /// snapshot installed).
    pub fn resumed(&mut self, id: u64, index: u64, zxid: i64) {
        self.last.insert(id, (index, zxid));
    }

    /// Server `id` applies `entry`; `holders` says which servers' synced
    /// stores hold an entry.
    pub fn applied(
        &mut self,
        id: u64,
        entry: AppliedEntry,
        change: bool,
        holders: &dyn Fn(u64, u64) -> BTreeSet<u64>,
    ) -> Result<(), String> {
        if let Some(&(last_index, last_zxid)) = self.last.get(&id) {
            if entry.index != last_index + 1 {
                return Err(format!(
                    "server {id} applied {} after {last_index}",
                    entry.index
                ));
            }
            if entry.zxid <= last_zxid {
                return Err(format!(
                    "server {id}: zxid {:#x} at {} after {last_zxid:#x} at {last_index}",
                    entry.zxid, entry.index
                ));
            }
        }
        self.last.insert(id, (entry.index, entry.zxid));
        match self.committed.get(&entry.index) {
            Some(first) if *first != entry => Err(format!(
                "server {id} applied {entry:?} at index {}, but {first:?} was applied there before",
                entry.index
            )),
            Some(_) => Ok(()),
            None => {
                self.held_by_quorum(id, &entry, change, holders)?;
                self.committed.insert(entry.index, entry);
                self.applied_entries += 1;
                Ok(())
            }
        }
    }

    fn held_by_quorum(
        &self,
        id: u64,
        entry: &AppliedEntry,
        change: bool,
        holders: &dyn Fn(u64, u64) -> BTreeSet<u64>,
    ) -> Result<(), String> {
        let holders = holders(entry.index, entry.term);
        let committers = self.configs.committers(entry.index, change);
        if committers.iter().any(|(_, c)| c.is_quorum(&holders)) {
            return Ok(());
        }
        let configs: Vec<String> = committers
            .iter()
            .map(|(from, c)| format!("{c} (in force from index {from})"))
            .collect();
        Err(format!(
            "server {id} applied {}{entry:?}, which only {holders:?} hold durably, no quorum of {}: it was never committed",
            if change { "the membership change " } else { "" },
            configs.join(" or ")
        ))
    }

    /// The entry first applied at `index`, if any.
    pub fn at(&self, index: u64) -> Option<&AppliedEntry> {
        self.committed.get(&index)
    }

    pub fn config_at(&self, index: u64) -> Config {
        self.configs.at(index)
    }
}

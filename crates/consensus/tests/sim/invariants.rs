//! What must hold after every event, whatever the faults:
//!
//! - **one leader per term** (election safety);
//! - **one history**: every server applies, at each index, the same entry
//!   with the same term and zxid as every other server ever did (state
//!   machine safety; with crashes it also means no committed entry is lost
//!   and replaced);
//! - **zxids** increase strictly along each server's applied sequence, and
//!   a proposal that commits carries the zxid the leader predicted for it;
//! - **no gaps**: each server applies index after index;
//! - a `sync` (ReadIndex) answered with index R covers every write
//!   acknowledged before the sync was asked: R is at least their index, so
//!   a read after the sync sees them (linearizable sync);
//! - after the faults stop and the ensemble settles, every member holds
//!   every write a leader acknowledged (applied and would answer).
//!
//! The membership checks live in `configs.rs` (one configuration per
//! index, each change reaching what it describes, snapshots carrying the
//! configuration in force) and, since they need the disks and the
//! servers, in `cluster.rs`:
//!
//! - **committed means durable on a quorum**: whenever any server applies
//!   an entry, the synced logs of a majority of the voters of a
//!   configuration that may have committed it hold it (a membership
//!   change: the configuration it changes; learners and joiners not yet
//!   promoted never count), whatever commit index raft-rs reports;
//! - **only voters campaign or win**: a server that is an observer, a
//!   joiner or demoted in the configuration in force at what it applied
//!   never campaigns, and never becomes leader;
//! - **one membership change at a time**: a leader's log never holds more
//!   than one change past what it applied;
//! - **the configuration raft-rs runs** is the one in force at what the
//!   server applied (after restarts too).

use std::collections::BTreeMap;

use consensus::Proposed;

use crate::sim::disk::AppliedEntry;

#[derive(Debug, Default)]
pub(crate) struct History {
    leaders: BTreeMap<u64, u64>,
    /// index → the entry first applied there, by any server.
    committed: BTreeMap<u64, AppliedEntry>,
    /// command → (proposing server, predicted position).
    proposals: BTreeMap<Vec<u8>, (u64, Proposed)>,
    /// index → command, for commands applied by the server that proposed
    /// them (it answers its client then).
    acked: BTreeMap<u64, Vec<u8>>,
    /// Syncs answered and checked.
    syncs: u64,
}

impl History {
    pub(crate) fn leader(&mut self, id: u64, term: u64) -> Result<(), String> {
        match self.leaders.insert(term, id) {
            Some(other) if other != id => Err(format!(
                "two leaders in term {term}: servers {other} and {id}"
            )),
            _ => Ok(()),
        }
    }

    pub(crate) fn proposed(&mut self, id: u64, data: Vec<u8>, at: Proposed) -> Result<(), String> {
        if self.proposals.insert(data.clone(), (id, at)).is_some() {
            return Err(format!("command {data:?} proposed twice"));
        }
        Ok(())
    }

    /// Server `id`, having applied `before`, applies `entry`.
    pub(crate) fn applied(
        &mut self,
        id: u64,
        before: &[AppliedEntry],
        entry: &AppliedEntry,
    ) -> Result<(), String> {
        if let Some(last) = before.last() {
            if entry.index != last.index + 1 {
                return Err(format!(
                    "server {id} applied {} after {}",
                    entry.index, last.index
                ));
            }
            if entry.zxid <= last.zxid {
                return Err(format!(
                    "server {id}: zxid {:#x} at {} after {:#x} at {}",
                    entry.zxid, entry.index, last.zxid, last.index
                ));
            }
        }
        match self.committed.get(&entry.index) {
            Some(first) if first != entry => {
                return Err(format!(
                    "server {id} applied {entry:?} at index {}, but {first:?} was applied there before",
                    entry.index
                ));
            }
            Some(_) => {}
            None => {
                self.committed.insert(entry.index, entry.clone());
            }
        }
        if let Some((proposer, at)) = self.proposals.get(&entry.data) {
            if at.index != entry.index || at.zxid != entry.zxid {
                return Err(format!(
                    "command {:?} was predicted at index {} zxid {:#x}, applied at {} zxid {:#x}",
                    entry.data, at.index, at.zxid, entry.index, entry.zxid
                ));
            }
            if *proposer == id {
                self.acked.insert(entry.index, entry.data.clone());
            }
        }
        Ok(())
    }

    /// After settling: `applied` holds every acknowledged command where it
    /// was acknowledged.
    pub(crate) fn holds_every_ack(&self, id: u64, applied: &[AppliedEntry]) -> Result<(), String> {
        let by_index: BTreeMap<u64, &AppliedEntry> = applied.iter().map(|e| (e.index, e)).collect();
        for (index, data) in &self.acked {
            match by_index.get(index) {
                Some(e) if &e.data == data => {}
                other => {
                    return Err(format!(
                        "server {id} lost acknowledged command {data:?} at {index}: has {other:?}"
                    ));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn acknowledged(&self) -> usize {
        self.acked.len()
    }

    /// The highest index of an acknowledged write so far.
    pub(crate) fn last_acknowledged(&self) -> u64 {
        self.acked.keys().next_back().copied().unwrap_or(0)
    }

    /// Server `id` answered a sync asked when `acked_before` was the last
    /// acknowledged index, with read index `index`.
    pub(crate) fn synced(&mut self, id: u64, index: u64, acked_before: u64) -> Result<(), String> {
        if index < acked_before {
            return Err(format!(
                "server {id} answered a sync with read index {index}, but index {acked_before} was acknowledged before the sync was asked"
            ));
        }
        self.syncs += 1;
        Ok(())
    }

    pub(crate) fn syncs(&self) -> u64 {
        self.syncs
    }
}

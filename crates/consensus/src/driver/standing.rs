//! What a server is in its ensemble, and how it becomes it.
//!
//! A server whose store holds its state is a **member** (or **removed**,
//! for good). A server that starts with an empty store cannot tell by
//! itself which of three things it is:
//!
//! 1. one of the servers of a brand-new ensemble, all started empty from
//!    the same zoo.cfg;
//! 2. a member that lost its disk (a Kubernetes volume gone, a pod back
//!    with the same ordinal and `myid`);
//! 3. a new server joining a running ensemble the way ZooKeeper documents
//!    it (zoo.cfg lists the current members plus itself).
//!
//! So it **discovers**: it asks the servers of its zoo.cfg what they are.
//! A server that answers with a formed ensemble (a leader has committed in
//! it) settles it: if that ensemble's committed membership holds this
//! server, this is case 2 and it is **restoring**; if not, case 3 and it is
//! **joining** (a non-voting server waiting for `reconfig`, as on
//! ZooKeeper). Only when a majority of its zoo.cfg's participants —
//! itself included — answer that they have formed nothing, from the same
//! list of participants, is it case 1, and it bootstraps. With at most one
//! lost disk that majority cannot exist beside a formed ensemble: a
//! formed ensemble's majority has stores that say so.
//!
//! A restoring member takes the ensemble's state back before it counts
//! again (Alagappan et al., "Protocol-Aware Recovery for Consensus-Based
//! Storage", FAST '18): it votes for nobody and does not campaign; it asks
//! every member to take it back (`Rejoining`), and the leader — once it has
//! committed in its own term, so that its commit index covers everything
//! ever committed — forgets what it knew of this server's log, so that it
//! counts it toward a quorum only for what it acknowledges from now on, and
//! answers with its commit index. The restoring member takes Raft messages
//! only from a leader that answered so, is caught up (by snapshot: its log
//! is empty), and once it has applied that commit index it holds
//! everything committed before it came back: it is a member again. The
//! record in its store says `restoring` meanwhile, so a crash half-way
//! keeps it from voting.

use std::collections::{BTreeMap, BTreeSet};

use raft::eraftpb::Snapshot;

use super::io::{LogWriter, StateMachine, Transport};
use super::notice::{self, Configured, Notice};
use super::record::{MembershipRecord, StoredConf};
use super::{BOOTSTRAP_INDEX, BOOTSTRAP_TERM, Driver, DriverConfig, DriverError, StoredState};
use crate::membership::{Member, Membership, member_line};
use crate::zxid::make_zxid;

/// What a server is, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandingKind {
    Discovering,
    Joining,
    Restoring,
    Member,
    Removed,
}

#[derive(Debug)]
pub(super) enum Standing {
    Discovering(Discovery),
    Joining(Joining),
    Restoring(Restore),
    Member,
    Removed,
}

#[derive(Debug, Default)]
pub(super) struct Discovery {
    /// Servers that answered they have formed nothing, with the servers
    /// of their zoo.cfg.
    unformed: BTreeMap<u64, Configured>,
    /// Why discovery cannot go on (another server has this id), once
    /// logged.
    blocked: Option<String>,
    /// Servers listing other participants than this one, as last logged.
    disagreeing: Vec<u64>,
    /// Servers of this server's zoo.cfg that answered that the ensemble
    /// formed from it but never committed anything (the static membership,
    /// unconfirmed): their term and last log index.
    formed_static: BTreeMap<u64, (u64, u64)>,
}

/// A server with no state waiting to be shown a member (by discovery).
#[derive(Debug, Default)]
pub(super) struct Joining {
    /// Only with `DriverFaults::join_on_empty_heartbeat`: a heartbeat with
    /// commit 0 was taken as the leader knowing this server as new.
    pub(super) taken_as_new: bool,
}

#[derive(Debug)]
pub(super) struct Restore {
    /// Names this attempt, so a leader forgets this server's progress once
    /// per attempt however often it is asked.
    pub(super) nonce: u64,
    /// (leader, term) pairs that took this server back.
    pub(super) accepted: BTreeSet<(u64, u64)>,
    /// The commit index of the first leader that took it back: everything
    /// committed before it came back.
    pub(super) target: Option<u64>,
    /// When (in ticks) a leader that reached this server was last asked
    /// directly.
    pub(super) asked: BTreeMap<u64, u64>,
}

/// Whether the log, past what is applied, holds a membership change that
/// has `my_id` in it: a server removed and added back, which crashed before
/// it applied (or knew committed) the change that took it back. It starts
/// removed — serving nobody, voting — and is a member again once it
/// applies that change, if it was committed.
fn log_adds_back(stored: &StoredState, my_id: u64) -> bool {
    use protobuf::Message as _;
    use raft::eraftpb::{ConfChangeV2, EntryType};
    stored
        .entries
        .iter()
        .filter(|e| e.index > stored.applied_index)
        .filter(|e| e.get_entry_type() == EntryType::EntryConfChangeV2)
        .filter_map(|e| ConfChangeV2::parse_from_bytes(&e.data).ok())
        .filter_map(|cc| crate::membership::ChangeContext::decode(&cc.context).ok())
        .any(|ctx| ctx.members.iter().any(|m| m.id == my_id))
}

impl Standing {
    /// What the store says this server is, refusing what it must not run
    /// as.
    pub(super) fn at_start(
        my_id: u64,
        stored: &StoredState,
        config: &DriverConfig,
        disk: &mut dyn LogWriter,
    ) -> Result<Standing, DriverError> {
        match &stored.record {
            Some(MembershipRecord::Removed { version }) => {
                // Added back under the same id after the removal (the
                // applied tree holds a newer membership with it): the
                // record's rewrite may not have reached the disk.
                let Some(committed) = stored
                    .committed
                    .as_ref()
                    .filter(|c| c.contains(my_id) && c.version > *version)
                else {
                    if log_adds_back(stored, my_id) {
                        tracing::warn!(
                            id = my_id,
                            "this server was removed, but its log holds a change that adds it \
                             back: it serves no clients until it applies that change"
                        );
                        return Ok(Standing::Removed);
                    }
                    return Err(DriverError::Removed {
                        id: my_id,
                        version: *version,
                    });
                };
                disk.set_membership(&MembershipRecord::Member(StoredConf::new(
                    &committed.conf_state(),
                    my_id,
                )));
            }
            Some(MembershipRecord::Recovering { survivor }) => {
                return Err(DriverError::RecoveryInterrupted {
                    survivor: survivor.clone(),
                });
            }
            Some(MembershipRecord::Unreadable(text)) => {
                return Err(DriverError::UnreadableRecord(text.clone()));
            }
            Some(record) => {
                if let Some(stored) = record.server()
                    && stored != my_id
                {
                    return Err(DriverError::WrongServer {
                        stored,
                        configured: my_id,
                    });
                }
            }
            None => {}
        }
        if let Some(committed) = &stored.committed
            && !committed.contains(my_id)
            && !matches!(stored.record, Some(MembershipRecord::Joining))
        {
            if log_adds_back(stored, my_id) {
                tracing::warn!(
                    id = my_id,
                    "this server was removed, but its log holds a change that adds it back: it \
                     serves no clients until it applies that change"
                );
                return Ok(Standing::Removed);
            }
            return Err(DriverError::Removed {
                id: my_id,
                version: committed.version,
            });
        }
        Ok(match &stored.record {
            None if config.join => {
                disk.set_membership(&MembershipRecord::Joining);
                disk.sync_now()?;
                Standing::Joining(Joining::default())
            }
            None => Standing::Discovering(Discovery::default()),
            Some(MembershipRecord::Joining) => Standing::Joining(Joining::default()),
            // The nonce is drawn once the driver's random source exists
            // (`Standing::reseed`).
            Some(MembershipRecord::Restoring(_)) => Standing::Restoring(Restore {
                nonce: 0,
                accepted: BTreeSet::new(),
                target: None,
                asked: BTreeMap::new(),
            }),
            Some(_) => Standing::Member,
        })
    }

    pub(super) fn kind(&self) -> StandingKind {
        match self {
            Standing::Discovering(_) => StandingKind::Discovering,
            Standing::Joining(_) => StandingKind::Joining,
            Standing::Restoring(_) => StandingKind::Restoring,
            Standing::Member => StandingKind::Member,
            Standing::Removed => StandingKind::Removed,
        }
    }

    pub(super) fn is_member(&self) -> bool {
        matches!(self, Standing::Member)
    }

    pub(super) fn is_joining(&self) -> bool {
        matches!(self, Standing::Joining(_))
    }

    pub(super) fn is_restoring(&self) -> bool {
        matches!(self, Standing::Restoring(_))
    }

    pub(super) fn is_removed(&self) -> bool {
        matches!(self, Standing::Removed)
    }

    /// Only a member with its state campaigns (a joiner has no vote
    /// either: raft-rs does not make a server of an empty configuration
    /// campaign, but a restoring member is in its configuration).
    pub(super) fn may_campaign(&self, faults: &super::DriverFaults) -> bool {
        matches!(self, Standing::Member | Standing::Joining(_))
            || (faults.vote_while_restoring && matches!(self, Standing::Restoring(_)))
    }

    /// A new restore attempt's nonce.
    pub(super) fn reseed(&mut self, nonce: u64) {
        if let Standing::Restoring(restore) = self {
            restore.nonce = nonce;
        }
    }

    pub(super) fn joined(&mut self) {
        *self = Standing::Member;
    }

    pub(super) fn removed(&mut self) {
        *self = Standing::Removed;
    }
}

impl<W, T: Transport, L: LogWriter> Driver<W, T, L> {
    /// Every few ticks: a server that discovers asks its zoo.cfg's
    /// servers; a joiner keeps asking (the answer tells it once it is a
    /// member); a restoring member asks to be taken back.
    pub(super) fn standing_tick(&mut self) {
        match &self.standing {
            Standing::Discovering(_) | Standing::Joining(_) => {
                let me = self.config.configured.iter().find(|m| m.id == self.my_id);
                let notice = Notice::Discover {
                    me: me.cloned(),
                    configured: Configured::of(&self.config.configured),
                };
                let mut asked: BTreeSet<u64> =
                    self.config.configured.iter().map(|m| m.id).collect();
                asked.extend(self.membership.members.iter().map(|m| m.id));
                asked.remove(&self.my_id);
                tracing::debug!(?asked, "asking what the ensemble is");
                for id in asked {
                    self.notify(id, &notice);
                }
            }
            Standing::Restoring(restore) => {
                let notice = Notice::Rejoining {
                    nonce: restore.nonce,
                };
                let members: Vec<u64> = self
                    .membership
                    .members
                    .iter()
                    .map(|m| m.id)
                    .filter(|&id| id != self.my_id)
                    .collect();
                for id in members {
                    self.notify(id, &notice);
                }
            }
            Standing::Member | Standing::Removed => {}
        }
    }

    /// This server as it answers discovery.
    fn my_standing(&self) -> notice::Standing {
        let configured = Configured::of(&self.config.configured);
        let known = |m: &Membership| Some(m.clone());
        match &self.standing {
            Standing::Discovering(_) => notice::Standing {
                formed: false,
                term: 0,
                last_index: 0,
                membership: None,
                configured,
                conflict: None,
            },
            Standing::Member => {
                let formed = self.membership.version != 0
                    || self.node.term() > BOOTSTRAP_TERM
                    || self.applied_index > BOOTSTRAP_INDEX;
                notice::Standing {
                    formed,
                    term: self.node.term(),
                    last_index: self.node.last_index(),
                    membership: if formed {
                        known(&self.membership)
                    } else {
                        None
                    },
                    // Bootstrapped, nothing committed yet: the list it
                    // bootstrapped from, not its zoo.cfg, which may be
                    // stale (a server that forms beside it must form the
                    // same membership).
                    configured: if formed {
                        configured
                    } else {
                        Configured::of(&self.membership.members)
                    },
                    conflict: None,
                }
            }
            Standing::Joining(_) | Standing::Restoring(_) | Standing::Removed => notice::Standing {
                formed: true,
                term: self.node.term(),
                last_index: self.node.last_index(),
                membership: (self.membership.version != 0).then(|| self.membership.clone()),
                configured,
                conflict: None,
            },
        }
    }

    /// Server `from` asks what this one is. Anyone naming this ensemble
    /// is answered; one that claims this server's own id is told so, and
    /// must not go on.
    pub(super) fn discovered_by(&mut self, from: u64, me: Option<Member>, _configured: Configured) {
        tracing::debug!(from, me = ?me, "discovery asked");
        let mut reply = self.my_standing();
        // Only a second server with this very id is a conflict. Addresses
        // are not compared: members may know each other by different
        // names (a proxy, NAT, `0.0.0.0` for itself, a pod's IP or its DNS
        // name).
        reply.conflict =
            (from == self.my_id).then(|| format!("server {from} is already running here"));
        self.notify(from, &Notice::DiscoverReply(reply));
    }

    /// An answer to this server's discovery (or a joiner's standing
    /// question).
    pub(super) fn discovery_reply(
        &mut self,
        from: u64,
        reply: notice::Standing,
        sm: &mut dyn StateMachine<W>,
    ) {
        tracing::debug!(from, ?reply, standing = ?self.standing.kind(), "discovery answered");
        if !matches!(
            self.standing,
            Standing::Discovering(_) | Standing::Joining(_)
        ) {
            return;
        }
        if let Some(conflict) = reply.conflict {
            if let Standing::Discovering(d) = &mut self.standing
                && d.blocked.as_deref() != Some(conflict.as_str())
            {
                tracing::error!(
                    peer = from,
                    %conflict,
                    "another server has this server's id: this one takes no part (check myid and zoo.cfg)"
                );
                d.blocked = Some(conflict);
            }
            return;
        }
        match (reply.formed, reply.membership) {
            (true, Some(formed))
                if formed.version == 0
                    && reply.configured == Configured::of(&self.config.configured)
                    && matches!(self.standing, Standing::Discovering(_)) =>
            {
                if let Standing::Discovering(d) = &mut self.standing {
                    d.formed_static.insert(from, (reply.term, reply.last_index));
                }
                self.bootstrap_late_or_restore(from, formed, sm);
            }
            (true, Some(formed)) => self.found_ensemble(from, formed),
            (true, None) => {}
            (false, _) => {
                if let Standing::Discovering(d) = &mut self.standing {
                    d.unformed.insert(from, reply.configured);
                }
                self.bootstrap_if_unformed(sm);
            }
        }
    }

    /// The ensemble formed from this server's zoo.cfg, but its static
    /// membership is not confirmed yet. If no other participant holds
    /// anything past the bootstrap point, nothing was ever committed: this
    /// server (which crashed before it bootstrapped, or lost its store
    /// before anything committed) bootstraps the same point late, rather
    /// than restoring — a restoring member votes for nobody, and members
    /// that missed their bootstrap could otherwise leave the new ensemble
    /// without a quorum that can elect anyone. It must hear from every
    /// other participant: any vote it may have cast before is in a term
    /// some candidate still holds, and it starts at the highest term it
    /// heard, having voted in it. One that holds more: restore.
    fn bootstrap_late_or_restore(
        &mut self,
        from: u64,
        formed: Membership,
        sm: &mut dyn StateMachine<W>,
    ) {
        let configured = configured_voters(&self.config);
        let Standing::Discovering(d) = &self.standing else {
            return;
        };
        // Only an ensemble formed from this very list of participants is
        // joined late; one formed from another list (this server's zoo.cfg
        // is stale, or lists a member too few) is a formed ensemble like
        // any other: restore into it if it knows this server, else wait.
        let mut formed_voters: Vec<u64> = formed
            .members
            .iter()
            .filter(|m| m.role == crate::membership::MemberRole::Participant)
            .map(|m| m.id)
            .collect();
        formed_voters.sort_unstable();
        if formed_voters != configured
            || d.formed_static
                .values()
                .any(|&(_, last)| last > BOOTSTRAP_INDEX)
        {
            return self.found_ensemble(from, formed);
        }
        let others: Vec<u64> = configured
            .iter()
            .copied()
            .filter(|&id| id != self.my_id)
            .collect();
        if !configured.contains(&self.my_id)
            || !others.iter().all(|id| d.formed_static.contains_key(id))
        {
            return;
        }
        let term = d
            .formed_static
            .values()
            .map(|&(term, _)| term)
            .max()
            .unwrap_or(BOOTSTRAP_TERM)
            .max(BOOTSTRAP_TERM);
        tracing::info!(
            term,
            "the ensemble formed from this zoo.cfg but has committed nothing yet: joining its \
             bootstrap late"
        );
        if let Err(e) = self.bootstrap_at_term(term, sm) {
            tracing::error!(error = %e, "bootstrapping failed");
        }
    }

    /// A formed ensemble answered: restore if it knows this server as a
    /// member, else wait to be added.
    fn found_ensemble(&mut self, from: u64, formed: Membership) {
        let mine = self.config.configured.iter().find(|m| m.id == self.my_id);
        match formed.get(self.my_id) {
            Some(known) => {
                if let Some(mine) = mine
                    && !known.same_server(mine)
                {
                    // Not a refusal (members may know each other by
                    // different names), but worth saying: if this server
                    // is not the one the ensemble knows, the leader never
                    // reaches it and it stays restoring.
                    tracing::warn!(
                        peer = from,
                        known = %member_line(known),
                        configured = %member_line(mine),
                        "the ensemble knows this server at another address than its zoo.cfg                          says: it is restored only if the leader reaches it there"
                    );
                }
                self.begin_restoring(formed);
            }
            None if matches!(self.standing, Standing::Discovering(_)) => {
                tracing::info!(
                    peer = from,
                    members = %formed.summary(),
                    "the ensemble exists and this server is not a member: it waits to be added \
                     (reconfig), as a non-voting server"
                );
                self.disk.set_membership(&MembershipRecord::Joining);
                self.net.set_members(&with(&formed.members, mine));
                self.membership = formed;
                self.standing = Standing::Joining(Joining::default());
            }
            None => {}
        }
    }

    /// A brand-new ensemble forms once a majority of the configured
    /// participants (this server included) answered, from the same list of
    /// participants, that they have formed nothing.
    pub(super) fn bootstrap_if_unformed(&mut self, sm: &mut dyn StateMachine<W>) {
        let mine = Configured::of(&self.config.configured);
        let configured = mine.participants.clone();
        let Standing::Discovering(d) = &mut self.standing else {
            return;
        };
        if d.blocked.is_some() {
            return;
        }
        let mut agreeing: BTreeSet<u64> = d
            .unformed
            .iter()
            .filter(|(id, theirs)| configured.contains(id) && **theirs == mine)
            .map(|(id, _)| *id)
            .collect();
        let disagreeing: Vec<u64> = d
            .unformed
            .iter()
            .filter(|(_, theirs)| **theirs != mine)
            .map(|(id, _)| *id)
            .collect();
        if !disagreeing.is_empty() && disagreeing != d.disagreeing {
            tracing::warn!(
                ?disagreeing,
                configured = ?mine,
                "servers of this new ensemble list other participants in their zoo.cfg: it forms \
                 only from identical configurations"
            );
        }
        d.disagreeing = disagreeing;
        // A server cannot vouch for itself: an empty store does not tell a
        // fresh start from a lost disk, and a server that lost its disk
        // during the first election may have voted in it. So it forms the
        // ensemble when every other participant answered, or when a
        // majority does without it.
        agreeing.remove(&self.my_id);
        let everyone = configured
            .iter()
            .all(|id| *id == self.my_id || agreeing.contains(id));
        if !everyone && agreeing.len() < configured.len() / 2 + 1 {
            return;
        }
        if let Err(e) = self.bootstrap(sm) {
            tracing::error!(error = %e, "bootstrapping failed");
        }
    }

    /// Writes the bootstrap point (the state as it is, the configured
    /// membership) and starts as a member.
    fn bootstrap(&mut self, sm: &mut dyn StateMachine<W>) -> Result<(), DriverError> {
        self.bootstrap_at_term(BOOTSTRAP_TERM, sm)
    }

    /// [`Driver::bootstrap`], starting in `term`; past the bootstrap term
    /// this server counts as having voted in it (for itself), so it never
    /// votes twice in a term it may have voted in before.
    fn bootstrap_at_term(
        &mut self,
        term: u64,
        sm: &mut dyn StateMachine<W>,
    ) -> Result<(), DriverError> {
        if self.config.faults.bootstrap_at_zero {
            return self.bootstrap_at_zero();
        }
        let conf = self.membership.conf_state();
        let zxid = make_zxid(BOOTSTRAP_TERM, 0);
        tracing::info!(
            members = %self.membership.summary(),
            "no ensemble exists yet: forming a new one"
        );
        sm.bootstrap(BOOTSTRAP_INDEX, BOOTSTRAP_TERM, zxid, &self.membership);
        self.applied_membership = Some(Membership::new(0, self.membership.members.clone()));
        let hard_state = raft::eraftpb::HardState {
            term,
            vote: if term > BOOTSTRAP_TERM { self.my_id } else { 0 },
            commit: BOOTSTRAP_INDEX,
            ..Default::default()
        };
        self.disk.set_hard_state(&hard_state);
        self.disk
            .set_membership(&MembershipRecord::Member(StoredConf::new(
                &conf, self.my_id,
            )));
        self.disk.sync_now()?;
        {
            let mut core = self.log.core();
            let mut point = Snapshot::default();
            point.mut_metadata().index = BOOTSTRAP_INDEX;
            point.mut_metadata().term = BOOTSTRAP_TERM;
            point.mut_metadata().set_conf_state(conf.clone());
            core.snapshot = point;
            core.replace_entries(Vec::new());
            core.conf_state = conf;
            core.hard_state = hard_state;
        }
        self.applied_index = BOOTSTRAP_INDEX;
        self.applied_zxid = zxid;
        self.compacted_through = BOOTSTRAP_INDEX;
        self.standing = Standing::Member;
        self.restart_node()?;
        self.standing_changed(sm);
        Ok(())
    }

    /// The broken bootstrap of `DriverFaults::bootstrap_at_zero`: the
    /// configuration alone, with the log starting at index 1.
    fn bootstrap_at_zero(&mut self) -> Result<(), DriverError> {
        let conf = self.membership.conf_state();
        self.disk
            .set_membership(&MembershipRecord::Member(StoredConf::new(
                &conf, self.my_id,
            )));
        self.disk.sync_now()?;
        self.log.core().conf_state = conf;
        self.applied_membership = Some(Membership::new(0, self.membership.members.clone()));
        self.standing = Standing::Member;
        self.restart_node()
    }

    /// This server is a member of a formed ensemble but has no state: it
    /// takes the state back before it votes again.
    fn begin_restoring(&mut self, formed: Membership) {
        let conf = self.node.conf_state();
        tracing::warn!(
            members = %formed.summary(),
            "this server's store is empty but the ensemble knows it as a member (its disk was \
             lost?): taking its state back from the leader; it votes again once it holds \
             everything committed before"
        );
        self.disk
            .set_membership(&MembershipRecord::Restoring(StoredConf::new(
                &conf, self.my_id,
            )));
        self.net.set_members(&formed.members);
        self.membership = formed;
        let nonce = self.rng.next_u64();
        self.standing = Standing::Restoring(Restore {
            nonce,
            accepted: BTreeSet::new(),
            target: None,
            asked: BTreeMap::new(),
        });
        self.standing_tick();
    }

    /// The leader takes back member `from`, which lost its store: it
    /// forgets what it knew of its log (once per attempt) and answers with
    /// its commit index, which covers everything committed so far once
    /// this leader has committed in its own term.
    pub(super) fn rejoining(&mut self, from: u64, nonce: u64) {
        if !self.is_leader() || !self.node.ready_to_propose() {
            return;
        }
        let conf = self.node.conf_state();
        if !conf.voters.contains(&from) && !conf.learners.contains(&from) {
            return;
        }
        if self.restores_accepted.get(&from) != Some(&nonce) {
            tracing::warn!(
                peer = from,
                "a member lost its store: forgetting its progress; it is caught up by snapshot \
                 and counts toward quorums only for what it acknowledges from now on"
            );
            self.node.forget_progress(from);
            self.member_applied.remove(&from);
            self.restores_accepted.insert(from, nonce);
            // Whatever image it held is gone with its store.
            self.images_out.remove(&from);
        }
        self.restoring.insert(from);
        let notice = Notice::RestoreAccepted {
            term: self.node.term(),
            target: self.node.commit_index(),
            nonce,
            membership: self.membership.clone(),
        };
        self.notify(from, &notice);
        // After the notice on the same connection: its snapshot (or
        // entries) now, not at the next heartbeat.
        self.node.send_append_now(from);
    }

    pub(super) fn restore_accepted(
        &mut self,
        from: u64,
        term: u64,
        target: u64,
        nonce: u64,
        membership: Membership,
        sm: &mut dyn StateMachine<W>,
    ) {
        let Standing::Restoring(restore) = &mut self.standing else {
            return;
        };
        if restore.nonce != nonce || !restore.accepted.insert((from, term)) {
            return;
        }
        if membership.version >= self.membership.version && membership.contains(from) {
            self.net.set_members(&membership.members);
            self.membership = membership;
        }
        tracing::info!(
            leader = from,
            term,
            target,
            "the leader takes this server back; restoring up to its commit index"
        );
        restore.target = Some(restore.target.map_or(target, |t| t.max(target)));
        self.restore_progress(sm);
    }

    /// A restoring member that has applied everything committed before it
    /// came back is a member again.
    pub(super) fn restore_progress(&mut self, sm: &mut dyn StateMachine<W>) {
        let Standing::Restoring(restore) = &self.standing else {
            return;
        };
        let Some(target) = restore.target else {
            return;
        };
        if self.applied_index < target {
            return;
        }
        // The member record is synced at once: a restore that completed
        // but is not durable would make a crash bring this server back
        // restoring, voting for nobody, and two such voters can leave an
        // ensemble without a quorum that can elect anyone.
        let conf = self.node.conf_state();
        self.standing = Standing::Member;
        self.store_conf(&conf);
        if let Err(e) = self.disk.sync_now() {
            tracing::error!(error = %e, "could not store that this server is restored; it keeps restoring");
            self.standing = Standing::Restoring(Restore {
                nonce: self.rng.next_u64(),
                accepted: BTreeSet::new(),
                target: None,
                asked: BTreeMap::new(),
            });
            return;
        }
        tracing::info!(
            applied = self.applied_index,
            target,
            "restored: this server holds everything committed before it came back, and votes again"
        );
        self.standing_changed(sm);
    }

    /// A follower says this leader remembers its log as longer than it is.
    pub(super) fn stale_progress(&mut self, from: u64, term: u64, last_index: u64) {
        if !self.is_leader() || term != self.node.term() {
            return;
        }
        let patience = self.config.election_ticks as u64;
        if self
            .stale_forgotten
            .get(&from)
            .is_some_and(|&t| self.ticks.saturating_sub(t) < patience)
        {
            return;
        }
        tracing::warn!(
            peer = from,
            last_index,
            "a follower's log is shorter than it acknowledged (a lost or rolled-back store): \
             forgetting its progress"
        );
        self.node.forget_progress(from);
        self.stale_forgotten.insert(from, self.ticks);
    }
}

fn configured_voters(config: &DriverConfig) -> Vec<u64> {
    let mut ids: Vec<u64> = config
        .configured
        .iter()
        .filter(|m| m.role == crate::membership::MemberRole::Participant)
        .map(|m| m.id)
        .collect();
    ids.sort_unstable();
    ids
}

/// `members`, with `me` added if it is not among them (a joiner keeps
/// connections to the members and learns its own address from zoo.cfg).
fn with(members: &[Member], me: Option<&Member>) -> Vec<Member> {
    let mut all = members.to_vec();
    if let Some(me) = me
        && !all.iter().any(|m| m.id == me.id)
    {
        all.push(me.clone());
    }
    all
}

//! Membership changes: ZooKeeper's `reconfig` and the admin API's
//! add/remove/promote/demote/transfer, carried out by the leader one
//! single-server Raft step at a time (see `membership.rs` for the plan).
//!
//! A change is a job on the leader. Each step is proposed only after the
//! previous one is applied; a joining participant first joins as an
//! observer and is promoted once it has caught up with the log as it was
//! committed when the promotion was due; a step that would leave fewer
//! live, caught-up participants than a quorum is not proposed, and the job
//! ends with NewConfigNoQuorum. The leader never removes itself: it hands
//! leadership to a participant that stays and passes the rest of the job
//! on.
//!
//! Every server applies a committed step the same way
//! (`membership_apply.rs`); the last step of a client's reconfig answers it
//! with the new configuration.

use consensus::raft::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2};
use consensus::{ConsensusError, Role};
use proto::{ErrorCode, Id, ReconfigRequest, Request, perms};
use tokio::sync::oneshot;
use tree::CONFIG;

use super::Processor;
use super::replication::{Proposal, ProposalKind};
use crate::ensemble_config::{Member, MemberRole};
use crate::membership::{
    ChangeContext, Membership, ReconfigError, Step, after_step, check_path, member_line, next_step,
    target_of,
};
use crate::service_message::{Forwarded, ForwardedWrite, ServiceMessage};
use crate::stats::wall_clock_ms;

/// A follower whose log is this close to the commit index counts as caught
/// up for the safety checks of a request (a healthy follower trails by the
/// entries in flight).
const CAUGHT_UP_SLACK: u64 = 1000;

/// What the admin API asks for.
#[derive(Debug, Clone)]
pub enum MembershipOp {
    Add {
        member: Member,
        expected_version: i64,
    },
    Remove {
        id: u64,
        expected_version: i64,
    },
    Promote {
        id: u64,
        expected_version: i64,
    },
    Demote {
        id: u64,
        expected_version: i64,
    },
    /// To this participant, or to the most caught-up one.
    TransferLeadership {
        to: Option<u64>,
    },
}

/// The admin API's answer.
#[derive(Debug, Clone)]
pub enum MembershipAnswer {
    /// The committed membership after the change.
    Committed(Membership),
    /// Leadership moved to this server.
    Transferred { leader: u64 },
}

pub type MembershipResult = Result<MembershipAnswer, ReconfigError>;

/// Who waits for a job's end.
#[derive(Debug)]
pub(super) enum JobAnswer {
    /// A client's reconfig: answered by the last step's apply, or by an
    /// error transaction.
    Client {
        session_id: i64,
        cxid: i32,
    },
    Admin(oneshot::Sender<MembershipResult>),
}

/// A membership change the leader is carrying out.
#[derive(Debug)]
pub(crate) struct ReconfigJob {
    answer: JobAnswer,
    target: Vec<Member>,
    /// The requester's identities (passed on with a handed-over job).
    auth: Vec<Id>,
    /// A step is proposed and not yet applied; true if it is the last.
    pub(super) in_flight: Option<bool>,
    /// Waiting for (member, since raft tick, commit index to reach).
    catching_up: Option<(u64, u64, u64)>,
    /// Handing leadership over since this raft tick.
    transferring: Option<u64>,
    /// The members when the job started.
    original: Vec<u64>,
    /// The job failed after adding observers on its way: they are being
    /// taken out again, then this error is the answer.
    rolling_back: Option<ReconfigError>,
}

/// An admin transfer of leadership waiting to happen.
#[derive(Debug)]
pub(crate) struct PendingTransfer {
    to: u64,
    since_tick: u64,
    answer: oneshot::Sender<MembershipResult>,
}

fn change_of(step: &Step, leader: u64) -> ConfChangeSingle {
    let (change_type, node_id) = match step {
        Step::AddLearner(m) | Step::Demote(m) => (ConfChangeType::AddLearnerNode, m.id),
        Step::Promote(m) => (ConfChangeType::AddNode, m.id),
        Step::Remove(id) => (ConfChangeType::RemoveNode, *id),
        // The leader is a participant: adding it again changes nothing in
        // Raft, and the entry carries the new description.
        Step::Rewrite | Step::TransferLeadership => (ConfChangeType::AddNode, leader),
    };
    let mut single = ConfChangeSingle::default();
    single.set_change_type(change_type);
    single.node_id = node_id;
    single
}

impl Processor {
    fn reconfig_deadline_ticks(&self) -> u64 {
        let init_limit = self
            .replica
            .as_ref()
            .map_or(10, |r| u64::from(r.ensemble.init_limit.max(1)));
        init_limit * u64::from(super::RAFT_TICKS_PER_TICK)
    }

    /// Whether `id` answered recently and its log is close to the commit
    /// index (the leader itself always is).
    fn live_caught_up(&self, id: u64, slack: u64) -> bool {
        let Some(replica) = self.replica.as_ref() else {
            return false;
        };
        if id == replica.my_id {
            return true;
        }
        let commit = replica.node.commit_index();
        replica.is_live(id)
            && replica
                .node
                .progress()
                .iter()
                .any(|p| p.id == id && p.matched + slack >= commit)
    }

    /// A client's reconfig reached the leader (its own or forwarded), after
    /// the leader applied its predecessors' entries. Checked in
    /// ZooKeeper's order; a refusal is an error transaction.
    pub(super) fn start_reconfig(
        &mut self,
        session_id: i64,
        cxid: i32,
        request: &ReconfigRequest,
        auth: Vec<Id>,
    ) {
        match self.check_reconfig(request, &auth) {
            Ok(target) => {
                self.begin_job(JobAnswer::Client { session_id, cxid }, target, auth);
            }
            Err(e) => {
                tracing::info!(error = %e, "reconfig refused");
                self.refuse_reconfig(session_id, cxid, e.code(), auth);
            }
        }
    }

    fn refuse_reconfig(&mut self, session_id: i64, cxid: i32, code: ErrorCode, auth: Vec<Id>) {
        self.propose(Proposal {
            kind: ProposalKind::Error(code),
            session_id,
            cxid,
            auth,
        });
    }

    fn check_reconfig(
        &self,
        request: &ReconfigRequest,
        auth: &[Id],
    ) -> Result<Vec<Member>, ReconfigError> {
        if !self.features.reconfig_enabled {
            return Err(ReconfigError::Disabled);
        }
        // The session is not checked here but by the server the client is
        // connected to: the leader may not have applied its creation yet (a
        // quorum of followers can commit it before the leader's own log is
        // synced).
        let replica = self
            .replica
            .as_ref()
            .ok_or(ReconfigError::NotLeader(None))?;
        // (A change raft-rs still has pending, such as a previous leader's,
        // or any before a new leader's first entry applies, only delays the
        // first step.)
        if replica.job.is_some() {
            return Err(ReconfigError::InProgress);
        }
        let target = target_of(&replica.membership, request, self.config.standalone_enabled)?;
        check_path(&replica.membership.members, &target, replica.my_id, &|id| {
            self.live_caught_up(id, CAUGHT_UP_SLACK)
        })?;
        let acl = self
            .tree
            .node(CONFIG)
            .map(|n| n.acl.as_ref().clone())
            .unwrap_or_default();
        tree::acl::check(&acl, perms::WRITE, auth, self.features.skip_acl)
            .map_err(|_| ReconfigError::NoAuth)?;
        Ok(target)
    }

    /// An admin API request. Answered at once when refused, else when the
    /// change is committed (or leadership moved).
    pub(super) fn membership_command(
        &mut self,
        op: MembershipOp,
        answer: oneshot::Sender<MembershipResult>,
    ) {
        match self.check_admin(&op) {
            Err(e) => {
                let _ = answer.send(Err(e));
            }
            Ok(None) => {
                let MembershipOp::TransferLeadership { to } = op else {
                    return;
                };
                self.start_transfer(to, answer);
            }
            Ok(Some(target)) => {
                self.begin_job(JobAnswer::Admin(answer), target, Vec::new());
            }
        }
    }

    /// The target of an admin change (None for a transfer).
    fn check_admin(&self, op: &MembershipOp) -> Result<Option<Vec<Member>>, ReconfigError> {
        let replica = self
            .replica
            .as_ref()
            .ok_or(ReconfigError::NotLeader(None))?;
        if !replica.is_leader() {
            return Err(ReconfigError::NotLeader(replica.role.leader));
        }
        let current = &replica.membership;
        let expected = match op {
            MembershipOp::TransferLeadership { .. } => return Ok(None),
            MembershipOp::Add {
                expected_version, ..
            }
            | MembershipOp::Remove {
                expected_version, ..
            }
            | MembershipOp::Promote {
                expected_version, ..
            }
            | MembershipOp::Demote {
                expected_version, ..
            } => *expected_version,
        };
        if expected != -1 && expected != current.version {
            return Err(ReconfigError::BadVersion {
                expected,
                actual: current.version,
            });
        }
        // (A change raft-rs still has pending, such as a previous leader's,
        // or any before a new leader's first entry applies, only delays the
        // first step.)
        if replica.job.is_some() {
            return Err(ReconfigError::InProgress);
        }
        let mut target = current.members.clone();
        let existing = |id: u64| {
            current
                .get(id)
                .cloned()
                .ok_or_else(|| ReconfigError::BadArguments(format!("server {id} is not a member")))
        };
        match op {
            MembershipOp::Add { member, .. } => {
                if current.contains(member.id) {
                    return Err(ReconfigError::BadArguments(format!(
                        "server {} is already a member",
                        member.id
                    )));
                }
                target.push(member.clone());
            }
            MembershipOp::Remove { id, .. } => {
                existing(*id)?;
                target.retain(|m| m.id != *id);
            }
            MembershipOp::Promote { id, .. } | MembershipOp::Demote { id, .. } => {
                let mut m = existing(*id)?;
                m.role = if matches!(op, MembershipOp::Promote { .. }) {
                    MemberRole::Participant
                } else {
                    MemberRole::Observer
                };
                target.retain(|t| t.id != *id);
                target.push(m);
            }
            MembershipOp::TransferLeadership { .. } => return Ok(None),
        }
        target.sort_by_key(|m| m.id);
        if let MembershipOp::Remove { id, .. } | MembershipOp::Demote { id, .. } = op
            && *id == replica.my_id
        {
            return Err(ReconfigError::RemovesLeader(*id));
        }
        let voters = target
            .iter()
            .filter(|m| m.role == MemberRole::Participant)
            .count();
        if voters == 0 || (voters < 2 && self.config.standalone_enabled) {
            return Err(ReconfigError::BadArguments(
                "the new configuration would have fewer than two participants".into(),
            ));
        }
        check_path(&current.members, &target, replica.my_id, &|id| {
            self.live_caught_up(id, CAUGHT_UP_SLACK)
        })?;
        Ok(Some(target))
    }

    fn begin_job(&mut self, answer: JobAnswer, target: Vec<Member>, auth: Vec<Id>) {
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        tracing::info!(
            target = %target.iter().map(member_line).collect::<Vec<_>>().join(", "),
            "membership change started"
        );
        replica.job = Some(ReconfigJob {
            answer,
            target,
            auth,
            in_flight: None,
            catching_up: None,
            transferring: None,
            original: replica.membership.members.iter().map(|m| m.id).collect(),
            rolling_back: None,
        });
        self.advance_reconfig();
    }

    /// Takes the job's next step if it can (on every raft tick and after
    /// every applied membership change).
    pub(super) fn advance_reconfig(&mut self) {
        let deadline = self.reconfig_deadline_ticks();
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        if !replica.is_leader() {
            return;
        }
        let Some(job) = replica.job.as_mut() else {
            return;
        };
        if job.in_flight.is_some() || replica.node.membership_pending() {
            return;
        }
        let my_id = replica.my_id;
        let ticks = replica.ticks;
        let current = replica.membership.members.clone();
        let step = next_step(&current, &job.target, my_id).unwrap_or(Step::Rewrite);
        match &step {
            Step::TransferLeadership => {
                let since = *job.transferring.get_or_insert(ticks);
                if ticks - since > deadline {
                    self.end_job(Err(ReconfigError::NoQuorum(
                        "leadership could not be handed over".into(),
                    )));
                    return;
                }
                if replica.node.transferring_to().is_some() {
                    return;
                }
                let target = job.target.clone();
                let candidate = self.transfer_candidate(&|id| {
                    target
                        .iter()
                        .any(|t| t.id == id && t.role == MemberRole::Participant)
                });
                // No candidate yet (none has applied the latest membership):
                // tried again on the next tick, as after raft-rs aborts a
                // transfer that took an election timeout.
                if let Some(to) = candidate {
                    tracing::info!(to, "handing leadership over before leaving");
                    self.hand_over(to);
                }
                return;
            }
            Step::Promote(m) => {
                let commit = replica.node.commit_index();
                let (id, since, reach) = *job.catching_up.get_or_insert((m.id, ticks, commit));
                let live = replica
                    .last_heard
                    .get(&id)
                    .is_some_and(|&t| ticks.saturating_sub(t) <= replica.election_ticks);
                let caught_up = live
                    && replica
                        .node
                        .progress()
                        .iter()
                        .any(|p| p.id == id && p.matched >= reach);
                if !caught_up {
                    if ticks - since > deadline {
                        let e = ReconfigError::NoQuorum(format!(
                            "server {id} did not catch up within initLimit"
                        ));
                        self.end_job(Err(e));
                    }
                    return;
                }
                job.catching_up = None;
            }
            _ => {}
        }
        let target = job.target.clone();
        let next = after_step(&current, &target, &step);
        let last = next == target;
        // The step itself must leave a quorum of live, caught-up voters.
        let voters: Vec<u64> = next
            .iter()
            .filter(|m| m.role == MemberRole::Participant)
            .map(|m| m.id)
            .collect();
        let live = voters
            .iter()
            .filter(|&&id| self.live_caught_up(id, CAUGHT_UP_SLACK))
            .count();
        if live < voters.len() / 2 + 1 {
            self.end_job(Err(ReconfigError::NoQuorum(format!(
                "after {step:?} only {live} of the participants {voters:?} would be live and caught up"
            ))));
            return;
        }
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        let Some(job) = replica.job.as_mut() else {
            return;
        };
        let answers = match (&job.answer, last, &job.rolling_back) {
            (JobAnswer::Client { session_id, cxid }, true, None) => Some((*session_id, *cxid)),
            _ => None,
        };
        let context = ChangeContext {
            members: next,
            answers,
            time_ms: wall_clock_ms(),
        };
        let mut change = ConfChangeV2::default();
        change.set_changes(vec![change_of(&step, my_id)].into());
        change.context = context.encode().into();
        match replica.node.propose_membership(change) {
            Ok(()) => {
                tracing::info!(?step, last, "membership step proposed");
                job.in_flight = Some(last);
            }
            // Retried on the next tick or apply.
            Err(
                ConsensusError::MembershipInProgress { .. } | ConsensusError::LeaderNotReady { .. },
            ) => {}
            Err(e) => {
                tracing::info!(error = %e, "membership step not proposed");
                self.end_job(Err(ReconfigError::NotLeader(None)));
            }
        }
    }

    /// The live, caught-up participant with the longest log among those
    /// `eligible` says may lead, that has applied the latest membership
    /// change (raft-rs will not campaign before it has).
    pub(super) fn transfer_candidate(&self, eligible: &dyn Fn(u64) -> bool) -> Option<u64> {
        let replica = self.replica.as_ref()?;
        let commit = replica.node.commit_index();
        let applied_membership = |id: u64| {
            replica
                .member_applied
                .get(&id)
                .is_some_and(|(index, _)| *index >= replica.membership_index)
        };
        replica
            .node
            .progress()
            .into_iter()
            .filter(|p| p.id != replica.my_id && !p.learner && replica.is_live(p.id))
            .filter(|p| p.matched + CAUGHT_UP_SLACK >= commit && eligible(p.id))
            .filter(|p| applied_membership(p.id))
            .max_by_key(|p| p.matched)
            .map(|p| p.id)
    }

    /// Ends this leader's job: a refusal goes to its requester. A job that
    /// failed after adding observers takes them out again first (a failed
    /// reconfig leaves the membership as it was, as far as it can).
    pub(super) fn end_job(&mut self, result: Result<(), ReconfigError>) {
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        let Some(mut job) = replica.job.take() else {
            return;
        };
        if let Err(e) = &result
            && job.rolling_back.is_none()
            && replica.is_leader()
        {
            let added: Vec<u64> = replica
                .membership
                .members
                .iter()
                .filter(|m| m.role == MemberRole::Observer && !job.original.contains(&m.id))
                .map(|m| m.id)
                .collect();
            if !added.is_empty() {
                tracing::info!(?added, error = %e, "membership change failed; removing the observers it added");
                job.target = replica
                    .membership
                    .members
                    .iter()
                    .filter(|m| !added.contains(&m.id))
                    .cloned()
                    .collect();
                job.rolling_back = Some(e.clone());
                job.catching_up = None;
                job.transferring = None;
                replica.job = Some(job);
                self.advance_reconfig();
                return;
            }
        }
        let result = match job.rolling_back.take() {
            Some(e) => Err(e),
            None => result,
        };
        let membership = replica.membership.clone();
        match (job.answer, result) {
            (JobAnswer::Admin(answer), result) => {
                let _ = answer.send(result.map(|()| MembershipAnswer::Committed(membership)));
            }
            (JobAnswer::Client { .. }, Ok(())) => {}
            (JobAnswer::Client { session_id, cxid }, Err(e)) => {
                tracing::info!(error = %e, "reconfig failed");
                if replica.is_leader() {
                    self.refuse_reconfig(session_id, cxid, e.code(), job.auth);
                } else {
                    self.fail_write(session_id, cxid);
                }
            }
        }
    }

    /// Starts a leadership transfer, telling every member first, so that
    /// the leaderless moment does not cost idle clients their connections.
    pub(super) fn hand_over(&mut self, to: u64) {
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        let notice = ServiceMessage::HandingOver { to }.encode();
        for m in replica
            .membership
            .members
            .iter()
            .filter(|m| m.id != replica.my_id)
        {
            replica.peers.send_service(m.id, notice.clone());
        }
        replica.handover_until = replica.ticks + replica.handover_ticks;
        replica.node.transfer_leader(to);
    }

    /// Admin transfer: to `to`, or to the best candidate.
    fn start_transfer(&mut self, to: Option<u64>, answer: oneshot::Sender<MembershipResult>) {
        let Some(replica) = self.replica.as_ref() else {
            let _ = answer.send(Err(ReconfigError::NotLeader(None)));
            return;
        };
        let my_id = replica.my_id;
        let to = match to {
            Some(to) if to == my_id => {
                let _ = answer.send(Ok(MembershipAnswer::Transferred { leader: my_id }));
                return;
            }
            Some(to) => {
                let voter = replica
                    .membership
                    .get(to)
                    .is_some_and(|m| m.role == MemberRole::Participant);
                if !voter {
                    let _ = answer.send(Err(ReconfigError::BadArguments(format!(
                        "server {to} is not a participant"
                    ))));
                    return;
                }
                if !self.live_caught_up(to, CAUGHT_UP_SLACK) {
                    let _ = answer.send(Err(ReconfigError::NoQuorum(format!(
                        "server {to} is not live and caught up"
                    ))));
                    return;
                }
                to
            }
            None => match self.transfer_candidate(&|_| true) {
                Some(to) => to,
                None => {
                    let _ = answer.send(Err(ReconfigError::NoQuorum(
                        "no live, caught-up participant can take over".into(),
                    )));
                    return;
                }
            },
        };
        tracing::info!(to, "transferring leadership (admin request)");
        self.hand_over(to);
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        replica.transfer = Some(PendingTransfer {
            to,
            since_tick: replica.ticks,
            answer,
        });
    }

    /// Every raft tick: a transfer that did not happen in time fails, and a
    /// client's reconfig that no leader will finish any more ends its
    /// connection.
    pub(super) fn reconfig_tick(&mut self) {
        let deadline = self.reconfig_deadline_ticks();
        let answer_timeout = std::time::Duration::from_millis(
            deadline * u64::from(self.config.tick_time_ms) / u64::from(super::RAFT_TICKS_PER_TICK)
                * 3,
        )
        .max(std::time::Duration::from_secs(30));
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        if let Some(t) = replica.transfer.as_ref()
            && replica.is_leader()
            && replica.node.transferring_to().is_none()
            && replica.ticks - t.since_tick <= deadline
        {
            // raft-rs gave up (the target had not applied the latest
            // membership, say): try again.
            let to = t.to;
            self.hand_over(to);
        }
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        if let Some(t) = replica.transfer.as_ref()
            && replica.ticks - t.since_tick > deadline
            && let Some(t) = replica.transfer.take()
        {
            let _ = t.answer.send(Err(ReconfigError::NoQuorum(format!(
                "leadership did not move to server {} in time",
                t.to
            ))));
        }
        let stale: Vec<(i64, i32)> = replica
            .awaiting
            .iter()
            .filter(|(_, w)| w.is_reconfig() && w.waited() > answer_timeout)
            .map(|(k, _)| *k)
            .collect();
        for (session_id, cxid) in stale {
            self.fail_write(session_id, cxid);
        }
        self.hand_over_if_not_participant();
        self.advance_reconfig();
    }

    /// Leadership changed: an admin transfer is answered, and a job moves
    /// on (handed to the new leader when this one left for it) or ends.
    pub(super) fn reconfig_role_changed(&mut self) {
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        let leader = replica.role.leader;
        let leads = replica.role.role == Role::Leader;
        if let Some(t) = replica.transfer.take() {
            if leader == Some(t.to) {
                let _ = t
                    .answer
                    .send(Ok(MembershipAnswer::Transferred { leader: t.to }));
            } else if leads || leader.is_none() {
                // Still leading, or the election is on: wait for its end.
                replica.transfer = Some(t);
            } else {
                let _ = t.answer.send(Err(ReconfigError::NotLeader(leader)));
            }
        }
        if leads {
            return;
        }
        if !replica.removed && !replica.joining && !replica.membership.contains(replica.my_id) {
            let version = replica.membership.version;
            self.become_removed(version);
        }
        let Some(replica) = self.replica.as_deref_mut() else {
            return;
        };
        let Some(job) = replica.job.take() else {
            return;
        };
        let my_id = replica.my_id;
        let handover = job.transferring.is_some();
        match (&job.answer, handover, leader) {
            (JobAnswer::Client { .. }, true, None) => {
                // Still looking: hand it over once a leader is known.
                replica.job = Some(job);
            }
            (JobAnswer::Client { session_id, cxid }, true, Some(new_leader))
                if new_leader != my_id =>
            {
                // The rest of the job (this server's departure) is the new
                // leader's: the same target, as a whole member list.
                let new_members = job
                    .target
                    .iter()
                    .map(member_line)
                    .collect::<Vec<_>>()
                    .join(",");
                let message = ServiceMessage::Forward(ForwardedWrite {
                    session_id: *session_id,
                    cxid: *cxid,
                    auth: job.auth.clone(),
                    write: Forwarded::Request(Request::Reconfig(ReconfigRequest {
                        joining_servers: String::new(),
                        leaving_servers: String::new(),
                        new_members,
                        cur_config_id: -1,
                    })),
                });
                tracing::info!(
                    new_leader,
                    "handing the membership change to the new leader"
                );
                replica.peers.send_service(new_leader, message.encode());
            }
            (JobAnswer::Client { session_id, cxid }, _, _) => {
                let (session_id, cxid) = (*session_id, *cxid);
                self.fail_write(session_id, cxid);
            }
            (JobAnswer::Admin(_), _, _) => {
                if let JobAnswer::Admin(answer) = job.answer {
                    let _ = answer.send(Err(ReconfigError::NotLeader(leader)));
                }
            }
        }
    }
}

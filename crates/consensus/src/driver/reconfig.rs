//! Membership changes carried out by the leader: ZooKeeper's `reconfig`
//! (checked by the state machine, which owns the ACL of
//! `/zookeeper/config`) and the admin API's add, remove, promote, demote
//! and transfer, one single-server Raft step at a time
//! (`membership::next_step` plans them).
//!
//! A change is a job on the leader. Each step is proposed only after the
//! previous one is applied; a joining participant first joins as an
//! observer and is promoted once it has caught up with the log as it was
//! committed when the promotion was due; a step that would leave fewer
//! live, caught-up participants than a quorum is not proposed, and the job
//! ends with NoQuorum. The leader never removes itself: it hands
//! leadership to a participant that stays and passes the rest of the job
//! on. Every server applies a committed step the same way (`adopt.rs`);
//! the last step of a client's reconfig answers it with the new
//! configuration.

use raft::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2};

use super::Driver;
use super::io::{LogWriter, MembershipAnswer, StateMachine, Transport};
use super::notice::{Notice, Requester};
use crate::error::ConsensusError;
use crate::membership::{
    ChangeContext, Member, MemberRole, ReconfigError, Step, after_step, check_path, member_line,
    next_step,
};
use crate::node::Role;

/// A follower whose log is this close to the commit index counts as caught
/// up for the safety checks of a request (a healthy follower trails by the
/// entries in flight).
const CAUGHT_UP_SLACK: u64 = 1000;

/// What the admin API asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// To this whole member list (what an operator plans; ZooKeeper's
    /// `reconfig -members`).
    Reach {
        members: Vec<Member>,
        expected_version: i64,
    },
}

/// Who waits for a job's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JobAnswer {
    /// A client's reconfig: answered by the last step's apply, or by an
    /// error transaction.
    Client(Requester),
    /// An admin request, by its ticket.
    Admin(u64),
}

/// A membership change the leader is carrying out.
#[derive(Debug)]
pub(super) struct ReconfigJob {
    answer: JobAnswer,
    target: Vec<Member>,
    /// A step is proposed and not yet applied; true if it is the last.
    in_flight: Option<bool>,
    /// Waiting for (member, since tick, commit index to reach).
    catching_up: Option<(u64, u64, u64)>,
    /// Handing leadership over since this tick.
    transferring: Option<u64>,
    /// The members when the job started.
    original: Vec<u64>,
    /// The job failed after adding observers on its way: they are being
    /// taken out again, then this error is the answer.
    rolling_back: Option<ReconfigError>,
}

/// An admin transfer of leadership waiting to happen.
#[derive(Debug)]
pub(super) struct PendingTransfer {
    to: u64,
    since_tick: u64,
    ticket: u64,
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

/// Every single change from `current` to `target` (what only the broken
/// job of `DriverFaults::jump_to_goal` proposes at once).
fn all_steps(current: &[Member], target: &[Member], leader: u64) -> Vec<ConfChangeSingle> {
    let mut now = current.to_vec();
    let mut out = Vec::new();
    for _ in 0..(current.len() + target.len()) * 2 + 2 {
        match next_step(&now, target, leader) {
            Some(Step::TransferLeadership) | None => break,
            Some(step) => {
                out.push(change_of(&step, leader));
                now = after_step(&now, target, &step);
            }
        }
    }
    if out.is_empty() {
        out.push(change_of(&Step::Rewrite, leader));
    }
    out
}

impl<W, T: Transport, L: LogWriter> Driver<W, T, L> {
    /// Whether `id` answered recently and its log is close to the commit
    /// index (the leader itself always is).
    fn live_caught_up(&self, id: u64, slack: u64) -> bool {
        if id == self.my_id {
            return true;
        }
        let commit = self.node.commit_index();
        self.is_live(id)
            && !self.restoring.contains(&id)
            && self
                .node
                .progress()
                .iter()
                .any(|p| p.id == id && p.matched + slack >= commit)
    }

    /// A client's reconfig reached the leader (its own or forwarded), after
    /// the leader applied its predecessors' entries, and the state machine
    /// checked it (enabled, authorized, well-formed): the driver's checks,
    /// then the job. A refusal is an error transaction.
    pub(super) fn start_reconfig(
        &mut self,
        requester: Requester,
        target: Vec<Member>,
        sm: &mut dyn StateMachine<W>,
    ) {
        let checked = if self.job.is_some() {
            Err(ReconfigError::InProgress)
        } else {
            check_path(&self.membership.members, &target, self.my_id, &|id| {
                self.live_caught_up(id, CAUGHT_UP_SLACK)
            })
        };
        match checked {
            Ok(()) => self.begin_job(JobAnswer::Client(requester), target, sm),
            Err(e) => {
                tracing::info!(error = %e, "reconfig refused");
                self.propose_refusal(requester, &e, sm);
            }
        }
    }

    /// An admin request (its answer goes to the state machine under
    /// `ticket`): refused at once, or answered when the change is
    /// committed (or leadership moved).
    pub fn membership_request(
        &mut self,
        op: MembershipOp,
        ticket: u64,
        sm: &mut dyn StateMachine<W>,
    ) {
        match self.check_admin(&op) {
            Err(e) => sm.membership_answered(ticket, Err(e)),
            Ok(None) => {
                if let MembershipOp::TransferLeadership { to } = op {
                    self.start_transfer(to, ticket, sm);
                }
            }
            Ok(Some(target)) => self.begin_job(JobAnswer::Admin(ticket), target, sm),
        }
    }

    /// The target of an admin change (None for a transfer).
    fn check_admin(&self, op: &MembershipOp) -> Result<Option<Vec<Member>>, ReconfigError> {
        if !self.is_leader() {
            return Err(ReconfigError::NotLeader(self.role.leader));
        }
        let current = &self.membership;
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
            }
            | MembershipOp::Reach {
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
        if self.job.is_some() {
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
            MembershipOp::Reach { members, .. } => target = members.clone(),
            MembershipOp::TransferLeadership { .. } => return Ok(None),
        }
        target.sort_by_key(|m| m.id);
        if let MembershipOp::Remove { id, .. } | MembershipOp::Demote { id, .. } = op
            && *id == self.my_id
        {
            return Err(ReconfigError::RemovesLeader(*id));
        }
        let voters = target
            .iter()
            .filter(|m| m.role == MemberRole::Participant)
            .count();
        if voters == 0 {
            return Err(ReconfigError::BadArguments(
                "the new configuration would have no participant".into(),
            ));
        }
        check_path(&current.members, &target, self.my_id, &|id| {
            self.live_caught_up(id, CAUGHT_UP_SLACK)
        })?;
        Ok(Some(target))
    }

    fn begin_job(&mut self, answer: JobAnswer, target: Vec<Member>, sm: &mut dyn StateMachine<W>) {
        tracing::info!(
            target = %target.iter().map(member_line).collect::<Vec<_>>().join(", "),
            "membership change started"
        );
        self.job = Some(ReconfigJob {
            answer,
            target,
            in_flight: None,
            catching_up: None,
            transferring: None,
            original: self.membership.members.iter().map(|m| m.id).collect(),
            rolling_back: None,
        });
        self.advance_reconfig(sm);
    }

    /// A committed step was applied: the job moves on, or ends with its
    /// last step.
    pub(super) fn step_applied(&mut self, sm: &mut dyn StateMachine<W>) {
        if !self.is_leader() {
            return;
        }
        let last = self.job.as_mut().and_then(|job| job.in_flight.take());
        if last == Some(true) {
            self.end_job(Ok(()), sm);
        }
    }

    /// Takes the job's next step if it can (on every tick and after every
    /// applied membership change).
    pub(super) fn advance_reconfig(&mut self, sm: &mut dyn StateMachine<W>) {
        let deadline = self.config.reconfig_deadline_ticks;
        if !self.is_leader() {
            return;
        }
        let Some(job) = self.job.as_mut() else {
            return;
        };
        if job.in_flight.is_some() || self.node.membership_pending() {
            return;
        }
        let my_id = self.my_id;
        let ticks = self.ticks;
        let current = self.membership.members.clone();
        let step = next_step(&current, &job.target, my_id).unwrap_or(Step::Rewrite);
        match &step {
            Step::TransferLeadership => {
                let since = *job.transferring.get_or_insert(ticks);
                if ticks - since > deadline {
                    self.end_job(
                        Err(ReconfigError::NoQuorum(
                            "leadership could not be handed over".into(),
                        )),
                        sm,
                    );
                    return;
                }
                if self.node.transferring_to().is_some() {
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
                let commit = self.node.commit_index();
                let (id, since, reach) = *job.catching_up.get_or_insert((m.id, ticks, commit));
                let caught_up = self.is_live(id)
                    && !self.restoring.contains(&id)
                    && self
                        .node
                        .progress()
                        .iter()
                        .any(|p| p.id == id && p.matched >= reach);
                if !caught_up {
                    if ticks - since > deadline {
                        let e = ReconfigError::NoQuorum(format!(
                            "server {id} did not catch up within initLimit"
                        ));
                        self.end_job(Err(e), sm);
                    }
                    return;
                }
                if let Some(job) = self.job.as_mut() {
                    job.catching_up = None;
                }
            }
            _ => {}
        }
        let Some(job) = self.job.as_ref() else {
            return;
        };
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
            self.end_job(
                Err(ReconfigError::NoQuorum(format!(
                    "after {step:?} only {live} of the participants {voters:?} would be live and caught up"
                ))),
                sm,
            );
            return;
        }
        let answers = match (&job.answer, last, &job.rolling_back) {
            (JobAnswer::Client(r), true, None) => Some((r.session_id, r.cxid)),
            _ => None,
        };
        let context = ChangeContext {
            members: if self.config.faults.jump_to_goal {
                target.clone()
            } else {
                next
            },
            answers,
            time_ms: self.wall_ms,
        };
        let mut change = ConfChangeV2::default();
        let changes = if self.config.faults.jump_to_goal {
            // The broken job: every step to the target in one change.
            all_steps(&current, &target, my_id)
        } else {
            vec![change_of(&step, my_id)]
        };
        change.set_changes(changes.into());
        change.context = context.encode().into();
        match self.node.propose_membership(change) {
            Ok(()) => {
                tracing::info!(?step, last, "membership step proposed");
                if let Some(job) = self.job.as_mut() {
                    job.in_flight = Some(last);
                }
            }
            // Retried on the next tick or apply.
            Err(
                ConsensusError::MembershipInProgress { .. } | ConsensusError::LeaderNotReady { .. },
            ) => {}
            Err(e) => {
                tracing::info!(error = %e, "membership step not proposed");
                self.end_job(Err(ReconfigError::NotLeader(None)), sm);
            }
        }
    }

    /// The live, caught-up participant with the longest log among those
    /// `eligible` says may lead, that has applied the latest membership
    /// change (raft-rs will not campaign before it has).
    pub(super) fn transfer_candidate(&self, eligible: &dyn Fn(u64) -> bool) -> Option<u64> {
        let commit = self.node.commit_index();
        let applied_membership = |id: u64| {
            self.member_applied
                .get(&id)
                .is_some_and(|(index, _)| *index >= self.membership_index)
        };
        self.node
            .progress()
            .into_iter()
            .filter(|p| p.id != self.my_id && !p.learner && self.is_live(p.id))
            .filter(|p| p.matched + CAUGHT_UP_SLACK >= commit && eligible(p.id))
            .filter(|p| applied_membership(p.id))
            .max_by_key(|p| (p.matched, std::cmp::Reverse(p.id)))
            .map(|p| p.id)
    }

    /// Ends this leader's job: a refusal goes to its requester. A job that
    /// failed after adding observers takes them out again first (a failed
    /// reconfig leaves the membership as it was, as far as it can).
    fn end_job(&mut self, result: Result<(), ReconfigError>, sm: &mut dyn StateMachine<W>) {
        let Some(mut job) = self.job.take() else {
            return;
        };
        if let Err(e) = &result
            && job.rolling_back.is_none()
            && self.is_leader()
        {
            let added: Vec<u64> = self
                .membership
                .members
                .iter()
                .filter(|m| m.role == MemberRole::Observer && !job.original.contains(&m.id))
                .map(|m| m.id)
                .collect();
            if !added.is_empty() {
                tracing::info!(?added, error = %e, "membership change failed; removing the observers it added");
                job.target = self
                    .membership
                    .members
                    .iter()
                    .filter(|m| !added.contains(&m.id))
                    .cloned()
                    .collect();
                job.rolling_back = Some(e.clone());
                job.catching_up = None;
                job.transferring = None;
                self.job = Some(job);
                self.advance_reconfig(sm);
                return;
            }
        }
        let result = match job.rolling_back.take() {
            Some(e) => Err(e),
            None => result,
        };
        match (job.answer, result) {
            (JobAnswer::Admin(ticket), result) => {
                let membership = self.membership.clone();
                sm.membership_answered(
                    ticket,
                    result.map(|()| MembershipAnswer::Committed(membership)),
                );
            }
            (JobAnswer::Client(_), Ok(())) => {}
            (JobAnswer::Client(requester), Err(e)) => {
                tracing::info!(error = %e, "reconfig failed");
                if self.is_leader() {
                    self.propose_refusal(requester, &e, sm);
                } else {
                    sm.submission_failed(requester);
                }
            }
        }
    }

    /// Admin transfer: to `to`, or to the best candidate.
    fn start_transfer(&mut self, to: Option<u64>, ticket: u64, sm: &mut dyn StateMachine<W>) {
        let to = match to {
            Some(to) if to == self.my_id => {
                sm.membership_answered(ticket, Ok(MembershipAnswer::Transferred { leader: to }));
                return;
            }
            Some(to) => {
                if !self.membership.is_voter(to) {
                    let e =
                        ReconfigError::BadArguments(format!("server {to} is not a participant"));
                    sm.membership_answered(ticket, Err(e));
                    return;
                }
                if !self.live_caught_up(to, CAUGHT_UP_SLACK) {
                    let e =
                        ReconfigError::NoQuorum(format!("server {to} is not live and caught up"));
                    sm.membership_answered(ticket, Err(e));
                    return;
                }
                to
            }
            None => match self.transfer_candidate(&|_| true) {
                Some(to) => to,
                None => {
                    let e = ReconfigError::NoQuorum(
                        "no live, caught-up participant can take over".into(),
                    );
                    sm.membership_answered(ticket, Err(e));
                    return;
                }
            },
        };
        tracing::info!(to, "transferring leadership (admin request)");
        self.hand_over(to);
        self.transfer = Some(PendingTransfer {
            to,
            since_tick: self.ticks,
            ticket,
        });
    }

    /// Every tick: a transfer that did not happen in time fails (raft-rs
    /// gives up on one after an election timeout: it is asked again until
    /// then), and a leader that is not a participant hands over.
    pub(super) fn reconfig_tick(&mut self, sm: &mut dyn StateMachine<W>) {
        let deadline = self.config.reconfig_deadline_ticks;
        if let Some(t) = self.transfer.as_ref()
            && self.is_leader()
            && self.node.transferring_to().is_none()
            && self.ticks - t.since_tick <= deadline
        {
            let to = t.to;
            self.hand_over(to);
        }
        if let Some(t) = self.transfer.as_ref()
            && self.ticks - t.since_tick > deadline
            && let Some(t) = self.transfer.take()
        {
            let e = ReconfigError::NoQuorum(format!(
                "leadership did not move to server {} in time",
                t.to
            ));
            sm.membership_answered(t.ticket, Err(e));
        }
        self.hand_over_if_not_participant();
        self.advance_reconfig(sm);
    }

    /// Leadership changed: an admin transfer is answered, and a job moves
    /// on (handed to the new leader when this one left for it) or ends.
    pub(super) fn reconfig_role_changed(&mut self, sm: &mut dyn StateMachine<W>) {
        let leader = self.role.leader;
        let leads = self.role.role == Role::Leader;
        if let Some(t) = self.transfer.take() {
            if leader == Some(t.to) {
                sm.membership_answered(
                    t.ticket,
                    Ok(MembershipAnswer::Transferred { leader: t.to }),
                );
            } else if leads || leader.is_none() {
                // Still leading, or the election is on: wait for its end.
                self.transfer = Some(t);
            } else {
                sm.membership_answered(t.ticket, Err(ReconfigError::NotLeader(leader)));
            }
        }
        if leads {
            return;
        }
        if self.standing.is_member() && !self.membership.contains(self.my_id) {
            let version = self.membership.version;
            self.become_removed(version, sm);
        }
        let Some(job) = self.job.take() else {
            return;
        };
        let handover = job.transferring.is_some();
        match (job.answer, handover, leader) {
            (JobAnswer::Client(_), true, None) => {
                // Still looking: hand it over once a leader is known.
                self.job = Some(job);
            }
            (JobAnswer::Client(requester), true, Some(new_leader)) if new_leader != self.my_id => {
                // The rest of the job (this server's departure) is the new
                // leader's: the same target.
                tracing::info!(
                    new_leader,
                    "handing the membership change to the new leader"
                );
                let notice = Notice::ContinueJob {
                    requester,
                    target: job.target,
                };
                self.notify(new_leader, &notice);
            }
            (JobAnswer::Client(requester), _, _) => sm.submission_failed(requester),
            (JobAnswer::Admin(ticket), _, _) => {
                sm.membership_answered(ticket, Err(ReconfigError::NotLeader(leader)));
            }
        }
    }

    /// A job handed over by the leader that left.
    pub(super) fn continue_job(
        &mut self,
        from: u64,
        requester: Requester,
        target: Vec<Member>,
        sm: &mut dyn StateMachine<W>,
    ) {
        if !self.is_leader() {
            tracing::debug!(
                peer = from,
                "a handed-over membership change reached a server that does not lead"
            );
            return;
        }
        // A leader just elected applies its predecessors' entries first.
        self.continued = Some((requester, target));
        self.start_continued(sm);
    }

    /// Starts a handed-over job once this leader may propose.
    pub(super) fn start_continued(&mut self, sm: &mut dyn StateMachine<W>) {
        if !self.is_leader() {
            self.continued = None;
            return;
        }
        if !self.node.ready_to_propose() {
            return;
        }
        if let Some((requester, target)) = self.continued.take() {
            self.start_reconfig(requester, target, sm);
        }
    }

    pub(super) fn job_in_progress(&self) -> bool {
        self.job.is_some() || self.node.membership_pending()
    }
}

//! The next membership step, as a pure function of what the operator
//! observed: the committed membership read from the leader's admin API
//! (`GET /membership`) is the truth, and the StatefulSet's size follows it.
//!
//! Server ids are the StatefulSet's ordinals + 1, so the members are kept
//! at ids 1..=N (N = participants + observers): a server joins at the top
//! and only the top server leaves. Roles are moved to fit instead: when
//! the top server is a participant but an observer must go, an observer is
//! promoted first (the top participant then leaves); the other way round,
//! a participant is demoted first. After a recovery from a lost quorum the
//! only member may be any id; the gaps below it are filled first, lowest
//! id first, by the same steps, even when the spec asks for fewer servers
//! than the survivor's id (then the top servers leave afterwards).
//!
//! One step at a time, each safe to repeat:
//! - growing: the next server's pod is created first (it joins as a
//!   non-member and waits); then it is added as a participant (the leader
//!   catches it up as an observer and promotes it) or as an observer, with
//!   the expected config version; participants are added before observers;
//! - shrinking: the top server leaves; if it leads, leadership moves first;
//!   once its removal is committed the StatefulSet shrinks;
//! - nothing changes while a participant is unhealthy, and why is said; an
//!   observer is promoted only while it is healthy. A membership that is
//!   already as asked is done whatever the health: a down server's pod may
//!   then be replaced by a roll (`decide.rs`).

/// A member as `GET /membership` on the leader reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedMember {
    pub id: u64,
    pub participant: bool,
    pub healthy: bool,
    pub leader: bool,
    /// Log entries behind the leader's commit index (None: unknown).
    pub lag: Option<u64>,
    /// The last zxid it applied, as the leader last heard (hex).
    pub last_zxid: Option<String>,
}

/// What the operator sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The committed membership.
    pub members: Vec<ObservedMember>,
    /// Its version (hex).
    pub version: String,
    /// The StatefulSet's current `replicas`.
    pub statefulset_replicas: u64,
}

/// The membership the spec asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desired {
    pub participants: u64,
    pub observers: u64,
}

/// The step to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do: the membership is what the spec asks for.
    Done,
    /// Not now (the reason goes to status and an Event).
    Wait(String),
    /// Grow the StatefulSet to this many pods (server id = ordinal + 1).
    ScaleStatefulSet(u64),
    /// Add server `id` as a participant or an observer (POST
    /// /membership/add).
    Add {
        id: u64,
        observer: bool,
        expected_version: String,
    },
    /// Move leadership off `from` (POST /leader/transfer).
    TransferLeadership { from: u64 },
    /// Remove server `id` (POST /membership/remove).
    Remove { id: u64, expected_version: String },
    /// Make observer `id` a participant (POST /membership/promote).
    Promote { id: u64, expected_version: String },
    /// Make participant `id` an observer (POST /membership/demote).
    Demote { id: u64, expected_version: String },
}

/// A membership step recorded in status that is not finished: the step
/// that carries it on. Finished or not: see `decide::operation_done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlight {
    /// Server `id` is being added (as an observer, or a participant).
    Add {
        id: u64,
        observer: bool,
    },
    /// Server `id` is leaving.
    Remove {
        id: u64,
    },
    Promote {
        id: u64,
    },
    Demote {
        id: u64,
    },
}

/// The next step towards `desired`.
pub fn next_step(desired: Desired, observed: &Observed) -> Step {
    // Health gates changes only: a membership already as the spec asks is
    // Done even while a participant is down, so that the roll can replace
    // that participant's pod.
    match membership_step(desired, observed) {
        Step::Done => Step::Done,
        step => unhealthy(observed).unwrap_or(step),
    }
}

fn membership_step(desired: Desired, observed: &Observed) -> Step {
    let members = &observed.members;
    let voters = members.iter().filter(|m| m.participant).count() as u64;
    let observers = members.len() as u64 - voters;
    let total = members.len() as u64;
    let wanted = desired.participants + desired.observers;
    let Some(top) = members.iter().max_by_key(|m| m.id) else {
        return Step::Done;
    };
    // A gap below the top member (left by a recovery from a lost quorum)
    // is filled first, even past the size asked for: only the top server
    // leaves, so that is how the members come back to ids 1..=N and the
    // pods below the top member stop running empty.
    let gap = (1..top.id).find(|id| members.iter().all(|m| m.id != *id));
    if total < wanted || gap.is_some() {
        let next = gap.unwrap_or(top.id + 1);
        return add(next, voters >= desired.participants, observed);
    }
    if total > wanted {
        return if top.participant {
            if voters > desired.participants {
                remove(top, observed)
            } else {
                promote_an_observer(observed)
            }
        } else if observers > desired.observers {
            remove(top, observed)
        } else {
            demote_a_participant(observed)
        };
    }
    if voters < desired.participants {
        return promote_an_observer(observed);
    }
    if voters > desired.participants {
        return demote_a_participant(observed);
    }
    shrink_to_members(observed)
}

/// The step that carries on an unfinished operation, whatever the spec now
/// says (a new spec waits for it).
pub fn continue_step(op: InFlight, observed: &Observed) -> Step {
    if let Some(wait) = unhealthy(observed) {
        return wait;
    }
    let member = |id| observed.members.iter().find(|m| m.id == id);
    let version = || observed.version.clone();
    match op {
        InFlight::Add { id, observer } => add(id, observer, observed),
        InFlight::Remove { id } => match member(id) {
            Some(m) => remove(m, observed),
            None => shrink_to_members(observed),
        },
        InFlight::Promote { id } => match member(id) {
            Some(m) => promote(m, observed),
            None => Step::Done,
        },
        InFlight::Demote { id } => match member(id) {
            Some(_) => Step::Demote {
                id,
                expected_version: version(),
            },
            None => Step::Done,
        },
    }
}

/// Once a removal committed, the pods past the top member go.
fn shrink_to_members(observed: &Observed) -> Step {
    let top = observed.members.iter().map(|m| m.id).max().unwrap_or(0);
    if observed.statefulset_replicas > top {
        Step::ScaleStatefulSet(top)
    } else {
        Step::Done
    }
}

fn unhealthy(observed: &Observed) -> Option<Step> {
    observed
        .members
        .iter()
        .find(|m| m.participant && !m.healthy)
        .map(|sick| {
            Step::Wait(format!(
                "server {} is not healthy; membership changes wait for every participant",
                sick.id
            ))
        })
}

/// Adds server `id`, its pod first.
fn add(id: u64, observer: bool, observed: &Observed) -> Step {
    if observed.statefulset_replicas < id {
        return Step::ScaleStatefulSet(id);
    }
    Step::Add {
        id,
        observer,
        expected_version: observed.version.clone(),
    }
}

/// Removes `leaving`, moving leadership off it first.
fn remove(leaving: &ObservedMember, observed: &Observed) -> Step {
    if leaving.leader {
        return Step::TransferLeadership { from: leaving.id };
    }
    Step::Remove {
        id: leaving.id,
        expected_version: observed.version.clone(),
    }
}

/// Promotes the top observer (the one most likely to leave next anyway),
/// once it is healthy.
fn promote_an_observer(observed: &Observed) -> Step {
    match observed
        .members
        .iter()
        .filter(|m| !m.participant)
        .max_by_key(|m| m.id)
    {
        Some(m) => promote(m, observed),
        None => Step::Done,
    }
}

/// Promotes observer `m`, once it is caught up.
fn promote(m: &ObservedMember, observed: &Observed) -> Step {
    if !m.healthy {
        return Step::Wait(format!(
            "observer {} is not caught up; it is promoted once it is",
            m.id
        ));
    }
    Step::Promote {
        id: m.id,
        expected_version: observed.version.clone(),
    }
}

/// Demotes the top participant that does not lead.
fn demote_a_participant(observed: &Observed) -> Step {
    match observed
        .members
        .iter()
        .filter(|m| m.participant && !m.leader)
        .max_by_key(|m| m.id)
    {
        Some(m) => Step::Demote {
            id: m.id,
            expected_version: observed.version.clone(),
        },
        None => Step::Done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(ids: &[u64], leader: u64) -> Vec<ObservedMember> {
        ids.iter()
            .map(|&id| ObservedMember {
                id,
                participant: true,
                healthy: true,
                leader: id == leader,
                lag: Some(0),
                last_zxid: None,
            })
            .collect()
    }

    fn voters(participants: u64) -> Desired {
        Desired {
            participants,
            observers: 0,
        }
    }

    fn observed(ids: &[u64], leader: u64, sts: u64) -> Observed {
        Observed {
            members: members(ids, leader),
            version: "200000000".into(),
            statefulset_replicas: sts,
        }
    }

    #[test]
    fn after_a_recovery_the_gaps_below_the_survivor_are_filled_first() {
        // Server 2 recovered alone; the pods of 1 and 3 run, empty.
        assert_eq!(
            next_step(voters(3), &observed(&[2], 2, 3)),
            Step::Add {
                id: 1,
                observer: false,
                expected_version: "200000000".into()
            }
        );
        assert_eq!(
            next_step(voters(3), &observed(&[1, 2], 2, 3)),
            Step::Add {
                id: 3,
                observer: false,
                expected_version: "200000000".into()
            }
        );
        assert_eq!(
            next_step(voters(3), &observed(&[1, 2, 3], 2, 3)),
            Step::Done
        );
    }

    #[test]
    fn after_a_recovery_to_fewer_servers_than_the_survivors_id_the_members_move_down() {
        // Server 3 recovered alone and the spec asks for one server: the
        // pods of 1 and 2 must not stay as empty joiners. Server 1 comes in
        // as an observer (no voter changes before it has caught up), is
        // promoted, and server 3 hands leadership over and leaves.
        let desired = voters(1);
        assert_eq!(
            next_step(desired, &observed(&[3], 3, 3)),
            Step::Add {
                id: 1,
                observer: true,
                expected_version: "200000000".into()
            }
        );
        let mut with_observer = observed(&[1, 3], 3, 3);
        with_observer.members[0].participant = false;
        assert_eq!(
            next_step(desired, &with_observer),
            Step::Add {
                id: 2,
                observer: true,
                expected_version: "200000000".into()
            }
        );
        let mut both = observed(&[1, 2, 3], 3, 3);
        both.members[0].participant = false;
        both.members[1].participant = false;
        assert_eq!(
            next_step(desired, &both),
            Step::Promote {
                id: 2,
                expected_version: "200000000".into()
            }
        );
        let mut promoted = observed(&[1, 2, 3], 3, 3);
        promoted.members[0].participant = false;
        assert_eq!(
            next_step(desired, &promoted),
            Step::TransferLeadership { from: 3 }
        );
        let mut handed_over = observed(&[1, 2, 3], 2, 3);
        handed_over.members[0].participant = false;
        assert_eq!(
            next_step(desired, &handed_over),
            Step::Remove {
                id: 3,
                expected_version: "200000000".into()
            }
        );
        // The removal's operation shrinks the StatefulSet; then server 1 is
        // promoted and server 2 leaves the same way.
        let mut removed = observed(&[1, 2], 2, 3);
        removed.members[0].participant = false;
        assert_eq!(
            continue_step(InFlight::Remove { id: 3 }, &removed),
            Step::ScaleStatefulSet(2)
        );
        removed.statefulset_replicas = 2;
        assert_eq!(
            next_step(desired, &removed),
            Step::Promote {
                id: 1,
                expected_version: "200000000".into()
            }
        );
        assert_eq!(
            next_step(desired, &observed(&[1, 2], 2, 2)),
            Step::TransferLeadership { from: 2 }
        );
        assert_eq!(
            next_step(desired, &observed(&[1], 1, 2)),
            Step::ScaleStatefulSet(1)
        );
        assert_eq!(next_step(desired, &observed(&[1], 1, 1)), Step::Done);
    }

    #[test]
    fn growing_creates_the_pod_then_adds_the_server() {
        assert_eq!(
            next_step(voters(5), &observed(&[1, 2, 3], 1, 3)),
            Step::ScaleStatefulSet(4)
        );
        assert_eq!(
            next_step(voters(5), &observed(&[1, 2, 3], 1, 4)),
            Step::Add {
                id: 4,
                observer: false,
                expected_version: "200000000".into()
            }
        );
        assert_eq!(
            next_step(voters(5), &observed(&[1, 2, 3, 4], 1, 4)),
            Step::ScaleStatefulSet(5)
        );
        assert_eq!(
            next_step(voters(5), &observed(&[1, 2, 3, 4, 5], 1, 5)),
            Step::Done
        );
    }

    #[test]
    fn shrinking_removes_the_highest_then_the_pod_and_moves_the_leader_first() {
        assert_eq!(
            next_step(voters(3), &observed(&[1, 2, 3, 4, 5], 1, 5)),
            Step::Remove {
                id: 5,
                expected_version: "200000000".into()
            }
        );
        assert_eq!(
            next_step(voters(3), &observed(&[1, 2, 3, 4], 1, 5)),
            Step::Remove {
                id: 4,
                expected_version: "200000000".into()
            }
        );
        assert_eq!(
            next_step(voters(3), &observed(&[1, 2, 3, 4], 4, 5)),
            Step::TransferLeadership { from: 4 }
        );
        assert_eq!(
            next_step(voters(3), &observed(&[1, 2, 3], 2, 5)),
            Step::ScaleStatefulSet(3)
        );
    }

    #[test]
    fn nothing_moves_while_a_participant_is_unhealthy() {
        let mut o = observed(&[1, 2, 3], 1, 3);
        o.members[2].healthy = false;
        assert!(
            matches!(next_step(voters(5), &o), Step::Wait(reason) if reason.contains("server 3"))
        );
        assert!(matches!(next_step(voters(1), &o), Step::Wait(_)));
        // Already as asked: nothing to change, so nothing to wait for (a
        // roll may replace the down server's pod).
        assert_eq!(next_step(voters(3), &o), Step::Done);
    }

    /// Participants 1..=p, then observers up to n.
    fn with_observers(p: u64, n: u64, leader: u64) -> Observed {
        let ids: Vec<u64> = (1..=n).collect();
        let mut o = observed(&ids, leader, n);
        for m in &mut o.members {
            m.participant = m.id <= p;
        }
        o
    }

    fn want(participants: u64, observers: u64) -> Desired {
        Desired {
            participants,
            observers,
        }
    }

    #[test]
    fn observers_join_above_the_participants() {
        assert_eq!(
            next_step(want(3, 1), &observed(&[1, 2, 3], 1, 3)),
            Step::ScaleStatefulSet(4)
        );
        assert!(matches!(
            next_step(want(3, 1), &observed(&[1, 2, 3], 1, 4)),
            Step::Add {
                id: 4,
                observer: true,
                ..
            }
        ));
        // Participants first: a short cluster gets its voters before observers.
        assert!(matches!(
            next_step(want(3, 1), &observed(&[1, 2], 1, 3)),
            Step::Add {
                id: 3,
                observer: false,
                ..
            }
        ));
        assert_eq!(next_step(want(3, 1), &with_observers(3, 4, 1)), Step::Done);
    }

    #[test]
    fn the_top_observer_leaves_and_the_statefulset_follows() {
        assert!(matches!(
            next_step(want(3, 0), &with_observers(3, 4, 1)),
            Step::Remove { id: 4, .. }
        ));
        let mut o = observed(&[1, 2, 3], 1, 4);
        o.statefulset_replicas = 4;
        assert_eq!(next_step(want(3, 0), &o), Step::ScaleStatefulSet(3));
    }

    #[test]
    fn an_observer_below_a_participant_leaves_by_swapping_roles() {
        // Participants 1-3 and 5, observer 4 (participants were added after
        // it); no observers wanted: 4 is promoted, then 5 leaves.
        let mut o = observed(&[1, 2, 3, 4, 5], 1, 5);
        o.members[3].participant = false;
        assert!(matches!(
            next_step(want(4, 0), &o),
            Step::Promote { id: 4, .. }
        ));
        o.members[3].participant = true;
        assert!(matches!(
            next_step(want(4, 0), &o),
            Step::Remove { id: 5, .. }
        ));
        // Not while the observer lags.
        o.members[3].participant = false;
        o.members[3].healthy = false;
        assert!(matches!(next_step(want(4, 0), &o), Step::Wait(w) if w.contains("observer 4")));
    }

    #[test]
    fn a_participant_on_top_becomes_an_observer_the_other_way_round() {
        // Five participants, one observer wanted in their place: the top
        // participant that does not lead is demoted.
        assert!(matches!(
            next_step(want(4, 1), &with_observers(5, 5, 5)),
            Step::Demote { id: 4, .. }
        ));
        assert!(matches!(
            next_step(want(4, 1), &with_observers(5, 5, 1)),
            Step::Demote { id: 5, .. }
        ));
        // Fewer servers, the top one an observer still wanted: a
        // participant is demoted, then the top observer leaves.
        assert!(matches!(
            next_step(want(2, 1), &with_observers(3, 4, 1)),
            Step::Demote { id: 3, .. }
        ));
        assert!(matches!(
            next_step(want(2, 1), &with_observers(2, 4, 1)),
            Step::Remove { id: 4, .. }
        ));
    }

    #[test]
    fn an_unfinished_step_is_carried_on_whatever_the_spec_says() {
        let o = observed(&[1, 2, 3], 1, 4);
        assert!(matches!(
            continue_step(
                InFlight::Add {
                    id: 4,
                    observer: true
                },
                &o
            ),
            Step::Add {
                id: 4,
                observer: true,
                ..
            }
        ));
        assert_eq!(
            continue_step(
                InFlight::Add {
                    id: 4,
                    observer: false
                },
                &observed(&[1, 2, 3], 1, 3)
            ),
            Step::ScaleStatefulSet(4)
        );
        assert_eq!(
            continue_step(InFlight::Remove { id: 4 }, &o),
            Step::ScaleStatefulSet(3)
        );
        assert_eq!(
            continue_step(InFlight::Remove { id: 3 }, &observed(&[1, 2, 3], 3, 3)),
            Step::TransferLeadership { from: 3 }
        );
        assert!(matches!(
            continue_step(InFlight::Promote { id: 4 }, &with_observers(3, 4, 1)),
            Step::Promote { id: 4, .. }
        ));
    }
}

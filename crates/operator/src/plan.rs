//! The next membership step, as a pure function of what the operator
//! observed: the committed membership read from the leader's admin API
//! (`GET /membership`) is the truth, and the StatefulSet's size follows it.
//!
//! One step at a time, each safe to repeat:
//! - growing: the next server's pod is created first (it joins as a
//!   non-member and waits); then it is added (the leader catches it up as an
//!   observer and promotes it), with the expected config version;
//! - shrinking: the highest server leaves; if it leads, leadership moves
//!   first; once its removal is committed the StatefulSet shrinks;
//! - nothing changes while a voter is unhealthy, and why is said.

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

/// The step to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do: the membership is what the spec asks for.
    Done,
    /// Not now (the reason goes to status and an Event).
    Wait(String),
    /// Grow the StatefulSet to this many pods (server id = ordinal + 1).
    ScaleStatefulSet(u64),
    /// Add server `id` as a participant (POST /membership/add).
    Add { id: u64, expected_version: String },
    /// Move leadership off `from` (POST /leader/transfer).
    TransferLeadership { from: u64 },
    /// Remove server `id` (POST /membership/remove).
    Remove { id: u64, expected_version: String },
}

/// The next step towards `desired` participants. Observers are not
/// managed here yet.
pub fn next_step(desired: u64, observed: &Observed) -> Step {
    let voters: Vec<&ObservedMember> = observed.members.iter().filter(|m| m.participant).collect();
    let highest = observed.members.iter().map(|m| m.id).max().unwrap_or(0);
    if let Some(sick) = voters.iter().find(|m| !m.healthy) {
        return Step::Wait(format!(
            "server {} is not healthy; membership changes wait for every participant",
            sick.id
        ));
    }
    let count = voters.len() as u64;
    if count < desired {
        let id = highest + 1;
        if observed.statefulset_replicas < id {
            return Step::ScaleStatefulSet(id);
        }
        return Step::Add {
            id,
            expected_version: observed.version.clone(),
        };
    }
    if count > desired {
        let Some(leaving) = voters.iter().max_by_key(|m| m.id) else {
            return Step::Done;
        };
        if leaving.leader {
            return Step::TransferLeadership { from: leaving.id };
        }
        return Step::Remove {
            id: leaving.id,
            expected_version: observed.version.clone(),
        };
    }
    if observed.statefulset_replicas > highest {
        // A removal committed: the pods past the last member go.
        return Step::ScaleStatefulSet(highest);
    }
    Step::Done
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

    fn observed(ids: &[u64], leader: u64, sts: u64) -> Observed {
        Observed {
            members: members(ids, leader),
            version: "200000000".into(),
            statefulset_replicas: sts,
        }
    }

    #[test]
    fn growing_creates_the_pod_then_adds_the_server() {
        assert_eq!(
            next_step(5, &observed(&[1, 2, 3], 1, 3)),
            Step::ScaleStatefulSet(4)
        );
        assert_eq!(
            next_step(5, &observed(&[1, 2, 3], 1, 4)),
            Step::Add {
                id: 4,
                expected_version: "200000000".into()
            }
        );
        assert_eq!(
            next_step(5, &observed(&[1, 2, 3, 4], 1, 4)),
            Step::ScaleStatefulSet(5)
        );
        assert_eq!(next_step(5, &observed(&[1, 2, 3, 4, 5], 1, 5)), Step::Done);
    }

    #[test]
    fn shrinking_removes_the_highest_then_the_pod_and_moves_the_leader_first() {
        assert_eq!(
            next_step(3, &observed(&[1, 2, 3, 4, 5], 1, 5)),
            Step::Remove {
                id: 5,
                expected_version: "200000000".into()
            }
        );
        assert_eq!(
            next_step(3, &observed(&[1, 2, 3, 4], 1, 5)),
            Step::Remove {
                id: 4,
                expected_version: "200000000".into()
            }
        );
        assert_eq!(
            next_step(3, &observed(&[1, 2, 3, 4], 4, 5)),
            Step::TransferLeadership { from: 4 }
        );
        assert_eq!(
            next_step(3, &observed(&[1, 2, 3], 2, 5)),
            Step::ScaleStatefulSet(3)
        );
    }

    #[test]
    fn nothing_moves_while_a_participant_is_unhealthy() {
        let mut o = observed(&[1, 2, 3], 1, 3);
        o.members[2].healthy = false;
        assert!(matches!(next_step(5, &o), Step::Wait(reason) if reason.contains("server 3")));
        assert!(matches!(next_step(1, &o), Step::Wait(_)));
    }
}

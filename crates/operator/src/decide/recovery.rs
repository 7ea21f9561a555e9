//! Recovery from a lost quorum, only ever asked for by a person: the
//! annotation `conclave.dev/recover-from: "<server id>"` names the survivor
//! (status lists every member's last zxid; the highest loses the least).
//! The operator never starts one by itself, and refuses while a leader
//! serves.
//!
//! Steps, one per reconcile, each recorded in `status.operation`:
//! 1. `Started`: the request is recorded; nothing else is touched. A leader
//!    appearing now ends the operation (the quorum was not lost).
//! 2. `PodsRestarted`: zoo.cfg gets `conclave.recoverAlone=<id>:<token>`
//!    and every pod is deleted, so each starts again reading it: the
//!    survivor makes itself the only member with all its data; every other
//!    server sets its store aside and waits to be added (the server's side:
//!    `docs/membership.md`). The key stays in zoo.cfg (`status.recovery`),
//!    so a server whose old data comes back later sets it aside too.
//! 3. Once the survivor leads, the annotation is removed; the usual plan
//!    then adds the other servers back, one at a time.

use super::{Decision, Inputs, PODS_RESTARTED, RECOVER_QUORUM, RECOVERY_STARTED, operation_done};
use crate::crd::RECOVER_FROM_ANNOTATION;

/// The decision while a recovery is asked for or under way; None
/// otherwise.
pub(super) fn decide(inputs: &Inputs<'_>) -> Option<Decision> {
    let in_flight = inputs.operation.filter(|op| op.kind == RECOVER_QUORUM);
    if let Some(op) = in_flight {
        let done = inputs
            .ensemble
            .is_some_and(|view| operation_done(op, inputs.kube, view));
        if !done && op.step == RECOVERY_STARTED {
            return Some(Decision::RestartForRecovery {
                server: op.server,
                token: token_of(&op.started),
                pods: inputs
                    .kube
                    .pods
                    .iter()
                    .filter(|p| !p.terminating)
                    .map(|p| p.name.clone())
                    .collect(),
            });
        }
        if op.step == PODS_RESTARTED {
            return Some(match inputs.ensemble {
                Some(view) if view.leader == op.server => {
                    Decision::FinishRecovery { server: op.server }
                }
                Some(view) => Decision::wait(
                    "RecoveringQuorum",
                    format!(
                        "server {} leads, not the survivor {}: a majority of the old membership \
                         is running; see docs/operator.md",
                        view.leader, op.server
                    ),
                ),
                None => Decision::wait(
                    "RecoveringQuorum",
                    format!(
                        "server {} restarts as the only member with its data; the others start \
                         empty and are added back once it leads",
                        op.server
                    ),
                ),
            });
        }
    }
    match inputs.recover_from.as_ref()? {
        Err(why) => Some(Decision::wait("RecoveryRefused", why.clone())),
        Ok(_) if inputs.ensemble.is_some() => {
            let leader = inputs.ensemble.map(|v| v.leader).unwrap_or_default();
            Some(Decision::wait(
                "RecoveryRefused",
                format!(
                    "server {leader} leads: the quorum is not lost, there is nothing to recover; \
                     remove the annotation {RECOVER_FROM_ANNOTATION}"
                ),
            ))
        }
        Ok(id) if inputs.kube.statefulset_replicas.is_none_or(|r| *id > r) || *id == 0 => {
            Some(Decision::wait(
                "RecoveryRefused",
                format!(
                    "{RECOVER_FROM_ANNOTATION}: server {id} is not one of the cluster's servers \
                     (1 to {})",
                    inputs.kube.statefulset_replicas.unwrap_or(0)
                ),
            ))
        }
        Ok(id) => Some(Decision::StartRecovery { server: *id }),
    }
}

/// The annotation's value: a server id.
pub fn parse_annotation(value: &str) -> Result<u64, String> {
    value.trim().parse().map_err(|_| {
        format!("{RECOVER_FROM_ANNOTATION}: {value:?} is not a server id (a number, such as \"2\")")
    })
}

/// The recovery's token, from the time it was asked for: unique per
/// recovery, and a valid file name for the servers' marker.
fn token_of(started: &str) -> String {
    started
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{Operation, ReclaimPolicy};
    use crate::decide::{KubeState, PodState};
    use crate::observe::EnsembleView;
    use crate::plan::Desired;

    fn kube() -> KubeState {
        KubeState {
            statefulset_replicas: Some(3),
            pods: (1..=3)
                .map(|id| PodState {
                    name: format!("zk-{}", id - 1),
                    id,
                    ip: None,
                    running: true,
                    ready: false,
                    revision: None,
                    terminating: id == 3,
                    image: None,
                    node: None,
                })
                .collect(),
            ..KubeState::default()
        }
    }

    fn view(leader: u64) -> EnsembleView {
        EnsembleView {
            members: Vec::new(),
            version: "500000000".into(),
            leader,
        }
    }

    fn op(step: &str) -> Operation {
        Operation {
            kind: RECOVER_QUORUM.into(),
            server: 2,
            step: step.into(),
            expected_config_version: None,
            started: "2026-11-26T18:15:00Z".into(),
        }
    }

    fn inputs<'a>(
        kube: &'a KubeState,
        view: Option<&'a EnsembleView>,
        op: Option<&'a Operation>,
        annotation: Option<Result<u64, String>>,
    ) -> Inputs<'a> {
        Inputs {
            desired: Desired {
                participants: 3,
                observers: 0,
            },
            paused: false,
            reclaim: ReclaimPolicy::Retain,
            kube,
            ensemble: view,
            ensemble_error: None,
            operation: op,
            recover_from: annotation,
        }
    }

    fn wait_reason(d: Option<Decision>) -> String {
        match d {
            Some(Decision::Wait { reason, .. }) => reason,
            other => panic!("not a wait: {other:?}"),
        }
    }

    #[test]
    fn nothing_asked_nothing_done() {
        assert_eq!(decide(&inputs(&kube(), None, None, None)), None);
    }

    #[test]
    fn a_recovery_starts_only_without_a_leader_and_for_a_server_of_the_cluster() {
        let k = kube();
        assert_eq!(
            decide(&inputs(&k, None, None, Some(Ok(2)))),
            Some(Decision::StartRecovery { server: 2 })
        );
        let leading = view(1);
        assert_eq!(
            wait_reason(decide(&inputs(&k, Some(&leading), None, Some(Ok(2))))),
            "RecoveryRefused"
        );
        for bad in [Ok(0), Ok(4), Err("not a number".to_owned())] {
            assert_eq!(
                wait_reason(decide(&inputs(&k, None, None, Some(bad)))),
                "RecoveryRefused"
            );
        }
        assert!(parse_annotation("two").is_err());
        assert_eq!(parse_annotation(" 2 "), Ok(2));
    }

    #[test]
    fn once_started_every_pod_that_is_not_already_going_is_restarted() {
        let k = kube();
        let started = op(RECOVERY_STARTED);
        assert_eq!(
            decide(&inputs(&k, None, Some(&started), Some(Ok(2)))),
            Some(Decision::RestartForRecovery {
                server: 2,
                token: "20261126T181500Z".into(),
                pods: vec!["zk-0".into(), "zk-1".into()],
            })
        );
        // A leader appearing before the restart ends it: nothing to recover.
        let leading = view(1);
        assert_eq!(
            wait_reason(decide(&inputs(
                &k,
                Some(&leading),
                Some(&started),
                Some(Ok(2))
            ))),
            "RecoveryRefused"
        );
    }

    #[test]
    fn after_the_restart_it_waits_for_the_survivor_to_lead_then_finishes() {
        let k = kube();
        let restarted = op(PODS_RESTARTED);
        assert_eq!(
            wait_reason(decide(&inputs(&k, None, Some(&restarted), None))),
            "RecoveringQuorum"
        );
        let other = view(1);
        assert_eq!(
            wait_reason(decide(&inputs(&k, Some(&other), Some(&restarted), None))),
            "RecoveringQuorum"
        );
        let survivor = view(2);
        assert_eq!(
            decide(&inputs(&k, Some(&survivor), Some(&restarted), Some(Ok(2)))),
            Some(Decision::FinishRecovery { server: 2 })
        );
    }
}

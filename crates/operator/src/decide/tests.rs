use super::*;
use crate::plan::ObservedMember;

fn view(ids: &[u64], leader: u64) -> EnsembleView {
    EnsembleView {
        members: ids
            .iter()
            .map(|&id| ObservedMember {
                id,
                participant: true,
                healthy: true,
                leader: id == leader,
                lag: Some(0),
                last_zxid: None,
            })
            .collect(),
        version: "100000001".into(),
        leader,
    }
}

fn pod(id: u64, revision: &str) -> PodState {
    PodState {
        name: format!("zk-{}", id - 1),
        id,
        ip: Some(format!("10.0.0.{id}")),
        running: true,
        ready: true,
        revision: Some(revision.into()),
        terminating: false,
        image: Some(format!("conclave:{revision}")),
        node: None,
    }
}

fn kube(pods: u64, revision: &str) -> KubeState {
    KubeState {
        statefulset_replicas: Some(pods),
        update_revision: Some("new".into()),
        template_image: None,
        template_internal_tls: None,
        rollout_observed: true,
        pods: (1..=pods).map(|id| pod(id, revision)).collect(),
        volumes: (1..=pods)
            .map(|id| (id, format!("data-zk-{}", id - 1)))
            .collect(),
    }
}

fn inputs<'a>(participants: u64, kube: &'a KubeState, view: &'a EnsembleView) -> Inputs<'a> {
    Inputs {
        desired: Desired {
            participants,
            observers: 0,
        },
        paused: false,
        reclaim: ReclaimPolicy::Retain,
        kube,
        ensemble: Some(view),
        ensemble_error: None,
        operation: None,
        recover_from: None,
    }
}

fn op(kind: &str, server: u64) -> Operation {
    Operation {
        kind: kind.into(),
        server,
        step: "x".into(),
        expected_config_version: None,
        started: "2026-01-01T00:00:00Z".into(),
    }
}

fn wait_reason(d: &Decision) -> &str {
    match d {
        Decision::Wait { reason, .. } => reason,
        other => panic!("expected a wait, got {other:?}"),
    }
}

#[test]
fn a_healthy_cluster_of_the_right_size_is_left_alone() {
    let k = kube(3, "new");
    let v = view(&[1, 2, 3], 1);
    assert_eq!(decide(&inputs(3, &k, &v)), Decision::Idle);
}

#[test]
fn paused_and_unreachable_clusters_wait_and_say_why() {
    let k = kube(3, "new");
    let v = view(&[1, 2, 3], 1);
    let mut i = inputs(5, &k, &v);
    i.paused = true;
    assert_eq!(wait_reason(&decide(&i)), "Paused");
    let mut i = inputs(5, &k, &v);
    i.ensemble = None;
    i.ensemble_error = Some("server 1: refused");
    let d = decide(&i);
    assert_eq!(wait_reason(&d), "EnsembleUnreachable");
    assert!(matches!(d, Decision::Wait { message, .. } if message.contains("server 1: refused")));
}

#[test]
fn growing_creates_the_pod_waits_for_it_then_adds_the_server() {
    let v = view(&[1, 2, 3], 1);
    let k = kube(3, "new");
    assert_eq!(
        decide(&inputs(5, &k, &v)),
        Decision::ScaleStatefulSet {
            replicas: 4,
            server: 4,
            observer: false
        }
    );
    let mut k = kube(4, "new");
    k.pods[3].running = false;
    assert_eq!(wait_reason(&decide(&inputs(5, &k, &v))), "WaitingForPod");
    k.pods.pop();
    assert_eq!(wait_reason(&decide(&inputs(5, &k, &v))), "WaitingForPod");
    let k = kube(4, "new");
    assert_eq!(
        decide(&inputs(5, &k, &v)),
        Decision::Add {
            id: 4,
            observer: false,
            expected_version: "100000001".into()
        }
    );
}

#[test]
fn a_stale_volume_is_deleted_before_its_server_is_created_again() {
    let v = view(&[1, 2, 3], 1);
    let mut k = kube(3, "new");
    k.volumes.push((4, "data-zk-3".into()));
    assert_eq!(
        decide(&inputs(4, &k, &v)),
        Decision::DeleteVolume {
            id: 4,
            claim: "data-zk-3".into()
        }
    );
}

#[test]
fn shrinking_moves_the_leader_removes_then_shrinks_then_reclaims() {
    let v = view(&[1, 2, 3], 3);
    let k = kube(3, "new");
    assert_eq!(
        decide(&inputs(2, &k, &v)),
        Decision::TransferLeadership {
            from: 3,
            to: None,
            kind: REMOVE_SERVER
        }
    );
    let v = view(&[1, 2, 3], 1);
    assert_eq!(
        decide(&inputs(2, &k, &v)),
        Decision::Remove {
            id: 3,
            expected_version: "100000001".into()
        }
    );
    let v = view(&[1, 2], 1);
    assert_eq!(
        decide(&inputs(2, &k, &v)),
        Decision::ScaleStatefulSet {
            replicas: 2,
            server: 3,
            observer: false
        }
    );
    let mut k = kube(2, "new");
    k.volumes.push((3, "data-zk-2".into()));
    // Retain keeps the volume (until a server 3 is created again).
    assert_eq!(decide(&inputs(2, &k, &v)), Decision::Idle);
    let mut i = inputs(2, &k, &v);
    i.reclaim = ReclaimPolicy::Delete;
    assert_eq!(
        decide(&i),
        Decision::DeleteVolume {
            id: 3,
            claim: "data-zk-2".into()
        }
    );
}

#[test]
fn a_new_spec_waits_for_the_operation_in_flight() {
    // Adding server 4 was under way (its pod exists) when the spec went
    // back to 3: server 4 is added first; then the shrink starts.
    let v = view(&[1, 2, 3], 1);
    let k = kube(4, "new");
    let add = op(ADD_SERVER, 4);
    let mut i = inputs(3, &k, &v);
    i.operation = Some(&add);
    assert!(matches!(decide(&i), Decision::Add { id: 4, .. }));
    let v = view(&[1, 2, 3, 4], 1);
    let mut i = inputs(3, &k, &v);
    i.operation = Some(&add);
    assert!(matches!(decide(&i), Decision::Remove { id: 4, .. }));
    // A removal under way finishes (the StatefulSet shrinks) even if the
    // spec asks for more servers again.
    let v = view(&[1, 2, 3], 1);
    let remove = op(REMOVE_SERVER, 4);
    let mut i = inputs(5, &k, &v);
    i.operation = Some(&remove);
    assert_eq!(
        decide(&i),
        Decision::ScaleStatefulSet {
            replicas: 3,
            server: 4,
            observer: false
        }
    );
}

#[test]
fn no_membership_change_while_a_voter_is_unhealthy() {
    let mut v = view(&[1, 2, 3], 1);
    v.members[1].healthy = false;
    let k = kube(3, "new");
    assert_eq!(wait_reason(&decide(&inputs(5, &k, &v))), "MemberUnhealthy");
    assert_eq!(wait_reason(&decide(&inputs(1, &k, &v))), "MemberUnhealthy");
}

#[test]
fn a_roll_takes_followers_first_and_the_leader_last_after_a_handover() {
    let v = view(&[1, 2, 3], 2);
    let mut k = kube(3, "old");
    let d = decide(&inputs(3, &k, &v));
    assert!(
        matches!(d, Decision::DeletePod { id, .. } if id != 2),
        "{d:?}"
    );
    k.pods[0].revision = Some("new".into());
    k.pods[2].revision = Some("new".into());
    assert_eq!(
        decide(&inputs(3, &k, &v)),
        Decision::TransferLeadership {
            from: 2,
            to: Some(1),
            kind: ROLL_POD
        }
    );
    let v = view(&[1, 2, 3], 1);
    assert_eq!(
        decide(&inputs(3, &k, &v)),
        Decision::DeletePod {
            id: 2,
            name: "zk-1".into()
        }
    );
}

#[test]
fn a_roll_replaces_unready_pods_first_and_never_moves_on_past_one_that_stays_down() {
    let v = view(&[1, 2, 3], 1);
    let mut k = kube(3, "old");
    k.pods[2].ready = false;
    assert_eq!(
        decide(&inputs(3, &k, &v)),
        Decision::DeletePod {
            id: 3,
            name: "zk-2".into()
        }
    );
    // Pod 3 came back updated but not Ready: nothing else is deleted.
    k.pods[2].revision = Some("new".into());
    assert_eq!(wait_reason(&decide(&inputs(3, &k, &v))), "RollStalled");
    // Healthy pods but a voter the leader cannot hear from: wait too.
    k.pods[2].ready = true;
    let mut v = v;
    v.members[2].healthy = false;
    assert_eq!(wait_reason(&decide(&inputs(3, &k, &v))), "RollStalled");
    // A pod being deleted is waited for.
    let v = view(&[1, 2, 3], 1);
    k.pods[1].terminating = true;
    assert_eq!(
        wait_reason(&decide(&inputs(3, &k, &v))),
        "RollWaitingForPod"
    );
}

#[test]
fn an_unready_outdated_pod_is_not_deleted_while_another_voter_is_unhealthy() {
    let mut v = view(&[1, 2, 3], 1);
    v.members[1].healthy = false;
    let mut k = kube(3, "old");
    k.pods[2].ready = false;
    // Membership is stable at the desired size, so the roll decides (the
    // plan's health gate only covers changes), and it waits.
    let d = decide(&inputs(3, &k, &v));
    assert_eq!(wait_reason(&d), "RollStalled");
}

#[test]
fn a_single_server_rolls_itself_and_a_leader_without_updated_followers_waits() {
    let v = view(&[1], 1);
    let k = kube(1, "old");
    assert_eq!(
        decide(&inputs(1, &k, &v)),
        Decision::DeletePod {
            id: 1,
            name: "zk-0".into()
        }
    );
    let v = view(&[1, 2, 3], 1);
    let mut k = kube(3, "new");
    k.pods[0].revision = Some("old".into());
    k.pods[1].revision = Some("old".into());
    k.pods[2].revision = Some("old".into());
    // Followers are outdated too: they go first.
    assert!(matches!(decide(&inputs(3, &k, &v)), Decision::DeletePod { id, .. } if id != 1));
}

#[test]
fn operations_know_when_they_are_done() {
    let v = view(&[1, 2, 3], 1);
    let k = kube(3, "new");
    assert!(operation_done(&op(ADD_SERVER, 3), &k, &v));
    assert!(!operation_done(&op(ADD_SERVER, 4), &k, &v));
    assert!(!operation_done(&op(REMOVE_SERVER, 3), &k, &v));
    assert!(operation_done(&op(REMOVE_SERVER, 4), &k, &v));
    assert!(operation_done(&op(ROLL_POD, 2), &k, &v));
    let k = kube(3, "old");
    assert!(!operation_done(&op(ROLL_POD, 2), &k, &v));
}

#[test]
fn a_rolled_pod_must_come_back_before_the_next_one_goes() {
    let v = view(&[1, 2, 3], 1);
    // Pod 3 was deleted and has not been re-created yet; the leader may
    // still count server 3 as healthy for a moment.
    let mut k = kube(3, "old");
    k.pods.pop();
    let rolled = Operation {
        step: "PodDeleted".into(),
        ..op(ROLL_POD, 3)
    };
    let mut i = inputs(3, &k, &v);
    i.operation = Some(&rolled);
    assert_eq!(wait_reason(&decide(&i)), "RollWaitingForPod");
    // Without the record (an operator that lost its status), the missing
    // pod is seen too.
    assert_eq!(
        wait_reason(&decide(&inputs(3, &k, &v))),
        "RollWaitingForPod"
    );
    // Back, updated and Ready: the roll goes on.
    let mut k = kube(3, "old");
    k.pods[2].revision = Some("new".into());
    let mut i = inputs(3, &k, &v);
    i.operation = Some(&rolled);
    assert!(matches!(decide(&i), Decision::DeletePod { id: 2, .. }));
}

/// A roll onto a template no node can run: the rolled pod stays Pending
/// and the roll waits. Once the spec is reverted the Pending pod is
/// outdated, and is the one replaced first (it never comes back on its own
/// under `OnDelete`).
#[test]
fn a_pod_stuck_on_a_template_that_was_reverted_is_replaced_first() {
    let mut v = view(&[1, 2, 3], 1);
    v.members[2].healthy = false;
    let mut k = kube(3, "old");
    k.update_revision = Some("bad".into());
    k.pods[2].revision = Some("bad".into());
    k.pods[2].ready = false;
    let rolled = Operation {
        step: "PodDeleted".into(),
        ..op(ROLL_POD, 3)
    };
    let mut i = inputs(3, &k, &v);
    i.operation = Some(&rolled);
    assert_eq!(wait_reason(&decide(&i)), "RollWaitingForPod");

    k.update_revision = Some("old".into());
    let mut i = inputs(3, &k, &v);
    i.operation = Some(&rolled);
    assert_eq!(
        decide(&i),
        Decision::DeletePod {
            id: 3,
            name: "zk-2".into()
        }
    );
}

#[test]
fn a_handover_is_done_once_the_server_leads_no_more() {
    let handed = Operation {
        step: HANDED_OVER.into(),
        ..op(ROLL_POD, 1)
    };
    let k = kube(3, "new");
    assert!(!operation_done(&handed, &k, &view(&[1, 2, 3], 1)));
    assert!(operation_done(&handed, &k, &view(&[1, 2, 3], 2)));
}

#[test]
fn an_observer_is_created_then_added_as_one_even_if_the_spec_changes_meanwhile() {
    let v = view(&[1, 2, 3], 1);
    let k = kube(3, "new");
    let mut i = inputs(3, &k, &v);
    i.desired.observers = 1;
    let grow = decide(&i);
    assert_eq!(
        grow,
        Decision::ScaleStatefulSet {
            replicas: 4,
            server: 4,
            observer: true
        }
    );
    assert_eq!(grow.operation(), Some((ADD_OBSERVER, 4, "PodCreated")));

    // The spec now asks for five participants instead: the observer being
    // added is added as an observer first.
    let k = kube(4, "new");
    let adding = op(ADD_OBSERVER, 4);
    let mut i = inputs(5, &k, &v);
    i.operation = Some(&adding);
    assert_eq!(
        decide(&i),
        Decision::Add {
            id: 4,
            observer: true,
            expected_version: "100000001".into()
        }
    );
    let mut v = view(&[1, 2, 3, 4], 1);
    v.members[3].participant = false;
    assert!(operation_done(&adding, &k, &v));
    // Then the participants: 5, and 4 promoted.
    let mut i = inputs(5, &k, &v);
    i.operation = Some(&adding);
    assert_eq!(
        decide(&i),
        Decision::ScaleStatefulSet {
            replicas: 5,
            server: 5,
            observer: false
        }
    );
}

#[test]
fn roles_are_swapped_so_that_only_the_top_server_leaves() {
    // Participants 1-3 and 5, observer 4; the spec drops the observer.
    let mut v = view(&[1, 2, 3, 4, 5], 1);
    v.members[3].participant = false;
    let k = kube(5, "new");
    let promote = decide(&inputs(4, &k, &v));
    assert_eq!(
        promote,
        Decision::Promote {
            id: 4,
            expected_version: "100000001".into()
        }
    );
    assert_eq!(
        promote.operation(),
        Some((PROMOTE_SERVER, 4, "MemberPromoted"))
    );
    let promoting = op(PROMOTE_SERVER, 4);
    assert!(!operation_done(&promoting, &k, &v));
    v.members[3].participant = true;
    assert!(operation_done(&promoting, &k, &v));
    assert!(matches!(
        decide(&inputs(4, &k, &v)),
        Decision::Remove { id: 5, .. }
    ));
}

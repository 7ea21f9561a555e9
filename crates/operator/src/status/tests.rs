use super::*;
use crate::build::fixtures::cluster;
use crate::decide::PodState;
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
                last_zxid: Some("0x100000005".into()),
            })
            .collect(),
        version: "100000001".into(),
        leader,
    }
}

fn kube(n: u64) -> KubeState {
    KubeState {
        statefulset_replicas: Some(n),
        update_revision: Some("r1".into()),
        template_image: None,
        template_internal_tls: None,
        rollout_observed: true,
        pods: (1..=n)
            .map(|id| PodState {
                name: format!("zk-{}", id - 1),
                id,
                ip: Some("10.0.0.1".into()),
                running: true,
                ready: true,
                revision: Some("r1".into()),
                terminating: false,
                image: Some("conclave:dev".into()),
                node: Some(format!("node-{id}")),
            })
            .collect(),
        volumes: vec![],
    }
}

fn observation<'a>(
    cc: &'a CoordinationCluster,
    kube: &'a KubeState,
    view: Option<&'a EnsembleView>,
    decision: &'a Decision,
) -> Observation<'a> {
    Observation {
        cluster: cc,
        kube,
        ensemble: view,
        ensemble_error: Some("server 1: connection refused"),
        decision,
        operation: None,
        invalid: None,
        action_error: None,
        service_monitor: None,
        recovery: None,
        version: VersionCheck::default(),
        now: Timestamp::from_second(1_000).unwrap(),
    }
}

fn condition<'a>(s: &'a CoordinationClusterStatus, type_: &str) -> &'a Condition {
    s.conditions.iter().find(|c| c.type_ == type_).unwrap()
}

#[test]
fn a_healthy_cluster_is_ready_and_running_with_members_from_one_read() {
    let mut cc = cluster();
    cc.metadata.generation = Some(4);
    let k = kube(3);
    let v = view(&[1, 2, 3], 2);
    let s = build(&observation(&cc, &k, Some(&v), &Decision::Idle));
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(s.observed_generation, Some(4));
    assert_eq!((s.replicas, s.ready_replicas), (3, 3));
    assert_eq!(s.leader, Some(2));
    assert_eq!(s.config_version.as_deref(), Some("100000001"));
    assert_eq!(s.members[1].role, "leader");
    assert_eq!(s.members[0].role, "follower");
    assert_eq!(s.members[0].pod.as_deref(), Some("zk-0"));
    assert_eq!(s.members[0].version.as_deref(), Some("conclave:dev"));
    assert_eq!(s.current_version.as_deref(), Some("conclave:dev"));
    assert_eq!(
        s.connection_string.as_deref(),
        Some("zk-client.apps.svc.cluster.local:2181")
    );
    assert!(
        s.selector
            .clone()
            .unwrap()
            .contains("app.kubernetes.io/instance=zk")
    );
    let ready = condition(&s, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "QuorumServing")
    );
    assert_eq!(ready.observed_generation, Some(4));
    assert_eq!(condition(&s, "Progressing").status, "False");
    assert_eq!(condition(&s, "Degraded").status, "False");
}

#[test]
fn an_unreachable_ensemble_says_so_and_keeps_the_last_members() {
    let mut cc = cluster();
    let k = kube(3);
    let v = view(&[1, 2, 3], 2);
    cc.status = Some(build(&observation(&cc, &k, Some(&v), &Decision::Idle)));
    let d = Decision::Wait {
        reason: "EnsembleUnreachable".into(),
        message: "x".into(),
    };
    let s = build(&observation(&cc, &k, None, &d));
    assert_eq!(s.phase.as_deref(), Some("Unavailable"));
    assert_eq!(s.members.len(), 3);
    assert_eq!(s.leader, None);
    let ready = condition(&s, "Ready");
    assert_eq!(ready.reason, "EnsembleUnreachable");
    assert!(ready.message.contains("connection refused"));
    // A cluster that never formed is still being created.
    let cc = cluster();
    let s = build(&observation(&cc, &k, None, &d));
    assert_eq!(s.phase.as_deref(), Some("Creating"));
}

#[test]
fn transition_times_change_only_when_a_condition_flips() {
    let mut conditions = Vec::new();
    let t1 = Timestamp::from_second(1_000).unwrap();
    let t2 = Timestamp::from_second(2_000).unwrap();
    set_condition(&mut conditions, "Ready", true, "A", "m", Some(1), &t1);
    set_condition(&mut conditions, "Ready", true, "B", "m2", Some(2), &t2);
    assert_eq!(conditions.len(), 1);
    assert_eq!(conditions[0].last_transition_time, Time(t1));
    assert_eq!(conditions[0].reason, "B");
    set_condition(&mut conditions, "Ready", false, "C", "m3", Some(2), &t2);
    assert_eq!(conditions[0].last_transition_time, Time(t2));
}

#[test]
fn an_operation_in_flight_is_progressing_and_a_stalled_roll_is_degraded() {
    let cc = cluster();
    let k = kube(3);
    let v = view(&[1, 2, 3], 1);
    let d = Decision::Add {
        id: 4,
        observer: false,
        expected_version: "1".into(),
    };
    let mut o = observation(&cc, &k, Some(&v), &d);
    o.operation = Some(Operation {
        kind: "AddServer".into(),
        server: 4,
        step: "MemberAdded".into(),
        expected_config_version: Some("1".into()),
        started: "2026-01-01T00:00:00Z".into(),
    });
    let s = build(&o);
    assert_eq!(s.phase.as_deref(), Some("Scaling"));
    let p = condition(&s, "Progressing");
    assert_eq!(
        (p.status.as_str(), p.reason.as_str()),
        ("True", "AddServer")
    );

    let mut k = kube(3);
    k.pods[2].ready = false;
    let d = Decision::Wait {
        reason: "RollStalled".into(),
        message: "pod zk-2 is not Ready; the roll resumes when it is".into(),
    };
    let s = build(&observation(&cc, &k, Some(&v), &d));
    let degraded = condition(&s, "Degraded");
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "RollStalled")
    );
    assert_eq!(condition(&s, "Progressing").reason, "RollStalled");
    assert_eq!(s.ready_replicas, 2);
}

#[test]
fn invalid_specs_and_even_sizes_are_reported() {
    let mut cc = cluster();
    cc.spec.replicas = 4;
    let k = kube(3);
    let s = build(&Observation {
        invalid: Some("spec.config.dataDir: set by the operator"),
        ..observation(&cc, &k, None, &Decision::Idle)
    });
    assert_eq!(s.phase.as_deref(), Some("Invalid"));
    assert_eq!(condition(&s, "Ready").reason, "InvalidSpec");
    assert_eq!(condition(&s, "SizeWarning").status, "True");
}

#[test]
fn a_lost_quorum_is_not_ready() {
    let cc = cluster();
    let k = kube(3);
    let mut v = view(&[1, 2, 3], 1);
    v.members[1].healthy = false;
    v.members[2].healthy = false;
    let s = build(&observation(&cc, &k, Some(&v), &Decision::Idle));
    assert_eq!(condition(&s, "Ready").reason, "QuorumLost");
    assert_eq!(condition(&s, "Degraded").reason, "MemberUnhealthy");
    assert_eq!(s.phase.as_deref(), Some("Unavailable"));
}

#[test]
fn a_rolled_pod_that_stays_away_is_a_stalled_roll() {
    let cc = cluster();
    let mut k = kube(3);
    k.pods.pop();
    let v = view(&[1, 2, 3], 1);
    let d = Decision::Wait {
        reason: "RollWaitingForPod".into(),
        message: "x".into(),
    };
    let op = Operation {
        kind: "RollPod".into(),
        server: 3,
        step: "PodDeleted".into(),
        expected_config_version: None,
        started: "1970-01-01T00:10:00Z".into(),
    };
    let mut o = observation(&cc, &k, Some(&v), &d);
    o.operation = Some(op.clone());
    o.now = Timestamp::from_second(600 + 60).unwrap();
    assert_eq!(condition(&build(&o), "Degraded").status, "False");
    o.now = Timestamp::from_second(600 + 301).unwrap();
    let s = build(&o);
    assert_eq!(condition(&s, "Degraded").reason, "RollStalled");
    assert_eq!(s.phase.as_deref(), Some("Upgrading"));
}

#[test]
fn a_member_without_a_pod_has_no_pod_field() {
    // Server-side apply on Kubernetes 1.20 turns "" into null, which the
    // schema refuses: the field is left out instead.
    let cc = cluster();
    let mut k = kube(3);
    k.pods.remove(0);
    let v = view(&[1, 2, 3], 2);
    let s = build(&observation(&cc, &k, Some(&v), &Decision::Idle));
    let json = serde_json::to_value(&s).unwrap();
    assert!(json["members"][0].get("pod").is_none(), "{json}");
    assert_eq!(json["members"][1]["pod"], "zk-1");
}

#[test]
fn a_missing_service_monitor_crd_is_metrics_not_ready_until_it_is_applied() {
    use super::metrics_ready::ServiceMonitorState;
    let mut cc = cluster();
    let k = kube(3);
    let v = view(&[1, 2, 3], 1);
    let at = |second| Timestamp::from_second(second).unwrap();
    let s = build(&Observation {
        service_monitor: Some(ServiceMonitorState::CrdMissing),
        now: at(1_000),
        ..observation(&cc, &k, Some(&v), &Decision::Idle)
    });
    let metrics = condition(&s, "MetricsReady");
    assert_eq!(
        (metrics.status.as_str(), metrics.reason.as_str()),
        ("False", "ServiceMonitorCRDMissing")
    );
    assert!(metrics.message.contains("monitoring.coreos.com/v1"));
    assert!(metrics.message.contains("Prometheus Operator"));
    assert!(
        metrics
            .message
            .contains("spec.metrics.serviceMonitor.enabled")
    );
    // Metrics are no part of serving.
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(condition(&s, "Ready").status, "True");

    // Still missing later: the condition keeps its transition time; a
    // reconcile that did not look (invalid spec) leaves it as it was.
    cc.status = Some(s);
    let s = build(&Observation {
        service_monitor: Some(ServiceMonitorState::CrdMissing),
        now: at(2_000),
        ..observation(&cc, &k, Some(&v), &Decision::Idle)
    });
    assert_eq!(
        condition(&s, "MetricsReady").last_transition_time,
        Time(at(1_000))
    );
    cc.status = Some(s);
    let s = build(&Observation {
        service_monitor: None,
        now: at(2_500),
        ..observation(&cc, &k, Some(&v), &Decision::Idle)
    });
    assert_eq!(
        condition(&s, "MetricsReady").reason,
        "ServiceMonitorCRDMissing"
    );

    // The CRDs installed: applied, True, and the transition is now.
    cc.status = Some(s);
    let s = build(&Observation {
        service_monitor: Some(ServiceMonitorState::Applied),
        now: at(3_000),
        ..observation(&cc, &k, Some(&v), &Decision::Idle)
    });
    let metrics = condition(&s, "MetricsReady");
    assert_eq!(
        (metrics.status.as_str(), metrics.reason.as_str()),
        ("True", "ServiceMonitorApplied")
    );
    assert_eq!(metrics.last_transition_time, Time(at(3_000)));
}

#[test]
fn no_service_monitor_asked_for_is_metrics_ready() {
    use super::metrics_ready::ServiceMonitorState;
    let cc = cluster();
    let k = kube(3);
    let s = build(&Observation {
        service_monitor: Some(ServiceMonitorState::Disabled),
        ..observation(&cc, &k, None, &Decision::Idle)
    });
    let metrics = condition(&s, "MetricsReady");
    assert_eq!(
        (metrics.status.as_str(), metrics.reason.as_str()),
        ("True", "ServiceMonitorDisabled")
    );
}

#[test]
fn voters_sharing_a_node_are_a_placement_warning() {
    let cc = cluster();
    let v = view(&[1, 2, 3], 1);
    let spread = kube(3);
    let s = build(&observation(&cc, &spread, Some(&v), &Decision::Idle));
    let placement = condition(&s, "PlacementWarning");
    assert_eq!(
        (placement.status.as_str(), placement.reason.as_str()),
        ("False", "VotersSpread")
    );

    let mut shared = kube(3);
    shared.pods[2].node = Some("node-1".into());
    let s = build(&observation(&cc, &shared, Some(&v), &Decision::Idle));
    let placement = condition(&s, "PlacementWarning");
    assert_eq!(
        (placement.status.as_str(), placement.reason.as_str()),
        ("True", "VotersShareNode")
    );
    assert!(
        placement
            .message
            .contains("servers 1 and 3 run on node node-1"),
        "{}",
        placement.message
    );
}

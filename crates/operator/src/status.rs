//! The status a reconcile writes, as a pure function of what it observed
//! and decided: the members and the leader from one read of the ensemble,
//! the operation in flight, and conditions a person can act on (`Ready`:
//! a quorum serves; `Progressing`: a scale, roll or membership change is
//! under way or waiting; `Degraded`: something is unhealthy while the
//! cluster is still expected to serve; `SizeWarning`: an even number of
//! voters; `MetricsReady`: the ServiceMonitor asked for is in place,
//! `metrics_ready.rs`; `UpgradeAllowed`: the image change is one the version
//! policy allows, `version.rs`). No copy of the spec.

pub mod metrics_ready;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use self::metrics_ready::ServiceMonitorState;
use crate::build::Names;
use crate::crd::{
    CoordinationCluster, CoordinationClusterStatus, MemberStatus, Operation, RecoveryStatus,
};
use crate::decide::{Decision, HANDED_OVER, KubeState, ROLL_POD};

/// How long a rolled pod may take to come back before the roll is
/// reported stalled.
const ROLL_STALL_SECS: i64 = 300;
use crate::build::services::client_address;
use crate::observe::EnsembleView;
use crate::version::SKIP_VERSION_CHECK;

/// What the status is built from.
#[derive(Debug)]
pub struct Observation<'a> {
    pub cluster: &'a CoordinationCluster,
    pub kube: &'a KubeState,
    pub ensemble: Option<&'a EnsembleView>,
    pub ensemble_error: Option<&'a str>,
    pub decision: &'a Decision,
    /// The operation after this reconcile's action (None once done).
    pub operation: Option<Operation>,
    /// Why the spec cannot be built, if it cannot.
    pub invalid: Option<&'a str>,
    /// What went wrong carrying out the decision, if anything.
    pub action_error: Option<&'a str>,
    /// What became of the ServiceMonitor; None when it was not looked at
    /// (an invalid spec applies nothing), which keeps the condition as it
    /// was.
    pub service_monitor: Option<ServiceMonitorState>,
    /// The last recovery from a lost quorum (kept in status for zoo.cfg).
    pub recovery: Option<RecoveryStatus>,
    pub version: VersionCheck<'a>,
    pub now: Timestamp,
}

/// What the version policy said about `spec.image` (`version.rs`).
#[derive(Debug, Clone, Copy, Default)]
pub struct VersionCheck<'a> {
    /// Why the change to `spec.image` is not rolled.
    pub refused: Option<&'a str>,
    /// `conclave.dev/skip-version-check` is set.
    pub skipped: bool,
}

/// Participants whose pods run on the same node (losing that node loses
/// all of them), as a message; None when each has a node of its own.
fn voters_sharing_nodes(o: &Observation<'_>) -> Option<String> {
    let view = o.ensemble?;
    let mut by_node: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for member in view.members.iter().filter(|m| m.participant) {
        if let Some(node) = o.kube.pod(member.id).and_then(|p| p.node.as_deref()) {
            by_node.entry(node).or_default().push(member.id);
        }
    }
    let shared: Vec<String> = by_node
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(node, ids)| {
            let (last, rest) = ids.split_last().unwrap_or((&0, &[]));
            let rest: Vec<String> = rest.iter().map(u64::to_string).collect();
            format!("servers {} and {last} run on node {node}", rest.join(", "))
        })
        .collect();
    if shared.is_empty() {
        return None;
    }
    Some(format!(
        "{}: losing that node loses all of them (spec.pod.affinity or topologySpreadConstraints, or more nodes)",
        shared.join("; ")
    ))
}

pub fn build(o: &Observation<'_>) -> CoordinationClusterStatus {
    let cc = o.cluster;
    let previous = cc.status.clone().unwrap_or_default();
    let generation = cc.metadata.generation;
    let names = Names::of(cc).ok();
    let ready_replicas = o.kube.pods.iter().filter(|p| p.ready).count();
    let members: Vec<MemberStatus> = o
        .ensemble
        .map(|view| {
            view.members
                .iter()
                .map(|m| {
                    let pod = o.kube.pod(m.id);
                    MemberStatus {
                        id: m.id,
                        // Absent rather than "": server-side apply on
                        // Kubernetes 1.20 turns an empty string into null,
                        // which the schema refuses.
                        pod: pod.map(|p| p.name.clone()),
                        role: if m.leader {
                            "leader"
                        } else if m.participant {
                            "follower"
                        } else {
                            "observer"
                        }
                        .to_owned(),
                        last_zxid: m.last_zxid.clone(),
                        synced: m.healthy,
                        version: pod.and_then(|p| p.image.clone()),
                    }
                })
                .collect()
        })
        .unwrap_or_else(|| previous.members.clone());
    let images: std::collections::BTreeSet<&String> = o
        .kube
        .pods
        .iter()
        .filter_map(|p| p.image.as_ref())
        .collect();
    let current_version = match images.len() {
        0 => previous.current_version.clone(),
        1 => images.into_iter().next().cloned(),
        _ => Some("mixed".to_owned()),
    };

    let voters: Vec<_> = o
        .ensemble
        .map(|v| v.members.iter().filter(|m| m.participant).collect())
        .unwrap_or_default();
    let healthy_voters = voters.iter().filter(|m| m.healthy).count();
    let quorum = !voters.is_empty() && healthy_voters * 2 > voters.len();

    let mut conditions = previous.conditions.clone();
    let mut set = |type_: &str, status: bool, reason: &str, message: String| {
        set_condition(
            &mut conditions,
            type_,
            status,
            reason,
            &message,
            generation,
            &o.now,
        );
    };

    let ready = if let Some(reason) = o.invalid {
        set("Ready", false, "InvalidSpec", reason.to_owned());
        false
    } else if o.ensemble.is_none() {
        set(
            "Ready",
            false,
            "EnsembleUnreachable",
            o.ensemble_error.unwrap_or("no server answered").to_owned(),
        );
        false
    } else if quorum {
        set(
            "Ready",
            true,
            "QuorumServing",
            format!(
                "{healthy_voters} of {} voters healthy, leader {}",
                voters.len(),
                o.ensemble.map(|v| v.leader).unwrap_or_default()
            ),
        );
        true
    } else {
        set(
            "Ready",
            false,
            "QuorumLost",
            format!("{healthy_voters} of {} voters healthy", voters.len()),
        );
        false
    };

    let (progressing, progress_reason, progress_message) = match (o.decision, &o.operation) {
        (Decision::Wait { reason, message }, _) if reason == "Paused" => {
            (false, reason.clone(), message.clone())
        }
        (_, Some(op)) => (
            true,
            op.kind.clone(),
            format!("{} server {}: {}", op.kind, op.server, op.step),
        ),
        (Decision::Wait { reason, message }, None) if reason != "EnsembleUnreachable" => {
            (true, reason.clone(), message.clone())
        }
        _ => (false, "Idle".to_owned(), "nothing to change".to_owned()),
    };
    let progress_message = match o.action_error {
        Some(err) => format!("{progress_message} (last attempt: {err})"),
        None => progress_message,
    };
    // A wait inside an operation says why in the message.
    let (progress_reason, progress_message) = match o.decision {
        Decision::Wait { reason, message } if progressing && reason != &progress_reason => (
            reason.clone(),
            format!("{progress_message}; waiting: {message}"),
        ),
        _ => (progress_reason, progress_message),
    };
    set(
        "Progressing",
        progressing,
        &progress_reason,
        progress_message,
    );

    let unready: Vec<&str> = o
        .kube
        .pods
        .iter()
        .filter(|p| !p.ready)
        .map(|p| p.name.as_str())
        .collect();
    let sick: Vec<String> = voters
        .iter()
        .filter(|m| !m.healthy)
        .map(|m| m.id.to_string())
        .collect();
    // A rolled pod that has not come back within ROLL_STALL is a stalled
    // roll: said, never skipped.
    let stalled_pod = o
        .operation
        .as_ref()
        .filter(|op| op.kind == ROLL_POD && op.step != HANDED_OVER)
        .filter(|op| {
            op.started
                .parse::<Timestamp>()
                .is_ok_and(|started| o.now.duration_since(started).as_secs() > ROLL_STALL_SECS)
        })
        .map(|op| {
            (
                "RollStalled".to_owned(),
                format!(
                    "server {}'s pod has not come back Ready and caught up since {}; the roll resumes when it does",
                    op.server, op.started
                ),
            )
        });
    let degraded = if let Decision::Wait { reason, message } = o.decision {
        (reason == "RollStalled").then(|| ("RollStalled".to_owned(), message.clone()))
    } else {
        None
    }
    .or(stalled_pod)
    .or_else(|| {
        (!sick.is_empty()).then(|| {
            (
                "MemberUnhealthy".to_owned(),
                format!("servers not healthy: {}", sick.join(", ")),
            )
        })
    })
    .or_else(|| {
        // A pod that is not Ready while no change is under way.
        (!unready.is_empty() && o.operation.is_none()).then(|| {
            (
                "PodNotReady".to_owned(),
                format!("pods not Ready: {}", unready.join(", ")),
            )
        })
    });
    match degraded {
        Some((reason, message)) => set("Degraded", true, &reason, message),
        None => set(
            "Degraded",
            false,
            "Healthy",
            "every member is healthy".to_owned(),
        ),
    }

    if cc.spec.replicas % 2 == 0 {
        set(
            "SizeWarning",
            true,
            "EvenReplicas",
            format!(
                "{} voters tolerate no more failures than {}; an odd number is recommended",
                cc.spec.replicas,
                cc.spec.replicas - 1
            ),
        );
    } else {
        set(
            "SizeWarning",
            false,
            "OddReplicas",
            "the size is odd".to_owned(),
        );
    }

    match voters_sharing_nodes(o) {
        Some(message) => set("PlacementWarning", true, "VotersShareNode", message),
        None => set(
            "PlacementWarning",
            false,
            "VotersSpread",
            "every participant runs on a node of its own".to_owned(),
        ),
    }

    let (allowed, reason, message) = match (o.version.refused, o.version.skipped) {
        (Some(why), _) => (false, "PathRefused", why.to_owned()),
        (None, true) => (
            true,
            "CheckSkipped",
            format!("{SKIP_VERSION_CHECK} is set: any image change is rolled"),
        ),
        (None, false) => (
            true,
            "PathAllowed",
            format!("rolling to {} is allowed", cc.spec.image),
        ),
    };
    set("UpgradeAllowed", allowed, reason, message);

    if let Some(state) = o.service_monitor {
        let cluster = cc.metadata.name.as_deref().unwrap_or_default();
        let (ok, reason, message) = metrics_ready::condition(state, cluster);
        set(metrics_ready::METRICS_READY, ok, reason, message);
    }

    let phase = if o.invalid.is_some() {
        "Invalid"
    } else if cc.spec.paused {
        "Paused"
    } else if o.ensemble.is_none() {
        if previous.config_version.is_some() {
            "Unavailable"
        } else {
            "Creating"
        }
    } else if o.operation.as_ref().is_some_and(|op| op.kind == ROLL_POD)
        || matches!(o.decision, Decision::DeletePod { .. })
    {
        "Upgrading"
    } else if o.operation.is_some() {
        "Scaling"
    } else if !ready {
        "Unavailable"
    } else if degraded_is_set(&conditions) {
        "Degraded"
    } else {
        "Running"
    };

    CoordinationClusterStatus {
        phase: Some(phase.to_owned()),
        observed_generation: generation,
        replicas: i32::try_from(o.kube.pods.len()).unwrap_or(i32::MAX),
        ready_replicas: i32::try_from(ready_replicas).unwrap_or(i32::MAX),
        selector: names.as_ref().map(crate::build::selector),
        members,
        leader: o.ensemble.map(|v| v.leader),
        config_version: o
            .ensemble
            .map(|v| v.version.clone())
            .or(previous.config_version),
        current_version,
        target_version: Some(cc.spec.image.clone()),
        internal_tls: o.kube.template_internal_tls,
        operation: o.operation.clone(),
        connection_string: names
            .as_ref()
            .map(|n| client_address(n, cc.spec.ports.client)),
        secure_connection_string: names
            .as_ref()
            .zip(cc.spec.tls.as_ref())
            .map(|(n, tls)| client_address(n, tls.port)),
        recovery: o.recovery.clone(),
        conditions,
    }
}

fn degraded_is_set(conditions: &[Condition]) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == "Degraded" && c.status == "True")
}

/// Sets a condition, keeping its transition time when the status did not
/// change.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Timestamp,
) {
    let status = if status { "True" } else { "False" }.to_owned();
    let existing = conditions.iter().position(|c| c.type_ == type_);
    let transition = match existing.map(|i| &conditions[i]) {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(*now),
    };
    let condition = Condition {
        type_: type_.to_owned(),
        status,
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: generation,
        last_transition_time: transition,
    };
    match existing {
        Some(i) => conditions[i] = condition,
        None => conditions.push(condition),
    }
}

#[cfg(test)]
mod tests;

//! What to do next, as a pure function of everything observed: the spec,
//! the Kubernetes objects (StatefulSet, pods, volume claims), the
//! ensemble's committed membership (read from the leader) and the
//! operation recorded in status. One action per reconcile; every action is
//! safe to repeat, and the next one is derived again from live state, so an
//! operator restarted at any point resumes where the last one stopped.
//!
//! Order of concerns:
//! 1. `spec.paused` stops every change.
//! 2. A recovery from a lost quorum, asked for by a person
//!    (`recovery.rs`).
//! 3. An operation in flight (recorded in status) is finished first: a new
//!    spec waits for it (membership steps are pinned to its target).
//! 4. Membership (`plan.rs`): one server added or removed at a time.
//! 5. Volumes of servers that left, by the reclaim policy.
//! 6. Rolling outdated pods (controller-revision-hash ≠ the StatefulSet's
//!    update revision): unready ones first, then followers, the leader
//!    last after handing leadership to an updated follower; each deletion
//!    only while every voter is healthy and every pod Ready.

use crate::crd::{InternalTlsStage, Operation, ReclaimPolicy};
use crate::observe::EnsembleView;
use crate::plan::{self, Desired, InFlight, Observed, Step};

/// A pod of the cluster's StatefulSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodState {
    pub name: String,
    /// Server id (ordinal + 1).
    pub id: u64,
    pub ip: Option<String>,
    /// The phase is Running.
    pub running: bool,
    /// The Ready condition is True.
    pub ready: bool,
    /// Its `controller-revision-hash` label.
    pub revision: Option<String>,
    /// It has a deletion timestamp.
    pub terminating: bool,
    /// The server container's image.
    pub image: Option<String>,
    /// The node it was scheduled to.
    pub node: Option<String>,
}

/// The Kubernetes side, as observed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KubeState {
    /// The StatefulSet's `spec.replicas`, if it exists.
    pub statefulset_replicas: Option<u64>,
    /// Its `status.updateRevision`.
    pub update_revision: Option<String>,
    /// The server image its pod template names.
    pub template_image: Option<String>,
    /// The internal TLS stage its pod template runs (`Off` when the
    /// template says none; `None` without a StatefulSet).
    pub template_internal_tls: Option<InternalTlsStage>,
    /// The StatefulSet controller has seen its latest spec (its
    /// `status.observedGeneration`), so `update_revision` is the current
    /// template's.
    pub rollout_observed: bool,
    pub pods: Vec<PodState>,
    /// The data volume claims: (server id, claim name).
    pub volumes: Vec<(u64, String)>,
}

impl KubeState {
    pub fn pod(&self, id: u64) -> Option<&PodState> {
        self.pods.iter().find(|p| p.id == id)
    }

    /// Every pod of the StatefulSet exists, runs its current template and
    /// is Ready: a roll, if there was one, is over.
    pub fn rolled_out(&self) -> bool {
        self.rollout_observed
            && self.update_revision.is_some()
            && self.outdated().is_empty()
            && self.statefulset_replicas == u64::try_from(self.pods.len()).ok()
            && self.pods.iter().all(|p| !p.terminating && p.ready)
    }

    fn outdated(&self) -> Vec<&PodState> {
        match &self.update_revision {
            Some(revision) => self
                .pods
                .iter()
                .filter(|p| p.revision.as_ref() != Some(revision))
                .collect(),
            None => Vec::new(),
        }
    }
}

/// Operation kinds recorded in `status.operation.kind`.
pub const ADD_SERVER: &str = "AddServer";
pub const ADD_OBSERVER: &str = "AddObserver";
pub const REMOVE_SERVER: &str = "RemoveServer";
pub const PROMOTE_SERVER: &str = "PromoteServer";
pub const DEMOTE_SERVER: &str = "DemoteServer";
pub const ROLL_POD: &str = "RollPod";
/// The step of a roll that moved leadership off the next pod to roll.
pub const HANDED_OVER: &str = "LeadershipTransferred";
pub const RECOVER_QUORUM: &str = "RecoverQuorum";
/// The steps of a recovery: asked for; every pod restarted with the
/// recovery in zoo.cfg.
pub const RECOVERY_STARTED: &str = "Started";
pub const PODS_RESTARTED: &str = "PodsRestarted";

mod recovery;
pub use recovery::parse_annotation;

/// The one action of this reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to change.
    Idle,
    /// A change is due but must wait; `reason` is CamelCase for conditions
    /// and Events, `message` says why for a person.
    Wait { reason: String, message: String },
    /// Set the StatefulSet's replicas (`server` is the server that is
    /// being added, as an observer or not, or that left).
    ScaleStatefulSet {
        replicas: u64,
        server: u64,
        observer: bool,
    },
    /// Add server `id` as a participant, or as an observer.
    Add {
        id: u64,
        observer: bool,
        expected_version: String,
    },
    /// Remove server `id`.
    Remove { id: u64, expected_version: String },
    /// Make observer `id` a participant.
    Promote { id: u64, expected_version: String },
    /// Make participant `id` an observer.
    Demote { id: u64, expected_version: String },
    /// Move leadership off `from` (to `to`, or the most caught-up).
    TransferLeadership {
        from: u64,
        to: Option<u64>,
        /// The operation this is a step of.
        kind: &'static str,
    },
    /// Delete an outdated pod; the StatefulSet re-creates it.
    DeletePod { id: u64, name: String },
    /// Delete the volume claim of a server that is not a member.
    DeleteVolume { id: u64, claim: String },
    /// Record that the ensemble is to be recovered from `server` (nothing
    /// else is touched yet).
    StartRecovery { server: u64 },
    /// zoo.cfg names the recovery (`conclave.recoverAlone`); delete every
    /// pod, so that each starts again reading it: `server` recovers alone,
    /// the others set their stores aside.
    RestartForRecovery {
        server: u64,
        token: String,
        pods: Vec<String>,
    },
    /// `server` leads alone: the recovery is done; the annotation that
    /// asked for it goes.
    FinishRecovery { server: u64 },
}

impl Decision {
    fn wait(reason: &str, message: impl Into<String>) -> Decision {
        Decision::Wait {
            reason: reason.to_owned(),
            message: message.into(),
        }
    }

    /// The operation this action is a step of, for status: (kind, server,
    /// step).
    pub fn operation(&self) -> Option<(&'static str, u64, &'static str)> {
        match self {
            Decision::Idle | Decision::Wait { .. } => None,
            Decision::ScaleStatefulSet {
                replicas,
                server,
                observer,
            } => Some(if replicas >= server {
                (add_kind(*observer), *server, "PodCreated")
            } else {
                (REMOVE_SERVER, *server, "PodRemoved")
            }),
            Decision::Add { id, observer, .. } => Some((add_kind(*observer), *id, "MemberAdded")),
            Decision::Remove { id, .. } => Some((REMOVE_SERVER, *id, "MemberRemoved")),
            Decision::Promote { id, .. } => Some((PROMOTE_SERVER, *id, "MemberPromoted")),
            Decision::Demote { id, .. } => Some((DEMOTE_SERVER, *id, "MemberDemoted")),
            Decision::TransferLeadership { from, kind, .. } => Some((kind, *from, HANDED_OVER)),
            Decision::DeletePod { id, .. } => Some((ROLL_POD, *id, "PodDeleted")),
            Decision::DeleteVolume { id, .. } => Some((REMOVE_SERVER, *id, "VolumeDeleted")),
            Decision::StartRecovery { server } => Some((RECOVER_QUORUM, *server, RECOVERY_STARTED)),
            Decision::RestartForRecovery { server, .. } => {
                Some((RECOVER_QUORUM, *server, PODS_RESTARTED))
            }
            Decision::FinishRecovery { .. } => None,
        }
    }
}

fn add_kind(observer: bool) -> &'static str {
    if observer { ADD_OBSERVER } else { ADD_SERVER }
}

/// The unfinished membership operation `op` stands for, if it is one.
fn in_flight(op: &Operation) -> Option<InFlight> {
    let id = op.server;
    Some(match op.kind.as_str() {
        ADD_SERVER => InFlight::Add {
            id,
            observer: false,
        },
        ADD_OBSERVER => InFlight::Add { id, observer: true },
        REMOVE_SERVER => InFlight::Remove { id },
        PROMOTE_SERVER => InFlight::Promote { id },
        DEMOTE_SERVER => InFlight::Demote { id },
        _ => return None,
    })
}

/// Everything `decide` reads.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub desired: Desired,
    pub paused: bool,
    pub reclaim: ReclaimPolicy,
    pub kube: &'a KubeState,
    pub ensemble: Option<&'a EnsembleView>,
    /// Why the ensemble could not be read.
    pub ensemble_error: Option<&'a str>,
    pub operation: Option<&'a Operation>,
    /// The survivor named by `conclave.dev/recover-from`, or why the
    /// annotation is not one.
    pub recover_from: Option<Result<u64, String>>,
}

/// Whether the operation recorded in status has reached its end state.
pub fn operation_done(op: &Operation, kube: &KubeState, view: &EnsembleView) -> bool {
    let member = view.members.iter().find(|m| m.id == op.server);
    match op.kind.as_str() {
        ADD_SERVER | PROMOTE_SERVER => member.is_some_and(|m| m.participant),
        ADD_OBSERVER | DEMOTE_SERVER => member.is_some_and(|m| !m.participant),
        REMOVE_SERVER => {
            member.is_none() && kube.statefulset_replicas.is_some_and(|r| r < op.server)
        }
        // A handover before the leader's pod is rolled: done once it leads
        // no more.
        ROLL_POD if op.step == HANDED_OVER => view.leader != op.server,
        // Before the pods are restarted, a leader that appears ends it: the
        // quorum was not lost after all. After, the survivor leading does.
        RECOVER_QUORUM if op.step == RECOVERY_STARTED => true,
        RECOVER_QUORUM => view.leader == op.server,
        ROLL_POD => {
            let pod_back = kube.pod(op.server).is_some_and(|p| {
                !p.terminating
                    && p.ready
                    && p.revision.is_some()
                    && p.revision == kube.update_revision
            });
            pod_back && member.is_none_or(|m| m.healthy)
        }
        _ => true,
    }
}

pub fn decide(inputs: &Inputs<'_>) -> Decision {
    if inputs.paused {
        return Decision::wait("Paused", "spec.paused is true: no changes are made");
    }
    if let Some(decision) = recovery::decide(inputs) {
        return decision;
    }
    let Some(view) = inputs.ensemble else {
        return Decision::wait(
            "EnsembleUnreachable",
            format!(
                "no server answered as leader: {}",
                inputs.ensemble_error.unwrap_or("no answer")
            ),
        );
    };
    let Some(statefulset_replicas) = inputs.kube.statefulset_replicas else {
        return Decision::wait("StatefulSetMissing", "the StatefulSet is being created");
    };

    // A pod deleted by a roll must be back, updated and healthy, before
    // anything else happens; unless it came back on a template that has
    // since been replaced (a bad template fixed while that pod could not
    // run): then it is outdated, and the roll replaces it first.
    if let Some(op) = inputs.operation
        && op.kind == ROLL_POD
        && op.step != HANDED_OVER
        && !operation_done(op, inputs.kube, view)
        && !inputs.kube.pod(op.server).is_some_and(|p| {
            !p.terminating && p.revision.is_some() && p.revision != inputs.kube.update_revision
        })
    {
        return Decision::wait(
            "RollWaitingForPod",
            format!(
                "server {}'s pod was deleted to be updated; the roll goes on once it is back, Ready and caught up",
                op.server
            ),
        );
    }

    // A membership operation in flight is carried on until it is done; a
    // new spec waits for it.
    let observed = Observed {
        members: view.members.clone(),
        version: view.version.clone(),
        statefulset_replicas,
    };
    let step = match inputs
        .operation
        .filter(|op| !operation_done(op, inputs.kube, view))
        .and_then(in_flight)
    {
        Some(op) => plan::continue_step(op, &observed),
        None => plan::next_step(inputs.desired, &observed),
    };
    match step {
        Step::Wait(message) => return Decision::wait("MemberUnhealthy", message),
        Step::ScaleStatefulSet(replicas) => {
            // The server a grown StatefulSet's new pod is for joins as an
            // observer when that is what the step in flight or the spec's
            // shortage makes it.
            let observer = adding_observer(inputs, view, replicas);
            if replicas > statefulset_replicas {
                // A volume left by an earlier server with this id carries
                // data of a removed server: it would refuse to start.
                if let Some((id, claim)) =
                    inputs.kube.volumes.iter().find(|(id, _)| *id == replicas)
                {
                    return Decision::DeleteVolume {
                        id: *id,
                        claim: claim.clone(),
                    };
                }
                return Decision::ScaleStatefulSet {
                    replicas,
                    server: replicas,
                    observer,
                };
            }
            return Decision::ScaleStatefulSet {
                replicas,
                server: statefulset_replicas,
                observer: false,
            };
        }
        Step::Add {
            id,
            observer,
            expected_version,
        } => {
            return match inputs.kube.pod(id) {
                Some(pod) if pod.running && pod.ip.is_some() && !pod.terminating => Decision::Add {
                    id,
                    observer,
                    expected_version,
                },
                _ => Decision::wait(
                    "WaitingForPod",
                    format!("server {id}'s pod is not running yet; it is added once it is"),
                ),
            };
        }
        Step::Remove {
            id,
            expected_version,
        } => {
            return Decision::Remove {
                id,
                expected_version,
            };
        }
        Step::Promote {
            id,
            expected_version,
        } => {
            return Decision::Promote {
                id,
                expected_version,
            };
        }
        Step::Demote {
            id,
            expected_version,
        } => {
            return Decision::Demote {
                id,
                expected_version,
            };
        }
        Step::TransferLeadership { from } => {
            return Decision::TransferLeadership {
                from,
                to: None,
                kind: REMOVE_SERVER,
            };
        }
        Step::Done => {}
    }

    // Volumes of servers that left (their pods gone), by the policy.
    if inputs.reclaim == ReclaimPolicy::Delete
        && let Some((id, claim)) = inputs.kube.volumes.iter().find(|(id, _)| {
            *id > statefulset_replicas
                && view.members.iter().all(|m| m.id != *id)
                && inputs.kube.pod(*id).is_none()
        })
    {
        return Decision::DeleteVolume {
            id: *id,
            claim: claim.clone(),
        };
    }

    roll(inputs.kube, view)
}

/// Whether the server whose pod a grown StatefulSet gets is to be an
/// observer: as the operation in flight says, or else as the spec's
/// shortage says (participants first).
fn adding_observer(inputs: &Inputs<'_>, view: &EnsembleView, replicas: u64) -> bool {
    if let Some(op) = inputs.operation.filter(|op| op.server == replicas) {
        return op.kind == ADD_OBSERVER;
    }
    let voters = view.members.iter().filter(|m| m.participant).count() as u64;
    voters >= inputs.desired.participants
}

/// The next pod of a rolling update.
fn roll(kube: &KubeState, view: &EnsembleView) -> Decision {
    let outdated = kube.outdated();
    if outdated.is_empty() {
        return Decision::Idle;
    }
    if let Some(id) = kube
        .statefulset_replicas
        .and_then(|n| (1..=n).find(|id| kube.pod(*id).is_none()))
    {
        return Decision::wait("RollWaitingForPod", format!("server {id} has no pod yet"));
    }
    if let Some(pod) = kube.pods.iter().find(|p| p.terminating) {
        return Decision::wait(
            "RollWaitingForPod",
            format!("pod {} is terminating", pod.name),
        );
    }
    // An outdated pod that is not serving anyway goes first: replacing it
    // costs nothing and may be what brings it back (a bad template fixed).
    if let Some(pod) = outdated.iter().find(|p| !p.ready) {
        let others_healthy = view
            .members
            .iter()
            .filter(|m| m.participant && m.id != pod.id)
            .all(|m| m.healthy);
        if others_healthy {
            return Decision::DeletePod {
                id: pod.id,
                name: pod.name.clone(),
            };
        }
    }
    if let Some(pod) = kube.pods.iter().find(|p| !p.ready) {
        return Decision::wait(
            "RollStalled",
            format!("pod {} is not Ready; the roll resumes when it is", pod.name),
        );
    }
    if let Some(m) = view.members.iter().find(|m| m.participant && !m.healthy) {
        return Decision::wait(
            "RollStalled",
            format!(
                "server {} is not healthy; the roll resumes when it is",
                m.id
            ),
        );
    }
    if let Some(pod) = outdated.iter().find(|p| p.id != view.leader) {
        return Decision::DeletePod {
            id: pod.id,
            name: pod.name.clone(),
        };
    }
    // Only the leader is outdated: hand leadership to an updated follower.
    let updated_follower = view
        .members
        .iter()
        .filter(|m| m.participant && m.id != view.leader && m.healthy)
        .find(|m| {
            kube.pod(m.id)
                .is_some_and(|p| p.revision == kube.update_revision)
        })
        .map(|m| m.id);
    match (updated_follower, outdated.first()) {
        (Some(to), _) => Decision::TransferLeadership {
            from: view.leader,
            to: Some(to),
            kind: ROLL_POD,
        },
        // A single server has no one to hand over to: its restart is an
        // outage, which a one-server cluster accepts.
        (None, Some(pod)) if view.members.iter().filter(|m| m.participant).count() == 1 => {
            Decision::DeletePod {
                id: pod.id,
                name: pod.name.clone(),
            }
        }
        _ => Decision::wait(
            "RollWaitingForFollower",
            "no updated, healthy follower to hand leadership to",
        ),
    }
}

#[cfg(test)]
mod tests;

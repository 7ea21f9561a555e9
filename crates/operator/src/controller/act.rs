//! Carrying out one decision: a membership change or leadership transfer
//! through the leader's admin API, deleting a pod or a volume claim, or a
//! step of a recovery from a lost quorum.
//! (Scaling the StatefulSet is part of applying it.) Each action is
//! announced as an Event; a refusal is an Event too, and the next
//! reconcile decides again from live state.

use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource as _};

use super::{Context, Error};
use crate::admin::{AdminAddress, ChangeAnswer, Ensemble};
use crate::build::Names;
use crate::crd::{CoordinationCluster, RECOVER_FROM_ANNOTATION};
use crate::decide::Decision;
use crate::observe::EnsembleView;

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Nothing was to be done.
    Nothing,
    /// Done (or, for a pod or claim, asked of the API server).
    Done,
    /// The ensemble or the API server refused or did not answer; the
    /// message says why.
    Failed(String),
}

pub(super) struct Target<'a> {
    pub cc: &'a CoordinationCluster,
    pub names: &'a Names,
    pub view: Option<&'a EnsembleView>,
    /// Admin address of each server.
    pub servers: &'a [(u64, AdminAddress)],
    pub token: &'a str,
}

pub(super) async fn act<E: Ensemble>(
    ctx: &Context<E>,
    target: &Target<'_>,
    decision: &Decision,
) -> Result<Outcome, Error> {
    let names = target.names;
    let ports = &target.cc.spec.ports;
    let leader_addr = target
        .view
        .and_then(|v| target.servers.iter().find(|(id, _)| *id == v.leader))
        .map(|(_, addr)| addr);
    let outcome = match decision {
        Decision::Idle | Decision::Wait { .. } => return Ok(Outcome::Nothing),
        Decision::ScaleStatefulSet {
            replicas, server, ..
        } => {
            let note = if replicas >= server {
                format!("StatefulSet grown to {replicas} pods: server {server}'s pod is created")
            } else {
                format!("StatefulSet shrunk to {replicas} pods: server {server} has left")
            };
            publish(
                ctx,
                target.cc,
                EventType::Normal,
                "StatefulSetScaled",
                "Scale",
                note,
                pod_of(names, *server),
            )
            .await;
            return Ok(Outcome::Done);
        }
        Decision::Add {
            id,
            observer,
            expected_version,
        } => {
            let role = if *observer { "observer" } else { "participant" };
            let line = format!(
                "server.{id}={}:{}:{}:{role};{}",
                names.server_host(*id),
                ports.quorum,
                ports.election,
                ports.client
            );
            let body = serde_json::json!({"server": line, "expected_version": expected_version});
            announced_change(
                ctx,
                target,
                leader_addr,
                ("/membership/add", body, "AddMember", *id),
                (
                    "MemberAdded",
                    format!(
                        "server {id} caught up and was added as {}",
                        if *observer {
                            "an observer"
                        } else {
                            "a participant"
                        }
                    ),
                ),
                (
                    "ScaleRefused",
                    format!("adding server {id} did not happen now"),
                ),
            )
            .await
        }
        Decision::Remove {
            id,
            expected_version,
        } => {
            change_member(
                ctx,
                target,
                leader_addr,
                ("/membership/remove", "RemoveMember", *id, expected_version),
                (
                    "MemberRemoved",
                    format!("server {id} was removed from the ensemble"),
                ),
                "removing",
            )
            .await
        }
        Decision::Promote {
            id,
            expected_version,
        } => {
            change_member(
                ctx,
                target,
                leader_addr,
                (
                    "/membership/promote",
                    "PromoteMember",
                    *id,
                    expected_version,
                ),
                (
                    "MemberPromoted",
                    format!(
                        "observer {id} became a participant (so that the top server can leave)"
                    ),
                ),
                "promoting",
            )
            .await
        }
        Decision::Demote {
            id,
            expected_version,
        } => {
            change_member(
                ctx,
                target,
                leader_addr,
                ("/membership/demote", "DemoteMember", *id, expected_version),
                (
                    "MemberDemoted",
                    format!("participant {id} became an observer"),
                ),
                "demoting",
            )
            .await
        }
        Decision::TransferLeadership { from, to, .. } => {
            let body = match to {
                Some(to) => serde_json::json!({"to": to}),
                None => serde_json::json!({}),
            };
            announced_change(
                ctx,
                target,
                leader_addr,
                ("/leader/transfer", body, "TransferLeadership", *from),
                (
                    "LeadershipTransferred",
                    format!("leadership moved off server {from}"),
                ),
                (
                    "LeadershipTransferFailed",
                    format!("moving leadership off server {from} failed"),
                ),
            )
            .await
        }
        Decision::DeletePod { id, name } => {
            let api = Api::<Pod>::namespaced(ctx.client.clone(), &names.namespace);
            delete(&api, name).await?;
            publish(
                ctx,
                target.cc,
                EventType::Normal,
                "PodRolled",
                "RollPod",
                format!("pod {name} (server {id}) deleted to run the current template"),
                pod_of(names, *id),
            )
            .await;
            Outcome::Done
        }
        Decision::DeleteVolume { id, claim } => {
            let api =
                Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &names.namespace);
            delete(&api, claim).await?;
            publish(
                ctx,
                target.cc,
                EventType::Normal,
                "VolumeDeleted",
                "ReclaimVolume",
                format!("volume claim {claim} of server {id}, which is not a member, deleted"),
                reference(names, "PersistentVolumeClaim", "v1", claim.clone()),
            )
            .await;
            Outcome::Done
        }
        Decision::StartRecovery { server } => {
            publish(
                ctx,
                target.cc,
                EventType::Warning,
                "QuorumRecoveryStarted",
                "RecoverQuorum",
                format!(
                    "recovering the ensemble from server {server}, as {RECOVER_FROM_ANNOTATION} \
                     asks: every pod restarts; server {server} becomes the only member with its \
                     data, the others set their data aside and are added back"
                ),
                pod_of(names, *server),
            )
            .await;
            Outcome::Done
        }
        Decision::RestartForRecovery { server, pods, .. } => {
            let api = Api::<Pod>::namespaced(ctx.client.clone(), &names.namespace);
            for pod in pods {
                delete(&api, pod).await?;
            }
            publish(
                ctx,
                target.cc,
                EventType::Warning,
                "PodsRestartedForRecovery",
                "RecoverQuorum",
                format!(
                    "pods {} deleted: they start again with server {server} as the only member",
                    pods.join(", ")
                ),
                pod_of(names, *server),
            )
            .await;
            Outcome::Done
        }
        Decision::FinishRecovery { server } => {
            let api = Api::<CoordinationCluster>::namespaced(ctx.client.clone(), &names.namespace);
            let patch = serde_json::json!({
                "metadata": {"annotations": {RECOVER_FROM_ANNOTATION: null}}
            });
            api.patch(
                &names.cluster,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
            publish(
                ctx,
                target.cc,
                EventType::Normal,
                "QuorumRecovered",
                "RecoverQuorum",
                format!(
                    "server {server} leads alone with its data; the other servers are added back \
                     one at a time"
                ),
                pod_of(names, *server),
            )
            .await;
            Outcome::Done
        }
    };
    Ok(outcome)
}

/// Posts a change to the leader's admin API and announces the outcome as
/// an Event about server `server`'s pod: `done` (reason, note), or `failed`
/// (reason, note to which the cause is appended).
async fn announced_change<E: Ensemble>(
    ctx: &Context<E>,
    target: &Target<'_>,
    leader_addr: Option<&AdminAddress>,
    (path, body, action, server): (&str, serde_json::Value, &str, u64),
    done: (&str, String),
    failed: (&str, String),
) -> Outcome {
    let outcome = change(ctx, leader_addr, path, body, target.token).await;
    let (kind, reason, note) = match &outcome {
        Outcome::Failed(why) => (EventType::Warning, failed.0, format!("{}: {why}", failed.1)),
        Outcome::Done | Outcome::Nothing => (EventType::Normal, done.0, done.1),
    };
    let related = pod_of(target.names, server);
    publish(ctx, target.cc, kind, reason, action, note, related).await;
    outcome
}

/// A change that names one member by id (remove, promote, demote) against
/// the expected config version; a refusal is a `ScaleRefused` Event.
async fn change_member<E: Ensemble>(
    ctx: &Context<E>,
    target: &Target<'_>,
    leader_addr: Option<&AdminAddress>,
    (path, action, id, expected_version): (&str, &str, u64, &str),
    done: (&str, String),
    verb: &str,
) -> Outcome {
    let body = serde_json::json!({"id": id, "expected_version": expected_version});
    announced_change(
        ctx,
        target,
        leader_addr,
        (path, body, action, id),
        done,
        (
            "ScaleRefused",
            format!("{verb} server {id} did not happen now"),
        ),
    )
    .await
}

/// Deletes an object; one already gone is fine.
pub(super) async fn delete<K>(api: &Api<K>, name: &str) -> Result<(), Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn change<E: Ensemble>(
    ctx: &Context<E>,
    leader: Option<&AdminAddress>,
    path: &str,
    body: serde_json::Value,
    token: &str,
) -> Outcome {
    let Some(leader) = leader else {
        return Outcome::Failed("the leader's pod has no address".to_owned());
    };
    match ctx.ensemble.change(leader, path, body, token).await {
        Ok(ChangeAnswer { status: 200, .. }) => Outcome::Done,
        Ok(answer) => Outcome::Failed(format!(
            "{} ({})",
            answer.error().unwrap_or_else(|| "error".to_owned()),
            answer.body.trim()
        )),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Publishes an Event on the resource; a failure to publish is logged, not
/// fatal (the action itself happened).
pub(super) async fn publish<E>(
    ctx: &Context<E>,
    cc: &CoordinationCluster,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
    related: Option<ObjectReference>,
) {
    tracing::info!(cluster = ?cc.metadata.name, reason, %note, "event");
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: action.to_owned(),
        // The pod or claim acted on: it also keeps one server's Event from
        // being folded into another's series.
        secondary: related,
    };
    if let Err(error) = ctx.recorder.publish(&event, &cc.object_ref(&())).await {
        tracing::warn!(%error, reason, "could not publish an Event");
    }
}

/// A reference to a pod or claim of the cluster, for an Event.
fn reference(
    names: &Names,
    kind: &str,
    api_version: &str,
    name: String,
) -> Option<ObjectReference> {
    Some(ObjectReference {
        api_version: Some(api_version.to_owned()),
        kind: Some(kind.to_owned()),
        name: Some(name),
        namespace: Some(names.namespace.clone()),
        ..ObjectReference::default()
    })
}

fn pod_of(names: &Names, id: u64) -> Option<ObjectReference> {
    reference(
        names,
        "Pod",
        "v1",
        format!("{}-{}", names.cluster, id.saturating_sub(1)),
    )
}

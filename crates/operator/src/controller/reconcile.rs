//! One reconcile of a `CoordinationCluster`:
//! 1. read the resource itself (not the controller's cached copy, which may
//!    not have the status the last reconcile wrote yet), observe the
//!    StatefulSet, pods and volume claims, and the ensemble (the leader's
//!    `GET /membership`, one read);
//! 2. decide one action (`crate::decide`);
//! 3. apply the desired objects (the StatefulSet's size is the committed
//!    membership's, or the decided next size), and the ServiceMonitor when
//!    asked for and its CRD is served;
//! 4. carry out the action, with an Event;
//! 5. write status (`crate::status`), including the operation in flight,
//!    so that a restarted operator resumes it.
//!
//! Deletion goes through a finalizer that applies the reclaim policy to
//! the volume claims, which ownerReferences do not cover (claims made from
//! a StatefulSet's template outlive it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};

use rustls_pki_types::ServerName;

use super::act::{self, Outcome, Target};
use super::tls_secret::{self, TlsSecret};
use super::{
    Context, Error, FIELD_MANAGER, FINALIZER, apply, internal_tls, kube_state, service_monitor,
};
use crate::admin::{self, AdminAddress, AdminTls, Ensemble};
use crate::build::config::{self, Server};
use crate::build::{self, Names};
use crate::crd::{
    CoordinationCluster, InternalTlsStage, Operation, RECOVER_FROM_ANNOTATION, ReclaimPolicy,
    RecoveryStatus,
};
use crate::decide::{self, Decision, Inputs, KubeState};
use crate::metrics::{ActionLabel, ClusterLabel};
use crate::observe::{self, EnsembleView};
use crate::plan::Desired;
use crate::status::{self, Observation, VersionCheck};
use crate::version::{self, SKIP_VERSION_CHECK};

/// How often a cluster is looked at while something is under way (the
/// ensemble's state is not a Kubernetes watch event), and when idle.
const BUSY: Duration = Duration::from_secs(5);
const IDLE: Duration = Duration::from_secs(30);

pub(super) fn cluster_label(cc: &CoordinationCluster) -> String {
    format!(
        "{}/{}",
        cc.metadata.namespace.as_deref().unwrap_or_default(),
        cc.metadata.name.as_deref().unwrap_or_default()
    )
}

pub async fn reconcile<E: Ensemble>(
    cc: Arc<CoordinationCluster>,
    ctx: Arc<Context<E>>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let label = ClusterLabel {
        cluster: cluster_label(&cc),
    };
    ctx.metrics.reconciles.get_or_create(&label).inc();
    let ns = cc.metadata.namespace.clone().unwrap_or_default();
    let api = Api::<CoordinationCluster>::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, cc, |event| async {
        match event {
            Finalizer::Apply(cc) => reconcile_cluster(&cc, &ctx).await,
            Finalizer::Cleanup(cc) => cleanup(&cc, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    });
    ctx.metrics
        .duration
        .get_or_create(&label)
        .observe(started.elapsed().as_secs_f64());
    result
}

/// The servers zoo.cfg lists: the committed membership (or, before the
/// ensemble was ever read, the initial one), plus the pods beyond it (a
/// joining server lists itself).
fn zoo_cfg_servers(
    cc: &CoordinationCluster,
    view: Option<&EnsembleView>,
    replicas: u64,
) -> Vec<Server> {
    let mut servers: Vec<Server> = match view {
        Some(view) => view
            .members
            .iter()
            .map(|m| Server {
                id: m.id,
                observer: !m.participant,
            })
            .collect(),
        None => match cc.status.as_ref().filter(|s| !s.members.is_empty()) {
            Some(status) => status
                .members
                .iter()
                .map(|m| Server {
                    id: m.id,
                    observer: m.role == "observer",
                })
                .collect(),
            None => config::initial_servers(cc),
        },
    };
    for id in 1..=replicas {
        if servers.iter().all(|s| s.id != id) {
            servers.push(Server {
                id,
                observer: false,
            });
        }
    }
    servers.sort_by_key(|s| s.id);
    servers
}

async fn reconcile_cluster<E: Ensemble>(
    cached: &CoordinationCluster,
    ctx: &Context<E>,
) -> Result<Action, Error> {
    let names = Names::of(cached)?;
    // The controller hands over its cached copy, which may lag behind the
    // status the previous reconcile wrote: the pod deletion or membership
    // change that reconcile made wakes this one before the resource's own
    // watch event arrives. The operation in flight must be read as it was
    // written, or this reconcile would decide without it and the status it
    // writes would erase it.
    let clusters = Api::<CoordinationCluster>::namespaced(ctx.client.clone(), &names.namespace);
    let fresh = clusters.get(&names.cluster).await?;
    let cc = &fresh;
    let label = ClusterLabel {
        cluster: cluster_label(cc),
    };
    let tls = tls_secret::check(&ctx.client, &names.namespace, cc).await?;
    let invalid = config::validate(&cc.spec.config)
        .err()
        .map(|e| e.to_string())
        .or_else(|| match &tls {
            TlsSecret::Invalid(why) => Some(why.clone()),
            TlsSecret::NotAsked | TlsSecret::Ready(_) => None,
        });
    let tls_digest = match &tls {
        TlsSecret::Ready(digest) => Some(digest.as_str()),
        TlsSecret::NotAsked | TlsSecret::Invalid(_) => None,
    };
    let kube = kube_state::read(&ctx.client, &names).await?;
    let token = apply::admin_token(&ctx.client, cc).await?;
    // Internal TLS: the stage the pods' template runs (a cluster not yet
    // made starts on its target), and the certificates, made before any
    // pod needs them.
    let target_stage = build::internal_tls::target(cc);
    let current_stage = kube.template_internal_tls.unwrap_or(target_stage);
    let ca_pem = if target_stage != InternalTlsStage::Off || current_stage != InternalTlsStage::Off
    {
        let ids = certificate_ids(cc, &kube);
        Some(
            internal_tls::ensure(&ctx.client, cc, &names, &ids, Timestamp::now().as_second())
                .await?,
        )
    } else {
        None
    };
    let admin_tls = match ca_pem
        .as_deref()
        .filter(|_| build::internal_tls::admin_https(current_stage))
    {
        Some(pem) => Some(admin::tls_client_config(pem)?),
        None => None,
    };
    let servers: Vec<(u64, AdminAddress)> = kube
        .pods
        .iter()
        .filter(|p| !p.terminating)
        .filter_map(|p| {
            let addr = format!("{}:{}", p.ip.as_ref()?, cc.spec.ports.admin);
            let tls = match &admin_tls {
                Some(config) => Some(AdminTls {
                    server_name: ServerName::try_from(names.server_host(p.id)).ok()?,
                    config: config.clone(),
                }),
                None => None,
            };
            Some((p.id, AdminAddress { addr, tls }))
        })
        .collect();
    let (view, ensemble_error) = match observe::read_ensemble(&ctx.ensemble, &servers).await {
        Ok(view) => (Some(view), None),
        Err(e) => (None, Some(e)),
    };
    let previous = cc.status.as_ref().and_then(|s| s.operation.clone());
    let recover_from = annotation(cc, RECOVER_FROM_ANNOTATION).map(decide::parse_annotation);
    let decision = match &invalid {
        Some(reason) => Decision::Wait {
            reason: "InvalidSpec".to_owned(),
            message: reason.clone(),
        },
        None => decide::decide(&Inputs {
            desired: Desired {
                participants: u64::try_from(cc.spec.replicas.max(1)).unwrap_or(1),
                observers: u64::try_from(cc.spec.observers.max(0)).unwrap_or(0),
            },
            paused: cc.spec.paused,
            reclaim: cc.spec.storage.reclaim_policy,
            kube: &kube,
            ensemble: view.as_ref(),
            ensemble_error: ensemble_error.as_deref(),
            operation: previous.as_ref(),
            recover_from,
        }),
    };
    // zoo.cfg names the last recovery, or the one this reconcile carries
    // out (before its pods are restarted).
    let recovery = match &decision {
        Decision::RestartForRecovery { server, token, .. } => Some(RecoveryStatus {
            server: *server,
            token: token.clone(),
        }),
        _ => cc.status.as_ref().and_then(|s| s.recovery.clone()),
    };
    tracing::debug!(cluster = %label.cluster, ?decision, "decided");

    let image = check_image(cc, &kube);

    // The next internal TLS stage begins only when the last roll is over
    // and nothing else is under way.
    let settled = decision == Decision::Idle
        && previous.is_none()
        && kube.rolled_out()
        && view
            .as_ref()
            .is_some_and(|v| v.members.iter().all(|m| m.healthy));
    let mut stage = build::internal_tls::next(kube.template_internal_tls, target_stage, settled);

    let mut action_error = None;
    let mut monitor = None;
    if invalid.is_none() {
        let replicas = statefulset_replicas(cc, &kube, &decision);
        let formed = view.is_some()
            || cc
                .status
                .as_ref()
                .is_some_and(|s| s.config_version.is_some());
        let servers_in_cfg = zoo_cfg_servers(cc, view.as_ref(), replicas);
        let shape = apply::Shape {
            servers: &servers_in_cfg,
            formed,
            replicas,
            tls_secret: tls_digest,
            recovery: recovery.as_ref(),
            stage,
        };
        apply::children(ctx, image.held.as_ref().unwrap_or(cc), &shape).await?;
        monitor = Some(service_monitor::reconcile(ctx, cc, stage).await?);
        if kube.template_internal_tls.is_some() && stage != current_stage {
            announce_stage(ctx, cc, current_stage, stage).await;
        }
    } else {
        stage = current_stage;
        if let Some(reason) = &invalid {
            announce_wait(ctx, cc, "InvalidSpec", reason).await;
        }
    }

    let target = Target {
        cc,
        names: &names,
        view: view.as_ref(),
        servers: &servers,
        token: &token,
    };
    let outcome = act::act(ctx, &target, &decision).await?;
    if let Outcome::Failed(why) = &outcome {
        action_error = Some(why.clone());
    }
    if let Decision::Wait { reason, message } = &decision {
        announce_wait(ctx, cc, reason, message).await;
    }
    let action_done = decision.operation().filter(|_| outcome == Outcome::Done);
    if let Some((kind, _, _)) = action_done {
        ctx.metrics
            .actions
            .get_or_create(&ActionLabel {
                cluster: label.cluster.clone(),
                action: kind.to_owned(),
            })
            .inc();
    }
    let step_before = previous.clone();
    let operation = next_operation(previous, &decision, &outcome, &kube, view.as_ref());

    let now = Timestamp::now();
    // Status records this reconcile's recovery only once its pods went.
    let recovery = match &decision {
        Decision::RestartForRecovery { .. } if outcome != Outcome::Done => {
            cc.status.as_ref().and_then(|s| s.recovery.clone())
        }
        _ => recovery,
    };
    let mut status = status::build(&Observation {
        cluster: cc,
        kube: &kube,
        ensemble: view.as_ref(),
        ensemble_error: ensemble_error.as_deref(),
        decision: &decision,
        operation: operation.clone(),
        invalid: invalid.as_deref(),
        action_error: action_error.as_deref(),
        service_monitor: monitor,
        recovery,
        version: VersionCheck {
            refused: image.refused.as_deref(),
            skipped: image.skipped,
        },
        now,
    });
    status.internal_tls = Some(stage);
    // Between stages nothing else may be under way: say what is.
    let tls_moving = invalid.is_none() && stage != target_stage;
    let idle = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Progressing" && c.status == "False");
    if tls_moving && idle {
        status::set_condition(
            &mut status.conditions,
            "Progressing",
            true,
            "InternalTlsRoll",
            &format!(
                "internal TLS {stage:?}, on the way to {target_stage:?}: the next stage begins \
                 when every pod runs this one"
            ),
            cc.metadata.generation,
            &now,
        );
    }
    announce_turned(
        ctx,
        cc,
        &status,
        ("PlacementWarning", "True"),
        ("VotersShareNode", "Place"),
    )
    .await;
    announce_turned(
        ctx,
        cc,
        &status,
        ("UpgradeAllowed", "False"),
        ("UpgradeRefused", "Roll"),
    )
    .await;
    let members = i64::try_from(status.members.len()).unwrap_or(i64::MAX);
    ctx.metrics.members.get_or_create(&label).set(members);
    ctx.metrics
        .ready_pods
        .get_or_create(&label)
        .set(i64::from(status.ready_replicas));
    ctx.metrics
        .leader_known
        .get_or_create(&label)
        .set(i64::from(view.is_some()));
    ctx.metrics
        .operation_in_flight
        .get_or_create(&label)
        .set(i64::from(operation.is_some()));
    let patch = serde_json::json!({
        "apiVersion": "conclave.dev/v1alpha1",
        "kind": "CoordinationCluster",
        "status": status,
    });
    clusters
        .patch_status(
            &names.cluster,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;

    let busy = operation.is_some() || !matches!(decision, Decision::Idle) || tls_moving;
    let progressed = !busy || action_done.is_some() || step_of(&operation) != step_of(&step_before);
    let since = ctx
        .metrics
        .progress
        .observe(&label.cluster, progressed, Instant::now());
    ctx.metrics
        .seconds_since_progress
        .get_or_create(&label)
        .set(since);
    Ok(Action::requeue(if busy { BUSY } else { IDLE }))
}

/// The StatefulSet's size: the decided next size, or what it is now, or
/// (when it does not exist yet) every server of the spec.
fn statefulset_replicas(cc: &CoordinationCluster, kube: &KubeState, decision: &Decision) -> u64 {
    match (decision, kube.statefulset_replicas) {
        (Decision::ScaleStatefulSet { replicas, .. }, _) => *replicas,
        (_, Some(current)) => current,
        (_, None) => u64::try_from(cc.spec.replicas.max(1) + cc.spec.observers.max(0)).unwrap_or(1),
    }
}

/// What the version policy (`version.rs`) says about `spec.image` in this
/// reconcile.
struct ImageCheck {
    /// Why the change is refused.
    refused: Option<String>,
    /// `conclave.dev/skip-version-check` is set.
    skipped: bool,
    /// When refused: the resource to apply instead, naming the image the
    /// StatefulSet has, so that nothing is rolled onto the refused one.
    held: Option<CoordinationCluster>,
}

fn check_image(cc: &CoordinationCluster, kube: &KubeState) -> ImageCheck {
    let skipped = annotation(cc, SKIP_VERSION_CHECK) == Some("true");
    let running: Vec<&str> = kube
        .pods
        .iter()
        .filter(|p| !p.terminating)
        .filter_map(|p| p.image.as_deref())
        .collect();
    let refused = if skipped {
        None
    } else {
        version::check_path(&running, &cc.spec.image).err()
    };
    let held = refused
        .as_ref()
        .and_then(|_| {
            kube.template_image
                .clone()
                .or_else(|| running.first().map(|i| (*i).to_owned()))
        })
        .map(|image| {
            let mut held = cc.clone();
            held.spec.image = image;
            held
        });
    ImageCheck {
        refused,
        skipped,
        held,
    }
}

fn annotation<'a>(cc: &'a CoordinationCluster, key: &str) -> Option<&'a str> {
    cc.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// An operation without its start time: what changes when a step is done.
fn step_of(op: &Option<Operation>) -> Option<(&str, u64, &str)> {
    op.as_ref()
        .map(|o| (o.kind.as_str(), o.server, o.step.as_str()))
}

/// The operation status records after this reconcile: the previous one
/// until it is done, then the one this action started.
fn next_operation(
    previous: Option<Operation>,
    decision: &Decision,
    outcome: &Outcome,
    kube: &KubeState,
    view: Option<&EnsembleView>,
) -> Option<Operation> {
    let previous = match (previous, view) {
        (Some(op), Some(view)) if decide::operation_done(&op, kube, view) => None,
        (previous, _) => previous,
    };
    let Some((kind, server, step)) = decision.operation() else {
        return previous;
    };
    if *outcome != Outcome::Done {
        return previous;
    }
    let expected_config_version = match decision {
        Decision::Add {
            expected_version, ..
        }
        | Decision::Remove {
            expected_version, ..
        } => Some(expected_version.clone()),
        _ => view.map(|v| v.version.clone()),
    };
    let started = previous
        .as_ref()
        .filter(|op| op.kind == kind && op.server == server)
        .map(|op| op.started.clone())
        .unwrap_or_else(|| Timestamp::now().to_string());
    Some(Operation {
        kind: kind.to_owned(),
        server,
        step: step.to_owned(),
        expected_config_version,
        started,
    })
}

/// One Warning Event when condition `type_` turns to `status` (its
/// message is the Event's note): participants coming to share a node, an
/// image change refused.
async fn announce_turned<E>(
    ctx: &Context<E>,
    cc: &CoordinationCluster,
    status: &crate::crd::CoordinationClusterStatus,
    (type_, turned_to): (&str, &str),
    (reason, action): (&str, &str),
) {
    let turned = |conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]| {
        conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == turned_to)
            .map(|c| c.message.clone())
    };
    let before = cc.status.as_ref().and_then(|s| turned(&s.conditions));
    if let (None, Some(message)) = (before, turned(&status.conditions)) {
        act::publish(ctx, cc, EventType::Warning, reason, action, message, None).await;
    }
}

/// An Event for a wait, once per reason: the reason is compared with the
/// one status already carries.
/// The servers on `from` move to `to`: each pod rolls once more.
async fn announce_stage<E>(
    ctx: &Context<E>,
    cc: &CoordinationCluster,
    from: InternalTlsStage,
    to: InternalTlsStage,
) {
    let what = match to {
        InternalTlsStage::Off => "servers speak plain text only",
        InternalTlsStage::Accepting => "servers take TLS beside plain text, still dialling plain",
        InternalTlsStage::Dialling => "servers dial each other over TLS, still taking plain text",
        InternalTlsStage::On => "servers speak TLS only, each proving which member it is",
    };
    act::publish(
        ctx,
        cc,
        EventType::Normal,
        "InternalTlsStage",
        "Roll",
        format!("internal TLS {from:?} -> {to:?}: {what}; the pods roll one at a time"),
        None,
    )
    .await;
}

/// The servers that need an internal TLS certificate: every one the spec,
/// the StatefulSet, a pod or the last membership read names, so that a pod
/// about to be made already has its own.
fn certificate_ids(cc: &CoordinationCluster, kube: &KubeState) -> Vec<u64> {
    let desired = u64::try_from(cc.spec.replicas.max(0) + cc.spec.observers.max(0)).unwrap_or(0);
    let members = cc
        .status
        .iter()
        .flat_map(|s| s.members.iter().map(|m| m.id));
    let most = kube
        .pods
        .iter()
        .map(|p| p.id)
        .chain(members)
        .chain(kube.statefulset_replicas)
        .fold(desired, u64::max);
    (1..=most).collect()
}

async fn announce_wait<E>(ctx: &Context<E>, cc: &CoordinationCluster, reason: &str, message: &str) {
    let already = cc.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| (c.type_ == "Progressing" || c.type_ == "Ready") && c.reason == reason)
    });
    if already {
        return;
    }
    let type_ = match reason {
        "Paused" | "WaitingForPod" | "StatefulSetMissing" => EventType::Normal,
        _ => EventType::Warning,
    };
    act::publish(ctx, cc, type_, reason, "Wait", message.to_owned(), None).await;
}

/// The resource is being deleted: its owned objects go with it (owner
/// references); the volume claims follow the reclaim policy.
async fn cleanup<E: Ensemble>(cc: &CoordinationCluster, ctx: &Context<E>) -> Result<Action, Error> {
    let names = Names::of(cc)?;
    ctx.metrics.progress.forget(&cluster_label(cc));
    if cc.spec.storage.reclaim_policy == ReclaimPolicy::Delete {
        let api = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &names.namespace);
        let claims = api
            .list(&ListParams::default().labels(&crate::build::selector(&names)))
            .await?;
        for claim in claims.items {
            let Some(name) = claim.metadata.name else {
                continue;
            };
            act::delete(&api, &name).await?;
        }
        act::publish(
            ctx,
            cc,
            EventType::Normal,
            "VolumesDeleted",
            "Cleanup",
            "reclaimPolicy Delete: the data volume claims were deleted".to_owned(),
            None,
        )
        .await;
    }
    Ok(Action::await_change())
}

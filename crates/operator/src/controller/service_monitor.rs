//! `spec.metrics.serviceMonitor`, each reconcile: ask API discovery whether
//! the API server serves `monitoring.coreos.com/v1` ServiceMonitors (the
//! Prometheus Operator's CRDs come and go independently of the operator),
//! then apply ours, delete ours, or say that the CRDs are missing. A missing
//! CRD does not fail the reconcile: metrics are no part of serving, and the
//! person is told in status (`MetricsReady`) and by a Warning Event.

use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::runtime::events::EventType;

use super::{Context, Error, act, apply};
use crate::build::Names;
use crate::build::service_monitor::{PLURAL, api_resource, group_version, service_monitor};
use crate::crd::{CoordinationCluster, InternalTlsStage};
use crate::status::metrics_ready::{self, CRD_MISSING, METRICS_READY, ServiceMonitorState};

/// The Event's reason when a ServiceMonitor is asked for and cannot be made.
const UNAVAILABLE: &str = "ServiceMonitorUnavailable";

pub(super) async fn reconcile<E>(
    ctx: &Context<E>,
    cc: &CoordinationCluster,
    stage: InternalTlsStage,
) -> Result<ServiceMonitorState, Error> {
    let names = Names::of(cc)?;
    let enabled = cc.spec.metrics.service_monitor.enabled;
    let state = match (enabled, served(&ctx.client).await?) {
        (true, true) => {
            let monitor = service_monitor(cc, stage)?;
            apply::dynamic(&ctx.client, &names.namespace, &api_resource(), &monitor).await?;
            ServiceMonitorState::Applied
        }
        (true, false) => {
            announce_missing(ctx, cc).await;
            ServiceMonitorState::CrdMissing
        }
        (false, true) => {
            delete_ours(ctx, cc, &names).await?;
            ServiceMonitorState::Disabled
        }
        (false, false) => ServiceMonitorState::Disabled,
    };
    Ok(state)
}

/// Whether the API server serves ServiceMonitors. Only a 404 for the group
/// version means "no": any other failure (403, 5xx, a timeout) says
/// nothing about the CRDs and fails the reconcile, to be retried.
async fn served(client: &Client) -> Result<bool, Error> {
    match client.list_api_group_resources(&group_version()).await {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == PLURAL)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the ServiceMonitor `<name>` if this cluster owns it (one that
/// someone else made under the same name is not the operator's to
/// delete), with an Event.
async fn delete_ours<E>(
    ctx: &Context<E>,
    cc: &CoordinationCluster,
    names: &Names,
) -> Result<(), Error> {
    let api = Api::<DynamicObject>::namespaced_with(
        ctx.client.clone(),
        &names.namespace,
        &api_resource(),
    );
    let Some(existing) = api.get_opt(&names.cluster).await? else {
        return Ok(());
    };
    if !crate::build::owned_by(&existing.metadata, cc) {
        tracing::debug!(
            cluster = %names.cluster,
            "a ServiceMonitor of the cluster's name that it does not own is left alone"
        );
        return Ok(());
    }
    act::delete(&api, &names.cluster).await?;
    act::publish(
        ctx,
        cc,
        EventType::Normal,
        "ServiceMonitorDeleted",
        "DeleteServiceMonitor",
        format!(
            "ServiceMonitor {} deleted: spec.metrics.serviceMonitor.enabled is false",
            names.cluster
        ),
        None,
    )
    .await;
    Ok(())
}

/// A Warning Event, once per stretch of missing CRDs: not when the status
/// already carries the condition that says so.
async fn announce_missing<E>(ctx: &Context<E>, cc: &CoordinationCluster) {
    let already = cc.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == METRICS_READY && c.reason == CRD_MISSING)
    });
    if already {
        return;
    }
    let cluster = cc.metadata.name.as_deref().unwrap_or_default();
    let (_, _, message) = metrics_ready::condition(ServiceMonitorState::CrdMissing, cluster);
    act::publish(
        ctx,
        cc,
        EventType::Warning,
        UNAVAILABLE,
        "ApplyServiceMonitor",
        message,
        None,
    )
    .await;
}

//! The controller: watches `CoordinationCluster`s and everything they own,
//! and reconciles each (`reconcile.rs`): observe the Kubernetes objects
//! (`kube_state.rs`) and the ensemble, decide one action (`crate::decide`),
//! apply the desired objects (`apply.rs`) and the ServiceMonitor
//! (`service_monitor.rs`), carry the action out (`act.rs`), and write
//! status.

mod act;
mod apply;
mod internal_tls;
mod kube_state;
mod reconcile;
mod service_monitor;
mod tls_secret;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client};

pub use reconcile::reconcile;

use crate::admin::Ensemble;
use crate::crd::CoordinationCluster;
use crate::metrics::{ErrorLabel, Metrics};

/// The field manager of every object the operator applies.
pub const FIELD_MANAGER: &str = "conclave-operator";
/// Holds a deleted `CoordinationCluster` until its volumes are reclaimed.
pub const FINALIZER: &str = "conclave.dev/cleanup";

/// What every reconcile shares.
pub struct Context<E> {
    pub client: Client,
    pub ensemble: E,
    pub recorder: Recorder,
    pub metrics: Metrics,
    /// Set once the API server said it serves no policy/v1
    /// PodDisruptionBudget (Kubernetes before 1.21).
    pub pdb_v1beta1: AtomicBool,
    /// The namespace the operator runs in: the clusters' NetworkPolicies
    /// let its pods reach the admin port.
    pub operator_namespace: String,
}

impl<E> std::fmt::Debug for Context<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl<E> Context<E> {
    pub fn new(client: Client, ensemble: E, metrics: Metrics, reporter: Reporter) -> Self {
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            ensemble,
            metrics,
            pdb_v1beta1: AtomicBool::new(false),
            operator_namespace: "default".to_owned(),
        }
    }

    /// Where the operator runs (`POD_NAMESPACE`).
    pub fn with_operator_namespace(mut self, namespace: &str) -> Self {
        namespace.clone_into(&mut self.operator_namespace);
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Build(#[from] crate::build::BuildError),
    #[error("internal TLS: {0}")]
    Pki(#[from] crate::pki::PkiError),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("serializing: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Build(_) => "build",
            Error::Pki(_) => "pki",
            Error::Finalizer(_) => "finalizer",
            Error::Json(_) => "json",
        }
    }
}

/// A failed reconcile is retried after a pause; the error is logged and
/// counted (status and Events carry what a person can act on).
pub fn error_policy<E: Ensemble>(
    cc: Arc<CoordinationCluster>,
    error: &Error,
    ctx: Arc<Context<E>>,
) -> Action {
    let cluster = reconcile::cluster_label(&cc);
    tracing::warn!(%cluster, %error, "reconcile failed");
    ctx.metrics
        .failures
        .get_or_create(&ErrorLabel {
            cluster,
            error: error.kind().to_owned(),
        })
        .inc();
    Action::requeue(Duration::from_secs(10))
}

/// The cluster an object of its StatefulSet (a pod, a volume claim)
/// belongs to, by its instance label.
fn cluster_of(meta: &ObjectMeta) -> Option<ObjectRef<CoordinationCluster>> {
    let name = meta.labels.as_ref()?.get("app.kubernetes.io/instance")?;
    let namespace = meta.namespace.as_deref()?;
    Some(ObjectRef::<CoordinationCluster>::new(name).within(namespace))
}

/// Runs the controller until a shutdown signal, over every namespace the
/// client may watch.
pub async fn run<E: Ensemble>(ctx: Arc<Context<E>>) {
    let client = ctx.client.clone();
    let clusters = Api::<CoordinationCluster>::all(client.clone());
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=conclave-operator");
    Controller::new(clusters, watcher::Config::default())
        .owns(Api::<StatefulSet>::all(client.clone()), owned.clone())
        .owns(Api::<Service>::all(client.clone()), owned.clone())
        .owns(Api::<ConfigMap>::all(client.clone()), owned.clone())
        // Pods and volume claims belong to the StatefulSet, not to the
        // resource: map them by their instance label (a claim's deletion
        // or a pod's readiness is often what the next step waits for).
        .watches(
            Api::<Pod>::all(client.clone()),
            owned.clone(),
            |pod: Pod| cluster_of(&pod.metadata),
        )
        .watches(
            Api::<PersistentVolumeClaim>::all(client),
            owned,
            |claim: PersistentVolumeClaim| cluster_of(&claim.metadata),
        )
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        })
        .await;
}

#[cfg(test)]
mod tests;

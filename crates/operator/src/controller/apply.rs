//! Applying the desired objects with server-side apply under one field
//! manager (`FIELD_MANAGER`), forced: the operator owns these fields, and an
//! object deleted by hand is re-created on the next reconcile.

use std::sync::atomic::Ordering;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Context, Error, FIELD_MANAGER};
use crate::build::config::{self, Server};
use crate::build::statefulset::{self, token_secret_name};
use crate::build::{Names, network_policy, owned_meta, pdb, services};
use crate::crd::{CoordinationCluster, InternalTlsStage, RecoveryStatus};

/// The key of the admin token in its Secret.
const TOKEN_KEY: &str = "token";

pub(super) async fn apply<K>(client: &Client, ns: &str, name: &str, object: &K) -> Result<(), Error>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
    <K as kube::Resource>::DynamicType: Default,
{
    Api::<K>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await?;
    Ok(())
}

/// What the desired objects are built from besides the resource.
pub(super) struct Shape<'a> {
    /// The servers zoo.cfg lists.
    pub servers: &'a [Server],
    /// The ensemble was formed (`conclave.join`).
    pub formed: bool,
    /// The StatefulSet's pods.
    pub replicas: u64,
    /// A digest of the client TLS Secret.
    pub tls_secret: Option<&'a str>,
    pub recovery: Option<&'a RecoveryStatus>,
    /// The internal TLS stage the pods' template runs.
    pub stage: InternalTlsStage,
}

/// Applies the ConfigMap, the Services, the StatefulSet (with `replicas`
/// pods), the PodDisruptionBudget and the NetworkPolicy.
pub(super) async fn children<E>(
    ctx: &Context<E>,
    cc: &CoordinationCluster,
    shape: &Shape<'_>,
) -> Result<(), Error> {
    let names = Names::of(cc)?;
    let ns = &names.namespace;
    let client = &ctx.client;
    apply::<ConfigMap>(
        client,
        ns,
        &names.config(),
        &config::config_map(cc, shape.servers, shape.formed, shape.recovery)?,
    )
    .await?;
    apply::<Service>(client, ns, &names.peers(), &services::peer_service(cc)?).await?;
    apply::<Service>(client, ns, &names.client(), &services::client_service(cc)?).await?;
    let replicas = i32::try_from(shape.replicas).unwrap_or(i32::MAX);
    apply::<StatefulSet>(
        client,
        ns,
        &names.cluster,
        &statefulset::statefulset(cc, replicas, shape.tls_secret, shape.stage)?,
    )
    .await?;
    budget(ctx, cc, &names).await?;
    network(ctx, cc, &names).await
}

/// The NetworkPolicy, or, turned off, the deletion of the one the
/// operator made (one of the same name that the cluster does not own is
/// left alone).
async fn network<E>(
    ctx: &Context<E>,
    cc: &CoordinationCluster,
    names: &Names,
) -> Result<(), Error> {
    let ns = &names.namespace;
    if let Some(policy) = network_policy::network_policy(cc, &ctx.operator_namespace)? {
        return apply::<NetworkPolicy>(&ctx.client, ns, &names.cluster, &policy).await;
    }
    let api = Api::<NetworkPolicy>::namespaced(ctx.client.clone(), ns);
    let Some(existing) = api.get_opt(&names.cluster).await? else {
        return Ok(());
    };
    if crate::build::owned_by(&existing.metadata, cc) {
        super::act::delete(&api, &names.cluster).await?;
        tracing::info!(cluster = %names.cluster, "NetworkPolicy deleted: spec.networkPolicy.enabled is false");
    }
    Ok(())
}

/// policy/v1, or policy/v1beta1 where the API server has no policy/v1.
async fn budget<E>(ctx: &Context<E>, cc: &CoordinationCluster, names: &Names) -> Result<(), Error> {
    let ns = &names.namespace;
    let Some(budget) = pdb::pdb(cc)? else {
        return Ok(());
    };
    if !ctx.pdb_v1beta1.load(Ordering::Relaxed) {
        match apply::<PodDisruptionBudget>(&ctx.client, ns, &names.cluster, &budget).await {
            Err(Error::Kube(kube::Error::Api(status))) if status.code == 404 => {
                tracing::info!(
                    "the API server has no policy/v1 PodDisruptionBudget; using policy/v1beta1"
                );
                ctx.pdb_v1beta1.store(true, Ordering::Relaxed);
            }
            other => return other,
        }
    }
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "policy",
        "v1beta1",
        "PodDisruptionBudget",
    ));
    let object: DynamicObject = serde_json::from_value(pdb::pdb_v1beta1(&budget))?;
    dynamic(&ctx.client, ns, &resource, &object).await
}

/// Applies an object of a kind the operator has no Rust type for (a
/// v1beta1 budget, a ServiceMonitor), named by its own metadata.
pub(super) async fn dynamic(
    client: &Client,
    ns: &str,
    resource: &ApiResource,
    object: &DynamicObject,
) -> Result<(), Error> {
    let name = object
        .metadata
        .name
        .as_deref()
        .ok_or(crate::build::BuildError::Missing("name"))?;
    Api::<DynamicObject>::namespaced_with(client.clone(), ns, resource)
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await?;
    Ok(())
}

/// The admin token the servers accept changes with: read from the
/// cluster's Secret, which is created (random, owned by the resource) if
/// it does not exist.
pub(super) async fn admin_token(
    client: &Client,
    cc: &CoordinationCluster,
) -> Result<String, Error> {
    let names = Names::of(cc)?;
    let api = Api::<Secret>::namespaced(client.clone(), &names.namespace);
    let name = token_secret_name(&names);
    if let Some(token) = api.get_opt(&name).await?.as_ref().and_then(token_of) {
        return Ok(token);
    }
    let token = format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    let secret = Secret {
        metadata: owned_meta(cc, name.clone())?,
        data: Some([(TOKEN_KEY.to_owned(), ByteString(token.clone().into_bytes()))].into()),
        ..Secret::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(token),
        // Created meanwhile (another reconcile or a person): read it.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            Ok(token_of(&api.get(&name).await?).unwrap_or_default())
        }
        Err(e) => Err(e.into()),
    }
}

/// The token a Secret holds: the first line of its `token` key, as the
/// servers read `conclave.adminTokenFile`.
fn token_of(secret: &Secret) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(TOKEN_KEY)?;
    let text = String::from_utf8(bytes.0.clone()).ok()?;
    Some(text.lines().next().unwrap_or_default().to_owned())
}

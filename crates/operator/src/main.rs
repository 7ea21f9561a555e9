//! `conclave-operator`: runs the `CoordinationCluster` controller, with
//! `/metrics`, `/healthz` and `/readyz` over HTTP, and leader election
//! through a coordination.k8s.io Lease so that of several replicas only
//! one acts. A replica that loses the lease exits (and is restarted as a
//! standby); safety never rests on the lease alone, since every membership
//! change carries the expected config version.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use clap::Parser;
use kube::Client;
use kube::runtime::events::Reporter;
use kube_lease_manager::LeaseManagerBuilder;

use operator::admin::HttpEnsemble;
use operator::controller::{self, Context};
use operator::metrics::Metrics;

#[derive(Debug, Parser)]
#[command(
    name = "conclave-operator",
    version,
    about = "Runs Conclave ensembles on Kubernetes."
)]
struct Args {
    /// Address of the metrics and health endpoints.
    #[arg(long, default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,
    /// Take part in leader election (off: this replica always acts; run
    /// exactly one).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// Namespace of the Lease, and the operator's own (the clusters'
    /// NetworkPolicies let the operator's pods there reach the admin port).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Name of the Lease.
    #[arg(long, default_value = "conclave-operator")]
    lease_name: String,
    /// This replica's identity in the Lease and in Events.
    #[arg(long, env = "POD_NAME", default_value = "conclave-operator")]
    identity: String,
}

#[derive(Debug, Clone)]
struct Web {
    metrics: Metrics,
    leading: Arc<AtomicBool>,
}

async fn serve_metrics(State(web): State<Web>) -> String {
    web.metrics.encode()
}

/// Ready: a standby replica is ready too (it is doing its job: waiting).
async fn healthz() -> StatusCode {
    StatusCode::OK
}

async fn leader(State(web): State<Web>) -> String {
    web.leading.load(Ordering::Relaxed).to_string()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .init();
    let args = Args::parse();
    let client = Client::try_default()
        .await
        .context("no Kubernetes client configuration (in-cluster or KUBECONFIG)")?;
    let metrics = Metrics::default();
    let leading = Arc::new(AtomicBool::new(false));
    let web = Web {
        metrics: metrics.clone(),
        leading: leading.clone(),
    };
    let app = Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(healthz))
        .route("/leader", get(leader))
        .with_state(web);
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("binding {}", args.http_addr))?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "HTTP server stopped");
        }
    });

    let reporter = Reporter {
        controller: "conclave-operator".to_owned(),
        instance: Some(args.identity.clone()),
    };
    let ctx = Arc::new(
        Context::new(client.clone(), HttpEnsemble::default(), metrics, reporter)
            .with_operator_namespace(&args.lease_namespace),
    );

    if !args.leader_election {
        leading.store(true, Ordering::Relaxed);
        controller::run(ctx).await;
        return Ok(());
    }
    let manager = LeaseManagerBuilder::new(client, &args.lease_name)
        .with_namespace(&args.lease_namespace)
        .with_identity(&args.identity)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await
        .context("creating the lease manager")?;
    let (mut lease, _task) = manager.watch().await;
    tracing::info!(lease = %args.lease_name, identity = %args.identity, "waiting for the lease");
    while !*lease.borrow_and_update() {
        lease.changed().await.context("the lease manager stopped")?;
    }
    tracing::info!("holding the lease: reconciling");
    leading.store(true, Ordering::Relaxed);
    tokio::select! {
        () = controller::run(ctx) => Ok(()),
        lost = async {
            loop {
                if lease.changed().await.is_err() || !*lease.borrow_and_update() {
                    break;
                }
            }
        } => {
            let () = lost;
            leading.store(false, Ordering::Relaxed);
            anyhow::bail!("lost the lease: stopping so that only the holder acts")
        }
    }
}

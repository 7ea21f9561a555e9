//! The `conclave-server` binary: parse flags, read zoo.cfg, serve.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use server::Config;

/// A ZooKeeper-compatible coordination server.
#[derive(Debug, Parser)]
#[command(name = "conclave-server", version)]
struct Args {
    /// A ZooKeeper zoo.cfg file.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Data directory (overrides dataDir); default ./conclave-data.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Client port (overrides clientPort); default 2181.
    #[arg(long, short = 'p')]
    port: Option<u16>,
    /// Admin HTTP port (overrides admin.serverPort); default 8080.
    #[arg(long)]
    admin_port: Option<u16>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let mut config = match &args.config {
        Some(path) => {
            Config::from_file(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => Config::default(),
    };
    if let Some(dir) = args.data_dir {
        config.data_log_dir = dir.clone();
        config.data_dir = dir;
    }
    if let Some(port) = args.port {
        config.client_addr.set_port(port);
    }
    if let Some(port) = args.admin_port {
        config.admin_addr.set_port(port);
    }
    config.validate()?;
    for key in &config.ignored_keys {
        tracing::warn!(key = %key, "ignoring zoo.cfg key that Conclave does not use");
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    config.load_myid()?;

    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        let (client, admin) = server::server::bind(&config).await.with_context(|| {
            format!(
                "binding {} / admin {}",
                config.client_addr, config.admin_addr
            )
        })?;
        tracing::info!(
            client = %client.local_addr()?,
            admin = ?admin.as_ref().and_then(|a| a.local_addr().ok()),
            data_dir = %config.data_dir.display(),
            "conclave-server serving"
        );
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        server::server::run(Arc::new(config), client, admin, shutdown).await?;
        anyhow::Ok(())
    })
}

//! The `conclave-server` binary: parse flags, read zoo.cfg, open the data
//! directory, serve. `conclave-server inspect` reads a data directory.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use server::Config;
use server::ensemble_config::Mode;
use storage::rocks::RocksStore;

/// A ZooKeeper-compatible coordination server.
#[derive(Debug, Parser)]
#[command(name = "conclave-server", version)]
struct Args {
    /// A ZooKeeper zoo.cfg file.
    #[arg(long, short = 'c', global = true)]
    config: Option<PathBuf>,
    /// Data directory (overrides dataDir and dataLogDir); default ./conclave-data.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Client port (overrides clientPort); default 2181.
    #[arg(long, short = 'p')]
    port: Option<u16>,
    /// Admin HTTP port (overrides admin.serverPort); default 8080.
    #[arg(long)]
    admin_port: Option<u16>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print what a data directory holds (the server must not be running on it).
    Inspect {
        /// Also print the log as text.
        #[arg(long)]
        log: bool,
        /// First log index to print.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Most log entries to print.
        #[arg(long, default_value_t = u64::MAX)]
        limit: u64,
    },
    /// After a lost quorum: make this server the only member of its
    /// ensemble, keeping all its data (the server must not be running; the
    /// other servers must be gone for good, or wiped before they start).
    RecoverAlone,
}

fn main() -> anyhow::Result<()> {
    // Logs go to stderr, so `inspect` output on stdout stays clean.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let config = configure(&args)?;
    match args.command {
        Some(Command::Inspect { log, from, limit }) => inspect(&config, log, from, limit),
        Some(Command::RecoverAlone) => recover_alone(config),
        None => serve(config),
    }
}

fn configure(args: &Args) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => {
            Config::from_file(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => Config::default(),
    };
    if let Some(dir) = &args.data_dir {
        config.data_log_dir = dir.clone();
        config.data_dir = dir.clone();
    }
    if let Some(port) = args.port {
        config.client_addr.set_port(port);
    }
    if let Some(port) = args.admin_port {
        config.admin_addr.set_port(port);
    }
    config.validate()?;
    Ok(config)
}

fn open_store(config: &Config) -> anyhow::Result<RocksStore> {
    let dir = config.store_dir();
    // An Apache ZooKeeper data directory: its snapshots and logs are not a
    // format Conclave reads, and serving an empty tree beside them without
    // a word would look like data loss.
    for candidate in [&config.data_dir, &config.data_log_dir] {
        let zookeeper = candidate.join("version-2");
        if zookeeper.is_dir() && !dir.exists() {
            anyhow::bail!(
                "{} holds an Apache ZooKeeper data directory ({}); Conclave cannot read ZooKeeper's \
                 snapshots and logs. Point dataDir at a new directory, and copy the data over with a \
                 client if you need it.",
                candidate.display(),
                zookeeper.display()
            );
        }
    }
    RocksStore::open(&dir).with_context(|| format!("opening the store in {}", dir.display()))
}

fn inspect(config: &Config, log: bool, from: u64, limit: u64) -> anyhow::Result<()> {
    let dir = config.store_dir();
    if !dir.exists() {
        anyhow::bail!("{} holds no Conclave store", dir.display());
    }
    let store = open_store(config)?;
    print!("{}", server::inspect::summary(&store)?);
    if log {
        print!("{}", server::inspect::log_text(&store, from, limit)?);
    }
    Ok(())
}

fn recover_alone(mut config: Config) -> anyhow::Result<()> {
    if !config.store_dir().exists() {
        anyhow::bail!("{} holds no Conclave store", config.store_dir().display());
    }
    config.load_myid()?;
    let report = make_only_member(&config)?;
    println!("{report}");
    println!(
        "next: start this server; start every other server with an empty data directory and \
         conclave.join=true, and add each with reconfig or POST /membership/add"
    );
    Ok(())
}

/// Runs [`server::recover_alone::recover_alone`] on this server's store;
/// what it did, as text.
fn make_only_member(config: &Config) -> anyhow::Result<String> {
    let dir = config.store_dir();
    let my_id = config
        .server_id
        .context("no myid: recover-alone runs on a member of an ensemble")?;
    let configured = match server::ensemble_config::mode(config)? {
        Mode::Ensemble(ensemble) => ensemble.members.into_iter().find(|m| m.id == my_id),
        Mode::Standalone => None,
    };
    let store = open_store(config)?;
    let (report, mut store) =
        server::recover_alone::recover_alone(Box::new(store), my_id, configured)
            .with_context(|| format!("recovering {} as the only member", dir.display()))?;
    store.shutdown()?;
    Ok(format!(
        "server {my_id} is now the only member of its ensemble{}\n  was:   {}\n  now:   {}\n  \
         kept:  the log through index {} (zxid 0x{:x}); {} entries past the durable commit index",
        if report.resumed {
            " (an interrupted run was finished)"
        } else {
            ""
        },
        report.previous,
        report.member,
        report.last_index,
        report.last_zxid,
        report.past_commit
    ))
}

/// `conclave.recoverAlone=<id>:<token>`, once per token: the survivor
/// makes itself the only member; every other server sets its store aside
/// (kept, renamed) and starts empty, so that no old majority can form
/// again beside the survivor. A marker file records that it was done.
fn recover_alone_once(
    config: &Config,
    key: &server::config::RecoverAloneKey,
) -> anyhow::Result<()> {
    let marker = config.data_dir.join(format!("recovered-{}", key.token));
    if marker.exists() {
        return Ok(());
    }
    let store = config.store_dir();
    if config.server_id == Some(key.server) {
        if !store.exists() {
            anyhow::bail!(
                "conclave.recoverAlone names this server ({}) as the survivor, but {} holds no \
                 store: name a server that kept its data",
                key.server,
                store.display()
            );
        }
        let report = make_only_member(config)?;
        tracing::warn!(token = %key.token, "conclave.recoverAlone: {report}");
    } else if store.exists() {
        let aside = config
            .data_log_dir
            .join(format!("store.pre-recovery-{}", key.token));
        std::fs::rename(&store, &aside)
            .with_context(|| format!("setting {} aside as {}", store.display(), aside.display()))?;
        tracing::warn!(
            token = %key.token,
            survivor = key.server,
            kept = %aside.display(),
            "conclave.recoverAlone: the ensemble restarts from server {}; this server's store is \
             set aside and it starts empty, to be added again",
            key.server
        );
    }
    std::fs::write(&marker, b"")
        .and_then(|()| std::fs::File::open(&config.data_dir)?.sync_all())
        .with_context(|| format!("writing {}", marker.display()))?;
    Ok(())
}

fn serve(mut config: Config) -> anyhow::Result<()> {
    for key in &config.ignored_keys {
        tracing::warn!(key = %key, "ignoring zoo.cfg key that Conclave does not use");
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    config.load_myid()?;
    let ensemble = match server::ensemble_config::mode(&config)? {
        Mode::Standalone => {
            if !config.servers.is_empty() {
                // ZooKeeper logs this as an error and runs standalone too.
                tracing::error!(
                    "only one participant in the server.N lines: running standalone \
                     (set standaloneEnabled=false for a one-server ensemble)"
                );
            }
            None
        }
        Mode::Ensemble(ensemble) => {
            for warning in &ensemble.warnings {
                tracing::warn!("{warning}");
            }
            Some(ensemble)
        }
    };
    if let Some(key) = config.recover_alone.clone() {
        recover_alone_once(&config, &key)?;
        // Every other server joins the recovered ensemble: started empty, it
        // must wait to be added, never found a new one from zoo.cfg's lines.
        if config.server_id != Some(key.server) {
            config.join = true;
        }
    }
    let store = open_store(&config)?;
    let replay = if ensemble.is_some() {
        storage::recovery::Replay::Committed
    } else {
        storage::recovery::Replay::Everything
    };
    let recovered = storage::recovery::recover_with(Box::new(store), replay)
        .with_context(|| format!("recovering from {}", config.store_dir().display()))?;
    tracing::info!(
        zxid = format_args!("0x{:x}", recovered.tree.last_zxid()),
        znodes = recovered.tree.node_count() - 1,
        sessions = recovered.tree.sessions().len(),
        replayed = recovered.replayed,
        "recovered the data directory"
    );

    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        let listeners = server::server::bind(&config).await?;
        let membership = match ensemble {
            Some(ensemble) => {
                let security = server::server::peer_security(&config)?;
                let quorum = server::server::bind_quorum(&config, &ensemble).await?;
                tracing::info!(
                    id = ensemble.my_id,
                    members = ensemble.members.len(),
                    quorum = %quorum.local_addr()?,
                    "member of an ensemble"
                );
                Some(server::server::Membership {
                    ensemble_name: config.ensemble_name.clone(),
                    ensemble,
                    quorum,
                    security,
                    seed: rand::random(),
                })
            }
            None => None,
        };
        tracing::info!(
            client = %listeners.client.local_addr()?,
            secure_client = ?listeners.secure_client.as_ref().and_then(|(l, _)| l.local_addr().ok()),
            admin = ?listeners.admin.as_ref().and_then(|a| a.local_addr().ok()),
            data_dir = %config.data_dir.display(),
            "conclave-server serving"
        );
        server::server::run_member(
            Arc::new(config),
            recovered,
            listeners,
            membership,
            shutdown_signal(),
        )
        .await?;
        anyhow::Ok(())
    })
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

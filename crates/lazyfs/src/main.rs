//! `conclave-lazyfs`: mounts a LazyFS (see the library docs for the
//! durability rules) until SIGTERM or SIGINT, or sends a command to a
//! running one.
//!
//! ```text
//! conclave-lazyfs --backing <dir> --mount <dir> [--control <socket>] [--max-dirty-mib N]
//! conclave-lazyfs ctl <socket> power-cut|sync|stats
//! ```

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use lazyfs::control::{self, Command};
use lazyfs::{MountConfig, mount, recover_stale_mount};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[derive(Debug, Parser)]
#[command(
    name = "conclave-lazyfs",
    about = "A FUSE passthrough filesystem that keeps unsynced writes in memory and drops them on a power-cut command",
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// The directory holding the data (what a real disk keeps).
    #[arg(long, required = true)]
    backing: Option<PathBuf>,
    /// Where to mount (an existing empty directory; a stale mount of a
    /// killed LazyFS there is detached first).
    #[arg(long, required = true)]
    mount: Option<PathBuf>,
    /// A Unix socket to create for commands (power-cut, sync, stats). It
    /// appears once the filesystem is mounted.
    #[arg(long)]
    control: Option<PathBuf>,
    /// Past this many MiB of unsynced data in total, files are written back
    /// (unsynced), as a kernel would.
    #[arg(long, default_value_t = 1024)]
    max_dirty_mib: u64,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Sends a command to a running conclave-lazyfs and prints its answer.
    Ctl {
        /// The running filesystem's control socket.
        socket: PathBuf,
        /// What to do.
        command: CtlCommand,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CtlCommand {
    /// Drop every unsynced byte.
    PowerCut,
    /// Write every cached byte back and sync it.
    Sync,
    /// Print the counters.
    Stats,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    if let Some(Sub::Ctl { socket, command }) = cli.command {
        let command = match command {
            CtlCommand::PowerCut => Command::PowerCut,
            CtlCommand::Sync => Command::Sync,
            CtlCommand::Stats => Command::Stats,
        };
        let reply = control::request(&socket, command)?;
        let fields: Vec<String> = reply
            .fields
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        println!("{} {}", reply.command, fields.join(" "));
        return Ok(());
    }
    let (Some(backing), Some(mount_point)) = (cli.backing, cli.mount) else {
        anyhow::bail!("--backing and --mount are required");
    };
    serve(backing, mount_point, cli.control, cli.max_dirty_mib)
}

fn serve(
    backing: PathBuf,
    mount_point: PathBuf,
    control_path: Option<PathBuf>,
    max_dirty_mib: u64,
) -> anyhow::Result<()> {
    recover_stale_mount(&mount_point)?;
    let mut config = MountConfig::new(backing, mount_point);
    config.max_dirty_bytes = max_dirty_mib.saturating_mul(1 << 20);
    // Signals are caught before mounting, so none ends the process with
    // the mount left behind.
    let mut signals = Signals::new([SIGTERM, SIGINT]).context("installing signal handlers")?;
    let mounted = mount(&config)?;
    let control = match &control_path {
        Some(path) => Some(control::serve(path, mounted.controller())?),
        None => None,
    };
    if let Some(server) = &control {
        tracing::info!(socket = %server.path().display(), "control socket ready");
    }

    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("lazyfs-signals".to_owned())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let _ = tx.send(signal);
            }
        })
        .context("starting the signal thread")?;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(signal) => {
                tracing::info!(signal, "unmounting");
                break;
            }
            Err(mpsc::RecvTimeoutError::Timeout) if !mounted.is_finished() => {}
            Err(_) => {
                tracing::info!("unmounted from outside");
                break;
            }
        }
    }
    drop(control);
    let stats = mounted.controller().stats();
    mounted.unmount()?;
    tracing::info!(
        power_cuts = stats.power_cuts,
        dropped_bytes_total = stats.dropped_bytes_total,
        "stopped"
    );
    Ok(())
}

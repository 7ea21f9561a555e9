//! The control socket: a Unix stream socket that takes one command per
//! line and answers one line, so a test script can drive a LazyFS process
//! (`conclave-lazyfs ctl <socket> power-cut`, or `nc -U`).
//!
//! ```text
//! > power-cut
//! < ok power-cut files=2 bytes=8192
//! > sync
//! < ok sync files=1 bytes=4096
//! > stats
//! < ok stats nodes=12 cached_files=3 open_handles=2 dirty_files=1 dirty_bytes=100 ...
//! > reboot
//! < error unknown command "reboot" (expected power-cut, sync or stats)
//! ```
//!
//! A connection may send several commands. Commands run one at a time on
//! the server's thread, each under the filesystem's lock, so a power cut
//! happens between two FUSE requests, never inside one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cache::Stats;
use crate::controller::Controller;
use crate::error::Error;

/// How long the server keeps an idle client connection.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the accept loop checks whether it should stop.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Longest command line accepted.
const MAX_LINE_BYTES: u64 = 256;

/// A control command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Drop every unsynced byte ([`Controller::power_cut`]).
    PowerCut,
    /// Write everything back and sync it ([`Controller::sync`]).
    Sync,
    /// Report the counters ([`Controller::stats`]).
    Stats,
}

impl Command {
    /// The command's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Command::PowerCut => "power-cut",
            Command::Sync => "sync",
            Command::Stats => "stats",
        }
    }
}

impl FromStr for Command {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "power-cut" => Ok(Command::PowerCut),
            "sync" => Ok(Command::Sync),
            "stats" => Ok(Command::Stats),
            other => Err(format!(
                "unknown command {other:?} (expected power-cut, sync or stats)"
            )),
        }
    }
}

/// A successful answer: the command and its numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The command answered.
    pub command: String,
    /// `name=value` pairs (`files`, `bytes`, or the [`Stats`] fields).
    pub fields: BTreeMap<String, u64>,
}

impl Reply {
    /// The value of `name`, if the reply has it.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.fields.get(name).copied()
    }

    /// Parses an answer line (`ok <command> k=v ...` or `error <message>`).
    pub fn parse(line: &str) -> Result<Self, Error> {
        let line = line.trim_end();
        if let Some(message) = line.strip_prefix("error ") {
            return Err(Error::Refused(message.to_owned()));
        }
        let malformed = || Error::Refused(format!("malformed reply {line:?}"));
        let mut words = line.split(' ');
        if words.next() != Some("ok") {
            return Err(malformed());
        }
        let command = words.next().ok_or_else(malformed)?.to_owned();
        let mut fields = BTreeMap::new();
        for word in words {
            let (name, value) = word.split_once('=').ok_or_else(malformed)?;
            fields.insert(name.to_owned(), value.parse().map_err(|_| malformed())?);
        }
        Ok(Self { command, fields })
    }
}

fn stats_fields(s: &Stats) -> [(&'static str, u64); 11] {
    [
        ("nodes", s.nodes),
        ("cached_files", s.cached_files),
        ("open_handles", s.open_handles),
        ("dirty_files", s.dirty_files),
        ("dirty_bytes", s.dirty_bytes),
        ("max_dirty_bytes", s.max_dirty_bytes),
        ("synced_bytes_total", s.synced_bytes_total),
        ("written_back_bytes_total", s.written_back_bytes_total),
        ("dropped_bytes_total", s.dropped_bytes_total),
        ("discarded_bytes_total", s.discarded_bytes_total),
        ("power_cuts", s.power_cuts),
    ]
}

/// Runs `command` and formats the answer line (with its newline).
pub fn execute(controller: &Controller, command: Command) -> String {
    let fields: Vec<(&str, u64)> = match command {
        Command::PowerCut => {
            let r = controller.power_cut();
            vec![("files", r.files), ("bytes", r.bytes)]
        }
        Command::Sync => match controller.sync() {
            Ok(r) => vec![("files", r.files), ("bytes", r.bytes)],
            Err(e) => return format!("error {e}\n"),
        },
        Command::Stats => stats_fields(&controller.stats()).to_vec(),
    };
    let mut line = format!("ok {}", command.name());
    for (name, value) in fields {
        let _ = write!(line, " {name}={value}");
    }
    line.push('\n');
    line
}

/// The control socket's server thread. Dropping it stops the thread and
/// removes the socket file.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Listens on `path` (a stale socket file there is replaced) and serves
/// commands on a thread.
pub fn serve(path: &Path, controller: Controller) -> Result<ControlServer, Error> {
    let error = |source| Error::Control {
        path: path.to_path_buf(),
        source,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(error(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a socket",
            )));
        }
        std::fs::remove_file(path).map_err(error)?;
    }
    let listener = UnixListener::bind(path).map_err(error)?;
    listener.set_nonblocking(true).map_err(error)?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name("lazyfs-control".to_owned())
        .spawn(move || accept_loop(&listener, &controller, &thread_stop))
        .map_err(error)?;
    Ok(ControlServer {
        path: path.to_path_buf(),
        stop,
        thread: Some(thread),
    })
}

fn accept_loop(listener: &UnixListener, controller: &Controller, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = handle(stream, controller, stop) {
                    tracing::debug!(error = %e, "control connection");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL_INTERVAL),
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept");
                std::thread::sleep(POLL_INTERVAL);
            }
        }
    }
}

fn handle(stream: UnixStream, controller: &Controller, stop: &AtomicBool) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    // Short reads, so an idle client delays a shutdown by this much at most.
    stream.set_read_timeout(Some(POLL_INTERVAL * 10))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut idle = Instant::now();
    loop {
        match (&mut reader).take(MAX_LINE_BYTES).read_line(&mut line) {
            Ok(0) => return Ok(()),
            Ok(_)
                if !line.ends_with('\n')
                    && u64::try_from(line.len()).unwrap_or(u64::MAX) >= MAX_LINE_BYTES =>
            {
                writer.write_all(b"error command line too long\n")?;
                return Ok(());
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::Relaxed) || idle.elapsed() > CLIENT_TIMEOUT {
                    return Ok(());
                }
                continue;
            }
            Err(e) => return Err(e),
        }
        idle = Instant::now();
        let command = std::mem::take(&mut line);
        if command.trim().is_empty() {
            continue;
        }
        let answer = match command.parse::<Command>() {
            Ok(command) => execute(controller, command),
            Err(message) => format!("error {message}\n"),
        };
        writer.write_all(answer.as_bytes())?;
    }
}

impl ControlServer {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sends `command` to the LazyFS listening on `path` and returns its answer.
pub fn request(path: &Path, command: Command) -> Result<Reply, Error> {
    let error = |source| Error::Control {
        path: path.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(path).map_err(error)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(600)))
        .map_err(error)?;
    stream
        .write_all(format!("{}\n", command.name()).as_bytes())
        .map_err(error)?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .map_err(error)?;
    if line.is_empty() {
        return Err(error(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed without answering",
        )));
    }
    Reply::parse(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_and_unknown_ones_are_named() {
        for c in [Command::PowerCut, Command::Sync, Command::Stats] {
            assert_eq!(c.name().parse::<Command>(), Ok(c));
        }
        assert_eq!(" sync\n".parse::<Command>(), Ok(Command::Sync));
        assert!("reboot".parse::<Command>().unwrap_err().contains("reboot"));
    }

    #[test]
    fn replies_parse_and_errors_are_refusals() {
        let reply = Reply::parse("ok power-cut files=2 bytes=10\n").unwrap();
        assert_eq!(reply.command, "power-cut");
        assert_eq!(
            (reply.get("files"), reply.get("bytes")),
            (Some(2), Some(10))
        );
        assert!(matches!(Reply::parse("error nope\n"), Err(Error::Refused(m)) if m == "nope"));
        assert!(Reply::parse("ok power-cut files=x").is_err());
        assert!(Reply::parse("hello").is_err());
    }
}

//! The log writer: one thread that owns the store, appends the entries the
//! processor prepares, and tells it how far the log is durable.
//!
//! Group commit: the thread takes every command already queued, writes them
//! all, then syncs once and reports the highest durable index. Entries that
//! arrive while a sync runs wait for the next one, so under load one sync
//! covers many writes, and with one client each write gets its own sync at
//! once — no timer, no artificial delay.
//!
//! Why a thread and not a task: RocksDB calls block (an fsync takes
//! 100–300 µs here), and the processor must keep serving reads meanwhile.
//! The channels in both directions are unbounded; the processor bounds what
//! it has in flight (`globalOutstandingLimit` per connection).

use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use storage::{ApplyBatch, HardState, Image, LogEntry, StorageError, Store};
use tokio::sync::mpsc;

/// What the processor asks of the log writer.
#[derive(Debug)]
pub enum WriterCommand {
    /// Append (not yet durable).
    Append(Vec<LogEntry>),
    /// Write the effects of applied entries (atomic, not synced).
    Apply(ApplyBatch),
    /// Drop log entries up to this index (retention).
    Compact(u64),
    /// Raft's hard state (term, vote, commit) changed.
    HardState(HardState),
    /// The committed membership changed (opaque bytes).
    Config(Vec<u8>),
    /// Everything queued before belongs to the consensus ready `number`:
    /// report it in [`WriterEvent::Durable`] once written, after a sync if
    /// `sync` (raft-rs says when a ready needs none).
    Marker { number: u64, sync: bool },
    /// Replace everything with a snapshot from the leader (not synced).
    InstallImage(Box<Image>),
    /// Write and sync everything queued before, then say how that went on
    /// `done` (for the rare caller that must wait: installing a snapshot).
    SyncNow(std_mpsc::Sender<Result<(), String>>),
}

/// What the log writer reports back.
#[derive(Debug)]
pub enum WriterEvent {
    /// Every entry up to `index` is durable, and every consensus ready up
    /// to `marker` (if any arrived) is written.
    Durable {
        index: u64,
        marker: Option<u64>,
        sync: SyncStats,
    },
    /// The store failed; nothing more will become durable.
    Failed(StorageError),
}

/// One sync: how many entries it made durable and how long it took.
#[derive(Debug, Clone, Copy)]
pub struct SyncStats {
    pub entries: usize,
    pub duration: Duration,
    /// Whether a sync ran (a consensus ready that needs none is written
    /// without one).
    pub synced: bool,
}

/// The processor's end of the log writer.
#[derive(Debug)]
pub struct LogWriter {
    commands: std_mpsc::Sender<WriterCommand>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LogWriter {
    /// Starts the writer thread; events arrive on the returned receiver.
    pub fn spawn(
        store: Box<dyn Store>,
    ) -> std::io::Result<(LogWriter, mpsc::UnboundedReceiver<WriterEvent>)> {
        let (commands, command_rx) = std_mpsc::channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("conclave-log".into())
            .spawn(move || write_loop(store, &command_rx, &event_tx))?;
        Ok((
            LogWriter {
                commands,
                thread: Some(thread),
            },
            events,
        ))
    }

    /// Queues a command; false once the writer has stopped.
    pub fn send(&self, command: WriterCommand) -> bool {
        self.commands.send(command).is_ok()
    }
}

impl Drop for LogWriter {
    /// Closing the channel stops the thread after it has written (and
    /// synced) everything queued.
    fn drop(&mut self) {
        let (closed, _) = std_mpsc::channel();
        drop(std::mem::replace(&mut self.commands, closed));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_loop(
    mut store: Box<dyn Store>,
    commands: &std_mpsc::Receiver<WriterCommand>,
    events: &mpsc::UnboundedSender<WriterEvent>,
) {
    while let Ok(first) = commands.recv() {
        let mut batch = vec![first];
        batch.extend(commands.try_iter());
        match write_batch(store.as_mut(), batch) {
            Ok(Some(event)) => {
                let _ = events.send(event);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "the store failed; no further write will be acknowledged");
                let _ = events.send(WriterEvent::Failed(e));
                return;
            }
        }
    }
    // The processor is gone: everything it queued has been written.
    if let Err(e) = store.shutdown() {
        tracing::error!(error = %e, "closing the store failed");
    }
}

/// Writes one drained batch of commands; syncs if it appended anything.
/// Consecutive appends are written as one (one write-ahead-log record), and
/// commands keep their order: an apply batch never overtakes the entries
/// it applies.
fn write_batch(
    store: &mut dyn Store,
    batch: Vec<WriterCommand>,
) -> Result<Option<WriterEvent>, StorageError> {
    let mut last_appended = None;
    let mut marker = None;
    let mut must_sync = false;
    let mut entries = 0;
    let mut appends: Vec<LogEntry> = Vec::new();
    for command in batch {
        match command {
            WriterCommand::Append(new) => {
                if let Some(last) = new.last() {
                    last_appended = Some(last.index);
                    entries += new.len();
                }
                appends.extend(new);
            }
            WriterCommand::Apply(apply) => {
                flush_appends(store, &mut appends)?;
                store.apply(&apply)?;
            }
            WriterCommand::Compact(through) => {
                flush_appends(store, &mut appends)?;
                store.compact_prefix(through)?;
            }
            WriterCommand::HardState(hard_state) => {
                flush_appends(store, &mut appends)?;
                store.set_hard_state(hard_state)?;
            }
            WriterCommand::Config(config) => {
                flush_appends(store, &mut appends)?;
                store.set_config(&config)?;
            }
            WriterCommand::Marker { number, sync } => {
                marker = Some(number);
                must_sync |= sync;
            }
            WriterCommand::InstallImage(image) => {
                flush_appends(store, &mut appends)?;
                store.install_image(&image)?;
            }
            WriterCommand::SyncNow(done) => {
                flush_appends(store, &mut appends)?;
                if let Err(e) = store.sync() {
                    let _ = done.send(Err(e.to_string()));
                    return Err(e);
                }
                let _ = done.send(Ok(()));
            }
        }
    }
    flush_appends(store, &mut appends)?;
    if last_appended.is_none() && marker.is_none() {
        return Ok(None);
    }
    let index = last_appended.unwrap_or(0);
    let started = Instant::now();
    let synced = last_appended.is_some() || must_sync;
    if synced {
        store.sync()?;
    }
    Ok(Some(WriterEvent::Durable {
        index,
        marker,
        sync: SyncStats {
            entries,
            duration: started.elapsed(),
            synced,
        },
    }))
}

fn flush_appends(store: &mut dyn Store, appends: &mut Vec<LogEntry>) -> Result<(), StorageError> {
    if !appends.is_empty() {
        store.append(appends)?;
        appends.clear();
    }
    Ok(())
}

//! The log writer: one thread that owns the store and writes, in order,
//! what the processor and the ensemble driver queue (`storage::writer`
//! does the writing: appends, applied effects, hard state, membership
//! record, images, one sync per batch), and tells the processor how far
//! the log is durable.
//!
//! Group commit: the thread takes every command already queued, writes them
//! all, then syncs once and reports. Entries that arrive while a sync runs
//! wait for the next one, so under load one sync covers many writes, and
//! with one client each write gets its own sync at once — no timer, no
//! artificial delay.
//!
//! Why a thread and not a task: RocksDB calls block (an fsync takes
//! 100–300 µs here), and the processor must keep serving reads meanwhile.
//! The channels in both directions are unbounded; the processor bounds what
//! it has in flight (`globalOutstandingLimit` per connection).

use std::sync::mpsc as std_mpsc;

use consensus::driver::{DriverError, LogWriter, MembershipRecord};
use consensus::raft::eraftpb::{Entry, HardState};
use storage::writer::{SyncStats, WriteCommand, Written, write_batch};
use storage::{StorageError, Store};
use tokio::sync::mpsc;

/// What the log writer reports back.
#[derive(Debug)]
pub enum WriterEvent {
    /// Every entry up to `index` is durable (0 if the batch appended
    /// nothing), and every consensus ready up to `marker` (if any
    /// arrived) is written.
    Durable {
        index: u64,
        marker: Option<u64>,
        sync: SyncStats,
    },
    /// The store failed; nothing more will become durable.
    Failed(StorageError),
}

/// The owner's end of the log writer: dropping it stops the thread after
/// everything queued is written and synced.
#[derive(Debug)]
pub struct LogWriterThread {
    handle: WriterHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A sender of writes to the log writer thread; the ensemble driver writes
/// through one ([`LogWriter`]), the processor through another.
#[derive(Debug, Clone)]
pub struct WriterHandle {
    commands: std_mpsc::Sender<WriteCommand>,
}

impl WriterHandle {
    /// Queues a command; false once the writer has stopped.
    pub fn send(&self, command: WriteCommand) -> bool {
        self.commands.send(command).is_ok()
    }
}

impl LogWriterThread {
    /// Starts the writer thread; events arrive on the returned receiver.
    pub fn spawn(
        store: Box<dyn Store>,
    ) -> std::io::Result<(LogWriterThread, mpsc::UnboundedReceiver<WriterEvent>)> {
        let (commands, command_rx) = std_mpsc::channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("conclave-log".into())
            .spawn(move || write_loop(store, &command_rx, &event_tx))?;
        Ok((
            LogWriterThread {
                handle: WriterHandle { commands },
                thread: Some(thread),
            },
            events,
        ))
    }

    pub fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    /// Queues a command; false once the writer has stopped.
    pub fn send(&self, command: WriteCommand) -> bool {
        self.handle.send(command)
    }
}

impl Drop for LogWriterThread {
    /// Closing the channel stops the thread after it has written (and
    /// synced) everything queued — once every other handle is gone too.
    fn drop(&mut self) {
        let (closed, _) = std_mpsc::channel();
        drop(std::mem::replace(&mut self.handle.commands, closed));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_loop(
    mut store: Box<dyn Store>,
    commands: &std_mpsc::Receiver<WriteCommand>,
    events: &mpsc::UnboundedSender<WriterEvent>,
) {
    while let Ok(first) = commands.recv() {
        let mut batch = vec![first];
        batch.extend(commands.try_iter());
        match write_batch(store.as_mut(), batch) {
            Ok(Some(Written {
                last_appended,
                marker,
                sync,
            })) => {
                let _ = events.send(WriterEvent::Durable {
                    index: last_appended.unwrap_or(0),
                    marker,
                    sync,
                });
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "the store failed; no further write will be acknowledged");
                let _ = events.send(WriterEvent::Failed(e));
                return;
            }
        }
    }
    // Every sender is gone: everything queued has been written.
    if let Err(e) = store.shutdown() {
        tracing::error!(error = %e, "closing the store failed");
    }
}

/// The driver's disk: its writes go to the log writer thread in order.
impl LogWriter for WriterHandle {
    fn append(&mut self, entries: &[Entry]) {
        let entries = entries
            .iter()
            .map(storage::consensus_log::log_entry)
            .collect();
        self.send(WriteCommand::Append(entries));
    }

    fn set_hard_state(&mut self, hard_state: &HardState) {
        self.send(WriteCommand::HardState(storage::HardState {
            term: hard_state.term,
            vote: hard_state.vote,
            commit: hard_state.commit,
        }));
    }

    fn set_membership(&mut self, record: &MembershipRecord) {
        self.send(WriteCommand::Config(storage::membership_record::encode(
            record,
        )));
    }

    fn compact(&mut self, through: u64) {
        self.send(WriteCommand::Compact(through));
    }

    fn persist(&mut self, number: u64, sync: bool) {
        self.send(WriteCommand::Marker { number, sync });
    }

    fn sync_now(&mut self) -> Result<(), DriverError> {
        let (done, result) = std_mpsc::channel();
        let sent = self.send(WriteCommand::SyncNow(Box::new(move |outcome| {
            let _ = done.send(outcome);
        })));
        if !sent {
            return Err(DriverError::Store("the log writer stopped".into()));
        }
        match result.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DriverError::Store(e)),
            Err(_) => Err(DriverError::Store("the log writer stopped".into())),
        }
    }
}

//! Recording a history as it happens, with a logical clock.
//!
//! The simulator and the test against real processes record the same way:
//! `invoke` just before a request is sent, then `complete` with the
//! response, or `fail_unknown` on a timeout or a lost connection. The
//! recorder stamps each event with the next tick of its own clock, so the
//! order of the stamps is the order of the calls. That is all a
//! linearizability check needs from time: if one call to `complete` returns
//! before another thread calls `invoke`, the completion gets the smaller
//! tick.
//!
//! [`Recorder`] is single-threaded (`&mut self`), for the simulator.
//! [`SharedRecorder`] wraps it in `Arc<Mutex<_>>` for many client threads.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::history::{ClientId, Completion, History, HistoryError, OpId};

/// A call to the recorder that does not fit what was recorded before.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// No operation has this id.
    #[error("no operation {0} was invoked")]
    NoSuchOperation(OpId),
    /// The operation was already completed or marked unknown.
    #[error("operation {0} already has an outcome")]
    AlreadyResolved(OpId),
    /// The history refused the completion (cannot happen with the
    /// recorder's own clock; kept so no error is swallowed).
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// Records operations with a logical clock it keeps itself.
///
/// Operations that are neither completed nor marked unknown when the
/// history is taken stay unknown: the run ended before they returned.
#[derive(Debug)]
pub struct Recorder<I, O> {
    history: History<I, O>,
    /// Whether each operation was completed or marked unknown already.
    resolved: Vec<bool>,
    /// The tick the next event gets.
    clock: u64,
}

impl<I, O> Default for Recorder<I, O> {
    fn default() -> Self {
        Self {
            history: History::new(),
            resolved: Vec::new(),
            clock: 0,
        }
    }
}

impl<I, O> Recorder<I, O> {
    /// An empty recorder; the first event gets tick 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `client` sent `input` now.
    pub fn invoke(&mut self, client: ClientId, input: I) -> OpId {
        let tick = self.tick();
        self.resolved.push(false);
        self.history.push_invocation(client, tick, input)
    }

    /// Records that `op` returned `output` now.
    pub fn complete(&mut self, op: OpId, output: O) -> Result<(), RecordError> {
        self.resolve(op)?;
        let at = self.tick();
        self.history.set_completion(op, Completion { at, output })?;
        Ok(())
    }

    /// Records that `op` ended without a known outcome (timeout, lost
    /// connection): it may or may not take effect.
    pub fn fail_unknown(&mut self, op: OpId) -> Result<(), RecordError> {
        self.resolve(op)?;
        self.tick();
        Ok(())
    }

    /// The number of operations with no outcome recorded yet.
    pub fn pending(&self) -> usize {
        self.resolved.iter().filter(|resolved| !**resolved).count()
    }

    /// The history so far.
    pub fn history(&self) -> &History<I, O> {
        &self.history
    }

    /// The history; pending operations stay unknown.
    pub fn into_history(self) -> History<I, O> {
        self.history
    }

    fn resolve(&mut self, op: OpId) -> Result<(), RecordError> {
        let resolved = self
            .resolved
            .get_mut(op.index())
            .ok_or(RecordError::NoSuchOperation(op))?;
        if *resolved {
            return Err(RecordError::AlreadyResolved(op));
        }
        *resolved = true;
        Ok(())
    }

    fn tick(&mut self) -> u64 {
        let tick = self.clock;
        self.clock += 1;
        tick
    }
}

/// A [`Recorder`] many client threads share; cloning shares it.
///
/// Why a `Mutex`: each event must take its tick and land in the history as
/// one step, or a completion could get a tick after an invocation that
/// really happened later. The critical section is a push onto a vector, so
/// contention is negligible next to a network round trip. A poisoned lock
/// (a client thread panicked) is taken over: every method leaves the
/// recorder consistent before it can panic, so the data is still good.
#[derive(Debug)]
pub struct SharedRecorder<I, O> {
    inner: Arc<Mutex<Recorder<I, O>>>,
}

impl<I, O> Clone for SharedRecorder<I, O> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<I, O> Default for SharedRecorder<I, O> {
    fn default() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Recorder::new())),
        }
    }
}

impl<I, O> SharedRecorder<I, O> {
    /// An empty shared recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// See [`Recorder::invoke`].
    pub fn invoke(&self, client: ClientId, input: I) -> OpId {
        self.lock().invoke(client, input)
    }

    /// See [`Recorder::complete`].
    pub fn complete(&self, op: OpId, output: O) -> Result<(), RecordError> {
        self.lock().complete(op, output)
    }

    /// See [`Recorder::fail_unknown`].
    pub fn fail_unknown(&self, op: OpId) -> Result<(), RecordError> {
        self.lock().fail_unknown(op)
    }

    /// See [`Recorder::pending`].
    pub fn pending(&self) -> usize {
        self.lock().pending()
    }

    /// A copy of the history so far.
    pub fn snapshot(&self) -> History<I, O>
    where
        I: Clone,
        O: Clone,
    {
        self.lock().history().clone()
    }

    /// The history, if this is the last handle; otherwise the handle back.
    pub fn try_into_history(self) -> Result<History<I, O>, Self> {
        match Arc::try_unwrap(self.inner) {
            Ok(mutex) => Ok(mutex
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .into_history()),
            Err(inner) => Err(Self { inner }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Recorder<I, O>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;

    #[test]
    fn ticks_follow_the_calls() {
        let mut recorder: Recorder<&str, &str> = Recorder::new();
        let write = recorder.invoke(1, "write");
        let read = recorder.invoke(2, "read");
        recorder.complete(write, "ok").unwrap();
        recorder.fail_unknown(read).unwrap();
        let late = recorder.invoke(1, "late");
        assert_eq!(recorder.pending(), 1);
        let history = recorder.into_history();
        let operations = history.operations();
        assert_eq!(
            (operations[0].invoked_at, operations[0].completed_at()),
            (0, Some(2))
        );
        assert_eq!(
            (operations[1].invoked_at, operations[1].completed_at()),
            (1, None)
        );
        assert_eq!(operations[late.index()].invoked_at, 4);
        assert_eq!(operations[late.index()].completion, None);
    }

    #[test]
    fn an_outcome_is_recorded_once() {
        let mut recorder: Recorder<&str, &str> = Recorder::new();
        let op = recorder.invoke(1, "write");
        recorder.complete(op, "ok").unwrap();
        assert_eq!(
            recorder.complete(op, "ok"),
            Err(RecordError::AlreadyResolved(op))
        );
        assert_eq!(
            recorder.fail_unknown(op),
            Err(RecordError::AlreadyResolved(op))
        );
        let stranger = OpId::from_position(7);
        assert_eq!(
            recorder.complete(stranger, "ok"),
            Err(RecordError::NoSuchOperation(stranger))
        );
    }

    #[test]
    fn threads_share_one_clock() {
        let recorder: SharedRecorder<u64, u64> = SharedRecorder::new();
        let threads: Vec<_> = (0..4)
            .map(|client| {
                let recorder = recorder.clone();
                thread::spawn(move || {
                    for value in 0..100 {
                        let op = recorder.invoke(client, value);
                        recorder.complete(op, value).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let history = recorder.try_into_history().unwrap();
        assert_eq!(history.len(), 400);
        let mut ticks: Vec<u64> = history
            .operations()
            .iter()
            .flat_map(|op| [op.invoked_at, op.completed_at().unwrap()])
            .collect();
        ticks.sort_unstable();
        ticks.dedup();
        assert_eq!(ticks.len(), 800, "every event has its own tick");
    }
}

//! A history: the operations clients invoked, when, and what came back.
//!
//! This is the checker's only input, so it is plain data with no tie to the
//! server or the simulator: a client id, an invocation time, the input, and
//! either a completion (time and output) or nothing. Nothing means the
//! outcome is unknown — a timeout or a lost connection — and the operation
//! may have taken effect at any time after its invocation, or never
//! (Jepsen's `:info` operations; Kingsbury, "Knossos" and the Jepsen
//! analyses).
//!
//! Times are plain `u64`: logical ticks from a [`Recorder`](crate::Recorder)
//! or the simulator, or monotonic nanoseconds in a test against real
//! processes. Only their order matters. An operation `a` precedes `b` in
//! real time when `a` completed strictly before `b` was invoked; equal
//! times count as concurrent, which can only hide a violation, never invent
//! one.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The client (Jepsen's "process") that invoked an operation.
pub type ClientId = u64;

/// An operation's position in its [`History`], from 0.
///
/// It is also the operation's line, counted from 0, in the JSON-lines form
/// of the history, so a failure message can be traced back to the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OpId(usize);

impl OpId {
    /// The position of the operation in its history.
    pub fn index(self) -> usize {
        self.0
    }

    #[cfg(test)]
    pub(crate) fn from_position(position: usize) -> Self {
        Self(position)
    }
}

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// How an operation ended, when the client learned it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion<O> {
    /// When the client received the response.
    pub at: u64,
    /// The response.
    pub output: O,
}

/// One operation of a history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation<I, O> {
    /// Its position in the history.
    pub id: OpId,
    /// Who invoked it.
    pub client: ClientId,
    /// When the client sent it.
    pub invoked_at: u64,
    /// What was asked.
    pub input: I,
    /// What came back and when; `None` if the outcome is unknown.
    pub completion: Option<Completion<O>>,
}

impl<I, O> Operation<I, O> {
    /// The completion time, if the outcome is known.
    pub fn completed_at(&self) -> Option<u64> {
        self.completion.as_ref().map(|completion| completion.at)
    }

    /// The output, if the outcome is known.
    pub fn output(&self) -> Option<&O> {
        self.completion
            .as_ref()
            .map(|completion| &completion.output)
    }
}

/// `#17 client 3 [12, 15] SetData { .. } -> SetData { version: 2 }`, or
/// `[12, ?] ... -> ?` when the outcome is unknown. Failure messages list
/// operations this way.
impl<I: fmt::Debug, O: fmt::Debug> fmt::Display for Operation<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} client {} [{}, ",
            self.id, self.client, self.invoked_at
        )?;
        match &self.completion {
            Some(completion) => {
                write!(
                    f,
                    "{}] {:?} -> {:?}",
                    completion.at, self.input, completion.output
                )
            }
            None => write!(f, "?] {:?} -> ?", self.input),
        }
    }
}

/// An operation that cannot be part of a history.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// The completion time is before the invocation time.
    #[error("operation {op} completed at {completed_at}, before its invocation at {invoked_at}")]
    CompletedBeforeInvoked {
        /// The operation.
        op: OpId,
        /// Its invocation time.
        invoked_at: u64,
        /// Its completion time.
        completed_at: u64,
    },
    /// An operation read back from a file does not carry the id of its
    /// position.
    #[error("operation has id {found}, expected {expected}")]
    IdMismatch {
        /// The id its position gives it.
        expected: OpId,
        /// The id it carries.
        found: OpId,
    },
}

/// The operations of a run, in the order they were recorded.
///
/// The order of the vector carries no meaning for the check (times do); it
/// only fixes the [`OpId`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct History<I, O> {
    operations: Vec<Operation<I, O>>,
}

impl<I, O> Default for History<I, O> {
    fn default() -> Self {
        Self {
            operations: Vec::new(),
        }
    }
}

impl<I, O> History<I, O> {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an operation with the given times and returns its id.
    pub fn push(
        &mut self,
        client: ClientId,
        invoked_at: u64,
        input: I,
        completion: Option<Completion<O>>,
    ) -> Result<OpId, HistoryError> {
        let id = OpId(self.operations.len());
        self.push_operation(Operation {
            id,
            client,
            invoked_at,
            input,
            completion,
        })?;
        Ok(id)
    }

    /// Appends an operation whose output is known.
    pub fn push_completed(
        &mut self,
        client: ClientId,
        invoked_at: u64,
        completed_at: u64,
        input: I,
        output: O,
    ) -> Result<OpId, HistoryError> {
        self.push(
            client,
            invoked_at,
            input,
            Some(Completion {
                at: completed_at,
                output,
            }),
        )
    }

    /// Appends an operation whose outcome is unknown.
    pub fn push_unknown(
        &mut self,
        client: ClientId,
        invoked_at: u64,
        input: I,
    ) -> Result<OpId, HistoryError> {
        self.push(client, invoked_at, input, None)
    }

    /// The operations, indexed by [`OpId::index`].
    pub fn operations(&self) -> &[Operation<I, O>] {
        &self.operations
    }

    /// The operation with this id.
    pub fn get(&self, id: OpId) -> Option<&Operation<I, O>> {
        self.operations.get(id.0)
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.operations.len()
    }

    /// Whether there are no operations.
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// Appends an operation with no outcome yet (the recorder's
    /// invocation): it cannot be refused.
    pub(crate) fn push_invocation(&mut self, client: ClientId, invoked_at: u64, input: I) -> OpId {
        let id = OpId(self.operations.len());
        self.operations.push(Operation {
            id,
            client,
            invoked_at,
            input,
            completion: None,
        });
        id
    }

    /// Appends an operation that already carries its id (read back from a
    /// file); the id must be its position.
    pub(crate) fn push_operation(
        &mut self,
        operation: Operation<I, O>,
    ) -> Result<(), HistoryError> {
        let expected = OpId(self.operations.len());
        if operation.id != expected {
            return Err(HistoryError::IdMismatch {
                expected,
                found: operation.id,
            });
        }
        validate_times(&operation)?;
        self.operations.push(operation);
        Ok(())
    }

    /// Records the completion of an operation that had none.
    pub(crate) fn set_completion(
        &mut self,
        id: OpId,
        completion: Completion<O>,
    ) -> Result<(), HistoryError> {
        if let Some(operation) = self.operations.get_mut(id.0) {
            if completion.at < operation.invoked_at {
                return Err(HistoryError::CompletedBeforeInvoked {
                    op: id,
                    invoked_at: operation.invoked_at,
                    completed_at: completion.at,
                });
            }
            operation.completion = Some(completion);
        }
        Ok(())
    }
}

fn validate_times<I, O>(operation: &Operation<I, O>) -> Result<(), HistoryError> {
    match operation.completed_at() {
        Some(completed_at) if completed_at < operation.invoked_at => {
            Err(HistoryError::CompletedBeforeInvoked {
                op: operation.id,
                invoked_at: operation.invoked_at,
                completed_at,
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_positions() {
        let mut history: History<&str, &str> = History::new();
        assert_eq!(
            history.push_completed(1, 0, 1, "a", "ok").unwrap().index(),
            0
        );
        assert_eq!(history.push_unknown(2, 1, "b").unwrap().index(), 1);
        assert_eq!(history.len(), 2);
        assert_eq!(history.operations()[1].completion, None);
    }

    #[test]
    fn completion_before_invocation_is_refused() {
        let mut history: History<&str, &str> = History::new();
        let error = history.push_completed(1, 5, 4, "a", "ok").unwrap_err();
        assert!(matches!(error, HistoryError::CompletedBeforeInvoked { .. }));
        assert!(history.is_empty());
    }

    #[test]
    fn display_names_id_client_times_and_outcome() {
        let mut history: History<&str, &str> = History::new();
        history.push_completed(3, 12, 15, "write", "ok").unwrap();
        history.push_unknown(4, 13, "read").unwrap();
        assert_eq!(
            history.operations()[0].to_string(),
            "#0 client 3 [12, 15] \"write\" -> \"ok\""
        );
        assert_eq!(
            history.operations()[1].to_string(),
            "#1 client 4 [13, ?] \"read\" -> ?"
        );
    }
}

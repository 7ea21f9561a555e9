//! Histories as JSON lines: one operation per line, so a failing run
//! against real processes can keep its history in a file and the check can
//! be rerun on it later ([`check_file`]).
//!
//! A line is an [`Operation`] as serde writes it, for
//! example `{"id":0,"client":1,"invoked_at":5,"input":{..},
//! "completion":{"at":7,"output":{..}}}`, with `"completion":null` when the
//! outcome is unknown. Line n (from 0) holds operation n, so the ids in a
//! failure message point at lines. Blank lines are skipped and not counted.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::budget::Budget;
use crate::check::check;
use crate::history::{History, HistoryError, Operation};
use crate::model::Model;
use crate::verdict::Report;

/// A history file that cannot be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    /// Reading or writing failed.
    #[error("history file: {0}")]
    Io(#[from] io::Error),
    /// An operation could not be encoded.
    #[error("operation {index}: cannot encode: {source}")]
    Encode {
        /// Its position in the history.
        index: usize,
        source: serde_json::Error,
    },
    /// A line is not an operation.
    #[error("line {line}: not an operation: {source}")]
    Decode {
        /// The 1-based line number.
        line: usize,
        source: serde_json::Error,
    },
    /// A line is an operation that cannot be in a history.
    #[error("line {line}: {source}")]
    Invalid {
        /// The 1-based line number.
        line: usize,
        source: HistoryError,
    },
}

impl<I: Serialize, O: Serialize> History<I, O> {
    /// Writes the history as JSON lines.
    pub fn write_jsonl(&self, writer: impl Write) -> Result<(), JsonlError> {
        let mut writer = BufWriter::new(writer);
        for (index, operation) in self.operations().iter().enumerate() {
            serde_json::to_writer(&mut writer, operation)
                .map_err(|source| JsonlError::Encode { index, source })?;
            writer.write_all(b"\n")?;
        }
        writer.flush()?;
        Ok(())
    }

    /// Writes the history to a JSON-lines file, replacing it.
    pub fn save_jsonl(&self, path: impl AsRef<Path>) -> Result<(), JsonlError> {
        self.write_jsonl(File::create(path)?)
    }
}

impl<I: DeserializeOwned, O: DeserializeOwned> History<I, O> {
    /// Reads a history written by [`History::write_jsonl`].
    pub fn read_jsonl(reader: impl BufRead) -> Result<Self, JsonlError> {
        let mut history = History::new();
        for (index, line) in reader.lines().enumerate() {
            let line_number = index + 1;
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let operation: Operation<I, O> =
                serde_json::from_str(&line).map_err(|source| JsonlError::Decode {
                    line: line_number,
                    source,
                })?;
            history
                .push_operation(operation)
                .map_err(|source| JsonlError::Invalid {
                    line: line_number,
                    source,
                })?;
        }
        Ok(history)
    }

    /// Reads a JSON-lines history file.
    pub fn load_jsonl(path: impl AsRef<Path>) -> Result<Self, JsonlError> {
        Self::read_jsonl(BufReader::new(File::open(path)?))
    }
}

/// Reads the history in `path` and checks it against `model`.
pub fn check_file<M>(
    model: &M,
    path: impl AsRef<Path>,
    budget: Budget,
) -> Result<Report, JsonlError>
where
    M: Model,
    M::Input: DeserializeOwned,
    M::Output: DeserializeOwned,
{
    let history = History::<M::Input, M::Output>::load_jsonl(path)?;
    Ok(check(model, &history, budget))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_ids_times_and_unknown_outcomes() {
        let mut history: History<String, u32> = History::new();
        history.push_completed(1, 0, 3, "write".into(), 7).unwrap();
        history.push_unknown(2, 1, "read".into()).unwrap();
        let mut bytes = Vec::new();
        history.write_jsonl(&mut bytes).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(
            text.lines().nth(1).unwrap().contains("\"completion\":null"),
            "{text}"
        );
        let read: History<String, u32> = History::read_jsonl(&bytes[..]).unwrap();
        assert_eq!(read, history);
    }

    #[test]
    fn errors_name_the_line() {
        let text = "{\"id\":0,\"client\":1,\"invoked_at\":0,\"input\":\"a\",\"completion\":null}\n\
                    \n\
                    {\"id\":5,\"client\":1,\"invoked_at\":0,\"input\":\"a\",\"completion\":null}\n";
        let error = History::<String, u32>::read_jsonl(text.as_bytes()).unwrap_err();
        assert!(
            matches!(error, JsonlError::Invalid { line: 3, .. }),
            "{error}"
        );
        let error = History::<String, u32>::read_jsonl("{\"id\":".as_bytes()).unwrap_err();
        assert!(
            matches!(error, JsonlError::Decode { line: 1, .. }),
            "{error}"
        );
    }
}

//! A linearizability checker for client histories recorded against a
//! ZooKeeper-compatible service.
//!
//! Callers record what their clients did ([`Recorder`], [`SharedRecorder`]
//! or [`History::push`]), then [`check()`] it against a [`Model`], such as
//! [`ZnodeModel`](models::znode::ZnodeModel), and print the [`Report`] when
//! the verdict is not [`Verdict::Linearizable`]. The check splits the
//! history by the keys its operations touch (`partition.rs`, Horn &
//! Kroening 2015), then searches each part for a linearization with Wing &
//! Gong's algorithm as improved by Lowe (`wgl.rs`). Operations whose
//! outcome is unknown may take effect at any time after their invocation,
//! or never.
//!
//! Architecture invariant: no dependency on the other workspace crates
//! (plain data in, verdict out), no I/O except [`check_file`] and the
//! JSON-lines helpers, and no clock unless a [`Budget`] has a time limit,
//! so the deterministic simulator gets the same verdict on every replay.
//!
//! ```
//! use lincheck::models::znode::{ZnodeModel, ZnodeOp, ZnodeOutput};
//! use lincheck::{check, Budget, Recorder};
//!
//! let mut recorder = Recorder::new();
//! let create = recorder.invoke(1, ZnodeOp::Create { path: "/a".into(), data: "x".into() });
//! recorder.complete(create, ZnodeOutput::Created)?;
//! let read = recorder.invoke(2, ZnodeOp::GetData { path: "/a".into() });
//! recorder.complete(read, ZnodeOutput::Data { data: "x".into(), version: 0 })?;
//! let lost = recorder.invoke(3, ZnodeOp::Delete { path: "/a".into(), version: None });
//! recorder.fail_unknown(lost)?; // a timeout: it may or may not have happened
//!
//! let report = check(&ZnodeModel::new(), recorder.history(), Budget::default());
//! assert!(report.verdict.is_linearizable(), "{report}");
//! # Ok::<(), lincheck::RecordError>(())
//! ```

mod budget;
mod check;
mod entry_list;
mod history;
mod jsonl;
mod linearized;
mod memo;
mod model;
pub mod models;
mod partition;
mod recorder;
mod verdict;
mod wgl;

pub use budget::Budget;
pub use check::check;
pub use history::{ClientId, Completion, History, HistoryError, OpId, Operation};
pub use jsonl::{JsonlError, check_file};
pub use model::Model;
pub use recorder::{RecordError, Recorder, SharedRecorder};
pub use verdict::{Report, Summary, Verdict};

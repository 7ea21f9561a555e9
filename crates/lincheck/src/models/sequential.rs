//! A direct check of sequential creates: unique names, none lost, none
//! invented, numbered in real-time order.
//!
//! A sequential create's outcome is a name the server picks (the prefix and
//! the parent's `cversion` as ten digits, `PrepRequestProcessor.
//! pRequest2TxnCreate`), so modelling it for the search would branch on
//! every name an unknown-outcome create might have got. The properties that
//! matter can be checked directly instead, in O(n log n) plus the size of
//! the reads:
//!
//! - every acknowledged create returned a distinct, well-formed name;
//! - if create `a` completed before create `b` was invoked, `a`'s number is
//!   smaller (the `cversion` only grows);
//! - a read of the parent's children (`getChildren` right after `sync`)
//!   holds every name whose create completed before the read was invoked,
//!   unless a delete of it may have happened by then, and no name whose
//!   delete completed before the read was invoked;
//! - every name a read holds was returned by a create invoked before the
//!   read completed, existed before the history, or can be put down to a
//!   distinct unknown-outcome create of that parent and prefix.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::history::{History, OpId, Operation};
use crate::models::znode::ZkError;

/// A client operation of a sequential-create workload.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SequentialOp {
    /// `create(parent + "/" + prefix, .., *_SEQUENTIAL)`.
    CreateSequential { parent: String, prefix: String },
    /// `delete(path, -1)`.
    Delete { path: String },
    /// `getChildren(parent)` right after `sync` on the same session.
    GetChildren { parent: String },
}

/// What such an operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SequentialOutput {
    /// The create succeeded; the full path the server chose.
    Created { path: String },
    /// The delete succeeded.
    Deleted,
    /// The children's names, as `getChildren` returns them.
    Children(Vec<String>),
    /// The operation failed and changed nothing.
    Error(ZkError),
}

/// A broken promise of sequential creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SequentialViolation {
    /// Two acknowledged creates returned the same path.
    DuplicateName {
        path: String,
        first: OpId,
        second: OpId,
    },
    /// An acknowledged create returned a path that is not its parent, its
    /// prefix and ten digits.
    MalformedName { op: OpId, path: String },
    /// The output does not answer the input (a `Children` for a create).
    OutputMismatch { op: OpId },
    /// `earlier` completed before `later` was invoked, yet its number is
    /// not smaller.
    OutOfOrder {
        earlier: OpId,
        earlier_path: String,
        later: OpId,
        later_path: String,
    },
    /// A read invoked after the create completed misses the node, and no
    /// delete of it was invoked before the read completed.
    AcknowledgedMissing {
        path: String,
        created_by: OpId,
        read: OpId,
    },
    /// A read invoked after an acknowledged delete completed still shows
    /// the node.
    DeletedPresent {
        path: String,
        deleted_by: OpId,
        read: OpId,
    },
    /// A read shows the name an acknowledged create returned, but the
    /// create was invoked after the read completed.
    SeenBeforeCreated {
        path: String,
        created_by: OpId,
        read: OpId,
    },
    /// Names no create can account for: not returned by any create, and
    /// more than the unknown-outcome creates could have made (or not of
    /// their prefix). `read` is `None` when the names of all reads of the
    /// parent together are too many.
    Unexplained {
        parent: String,
        names: Vec<String>,
        read: Option<OpId>,
    },
}

impl fmt::Display for SequentialViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SequentialViolation::*;
        match self {
            DuplicateName {
                path,
                first,
                second,
            } => {
                write!(f, "creates {first} and {second} both returned {path}")
            }
            MalformedName { op, path } => {
                write!(
                    f,
                    "create {op} returned {path}, not its parent, prefix and ten digits"
                )
            }
            OutputMismatch { op } => write!(f, "operation {op} has an output of another kind"),
            OutOfOrder {
                earlier,
                earlier_path,
                later,
                later_path,
            } => write!(
                f,
                "create {earlier} ({earlier_path}) completed before create {later} was invoked, \
                 yet {later} got {later_path}"
            ),
            AcknowledgedMissing {
                path,
                created_by,
                read,
            } => write!(
                f,
                "read {read} misses {path}, created by {created_by} before it and never deleted"
            ),
            DeletedPresent {
                path,
                deleted_by,
                read,
            } => {
                write!(
                    f,
                    "read {read} shows {path}, deleted by {deleted_by} before it"
                )
            }
            SeenBeforeCreated {
                path,
                created_by,
                read,
            } => write!(
                f,
                "read {read} shows {path}, which create {created_by}, invoked after the read \
                 completed, returned"
            ),
            Unexplained {
                parent,
                names,
                read,
            } => {
                let reads = read.map_or("the reads".to_owned(), |read| format!("read {read}"));
                write!(
                    f,
                    "{reads} of {parent} show names no create accounts for: {names:?}"
                )
            }
        }
    }
}

/// What the check found, and how much it looked at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SequentialReport {
    pub creates_acknowledged: usize,
    pub creates_unknown: usize,
    pub reads_checked: usize,
    pub violations: Vec<SequentialViolation>,
}

impl SequentialReport {
    /// Whether no violation was found.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

impl fmt::Display for SequentialReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} violations in {} acknowledged and {} unknown-outcome sequential creates, {} reads",
            self.violations.len(),
            self.creates_acknowledged,
            self.creates_unknown,
            self.reads_checked
        )?;
        for violation in &self.violations {
            write!(f, "\n  {violation}")?;
        }
        Ok(())
    }
}

type SequentialOperation = Operation<SequentialOp, SequentialOutput>;

/// An acknowledged create and the number in its name.
#[derive(Debug)]
struct Acknowledged<'h> {
    operation: &'h SequentialOperation,
    path: &'h str,
    sequence: u64,
}

/// Checks the sequential creates of `history`; `initial_paths` are the
/// full paths of children that existed before it.
pub fn check_sequential_creates(
    history: &History<SequentialOp, SequentialOutput>,
    initial_paths: &[String],
) -> SequentialReport {
    let mut report = SequentialReport::default();
    let initial: BTreeSet<&str> = initial_paths.iter().map(String::as_str).collect();
    // Per parent: acknowledged creates, unknown-outcome creates.
    let mut acknowledged: BTreeMap<&str, Vec<Acknowledged<'_>>> = BTreeMap::new();
    let mut unknown: BTreeMap<&str, Vec<(&SequentialOperation, &str)>> = BTreeMap::new();
    let mut deletes: BTreeMap<&str, Vec<&SequentialOperation>> = BTreeMap::new();
    let mut reads: Vec<(&SequentialOperation, &str, &[String])> = Vec::new();
    for operation in history.operations() {
        match (&operation.input, operation.output()) {
            (SequentialOp::CreateSequential { parent, prefix }, None) => {
                unknown.entry(parent).or_default().push((operation, prefix));
            }
            (SequentialOp::CreateSequential { parent, prefix }, Some(output)) => match output {
                SequentialOutput::Created { path } => match sequence_number(parent, prefix, path) {
                    Some(sequence) => acknowledged.entry(parent).or_default().push(Acknowledged {
                        operation,
                        path,
                        sequence,
                    }),
                    None => report.violations.push(SequentialViolation::MalformedName {
                        op: operation.id,
                        path: path.clone(),
                    }),
                },
                SequentialOutput::Error(_) => {}
                _ => report
                    .violations
                    .push(SequentialViolation::OutputMismatch { op: operation.id }),
            },
            (SequentialOp::Delete { path }, output) => match output {
                None | Some(SequentialOutput::Deleted | SequentialOutput::Error(_)) => {
                    deletes.entry(path).or_default().push(operation);
                }
                Some(_) => report
                    .violations
                    .push(SequentialViolation::OutputMismatch { op: operation.id }),
            },
            (SequentialOp::GetChildren { parent }, output) => match output {
                Some(SequentialOutput::Children(children)) => {
                    reads.push((operation, parent, children))
                }
                None | Some(SequentialOutput::Error(_)) => {}
                Some(_) => report
                    .violations
                    .push(SequentialViolation::OutputMismatch { op: operation.id }),
            },
        }
    }
    report.creates_acknowledged = acknowledged.values().map(Vec::len).sum();
    report.creates_unknown = unknown.values().map(Vec::len).sum();
    report.reads_checked = reads.len();

    let creator: BTreeMap<&str, &SequentialOperation> = acknowledged
        .values()
        .flatten()
        .map(|create| (create.path, create.operation))
        .collect();
    for creates in acknowledged.values() {
        check_unique(creates, &mut report.violations);
        check_order(creates, &mut report.violations);
    }
    let mut unexplained_by_parent: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut parents_reported: BTreeSet<&str> = BTreeSet::new();
    for &(read, parent, children) in &reads {
        let seen: BTreeSet<String> = children
            .iter()
            .map(|name| child_path(parent, name))
            .collect();
        let creates = acknowledged.get(parent).map_or(&[][..], Vec::as_slice);
        check_read_has_acknowledged(read, creates, &seen, &deletes, &mut report.violations);
        let mut unexplained = Vec::new();
        for path in &seen {
            if initial.contains(path.as_str()) {
                continue;
            }
            if let Some(&create) = creator.get(path.as_str()) {
                if create.invoked_at > read.completed_at().unwrap_or(u64::MAX) {
                    report
                        .violations
                        .push(SequentialViolation::SeenBeforeCreated {
                            path: path.clone(),
                            created_by: create.id,
                            read: read.id,
                        });
                }
            } else {
                unexplained.push(path.clone());
            }
            let deleted_before = deletes
                .get(path.as_str())
                .into_iter()
                .flatten()
                .find(|delete| {
                    delete.output() == Some(&SequentialOutput::Deleted)
                        && delete.completed_at().is_some_and(|at| at < read.invoked_at)
                });
            if let Some(delete) = deleted_before {
                report.violations.push(SequentialViolation::DeletedPresent {
                    path: path.clone(),
                    deleted_by: delete.id,
                    read: read.id,
                });
            }
        }
        let candidates: Vec<&str> = unknown
            .get(parent)
            .into_iter()
            .flatten()
            .filter(|(create, _)| create.invoked_at <= read.completed_at().unwrap_or(u64::MAX))
            .map(|(_, prefix)| *prefix)
            .collect();
        if !explainable(parent, &unexplained, &candidates) {
            parents_reported.insert(parent);
            report.violations.push(SequentialViolation::Unexplained {
                parent: parent.to_owned(),
                names: unexplained.clone(),
                read: Some(read.id),
            });
        }
        unexplained_by_parent
            .entry(parent)
            .or_default()
            .extend(unexplained);
    }
    // Each unknown-outcome create makes one name at most, over all reads.
    for (parent, names) in unexplained_by_parent {
        if parents_reported.contains(parent) {
            continue;
        }
        let names: Vec<String> = names.into_iter().collect();
        let prefixes: Vec<&str> = unknown
            .get(parent)
            .into_iter()
            .flatten()
            .map(|(_, prefix)| *prefix)
            .collect();
        if !explainable(parent, &names, &prefixes) {
            report.violations.push(SequentialViolation::Unexplained {
                parent: parent.to_owned(),
                names,
                read: None,
            });
        }
    }
    report
}

/// Acknowledged creates must return distinct paths.
fn check_unique(creates: &[Acknowledged<'_>], violations: &mut Vec<SequentialViolation>) {
    let mut first_of: BTreeMap<&str, OpId> = BTreeMap::new();
    for create in creates {
        if let Some(&first) = first_of.get(create.path) {
            violations.push(SequentialViolation::DuplicateName {
                path: create.path.to_owned(),
                first,
                second: create.operation.id,
            });
        } else {
            first_of.insert(create.path, create.operation.id);
        }
    }
}

/// A create that completed before another was invoked has the smaller
/// number: a sweep over invocations, keeping the largest number among the
/// creates completed before.
fn check_order(creates: &[Acknowledged<'_>], violations: &mut Vec<SequentialViolation>) {
    let completed_at =
        |create: &Acknowledged<'_>| create.operation.completed_at().unwrap_or(u64::MAX);
    let mut by_completion: Vec<&Acknowledged<'_>> = creates.iter().collect();
    by_completion.sort_by_key(|create| completed_at(create));
    let mut by_invocation: Vec<&Acknowledged<'_>> = creates.iter().collect();
    by_invocation.sort_by_key(|create| create.operation.invoked_at);
    let mut completed = by_completion.iter().peekable();
    let mut largest_before: Option<&Acknowledged<'_>> = None;
    for later in by_invocation {
        while let Some(earlier) =
            completed.next_if(|earlier| completed_at(earlier) < later.operation.invoked_at)
        {
            if largest_before.is_none_or(|largest| earlier.sequence > largest.sequence) {
                largest_before = Some(earlier);
            }
        }
        if let Some(earlier) = largest_before.filter(|earlier| earlier.sequence >= later.sequence) {
            violations.push(SequentialViolation::OutOfOrder {
                earlier: earlier.operation.id,
                earlier_path: earlier.path.to_owned(),
                later: later.operation.id,
                later_path: later.path.to_owned(),
            });
        }
    }
}

/// A read invoked after a create completed must show its node, unless a
/// delete of it that did not fail was invoked before the read completed.
fn check_read_has_acknowledged(
    read: &SequentialOperation,
    creates: &[Acknowledged<'_>],
    seen: &BTreeSet<String>,
    deletes: &BTreeMap<&str, Vec<&SequentialOperation>>,
    violations: &mut Vec<SequentialViolation>,
) {
    let read_completed_at = read.completed_at().unwrap_or(u64::MAX);
    for create in creates {
        let completed_before = create
            .operation
            .completed_at()
            .is_some_and(|at| at < read.invoked_at);
        if !completed_before || seen.contains(create.path) {
            continue;
        }
        let maybe_deleted = deletes
            .get(create.path)
            .into_iter()
            .flatten()
            .any(|delete| {
                !matches!(delete.output(), Some(SequentialOutput::Error(_)))
                    && delete.invoked_at <= read_completed_at
            });
        if !maybe_deleted {
            violations.push(SequentialViolation::AcknowledgedMissing {
                path: create.path.to_owned(),
                created_by: create.operation.id,
                read: read.id,
            });
        }
    }
}

/// Whether distinct unknown-outcome creates with these prefixes can have
/// made these paths. A path fits one prefix only (its name without the ten
/// digits), so taking any fitting create for each path is exact.
fn explainable(parent: &str, paths: &[String], prefixes: &[&str]) -> bool {
    let mut creates_left: BTreeMap<&str, usize> = BTreeMap::new();
    for prefix in prefixes {
        *creates_left.entry(prefix).or_default() += 1;
    }
    paths.iter().all(|path| {
        creates_left.iter_mut().any(|(prefix, left)| {
            let fits = *left > 0 && sequence_number(parent, prefix, path).is_some();
            if fits {
                *left -= 1;
            }
            fits
        })
    })
}

/// The number in `path` if it is `parent`'s child named `prefix` and ten
/// digits (ZooKeeper's `%010d`).
fn sequence_number(parent: &str, prefix: &str, path: &str) -> Option<u64> {
    let name = path.strip_prefix(parent)?;
    let name = if parent.ends_with('/') {
        name
    } else {
        name.strip_prefix('/')?
    };
    let digits = name.strip_prefix(prefix)?;
    if digits.len() != 10 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The full path of `parent`'s child `name`.
fn child_path(parent: &str, name: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{name}")
    } else {
        format!("{parent}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_need_parent_prefix_and_ten_digits() {
        assert_eq!(sequence_number("/q", "n-", "/q/n-0000000042"), Some(42));
        assert_eq!(sequence_number("/", "n-", "/n-0000000001"), Some(1));
        assert_eq!(sequence_number("/q", "n-", "/q/n-42"), None);
        assert_eq!(sequence_number("/q", "n-", "/r/n-0000000042"), None);
        assert_eq!(sequence_number("/q", "n-", "/q/m-0000000042"), None);
        assert_eq!(sequence_number("/q", "n-", "/qq/n-0000000042"), None);
    }

    #[test]
    fn explainable_matches_each_path_to_its_own_create() {
        let paths = ["/q/a-0000000001".to_owned(), "/q/b-0000000002".to_owned()];
        assert!(explainable("/q", &paths, &["b-", "a-"]));
        assert!(!explainable("/q", &paths, &["a-", "a-"]));
        assert!(!explainable("/q", &paths, &["a-"]));
    }
}

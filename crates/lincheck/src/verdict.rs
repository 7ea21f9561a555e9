//! What a check found, in a form callers can print in a failure message
//! and count in a report.
//!
//! A verdict holds text, not the caller's types, so one type serves every
//! model and survives being logged or compared.

use std::fmt;

/// Whether a history is linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every partition has a linearization.
    Linearizable,
    /// This partition has none.
    NotLinearizable {
        /// The partition's keys (their `Debug` text).
        keys: Vec<String>,
        /// Every operation of the partition, by id (their `Display` text:
        /// id, client, interval, input, output).
        operations: Vec<String>,
        /// The longest prefix of a linearization the search found, in
        /// linearization order.
        longest_prefix: Vec<String>,
        /// The model's state after that prefix (`Debug` text).
        state_after_prefix: String,
        /// The completed operations not in that prefix, by invocation. The
        /// culprit is usually among the first: the search found no way to
        /// linearize those the prefix allows next.
        not_linearized: Vec<String>,
    },
    /// The check gave up before deciding; no violation was found.
    Unknown {
        /// Which budget ran out, where.
        why: String,
    },
}

impl Verdict {
    /// Whether the history was shown linearizable.
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }

    /// Whether the history was shown not linearizable.
    pub fn is_violation(&self) -> bool {
        matches!(self, Verdict::NotLinearizable { .. })
    }
}

/// At most this many operations of each list are printed.
const PRINTED_OPERATIONS_MAX: usize = 40;

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Linearizable => write!(f, "linearizable"),
            Verdict::Unknown { why } => write!(f, "unknown: {why}"),
            Verdict::NotLinearizable {
                keys,
                operations,
                longest_prefix,
                state_after_prefix,
                not_linearized,
            } => {
                writeln!(
                    f,
                    "not linearizable: the partition of keys [{}] ({} operations) has no \
                     linearization",
                    keys.join(", "),
                    operations.len()
                )?;
                writeln!(
                    f,
                    "longest linearizable prefix: {} operations; it ends with:",
                    longest_prefix.len()
                )?;
                let skipped = longest_prefix.len().saturating_sub(PRINTED_OPERATIONS_MAX);
                if skipped > 0 {
                    writeln!(f, "  ... {skipped} earlier operations")?;
                }
                for operation in &longest_prefix[skipped..] {
                    writeln!(f, "  {operation}")?;
                }
                writeln!(f, "model state after it: {state_after_prefix}")?;
                writeln!(
                    f,
                    "completed operations not in it ({}), by invocation:",
                    not_linearized.len()
                )?;
                for operation in not_linearized.iter().take(PRINTED_OPERATIONS_MAX) {
                    writeln!(f, "  {operation}")?;
                }
                let more = not_linearized.len().saturating_sub(PRINTED_OPERATIONS_MAX);
                if more > 0 {
                    writeln!(f, "  ... {more} more")?;
                }
                write!(
                    f,
                    "(all {} operations of the partition are in the verdict)",
                    operations.len()
                )
            }
        }
    }
}

/// Counts for the callers' reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Operations in the history.
    pub operations: usize,
    /// Operations searched (unknown-outcome reads are not).
    pub operations_checked: usize,
    /// Operations that touch no key, so were not checked.
    pub operations_without_keys: usize,
    /// Read-only operations with an unknown outcome, left out of the search
    /// because they constrain nothing.
    pub unknown_reads_skipped: usize,
    /// Partitions in the history.
    pub partitions: usize,
    /// Partitions searched (the check stops at the first violation).
    pub partitions_checked: usize,
    /// Operations in the largest partition searched.
    pub largest_partition: usize,
    /// Configurations (linearized set, state) the searches reached, over
    /// all partitions.
    pub states_explored: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} operations checked in {} of {} partitions (largest {}), {} states explored; \
             {} without keys and {} unknown-outcome reads skipped",
            self.operations_checked,
            self.operations,
            self.partitions_checked,
            self.partitions,
            self.largest_partition,
            self.states_explored,
            self.operations_without_keys,
            self.unknown_reads_skipped
        )
    }
}

/// A verdict and the work behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub verdict: Verdict,
    pub summary: Summary,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n[{}]", self.verdict, self.summary)
    }
}

//! The entry point: partition a history, search each partition, and turn
//! the outcome into a [`Report`].
//!
//! Partitions are searched in the order of their first operation and the
//! check stops at the first violation, so the same history always gives the
//! same report (the simulator relies on that to replay a seed). A partition
//! that runs out of states makes the verdict [`Verdict::Unknown`] unless a
//! later one shows a violation; running out of time ends the check.
//!
//! A partition with unknown-outcome operations is searched first with at
//! most one of them in a row and a small share of the budget, then, if that
//! search failed because of the limit or ran out of its share, without the
//! limit and with the rest of the budget (see `wgl.rs`).

use crate::budget::Budget;
use crate::history::{History, Operation};
use crate::model::Model;
use crate::partition::{Partition, partition};
use crate::verdict::{Report, Summary, Verdict};
use crate::wgl::{
    self, Exhausted, LinearizedStep, SearchInput, SearchLimits, SearchOutcome, SearchReport,
};

/// Checks `history` against `model`.
pub fn check<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    budget: Budget,
) -> Report {
    let limits = SearchLimits {
        max_states: budget.max_states_per_partition,
        deadline: budget.deadline(),
        max_unknown_run: None,
    };
    let partitioning = partition(model, history);
    let mut summary = Summary {
        operations: history.len(),
        operations_without_keys: partitioning.without_keys.len(),
        partitions: partitioning.partitions.len(),
        ..Summary::default()
    };
    let mut gave_up: Vec<String> = Vec::new();
    for part in &partitioning.partitions {
        let input = search_input(model, history, part, &mut summary);
        summary.partitions_checked += 1;
        summary.operations_checked += input.operations.len();
        summary.largest_partition = summary.largest_partition.max(input.operations.len());
        let report = search_partition(&input, limits);
        summary.states_explored += report.states_explored;
        match report.outcome {
            SearchOutcome::Linearizable => {}
            SearchOutcome::NotLinearizable { longest_prefix } => {
                let verdict = violation(history, part, &input, &longest_prefix);
                return Report { verdict, summary };
            }
            SearchOutcome::Exhausted(exhausted) => {
                let keys = debug_list(&part.keys);
                let ops = part.operations.len();
                gave_up.push(match exhausted {
                    Exhausted::States => format!(
                        "the partition of keys [{keys}] ({ops} operations) needed more than {} \
                         states",
                        limits.max_states
                    ),
                    Exhausted::Time => format!(
                        "the time limit of {:?} ran out in the partition of keys [{keys}] \
                         ({ops} operations)",
                        budget.time_limit.unwrap_or_default()
                    ),
                });
                if exhausted == Exhausted::Time {
                    break;
                }
            }
        }
    }
    let verdict = if gave_up.is_empty() {
        Verdict::Linearizable
    } else {
        Verdict::Unknown {
            why: gave_up.join("; "),
        }
    };
    Report { verdict, summary }
}

/// States per operation the first, restricted search of a partition may
/// use before it gives way to the exact one, on top of
/// [`RESTRICTED_STATES_MIN`]. A correct history needs one to a few per
/// operation; a restricted search that needs many more
/// is likely spending them proving that the restriction hides the
/// linearization, which the exact search then finds quickly.
const RESTRICTED_STATES_PER_OPERATION: u64 = 16;

/// See [`RESTRICTED_STATES_PER_OPERATION`].
const RESTRICTED_STATES_MIN: u64 = 10_000;

/// Searches one partition: with at most one unknown-outcome operation in a
/// row and a small share of the budget, then, if that failed because of the
/// limit or the share, without limit (see `wgl.rs`).
fn search_partition<M: Model>(input: &SearchInput<'_, M>, limits: SearchLimits) -> SearchReport {
    let has_unknown = input
        .operations
        .iter()
        .any(|operation| operation.completion.is_none());
    if !has_unknown {
        return wgl::search(input, limits);
    }
    let operations = u64::try_from(input.operations.len()).unwrap_or(u64::MAX);
    let share = operations
        .saturating_mul(RESTRICTED_STATES_PER_OPERATION)
        .saturating_add(RESTRICTED_STATES_MIN);
    let restricted_limits = SearchLimits {
        max_states: limits.max_states.min(share),
        max_unknown_run: Some(1),
        ..limits
    };
    let first = wgl::search(input, restricted_limits);
    let settled = match first.outcome {
        SearchOutcome::Linearizable | SearchOutcome::Exhausted(Exhausted::Time) => true,
        SearchOutcome::NotLinearizable { .. } => !first.restricted,
        SearchOutcome::Exhausted(Exhausted::States) => first.states_explored >= limits.max_states,
    };
    if settled {
        return first;
    }
    let max_states = limits.max_states.saturating_sub(first.states_explored);
    let second = wgl::search(
        input,
        SearchLimits {
            max_states,
            max_unknown_run: None,
            ..limits
        },
    );
    SearchReport {
        states_explored: first.states_explored + second.states_explored,
        ..second
    }
}

/// The search input for one partition, without unknown-outcome reads.
fn search_input<'a, M: Model>(
    model: &'a M,
    history: &'a History<M::Input, M::Output>,
    part: &Partition<M::Key>,
    summary: &mut Summary,
) -> SearchInput<'a, M> {
    let mut operations = Vec::with_capacity(part.operations.len());
    let mut key_ids = Vec::with_capacity(part.operations.len());
    for (&id, ids) in part.operations.iter().zip(&part.key_ids) {
        let Some(operation) = history.get(id) else {
            continue;
        };
        if operation.completion.is_none() && model.is_read_only(&operation.input) {
            summary.unknown_reads_skipped += 1;
            continue;
        }
        operations.push(operation);
        key_ids.push(ids.clone());
    }
    SearchInput {
        model,
        operations,
        key_ids,
        key_count: part.keys.len(),
        init: model.init(&part.keys),
    }
}

/// The verdict for a partition with no linearization.
fn violation<M: Model>(
    history: &History<M::Input, M::Output>,
    part: &Partition<M::Key>,
    input: &SearchInput<'_, M>,
    longest_prefix: &[LinearizedStep],
) -> Verdict {
    let operations = part
        .operations
        .iter()
        .filter_map(|&id| history.get(id))
        .map(|operation| operation.to_string())
        .collect();
    let mut in_prefix = vec![false; input.operations.len()];
    let prefix = longest_prefix
        .iter()
        .filter_map(|step| {
            let operation = input.operations.get(step.op)?;
            if let Some(flag) = in_prefix.get_mut(step.op) {
                *flag = true;
            }
            Some(match operation.completion {
                Some(_) => operation.to_string(),
                None => format!("{operation} (took effect here)"),
            })
        })
        .collect();
    let state_after_prefix = match wgl::replay(input, longest_prefix) {
        Some(state) => format!("{state:?}"),
        None => "(the model gave a different result on replay: is `step` deterministic?)".into(),
    };
    let mut left: Vec<&Operation<M::Input, M::Output>> = input
        .operations
        .iter()
        .zip(&in_prefix)
        .filter(|(operation, in_prefix)| !**in_prefix && operation.completion.is_some())
        .map(|(operation, _)| *operation)
        .collect();
    left.sort_by_key(|operation| (operation.invoked_at, operation.id));
    Verdict::NotLinearizable {
        keys: part.keys.iter().map(|key| format!("{key:?}")).collect(),
        operations,
        longest_prefix: prefix,
        state_after_prefix,
        not_linearized: left.iter().map(|operation| operation.to_string()).collect(),
    }
}

fn debug_list<T: std::fmt::Debug>(items: &[T]) -> String {
    items
        .iter()
        .map(|item| format!("{item:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

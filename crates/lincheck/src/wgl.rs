//! The search for a linearization of one partition: Wing & Gong's
//! algorithm (1993, "Testing and verifying concurrent objects") with Lowe's
//! improvements (2017, "Testing for linearizability"), as Porcupine and
//! Knossos implement it.
//!
//! - Just-in-time linearization: only an operation whose call comes before
//!   the first pending return may be linearized next; reaching that return
//!   means backtracking (see `entry_list.rs`).
//! - Memoization: a (set of linearized operations, model state) pair that
//!   was reached before leads nowhere new and is skipped (Lowe, section 4).
//!   The set is keyed compactly (see `linearized.rs`), and a configuration
//!   that only took more unknown-outcome operations than one reached
//!   before is skipped too (see `memo.rs`).
//! - The search is a loop over an explicit stack of frames, so a history of
//!   any length cannot overflow the thread's stack.
//! - A [`Budget`](crate::Budget) bounds the states memoized and the time.
//!
//! Unknown-outcome operations have a call and no return. The history is
//! linearizable once every completed operation is linearized: an unknown
//! operation left over never took effect (or took effect after everything
//! observed, which nobody can tell apart). They are tried after the
//! completed candidates at each point, and only those connected through
//! shared keys to an operation that may be linearized next. That is
//! complete because operations on disjoint keys commute (the [`Model`]
//! contract): in any linearization an unknown operation can be moved later
//! until the next operation sharing one of its keys, or dropped at the end.
//! It keeps a timed-out write on one key from being tried at every step of
//! a partition that many `multi`s have merged.
//!
//! Unknown-outcome operations are still what makes a search expensive: each
//! one that never took effect stays a candidate to the end, and k of them
//! can be taken in 2^k combinations at every point where the search is
//! stuck. Two things keep that in check. The memo skips a configuration
//! that took a superset of the unknown-outcome operations of one reached
//! before (see `memo.rs`). And the caller (`check.rs`) first searches with
//! at most one unknown-outcome operation in a row between completed ones
//! (`max_unknown_run`), which finds a linearization of most correct
//! histories at a small cost, and searches again without the limit only if
//! that one failed after the limit cut a candidate off
//! ([`SearchReport::restricted`]) or ran out of its share of the budget.

use std::time::Instant;

use crate::entry_list::{EntryKind, EntryList, HEAD};
use crate::history::Operation;
use crate::linearized::LinearizedSet;
use crate::memo::Memo;
use crate::model::Model;

/// One partition, ready to search.
#[derive(Debug)]
pub(crate) struct SearchInput<'a, M: Model> {
    pub(crate) model: &'a M,
    /// Its operations; unknown-outcome reads already left out.
    pub(crate) operations: Vec<&'a Operation<M::Input, M::Output>>,
    /// The partition-local ids of each operation's keys.
    pub(crate) key_ids: Vec<Vec<usize>>,
    /// How many distinct keys the partition has.
    pub(crate) key_count: usize,
    /// The model's state before the history, for these keys.
    pub(crate) init: M::State,
}

/// The limits of one search.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SearchLimits {
    pub(crate) max_states: u64,
    pub(crate) deadline: Option<Instant>,
    /// At most this many unknown-outcome operations in a row, with no
    /// completed one between them; `None` for no limit (an exact search).
    pub(crate) max_unknown_run: Option<usize>,
}

/// One operation of a linearization, with the choice made for it: for an
/// unknown-outcome operation, the index into [`Model::step_unknown`]'s
/// states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LinearizedStep {
    pub(crate) op: usize,
    pub(crate) alternative: usize,
}

/// Why a search gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exhausted {
    States,
    Time,
}

/// What a search found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SearchOutcome {
    Linearizable,
    /// No linearization exists; the longest prefix of one that was found.
    NotLinearizable {
        longest_prefix: Vec<LinearizedStep>,
    },
    Exhausted(Exhausted),
}

/// A search's outcome and how many states it memoized.
#[derive(Debug)]
pub(crate) struct SearchReport {
    pub(crate) outcome: SearchOutcome,
    pub(crate) states_explored: u64,
    /// Whether `max_unknown_run` kept the search from trying a candidate, so
    /// that "not linearizable" is only true of the restricted search.
    pub(crate) restricted: bool,
}

/// Where the search is among the candidates for the next operation.
#[derive(Clone, Copy, Debug)]
enum Cursor {
    /// At this slot of the entry list (a call of a completed operation, or
    /// the first return).
    Completed(usize),
    /// At this position of the unknown-outcome candidates.
    Unknown(usize),
}

/// A linearized operation, and what to restore and try next when the
/// search backtracks over it.
#[derive(Debug)]
struct Frame<S> {
    step: LinearizedStep,
    cursor: Cursor,
    state_before: S,
    /// What [`LinearizedSet::remove`] needs to undo the step.
    saved_prefix: u32,
    unknown_run_before: usize,
}

/// Checks the clock only every this many iterations.
const ITERATIONS_PER_CLOCK_READ: u64 = 4096;

/// Searches for a linearization of one partition.
pub(crate) fn search<M: Model>(input: &SearchInput<'_, M>, limits: SearchLimits) -> SearchReport {
    let mut search = Search::new(input, limits);
    let outcome = search.run();
    SearchReport {
        outcome,
        states_explored: search.states_explored,
        restricted: search.restricted,
    }
}

/// The state after linearizing `prefix` from `init`, replaying the choices
/// the search made; `None` if the model disagrees with itself (a
/// nondeterministic `step`).
pub(crate) fn replay<M: Model>(
    input: &SearchInput<'_, M>,
    prefix: &[LinearizedStep],
) -> Option<M::State> {
    let mut state = input.init.clone();
    for step in prefix {
        let operation = input.operations.get(step.op)?;
        state = match operation.output() {
            Some(output) => input.model.step(&state, &operation.input, output)?,
            None => input
                .model
                .step_unknown(&state, &operation.input)
                .into_iter()
                .nth(step.alternative)?,
        };
    }
    Some(state)
}

struct Search<'i, 'a, M: Model> {
    input: &'i SearchInput<'a, M>,
    limits: SearchLimits,
    list: EntryList,
    /// Unknown-outcome operations, by invocation time.
    unknown_ops: Vec<usize>,
    /// The unknown-outcome operations that may be linearized at the current
    /// point (recomputed whenever the search reaches the first return).
    unknown_candidates: Vec<usize>,
    linearized: LinearizedSet,
    state: M::State,
    /// The unknown-outcome operations linearized since the last completed
    /// one.
    unknown_run: usize,
    /// Whether the limit on `unknown_run` ever cut off a candidate.
    restricted: bool,
    memo: Memo<M::State>,
    frames: Vec<Frame<M::State>>,
    completed_left: usize,
    longest_prefix: Vec<LinearizedStep>,
    /// How many frames at the bottom of the stack agree with
    /// `longest_prefix`, so extending it copies only what changed.
    longest_prefix_shared: usize,
    states_explored: u64,
    iterations: u64,
}

impl<M: Model> std::fmt::Debug for Search<'_, '_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Search")
            .field("depth", &self.frames.len())
            .field("states_explored", &self.states_explored)
            .finish_non_exhaustive()
    }
}

impl<'i, 'a, M: Model> Search<'i, 'a, M> {
    fn new(input: &'i SearchInput<'a, M>, limits: SearchLimits) -> Self {
        let operations = &input.operations;
        let completed = operations.iter().enumerate().filter_map(|(op, operation)| {
            operation
                .completed_at()
                .map(|completed_at| (op, operation.invoked_at, completed_at))
        });
        let list = EntryList::new(operations.len(), completed);
        let mut unknown_ops: Vec<usize> = (0..operations.len())
            .filter(|&op| operations[op].completion.is_none())
            .collect();
        unknown_ops.sort_by_key(|&op| (operations[op].invoked_at, op));
        let completed_left = operations.len() - unknown_ops.len();
        let invoked_at: Vec<u64> = operations
            .iter()
            .map(|operation| operation.invoked_at)
            .collect();
        let completed: Vec<bool> = operations
            .iter()
            .map(|operation| operation.completion.is_some())
            .collect();
        let linearized = LinearizedSet::new(&invoked_at, &completed);
        let mut memo = Memo::new();
        memo.insert(linearized.completed_key(), input.init.clone(), &[], false);
        Self {
            input,
            limits,
            list,
            unknown_ops,
            unknown_candidates: Vec::new(),
            linearized,
            state: input.init.clone(),
            unknown_run: 0,
            restricted: false,
            memo,
            frames: Vec::new(),
            completed_left,
            longest_prefix: Vec::new(),
            longest_prefix_shared: 0,
            states_explored: 1,
            iterations: 0,
        }
    }

    fn run(&mut self) -> SearchOutcome {
        let mut cursor = Cursor::Completed(self.list.next(HEAD));
        // For an unknown-outcome candidate, the first of its successor
        // states not tried yet.
        let mut alternative = 0;
        loop {
            if self.completed_left == 0 {
                return SearchOutcome::Linearizable;
            }
            if let Some(exhausted) = self.over_budget() {
                return SearchOutcome::Exhausted(exhausted);
            }
            let linearized_next = match cursor {
                Cursor::Completed(slot) => {
                    let entry = self.list.entry(slot);
                    if entry.kind == EntryKind::Return {
                        // Every completed candidate was tried: the unknown
                        // ones may still make room for one.
                        self.collect_unknown_candidates(slot);
                        cursor = Cursor::Unknown(0);
                        alternative = 0;
                        continue;
                    }
                    let linearized = self.try_completed(entry.op, cursor);
                    if !linearized {
                        cursor = Cursor::Completed(self.list.next(slot));
                    }
                    linearized
                }
                Cursor::Unknown(position) => {
                    let Some(&op) = self.unknown_candidates.get(position) else {
                        match self.backtrack() {
                            Some((resumed, next_alternative)) => {
                                cursor = resumed;
                                alternative = next_alternative;
                                continue;
                            }
                            None => {
                                return SearchOutcome::NotLinearizable {
                                    longest_prefix: std::mem::take(&mut self.longest_prefix),
                                };
                            }
                        }
                    };
                    let linearized = self.try_unknown(op, cursor, alternative);
                    if !linearized {
                        cursor = Cursor::Unknown(position + 1);
                        alternative = 0;
                    }
                    linearized
                }
            };
            if linearized_next {
                cursor = Cursor::Completed(self.list.next(HEAD));
                alternative = 0;
            }
        }
    }

    /// Tries to linearize completed operation `op` next.
    fn try_completed(&mut self, op: usize, cursor: Cursor) -> bool {
        let operation = self.input.operations[op];
        let Some(output) = operation.output() else {
            return false;
        };
        match self.input.model.step(&self.state, &operation.input, output) {
            Some(next_state) => {
                self.push(LinearizedStep { op, alternative: 0 }, cursor, next_state)
            }
            None => false,
        }
    }

    /// Tries to linearize unknown-outcome operation `op` next, with its
    /// successor states from `first_alternative` on.
    fn try_unknown(&mut self, op: usize, cursor: Cursor, first_alternative: usize) -> bool {
        let operation = self.input.operations[op];
        let successors = self.input.model.step_unknown(&self.state, &operation.input);
        for (alternative, next_state) in successors.into_iter().enumerate().skip(first_alternative)
        {
            if self.push(LinearizedStep { op, alternative }, cursor, next_state) {
                return true;
            }
        }
        false
    }

    /// Linearizes `step` reaching `next_state`, unless that pair was
    /// memoized already.
    fn push(&mut self, step: LinearizedStep, cursor: Cursor, next_state: M::State) -> bool {
        let completed = self.input.operations[step.op].completion.is_some();
        let unknown_run = if completed { 0 } else { self.unknown_run + 1 };
        let saved_prefix = self.linearized.insert(step.op);
        let reached = self.memo.insert(
            self.linearized.completed_key(),
            next_state,
            self.linearized.unknown_members(),
            self.at_unknown_run_limit(unknown_run),
        );
        let Some(next_state) = reached else {
            self.linearized.remove(step.op, saved_prefix);
            return false;
        };
        let state_before = std::mem::replace(&mut self.state, next_state);
        self.states_explored += 1;
        let unknown_run_before = std::mem::replace(&mut self.unknown_run, unknown_run);
        self.frames.push(Frame {
            step,
            cursor,
            state_before,
            saved_prefix,
            unknown_run_before,
        });
        if completed {
            self.list.lift(step.op);
            self.completed_left -= 1;
        }
        self.extend_longest_prefix();
        true
    }

    /// Undoes the last linearization; returns where to resume and the first
    /// alternative to try there, or `None` if nothing is left to undo.
    fn backtrack(&mut self) -> Option<(Cursor, usize)> {
        let frame = self.frames.pop()?;
        self.longest_prefix_shared = self.longest_prefix_shared.min(self.frames.len());
        let op = frame.step.op;
        self.linearized.remove(op, frame.saved_prefix);
        self.state = frame.state_before;
        self.unknown_run = frame.unknown_run_before;
        if self.input.operations[op].completion.is_some() {
            self.list.unlift(op);
            self.completed_left += 1;
            // A completed operation has one successor: move past it.
            let Cursor::Completed(slot) = frame.cursor else {
                return Some((frame.cursor, frame.step.alternative + 1));
            };
            return Some((Cursor::Completed(self.list.next(slot)), 0));
        }
        // The list and the linearized set are as they were when this frame
        // was pushed, so the candidates come out the same.
        self.collect_unknown_candidates(self.first_return());
        Some((frame.cursor, frame.step.alternative + 1))
    }

    /// The slot of the first return in the list (the tail sentinel is one).
    fn first_return(&self) -> usize {
        let mut slot = self.list.next(HEAD);
        while self.list.entry(slot).kind != EntryKind::Return {
            slot = self.list.next(slot);
        }
        slot
    }

    /// The unknown-outcome operations that may be linearized before the
    /// return in `first_return`: invoked by then, not linearized yet, and
    /// connected through shared keys to a completed operation that may be
    /// linearized next (see the module doc).
    fn collect_unknown_candidates(&mut self, first_return: usize) {
        self.unknown_candidates.clear();
        let deadline = self.list.entry(first_return).time;
        let operations = &self.input.operations;
        let key_ids = &self.input.key_ids;
        let eligible: Vec<usize> = self
            .unknown_ops
            .iter()
            .copied()
            .take_while(|&op| operations[op].invoked_at <= deadline)
            .filter(|&op| !self.linearized.contains(op))
            .collect();
        if eligible.is_empty() {
            return;
        }
        let mut relevant_keys = vec![false; self.input.key_count];
        let mut slot = self.list.next(HEAD);
        while slot != first_return {
            for &key in &key_ids[self.list.entry(slot).op] {
                relevant_keys[key] = true;
            }
            slot = self.list.next(slot);
        }
        // Round r adds the operations that share a key with the window or
        // with an operation of an earlier round: those that can start a
        // chain of r unknown-outcome operations ending at the window, which
        // is as long as the run limit allows.
        let rounds = match self.limits.max_unknown_run {
            Some(max) => max.saturating_sub(self.unknown_run),
            None => usize::MAX,
        };
        let touches_relevant =
            |op: usize, relevant: &[bool]| key_ids[op].iter().any(|&key| relevant[key]);
        let mut selected = vec![false; eligible.len()];
        for _ in 0..rounds {
            let added: Vec<usize> = (0..eligible.len())
                .filter(|&index| {
                    !selected[index] && touches_relevant(eligible[index], &relevant_keys)
                })
                .collect();
            if added.is_empty() {
                break;
            }
            for index in added {
                selected[index] = true;
                for &key in &key_ids[eligible[index]] {
                    relevant_keys[key] = true;
                }
            }
        }
        let cut_off = (0..eligible.len())
            .any(|index| !selected[index] && touches_relevant(eligible[index], &relevant_keys));
        if cut_off {
            self.restricted = true;
        }
        self.unknown_candidates = eligible
            .iter()
            .zip(&selected)
            .filter(|(_, selected)| **selected)
            .map(|(op, _)| *op)
            .collect();
    }

    fn at_unknown_run_limit(&self, unknown_run: usize) -> bool {
        self.limits
            .max_unknown_run
            .is_some_and(|max| unknown_run >= max)
    }

    fn extend_longest_prefix(&mut self) {
        if self.frames.len() <= self.longest_prefix.len() {
            return;
        }
        self.longest_prefix.truncate(self.longest_prefix_shared);
        self.longest_prefix.extend(
            self.frames[self.longest_prefix_shared..]
                .iter()
                .map(|frame| frame.step),
        );
        self.longest_prefix_shared = self.frames.len();
    }

    fn over_budget(&mut self) -> Option<Exhausted> {
        if self.states_explored > self.limits.max_states {
            return Some(Exhausted::States);
        }
        self.iterations += 1;
        let deadline = self.limits.deadline?;
        if self.iterations.is_multiple_of(ITERATIONS_PER_CLOCK_READ) && Instant::now() >= deadline {
            return Some(Exhausted::Time);
        }
        None
    }
}

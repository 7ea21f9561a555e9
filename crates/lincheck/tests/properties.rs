//! Property tests of the checker against the znode model.
//!
//! 1. Histories made by running a random sequential execution and then
//!    widening each operation's interval around its point in that execution
//!    (and turning some completions into unknown outcomes, or dropping the
//!    operation's effect and marking it unknown) are linearizable by
//!    construction: the checker must say so.
//! 2. Replacing one output of such a history with one the model can never
//!    produce must make the checker say "not linearizable".
//! 3. On tiny histories with plausible but often wrong outputs, the checker
//!    agrees with a brute-force search over every order, which shares none
//!    of its shortcuts (memoization, just-in-time linearization, key
//!    partitioning, the pruning of unknown operations).
//! 4. Histories survive a JSON-lines round trip.

mod support;

use lincheck::models::znode::{MultiOp, ZkError, ZnodeModel, ZnodeOp, ZnodeOutput, Znodes};
use lincheck::{Budget, Completion, History, Operation, check};
use proptest::prelude::*;
use support::{ZnodeHistory, impossible_output};

const PATHS: &[&str] = &["/a", "/b", "/c"];
const DATA: &[&str] = &["x", "y", "z"];

fn path() -> impl Strategy<Value = String> {
    proptest::sample::select(PATHS).prop_map(String::from)
}

/// Two paths only, so tiny histories interact more.
fn near_path() -> impl Strategy<Value = String> {
    proptest::sample::select(&PATHS[..2]).prop_map(String::from)
}

fn data() -> impl Strategy<Value = lincheck::models::Data> {
    proptest::sample::select(DATA).prop_map(lincheck::models::Data::from)
}

fn version() -> impl Strategy<Value = Option<i32>> {
    prop_oneof![Just(None), (0..3i32).prop_map(Some)]
}

fn multi_op(path: fn() -> BoxedStrategy<String>) -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        (path(), data()).prop_map(|(path, data)| MultiOp::Create { path, data }),
        (path(), data(), version()).prop_map(|(path, data, version)| MultiOp::SetData {
            path,
            data,
            version
        }),
        (path(), version()).prop_map(|(path, version)| MultiOp::Delete { path, version }),
        (path(), 0..3i32).prop_map(|(path, version)| MultiOp::CheckVersion { path, version }),
    ]
}

fn znode_op(path: fn() -> BoxedStrategy<String>) -> impl Strategy<Value = ZnodeOp> {
    prop_oneof![
        3 => (path(), data()).prop_map(|(path, data)| ZnodeOp::Create { path, data }),
        4 => (path(), data(), version()).prop_map(|(path, data, version)| ZnodeOp::SetData {
            path,
            data,
            version
        }),
        4 => path().prop_map(|path| ZnodeOp::GetData { path }),
        2 => (path(), version()).prop_map(|(path, version)| ZnodeOp::Delete { path, version }),
        1 => (path(), 0..3i32).prop_map(|(path, version)| ZnodeOp::CheckVersion { path, version }),
        2 => proptest::collection::vec(multi_op(path), 1..=3).prop_map(ZnodeOp::Multi),
    ]
}

/// How an operation of the sequential execution is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Completed,
    /// It took effect but the client never learned the outcome.
    UnknownApplied,
    /// It never reached the server.
    UnknownLost,
}

fn fate(completed_weight: u32) -> impl Strategy<Value = Fate> {
    prop_oneof![
        completed_weight => Just(Fate::Completed),
        1 => Just(Fate::UnknownApplied),
        1 => Just(Fate::UnknownLost),
    ]
}

/// One operation of the plan: its input, client, how far its interval
/// reaches before and after its point in the execution, and its fate.
#[derive(Debug, Clone)]
struct Planned {
    op: ZnodeOp,
    client: u64,
    before: u64,
    after: u64,
    fate: Fate,
}

fn any_path() -> BoxedStrategy<String> {
    path().boxed()
}

fn two_paths() -> BoxedStrategy<String> {
    near_path().boxed()
}

/// Plans of up to `max_len` operations on three paths, widened by up to
/// 2.5 operations either way; a fifth of them with unknown outcomes.
fn plan(max_len: usize) -> impl Strategy<Value = Vec<Planned>> {
    proptest::collection::vec(
        (znode_op(any_path), 0..6u64, 0..250u64, 0..250u64, fate(8)).prop_map(
            |(op, client, before, after, fate)| Planned {
                op,
                client,
                before,
                after,
                fate,
            },
        ),
        1..max_len,
    )
}

/// Tiny plans on two paths, widened by up to 3 operations either way in
/// steps that make equal times common; half of them with unknown outcomes.
fn tiny_plan() -> impl Strategy<Value = Vec<Planned>> {
    proptest::collection::vec(
        (znode_op(two_paths), 0..4u64, 0..4u64, 0..4u64, fate(2)).prop_map(
            |(op, client, before, after, fate)| Planned {
                op,
                client,
                before: before * 100,
                after: after * 100,
                fate,
            },
        ),
        1..8,
    )
}

/// Operation i takes effect at time 100 * (i + 1), inside its widened
/// interval; the history is linearizable by construction.
fn widened_history(plan: &[Planned]) -> ZnodeHistory {
    let mut state = Znodes::default();
    let mut history = History::new();
    for (index, planned) in plan.iter().enumerate() {
        let point = 100 * (index as u64 + 3);
        let invoked = point.saturating_sub(planned.before);
        let output = if planned.fate == Fate::UnknownLost {
            None
        } else {
            let (next, output) = state.apply(&planned.op);
            state = next;
            Some(output)
        };
        let completion = match (planned.fate, output) {
            (Fate::Completed, Some(output)) => Some(Completion {
                at: point + planned.after,
                output,
            }),
            _ => None,
        };
        history
            .push(planned.client, invoked, planned.op.clone(), completion)
            .expect("widening keeps the completion after the invocation");
    }
    history
}

/// Every history where the model and time allow it: depth-first over every
/// order of the operations that respects real time, each unknown-outcome
/// operation either placed somewhere (taking effect) or never.
fn brute_force_linearizable(history: &ZnodeHistory) -> bool {
    fn search(
        ops: &[Operation<ZnodeOp, ZnodeOutput>],
        done: &mut Vec<bool>,
        state: &Znodes,
    ) -> bool {
        let all_completed_done = ops
            .iter()
            .zip(done.iter())
            .all(|(op, done)| *done || op.completion.is_none());
        if all_completed_done {
            return true;
        }
        for index in 0..ops.len() {
            if done[index] {
                continue;
            }
            let op = &ops[index];
            // Something not yet placed completed before this was invoked.
            let blocked = ops.iter().zip(done.iter()).any(|(other, done)| {
                !*done && other.completed_at().is_some_and(|at| at < op.invoked_at)
            });
            if blocked {
                continue;
            }
            let (next, output) = state.apply(&op.input);
            if op.output().is_some_and(|expected| *expected != output) {
                continue;
            }
            done[index] = true;
            let found = search(ops, done, &next);
            done[index] = false;
            if found {
                return true;
            }
        }
        false
    }
    let mut done = vec![false; history.len()];
    search(history.operations(), &mut done, &Znodes::default())
}

/// A plausible output for `op`: often right, often a near miss.
fn plausible_output() -> impl Strategy<Value = ZnodeOutput> {
    prop_oneof![
        Just(ZnodeOutput::Created),
        (0..3i32).prop_map(|version| ZnodeOutput::Set { version }),
        (data(), 0..3i32).prop_map(|(data, version)| ZnodeOutput::Data { data, version }),
        Just(ZnodeOutput::Deleted),
        Just(ZnodeOutput::Checked),
        Just(ZnodeOutput::Error(ZkError::NoNode)),
        Just(ZnodeOutput::Error(ZkError::NodeExists)),
        Just(ZnodeOutput::Error(ZkError::BadVersion)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn widened_sequential_executions_are_linearizable(plan in plan(40)) {
        let history = widened_history(&plan);
        let report = check(&ZnodeModel::new(), &history, Budget::default());
        prop_assert!(report.verdict.is_linearizable(), "{}", report);
    }

    #[test]
    fn one_impossible_output_makes_a_violation(plan in plan(40), pick in any::<proptest::sample::Index>()) {
        let history = widened_history(&plan);
        let completed: Vec<usize> = history
            .operations()
            .iter()
            .filter(|op| op.completion.is_some())
            .map(|op| op.id.index())
            .collect();
        prop_assume!(!completed.is_empty());
        let victim = completed[pick.index(completed.len())];
        let mut mutated = History::new();
        for op in history.operations() {
            let completion = op.completion.clone().map(|completion| {
                if op.id.index() == victim {
                    Completion { output: impossible_output(&op.input), ..completion }
                } else {
                    completion
                }
            });
            mutated.push(op.client, op.invoked_at, op.input.clone(), completion).unwrap();
        }
        let report = check(&ZnodeModel::new(), &mutated, Budget::default());
        prop_assert!(report.verdict.is_violation(), "mutated #{}: {}", victim, report);
    }

    #[test]
    fn histories_round_trip_through_json_lines(plan in plan(20)) {
        let history = widened_history(&plan);
        let mut bytes = Vec::new();
        history.write_jsonl(&mut bytes).unwrap();
        let read: ZnodeHistory = History::read_jsonl(&bytes[..]).unwrap();
        prop_assert_eq!(read, history);
    }
}

proptest! {
    // Tiny histories are cheap, and the cases that tell a shortcut from a
    // mistake (chains of unknown operations, equal times) are rare.
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn agrees_with_brute_force_on_tiny_histories(
        plan in tiny_plan(),
        wrong in proptest::collection::vec(proptest::option::weighted(0.3, plausible_output()), 8),
    ) {
        let history = widened_history(&plan);
        let mut perturbed = History::new();
        for (op, wrong) in history.operations().iter().zip(&wrong) {
            let completion = op.completion.clone().map(|completion| match wrong {
                Some(output) => Completion { output: output.clone(), ..completion },
                None => completion,
            });
            perturbed.push(op.client, op.invoked_at, op.input.clone(), completion).unwrap();
        }
        let expected = brute_force_linearizable(&perturbed);
        let report = check(&ZnodeModel::new(), &perturbed, Budget::default());
        prop_assert_eq!(report.verdict.is_linearizable(), expected, "{}", report);
        prop_assert_eq!(report.verdict.is_violation(), !expected, "{}", report);
    }
}

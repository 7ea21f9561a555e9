//! Long histories check without deep recursion and within the default
//! budget. The times are printed, not asserted (speed belongs in
//! benchmarks): `cargo test -p lincheck --test long_history -- --nocapture`.

mod support;

use std::time::Instant;

use lincheck::models::znode::ZnodeModel;
use lincheck::{Budget, Completion, History, Report, check};
use support::{Workload, ZnodeHistory, concurrent_history, impossible_output};

/// 8 clients, 50 keys, 1% of operations with an unknown outcome.
const WORKLOAD: Workload = Workload {
    clients: 8,
    keys: 50,
    operations: 20_000,
    unknown_per_mille: 10,
    multi_per_mille: 0,
    multi_group: 50,
};

fn check_timed(name: &str, history: &ZnodeHistory) -> Report {
    let started = Instant::now();
    let report = check(&ZnodeModel::new(), history, Budget::default());
    let elapsed = started.elapsed();
    println!("{name}: {elapsed:?}; {}", report.summary);
    report
}

#[test]
fn twenty_thousand_operations_over_fifty_keys() {
    let history = concurrent_history(1, WORKLOAD);
    let report = check_timed("20,000 single-key operations, 50 keys", &history);
    assert!(report.verdict.is_linearizable(), "{report}");
    assert_eq!(report.summary.partitions, 50);
}

#[test]
fn twenty_thousand_operations_with_multis_within_groups_of_keys() {
    let workload = Workload {
        multi_per_mille: 50,
        multi_group: 5,
        ..WORKLOAD
    };
    let history = concurrent_history(2, workload);
    let report = check_timed(
        "20,000 operations, 5% multis within 10 groups of 5 keys",
        &history,
    );
    assert!(report.verdict.is_linearizable(), "{report}");
    assert_eq!(report.summary.partitions, 10);
}

#[test]
fn five_thousand_operations_joined_into_one_partition_by_multis() {
    let workload = Workload {
        operations: 5_000,
        multi_per_mille: 20,
        ..WORKLOAD
    };
    let history = concurrent_history(3, workload);
    let report = check_timed("5,000 operations, multis over any of 50 keys", &history);
    assert!(report.verdict.is_linearizable(), "{report}");
    assert_eq!(report.summary.partitions, 1);
}

#[test]
fn a_violation_at_the_end_of_a_long_history_is_found() {
    let history = concurrent_history(4, WORKLOAD);
    let victim = history
        .operations()
        .iter()
        .rev()
        .find(|op| op.completion.is_some())
        .map(|op| op.id)
        .unwrap();
    let mut mutated = History::new();
    for op in history.operations() {
        let completion = op
            .completion
            .clone()
            .map(|completion| match op.id == victim {
                true => Completion {
                    output: impossible_output(&op.input),
                    ..completion
                },
                false => completion,
            });
        mutated
            .push(op.client, op.invoked_at, op.input.clone(), completion)
            .unwrap();
    }
    let report = check_timed("20,000 operations, the last one impossible", &mutated);
    assert!(report.verdict.is_violation(), "{report}");
    let victim_text = format!("{victim} client");
    assert!(report.to_string().contains(&victim_text), "{report}");
}

#[test]
fn one_hundred_thousand_operations_on_one_key() {
    // One partition as long as the history: the search is a loop over an
    // explicit stack, so its depth is not the thread's stack depth.
    let workload = Workload {
        keys: 1,
        operations: 100_000,
        unknown_per_mille: 0,
        ..WORKLOAD
    };
    let history = concurrent_history(5, workload);
    let report = check_timed("100,000 operations on one key", &history);
    assert!(report.verdict.is_linearizable(), "{report}");
    assert_eq!(report.summary.largest_partition, 100_000);
}

//! Hand-written znode histories, each small enough to reason about by eye:
//! the anomalies a broken ensemble produces (stale reads, lost writes,
//! invented values, half-applied multis) must be caught, and the histories
//! a correct one can produce (concurrent writes in either order, timeouts
//! that did or did not take effect) must pass.
//!
//! Times are (invoked, completed); an operation precedes another when it
//! completed before the other was invoked.

mod support;

use lincheck::models::znode::{ZkError, ZnodeModel, ZnodeOp, ZnodeOutput::*};
use lincheck::{Budget, Verdict, check};
use support::*;

#[test]
fn sequential_create_set_read_is_linearizable() {
    Script::new()
        .ok(1, 0, 1, create("/a", "1"), Created)
        .ok(1, 2, 3, set("/a", "2"), set_ok(1))
        .ok(2, 4, 5, get("/a"), data("2", 1))
        .assert_linearizable();
}

#[test]
fn stale_read_after_a_completed_write_is_caught() {
    let report = Script::new()
        .ok(1, 0, 1, create("/a", "1"), Created)
        .ok(1, 2, 3, set("/a", "2"), set_ok(1))
        .ok(2, 4, 5, get("/a"), data("1", 0))
        .assert_violation();
    let Verdict::NotLinearizable {
        keys,
        operations,
        longest_prefix,
        not_linearized,
        ..
    } = &report.verdict
    else {
        unreachable!()
    };
    assert_eq!(keys, &["\"/a\""]);
    assert_eq!(operations.len(), 3);
    assert_eq!(
        longest_prefix.len(),
        2,
        "create and set linearize; the read cannot follow"
    );
    assert!(
        not_linearized[0].starts_with("#2 client 2 [4, 5] GetData"),
        "{not_linearized:?}"
    );
    let message = report.to_string();
    assert!(
        message.contains("not linearizable") && message.contains("\"2\" v1"),
        "{message}"
    );
}

#[test]
fn a_read_concurrent_with_a_write_may_see_either_value() {
    for seen in [data("1", 0), data("2", 1)] {
        Script::new()
            .ok(1, 0, 1, create("/a", "1"), Created)
            .ok(1, 2, 5, set("/a", "2"), set_ok(1))
            .ok(2, 3, 4, get("/a"), seen)
            .assert_linearizable();
    }
}

#[test]
fn reads_cannot_go_back_in_time() {
    // Both reads overlap the write, but the second starts after the first
    // saw the new value, so it must see it too.
    Script::new()
        .ok(1, 0, 1, create("/a", "1"), Created)
        .ok(1, 2, 9, set("/a", "2"), set_ok(1))
        .ok(2, 3, 4, get("/a"), data("2", 1))
        .ok(3, 5, 6, get("/a"), data("1", 0))
        .assert_violation();
}

#[test]
fn a_lost_acknowledged_create_is_caught() {
    Script::new()
        .ok(1, 0, 1, create("/a", "1"), Created)
        .ok(2, 2, 3, get("/a"), error(ZkError::NoNode))
        .assert_violation();
}

#[test]
fn a_read_of_a_value_never_written_is_caught() {
    Script::new()
        .ok(1, 0, 1, create("/a", "1"), Created)
        .ok(2, 0, 3, set("/a", "2"), set_ok(1))
        .ok(3, 1, 4, get("/a"), data("3", 1))
        .assert_violation();
}

#[test]
fn concurrent_writes_may_land_in_either_order() {
    for (first, second, last) in [(1, 2, "y"), (2, 1, "x")] {
        Script::new()
            .ok(1, 0, 1, create("/a", "0"), Created)
            .ok(1, 2, 6, set("/a", "x"), set_ok(first))
            .ok(2, 3, 5, set("/a", "y"), set_ok(second))
            .ok(3, 7, 8, get("/a"), data(last, 2))
            .assert_linearizable();
    }
    // The versions fix the order: x got 1 and y got 2, so y is last.
    Script::new()
        .ok(1, 0, 1, create("/a", "0"), Created)
        .ok(1, 2, 6, set("/a", "x"), set_ok(1))
        .ok(2, 3, 5, set("/a", "y"), set_ok(2))
        .ok(3, 7, 8, get("/a"), data("x", 2))
        .assert_violation();
}

#[test]
fn an_unknown_write_may_show_up_later() {
    Script::new()
        .ok(1, 0, 1, create("/a", "1"), Created)
        .unknown(1, 2, set("/a", "2"))
        .ok(2, 10, 11, get("/a"), data("2", 1))
        .ok(2, 12, 13, get("/a"), data("2", 1))
        .assert_linearizable();
}

#[test]
fn an_unknown_write_may_never_show_up() {
    Script::new()
        .ok(1, 0, 1, create("/a", "1"), Created)
        .unknown(1, 2, set("/a", "2"))
        .ok(2, 10, 11, get("/a"), data("1", 0))
        .ok(3, 12, 13, set("/a", "3"), set_ok(1))
        .assert_linearizable();
}

#[test]
fn an_unknown_write_cannot_take_effect_before_its_invocation() {
    Script::new()
        .ok(1, 0, 1, create("/a", "1"), Created)
        .ok(2, 2, 3, get("/a"), data("2", 1))
        .unknown(1, 4, set("/a", "2"))
        .assert_violation();
}

#[test]
fn an_unknown_write_that_showed_up_cannot_vanish() {
    Script::new()
        .ok(1, 0, 1, create("/a", "1"), Created)
        .unknown(1, 2, set("/a", "2"))
        .ok(2, 10, 11, get("/a"), data("2", 1))
        .ok(2, 12, 13, get("/a"), data("1", 0))
        .assert_violation();
}

#[test]
fn an_unknown_write_takes_effect_once() {
    // One unknown setData cannot account for two version bumps.
    Script::new()
        .ok(1, 0, 1, create("/a", "1"), Created)
        .unknown(1, 2, set("/a", "2"))
        .ok(2, 10, 11, get("/a"), data("2", 2))
        .assert_violation();
}

#[test]
fn unknown_creates_chained_through_other_keys_are_found() {
    // The read of /b needs the unknown multi (which creates /b) and the
    // multi needs the unknown create of /a first (its check of /a): a chain
    // of unknown operations linked only through keys.
    Script::new()
        .unknown(1, 0, create("/a", "a"))
        .unknown(2, 1, multi(vec![m_check("/a", 0), m_create("/b", "b")]))
        .ok(3, 5, 6, get("/b"), data("b", 0))
        .assert_linearizable();
}

#[test]
fn bad_version_after_a_concurrent_set_data_is_linearizable() {
    Script::new()
        .ok(1, 0, 1, create("/a", "0"), Created)
        .ok(1, 2, 5, set_if("/a", "x", 0), set_ok(1))
        .ok(2, 3, 6, set_if("/a", "y", 0), error(ZkError::BadVersion))
        .ok(3, 7, 8, get("/a"), data("x", 1))
        .assert_linearizable();
}

#[test]
fn two_conditional_writes_on_one_version_cannot_both_succeed() {
    Script::new()
        .ok(1, 0, 1, create("/a", "0"), Created)
        .ok(1, 2, 5, set_if("/a", "x", 0), set_ok(1))
        .ok(2, 3, 6, set_if("/a", "y", 0), set_ok(1))
        .assert_violation();
}

#[test]
fn bad_version_with_no_concurrent_write_is_caught() {
    Script::new()
        .ok(1, 0, 1, create("/a", "0"), Created)
        .ok(2, 2, 3, set_if("/a", "y", 0), error(ZkError::BadVersion))
        .assert_violation();
}

#[test]
fn a_read_that_sees_half_of_a_multi_is_caught() {
    let both = || multi(vec![m_set("/a", "a2"), m_set("/b", "b2")]);
    let setup = || {
        Script::new().ok(1, 0, 1, create("/a", "a1"), Created).ok(
            1,
            2,
            3,
            create("/b", "b1"),
            Created,
        )
    };
    // During the multi: /a already new, then /b still old.
    setup()
        .ok(1, 4, 20, both(), multi_ok(vec![set_ok(1), set_ok(1)]))
        .ok(2, 5, 6, get("/a"), data("a2", 1))
        .ok(2, 7, 8, get("/b"), data("b1", 0))
        .assert_violation();
    // The same reads in the other order are fine: the multi can come
    // between them.
    setup()
        .ok(1, 4, 20, both(), multi_ok(vec![set_ok(1), set_ok(1)]))
        .ok(2, 5, 6, get("/b"), data("b1", 0))
        .ok(2, 7, 8, get("/a"), data("a2", 1))
        .assert_linearizable();
}

#[test]
fn a_failed_multi_must_apply_nothing() {
    // The second create fails, so the first must not be visible.
    Script::new()
        .ok(1, 0, 1, create("/b", "b"), Created)
        .ok(
            1,
            2,
            3,
            multi(vec![m_create("/a", "a"), m_create("/b", "x")]),
            multi_failed(1, ZkError::NodeExists),
        )
        .ok(2, 4, 5, get("/a"), data("a", 0))
        .assert_violation();
    // And it must name the op that failed.
    Script::new()
        .ok(1, 0, 1, create("/b", "b"), Created)
        .ok(
            1,
            2,
            3,
            multi(vec![m_create("/a", "a"), m_create("/b", "x")]),
            multi_failed(0, ZkError::NodeExists),
        )
        .assert_violation();
}

#[test]
fn a_violation_is_reported_with_the_keys_of_its_partition() {
    let report = Script::new()
        .ok(1, 0, 1, create("/a", "1"), Created)
        .ok(1, 0, 1, create("/c", "1"), Created)
        .ok(
            2,
            0,
            1,
            multi(vec![m_create("/b", "b"), m_create("/c", "c")]),
            multi_failed(1, ZkError::NodeExists),
        )
        .ok(3, 2, 3, get("/b"), data("b", 0))
        .assert_violation();
    let Verdict::NotLinearizable { keys, .. } = &report.verdict else {
        unreachable!()
    };
    assert_eq!(keys, &["\"/b\"", "\"/c\""]);
    assert_eq!(report.summary.partitions, 2);
}

#[test]
fn equal_times_count_as_concurrent() {
    // The read is invoked at the instant the write completes: it may come
    // before it.
    Script::new()
        .ok(1, 0, 1, create("/a", "1"), Created)
        .ok(1, 2, 5, set("/a", "2"), set_ok(1))
        .ok(2, 5, 6, get("/a"), data("1", 0))
        .assert_linearizable();
}

#[test]
fn nodes_that_existed_before_the_history_are_in_the_initial_state() {
    let script = Script::new().ok(1, 0, 1, get("/a"), data("old", 4));
    assert!(script.check().verdict.is_violation());
    let model = ZnodeModel::new().with_node("/a", "old", 4);
    assert!(
        check(&model, &script.history, Budget::default())
            .verdict
            .is_linearizable()
    );
}

#[test]
fn summary_counts_partitions_and_skipped_operations() {
    let report = Script::new()
        .ok(1, 0, 1, create("/a", "1"), Created)
        .ok(2, 0, 1, create("/b", "1"), Created)
        .unknown(3, 2, get("/a"))
        .ok(3, 3, 4, multi(vec![]), multi_ok(vec![]))
        .ok(3, 5, 6, ZnodeOp::Sync { path: "/a".into() }, Synced)
        .check();
    assert!(report.verdict.is_linearizable(), "{report}");
    let summary = report.summary;
    assert_eq!(summary.operations, 5);
    assert_eq!(summary.partitions, 2);
    assert_eq!(
        summary.operations_without_keys, 2,
        "a sync and an empty multi touch no key"
    );
    assert_eq!(summary.unknown_reads_skipped, 1);
    assert_eq!(summary.operations_checked, 2);
    assert!(summary.states_explored >= 2);
}

#[test]
fn a_search_that_runs_out_of_states_says_unknown() {
    // Eight timed-out writes, any subset of which may have landed in any
    // order, and a read no subset explains: the search must try them all
    // before it can say no.
    let mut script = Script::new().ok(0, 0, 1, create("/a", "0"), Created);
    for client in 1..=8 {
        script = script.unknown(client, 2, set("/a", &format!("w{client}")));
    }
    let script = script.ok(99, 101, 102, get("/a"), data("never written", 3));
    let report = check(&ZnodeModel::new(), &script.history, Budget::states(50));
    let Verdict::Unknown { why } = &report.verdict else {
        panic!("{report}")
    };
    assert!(why.contains("more than 50 states"), "{why}");
    // With room to finish, it is a definite violation.
    let report = script.check();
    assert!(report.verdict.is_violation(), "{report}");
    assert!(report.summary.states_explored > 1000, "{}", report.summary);
}

#[test]
fn the_error_variant_debug_text_names_the_code() {
    // Guards the failure-message format callers grep for.
    assert_eq!(
        format!("{:?}", Error(ZkError::BadVersion)),
        "Error(BadVersion)"
    );
}

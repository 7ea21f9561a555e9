//! The direct check of sequential creates, on hand-written histories: what
//! a correct server produces passes, and each promise broken on its own is
//! reported as itself.

use lincheck::History;
use lincheck::models::sequential::{
    SequentialOp, SequentialOutput, SequentialViolation, check_sequential_creates,
};
use lincheck::models::znode::ZkError;

type Log = History<SequentialOp, SequentialOutput>;

fn create() -> SequentialOp {
    SequentialOp::CreateSequential {
        parent: "/q".into(),
        prefix: "n-".into(),
    }
}

fn created(number: u32) -> SequentialOutput {
    SequentialOutput::Created {
        path: format!("/q/n-{number:010}"),
    }
}

fn list() -> SequentialOp {
    SequentialOp::GetChildren {
        parent: "/q".into(),
    }
}

fn children(numbers: &[u32]) -> SequentialOutput {
    SequentialOutput::Children(
        numbers
            .iter()
            .map(|number| format!("n-{number:010}"))
            .collect(),
    )
}

fn delete(number: u32) -> SequentialOp {
    SequentialOp::Delete {
        path: format!("/q/n-{number:010}"),
    }
}

fn violations(log: &Log) -> Vec<SequentialViolation> {
    check_sequential_creates(log, &[]).violations
}

#[test]
fn a_correct_run_passes() {
    let mut log = Log::new();
    log.push_completed(1, 0, 3, create(), created(0)).unwrap();
    log.push_completed(2, 1, 2, create(), created(1)).unwrap(); // concurrent: any order
    log.push_completed(1, 4, 5, create(), created(3)).unwrap(); // numbers may skip
    log.push_unknown(2, 4, create()).unwrap(); // timed out; it did land as 2
    log.push_unknown(3, 4, create()).unwrap(); // timed out; it did not land
    log.push_completed(3, 6, 7, delete(1), SequentialOutput::Deleted)
        .unwrap();
    log.push_completed(2, 8, 9, create(), SequentialOutput::Error(ZkError::NoNode))
        .unwrap();
    log.push_completed(1, 10, 11, list(), children(&[0, 2, 3]))
        .unwrap();
    let report = check_sequential_creates(&log, &[]);
    assert!(report.is_ok(), "{report}");
    assert_eq!(
        (
            report.creates_acknowledged,
            report.creates_unknown,
            report.reads_checked
        ),
        (3, 2, 1)
    );
}

#[test]
fn duplicate_names_are_reported() {
    let mut log = Log::new();
    log.push_completed(1, 0, 1, create(), created(0)).unwrap();
    log.push_completed(2, 0, 1, create(), created(0)).unwrap();
    assert!(matches!(
        violations(&log)[..],
        [SequentialViolation::DuplicateName { .. }]
    ));
}

#[test]
fn numbers_follow_real_time_order() {
    let mut log = Log::new();
    log.push_completed(1, 0, 1, create(), created(5)).unwrap();
    log.push_completed(2, 2, 3, create(), created(4)).unwrap();
    let found = violations(&log);
    assert!(
        matches!(found[..], [SequentialViolation::OutOfOrder { .. }]),
        "{found:?}"
    );
    // Overlapping creates may be numbered either way.
    let mut log = Log::new();
    log.push_completed(1, 0, 2, create(), created(5)).unwrap();
    log.push_completed(2, 1, 3, create(), created(4)).unwrap();
    assert!(violations(&log).is_empty());
}

#[test]
fn a_lost_acknowledged_create_is_reported() {
    let mut log = Log::new();
    log.push_completed(1, 0, 1, create(), created(0)).unwrap();
    log.push_completed(1, 2, 3, create(), created(1)).unwrap();
    log.push_completed(2, 4, 5, list(), children(&[1])).unwrap();
    let found = violations(&log);
    assert!(
        matches!(&found[..], [SequentialViolation::AcknowledgedMissing { path, .. }] if path == "/q/n-0000000000"),
        "{found:?}"
    );
}

#[test]
fn a_delete_that_may_have_happened_excuses_a_missing_name() {
    let mut log = Log::new();
    log.push_completed(1, 0, 1, create(), created(0)).unwrap();
    log.push_unknown(1, 2, delete(0)).unwrap();
    log.push_completed(2, 4, 5, list(), children(&[])).unwrap();
    assert!(violations(&log).is_empty());
}

#[test]
fn a_deleted_name_that_reappears_is_reported() {
    let mut log = Log::new();
    log.push_completed(1, 0, 1, create(), created(0)).unwrap();
    log.push_completed(1, 2, 3, delete(0), SequentialOutput::Deleted)
        .unwrap();
    log.push_completed(2, 4, 5, list(), children(&[0])).unwrap();
    assert!(matches!(
        violations(&log)[..],
        [SequentialViolation::DeletedPresent { .. }]
    ));
}

#[test]
fn invented_names_are_reported() {
    let mut log = Log::new();
    log.push_completed(1, 0, 1, create(), created(0)).unwrap();
    log.push_completed(2, 4, 5, list(), children(&[0, 7]))
        .unwrap();
    let found = violations(&log);
    assert!(
        matches!(&found[..], [SequentialViolation::Unexplained { names, read: Some(_), .. }] if names == &["/q/n-0000000007"]),
        "{found:?}"
    );
}

#[test]
fn one_unknown_create_explains_one_name_only() {
    let mut log = Log::new();
    log.push_unknown(1, 0, create()).unwrap();
    log.push_completed(2, 4, 5, list(), children(&[3])).unwrap();
    log.push_completed(2, 6, 7, list(), children(&[4])).unwrap();
    let found = violations(&log);
    assert!(
        matches!(&found[..], [SequentialViolation::Unexplained { read: None, names, .. }] if names.len() == 2),
        "each read alone is explainable, both together are not: {found:?}"
    );
}

#[test]
fn an_unknown_create_invoked_after_the_read_explains_nothing() {
    let mut log = Log::new();
    log.push_completed(2, 0, 1, list(), children(&[0])).unwrap();
    log.push_unknown(1, 2, create()).unwrap();
    assert!(matches!(
        violations(&log)[..],
        [SequentialViolation::Unexplained { .. }]
    ));
}

#[test]
fn malformed_and_mismatched_outputs_are_reported() {
    let mut log = Log::new();
    log.push_completed(
        1,
        0,
        1,
        create(),
        SequentialOutput::Created {
            path: "/q/m-0000000001".into(),
        },
    )
    .unwrap();
    log.push_completed(1, 2, 3, list(), SequentialOutput::Deleted)
        .unwrap();
    let found = violations(&log);
    assert!(
        matches!(
            found[..],
            [
                SequentialViolation::MalformedName { .. },
                SequentialViolation::OutputMismatch { .. }
            ]
        ),
        "{found:?}"
    );
}

#[test]
fn children_present_before_the_history_are_allowed() {
    let mut log = Log::new();
    log.push_completed(
        2,
        0,
        1,
        list(),
        SequentialOutput::Children(vec!["config".into()]),
    )
    .unwrap();
    assert!(!violations(&log).is_empty());
    assert!(check_sequential_creates(&log, &["/q/config".into()]).is_ok());
}

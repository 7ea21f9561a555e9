//! A history recorded by many threads through a `SharedRecorder`, saved as
//! JSON lines and re-checked from the file with `check_file`, as the test
//! against real processes does after a failure.

mod support;

use std::path::PathBuf;
use std::thread;

use lincheck::models::znode::{ZnodeModel, ZnodeOp, ZnodeOutput};
use lincheck::{Budget, JsonlError, SharedRecorder, check, check_file};
use support::*;

/// A file in the system's temporary directory, unique to this test
/// process, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        Self(std::env::temp_dir().join(format!("lincheck-{}-{name}.jsonl", std::process::id())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_shared_recording_saved_and_checked_from_a_file() {
    let recorder: SharedRecorder<ZnodeOp, ZnodeOutput> = SharedRecorder::new();
    let op = recorder.invoke(0, create("/shared", "0"));
    recorder.complete(op, ZnodeOutput::Created).unwrap();
    // Four client threads, each writing its own node by compare-and-set and
    // reading it back, then deleting it with a timeout; they interleave
    // freely in the recorder.
    let threads: Vec<_> = (1..=4)
        .map(|client| {
            let recorder = recorder.clone();
            thread::spawn(move || {
                let path = format!("/c{client}");
                let op = recorder.invoke(client, create(&path, "0"));
                recorder.complete(op, ZnodeOutput::Created).unwrap();
                for version in 0..50 {
                    let op = recorder
                        .invoke(client, set_if(&path, &format!("{}", version + 1), version));
                    recorder.complete(op, set_ok(version + 1)).unwrap();
                    let op = recorder.invoke(client, get(&path));
                    recorder
                        .complete(op, data(&format!("{}", version + 1), version + 1))
                        .unwrap();
                }
                let op = recorder.invoke(client, delete(&path));
                recorder.fail_unknown(op).unwrap();
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let history = recorder.try_into_history().unwrap();
    assert_eq!(history.len(), 1 + 4 * 102);

    let file = TempFile::new("shared");
    history.save_jsonl(&file.0).unwrap();
    let report = check_file(&ZnodeModel::new(), &file.0, Budget::default()).unwrap();
    assert!(report.verdict.is_linearizable(), "{report}");
    assert_eq!(report.summary.partitions, 5);
    assert_eq!(
        report,
        check(&ZnodeModel::new(), &history, Budget::default())
    );
}

#[test]
fn a_violation_read_back_from_a_file_is_still_a_violation() {
    let script = Script::new()
        .ok(1, 0, 1, create("/a", "1"), ZnodeOutput::Created)
        .ok(2, 2, 3, get("/a"), data("2", 0));
    let file = TempFile::new("violation");
    script.history.save_jsonl(&file.0).unwrap();
    let text = std::fs::read_to_string(&file.0).unwrap();
    assert!(
        text.starts_with("{\"id\":0,\"client\":1,\"invoked_at\":0,\"input\":{\"Create\":"),
        "{text}"
    );
    let report = check_file(&ZnodeModel::new(), &file.0, Budget::default()).unwrap();
    assert!(report.verdict.is_violation(), "{report}");
}

#[test]
fn a_missing_file_is_an_io_error() {
    let file = TempFile::new("missing");
    let error = check_file(&ZnodeModel::new(), &file.0, Budget::default()).unwrap_err();
    assert!(matches!(error, JsonlError::Io(_)), "{error}");
}

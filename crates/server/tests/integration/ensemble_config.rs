//! zoo.cfg ensemble settings on the real binary: what runs standalone as
//! in ZooKeeper, what is refused with a reason, and that an ensemble
//! configuration is refused (replication is not finished) rather than run
//! as independent standalone servers that would accept conflicting writes.

use std::time::Duration;

use crate::support::DataDir;

const THREE: [&str; 5] = [
    "server.1=127.0.0.1:2888:3888",
    "server.2=127.0.0.1:2889:3889",
    "server.3=127.0.0.1:2890:3890",
    "initLimit=10",
    "syncLimit=5",
];

fn refused_saying(dir: &DataDir, cfg: &[&str], expected: &[&str]) {
    let run = dir.run_to_exit(cfg, Duration::from_secs(20));
    assert!(!run.status.success(), "started; stderr:\n{}", run.stderr);
    for text in expected {
        assert!(
            run.stderr.contains(text),
            "stderr does not say {text:?}:\n{}",
            run.stderr
        );
    }
}

#[test]
fn an_ensemble_config_is_refused_not_run_standalone() {
    let dir = DataDir::new("ensemble-refused");
    std::fs::create_dir_all(dir.data_dir()).unwrap();
    std::fs::write(dir.data_dir().join("myid"), "2\n").unwrap();
    refused_saying(
        &dir,
        &THREE,
        &["ensemble of 3 servers", "server 2", "standalone only"],
    );
    assert!(
        !dir.store_dir().exists(),
        "a refused ensemble member created a store"
    );
}

#[test]
fn an_ensemble_member_without_myid_is_refused() {
    let dir = DataDir::new("ensemble-no-myid");
    refused_saying(&dir, &THREE, &["myid file is missing"]);
}

#[test]
fn a_malformed_server_line_is_refused_by_name() {
    let dir = DataDir::new("ensemble-bad-line");
    refused_saying(
        &dir,
        &["server.1=127.0.0.1:2888:3888", "server.2=127.0.0.1:2888"],
        &["server.2"],
    );
}

#[test]
fn one_participant_runs_standalone_as_in_zookeeper() {
    let dir = DataDir::new("ensemble-one");
    let server = dir.start(&["server.1=127.0.0.1:2888:3888"]);
    assert!(
        server.log().contains("running standalone"),
        "{}",
        server.log()
    );
    assert!(server.terminate().success());
}

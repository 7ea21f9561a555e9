//! zoo.cfg ensemble settings on the real binary: what runs standalone as
//! in ZooKeeper, what is refused with a reason, and that a member whose
//! peers cannot be reached keeps trying, says so, and serves nobody (never
//! standalone, which would accept conflicting writes).

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
fn a_member_whose_peers_are_unreachable_keeps_trying_and_does_not_serve() {
    let dir = DataDir::new("ensemble-alone");
    std::fs::create_dir_all(dir.data_dir()).unwrap();
    std::fs::write(dir.data_dir().join("myid"), "2\n").unwrap();
    let q = crate::support::free_port;
    let servers = [
        format!("server.1=peer-1.invalid:{}:{}", q(), q()),
        format!("server.2=127.0.0.1:{}:{}", q(), q()),
        format!("server.3=127.0.0.1:{}:{}", q(), q()),
    ];
    let mut cfg: Vec<&str> = servers.iter().map(String::as_str).collect();
    cfg.extend(["tickTime=200", "initLimit=10", "syncLimit=5"]);
    let mut server = dir.spawn(&cfg);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let log = server.log();
        if log.contains("peer not reachable") && log.contains("peer-1.invalid") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the log does not say the peers are unreachable:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(server.running(), "it gave up:\n{}", server.log());
    let srvr = crate::support::four_letter(server.addr, "srvr").unwrap();
    assert!(srvr.contains("not currently serving"), "{srvr}");
    assert!(
        crate::raw_client::RawClient::connect(server.addr, 5_000).is_err(),
        "a member without a quorum opened a session"
    );
    assert!(server.terminate().success());
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

fn lonely_member_config() -> Vec<String> {
    let q = crate::support::free_port;
    let mut cfg: Vec<String> = (1..=3)
        .map(|i| format!("server.{i}=127.0.0.1:{}:{}", q(), q()))
        .collect();
    cfg.extend(["tickTime=200", "initLimit=10", "syncLimit=5"].map(String::from));
    cfg
}

#[test]
fn a_standalone_data_directory_is_refused_as_an_ensemble_member() {
    let dir = DataDir::new("standalone-then-member");
    let server = dir.start(&[]);
    let mut client = crate::raw_client::RawClient::connect(server.addr, 5_000).unwrap();
    assert_eq!(
        client.create("/mine", b"x").unwrap().error(),
        proto::ErrorCode::Ok
    );
    drop(client);
    assert!(server.terminate().success());
    std::fs::write(dir.data_dir().join("myid"), "1\n").unwrap();
    let cfg = lonely_member_config();
    let cfg: Vec<&str> = cfg.iter().map(String::as_str).collect();
    refused_saying(
        &dir,
        &cfg,
        &["standalone server's data", "empty data directory"],
    );
}

#[test]
fn an_ensemble_members_data_directory_is_refused_standalone() {
    let dir = DataDir::new("member-then-standalone");
    std::fs::write(dir.data_dir().join("myid"), "1\n").unwrap();
    // A one-server ensemble (standaloneEnabled=false) forms at once: its
    // store is then a member's. (A member still discovering its ensemble
    // has written nothing a standalone server could mistake for its own.)
    let q = crate::support::free_port;
    let line = format!("server.1=127.0.0.1:{}:{}", q(), q());
    let cfg = [
        line.as_str(),
        "standaloneEnabled=false",
        "tickTime=200",
        "initLimit=10",
        "syncLimit=5",
    ];
    let server = dir.spawn(&cfg);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !server.log().contains("role=Leader") {
        assert!(std::time::Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.terminate().success());
    refused_saying(&dir, &[], &["belongs to a member of an ensemble"]);
}

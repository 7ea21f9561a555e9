//! Dynamic membership with real processes: `reconfig` and the admin API
//! grow, shrink and replace members while clients write, and nothing
//! acknowledged is lost; refusals carry ZooKeeper's codes; a removed server
//! stops serving and does not come back under its old identity; a server
//! restarted with its old zoo.cfg adopts the committed membership; after a
//! lost quorum, `recover-alone` brings one survivor back with all it had.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use proto::{ErrorCode, OpCode, ReconfigRequest, Request, Response};

use crate::ensemble::{children, writer};
use crate::ensemble_support::LocalEnsemble;
use crate::raw_client::RawClient;

const TOKEN: &str = "s3cret-token";

/// reconfig through a client: (error, the new config text).
pub(crate) fn reconfig(
    client: &mut RawClient,
    joining: &str,
    leaving: &str,
    new_members: &str,
    from: i64,
) -> std::io::Result<(ErrorCode, String)> {
    let reply = client.call(&Request::Reconfig(ReconfigRequest {
        joining_servers: joining.into(),
        leaving_servers: leaving.into(),
        new_members: new_members.into(),
        cur_config_id: from,
    }))?;
    let text = match reply.response(OpCode::Reconfig) {
        Response::GetData(r) => String::from_utf8_lossy(&r.data.unwrap_or_default()).into_owned(),
        _ => String::new(),
    };
    Ok((reply.error(), text))
}

/// `/zookeeper/config` as member `i` has it after a sync.
fn config_of(ensemble: &LocalEnsemble, i: usize) -> String {
    let mut client = ensemble.client(i);
    client.sync().unwrap();
    let (data, _) = client
        .get_data("/zookeeper/config")
        .unwrap()
        .expect("config");
    String::from_utf8_lossy(&data.unwrap_or_default()).into_owned()
}

fn ids_in(config: &str) -> Vec<u64> {
    config
        .lines()
        .filter_map(|l| l.strip_prefix("server."))
        .filter_map(|l| l.split('=').next()?.parse().ok())
        .collect()
}

fn version_in(config: &str) -> i64 {
    config
        .lines()
        .find_map(|l| l.strip_prefix("version="))
        .and_then(|v| i64::from_str_radix(v, 16).ok())
        .expect("a version line")
}

/// Writers on every member in `addrs`, as in the failover test.
struct Load {
    addrs: Arc<Mutex<Vec<std::net::SocketAddr>>>,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    writers: Vec<JoinHandle<u32>>,
}

impl Load {
    fn start(ensemble: &LocalEnsemble, members: &[usize]) -> Load {
        let leader = ensemble.await_leader(Duration::from_secs(30));
        let mut setup = ensemble.client(leader);
        assert_eq!(setup.create("/load", b"").unwrap().error(), ErrorCode::Ok);
        let addrs = Arc::new(Mutex::new(
            members.iter().map(|&i| ensemble.addr(i)).collect(),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let writers = (0..3)
            .map(|id| {
                let (addrs, stop, acked) = (addrs.clone(), stop.clone(), acked.clone());
                std::thread::spawn(move || writer(addrs, id, stop, acked))
            })
            .collect();
        Load {
            addrs,
            stop,
            acked,
            writers,
        }
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until `more` writes were acknowledged from now.
    fn progress(&self, more: usize, ensemble: &LocalEnsemble) {
        let start = self.acked();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.acked() < start + more {
            assert!(
                Instant::now() < deadline,
                "writes stalled\n{}",
                ensemble.logs()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the writers; checks every acknowledged write and every
    /// writer's ephemeral is on each of `members`.
    fn finish(self, ensemble: &LocalEnsemble, members: &[usize]) {
        self.stop.store(true, Ordering::Relaxed);
        for (id, w) in self.writers.into_iter().enumerate() {
            assert_eq!(w.join().unwrap(), 0, "writer {id}'s session expired");
        }
        let acked = self.acked.lock().unwrap().clone();
        assert!(acked.len() > 50, "only {} writes acknowledged", acked.len());
        for &i in members {
            let mut client = ensemble.client(i);
            let names = children(&mut client, "/load");
            for w in 0..3 {
                assert!(
                    names.contains(&format!("eph-w{w}")),
                    "member {i}: writer {w}'s ephemeral is gone"
                );
            }
            let missing: Vec<&String> = acked
                .iter()
                .filter(|p| !names.contains(p.trim_start_matches("/load/")))
                .collect();
            assert!(
                missing.is_empty(),
                "member {i} lacks {} of {} acknowledged writes, e.g. {:?}\n{}",
                missing.len(),
                acked.len(),
                missing.first(),
                ensemble.logs()
            );
        }
        eprintln!("{} acknowledged writes, all on {members:?}", acked.len());
    }
}

/// Waits until member `i`'s `/ensemble` says `state`.
fn await_state(ensemble: &LocalEnsemble, i: usize, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let wanted = format!("\"server_state\": \"{state}\"");
    loop {
        let status = ensemble.ensemble_status(i);
        if status.contains(&wanted) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "member {i} is not {state}: {status}\n{}",
            ensemble.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until member `i` (the leader) reports `n` healthy members.
fn await_healthy(ensemble: &LocalEnsemble, i: usize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = ensemble.admin(i, "GET", "/membership", None, None);
        let healthy = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|doc| {
                doc["members"].as_array().map(|ms| {
                    ms.iter()
                        .filter(|m| m["healthy"] == serde_json::json!(true))
                        .count()
                })
            })
            .unwrap_or(0);
        if healthy >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{body}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn reconfig_grows_three_to_five_and_back_while_clients_write() {
    let mut ensemble = LocalEnsemble::start(3, &["reconfigEnabled=true", "skipACL=yes"]);
    let load = Load::start(&ensemble, &[0, 1, 2]);
    load.progress(30, &ensemble);

    let before = config_of(&ensemble, 0);
    assert_eq!(ids_in(&before), vec![1, 2, 3]);
    let (four, line4) = ensemble.add_member("participant");
    let (five, line5) = ensemble.add_member("participant");
    await_state(&ensemble, four, "joining");

    let mut admin = ensemble.client(0);
    let (err, text) = reconfig(
        &mut admin,
        &format!("{line4},{line5}"),
        "",
        "",
        version_in(&before),
    )
    .unwrap();
    assert_eq!(err, ErrorCode::Ok, "{}", ensemble.logs());
    assert_eq!(ids_in(&text), vec![1, 2, 3, 4, 5]);
    assert!(!text.contains("observer"), "{text}");
    {
        let mut addrs = load.addrs.lock().unwrap();
        addrs.push(ensemble.addr(four));
        addrs.push(ensemble.addr(five));
    }
    load.progress(30, &ensemble);
    for i in [four, five] {
        let mode = ensemble.mode(i);
        assert!(
            matches!(mode.as_deref(), Some("follower" | "leader")),
            "member {i}: {mode:?}"
        );
        assert_eq!(config_of(&ensemble, i), text);
    }

    // Back to three: the leader and one other original member leave.
    let leader = ensemble.await_leader(Duration::from_secs(30));
    let other = (0..3).find(|&i| i != leader).unwrap();
    let stay = (0..5).find(|&i| i != leader && i != other).unwrap();
    let leaving = format!("{},{}", leader + 1, other + 1);
    let mut admin = ensemble.client(stay);
    match reconfig(&mut admin, "", &leaving, "", -1) {
        Ok((ErrorCode::Ok, text)) => assert_eq!(ids_in(&text).len(), 3, "{text}"),
        // The connection dropped while leadership moved: the change goes
        // on at the new leader.
        other => eprintln!("reconfig answered {other:?}; reading the outcome"),
    }
    let remaining: Vec<usize> = (0..5).filter(|&i| i != leader && i != other).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let config = config_of(&ensemble, remaining[0]);
        if ids_in(&config).len() == 3 {
            break config;
        }
        assert!(Instant::now() < deadline, "still {config}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        ids_in(&after),
        remaining.iter().map(|&i| i as u64 + 1).collect::<Vec<_>>()
    );
    *load.addrs.lock().unwrap() = remaining.iter().map(|&i| ensemble.addr(i)).collect();
    load.progress(30, &ensemble);
    for gone in [leader, other] {
        await_state(&ensemble, gone, "removed");
        assert_eq!(
            ensemble.mode(gone),
            None,
            "a removed server serves no clients"
        );
    }
    ensemble.await_leader_among(&remaining, Duration::from_secs(30));
    load.finish(&ensemble, &remaining);

    // A removed server does not come back under its old identity, whether
    // it applied its removal or was told by the leader.
    for gone in [leader, other] {
        ensemble.kill9(gone);
        let exited = ensemble.run_to_exit(gone, Duration::from_secs(30));
        assert!(!exited.status.success());
        assert!(
            exited.stderr.contains("was removed from the ensemble")
                || exited.stdout.contains("was removed from the ensemble"),
            "{}{}",
            exited.stdout,
            exited.stderr
        );
    }

    // A member restarted with its old zoo.cfg (three or five servers)
    // adopts the committed membership.
    let restarted = remaining[0];
    ensemble.kill9(restarted);
    ensemble.restart(restarted);
    ensemble.await_leader_among(&remaining, Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(30);
    while ensemble.mode(restarted).is_none() {
        assert!(Instant::now() < deadline, "{}", ensemble.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = ensemble.members[restarted].process.as_ref().unwrap().log();
    assert!(log.contains("adopting the committed membership"), "{log}");
    assert_eq!(
        config_of(&ensemble, restarted),
        config_of(&ensemble, remaining[1])
    );
}

#[test]
fn the_admin_api_replaces_a_member_while_clients_write() {
    let config = [
        "reconfigEnabled=true".to_owned(),
        format!("conclave.adminToken={TOKEN}"),
    ];
    let config: Vec<&str> = config.iter().map(String::as_str).collect();
    let mut ensemble = LocalEnsemble::start(3, &config);
    let load = Load::start(&ensemble, &[0, 1, 2]);
    load.progress(30, &ensemble);
    let leader = ensemble.await_leader(Duration::from_secs(30));
    let follower = (leader + 1) % 3;

    let (status, body) = ensemble.admin(follower, "GET", "/membership", None, None);
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let version = doc["version"].as_str().unwrap().to_owned();
    assert_eq!(doc["members"].as_array().unwrap().len(), 3);

    let (four, line4) = ensemble.add_member("participant");
    let add = format!(r#"{{"server": "{line4}", "expected_version": "{version}"}}"#);
    // No token, a follower, a stale version: refused, nothing changes.
    let (status, _) = ensemble.admin(leader, "POST", "/membership/add", Some(&add), None);
    assert_eq!(status, 401);
    let (status, body) =
        ensemble.admin(follower, "POST", "/membership/add", Some(&add), Some(TOKEN));
    assert_eq!(status, 421, "{body}");
    assert!(
        body.contains(&format!("\"leader\": {}", leader + 1)),
        "{body}"
    );
    let stale = format!(r#"{{"server": "{line4}", "expected_version": "1"}}"#);
    let (status, body) =
        ensemble.admin(leader, "POST", "/membership/add", Some(&stale), Some(TOKEN));
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("BadVersion"), "{body}");

    let (status, body) = ensemble.admin(leader, "POST", "/membership/add", Some(&add), Some(TOKEN));
    assert_eq!(status, 200, "{body}\n{}", ensemble.logs());
    assert!(body.contains("server.4="), "{body}");
    load.addrs.lock().unwrap().push(ensemble.addr(four));
    load.progress(30, &ensemble);

    // The leader leaves: it must hand over first.
    let remove = format!(r#"{{"id": {}}}"#, leader + 1);
    let (status, body) = ensemble.admin(
        leader,
        "POST",
        "/membership/remove",
        Some(&remove),
        Some(TOKEN),
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("TransferLeadershipFirst"), "{body}");
    let to = format!(r#"{{"to": {}}}"#, four + 1);
    let (status, body) = ensemble.admin(leader, "POST", "/leader/transfer", Some(&to), Some(TOKEN));
    assert_eq!(status, 200, "{body}\n{}", ensemble.logs());
    let new_leader = ensemble.await_leader_among(&[four], Duration::from_secs(30));
    // A new leader knows within a heartbeat or so which members are live
    // and caught up; until then it refuses changes (as an operator would,
    // the test waits until the membership reads healthy).
    await_healthy(&ensemble, new_leader, 4);
    let (status, body) = ensemble.admin(
        new_leader,
        "POST",
        "/membership/remove",
        Some(&remove),
        Some(TOKEN),
    );
    assert_eq!(
        status,
        200,
        "{body}\n{}\n{}",
        ensemble.ensemble_status(new_leader),
        ensemble.logs()
    );
    assert!(!body.contains(&format!("server.{}=", leader + 1)), "{body}");
    await_state(&ensemble, leader, "removed");

    let remaining: Vec<usize> = (0..4).filter(|&i| i != leader).collect();
    *load.addrs.lock().unwrap() = remaining.iter().map(|&i| ensemble.addr(i)).collect();
    load.progress(30, &ensemble);
    let (status, body) = ensemble.admin(new_leader, "GET", "/membership", None, None);
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let members = doc["members"].as_array().unwrap();
    assert_eq!(members.len(), 3, "{body}");
    assert!(
        members
            .iter()
            .all(|m| m["healthy"] == serde_json::json!(true)),
        "{body}"
    );
    load.finish(&ensemble, &remaining);
}

#[test]
fn unsafe_or_invalid_changes_are_refused_with_zookeepers_codes() {
    let mut ensemble = LocalEnsemble::start(
        3,
        &[
            "reconfigEnabled=true",
            "DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
        ],
    );
    let leader = ensemble.await_leader(Duration::from_secs(30));
    let mut client = ensemble.client(leader);
    // Not the super user: the ACL of /zookeeper/config says no.
    let (err, _) = reconfig(&mut client, "", "3", "", -1).unwrap();
    assert_eq!(err, ErrorCode::NoAuth);
    // (A new session each time: these raw clients do not ping.)
    let super_client = |ensemble: &LocalEnsemble| {
        let mut client = ensemble.client(leader);
        let auth = Request::Auth(proto::AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: Some(b"super:test".to_vec()),
        });
        client.send(&auth).unwrap();
        let _ = client.recv().unwrap();
        client
    };
    let mut client = super_client(&ensemble);
    let (err, _) = reconfig(&mut client, "", "3", "", 0x7777).unwrap();
    assert_eq!(err, ErrorCode::BadVersion);
    let (err, _) = reconfig(&mut client, "server.x=1", "", "", -1).unwrap();
    assert_eq!(err, ErrorCode::BadArguments);

    // A participant that never starts never catches up.
    let started = Instant::now();
    let (err, _) = reconfig(
        &mut client,
        "server.9=127.0.0.1:1:2:participant",
        "",
        "",
        -1,
    )
    .unwrap();
    assert_eq!(err, ErrorCode::NewConfigNoQuorum, "{}", ensemble.logs());
    eprintln!(
        "a joiner that never caught up was refused after {:?}",
        started.elapsed()
    );
    // ... and taken out again: the membership is as before.
    let deadline = Instant::now() + Duration::from_secs(10);
    while ids_in(&config_of(&ensemble, leader)) != vec![1, 2, 3] {
        assert!(
            Instant::now() < deadline,
            "{}",
            config_of(&ensemble, leader)
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // With one member down, removing another would leave one live voter
    // of two.
    let down = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    ensemble.kill9(down);
    std::thread::sleep(Duration::from_millis(2500));
    let mut client = super_client(&ensemble);
    let (err, _) = reconfig(&mut client, "", &format!("{}", other + 1), "", -1).unwrap();
    assert_eq!(err, ErrorCode::NewConfigNoQuorum);
    let config = config_of(&ensemble, leader);
    assert!(ids_in(&config).contains(&(other as u64 + 1)), "{config}");
}

#[test]
fn a_participant_becomes_an_observer_and_back() {
    let ensemble = LocalEnsemble::start(3, &["reconfigEnabled=true", "skipACL=yes"]);
    let leader = ensemble.await_leader(Duration::from_secs(30));
    let follower = (leader + 1) % 3;
    let line = config_of(&ensemble, leader)
        .lines()
        .find(|l| l.starts_with(&format!("server.{}=", follower + 1)))
        .expect("its line")
        .to_owned();
    let as_observer = line.replace(":participant", ":observer");
    // A watch on /zookeeper/config (on another server) fires.
    let mut watcher = ensemble.client((leader + 2) % 3);
    let watch = Request::GetData(proto::PathWatchRequest {
        path: "/zookeeper/config".into(),
        watch: true,
    });
    assert_eq!(watcher.call(&watch).unwrap().error(), ErrorCode::Ok);
    let mut client = ensemble.client(leader);
    let (err, text) = reconfig(&mut client, &as_observer, "", "", -1).unwrap();
    assert_eq!(err, ErrorCode::Ok, "{}", ensemble.logs());
    assert!(text.contains(&as_observer), "{text}");
    let event = watcher.next_notification().unwrap();
    let mut body = proto::jute::Reader::new(&event.body);
    let e = <proto::WatcherEvent as proto::jute::Jute>::decode(&mut body).expect("an event");
    assert_eq!(e.path, "/zookeeper/config");
    assert_eq!(e.event_type, proto::EventType::NodeDataChanged as i32);
    let deadline = Instant::now() + Duration::from_secs(30);
    while ensemble.mode(follower).as_deref() != Some("observer") {
        assert!(Instant::now() < deadline, "{:?}", ensemble.mode(follower));
        std::thread::sleep(Duration::from_millis(20));
    }
    // An observer still serves and forwards writes.
    let mut on_observer = ensemble.client(follower);
    assert_eq!(
        on_observer.create("/via-observer", b"x").unwrap().error(),
        ErrorCode::Ok
    );

    let mut client = ensemble.client(leader);
    let (err, text) = reconfig(&mut client, &line, "", "", -1).unwrap();
    assert_eq!(err, ErrorCode::Ok, "{}", ensemble.logs());
    assert!(text.contains(&line), "{text}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while ensemble.mode(follower).as_deref() != Some("follower") {
        assert!(Instant::now() < deadline, "{:?}", ensemble.mode(follower));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Three servers with the admin API on, after `writes` acknowledged writes
/// (the writers stopped), and a follower chosen as the survivor of the loss
/// to come, in sync with the leader.
struct BeforeTheLoss {
    ensemble: LocalEnsemble,
    acked: Vec<String>,
    survivor: usize,
    /// `/zookeeper/config` as the survivor has it.
    before: String,
}

fn three_servers_that_took_writes(writes: usize) -> BeforeTheLoss {
    let config = [
        "reconfigEnabled=true".to_owned(),
        format!("conclave.adminToken={TOKEN}"),
    ];
    let config: Vec<&str> = config.iter().map(String::as_str).collect();
    let ensemble = LocalEnsemble::start(3, &config);
    let load = Load::start(&ensemble, &[0, 1, 2]);
    load.progress(writes, &ensemble);
    load.stop.store(true, Ordering::Relaxed);
    for w in load.writers {
        w.join().unwrap();
    }
    let acked = load.acked.lock().unwrap().clone();
    let leader = ensemble.await_leader(Duration::from_secs(30));
    let survivor = (leader + 1) % 3;
    let before = config_of(&ensemble, survivor);
    BeforeTheLoss {
        ensemble,
        acked,
        survivor,
        before,
    }
}

/// Member `i`'s `server.N=` line in a `/zookeeper/config` text.
fn line_of(config: &str, i: usize) -> String {
    config
        .lines()
        .find(|l| l.starts_with(&format!("server.{}=", i + 1)))
        .expect("its line")
        .to_owned()
}

/// A quorum lost for good: two of three servers die with their disks. The
/// survivor, made the only member by `recover-alone` (whose first run is
/// interrupted: the server refuses that store until it is run again), leads
/// at once with every acknowledged write; the other two come back empty and
/// are added again, and catch up by snapshot.
#[test]
fn after_a_lost_quorum_the_survivor_recovers_alone_and_the_others_rejoin() {
    let BeforeTheLoss {
        mut ensemble,
        acked,
        survivor,
        before,
    } = three_servers_that_took_writes(200);
    let lost: Vec<usize> = (0..3).filter(|&i| i != survivor).collect();
    let lines: Vec<String> = lost.iter().map(|&i| line_of(&before, i)).collect();

    // Refused while the server runs on the directory.
    let running = ensemble.recover_alone(survivor);
    assert!(!running.status.success(), "{running:?}");

    for &i in &lost {
        ensemble.kill9(i);
        std::fs::remove_dir_all(ensemble.members[i].dir.store_dir()).unwrap();
    }
    // Without a quorum it cannot lead, however long it waits.
    std::thread::sleep(Duration::from_secs(2));
    assert_ne!(ensemble.mode(survivor).as_deref(), Some("leader"));
    ensemble.kill9(survivor);

    // A run interrupted after its first write (which marks the store): the
    // server refuses to start on that store and says how to finish.
    {
        use storage::Store;
        let mut store =
            storage::rocks::RocksStore::open(&ensemble.members[survivor].dir.store_dir()).unwrap();
        store
            .set_config(&storage::membership_record::encode(
                &consensus::driver::MembershipRecord::Recovering {
                    survivor: (survivor + 1).to_string(),
                },
            ))
            .unwrap();
    }
    let refused = ensemble.run_to_exit(survivor, Duration::from_secs(30));
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        format!("{}{}", refused.stdout, refused.stderr)
            .contains("`conclave-server recover-alone` was interrupted"),
        "{refused:?}"
    );

    let recovered = ensemble.recover_alone(survivor);
    assert!(recovered.status.success(), "{recovered:?}");
    assert!(
        recovered
            .stdout
            .contains(&format!("server {} is now the only member", survivor + 1)),
        "{}",
        recovered.stdout
    );
    assert!(
        recovered.stdout.contains("an interrupted run was finished"),
        "{}",
        recovered.stdout
    );

    ensemble.restart(survivor);
    ensemble.await_leader_among(&[survivor], Duration::from_secs(30));
    let after = config_of(&ensemble, survivor);
    assert_eq!(ids_in(&after), vec![survivor as u64 + 1], "{after}");
    assert!(
        version_in(&after) >> 32 > version_in(&before) >> 32,
        "a new epoch: {after} after {before}"
    );
    let mut client = ensemble.client(survivor);
    let names = children(&mut client, "/load");
    let missing = acked
        .iter()
        .filter(|p| !names.contains(p.trim_start_matches("/load/")))
        .count();
    assert_eq!(missing, 0, "of {} acknowledged writes", acked.len());
    assert_eq!(
        client.create("/after-recovery", b"x").unwrap().error(),
        ErrorCode::Ok
    );

    // The lost servers come back empty and are added again.
    for (&i, line) in lost.iter().zip(&lines) {
        ensemble.add_config_line(i, "conclave.join=true");
        ensemble.restart(i);
        let add = format!(r#"{{"server": "{line}"}}"#);
        let (status, body) =
            ensemble.admin(survivor, "POST", "/membership/add", Some(&add), Some(TOKEN));
        assert_eq!(status, 200, "{body}\n{}", ensemble.logs());
    }
    await_healthy(&ensemble, survivor, 3);
    for &i in &lost {
        let mut client = ensemble.client(i);
        client.sync().unwrap();
        let names = children(&mut client, "/load");
        assert!(
            acked
                .iter()
                .all(|p| names.contains(p.trim_start_matches("/load/"))),
            "member {i} lacks acknowledged writes"
        );
        assert!(client.get_data("/after-recovery").unwrap().is_ok());
        let log = ensemble.members[i].process.as_ref().unwrap().log();
        assert!(
            log.contains("installed a snapshot from the leader"),
            "{log}"
        );
    }
    eprintln!(
        "{} acknowledged writes kept through the recovery",
        acked.len()
    );
}

/// The same recovery through zoo.cfg, as the operator drives it: every
/// server restarts with `conclave.recoverAlone=<survivor>:<token>`. The
/// others set their stores aside (they still hold the old membership, and
/// two of them would be a majority of it) and wait to be added; a later
/// restart with the key still in zoo.cfg does nothing again.
#[test]
fn recover_alone_in_zoo_cfg_runs_once_per_token_on_every_server() {
    let BeforeTheLoss {
        mut ensemble,
        acked,
        survivor,
        before,
    } = three_servers_that_took_writes(100);
    let others: Vec<usize> = (0..3).filter(|&i| i != survivor).collect();
    for i in 0..3 {
        ensemble.kill9(i);
    }

    let key = format!("conclave.recoverAlone={}:t1", survivor + 1);
    for i in 0..3 {
        ensemble.add_config_line(i, &key);
        ensemble.restart(i);
    }
    ensemble.await_leader_among(&[survivor], Duration::from_secs(30));
    let after = config_of(&ensemble, survivor);
    assert_eq!(ids_in(&after), vec![survivor as u64 + 1], "{after}");
    let mut client = ensemble.client(survivor);
    let names = children(&mut client, "/load");
    assert!(
        acked
            .iter()
            .all(|p| names.contains(p.trim_start_matches("/load/"))),
        "the survivor lacks acknowledged writes"
    );
    for &i in &others {
        let aside = ensemble.members[i]
            .dir
            .data_dir()
            .join("store.pre-recovery-t1");
        assert!(aside.is_dir(), "{} is missing", aside.display());
        assert_eq!(
            ensemble.mode(i),
            None,
            "server {i} serves before it is added"
        );
        let add = format!(r#"{{"server": "{}"}}"#, line_of(&before, i));
        let (status, body) =
            ensemble.admin(survivor, "POST", "/membership/add", Some(&add), Some(TOKEN));
        assert_eq!(status, 200, "{body}\n{}", ensemble.logs());
    }
    await_healthy(&ensemble, survivor, 3);

    // Restarted with the key still there: nothing is set aside again, and
    // the server is back as the member it now is.
    let again = others[0];
    ensemble.kill9(again);
    ensemble.restart(again);
    await_healthy(&ensemble, survivor, 3);
    let mut client = ensemble.client(again);
    client.sync().unwrap();
    assert_eq!(children(&mut client, "/load").len(), names.len());
    let log = ensemble.members[again].process.as_ref().unwrap().log();
    assert!(!log.contains("set aside"), "{log}");
}

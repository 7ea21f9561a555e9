//! Multi-process tests of a replicated ensemble: three real servers on
//! loopback (`ensemble_support`), real clients, SIGKILL and SIGSTOP.
//!
//! - writes through any server are seen on every server after `sync`, and
//!   sessions are global (an ephemeral created through one server lives
//!   while its session moves to another, and goes when it closes);
//! - the leader killed with SIGKILL under write load: a new leader is
//!   elected, clients carry on with their sessions (re-opened on another
//!   server, their ephemerals kept), and no acknowledged write is lost;
//! - a follower that was down catches up, by snapshot when log retention
//!   dropped what it missed;
//! - a session re-opened on a follower that has not applied its creation
//!   yet is kept, not called expired;
//! - a server cut off from the others (frozen, so its sockets stay open)
//!   stops serving instead of answering stale or committing alone, and
//!   serves again once it is back;
//! - servers whose peers' names do not resolve yet keep trying, serve
//!   nobody, and form the ensemble once the names appear (each server sees
//!   a private /etc/hosts through a mount namespace; needs root).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proto::{ErrorCode, Request};

use crate::ensemble_support::LocalEnsemble;
use crate::raw_client::{Connected, RawClient, create_request};
use crate::support::running_as_root;

pub(crate) fn children(client: &mut RawClient, path: &str) -> BTreeSet<String> {
    client.sync().unwrap();
    match client.children(path).unwrap() {
        Ok((names, _)) => names.into_iter().collect(),
        Err(ErrorCode::NoNode) => BTreeSet::new(),
        Err(e) => panic!("listing {path}: {e:?}"),
    }
}

#[test]
fn writes_anywhere_are_seen_everywhere_and_sessions_are_global() {
    let ensemble = LocalEnsemble::start(3, &[]);
    let modes: Vec<String> = (0..3).map(|i| ensemble.mode(i).unwrap()).collect();
    assert_eq!(
        modes.iter().filter(|m| *m == "leader").count(),
        1,
        "{modes:?}"
    );
    assert_eq!(
        modes.iter().filter(|m| *m == "follower").count(),
        2,
        "{modes:?}"
    );

    let mut clients: Vec<RawClient> = (0..3).map(|i| ensemble.client(i)).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        let reply = client.create(&format!("/from{i}"), b"x").unwrap();
        assert_eq!(reply.error(), ErrorCode::Ok, "create through server {i}");
    }
    for client in &mut clients {
        let names = children(client, "/");
        for i in 0..3 {
            assert!(names.contains(&format!("from{i}")), "{names:?}");
        }
    }

    // An ephemeral made through server 0 lives while its session moves to
    // server 1, and goes when the session closes there.
    let reply = clients[0]
        .call(&create_request("/eph", Some(b"e".to_vec()), 1))
        .unwrap();
    assert_eq!(reply.error(), ErrorCode::Ok);
    let (session_id, password, timeout) = (
        clients[0].session_id,
        clients[0].password.clone(),
        clients[0].timeout_ms,
    );
    let moved = match RawClient::resume(ensemble.addr(1), session_id, &password, timeout).unwrap() {
        Connected::Session(client) => client,
        Connected::Expired => panic!("the session did not survive moving to another server"),
    };
    assert_eq!(moved.session_id, session_id);
    assert!(children(&mut clients[2], "/").contains("eph"));
    assert!(moved.close_session(), "closing the moved session");
    assert!(!children(&mut clients[2], "/").contains("eph"));

    // Every server reports the same last zxid once synced.
    let zxids: BTreeSet<i64> = clients[1..]
        .iter_mut()
        .map(|c| c.sync().unwrap().zxid)
        .collect();
    assert_eq!(zxids.len(), 1, "{zxids:?}");

    // The leader's admin API reports every member, and (within a tick or
    // two) the zxid each one applied.
    let leader = ensemble.await_leader(Duration::from_secs(10));
    let zxid = format!("0x{:x}", zxids.first().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = ensemble.ensemble_status(leader);
        let v: serde_json::Value = serde_json::from_str(&status).expect("JSON");
        assert_eq!(v["server_state"], "leader", "{status}");
        assert_eq!(v["members"].as_array().map(Vec::len), Some(3), "{status}");
        let all_applied = v["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["last_zxid"].as_str() == Some(zxid.as_str()) && m["connected"] == true);
        if all_applied {
            break;
        }
        assert!(Instant::now() < deadline, "{status}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let follower = (leader + 1) % 3;
    let status = ensemble.ensemble_status(follower);
    assert!(
        status.contains("\"server_state\": \"follower\""),
        "{status}"
    );
}

/// Writes `/load/w<writer>-<n>` in a loop through any server that takes
/// them, on one session: when its server fails it, it re-opens the same
/// session on the next server, as a ZooKeeper client does. The session
/// holds an ephemeral `/load/eph-w<writer>`. Records what was acknowledged;
/// returns how many times the session was found expired (it must not be).
pub(crate) fn writer(
    ensemble: Arc<Mutex<Vec<std::net::SocketAddr>>>,
    id: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
) -> u32 {
    let mut n = 0u64;
    let mut target = id;
    let mut expired = 0;
    let mut session: Option<(i64, Vec<u8>, i32)> = None;
    let mut client: Option<RawClient> = None;
    while !stop.load(Ordering::Relaxed) {
        if client.is_none() {
            let addrs = ensemble.lock().unwrap().clone();
            let addr = addrs[target % addrs.len()];
            let connected = match &session {
                Some((sid, password, timeout)) => {
                    match RawClient::resume_like_zookeeper(addr, *sid, password, *timeout) {
                        Ok(Connected::Session(c)) => Some(c),
                        Ok(Connected::Expired) => {
                            expired += 1;
                            session = None;
                            None
                        }
                        Err(_) => None,
                    }
                }
                None => match RawClient::connect(addr, 4_000) {
                    Ok(mut c) => {
                        let eph = format!("/load/eph-w{id}");
                        match c.call(&create_request(&eph, None, 1)) {
                            Ok(r) if r.error() == ErrorCode::Ok => {
                                session = Some((c.session_id, c.password.clone(), c.timeout_ms));
                                c.give_up_like_zookeeper().ok().map(|()| c)
                            }
                            _ => None,
                        }
                    }
                    Err(_) => None,
                },
            };
            match connected {
                Some(c) => client = Some(c),
                None => {
                    target += 1;
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            }
        }
        let Some(c) = client.as_mut() else { continue };
        let path = format!("/load/w{id}-{n}");
        match c.call(&create_request(&path, Some(vec![b'v'; 16]), 0)) {
            Ok(reply) if reply.error() == ErrorCode::Ok => {
                acked.lock().unwrap().push(path);
                n += 1;
            }
            // A retried create whose first attempt did land.
            Ok(reply) if reply.error() == ErrorCode::NodeExists => n += 1,
            Ok(reply) => panic!("create {path}: {:?}", reply.error()),
            Err(_) => {
                client = None;
                target += 1;
            }
        }
    }
    expired
}

#[test]
fn killing_the_leader_under_load_loses_no_acknowledged_write() {
    let mut ensemble = LocalEnsemble::start(3, &[]);
    let leader = ensemble.await_leader(Duration::from_secs(30));
    let mut setup = ensemble.client((leader + 1) % 3);
    assert_eq!(setup.create("/load", b"").unwrap().error(), ErrorCode::Ok);
    drop(setup);

    let addrs = Arc::new(Mutex::new((0..3).map(|i| ensemble.addr(i)).collect()));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..3)
        .map(|id| {
            let (addrs, stop, acked) = (addrs.clone(), stop.clone(), acked.clone());
            std::thread::spawn(move || writer(addrs, id, stop, acked))
        })
        .collect();

    std::thread::sleep(Duration::from_millis(1500));
    let before_kill = acked.lock().unwrap().len();
    let killed_at = Instant::now();
    ensemble.kill9(leader);
    // The first acknowledged write after the kill: failover time.
    let failover = loop {
        if acked.lock().unwrap().len() > before_kill + 3 {
            break killed_at.elapsed();
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "no write accepted after killing the leader\n{}",
            ensemble.logs()
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    eprintln!("writes resumed {failover:?} after killing the leader");
    std::thread::sleep(Duration::from_millis(1000));

    // The killed server comes back and catches up.
    ensemble.restart(leader);
    let addr = ensemble.addr(leader);
    addrs.lock().unwrap()[leader] = addr;
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    for (id, w) in writers.into_iter().enumerate() {
        assert_eq!(w.join().unwrap(), 0, "writer {id}'s session expired");
    }
    ensemble.await_leader(Duration::from_secs(30));

    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > before_kill, "writes went on after the kill");
    let mut seen = Vec::new();
    for i in 0..3 {
        let mut client = ensemble.client(i);
        let names = children(&mut client, "/load");
        for w in 0..3 {
            assert!(
                names.contains(&format!("eph-w{w}")),
                "server {i}: writer {w}'s ephemeral is gone, so its session was lost"
            );
        }
        for path in &acked {
            let name = path.trim_start_matches("/load/");
            assert!(
                names.contains(name),
                "server {i} lacks acknowledged {path} ({} acknowledged)\n{}",
                acked.len(),
                ensemble.logs()
            );
        }
        seen.push(names);
    }
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "servers disagree after sync"
    );
}

#[test]
fn a_follower_catches_up_by_snapshot_after_retention_dropped_what_it_missed() {
    // snapCount=20 keeps 60 entries behind the applied index (3 × 20).
    let mut ensemble = LocalEnsemble::start(3, &["snapCount=20"]);
    let leader = ensemble.await_leader(Duration::from_secs(30));
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    ensemble.kill9(follower);

    let mut client = ensemble.client(other);
    let requests: Vec<Request> = (0..400)
        .map(|n| create_request(&format!("/n{n}"), Some(n.to_string().into_bytes()), 0))
        .collect();
    for reply in client.call_all(&requests).unwrap() {
        assert_eq!(reply.error(), ErrorCode::Ok);
    }
    let expected = children(&mut client, "/");

    ensemble.restart(follower);
    ensemble.await_leader(Duration::from_secs(30));
    let mut caught_up = ensemble.client(follower);
    assert_eq!(children(&mut caught_up, "/"), expected);
    match caught_up.get_data("/n399").unwrap() {
        Ok((data, _)) => assert_eq!(data.as_deref(), Some(&b"399"[..])),
        Err(e) => panic!("/n399 on the caught-up follower: {e:?}"),
    }
    let log = ensemble.members[follower].process.as_ref().unwrap().log();
    assert!(
        log.contains("installed a snapshot from the leader"),
        "the follower caught up without a snapshot:\n{log}"
    );
    // And it takes part again: writes through it work.
    assert_eq!(
        caught_up.create("/after", b"").unwrap().error(),
        ErrorCode::Ok
    );
}

#[test]
fn a_server_cut_off_from_the_others_stops_serving_and_rejoins() {
    let ensemble = LocalEnsemble::start(3, &[]);
    let leader = ensemble.await_leader(Duration::from_secs(30));
    // Cut the leader off: freeze both followers.
    let followers = [(leader + 1) % 3, (leader + 2) % 3];
    let mut client = ensemble.client(leader);
    for &f in &followers {
        ensemble.freeze(f, true);
    }
    // A write to the isolated leader cannot commit: it is never
    // acknowledged (the connection closes once the leader steps down).
    let reply = client.call(&create_request("/isolated", None, 0));
    assert!(
        !matches!(&reply, Ok(r) if r.error() == ErrorCode::Ok),
        "an isolated server acknowledged a write: {reply:?}"
    );
    ensemble.await_not_serving(&[leader], Duration::from_secs(10));
    assert!(
        RawClient::connect(ensemble.addr(leader), 5_000).is_err(),
        "an isolated server opened a session"
    );
    for &f in &followers {
        ensemble.freeze(f, false);
    }
    ensemble.await_leader(Duration::from_secs(30));
    // (The unacknowledged /isolated may still commit now: it reached the
    // followers' socket buffers while they were frozen. An unacknowledged
    // write may land or not; what matters is that it was not acknowledged
    // while it could not be committed.)
    let mut client = ensemble.client(leader);
    let reply = client.call(&create_request("/rejoined", None, 0)).unwrap();
    assert_eq!(reply.error(), ErrorCode::Ok);
    let exists = client
        .call(&Request::Exists(proto::PathWatchRequest {
            path: "/rejoined".into(),
            watch: false,
        }))
        .unwrap();
    assert_eq!(exists.error(), ErrorCode::Ok);
}

/// As in Kubernetes, where the operator sets `quorumListenOnAllIPs=true`:
/// servers listen at once and keep trying to reach their peers.
#[test]
fn servers_started_before_their_peers_names_resolve_join_once_they_do() {
    names_resolve_late(true);
}

/// Without `quorumListenOnAllIPs`, a server listens on its own line's
/// address: it waits for its own name to resolve, and says so.
#[test]
fn a_server_waits_for_its_own_name_to_resolve_before_listening() {
    names_resolve_late(false);
}

fn names_resolve_late(listen_on_all_ips: bool) {
    if !running_as_root() {
        eprintln!("skipped: needs root for a private /etc/hosts (unshare --mount)");
        return;
    }
    let hosts = std::env::temp_dir().join(format!(
        "conclave-hosts-{}-{listen_on_all_ips}",
        std::process::id()
    ));
    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let name = |id: u64| format!("conclave-peer-{id}.test");
    let extra: &[&str] = if listen_on_all_ips {
        &["quorumListenOnAllIPs=true"]
    } else {
        &[]
    };
    let ensemble = LocalEnsemble::spawn_all(3, 0, extra, name, Some(hosts.clone()));
    // Nobody can resolve anybody: every server keeps trying and says so.
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..3 {
        loop {
            let log = ensemble.members[i].process.as_ref().unwrap().log();
            let said = if listen_on_all_ips {
                log.contains("peer not reachable") && log.contains("cannot resolve")
            } else {
                log.contains("own host name does not resolve yet")
            };
            if said {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "server {i} does not say so:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(ensemble.mode(i), None, "server {i} serves without peers");
    }
    // The names appear (as a pod's DNS name does once the pod exists),
    // written in place so that the bind mounts see it.
    std::fs::write(
        &hosts,
        "127.0.0.1 localhost\n127.0.0.1 conclave-peer-1.test conclave-peer-2.test conclave-peer-3.test\n",
    )
    .unwrap();
    ensemble.await_leader(Duration::from_secs(30));
    let mut client = ensemble.client(0);
    assert_eq!(
        client.create("/joined", b"").unwrap().error(),
        ErrorCode::Ok
    );
    let _ = std::fs::remove_file(&hosts);
}

#[test]
fn an_observer_learns_every_write_forwards_its_own_and_never_votes() {
    let mut ensemble = LocalEnsemble::start_with_observers(3, 1, &[]);
    let observer = 3;
    assert_eq!(ensemble.mode(observer).as_deref(), Some("observer"));
    let leader = ensemble.await_leader(Duration::from_secs(30));
    let mut on_leader = ensemble.client(leader);
    let mut on_observer = ensemble.client(observer);
    assert_eq!(on_leader.create("/a", b"1").unwrap().error(), ErrorCode::Ok);
    assert_eq!(
        on_observer.create("/b", b"2").unwrap().error(),
        ErrorCode::Ok
    );
    let names = children(&mut on_observer, "/");
    assert!(names.contains("a") && names.contains("b"), "{names:?}");
    assert!(children(&mut on_leader, "/").contains("b"));
    drop((on_leader, on_observer));

    // With two of the three voters down there is no quorum, observer or
    // not: the observer never counts.
    let voters: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    ensemble.kill9(leader);
    ensemble.kill9(voters[0]);
    ensemble.await_not_serving(&[observer, voters[1]], Duration::from_secs(15));
    ensemble.restart(leader);
    ensemble.await_leader(Duration::from_secs(30));
    assert_ne!(ensemble.mode(observer).as_deref(), Some("leader"));
    let mut on_observer = ensemble.client(observer);
    assert_eq!(
        on_observer.create("/c", b"3").unwrap().error(),
        ErrorCode::Ok
    );
}

#[test]
fn a_session_on_a_follower_lives_while_used_and_expires_through_the_leader() {
    let ensemble = LocalEnsemble::start(3, &[]);
    let leader = ensemble.await_leader(Duration::from_secs(30));
    let follower = (leader + 1) % 3;
    let watcher = (leader + 2) % 3;
    // tickTime=200: a 1 s session times out after 5 ticks.
    let mut session = RawClient::connect(ensemble.addr(follower), 1_000).unwrap();
    assert_eq!(session.timeout_ms, 1_000);
    let reply = session.call(&create_request("/mine", None, 1)).unwrap();
    assert_eq!(reply.error(), ErrorCode::Ok);
    let mut other = ensemble.client(watcher);
    // Used for three timeouts: the follower reports the activity to the
    // leader, which keeps the session.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let exists = session
            .call(&Request::Exists(proto::PathWatchRequest {
                path: "/mine".into(),
                watch: false,
            }))
            .unwrap();
        assert_eq!(exists.error(), ErrorCode::Ok);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(children(&mut other, "/").contains("mine"));
    // Abandoned: the leader expires it, and its ephemeral goes everywhere.
    let abandoned = Instant::now();
    loop {
        if !children(&mut other, "/").contains("mine") {
            break;
        }
        assert!(
            abandoned.elapsed() < Duration::from_secs(10),
            "the abandoned session's ephemeral is still there"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        abandoned.elapsed() >= Duration::from_millis(500),
        "expired before its timeout"
    );
    drop(session);
}

/// A session created through the leader is re-opened on a follower that
/// has heard nothing from the leader since (its link from the leader held,
/// as a slow follower is): the follower must not call it expired. It
/// answers once it has caught up with the leader's commit point, and the
/// session goes on there.
#[test]
fn a_session_reopened_on_a_follower_that_has_not_applied_its_creation_is_kept() {
    let (ensemble, links) = LocalEnsemble::start_proxied(3, &[]);
    let leader = ensemble.await_leader(Duration::from_secs(30));
    let lagging = (leader + 1) % 3;
    links.block(leader, lagging);
    let created = RawClient::connect(ensemble.addr(leader), 10_000).unwrap();
    let (session_id, password) = (created.session_id, created.password.clone());
    drop(created);
    let resumed = std::thread::scope(|scope| {
        scope.spawn(|| {
            // Well within an election timeout (tickTime=200): the lagging
            // follower still has its leader, and serves.
            std::thread::sleep(Duration::from_millis(300));
            links.heal();
        });
        RawClient::resume(ensemble.addr(lagging), session_id, &password, 10_000).unwrap()
    });
    let Connected::Session(mut resumed) = resumed else {
        panic!("a live session was called expired by a follower that lagged");
    };
    assert_eq!(resumed.session_id, session_id);
    assert_eq!(
        resumed
            .call(&create_request("/resumed", None, 1))
            .unwrap()
            .error(),
        ErrorCode::Ok
    );
}

#[test]
fn a_partitioned_leader_steps_down_and_the_majority_goes_on() {
    let (ensemble, links) = LocalEnsemble::start_proxied(3, &[]);
    let old = ensemble.await_leader(Duration::from_secs(30));
    let mut on_old = ensemble.client(old);
    links.isolate(old, 3);
    // The majority elects a leader of its own and takes writes.
    let majority: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    ensemble.await_leader_among(&majority, Duration::from_secs(15));
    let mut on_majority = ensemble.client(majority[0]);
    assert_eq!(
        on_majority.create("/majority", b"").unwrap().error(),
        ErrorCode::Ok
    );
    // The cut-off leader commits nothing and stops serving.
    let reply = on_old.call(&create_request("/minority", None, 0));
    assert!(
        !matches!(&reply, Ok(r) if r.error() == ErrorCode::Ok),
        "a partitioned leader acknowledged a write: {reply:?}"
    );
    ensemble.await_not_serving(&[old], Duration::from_secs(15));
    links.heal();
    let leader = ensemble.await_leader(Duration::from_secs(30));
    assert_ne!(leader, old, "the partitioned leader won back leadership");
    let views: Vec<BTreeSet<String>> = (0..3)
        .map(|i| children(&mut ensemble.client(i), "/"))
        .collect();
    assert!(views[0].contains("majority"), "{views:?}");
    assert!(views.windows(2).all(|w| w[0] == w[1]), "{views:?}");
}

#[test]
fn a_leader_that_cannot_send_is_replaced_and_follows_after_healing() {
    let (ensemble, links) = LocalEnsemble::start_proxied(3, &[]);
    let old = ensemble.await_leader(Duration::from_secs(30));
    // Asymmetric: the leader hears the others, they do not hear it.
    for other in (0..3).filter(|&i| i != old) {
        links.block(old, other);
    }
    let others: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    let writer = ensemble.await_leader_among(&others, Duration::from_secs(15));
    let mut client = ensemble.client(writer);
    for n in 0..20 {
        let reply = client.create(&format!("/during{n}"), b"").unwrap();
        assert_eq!(reply.error(), ErrorCode::Ok);
    }
    links.heal();
    ensemble.await_leader(Duration::from_secs(30));
    let mut on_old = ensemble.client(old);
    let names = children(&mut on_old, "/");
    for n in 0..20 {
        assert!(names.contains(&format!("during{n}")), "{names:?}");
    }
}

/// A leader stopped (SIGSTOP, a long GC pause) past an election, under
/// concurrent writes, and resumed: the others elected a successor, and the
/// old leader steps down whatever its log writer held (once, its unsynced
/// entries and the new leader's overwriting ones from the same index met in
/// one batch, and the store refused it: the process died). Four pauses of
/// 3.5 to 5.6 s; every server still runs and no acknowledged write is lost.
#[test]
fn a_leader_paused_past_an_election_steps_down_cleanly_when_it_resumes() {
    let mut ensemble = LocalEnsemble::start(3, &[]);
    let leader = ensemble.await_leader(Duration::from_secs(30));
    let mut setup = ensemble.client(leader);
    assert_eq!(setup.create("/load", b"").unwrap().error(), ErrorCode::Ok);
    drop(setup);
    let addrs = Arc::new(Mutex::new((0..3).map(|i| ensemble.addr(i)).collect()));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..3)
        .map(|id| {
            let (addrs, stop, acked) = (addrs.clone(), stop.clone(), acked.clone());
            std::thread::spawn(move || writer(addrs, id, stop, acked))
        })
        .collect();
    for round in 0..4u64 {
        std::thread::sleep(Duration::from_millis(700));
        let paused = ensemble.await_leader(Duration::from_secs(30));
        ensemble.freeze(paused, true);
        std::thread::sleep(Duration::from_millis(3500 + 700 * round));
        ensemble.freeze(paused, false);
        let before = acked.lock().unwrap().len();
        let deadline = Instant::now() + Duration::from_secs(30);
        while acked.lock().unwrap().len() < before + 20 {
            assert!(
                Instant::now() < deadline,
                "writes stalled\n{}",
                ensemble.logs()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        for (i, m) in ensemble.members.iter_mut().enumerate() {
            let process = m.process.as_mut().unwrap();
            assert!(process.running(), "server {i} died:\n{}", process.log());
        }
    }
    stop.store(true, Ordering::Relaxed);
    for (id, w) in writers.into_iter().enumerate() {
        assert_eq!(w.join().unwrap(), 0, "writer {id}'s session expired");
    }
    ensemble.await_leader(Duration::from_secs(30));
    let acked = acked.lock().unwrap().clone();
    for i in 0..3 {
        let names = children(&mut ensemble.client(i), "/load");
        let missing = acked
            .iter()
            .filter(|p| !names.contains(p.trim_start_matches("/load/")))
            .count();
        assert_eq!(missing, 0, "server {i} lacks acknowledged writes");
    }
    eprintln!(
        "{} acknowledged writes through four leader pauses",
        acked.len()
    );
}

/// The leader cut off from both followers for just under an election
/// timeout, then healed: it stepped down (check-quorum) while the followers,
/// still hearing its delayed heartbeats, would refuse every pre-vote until
/// its lease ran out (2 to 6 s without a leader). It tells them it stepped
/// down, and a leader serves again within one election timeout (at most
/// 2 × syncLimit/2 ticks: 1 s here).
#[test]
fn after_a_short_partition_a_leader_serves_again_within_an_election_timeout() {
    let (ensemble, links) = LocalEnsemble::start_proxied(3, &[]);
    for round in 0..3 {
        let leader = ensemble.await_leader(Duration::from_secs(30));
        links.isolate(leader, 3);
        std::thread::sleep(Duration::from_millis(470));
        links.heal();
        let healed = Instant::now();
        let mut served = None;
        while served.is_none() && healed.elapsed() < Duration::from_secs(10) {
            for i in 0..3 {
                if ensemble.mode(i).as_deref() == Some("leader")
                    && let Ok(mut client) = RawClient::connect(ensemble.addr(i), 5_000)
                    && let Ok(reply) = client.create(&format!("/after{round}-{i}"), b"")
                    && reply.error() == ErrorCode::Ok
                {
                    served = Some(healed.elapsed());
                    break;
                }
            }
        }
        let took = served.unwrap_or_else(|| panic!("no leader served\n{}", ensemble.logs()));
        eprintln!("round {round}: a leader took a write {took:?} after the partition healed");
        assert!(
            took < Duration::from_millis(1300),
            "a leader served only {took:?} after healing\n{}",
            ensemble.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A session re-open on a follower whose leader is gone (frozen, so the
/// follower has not noticed yet) is not answered from the follower's own
/// copy: it waits for a ReadIndex round the leader never answers, and is
/// refused once the follower knows there is no leader, as a ZooKeeper
/// follower that asks its leader first. The client then re-opens it on a
/// server with a leader.
#[test]
fn a_session_reopened_on_a_follower_whose_leader_is_gone_is_not_answered_locally() {
    let ensemble = LocalEnsemble::start(3, &[]);
    let leader = ensemble.await_leader(Duration::from_secs(30));
    let follower = (leader + 1) % 3;
    let created = RawClient::connect(ensemble.addr(leader), 10_000).unwrap();
    let (session_id, password) = (created.session_id, created.password.clone());
    drop(created);
    ensemble.freeze(leader, true);
    let started = Instant::now();
    let outcome = RawClient::resume(ensemble.addr(follower), session_id, &password, 10_000);
    let took = started.elapsed();
    match outcome {
        Ok(Connected::Session(_)) => assert!(
            took > Duration::from_millis(400),
            "re-opened after {took:?} while the leader was frozen: answered without it"
        ),
        Ok(Connected::Expired) => panic!("a live session was called expired"),
        Err(_) => {}
    }
    ensemble.freeze(leader, false);
    let others: Vec<usize> = (0..3).collect();
    let now = ensemble.await_leader_among(&others, Duration::from_secs(30));
    let resumed = RawClient::resume(ensemble.addr(now), session_id, &password, 10_000).unwrap();
    assert!(matches!(resumed, Connected::Session(_)));
}

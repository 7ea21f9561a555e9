//! Restarts of the real binary on the same data directory: sessions and
//! their ephemerals survive a SIGKILL (a session re-opened within its
//! timeout keeps them, one that is not re-opened expires after the restart,
//! one that was closed stays closed), and a store whose old log entries
//! were dropped by retention (`snapCount`) restarts with all its data,
//! SIGKILL included.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proto::{CreateMode, OpCode, PathRequest, Request, Response, SetDataRequest, Stat};

use crate::raw_client::{Connected, RawClient, create_request, pipeline};
use crate::support::DataDir;

const CONFIG: &[&str] = &[
    "tickTime=100",
    "minSessionTimeout=200",
    "maxSessionTimeout=60000",
];

fn resume(addr: std::net::SocketAddr, client: &RawClient) -> Connected {
    RawClient::resume(addr, client.session_id, &client.password, client.timeout_ms).unwrap()
}

fn ephemerals(client: &mut RawClient) -> Vec<String> {
    let reply = client
        .call(&Request::GetEphemerals(PathRequest { path: "/".into() }))
        .unwrap();
    match reply.response(OpCode::GetEphemerals) {
        Response::GetEphemerals(mut r) => {
            r.ephemerals.sort();
            r.ephemerals
        }
        _ => panic!("getEphemerals: {:?}", reply.error()),
    }
}

fn stat_of(client: &mut RawClient, path: &str) -> Option<(Option<Vec<u8>>, Stat)> {
    client.get_data(path).unwrap().ok()
}

/// Polls until `path` is gone.
fn wait_gone(client: &mut RawClient, path: &str, limit: Duration) {
    let started = Instant::now();
    while stat_of(client, path).is_some() {
        assert!(
            started.elapsed() < limit,
            "{path} still there after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sessions_and_ephemerals_survive_sigkill() {
    let dir = DataDir::new("sessions");
    let server = dir.start(CONFIG);
    let addr = server.addr;

    // kept: 20 s, re-opened right after the restart.
    let mut kept = RawClient::connect(addr, 20_000).unwrap();
    assert_eq!(kept.create("/live", b"").unwrap().err, 0);
    let created = kept
        .call(&create_request(
            "/live/kept",
            Some(b"mine".to_vec()),
            CreateMode::Ephemeral.code(),
        ))
        .unwrap();
    assert_eq!(created.err, 0);
    let seq = kept
        .call(&create_request(
            "/live/kept-",
            None,
            CreateMode::EphemeralSequential.code(),
        ))
        .unwrap();
    let Response::Create2(seq) = seq.response(OpCode::Create2) else {
        panic!("create ephemeral sequential: {:?}", seq.error())
    };
    let (_, kept_stat) = stat_of(&mut kept, "/live/kept").unwrap();
    assert_eq!(kept_stat.ephemeral_owner, kept.session_id);
    // slow: a 2 s session, re-opened only after the server was down for
    // longer than that: a restarted server gives every session its full
    // timeout again (as ZooKeeper does).
    let mut slow = RawClient::connect(addr, 2_000).unwrap();
    let r = slow.call(&create_request(
        "/live/slow",
        None,
        CreateMode::Ephemeral.code(),
    ));
    assert_eq!(r.unwrap().err, 0);
    // abandoned: a 2 s session never re-opened: expires after the restart.
    let mut abandoned = RawClient::connect(addr, 2_000).unwrap();
    let r = abandoned.call(&create_request(
        "/live/abandoned",
        None,
        CreateMode::Ephemeral.code(),
    ));
    assert_eq!(r.unwrap().err, 0);
    // closed: closed before the crash; stays closed.
    let mut closed = RawClient::connect(addr, 20_000).unwrap();
    let r = closed.call(&create_request(
        "/live/closed",
        None,
        CreateMode::Ephemeral.code(),
    ));
    assert_eq!(r.unwrap().err, 0);
    let closed_id = (closed.session_id, closed.password.clone());
    assert!(closed.close_session());
    let last_zxid = kept.sync().unwrap().zxid;

    server.kill9();
    std::thread::sleep(Duration::from_millis(2_500));
    let server = dir.start(CONFIG);
    let restarted = Instant::now();

    // The kept session comes back with its ephemerals, unchanged.
    let Connected::Session(mut kept2) = resume(server.addr, &kept) else {
        panic!("the 20 s session did not survive the restart")
    };
    assert_eq!(kept2.session_id, kept.session_id);
    let (data, stat) = stat_of(&mut kept2, "/live/kept").expect("/live/kept after the restart");
    assert_eq!(data.as_deref(), Some(&b"mine"[..]));
    assert_eq!(
        stat, kept_stat,
        "the ephemeral's Stat changed across the restart"
    );
    assert!(stat_of(&mut kept2, &seq.path).is_some(), "{}", seq.path);
    assert_eq!(
        ephemerals(&mut kept2),
        vec!["/live/kept".to_owned(), seq.path.clone()]
    );

    // So does the slow one, although the server was down longer than its
    // timeout.
    let Connected::Session(mut slow2) = resume(server.addr, &slow) else {
        panic!("the 2 s session re-opened at once after the restart was expired")
    };
    assert_eq!(ephemerals(&mut slow2), vec!["/live/slow".to_owned()]);

    // The closed session's ephemeral is gone, and the session stays closed.
    assert!(stat_of(&mut kept2, "/live/closed").is_none());
    assert!(matches!(
        RawClient::resume(server.addr, closed_id.0, &closed_id.1, 20_000).unwrap(),
        Connected::Expired
    ));

    // The abandoned one expires about its timeout after the restart; the
    // others keep going.
    // (slow's client pings meanwhile, as a client library would.)
    while stat_of(&mut kept2, "/live/abandoned").is_some() {
        assert!(
            restarted.elapsed() < Duration::from_secs(10),
            "/live/abandoned is still there 10 s after the restart"
        );
        slow2.sync().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let since_restart = restarted.elapsed();
    assert!(
        since_restart >= Duration::from_millis(1_500),
        "the abandoned 2 s session expired {since_restart:?} after the restart"
    );
    assert!(matches!(
        resume(server.addr, &abandoned),
        Connected::Expired
    ));
    slow2.sync().unwrap();
    assert!(stat_of(&mut kept2, "/live/slow").is_some());

    // New writes continue above every zxid before the crash.
    let reply = kept2.create("/live/after", b"").unwrap();
    assert_eq!(reply.err, 0);
    assert!(
        reply.zxid > last_zxid,
        "{:#x} <= {last_zxid:#x}",
        reply.zxid
    );

    // An orderly restart keeps them too; closing the session then removes
    // its ephemerals for good.
    drop(slow2);
    assert!(server.terminate().success());
    let server = dir.start(CONFIG);
    let Connected::Session(mut kept3) = resume(server.addr, &kept) else {
        panic!("the session did not survive an orderly restart")
    };
    assert_eq!(
        ephemerals(&mut kept3),
        vec!["/live/kept".to_owned(), seq.path.clone()]
    );
    assert!(kept3.close_session());
    server.kill9();
    let server = dir.start(CONFIG);
    let mut checker = RawClient::connect(server.addr, 20_000).unwrap();
    let (children, _) = checker.children("/live").unwrap().unwrap();
    // slow's session: not re-opened since the last restart, but alive until
    // its timeout runs out.
    assert!(
        children == ["after", "slow"] || children == ["after"],
        "{children:?}"
    );
    wait_gone(&mut checker, "/live/slow", Duration::from_secs(10));
    assert!(matches!(resume(server.addr, &kept), Connected::Expired));
}

/// Every node of `/ret` with its data and Stat.
fn snapshot(client: &mut RawClient) -> BTreeMap<String, (Option<Vec<u8>>, Stat)> {
    let (children, _) = client.children("/ret").unwrap().unwrap();
    let mut out = BTreeMap::new();
    for name in children {
        let path = format!("/ret/{name}");
        out.insert(path.clone(), stat_of(client, &path).unwrap());
    }
    out
}

/// `log: first index F last index L` from `inspect`.
fn log_bounds(summary: &str) -> (u64, u64) {
    let line = summary
        .lines()
        .find(|l| l.starts_with("log:"))
        .unwrap_or_else(|| panic!("no log line in:\n{summary}"));
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 2, "{line}");
    (numbers[0], numbers[1])
}

#[test]
fn restart_after_retention_dropped_old_entries() {
    const SNAP_COUNT: u64 = 50;
    // snapCount × autopurge.snapRetainCount (default 3).
    const RETAINED: u64 = 3 * SNAP_COUNT;
    let config = ["snapCount=50"];
    let dir = DataDir::new("retention");
    let server = dir.start(&config);
    let mut client = RawClient::connect(server.addr, 30_000).unwrap();
    assert_eq!(client.create("/ret", b"").unwrap().err, 0);
    // 300 transactions: 100 creates, then two sets of each node.
    let mut requests: Vec<Request> = (0..100)
        .map(|i| create_request(&format!("/ret/n{i:03}"), Some(vec![b'c'; i]), 0))
        .collect();
    for round in 1..=2 {
        for i in 0..100 {
            requests.push(Request::SetData(SetDataRequest {
                path: format!("/ret/n{i:03}"),
                data: Some(format!("n{i} set {round}").into_bytes()),
                version: round - 1,
            }));
        }
    }
    for reply in client.call_all(&requests).unwrap() {
        assert_eq!(reply.err, 0);
    }
    let before = snapshot(&mut client);
    let last_zxid = client.sync().unwrap().zxid;
    assert!(last_zxid > 300);
    drop(client);
    assert!(server.terminate().success());

    // The log starts well after 1 and keeps at least the retained entries
    // (compaction runs in steps, so at most three times as many).
    let inspected = dir.inspect(true);
    assert!(inspected.status.success(), "{}", inspected.stderr);
    let (first, last) = log_bounds(&inspected.stdout);
    assert!(first > 1, "nothing was compacted:\n{}", inspected.stdout);
    assert!(
        (RETAINED..=3 * RETAINED).contains(&(last - first + 1)),
        "log {first}..={last} retaining {RETAINED}"
    );
    assert!(
        inspected
            .stdout
            .contains(&format!("compacted:        through index {}", first - 1)),
        "{}",
        inspected.stdout
    );
    // Entry lines: "<index> term <term> zxid ...".
    let printed: Vec<&str> = inspected
        .stdout
        .lines()
        .filter(|l| {
            let mut words = l.split_whitespace();
            words.next().is_some_and(|w| w.parse::<u64>().is_ok()) && words.next() == Some("term")
        })
        .collect();
    assert_eq!(
        printed.len() as u64,
        last - first + 1,
        "one line per retained entry"
    );
    assert!(
        printed[0].trim_start().starts_with(&format!("{first} ")),
        "{}",
        printed[0]
    );

    // Restart: everything is there, and the server keeps serving.
    let server = dir.start(&config);
    let mut client = RawClient::connect(server.addr, 30_000).unwrap();
    assert_eq!(
        snapshot(&mut client),
        before,
        "data changed across the restart"
    );
    let reply = client.create("/ret/after", b"x").unwrap();
    assert_eq!(reply.err, 0);
    assert!(reply.zxid > last_zxid);

    // Pipelined writes, SIGKILL right after the last acknowledgement (the
    // entries after the applied marker are replayed): all there again, and
    // retention went on.
    let mut i = 0;
    let written = pipeline(client, 16, || {
        i += 1;
        (i <= 300).then(|| {
            Request::SetData(SetDataRequest {
                path: format!("/ret/n{:03}", i % 100),
                data: Some(format!("pipelined {i}").into_bytes()),
                version: -1,
            })
        })
    });
    assert_eq!(written.replies.len(), 300);
    assert!(written.replies.iter().all(|r| r.err == 0));
    let last_acked = written.replies.last().unwrap().zxid;
    server.kill9();

    let server = dir.start(&config);
    let mut client = RawClient::connect(server.addr, 30_000).unwrap();
    let after = snapshot(&mut client);
    for (i, reply) in written.replies.iter().enumerate().skip(200) {
        let i = i + 1;
        let path = format!("/ret/n{:03}", i % 100);
        let (data, stat) = &after[&path];
        assert_eq!(
            data.as_deref(),
            Some(format!("pipelined {i}").as_bytes()),
            "{path}"
        );
        assert_eq!(stat.mzxid, reply.zxid, "{path}");
        assert_eq!(stat.version, 5, "{path}");
    }
    assert!(client.sync().unwrap().zxid >= last_acked);
    server.kill9();
    let inspected = dir.inspect(false);
    assert!(inspected.status.success(), "{}", inspected.stderr);
    let (first2, last2) = log_bounds(&inspected.stdout);
    assert!(
        first2 > first && last2 > last,
        "{first}..{last} then {first2}..{last2}"
    );
    let retained = last2 - first2 + 1;
    assert!(retained <= 3 * RETAINED, "{first2}..={last2}");
}

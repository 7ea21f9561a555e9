//! `recover_alone` on in-memory stores laid out as a member's: a bootstrap
//! image, a term of entries (some past the durable commit index, one a
//! membership change), then the refusals.

use storage::memory::MemoryStore;
use storage::{EntryKind, HardState, Image, LogEntry, Store};
use tree::{CreateTxn, DataTree, Txn, TxnOp};

use super::*;
use crate::ensemble_config::Member;
use storage::recovery::{Replay, recover_with};

fn member(id: u64) -> Member {
    Member {
        id,
        host: format!("zk-{}", id - 1),
        quorum_port: 2888,
        election_port: 3888,
        role: MemberRole::Participant,
        client: Some(("0.0.0.0".into(), 2181)),
    }
}

fn create(path: &str, zxid: i64, parent_cversion: i32) -> Vec<u8> {
    storage::encode_txn(&Txn {
        session_id: 0,
        cxid: 0,
        zxid,
        time_ms: 0,
        op: TxnOp::Create(CreateTxn {
            path: path.to_owned(),
            data: Some(b"kept".to_vec()),
            acl: proto::Acl::open_unsafe(),
            ephemeral_owner: 0,
            parent_cversion,
            with_stat: false,
        }),
    })
}

/// Servers 1..=3 as a bootstrapped member holds them, then term 2: the
/// leader's empty entry (2), /a (3), a membership change (4), /b (5), with
/// the durable commit index at `commit`.
fn member_store(commit: u64) -> MemoryStore {
    let mut store = MemoryStore::new();
    let tree = DataTree::new();
    let membership = Membership::new(0x2_0000_0000, (1..=3).map(member).collect());
    let mut nodes: Vec<_> = tree
        .nodes()
        .map(|(p, n)| (p.to_owned(), storage::recovery::node_record(n)))
        .collect();
    for (path, record) in &mut nodes {
        if path == tree::CONFIG {
            record.data = Some(membership.render().into_bytes());
        }
    }
    nodes.sort_by(|a, b| a.0.cmp(&b.0));
    store
        .install_image(&Image {
            index: 1,
            term: 1,
            zxid: consensus::zxid::make_zxid(1, 0),
            nodes,
            sessions: Vec::new(),
        })
        .unwrap();
    let z = |counter| consensus::zxid::make_zxid(2, counter);
    let entry = |index, kind, data| LogEntry {
        index,
        term: 2,
        kind,
        data,
    };
    store
        .append(&[
            entry(2, EntryKind::Empty, Vec::new()),
            entry(3, EntryKind::Txn, create("/a", z(1), 1)),
            entry(4, EntryKind::Config, b"a membership change".to_vec()),
            entry(5, EntryKind::Txn, create("/b", z(3), 2)),
        ])
        .unwrap();
    store
        .set_hard_state(HardState {
            term: 2,
            vote: 1,
            commit,
        })
        .unwrap();
    store.set_config(b"voters=1,2,3;learners=").unwrap();
    store.sync().unwrap();
    store
}

fn reopened(store: Box<dyn Store>) -> storage::recovery::Recovered {
    recover_with(store, Replay::Committed).unwrap()
}

#[test]
fn the_survivor_keeps_its_whole_log_and_becomes_the_only_voter() {
    let store = member_store(3);
    let (report, store) = recover_alone(Box::new(store), 2, None).unwrap();
    assert_eq!(report.last_index, 5);
    assert_eq!(report.last_zxid, consensus::zxid::make_zxid(2, 3));
    assert_eq!(report.past_commit, 2);
    assert!(!report.resumed);
    assert_eq!(
        report.member,
        "server.2=zk-1:2888:3888:participant;0.0.0.0:2181"
    );
    assert!(report.previous.contains("server.3="), "{}", report.previous);

    let meta = store.meta();
    assert_eq!(
        meta.config.as_deref(),
        Some(&b"voters=2;learners=;server=2"[..])
    );
    assert_eq!(
        meta.hard_state,
        HardState {
            term: 2,
            vote: 0,
            commit: 5
        }
    );
    assert_eq!(meta.applied_index, 5);

    // A normal start finds everything, and a one-member membership that
    // its first term as leader will give a version.
    let recovered = reopened(store);
    for path in ["/a", "/b"] {
        assert!(recovered.tree.node(path).is_some(), "{path}");
    }
    let now = committed_membership(&recovered.tree).unwrap().unwrap();
    assert_eq!(now.version, 0);
    assert_eq!(now.members, vec![member(2)]);
}

#[test]
fn an_observer_survivor_becomes_a_participant_and_zoo_cfg_gives_a_missing_address() {
    let mut store = member_store(5);
    let mut observer = member(4);
    observer.role = MemberRole::Observer;
    let (report, _) = recover_alone(Box::new(store.clone()), 4, Some(observer)).unwrap();
    assert!(
        report.member.ends_with(":participant;0.0.0.0:2181"),
        "{}",
        report.member
    );

    store.set_config(b"voters=1,2,3;learners=").unwrap();
    assert!(matches!(
        recover_alone(Box::new(store), 4, None),
        Err(RecoverAloneError::NoAddress(4))
    ));
}

#[test]
fn an_interrupted_run_is_finished_by_running_it_again_as_the_same_server() {
    let mut store = member_store(3);
    store.set_config(b"recovering=2").unwrap();
    assert!(matches!(
        recover_alone(Box::new(store.clone()), 3, None),
        Err(RecoverAloneError::OtherServer { .. })
    ));
    let (report, store) = recover_alone(Box::new(store), 2, None).unwrap();
    assert!(report.resumed);
    assert_eq!(
        store.meta().config.as_deref(),
        Some(&b"voters=2;learners=;server=2"[..])
    );
}

#[test]
fn stores_that_cannot_be_the_survivor_are_refused_and_left_as_they_are() {
    type Expected = fn(&RecoverAloneError) -> bool;
    let cases: Vec<(MemoryStore, Expected)> = vec![
        (MemoryStore::new(), |e| {
            matches!(e, RecoverAloneError::NotAMember)
        }),
        (
            {
                let mut s = member_store(5);
                s.set_config(b"removed=300000004").unwrap();
                s
            },
            |e| matches!(e, RecoverAloneError::Removed),
        ),
        (
            {
                let mut s = member_store(5);
                s.set_config(b"voters=;learners=").unwrap();
                s
            },
            |e| matches!(e, RecoverAloneError::NeverJoined),
        ),
        (
            {
                let mut s = member_store(5);
                s.set_config(b"garbage").unwrap();
                s
            },
            |e| matches!(e, RecoverAloneError::BadRecord(_)),
        ),
    ];
    for (store, expected) in cases {
        let before = store.meta();
        let Err(err) = recover_alone(Box::new(store.clone()), 2, Some(member(2))) else {
            panic!("recovered a store it should have refused");
        };
        assert!(expected(&err), "{err}");
        assert_eq!(store.meta(), before);
    }
}

/// Not recover-alone's own, but the replay it bypasses: a normal start
/// leaves an unapplied membership change, and everything after it, to
/// raft-rs, which hands them over again as committed.
#[test]
fn a_normal_start_replays_up_to_the_first_unapplied_membership_change() {
    let recovered = reopened(Box::new(member_store(5)));
    assert_eq!(recovered.store.meta().applied_index, 3);
    assert!(recovered.tree.node("/a").is_some());
    assert!(recovered.tree.node("/b").is_none());
}

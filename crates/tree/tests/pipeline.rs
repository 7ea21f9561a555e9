//! Pipelined writes: preparing a run of writes against pending changes (as
//! the server does while earlier writes wait for the log) must produce
//! exactly the transactions, outcomes and tree that preparing and applying
//! them one at a time produces.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use proto::{
    Acl, CheckVersionRequest, CreateTtlRequest, DeleteRequest, Id, MultiOp, OpCode, SetDataRequest,
};
use tree::{Context, DataTree, Features, Pending, Txn, WriteRequest, apply, prepare};

const SESSIONS: [i64; 2] = [0x100, 0x200];
const PATHS: [&str; 5] = ["/a", "/a/b", "/a/b/c", "/d", "/d/e"];

#[derive(Debug, Clone)]
enum Op {
    Create(usize, i32),
    Delete(usize, i32),
    Set(usize, i32),
    Multi(Vec<(usize, u8)>),
    Close,
}

fn op() -> impl Strategy<Value = (usize, Op)> {
    let path = 0..PATHS.len();
    let version = prop_oneof![Just(-1), 0..3i32];
    let kind = prop_oneof![
        (
            path.clone(),
            prop_oneof![Just(0), Just(1), Just(2), Just(3), Just(4)]
        )
            .prop_map(|(p, f)| Op::Create(p, f)),
        (path.clone(), version.clone()).prop_map(|(p, v)| Op::Delete(p, v)),
        (path.clone(), version).prop_map(|(p, v)| Op::Set(p, v)),
        prop::collection::vec((path, 0..3u8), 1..4).prop_map(Op::Multi),
        Just(Op::Close),
    ];
    (0..SESSIONS.len(), kind)
}

fn create(path: &str, flags: i32) -> WriteRequest {
    let op = if flags == 4 {
        OpCode::CreateContainer
    } else {
        OpCode::Create2
    };
    WriteRequest::Create {
        op,
        request: CreateTtlRequest {
            path: path.to_owned(),
            data: Some(b"x".to_vec()),
            acl: Acl::open_unsafe(),
            flags,
            ttl: -1,
        },
    }
}

fn request(op: &Op) -> WriteRequest {
    match op {
        Op::Create(p, f) => create(PATHS[*p], *f),
        Op::Delete(p, v) => WriteRequest::Delete(DeleteRequest {
            path: PATHS[*p].into(),
            version: *v,
        }),
        Op::Set(p, v) => WriteRequest::SetData(SetDataRequest {
            path: PATHS[*p].into(),
            data: Some(vec![1, 2]),
            version: *v,
        }),
        Op::Multi(ops) => WriteRequest::Multi(
            ops.iter()
                .map(|(p, k)| match k {
                    0 => MultiOp::Create {
                        op: OpCode::Create,
                        request: proto::CreateRequest {
                            path: PATHS[*p].into(),
                            data: None,
                            acl: Acl::open_unsafe(),
                            flags: 2,
                        },
                    },
                    1 => MultiOp::Delete(DeleteRequest {
                        path: PATHS[*p].into(),
                        version: -1,
                    }),
                    _ => MultiOp::Check(CheckVersionRequest {
                        path: PATHS[*p].into(),
                        version: 0,
                    }),
                })
                .collect(),
        ),
        Op::Close => WriteRequest::CloseSession,
    }
}

fn ctx<'a>(session: i64, zxid: i64, auth: &'a [Id], features: &'a Features) -> Context<'a> {
    Context {
        session_id: session,
        cxid: 1,
        zxid,
        time_ms: 1000 + zxid,
        auth,
        features,
    }
}

fn start() -> DataTree {
    let mut tree = DataTree::new();
    let features = Features::default();
    for (i, session) in SESSIONS.iter().enumerate() {
        let request = WriteRequest::CreateSession {
            timeout_ms: 30_000,
            password: vec![i as u8; 16],
        };
        let zxid = tree.last_zxid() + 1;
        let txn = prepare(
            &tree,
            &mut Pending::new(),
            &request,
            &ctx(*session, zxid, &[], &features),
        );
        apply(&mut tree, &txn);
    }
    tree
}

fn snapshot(tree: &DataTree) -> Vec<(String, Option<proto::Stat>, Option<Vec<u8>>)> {
    let mut paths: Vec<String> = PATHS.iter().map(|p| (*p).to_owned()).collect();
    for p in PATHS {
        if let Some(n) = tree.node(p) {
            paths.extend(n.children.iter().map(|c| format!("{p}/{c}")));
        }
    }
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .map(|p| {
            let node = tree.node(&p);
            (p, node.map(|n| n.stat()), node.and_then(|n| n.data.clone()))
        })
        .collect()
}

proptest! {
    #[test]
    fn pipelined_prepare_equals_one_at_a_time(ops in prop::collection::vec(op(), 1..40)) {
        let features = Features::default();
        let auth = [Id::new("ip", "127.0.0.1")];

        // One at a time.
        let mut serial = start();
        let mut serial_txns: Vec<Txn> = Vec::new();
        let mut serial_outcomes = Vec::new();
        for (s, op) in &ops {
            let zxid = serial.last_zxid() + 1;
            let txn = prepare(&serial, &mut Pending::new(), &request(op), &ctx(SESSIONS[*s], zxid, &auth, &features));
            serial_outcomes.push(apply(&mut serial, &txn));
            serial_txns.push(txn);
        }

        // Everything prepared first, then applied in order.
        let mut piped = start();
        let mut pending = Pending::new();
        let base = piped.last_zxid();
        let piped_txns: Vec<Txn> = ops
            .iter()
            .enumerate()
            .map(|(i, (s, op))| {
                let zxid = base + 1 + i as i64;
                prepare(&piped, &mut pending, &request(op), &ctx(SESSIONS[*s], zxid, &auth, &features))
            })
            .collect();
        prop_assert_eq!(&piped_txns, &serial_txns);
        let mut piped_outcomes = Vec::new();
        for txn in &piped_txns {
            piped_outcomes.push(apply(&mut piped, txn));
            pending.applied(txn.zxid);
        }
        prop_assert!(pending.is_empty(), "every pending record is released by its apply");
        prop_assert_eq!(piped_outcomes, serial_outcomes);
        prop_assert_eq!(snapshot(&piped), snapshot(&serial));
    }
}

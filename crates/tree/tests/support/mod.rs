//! A small harness shared by the tree crate's semantics tests.
//!
//! [`Harness`] owns a [`DataTree`], a zxid counter (the tree's last zxid) and
//! a fake clock, and runs every write exactly as the server does: `prepare`
//! against the committed tree with zxid = last zxid + 1, then `apply`.
//! Failed writes consume their zxid too. Every transaction is also applied to
//! a replica, and after each write the harness checks the invariants that
//! must hold whatever the operation was (purity of `prepare`, identical
//! replicas, consistent indexes, reachable nodes, outcome stats that match
//! the tree).
//!
//! Cases are tables: a [`Case`] is a list of [`Step`]s (writes with their
//! expected outcome and watch changes, and assertions on Stat fields, data,
//! ACLs, indexes and reap candidates).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use proto::{
    Acl, CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, ErrorCode, Id,
    MultiOp, OpCode, SetAclRequest, SetDataRequest, Stat, perms,
};
use tree::node::owner;
use tree::{Applied, Change, Context, DataTree, Features, Node, Outcome, Txn, WriteRequest};

/// Wall-clock start of every harness.
pub(crate) const T0: i64 = 1_700_000_000_000;
/// The clock moves this far before every write, so each write has its own time.
pub(crate) const AUTO_TICK: i64 = 10;
/// Sessions the standard harness creates, at zxids 1 and 2.
pub(crate) const S1: i64 = 0x0100_0000_0000_0001;
pub(crate) const S2: i64 = 0x0100_0000_0000_0002;
/// A session id nobody ever created.
pub(crate) const NOBODY: i64 = 0x0dea_d000_0000_0001;
/// The identity every connection starts with.
pub(crate) const LOCALHOST: &str = "127.0.0.1";

/// `CreateMode` flags.
pub(crate) mod flags {
    pub(crate) const PERSISTENT: i32 = 0;
    pub(crate) const EPHEMERAL: i32 = 1;
    pub(crate) const SEQUENTIAL: i32 = 2;
    pub(crate) const EPHEMERAL_SEQUENTIAL: i32 = 3;
    pub(crate) const CONTAINER: i32 = 4;
    pub(crate) const TTL: i32 = 5;
    pub(crate) const TTL_SEQUENTIAL: i32 = 6;
}

pub(crate) fn extended() -> Features {
    Features {
        extended_types: true,
        ..Features::default()
    }
}

// --- ACLs and identities ------------------------------------------------

pub(crate) fn open() -> Vec<Acl> {
    Acl::open_unsafe()
}

pub(crate) fn world(perms: i32) -> Vec<Acl> {
    vec![Acl::new(perms, "world", "anyone")]
}

pub(crate) fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
    Acl::new(perms, scheme, id)
}

/// The digest identity `user:password` authenticates as.
pub(crate) fn digest_id(user_password: &str) -> Id {
    Id::new("digest", tree::acl::digest(user_password))
}

pub(crate) fn super_id() -> Id {
    Id::new("super", "")
}

pub(crate) const ALL_BUT_DELETE: i32 = perms::ALL & !perms::DELETE;
pub(crate) const ALL_BUT_ADMIN: i32 = perms::ALL & !perms::ADMIN;

// --- requests -------------------------------------------------------------

pub(crate) fn create_full(
    op: OpCode,
    path: &str,
    data: Option<&[u8]>,
    acl: Vec<Acl>,
    flags: i32,
    ttl: i64,
) -> WriteRequest {
    WriteRequest::Create {
        op,
        request: CreateTtlRequest {
            path: path.to_owned(),
            data: data.map(<[u8]>::to_vec),
            acl,
            flags,
            ttl,
        },
    }
}

/// create (1) with open ACL.
pub(crate) fn create(path: &str, data: &[u8], flags: i32) -> WriteRequest {
    create_full(OpCode::Create, path, Some(data), open(), flags, -1)
}

pub(crate) fn create_null(path: &str) -> WriteRequest {
    create_full(OpCode::Create, path, None, open(), flags::PERSISTENT, -1)
}

pub(crate) fn create_acl(path: &str, acl: Vec<Acl>) -> WriteRequest {
    create_full(OpCode::Create, path, Some(b""), acl, flags::PERSISTENT, -1)
}

pub(crate) fn create_eph_acl(path: &str, acl: Vec<Acl>) -> WriteRequest {
    create_full(OpCode::Create, path, Some(b""), acl, flags::EPHEMERAL, -1)
}

pub(crate) fn create2(path: &str, flags: i32) -> WriteRequest {
    create_full(OpCode::Create2, path, Some(b""), open(), flags, -1)
}

pub(crate) fn container(path: &str) -> WriteRequest {
    create_full(
        OpCode::CreateContainer,
        path,
        Some(b""),
        open(),
        flags::CONTAINER,
        -1,
    )
}

pub(crate) fn ttl(path: &str, flags: i32, ttl: i64) -> WriteRequest {
    create_full(OpCode::CreateTtl, path, Some(b""), open(), flags, ttl)
}

pub(crate) fn delete(path: &str, version: i32) -> WriteRequest {
    WriteRequest::Delete(DeleteRequest {
        path: path.to_owned(),
        version,
    })
}

pub(crate) fn set_data(path: &str, data: &[u8], version: i32) -> WriteRequest {
    WriteRequest::SetData(SetDataRequest {
        path: path.to_owned(),
        data: Some(data.to_vec()),
        version,
    })
}

pub(crate) fn set_null(path: &str, version: i32) -> WriteRequest {
    WriteRequest::SetData(SetDataRequest {
        path: path.to_owned(),
        data: None,
        version,
    })
}

pub(crate) fn set_acl(path: &str, acl: Vec<Acl>, version: i32) -> WriteRequest {
    WriteRequest::SetAcl(SetAclRequest {
        path: path.to_owned(),
        acl,
        version,
    })
}

pub(crate) fn check(path: &str, version: i32) -> WriteRequest {
    WriteRequest::Check(CheckVersionRequest {
        path: path.to_owned(),
        version,
    })
}

pub(crate) fn multi(ops: Vec<MultiOp>) -> WriteRequest {
    WriteRequest::Multi(ops)
}

pub(crate) fn delete_container(path: &str) -> WriteRequest {
    WriteRequest::DeleteContainer(path.to_owned())
}

pub(crate) fn close_session() -> WriteRequest {
    WriteRequest::CloseSession
}

/// The ops of a multi.
pub(crate) mod m {
    use super::*;

    pub(crate) fn create_op(op: OpCode, path: &str, flags: i32) -> MultiOp {
        MultiOp::Create {
            op,
            request: CreateRequest {
                path: path.to_owned(),
                data: Some(Vec::new()),
                acl: open(),
                flags,
            },
        }
    }

    pub(crate) fn create(path: &str, flags: i32) -> MultiOp {
        create_op(OpCode::Create, path, flags)
    }

    pub(crate) fn create2(path: &str, flags: i32) -> MultiOp {
        create_op(OpCode::Create2, path, flags)
    }

    pub(crate) fn ttl(path: &str, flags: i32, ttl: i64) -> MultiOp {
        MultiOp::CreateTtl(CreateTtlRequest {
            path: path.to_owned(),
            data: Some(Vec::new()),
            acl: open(),
            flags,
            ttl,
        })
    }

    pub(crate) fn delete(path: &str, version: i32) -> MultiOp {
        MultiOp::Delete(DeleteRequest {
            path: path.to_owned(),
            version,
        })
    }

    pub(crate) fn set(path: &str, data: &[u8], version: i32) -> MultiOp {
        MultiOp::SetData(SetDataRequest {
            path: path.to_owned(),
            data: Some(data.to_vec()),
            version,
        })
    }

    pub(crate) fn check(path: &str, version: i32) -> MultiOp {
        MultiOp::Check(CheckVersionRequest {
            path: path.to_owned(),
            version,
        })
    }
}

// --- the harness ------------------------------------------------------------

#[derive(Debug)]
pub(crate) struct Harness {
    pub(crate) tree: DataTree,
    /// Every transaction is applied here too; it must stay identical.
    pub(crate) replica: DataTree,
    pub(crate) features: Features,
    /// The fake clock (ms).
    pub(crate) now: i64,
    /// zxid -> the time its write was prepared with.
    pub(crate) times: BTreeMap<i64, i64>,
    /// Identities per session; every session also has `ip:127.0.0.1`.
    pub(crate) auth: BTreeMap<i64, Vec<Id>>,
    pub(crate) txns: Vec<Txn>,
    cxid: i32,
}

impl Harness {
    /// A fresh tree and no sessions.
    pub(crate) fn bare(features: Features) -> Self {
        let tree = DataTree::new();
        Harness {
            replica: tree.clone(),
            tree,
            features,
            now: T0,
            times: BTreeMap::from([(0, 0)]),
            auth: BTreeMap::new(),
            txns: Vec::new(),
            cxid: 0,
        }
    }

    /// A fresh tree with sessions [`S1`] (zxid 1) and [`S2`] (zxid 2).
    pub(crate) fn new(features: Features) -> Self {
        let mut h = Self::bare(features);
        h.create_session(S1);
        h.create_session(S2);
        h
    }

    pub(crate) fn create_session(&mut self, session: i64) {
        let password = session.to_be_bytes().repeat(2);
        let request = WriteRequest::CreateSession {
            timeout_ms: 30_000,
            password: password.clone(),
        };
        let (_, applied) = self.write(session, &request);
        assert_eq!(applied.outcome, Outcome::SessionCreated);
        let record = self.tree.session(session).expect("session recorded");
        assert_eq!((record.timeout_ms, &record.password), (30_000, &password));
    }

    pub(crate) fn ids(&self, session: i64) -> Vec<Id> {
        let mut ids = vec![Id::new("ip", LOCALHOST)];
        ids.extend(self.auth.get(&session).into_iter().flatten().cloned());
        ids
    }

    /// Runs one write the way the server does and checks the invariants.
    pub(crate) fn write(&mut self, session: i64, request: &WriteRequest) -> (Txn, Applied) {
        self.now += AUTO_TICK;
        self.cxid += 1;
        let zxid = self.tree.last_zxid() + 1;
        let auth = self.ids(session);
        let ctx = Context {
            session_id: session,
            cxid: self.cxid,
            zxid,
            time_ms: self.now,
            auth: &auth,
            features: &self.features,
        };
        // Applied at once, so nothing stays pending between writes; a
        // fresh `Pending` each time also checks that prepare is pure.
        let txn = tree::prepare(&self.tree, &mut tree::Pending::new(), request, &ctx);
        assert_eq!(
            txn,
            tree::prepare(&self.tree, &mut tree::Pending::new(), request, &ctx),
            "prepare must be pure"
        );
        assert_eq!(
            (txn.zxid, txn.time_ms, txn.session_id, txn.cxid),
            (zxid, self.now, session, self.cxid),
            "the txn carries the values the leader fixed"
        );
        let applied = tree::apply(&mut self.tree, &txn);
        let on_replica = tree::apply(&mut self.replica, &txn);
        assert_eq!(applied, on_replica, "replicas must agree on the outcome");
        assert_eq!(self.tree.last_zxid(), zxid, "every write consumes its zxid");
        self.times.insert(zxid, self.now);
        self.txns.push(txn.clone());
        self.check_outcome_stats(request, &applied.outcome);
        check_consistency(&self.tree);
        (txn, applied)
    }

    /// A single op's reply Stat is the node's Stat right after the write.
    fn check_outcome_stats(&self, request: &WriteRequest, outcome: &Outcome) {
        let path = match (request, outcome) {
            (_, Outcome::Created { path, .. }) => path.as_str(),
            (WriteRequest::SetData(r), Outcome::DataSet { .. }) => r.path.as_str(),
            (WriteRequest::SetAcl(r), Outcome::AclSet { .. }) => r.path.as_str(),
            _ => return,
        };
        let stat = match outcome {
            Outcome::Created { stat, .. }
            | Outcome::DataSet { stat }
            | Outcome::AclSet { stat } => stat,
            _ => return,
        };
        assert_eq!(
            Some(stat),
            self.tree.stat(path).as_ref(),
            "reply Stat of {path}"
        );
    }

    /// The time the write with this zxid was prepared at (0 for zxid 0).
    pub(crate) fn time_of(&self, zxid: i64) -> i64 {
        *self
            .times
            .get(&zxid)
            .unwrap_or_else(|| panic!("no write with zxid {zxid}"))
    }
}

/// Every node reachable from `/`, by path.
pub(crate) fn snapshot(tree: &DataTree) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec!["/".to_owned()];
    while let Some(p) = stack.pop() {
        let node = tree
            .node(&p)
            .unwrap_or_else(|| panic!("{p} is listed as a child but missing"));
        stack.extend(node.children.iter().map(|c| tree::path::join(&p, c)));
        out.insert(p, node.clone());
    }
    out
}

/// The indexes beside the node map agree with the nodes, and every stored
/// node is reachable.
pub(crate) fn check_consistency(tree: &DataTree) {
    let nodes = snapshot(tree);
    assert_eq!(
        tree.node_count(),
        nodes.len() + 1,
        "unreachable nodes in the map"
    );
    // `DataTree.getNodeSize`: Java's `path.length()` (UTF-16 units) + data bytes.
    let size: i64 = nodes
        .iter()
        .map(|(p, n)| p.encode_utf16().count() as i64 + i64::from(n.data_len()))
        .sum();
    assert_eq!(tree.approximate_data_size(), size, "approximate data size");
    let mut ephemerals: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    let mut containers = BTreeSet::new();
    let mut ttls = BTreeSet::new();
    for (p, n) in &nodes {
        match owner::kind(n.stat.ephemeral_owner) {
            owner::Kind::Void => {}
            owner::Kind::Normal(s) => {
                ephemerals.entry(s).or_default().insert(p.clone());
            }
            owner::Kind::Container => {
                containers.insert(p.clone());
            }
            owner::Kind::Ttl(_) => {
                ttls.insert(p.clone());
            }
        }
    }
    assert_eq!(tree.ephemerals_by_session(), &ephemerals, "ephemeral index");
    assert_eq!(tree.containers(), &containers, "container index");
    assert_eq!(tree.ttls(), &ttls, "TTL index");
}

/// Two trees hold the same state.
pub(crate) fn assert_same_tree(a: &DataTree, b: &DataTree) {
    assert_eq!(snapshot(a), snapshot(b), "nodes differ");
    assert_eq!(a.sessions(), b.sessions(), "sessions differ");
    assert_eq!(a.ephemerals_by_session(), b.ephemerals_by_session());
    assert_eq!(a.containers(), b.containers());
    assert_eq!(a.ttls(), b.ttls());
    assert_eq!(a.last_zxid(), b.last_zxid());
    assert_eq!(a.approximate_data_size(), b.approximate_data_size());
    assert_eq!(a.node_count(), b.node_count());
}

// --- tables -------------------------------------------------------------

/// What a write must produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Anything.
    Any,
    /// Anything but `Outcome::Error`.
    Ok,
    Err(ErrorCode),
    /// Created at this path, with or without Stat.
    Created(&'static str),
    /// Created, reply without Stat (create, op 1).
    Plain(&'static str),
    /// Created, reply with Stat (create2 / container / TTL).
    WithStat(&'static str),
    Deleted,
    DataSet,
    AclSet,
    Checked,
    SessionClosed,
    Multi(Vec<Expect>),
}

impl Expect {
    fn matches(&self, outcome: &Outcome) -> bool {
        match (self, outcome) {
            (Expect::Any, _) => true,
            (Expect::Ok, o) => !matches!(o, Outcome::Error(_)),
            (Expect::Err(c), Outcome::Error(e)) => c == e,
            (Expect::Created(p), Outcome::Created { path, .. }) => p == path,
            (
                Expect::Plain(p),
                Outcome::Created {
                    path, with_stat, ..
                },
            ) => p == path && !with_stat,
            (
                Expect::WithStat(p),
                Outcome::Created {
                    path, with_stat, ..
                },
            ) => p == path && *with_stat,
            (Expect::Deleted, Outcome::Deleted)
            | (Expect::DataSet, Outcome::DataSet { .. })
            | (Expect::AclSet, Outcome::AclSet { .. })
            | (Expect::Checked, Outcome::Checked)
            | (Expect::SessionClosed, Outcome::SessionClosed) => true,
            (Expect::Multi(es), Outcome::Multi(os)) => {
                es.len() == os.len() && es.iter().zip(os).all(|(e, o)| e.matches(o))
            }
            _ => false,
        }
    }
}

/// A change that fires watches, reduced to paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ch {
    /// (path, parent as watches see it)
    Created(&'static str, &'static str),
    Deleted(&'static str, &'static str),
    DataChanged(&'static str),
}

fn same_change(expected: &Ch, actual: &Change) -> bool {
    match (expected, actual) {
        (Ch::Created(p, q), Change::Created { path, parent, .. })
        | (Ch::Deleted(p, q), Change::Deleted { path, parent, .. }) => p == path && q == parent,
        (Ch::DataChanged(p), Change::DataChanged { path, .. }) => p == path,
        _ => false,
    }
}

/// One Stat field; times name the zxid whose write set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum F {
    Czxid(i64),
    Mzxid(i64),
    Pzxid(i64),
    /// ctime = the time of the write with this zxid (0 for zxid 0).
    Ctime(i64),
    Mtime(i64),
    Version(i32),
    /// The client-visible (derived) cversion.
    Cversion(i32),
    /// The stored cversion (child creations ever).
    StoredCversion(i32),
    Aversion(i32),
    /// The client-visible ephemeralOwner.
    Owner(i64),
    DataLength(i32),
    NumChildren(i32),
}

#[derive(Debug, Clone)]
pub(crate) struct WriteStep {
    pub(crate) by: i64,
    pub(crate) request: WriteRequest,
    pub(crate) expect: Expect,
    pub(crate) changes: Option<Vec<Ch>>,
}

#[derive(Debug, Clone)]
pub(crate) enum Step {
    Write(WriteStep),
    /// Advance the clock.
    Tick(i64),
    /// Add an identity to a session's connection.
    Auth(i64, Id),
    Stat(&'static str, Vec<F>),
    Gone(&'static str),
    Exists(&'static str),
    Data(&'static str, Option<&'static [u8]>),
    Acl(&'static str, Vec<Acl>),
    /// The tree's last zxid.
    Zxid(i64),
    /// `reap_candidates(now, max_never_used_ms)`, as a set.
    Reap(i64, Vec<&'static str>),
    Ephemerals(i64, Vec<&'static str>),
    Containers(Vec<&'static str>),
    Ttls(Vec<&'static str>),
    NodeCount(usize),
    /// `approximate_data_size()`.
    DataSize(i64),
    /// Whether the session is in the tree's session table.
    Session(i64, bool),
}

/// A write by [`S1`] whose outcome is not checked (a setup step).
pub(crate) fn w(request: WriteRequest) -> Step {
    Step::Write(WriteStep {
        by: S1,
        request,
        expect: Expect::Any,
        changes: None,
    })
}

impl Step {
    fn write_mut(&mut self) -> &mut WriteStep {
        match self {
            Step::Write(w) => w,
            other => panic!("not a write step: {other:?}"),
        }
    }

    pub(crate) fn by(mut self, session: i64) -> Step {
        self.write_mut().by = session;
        self
    }

    pub(crate) fn expect(mut self, expect: Expect) -> Step {
        self.write_mut().expect = expect;
        self
    }

    pub(crate) fn ok(self) -> Step {
        self.expect(Expect::Ok)
    }

    pub(crate) fn err(self, code: ErrorCode) -> Step {
        self.expect(Expect::Err(code))
    }

    pub(crate) fn changes(mut self, changes: Vec<Ch>) -> Step {
        self.write_mut().changes = Some(changes);
        self
    }
}

pub(crate) fn stat(path: &'static str, fields: Vec<F>) -> Step {
    Step::Stat(path, fields)
}

#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) features: Features,
    /// Create [`S1`] and [`S2`] first (zxids 1 and 2).
    pub(crate) sessions: bool,
    pub(crate) steps: Vec<Step>,
}

impl Case {
    pub(crate) fn new(name: &'static str, steps: Vec<Step>) -> Case {
        Case {
            name,
            features: Features::default(),
            sessions: true,
            steps,
        }
    }

    pub(crate) fn features(mut self, features: Features) -> Case {
        self.features = features;
        self
    }

    /// No sessions: the first write gets zxid 1.
    pub(crate) fn bare(mut self) -> Case {
        self.sessions = false;
        self
    }
}

/// Runs every case of a table; returns how many ran.
pub(crate) fn run_table(cases: &[Case]) -> usize {
    let mut names = BTreeSet::new();
    for case in cases {
        assert!(names.insert(case.name), "duplicate case name {}", case.name);
        run(case);
    }
    cases.len()
}

pub(crate) fn run(case: &Case) -> Harness {
    let mut h = if case.sessions {
        Harness::new(case.features.clone())
    } else {
        Harness::bare(case.features.clone())
    };
    for (i, step) in case.steps.iter().enumerate() {
        if let Err(msg) = run_step(&mut h, step) {
            let mut dump = String::new();
            for (p, n) in snapshot(&h.tree) {
                let _ = writeln!(dump, "  {p}: {:?}", n.stat());
            }
            panic!(
                "case `{}`, step {i}: {msg}\n  step: {step:?}\n  tree:\n{dump}",
                case.name
            );
        }
    }
    assert_same_tree(&h.tree, &h.replica);
    h
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

fn run_step(h: &mut Harness, step: &Step) -> Result<(), String> {
    match step {
        Step::Write(ws) => {
            let (_, applied) = h.write(ws.by, &ws.request);
            if !ws.expect.matches(&applied.outcome) {
                return Err(format!(
                    "expected {:?}, got {:?}",
                    ws.expect, applied.outcome
                ));
            }
            if let Some(expected) = &ws.changes {
                let ok = expected.len() == applied.changes.len()
                    && expected
                        .iter()
                        .zip(&applied.changes)
                        .all(|(e, a)| same_change(e, a));
                if !ok {
                    return Err(format!(
                        "expected changes {expected:?}, got {:?}",
                        applied.changes
                    ));
                }
            }
        }
        Step::Tick(ms) => h.now += ms,
        Step::Auth(session, id) => h.auth.entry(*session).or_default().push(id.clone()),
        Step::Stat(path, fields) => {
            let node = h
                .tree
                .node(path)
                .ok_or_else(|| format!("{path} does not exist"))?;
            let s: Stat = node.stat();
            for f in fields {
                let (name, actual, expected) = match *f {
                    F::Czxid(z) => ("czxid", s.czxid, z),
                    F::Mzxid(z) => ("mzxid", s.mzxid, z),
                    F::Pzxid(z) => ("pzxid", s.pzxid, z),
                    F::Ctime(z) => ("ctime", s.ctime, h.time_of(z)),
                    F::Mtime(z) => ("mtime", s.mtime, h.time_of(z)),
                    F::Version(v) => ("version", s.version.into(), v.into()),
                    F::Cversion(v) => ("cversion", s.cversion.into(), v.into()),
                    F::StoredCversion(v) => {
                        ("stored cversion", node.stat.cversion.into(), v.into())
                    }
                    F::Aversion(v) => ("aversion", s.aversion.into(), v.into()),
                    F::Owner(o) => ("ephemeralOwner", s.ephemeral_owner, o),
                    F::DataLength(n) => ("dataLength", s.data_length.into(), n.into()),
                    F::NumChildren(n) => ("numChildren", s.num_children.into(), n.into()),
                };
                if actual != expected {
                    return Err(format!(
                        "{path}: {name} is {actual}, expected {expected} ({s:?})"
                    ));
                }
            }
        }
        Step::Gone(path) => {
            if h.tree.exists(path) {
                return Err(format!("{path} exists"));
            }
        }
        Step::Exists(path) => {
            if !h.tree.exists(path) {
                return Err(format!("{path} does not exist"));
            }
        }
        Step::Data(path, data) => {
            let node = h
                .tree
                .node(path)
                .ok_or_else(|| format!("{path} does not exist"))?;
            if node.data.as_deref() != *data {
                return Err(format!(
                    "{path}: data is {:?}, expected {data:?}",
                    node.data
                ));
            }
        }
        Step::Acl(path, acl) => {
            let node = h
                .tree
                .node(path)
                .ok_or_else(|| format!("{path} does not exist"))?;
            if node.acl.as_slice() != acl.as_slice() {
                return Err(format!("{path}: ACL is {:?}, expected {acl:?}", node.acl));
            }
        }
        Step::Zxid(z) => {
            if h.tree.last_zxid() != *z {
                return Err(format!("last zxid is {}, expected {z}", h.tree.last_zxid()));
            }
        }
        Step::Reap(max_never_used, expected) => {
            let mut got = h.tree.reap_candidates(h.now, *max_never_used);
            got.sort();
            if got != sorted(expected) {
                return Err(format!("reap candidates {got:?}, expected {expected:?}"));
            }
        }
        Step::Ephemerals(session, expected) => {
            let got: Vec<String> = h.tree.ephemerals_of(*session).cloned().collect();
            if got != sorted(expected) {
                return Err(format!(
                    "ephemerals of {session:#x}: {got:?}, expected {expected:?}"
                ));
            }
        }
        Step::Containers(expected) => {
            let got: Vec<String> = h.tree.containers().iter().cloned().collect();
            if got != sorted(expected) {
                return Err(format!("containers {got:?}, expected {expected:?}"));
            }
        }
        Step::Ttls(expected) => {
            let got: Vec<String> = h.tree.ttls().iter().cloned().collect();
            if got != sorted(expected) {
                return Err(format!("TTL nodes {got:?}, expected {expected:?}"));
            }
        }
        Step::NodeCount(n) => {
            if h.tree.node_count() != *n {
                return Err(format!("node count {}, expected {n}", h.tree.node_count()));
            }
        }
        Step::DataSize(n) => {
            if h.tree.approximate_data_size() != *n {
                return Err(format!(
                    "data size {}, expected {n}",
                    h.tree.approximate_data_size()
                ));
            }
        }
        Step::Session(session, live) => {
            if h.tree.session(*session).is_some() != *live {
                return Err(format!("session {session:#x} live: expected {live}"));
            }
        }
    }
    Ok(())
}

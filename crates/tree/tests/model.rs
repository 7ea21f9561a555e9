//! Property test: random sequences of creates, deletes, setData, checks,
//! multis and session open/close, run through prepare + apply, agree with a
//! simple reference model (path -> data, version, children, ...) on every
//! outcome and on the whole tree after every step; and replaying the
//! committed transactions on a fresh tree yields an identical tree and
//! identical outcomes.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proto::{ErrorCode as E, MultiOp, OpCode, perms};
use tree::{Applied, DataTree, Outcome, WriteRequest};

use support::*;

const UNIVERSE: &[&str] = &[
    "/",
    "/a",
    "/b",
    "/a/a",
    "/a/b",
    "/b/a",
    "/b/b",
    "/a/a/a",
    "/a/b/b",
    "/b/a/a",
    "/zookeeper",
    "/zookeeper/x",
    "/zookeeper/config",
    "/zookeeper/config/x",
    "/zookeeper/quota",
];

const SESSIONS: [i64; 2] = [S1, S2];

// --- the generated operations -------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Target {
    /// A path of [`UNIVERSE`].
    Fixed(usize),
    /// The n-th node that exists at the time (modulo the count); for
    /// creates, a child `k` of it.
    Existing(usize),
}

#[derive(Debug, Clone, Copy)]
enum Ver {
    Any,
    Exact,
    Wrong,
}

#[derive(Debug, Clone)]
enum Op {
    /// flags 0..=4 (4 = container).
    Create(Target, Option<Vec<u8>>, i32),
    Delete(Target, Ver),
    SetData(Target, Option<Vec<u8>>, Ver),
    Check(Target, Ver),
}

#[derive(Debug, Clone)]
enum Action {
    Single(usize, Op),
    Multi(usize, Vec<Op>),
    Close(usize),
    Open(usize),
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        (0..UNIVERSE.len()).prop_map(Target::Fixed),
        any::<u8>().prop_map(|i| Target::Existing(usize::from(i))),
    ]
}

fn ver() -> impl Strategy<Value = Ver> {
    prop_oneof![3 => Just(Ver::Exact), 3 => Just(Ver::Any), 1 => Just(Ver::Wrong)]
}

fn data() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![1 => Just(None), 4 => proptest::collection::vec(any::<u8>(), 0..6).prop_map(Some)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (target(), data(), 0..5i32).prop_map(|(t, d, f)| Op::Create(t, d, f)),
        2 => (target(), ver()).prop_map(|(t, v)| Op::Delete(t, v)),
        2 => (target(), data(), ver()).prop_map(|(t, d, v)| Op::SetData(t, d, v)),
        1 => (target(), ver()).prop_map(|(t, v)| Op::Check(t, v)),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        12 => (0..2usize, op()).prop_map(|(s, o)| Action::Single(s, o)),
        4 => (0..2usize, proptest::collection::vec(op(), 0..5)).prop_map(|(s, o)| Action::Multi(s, o)),
        1 => (0..2usize).prop_map(Action::Close),
        3 => (0..2usize).prop_map(Action::Open),
    ]
}

// --- the reference model ------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct MNode {
    data: Option<Vec<u8>>,
    version: i32,
    /// Child creations ever (the stored cversion).
    creations: i32,
    children: BTreeSet<String>,
    czxid: i64,
    mzxid: i64,
    /// Owning session for ephemerals, else 0.
    owner: i64,
    /// The perms of the node's single `world:anyone` entry.
    perms: i32,
}

#[derive(Debug, Clone)]
struct Model {
    nodes: BTreeMap<String, MNode>,
    sessions: BTreeSet<i64>,
}

/// A result as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum R {
    Created(String),
    Done,
    Err(E),
    Multi(Vec<R>),
}

fn result_of(outcome: &Outcome) -> R {
    match outcome {
        Outcome::Created { path, .. } => R::Created(path.clone()),
        Outcome::Error(code) => R::Err(*code),
        Outcome::Multi(results) => R::Multi(results.iter().map(result_of).collect()),
        Outcome::Deleted
        | Outcome::DataSet { .. }
        | Outcome::AclSet { .. }
        | Outcome::Checked
        | Outcome::SessionCreated
        | Outcome::SessionClosed => R::Done,
    }
}

fn parent(path: &str) -> String {
    tree::path::normalize(tree::path::parent_of(path).expect("absolute")).to_owned()
}

fn name(path: &str) -> String {
    tree::path::name_of(path).to_owned()
}

impl Model {
    fn from_tree(tree: &DataTree) -> Model {
        let nodes = snapshot(tree)
            .into_iter()
            .map(|(p, n)| {
                assert_eq!(n.acl.len(), 1);
                assert_eq!(
                    (n.acl[0].id.scheme.as_str(), n.acl[0].id.id.as_str()),
                    ("world", "anyone")
                );
                let node = MNode {
                    data: n.data.clone(),
                    version: n.stat.version,
                    creations: n.stat.cversion,
                    children: n.children.iter().map(|c| c.to_string()).collect(),
                    czxid: n.stat.czxid,
                    mzxid: n.stat.mzxid,
                    owner: 0,
                    perms: n.acl[0].perms,
                };
                (p, node)
            })
            .collect();
        Model {
            nodes,
            sessions: tree.sessions().keys().copied().collect(),
        }
    }

    fn paths(&self) -> Vec<&String> {
        self.nodes.keys().collect()
    }

    fn resolve(&self, t: Target, for_create: bool) -> String {
        match t {
            Target::Fixed(i) => UNIVERSE[i].to_owned(),
            Target::Existing(i) => {
                let paths = self.paths();
                let p = paths[i % paths.len()];
                if for_create {
                    tree::path::join(p, "k")
                } else {
                    p.clone()
                }
            }
        }
    }

    fn version(&self, path: &str, v: Ver) -> i32 {
        let current = self.nodes.get(path).map_or(0, |n| n.version);
        match v {
            Ver::Any => -1,
            Ver::Exact => current,
            Ver::Wrong => current + 1,
        }
    }

    /// Turns a generated op into a request, resolving paths and versions
    /// against the state the op will see.
    fn request(&self, op: &Op) -> WriteRequest {
        match op {
            Op::Create(t, d, flags) => {
                let code = if *flags == flags::CONTAINER {
                    OpCode::CreateContainer
                } else {
                    OpCode::Create
                };
                create_full(
                    code,
                    &self.resolve(*t, true),
                    d.as_deref(),
                    open(),
                    *flags,
                    -1,
                )
            }
            Op::Delete(t, v) => {
                let p = self.resolve(*t, false);
                delete(&p, self.version(&p, *v))
            }
            Op::SetData(t, d, v) => {
                let p = self.resolve(*t, false);
                let version = self.version(&p, *v);
                WriteRequest::SetData(proto::SetDataRequest {
                    path: p,
                    data: d.clone(),
                    version,
                })
            }
            Op::Check(t, v) => {
                let p = self.resolve(*t, false);
                check(&p, self.version(&p, *v))
            }
        }
    }

    fn multi_op(&self, op: &Op) -> MultiOp {
        match self.request(op) {
            WriteRequest::Create { request, .. } => MultiOp::Create {
                op: OpCode::Create,
                request: proto::CreateRequest {
                    path: request.path,
                    data: request.data,
                    acl: request.acl,
                    flags: request.flags,
                },
            },
            WriteRequest::Delete(r) => MultiOp::Delete(r),
            WriteRequest::SetData(r) => MultiOp::SetData(r),
            WriteRequest::Check(r) => MultiOp::Check(r),
            other => unreachable!("{other:?}"),
        }
    }

    fn version_ok(current: i32, expected: i32) -> bool {
        expected == -1 || expected == current
    }

    /// ZooKeeper's rules for one op, on this state.
    fn apply_one(&mut self, session: i64, request: &WriteRequest, zxid: i64) -> Result<R, E> {
        if !self.sessions.contains(&session) {
            return Err(E::SessionExpired);
        }
        match request {
            WriteRequest::Create { request, .. } => {
                let parent_path = parent(&request.path);
                let parent = self.nodes.get(&parent_path).ok_or(E::NoNode)?;
                if parent.perms & perms::CREATE == 0 {
                    return Err(E::NoAuth);
                }
                let path = if matches!(request.flags, 2 | 3) {
                    format!("{}{:010}", request.path, parent.creations)
                } else {
                    request.path.clone()
                };
                tree::path::validate_path(&path).map_err(|_| E::BadArguments)?;
                if self.nodes.contains_key(&path) {
                    return Err(E::NodeExists);
                }
                if parent.owner != 0 {
                    return Err(E::NoChildrenForEphemerals);
                }
                let parent = self.nodes.get_mut(&parent_path).expect("checked");
                parent.creations += 1;
                parent.children.insert(name(&path));
                let owner = if matches!(request.flags, 1 | 3) {
                    session
                } else {
                    0
                };
                let node = MNode {
                    data: request.data.clone(),
                    version: 0,
                    creations: 0,
                    children: BTreeSet::new(),
                    czxid: zxid,
                    mzxid: zxid,
                    owner,
                    perms: perms::ALL,
                };
                self.nodes.insert(path.clone(), node);
                Ok(R::Created(path))
            }
            WriteRequest::Delete(r) => {
                if DataTree::is_special_path(&r.path) {
                    return Err(E::BadArguments);
                }
                let parent_path = parent(&r.path);
                let parent = self.nodes.get(&parent_path).ok_or(E::NoNode)?;
                if parent.perms & perms::DELETE == 0 {
                    return Err(E::NoAuth);
                }
                let node = self.nodes.get(&r.path).ok_or(E::NoNode)?;
                if !Self::version_ok(node.version, r.version) {
                    return Err(E::BadVersion);
                }
                if !node.children.is_empty() {
                    return Err(E::NotEmpty);
                }
                self.remove(&r.path);
                Ok(R::Done)
            }
            WriteRequest::SetData(r) => {
                tree::path::validate_path(&r.path).map_err(|_| E::BadArguments)?;
                let node = self.nodes.get_mut(&r.path).ok_or(E::NoNode)?;
                if node.perms & perms::WRITE == 0 {
                    return Err(E::NoAuth);
                }
                if !Self::version_ok(node.version, r.version) {
                    return Err(E::BadVersion);
                }
                node.version += 1;
                node.data = r.data.clone();
                node.mzxid = zxid;
                Ok(R::Done)
            }
            WriteRequest::Check(r) => {
                tree::path::validate_path(&r.path).map_err(|_| E::BadArguments)?;
                let node = self.nodes.get(&r.path).ok_or(E::NoNode)?;
                if node.perms & perms::READ == 0 {
                    return Err(E::NoAuth);
                }
                if !Self::version_ok(node.version, r.version) {
                    return Err(E::BadVersion);
                }
                Ok(R::Done)
            }
            other => unreachable!("{other:?}"),
        }
    }

    fn remove(&mut self, path: &str) {
        self.nodes.remove(path);
        let parent = self.nodes.get_mut(&parent(path)).expect("parent exists");
        parent.children.remove(&name(path));
    }

    fn apply_multi(&mut self, session: i64, requests: &[WriteRequest], zxid: i64) -> R {
        let mut scratch = self.clone();
        let mut results = Vec::new();
        for (i, request) in requests.iter().enumerate() {
            match scratch.apply_one(session, request, zxid) {
                Ok(r) => results.push(r),
                Err(code) => {
                    let mut failed = vec![R::Err(E::Ok); i];
                    failed.push(R::Err(code));
                    failed.resize(requests.len(), R::Err(E::RuntimeInconsistency));
                    return R::Multi(failed);
                }
            }
        }
        *self = scratch;
        R::Multi(results)
    }

    fn close(&mut self, session: i64) {
        let mine: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.owner == session)
            .map(|(p, _)| p.clone())
            .collect();
        for p in mine {
            self.remove(&p);
        }
        self.sessions.remove(&session);
    }

    /// The tree agrees with the model on every node.
    fn assert_matches(&self, tree: &DataTree) -> Result<(), TestCaseError> {
        let nodes = snapshot(tree);
        prop_assert_eq!(
            nodes.keys().collect::<Vec<_>>(),
            self.paths(),
            "the set of paths"
        );
        for (p, m) in &self.nodes {
            let n = &nodes[p];
            let s = n.stat();
            prop_assert_eq!(&n.data, &m.data, "data of {}", p);
            prop_assert_eq!(s.version, m.version, "version of {}", p);
            prop_assert!(
                n.children
                    .iter()
                    .map(|c| &**c)
                    .eq(m.children.iter().map(String::as_str)),
                "children of {}",
                p
            );
            prop_assert_eq!(
                s.num_children as usize,
                m.children.len(),
                "numChildren of {}",
                p
            );
            prop_assert_eq!(n.stat.cversion, m.creations, "stored cversion of {}", p);
            prop_assert_eq!(
                s.cversion,
                2 * m.creations - m.children.len() as i32,
                "cversion of {}",
                p
            );
            prop_assert_eq!(
                (s.czxid, s.mzxid),
                (m.czxid, m.mzxid),
                "czxid/mzxid of {}",
                p
            );
            prop_assert_eq!(s.ephemeral_owner, m.owner, "ephemeralOwner of {}", p);
            prop_assert_eq!(s.data_length as usize, m.data.as_ref().map_or(0, Vec::len));
        }
        let live: BTreeSet<i64> = tree.sessions().keys().copied().collect();
        prop_assert_eq!(&live, &self.sessions, "live sessions");
        Ok(())
    }
}

fn run_actions(actions: &[Action]) -> Result<(), TestCaseError> {
    let mut h = Harness::new(tree::Features::default());
    let mut model = Model::from_tree(&h.tree);
    let mut applied: Vec<Applied> = Vec::new();
    for action in actions {
        let zxid = h.tree.last_zxid() + 1;
        let (expected, session, request) = match action {
            Action::Single(s, op) => {
                let session = SESSIONS[*s];
                let request = model.request(op);
                let r = model
                    .apply_one(session, &request, zxid)
                    .unwrap_or_else(R::Err);
                (r, session, request)
            }
            Action::Multi(s, ops) => {
                let session = SESSIONS[*s];
                // Each op resolves against the state before the multi; the
                // model evaluates them in order on a scratch copy.
                let requests: Vec<WriteRequest> = ops.iter().map(|o| model.request(o)).collect();
                let multi_ops = ops.iter().map(|o| model.multi_op(o)).collect();
                let r = model.apply_multi(session, &requests, zxid);
                (r, session, WriteRequest::Multi(multi_ops))
            }
            Action::Close(s) => {
                model.close(SESSIONS[*s]);
                (R::Done, SESSIONS[*s], WriteRequest::CloseSession)
            }
            Action::Open(s) => {
                model.sessions.insert(SESSIONS[*s]);
                let request = WriteRequest::CreateSession {
                    timeout_ms: 10_000,
                    password: vec![1; 16],
                };
                (R::Done, SESSIONS[*s], request)
            }
        };
        let (_, result) = h.write(session, &request);
        prop_assert_eq!(
            result_of(&result.outcome),
            expected,
            "outcome of {:?}",
            request
        );
        model.assert_matches(&h.tree)?;
        applied.push(result);
    }

    // Replaying the committed transactions on a fresh tree reaches the same
    // state with the same outcomes.
    let mut replay = DataTree::new();
    let replayed: Vec<Applied> = h.txns.iter().map(|t| tree::apply(&mut replay, t)).collect();
    prop_assert_eq!(&replayed[2..], &applied[..], "replayed outcomes");
    assert_same_tree(&replay, &h.tree);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn tree_agrees_with_the_model(actions in proptest::collection::vec(action(), 1..60)) {
        run_actions(&actions)?;
    }
}

/// A fixed sequence that exercises every branch of the model at least once,
/// so a model bug cannot hide behind unlucky generation.
#[test]
fn model_smoke() {
    use Op::*;
    use Target::*;
    let fixed = |p: &str| {
        Fixed(
            UNIVERSE
                .iter()
                .position(|u| *u == p)
                .expect("in the universe"),
        )
    };
    let actions = vec![
        Action::Single(0, Create(fixed("/a"), Some(b"x".to_vec()), 0)),
        Action::Single(0, Create(fixed("/a/a"), None, 1)),
        Action::Single(0, Create(fixed("/a/a/a"), None, 0)),
        Action::Single(1, Create(fixed("/a/b"), None, 2)),
        Action::Single(1, Create(fixed("/b"), None, 4)),
        Action::Single(1, Create(fixed("/zookeeper/config/x"), None, 0)),
        Action::Single(0, Create(fixed("/"), None, 0)),
        Action::Single(0, Create(fixed("/"), None, 3)),
        Action::Single(0, Delete(fixed("/"), Ver::Any)),
        Action::Single(0, Delete(fixed("/a"), Ver::Exact)),
        Action::Single(0, Delete(fixed("/a"), Ver::Wrong)),
        Action::Single(0, Delete(fixed("/zookeeper/config/x"), Ver::Any)),
        Action::Single(0, SetData(fixed("/zookeeper/config"), None, Ver::Any)),
        Action::Single(0, SetData(fixed("/a"), None, Ver::Wrong)),
        Action::Single(0, SetData(fixed("/a"), Some(vec![]), Ver::Exact)),
        Action::Single(0, Check(fixed("/a"), Ver::Exact)),
        Action::Multi(
            0,
            vec![
                Create(Existing(3), None, 0),
                SetData(fixed("/a"), None, Ver::Exact),
            ],
        ),
        Action::Multi(
            0,
            vec![
                Create(fixed("/b/a"), None, 2),
                Delete(fixed("/a/b/b"), Ver::Any),
            ],
        ),
        Action::Multi(1, vec![]),
        Action::Close(0),
        Action::Single(0, Create(fixed("/b/b"), None, 0)),
        Action::Multi(
            0,
            vec![Check(fixed("/"), Ver::Any), Check(fixed("/"), Ver::Any)],
        ),
        Action::Open(0),
        Action::Single(0, Create(fixed("/b/b"), None, 0)),
        Action::Close(1),
    ];
    run_actions(&actions).expect("smoke sequence agrees with the model");
}

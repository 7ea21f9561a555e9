//! Crash tests on the real binary: clients write continuously while the
//! server is killed with SIGKILL at random moments, and after every restart
//! the state must contain every acknowledged write, whole.
//!
//! Each round:
//!
//! 1. Four clients, each on its own long-lived session, keep up to `window`
//!    requests in flight (a random window per round, 1 to 32): creates
//!    (persistent, ephemeral, sequential, ephemeral sequential), setData
//!    (conditional, unconditional, and with a wrong version), deletes, and
//!    multis that create a marker node together with sets, creates, deletes
//!    and checks of other nodes (some fail on purpose, as a whole). Another
//!    thread opens short-lived sessions (300 ms) that create an ephemeral
//!    and either close the session or abandon it.
//! 2. After a random delay (0 to 600 ms) the server gets SIGKILL (one round
//!    in eight: SIGTERM, an orderly shutdown); one round in five it is also
//!    killed again while it recovers.
//! 3. The acknowledged replies are checked against a model of each client's
//!    subtree (every client writes only under `/crash/c<i>`, so its writes
//!    are applied in the order it sent them): outcome, returned path and
//!    Stat, zxids increasing and above every zxid acknowledged before the
//!    round.
//! 4. The server restarts on the same data directory. Every client re-opens
//!    its session (it must still exist) and reads its subtree, which must be
//!    exactly the model after the acknowledged requests plus some prefix of
//!    the unacknowledged ones: every acknowledged write is there with its
//!    data, version, czxid, mzxid, ephemeral owner, and the parent's cversion,
//!    child count and pzxid; an unacknowledged write may have landed, but
//!    only whole (a multi is never half there) and in order. The server's
//!    last zxid is at least the highest acknowledged one. The short
//!    sessions' ephemerals must be gone (at once if their close was
//!    acknowledged, within their timeout otherwise), and those sessions
//!    cannot be re-opened.
//!
//! zoo.cfg has `snapCount=150`, so log retention compacts the log during
//! the run, crashes included. At the end the server is stopped with SIGTERM,
//! `conclave-server inspect` must read the directory, and the store opened
//! directly (`storage::rocks::RocksStore`) must hold what the server served.
//!
//! `cargo test` runs eight rounds with each of two seeds, 1 and one from
//! the clock (about 20 seconds in all). More:
//!
//! ```text
//! CONCLAVE_CRASH_SEED=1,2,3 CONCLAVE_CRASH_ROUNDS=200 \
//!     cargo test -p server --test integration crash -- --nocapture
//! ```
//!
//! `CONCLAVE_CRASH_SEED` takes a comma-separated list of seeds (the seed of
//! a failure is in its message: replay it alone), `CONCLAVE_CRASH_ROUNDS`
//! the rounds per seed. Timing differs between runs, so a replay exercises
//! the same operations and delays but not the same interleaving.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proto::{
    CheckVersionRequest, CreateMode, CreateRequest, DeleteRequest, ErrorCode, MultiOp, MultiResult,
    OpCode, PathWatchRequest, Request, Response, SetDataRequest, Stat,
};

use crate::raw_client::{Connected, RawClient, Reply, create_request, open_acl, pipeline};
use crate::support::DataDir;

const CLIENTS: usize = 4;
const KEYS: u64 = 10;
const EPHEMERALS: u64 = 3;
const MAX_SEQUENTIAL: usize = 8;
const MAX_MARKERS: usize = 8;
const SESSION_MS: i32 = 30_000;
const SHORT_SESSION_MS: i32 = 300;
const ABANDONED: &str = "/crash-short";

const CONFIG: &[&str] = &[
    "tickTime=100",
    "minSessionTimeout=200",
    "maxSessionTimeout=60000",
    "snapCount=150",
];

// ------------------------------------------------------------------ rng

/// xorshift64*: small, seedable, good enough to pick operations.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

// ---------------------------------------------------------------- model

/// A child of a client's subtree as the model knows it. zxids are `None`
/// when the write that set them was not acknowledged (landed, but its zxid
/// was never seen).
#[derive(Debug, Clone, PartialEq)]
struct NodeModel {
    data: Option<Vec<u8>>,
    version: i32,
    czxid: Option<i64>,
    mzxid: Option<i64>,
    owner: i64,
}

/// `/crash/c<i>` and its children (all leaves).
#[derive(Debug, Clone)]
struct Subtree {
    path: String,
    /// The parent's persisted cversion: how many children were ever created
    /// (the sequence number of the next sequential child).
    creates: i32,
    pzxid: Option<i64>,
    nodes: BTreeMap<String, NodeModel>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Persistent,
    Ephemeral,
    Sequential,
    EphemeralSequential,
}

impl Mode {
    fn flags(self) -> i32 {
        match self {
            Mode::Persistent => CreateMode::Persistent,
            Mode::Ephemeral => CreateMode::Ephemeral,
            Mode::Sequential => CreateMode::PersistentSequential,
            Mode::EphemeralSequential => CreateMode::EphemeralSequential,
        }
        .code()
    }

    fn sequential(self) -> bool {
        matches!(self, Mode::Sequential | Mode::EphemeralSequential)
    }

    fn ephemeral(self) -> bool {
        matches!(self, Mode::Ephemeral | Mode::EphemeralSequential)
    }
}

/// One write on a child (for sequential creates, `name` is the prefix).
#[derive(Debug, Clone)]
enum Sub {
    Create {
        name: String,
        data: Option<Vec<u8>>,
        mode: Mode,
    },
    Set {
        name: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    Delete {
        name: String,
        version: i32,
    },
    Check {
        name: String,
        version: i32,
    },
}

/// A request a client sends.
#[derive(Debug, Clone)]
enum Op {
    One(Sub),
    Multi(Vec<Sub>),
}

/// What a successful sub-operation did.
#[derive(Debug, Clone, PartialEq)]
enum Done {
    Created { name: String },
    Set { version: i32 },
    Deleted,
    Checked,
}

fn sub_path(parent: &str, sub: &Sub) -> String {
    let name = match sub {
        Sub::Create { name, .. }
        | Sub::Set { name, .. }
        | Sub::Delete { name, .. }
        | Sub::Check { name, .. } => name,
    };
    format!("{parent}/{name}")
}

impl Subtree {
    fn new(path: String) -> Subtree {
        Subtree {
            path,
            creates: 0,
            pzxid: None,
            nodes: BTreeMap::new(),
        }
    }

    /// ZooKeeper's semantics for one write on a leaf child of this subtree.
    fn apply_sub(&mut self, sub: &Sub, zxid: Option<i64>, session: i64) -> Result<Done, ErrorCode> {
        match sub {
            Sub::Create { name, data, mode } => {
                let name = if mode.sequential() {
                    format!("{name}{:010}", self.creates)
                } else {
                    name.clone()
                };
                if self.nodes.contains_key(&name) {
                    return Err(ErrorCode::NodeExists);
                }
                self.nodes.insert(
                    name.clone(),
                    NodeModel {
                        data: data.clone(),
                        version: 0,
                        czxid: zxid,
                        mzxid: zxid,
                        owner: if mode.ephemeral() { session } else { 0 },
                    },
                );
                self.creates += 1;
                self.pzxid = zxid;
                Ok(Done::Created { name })
            }
            Sub::Set {
                name,
                data,
                version,
            } => {
                let node = self.nodes.get_mut(name).ok_or(ErrorCode::NoNode)?;
                if *version != -1 && *version != node.version {
                    return Err(ErrorCode::BadVersion);
                }
                node.version += 1;
                node.data = data.clone();
                node.mzxid = zxid;
                Ok(Done::Set {
                    version: node.version,
                })
            }
            Sub::Delete { name, version } => {
                let node = self.nodes.get(name).ok_or(ErrorCode::NoNode)?;
                if *version != -1 && *version != node.version {
                    return Err(ErrorCode::BadVersion);
                }
                self.nodes.remove(name);
                self.pzxid = zxid;
                Ok(Done::Deleted)
            }
            Sub::Check { name, version } => {
                let node = self.nodes.get(name).ok_or(ErrorCode::NoNode)?;
                if *version != -1 && *version != node.version {
                    return Err(ErrorCode::BadVersion);
                }
                Ok(Done::Checked)
            }
        }
    }

    /// Applies a whole request: a multi all or nothing. On failure, the
    /// index of the failing sub-operation and its error.
    fn apply(
        &mut self,
        op: &Op,
        zxid: Option<i64>,
        session: i64,
    ) -> Result<Vec<Done>, (usize, ErrorCode)> {
        match op {
            Op::One(sub) => self
                .apply_sub(sub, zxid, session)
                .map(|d| vec![d])
                .map_err(|e| (0, e)),
            Op::Multi(subs) => {
                let mut scratch = self.clone();
                let mut done = Vec::new();
                for (i, sub) in subs.iter().enumerate() {
                    done.push(scratch.apply_sub(sub, zxid, session).map_err(|e| (i, e))?);
                }
                *self = scratch;
                Ok(done)
            }
        }
    }

    fn count_prefix(&self, prefix: &str) -> usize {
        self.nodes.keys().filter(|n| n.starts_with(prefix)).count()
    }

    fn oldest(&self, prefix: &str) -> Option<(String, i32)> {
        self.nodes
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .min_by_key(|(n, _)| n.trim_start_matches(prefix).parse::<u64>().unwrap_or(0))
            .map(|(n, node)| (n.clone(), node.version))
    }

    fn random_existing(&self, rng: &mut Rng) -> Option<(String, i32)> {
        if self.nodes.is_empty() {
            return None;
        }
        let i = rng.below(self.nodes.len() as u64) as usize;
        self.nodes
            .iter()
            .nth(i)
            .map(|(n, node)| (n.clone(), node.version))
    }

    /// The model rebuilt from what the server holds (every zxid known).
    fn from_actual(path: &str, actual: &Actual) -> Subtree {
        let n = actual.parent.num_children;
        Subtree {
            path: path.to_owned(),
            creates: (actual.parent.cversion + n) / 2,
            pzxid: Some(actual.parent.pzxid),
            nodes: actual
                .children
                .iter()
                .map(|(name, (data, stat))| {
                    (
                        name.clone(),
                        NodeModel {
                            data: data.clone(),
                            version: stat.version,
                            czxid: Some(stat.czxid),
                            mzxid: Some(stat.mzxid),
                            owner: stat.ephemeral_owner,
                        },
                    )
                })
                .collect(),
        }
    }

    /// Whether the server's subtree is this model. Unknown zxids must be
    /// above `floor` (the last acknowledged zxid before the write).
    fn compare(&self, actual: &Actual, floor: i64) -> Result<(), String> {
        let mut problems = Vec::new();
        let zxid_ok =
            |what: &str, model: Option<i64>, got: i64, problems: &mut Vec<String>| match model {
                Some(z) if z != got => {
                    problems.push(format!("{what}: expected {z:#x}, found {got:#x}"))
                }
                None if got <= floor => problems.push(format!(
                    "{what}: {got:#x} from an unacknowledged write is not above {floor:#x}"
                )),
                _ => {}
            };
        let model_names: Vec<&String> = self.nodes.keys().collect();
        let actual_names: Vec<&String> = actual.children.keys().collect();
        if model_names != actual_names {
            let missing: Vec<_> = model_names
                .iter()
                .filter(|n| !actual.children.contains_key(**n))
                .collect();
            let extra: Vec<_> = actual_names
                .iter()
                .filter(|n| !self.nodes.contains_key(**n))
                .collect();
            problems.push(format!(
                "children differ: missing {missing:?}, unexpected {extra:?}"
            ));
        }
        let n = self.nodes.len() as i32;
        if actual.parent.num_children != n {
            problems.push(format!(
                "parent numChildren {} != {n}",
                actual.parent.num_children
            ));
        }
        let cversion = 2 * self.creates - n;
        if actual.parent.cversion != cversion {
            problems.push(format!(
                "parent cversion {} != {cversion}",
                actual.parent.cversion
            ));
        }
        zxid_ok(
            "parent pzxid",
            self.pzxid,
            actual.parent.pzxid,
            &mut problems,
        );
        for (name, node) in &self.nodes {
            let Some((data, stat)) = actual.children.get(name) else {
                continue;
            };
            if data != &node.data {
                problems.push(format!(
                    "{name}: data {:?} != expected {:?}",
                    data.as_deref().map(String::from_utf8_lossy),
                    node.data.as_deref().map(String::from_utf8_lossy)
                ));
            }
            if stat.version != node.version {
                problems.push(format!(
                    "{name}: version {} != {}",
                    stat.version, node.version
                ));
            }
            if stat.ephemeral_owner != node.owner {
                problems.push(format!(
                    "{name}: owner {:#x} != {:#x}",
                    stat.ephemeral_owner, node.owner
                ));
            }
            let len = node.data.as_ref().map_or(0, Vec::len) as i32;
            if stat.data_length != len || stat.num_children != 0 {
                problems.push(format!(
                    "{name}: dataLength {} numChildren {}",
                    stat.data_length, stat.num_children
                ));
            }
            zxid_ok(
                &format!("{name} czxid"),
                node.czxid,
                stat.czxid,
                &mut problems,
            );
            zxid_ok(
                &format!("{name} mzxid"),
                node.mzxid,
                stat.mzxid,
                &mut problems,
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n  "))
        }
    }
}

/// A client's subtree as the server holds it.
#[derive(Debug, Clone)]
struct Actual {
    parent: Stat,
    children: BTreeMap<String, (Option<Vec<u8>>, Stat)>,
}

fn read_subtree(client: &mut RawClient, path: &str) -> Actual {
    let (names, parent) = client
        .children(path)
        .unwrap()
        .unwrap_or_else(|e| panic!("getChildren {path}: {e:?}"));
    let requests: Vec<Request> = names
        .iter()
        .map(|n| {
            Request::GetData(PathWatchRequest {
                path: format!("{path}/{n}"),
                watch: false,
            })
        })
        .collect();
    let replies = client.call_all(&requests).unwrap();
    let mut children = BTreeMap::new();
    for (name, reply) in names.into_iter().zip(replies) {
        match reply.response(OpCode::GetData) {
            Response::GetData(r) => {
                children.insert(name, (r.data, r.stat));
            }
            _ => panic!("getData {path}/{name}: {:?}", reply.error()),
        }
    }
    Actual { parent, children }
}

// ----------------------------------------------------------- generation

/// The bytes a write stores: derived from the path, the version the write
/// gives the node and the operation number, padded to a random length;
/// sometimes null.
fn payload(rng: &mut Rng, path: &str, version: i32, opno: u64) -> Option<Vec<u8>> {
    if rng.percent(4) {
        return None;
    }
    let mut data = format!("{path} v{version} op{opno} ").into_bytes();
    let len = match rng.below(20) {
        0 => rng.below(8192),
        1..=5 => rng.below(1024),
        _ => rng.below(64),
    } as usize;
    let mut i = 0u8;
    while data.len() < len {
        data.push(b'a' + i % 26);
        i = i.wrapping_add(1);
    }
    Some(data)
}

/// The next request of a client, from the state its earlier requests lead
/// to (`predicted`, updated here as if it succeeds as the model says).
fn generate(rng: &mut Rng, predicted: &mut Subtree, session: i64, opno: u64) -> Op {
    let parent = predicted.path.clone();
    let key = |rng: &mut Rng| format!("k{}", rng.below(KEYS));
    let version_for = |rng: &mut Rng, current: i32| match rng.below(10) {
        0 => -1,
        1 => current + 3,
        _ => current,
    };
    let op = match rng.below(100) {
        0..=19 => {
            let name = key(rng);
            Op::One(Sub::Create {
                data: payload(rng, &format!("{parent}/{name}"), 0, opno),
                name,
                mode: Mode::Persistent,
            })
        }
        20..=24 => {
            let name = format!("e{}", rng.below(EPHEMERALS));
            Op::One(Sub::Create {
                data: payload(rng, &format!("{parent}/{name}"), 0, opno),
                name,
                mode: Mode::Ephemeral,
            })
        }
        25..=34 => {
            let (prefix, mode) = if rng.percent(30) {
                ("es-", Mode::EphemeralSequential)
            } else {
                ("s-", Mode::Sequential)
            };
            if predicted.count_prefix(prefix) >= MAX_SEQUENTIAL
                && let Some((name, version)) = predicted.oldest(prefix)
            {
                Op::One(Sub::Delete { name, version })
            } else {
                Op::One(Sub::Create {
                    name: prefix.into(),
                    data: payload(rng, &format!("{parent}/{prefix}"), 0, opno),
                    mode,
                })
            }
        }
        35..=59 => {
            let (name, current) = match predicted.random_existing(rng) {
                Some(found) if rng.percent(90) => found,
                _ => (key(rng), 0),
            };
            let version = version_for(rng, current);
            let data = payload(rng, &format!("{parent}/{name}"), current + 1, opno);
            Op::One(Sub::Set {
                name,
                data,
                version,
            })
        }
        60..=71 => {
            let (name, current) = match predicted.random_existing(rng) {
                Some(found) if rng.percent(90) => found,
                _ => (key(rng), 0),
            };
            let version = version_for(rng, current);
            Op::One(Sub::Delete { name, version })
        }
        _ => {
            let marker = format!("m{opno}");
            let mut subs = vec![Sub::Create {
                data: Some(
                    format!("{parent}/{marker} written by op {opno} with its siblings")
                        .into_bytes(),
                ),
                name: marker,
                mode: Mode::Persistent,
            }];
            let mut scratch = predicted.clone();
            if let Err(e) = scratch.apply_sub(&subs[0], None, session) {
                panic!("marker create cannot fail: {e:?}");
            }
            if scratch.count_prefix("m") > MAX_MARKERS
                && let Some((name, version)) = scratch.oldest("m")
            {
                subs.push(Sub::Delete { name, version });
            }
            for _ in 0..1 + rng.below(4) {
                let sub = match rng.below(10) {
                    0..=4 => {
                        let (name, current) = scratch
                            .random_existing(rng)
                            .unwrap_or_else(|| (key(rng), 0));
                        let data = payload(rng, &format!("{parent}/{name}"), current + 1, opno);
                        Sub::Set {
                            name,
                            data,
                            version: if rng.percent(90) { current } else { -1 },
                        }
                    }
                    5..=6 => {
                        let name = key(rng);
                        Sub::Create {
                            data: payload(rng, &format!("{parent}/{name}"), 0, opno),
                            name,
                            mode: Mode::Persistent,
                        }
                    }
                    7 => {
                        let (name, current) = scratch
                            .random_existing(rng)
                            .unwrap_or_else(|| (key(rng), 0));
                        Sub::Delete {
                            name,
                            version: current,
                        }
                    }
                    _ => {
                        let (name, current) = scratch
                            .random_existing(rng)
                            .unwrap_or_else(|| (key(rng), 0));
                        // Now and then a check that fails: the whole multi must fail.
                        Sub::Check {
                            name,
                            version: if rng.percent(70) {
                                current
                            } else {
                                current + 1
                            },
                        }
                    }
                };
                // Keep the scratch state in step so later ops see earlier ones.
                let _ = scratch.apply_sub(&sub, None, session);
                subs.push(sub);
            }
            Op::Multi(subs)
        }
    };
    let _ = predicted.apply(&op, None, session);
    op
}

/// An operation in a line, for failure reports.
fn describe(op: &Op) -> String {
    fn size(data: &Option<Vec<u8>>) -> String {
        data.as_ref()
            .map_or("null".to_owned(), |d| format!("{} bytes", d.len()))
    }
    fn sub(s: &Sub) -> String {
        match s {
            Sub::Create { name, data, mode } => format!("create {name} {mode:?} {}", size(data)),
            Sub::Set {
                name,
                data,
                version,
            } => format!("set {name} version {version} {}", size(data)),
            Sub::Delete { name, version } => format!("delete {name} version {version}"),
            Sub::Check { name, version } => format!("check {name} version {version}"),
        }
    }
    match op {
        Op::One(s) => sub(s),
        Op::Multi(subs) => format!(
            "multi [{}]",
            subs.iter().map(sub).collect::<Vec<_>>().join("; ")
        ),
    }
}

fn request(parent: &str, op: &Op) -> Request {
    match op {
        Op::One(sub) => {
            let path = sub_path(parent, sub);
            match sub {
                Sub::Create { data, mode, .. } => create_request(&path, data.clone(), mode.flags()),
                Sub::Set { data, version, .. } => Request::SetData(SetDataRequest {
                    path,
                    data: data.clone(),
                    version: *version,
                }),
                Sub::Delete { version, .. } => Request::Delete(DeleteRequest {
                    path,
                    version: *version,
                }),
                Sub::Check { .. } => unreachable!("a top-level check is never answered"),
            }
        }
        Op::Multi(subs) => Request::Multi(
            subs.iter()
                .map(|sub| {
                    let path = sub_path(parent, sub);
                    match sub {
                        Sub::Create { data, mode, .. } => MultiOp::Create {
                            op: OpCode::Create,
                            request: CreateRequest {
                                path,
                                data: data.clone(),
                                acl: open_acl(),
                                flags: mode.flags(),
                            },
                        },
                        Sub::Set { data, version, .. } => MultiOp::SetData(SetDataRequest {
                            path,
                            data: data.clone(),
                            version: *version,
                        }),
                        Sub::Delete { version, .. } => MultiOp::Delete(DeleteRequest {
                            path,
                            version: *version,
                        }),
                        Sub::Check { version, .. } => MultiOp::Check(CheckVersionRequest {
                            path,
                            version: *version,
                        }),
                    }
                })
                .collect(),
        ),
    }
}

// ---------------------------------------------------------------- checks

/// Checks an acknowledged reply against what the model says the request
/// must do, and applies it to the model with its zxid.
fn check_reply(model: &mut Subtree, op: &Op, reply: &Reply, session: i64) -> Result<(), String> {
    let zxid = reply.zxid;
    let expected = model.apply(op, Some(zxid), session);
    let parent = model.path.clone();
    let full = |name: &str| format!("{parent}/{name}");
    match (op, &expected) {
        (Op::One(sub), Err((_, code))) => {
            if reply.error() != *code {
                return Err(format!(
                    "{sub:?}: expected {code:?}, got {:?}",
                    reply.error()
                ));
            }
        }
        (Op::One(sub), Ok(done)) => {
            if reply.err != 0 {
                return Err(format!(
                    "{sub:?}: expected success ({done:?}), got {:?}",
                    reply.error()
                ));
            }
            match (&done[0], sub) {
                (Done::Created { name }, Sub::Create { data, mode, .. }) => {
                    let Response::Create2(r) = reply.response(OpCode::Create2) else {
                        unreachable!()
                    };
                    let owner = if mode.ephemeral() { session } else { 0 };
                    let len = data.as_ref().map_or(0, Vec::len) as i32;
                    let s = &r.stat;
                    if r.path != full(name)
                        || s.czxid != zxid
                        || s.mzxid != zxid
                        || s.version != 0
                        || s.ephemeral_owner != owner
                        || s.data_length != len
                    {
                        return Err(format!("create {name}: reply {r:?} at zxid {zxid:#x}"));
                    }
                }
                (Done::Set { version }, _) => {
                    let Response::Stat(r) = reply.response(OpCode::SetData) else {
                        unreachable!()
                    };
                    if r.stat.version != *version || r.stat.mzxid != zxid {
                        return Err(format!(
                            "{sub:?}: reply {r:?} at zxid {zxid:#x}, expected version {version}"
                        ));
                    }
                }
                (Done::Deleted, _) => {}
                other => return Err(format!("unexpected outcome {other:?}")),
            }
        }
        (Op::Multi(subs), expected) => {
            if reply.err != 0 {
                return Err(format!("multi: header error {:?}", reply.error()));
            }
            let Response::Multi(results) = reply.response(OpCode::Multi) else {
                unreachable!()
            };
            if results.len() != subs.len() {
                return Err(format!("multi {subs:?}: {} results", results.len()));
            }
            match expected {
                Err((failed, code)) => {
                    for (i, result) in results.iter().enumerate() {
                        let want = match i.cmp(failed) {
                            std::cmp::Ordering::Less => ErrorCode::Ok,
                            std::cmp::Ordering::Equal => *code,
                            std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency,
                        };
                        if *result != MultiResult::Error(want) {
                            return Err(format!(
                                "failed multi {subs:?}: results {results:?}, expected op {failed} to fail with {code:?}"
                            ));
                        }
                    }
                }
                Ok(done) => {
                    for (result, done) in results.iter().zip(done) {
                        let ok = match (result, done) {
                            (MultiResult::Create { path }, Done::Created { name }) => {
                                *path == full(name)
                            }
                            (MultiResult::SetData { stat }, Done::Set { version }) => {
                                stat.version == *version && stat.mzxid == zxid
                            }
                            (MultiResult::Delete, Done::Deleted)
                            | (MultiResult::Check, Done::Checked) => true,
                            _ => false,
                        };
                        if !ok {
                            return Err(format!(
                                "multi {subs:?} at {zxid:#x}: results {results:?}, expected {done:?}"
                            ));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- rounds

/// A client of the crash test: its session and its model.
struct Writer {
    path: String,
    session_id: i64,
    password: Vec<u8>,
    model: Subtree,
    client: Option<RawClient>,
}

/// What one writer did in a round.
struct Written {
    ops: Vec<Op>,
    replies: Vec<Reply>,
}

/// A short session of a round and what was acknowledged about it.
#[derive(Debug, Default, Clone)]
struct Short {
    session: Option<(i64, Vec<u8>)>,
    ephemeral: Option<String>,
    closed: bool,
}

fn seeds() -> Vec<u64> {
    match std::env::var("CONCLAVE_CRASH_SEED") {
        Ok(list) => list
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("CONCLAVE_CRASH_SEED: not a seed list: {list}"))
            })
            .collect(),
        Err(_) => {
            let clock = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(7, |d| d.as_secs() % 1_000_000);
            vec![1, clock]
        }
    }
}

fn rounds() -> u32 {
    std::env::var("CONCLAVE_CRASH_ROUNDS")
        .map_or(8, |r| r.parse().expect("CONCLAVE_CRASH_ROUNDS: a number"))
}

#[test]
fn crash_acknowledged_writes_survive_sigkill() {
    let rounds = rounds();
    for seed in seeds() {
        let started = Instant::now();
        let result = std::panic::catch_unwind(|| crash_run(seed, rounds));
        if let Err(panic) = result {
            eprintln!(
                "crash test failed with seed {seed}; replay: CONCLAVE_CRASH_SEED={seed} CONCLAVE_CRASH_ROUNDS={rounds} cargo test -p server --test integration crash -- --nocapture"
            );
            std::panic::resume_unwind(panic);
        }
        eprintln!(
            "crash test: seed {seed}, {rounds} rounds in {:?}",
            started.elapsed()
        );
    }
}

fn crash_run(seed: u64, rounds: u32) {
    let dir = DataDir::new(&format!("crash-{seed}"));
    let mut rng = Rng::new(seed);
    let mut server = dir.start(CONFIG);

    // The subtrees, and a long session per writer.
    let mut setup = RawClient::connect(server.addr, SESSION_MS).unwrap();
    let mut floor = 0i64;
    for path in ["/crash".to_owned(), ABANDONED.to_owned()]
        .into_iter()
        .chain((0..CLIENTS).map(|i| format!("/crash/c{i}")))
    {
        let reply = setup.create(&path, b"").unwrap();
        assert_eq!(reply.err, 0, "create {path}");
        floor = floor.max(reply.zxid);
    }
    assert!(setup.close_session());
    let mut writers: Vec<Writer> = (0..CLIENTS)
        .map(|i| {
            let client = RawClient::connect(server.addr, SESSION_MS).unwrap();
            let path = format!("/crash/c{i}");
            Writer {
                model: Subtree::new(path.clone()),
                path,
                session_id: client.session_id,
                password: client.password.clone(),
                client: Some(client),
            }
        })
        .collect();
    for w in &mut writers {
        // Every zxid is known from here on (the parents' pzxids included).
        let actual = read_subtree(w.client.as_mut().unwrap(), &w.path);
        assert!(actual.children.is_empty());
        w.model = Subtree::from_actual(&w.path, &actual);
    }
    let mut opno = 0u64;

    for round in 0..rounds {
        let ctx = format!("seed {seed} round {round}");
        let window = 1 + rng.below(32) as usize;
        let delay = Duration::from_millis(match rng.below(4) {
            0 => rng.below(5),
            1 => rng.below(50),
            2 => rng.below(200),
            _ => rng.below(600),
        });
        let graceful = rng.percent(12);
        let kill_in_recovery = rng.percent(20);

        // 1. Write until the server dies.
        let mut handles = Vec::new();
        for (i, w) in writers.iter_mut().enumerate() {
            let client = w.client.take().expect("a connected writer");
            let mut predicted = w.model.clone();
            let mut wrng = Rng::new(
                seed ^ (u64::from(round) << 20) ^ (i as u64 + 1).wrapping_mul(0x1000_0000_0001),
            );
            let session = w.session_id;
            let path = w.path.clone();
            let base = opno + (i as u64) * 1_000_000;
            handles.push(std::thread::spawn(move || {
                let mut ops = Vec::new();
                let mut n = base;
                let result = pipeline(client, window, || {
                    n += 1;
                    let op = generate(&mut wrng, &mut predicted, session, n);
                    let req = request(&path, &op);
                    ops.push(op);
                    Some(req)
                });
                assert!(result.sent >= result.replies.len());
                ops.truncate(result.sent);
                Written {
                    ops,
                    replies: result.replies,
                }
            }));
        }
        opno += CLIENTS as u64 * 1_000_000;
        let shorts = Arc::new(Mutex::new(Vec::<Short>::new()));
        let short_handle = {
            let shorts = shorts.clone();
            let addr = server.addr;
            let close_some = rng.below(3);
            std::thread::spawn(move || short_sessions(addr, round, close_some, &shorts))
        };
        std::thread::sleep(delay);
        if graceful {
            let status = server.terminate();
            assert!(
                status.success(),
                "{ctx}: SIGTERM shutdown exited with {status}"
            );
        } else {
            server.kill9();
        }
        let written: Vec<Written> = handles
            .into_iter()
            .map(|h| h.join().expect("writer thread"))
            .collect();
        short_handle.join().expect("short sessions thread");
        let shorts = shorts.lock().unwrap().clone();

        // 2. The acknowledged replies, against the model.
        let mut max_acked = floor;
        let mut known = Vec::new();
        for (w, written) in writers.iter_mut().zip(&written) {
            let mut last = floor;
            for (op, reply) in written.ops.iter().zip(&written.replies) {
                assert!(
                    reply.zxid > last,
                    "{ctx}: {}: zxid {:#x} of an acknowledged write is not above {last:#x} (the previous one, or the last before the restart)",
                    w.path,
                    reply.zxid
                );
                last = reply.zxid;
                if let Err(e) = check_reply(&mut w.model, op, reply, w.session_id) {
                    panic!(
                        "{ctx}: {}: acknowledged reply differs from the model: {e}",
                        w.path
                    );
                }
            }
            max_acked = max_acked.max(last);
            known.push(last);
        }

        // 3. Restart (sometimes killed once more while recovering).
        if kill_in_recovery {
            let early = dir.spawn(CONFIG);
            std::thread::sleep(Duration::from_millis(rng.below(60)));
            early.kill9();
        }
        server = dir.start(CONFIG);
        let ready_at = Instant::now();

        // 4. Every writer's session is there; its subtree is the model
        //    after the acknowledged writes plus a prefix of the others.
        let mut seen = max_acked;
        let mut unacked_landed = Vec::new();
        for ((w, written), last_acked) in writers.iter_mut().zip(&written).zip(known) {
            let client = match RawClient::resume(server.addr, w.session_id, &w.password, SESSION_MS)
                .unwrap()
            {
                Connected::Session(c) => c,
                Connected::Expired => panic!(
                    "{ctx}: session {:#x} of {} did not survive the restart",
                    w.session_id, w.path
                ),
            };
            assert_eq!(client.session_id, w.session_id);
            let mut client = client;
            let actual = read_subtree(&mut client, &w.path);
            let acked = written.replies.len();
            let mut state = w.model.clone();
            let mut landed = None;
            for m in acked..=written.ops.len() {
                if state.compare(&actual, last_acked).is_ok() {
                    landed = Some(m);
                    unacked_landed.push(m - acked);
                    break;
                }
                if m < written.ops.len() {
                    let _ = state.apply(&written.ops[m], None, w.session_id);
                }
            }
            if landed.is_none() {
                let diff = w.model.compare(&actual, last_acked).unwrap_err();
                let describe_from = |from: usize, to: usize| {
                    (from..to)
                        .map(|i| format!("  #{i} {}", describe(&written.ops[i])))
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                panic!(
                    "{ctx}: {} after restart is not the acknowledged state plus a prefix of the unacknowledged writes.\n\
                     {acked} of {} requests acknowledged (window {window}, killed after {delay:?}, graceful {graceful}).\n\
                     Against the acknowledged state:\n  {diff}\n\
                     last acknowledged requests:\n{}\nunacknowledged requests:\n{}",
                    w.path,
                    written.ops.len(),
                    describe_from(acked.saturating_sub(5), acked),
                    describe_from(acked, written.ops.len())
                );
            }
            for (_, stat) in actual.children.values() {
                seen = seen.max(stat.mzxid).max(stat.czxid);
            }
            seen = seen.max(actual.parent.pzxid);
            w.model = Subtree::from_actual(&w.path, &actual);
            w.client = Some(client);
        }

        // 5. The server's last zxid covers everything acknowledged; the
        //    short sessions are gone or going.
        let mut checker = RawClient::connect(server.addr, SESSION_MS).unwrap();
        let synced = checker.sync().unwrap();
        assert!(
            synced.zxid >= max_acked,
            "{ctx}: last zxid {:#x} after restart is below the acknowledged {max_acked:#x}",
            synced.zxid
        );
        seen = seen.max(synced.zxid);
        check_short_sessions(&mut checker, server.addr, &shorts, ready_at, &ctx);
        let closed = checker.close_session();
        assert!(closed, "{ctx}: closing the checker's session");
        floor = seen;
        eprintln!(
            "{ctx}: window {window}, killed after {delay:?}{}{}: acknowledged {:?} of {:?} requests, unacknowledged but applied {:?}",
            if graceful { " (SIGTERM)" } else { "" },
            if kill_in_recovery {
                ", killed again while recovering"
            } else {
                ""
            },
            written.iter().map(|w| w.replies.len()).collect::<Vec<_>>(),
            written.iter().map(|w| w.ops.len()).collect::<Vec<_>>(),
            unacked_landed
        );
    }

    // The end: an orderly stop, `inspect`, and the store read directly.
    for w in &mut writers {
        w.client = None;
    }
    let status = server.terminate();
    assert!(
        status.success(),
        "seed {seed}: SIGTERM exited with {status}"
    );
    let inspected = dir.inspect(false);
    assert!(
        inspected.status.success(),
        "inspect failed: {}",
        inspected.stderr
    );
    assert!(
        inspected
            .stdout
            .contains(&format!("format version:   {}", storage::FORMAT_VERSION)),
        "{}",
        inspected.stdout
    );
    for w in &writers {
        assert!(
            inspected
                .stdout
                .contains(&format!("0x{:016x}", w.session_id)),
            "inspect does not list session {:#x}:\n{}",
            w.session_id,
            inspected.stdout
        );
    }
    check_store_directly(&dir, &writers);
    let server = dir.start(CONFIG);
    for w in &mut writers {
        let Connected::Session(mut client) =
            RawClient::resume(server.addr, w.session_id, &w.password, SESSION_MS).unwrap()
        else {
            panic!(
                "seed {seed}: session {:#x} lost after SIGTERM",
                w.session_id
            );
        };
        let actual = read_subtree(&mut client, &w.path);
        if let Err(e) = w.model.compare(&actual, floor) {
            panic!(
                "seed {seed}: {} changed across an orderly restart:\n  {e}",
                w.path
            );
        }
    }
    server.kill9();
}

/// Short sessions during a round: each opens a 300 ms session, creates an
/// ephemeral under `/crash-short`, and then closes the session (if
/// `close_some` says so) or abandons it. Records what was acknowledged.
fn short_sessions(
    addr: std::net::SocketAddr,
    round: u32,
    close_some: u64,
    shorts: &Mutex<Vec<Short>>,
) {
    for i in 0..3u64 {
        let mut short = Short::default();
        let Ok(mut client) = RawClient::connect(addr, SHORT_SESSION_MS) else {
            return;
        };
        short.session = Some((client.session_id, client.password.clone()));
        let path = format!("{ABANDONED}/r{round}-{i}");
        let index = {
            let mut all = shorts.lock().unwrap();
            all.push(short.clone());
            all.len() - 1
        };
        let created = client.call(&create_request(
            &path,
            Some(b"short".to_vec()),
            CreateMode::Ephemeral.code(),
        ));
        match created {
            Ok(reply) if reply.err == 0 => shorts.lock().unwrap()[index].ephemeral = Some(path),
            _ => return,
        }
        if i < close_some {
            if client.close_session() {
                shorts.lock().unwrap()[index].closed = true;
            } else {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn check_short_sessions(
    checker: &mut RawClient,
    addr: std::net::SocketAddr,
    shorts: &[Short],
    ready_at: Instant,
    ctx: &str,
) {
    // Closed and acknowledged: gone now, and cannot be re-opened.
    for short in shorts.iter().filter(|s| s.closed) {
        let path = short.ephemeral.as_ref().unwrap();
        let found = checker.get_data(path).unwrap();
        assert_eq!(
            found.err(),
            Some(ErrorCode::NoNode),
            "{ctx}: ephemeral {path} of a closed session is back after the restart"
        );
        let (id, password) = short.session.clone().unwrap();
        assert!(
            matches!(
                RawClient::resume(addr, id, &password, SHORT_SESSION_MS).unwrap(),
                Connected::Expired
            ),
            "{ctx}: closed session {id:#x} re-opened after the restart"
        );
    }
    // The others get their full timeout from the restart (expiry is checked
    // every tick, 100 ms): all gone 300 ms later, with a margin. Re-opening
    // one to look would keep it alive, so first wait.
    let expired_by = ready_at + Duration::from_millis(SHORT_SESSION_MS as u64 + 400);
    std::thread::sleep(expired_by.saturating_duration_since(Instant::now()));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (children, _) = checker.children(ABANDONED).unwrap().unwrap();
        if children.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{ctx}: ephemerals of expired short sessions are still there: {children:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for short in shorts {
        if let Some((id, password)) = &short.session {
            assert!(
                matches!(
                    RawClient::resume(addr, *id, password, SHORT_SESSION_MS).unwrap(),
                    Connected::Expired
                ),
                "{ctx}: short session {id:#x} still alive {:?} after the restart",
                ready_at.elapsed()
            );
        }
    }
}

/// After an orderly stop the store itself holds the subtrees the server
/// served (read with the storage crate, as `inspect` does).
fn check_store_directly(dir: &DataDir, writers: &[Writer]) {
    use storage::Store as _;
    let store = storage::rocks::RocksStore::open(&dir.store_dir())
        .expect("open the store after an orderly stop");
    let loaded = store.load().unwrap();
    let meta = store.meta();
    assert_eq!(
        meta.applied_index,
        store.last_index(),
        "an orderly stop applies everything it logged"
    );
    for w in writers {
        let prefix = format!("{}/", w.path);
        let stored: BTreeMap<String, &storage::NodeRecord> = loaded
            .nodes
            .iter()
            .filter_map(|(path, record)| {
                path.strip_prefix(&prefix)
                    .map(|name| (name.to_owned(), record))
            })
            .collect();
        let names: Vec<&String> = stored.keys().collect();
        let expected: Vec<&String> = w.model.nodes.keys().collect();
        assert_eq!(names, expected, "stored children of {}", w.path);
        for (name, node) in &w.model.nodes {
            let record = stored[name];
            assert_eq!(
                record.data, node.data,
                "{}/{name} data in the store",
                w.path
            );
            assert_eq!(
                record.stat.version, node.version,
                "{}/{name} version in the store",
                w.path
            );
            assert_eq!(
                Some(record.stat.mzxid),
                node.mzxid,
                "{}/{name} mzxid in the store",
                w.path
            );
            assert_eq!(
                Some(record.stat.czxid),
                node.czxid,
                "{}/{name} czxid in the store",
                w.path
            );
            assert_eq!(
                record.stat.ephemeral_owner, node.owner,
                "{}/{name} owner in the store",
                w.path
            );
        }
    }
    drop(store);
}

//! The state machine each simulated server runs: the real ZooKeeper data
//! tree (`tree::prepare` on the leader, `tree::apply` everywhere), and the
//! client writes a run sends.
//!
//! A log entry's bytes are a request number; the request, the context the
//! leader prepared it in and the transaction it produced are kept in
//! [`Requests`] (their encoding is the storage crate's, tested there).

use std::collections::BTreeMap;

use proto::{
    Acl, CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, MultiOp, OpCode,
    SetDataRequest,
};
use tree::{Context, DataTree, Features, Pending, StatPersisted, Txn, WriteRequest};

use crate::sim::rng::Rng;

pub(crate) const SESSIONS: [i64; 3] = [0x100, 0x200, 0x300];
const PATHS: [&str; 6] = ["/a", "/a/b", "/a/b/c", "/d", "/d/e", "/f"];

/// A write as the leader prepared it.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(crate) request: WriteRequest,
    pub(crate) session_id: i64,
    pub(crate) cxid: i32,
    pub(crate) time_ms: i64,
    pub(crate) txn: Txn,
}

/// Every request of a run, by number.
#[derive(Debug, Default)]
pub(crate) struct Requests(BTreeMap<u64, Prepared>);

impl Requests {
    pub(crate) fn insert(&mut self, number: u64, prepared: Prepared) {
        self.0.insert(number, prepared);
    }

    pub(crate) fn get(&self, data: &[u8]) -> Result<&Prepared, String> {
        let number = <[u8; 8]>::try_from(data)
            .map(u64::from_be_bytes)
            .map_err(|_| format!("entry data {data:?} is not a request number"))?;
        self.0
            .get(&number)
            .ok_or_else(|| format!("request {number} was never prepared"))
    }
}

/// One server's tree, what a crash leaves of it, and the leader's pending
/// writes.
#[derive(Debug)]
pub(crate) struct Machine {
    pub(crate) tree: DataTree,
    durable: DataTree,
    /// `tree` changed since the last sync (most syncs follow none: they
    /// skip copying the tree).
    dirty: bool,
    pub(crate) pending: Pending,
}

impl Machine {
    /// The state every server starts from: the sessions exist.
    pub(crate) fn genesis() -> Machine {
        let mut tree = DataTree::new();
        let features = Features::default();
        for (i, &session_id) in SESSIONS.iter().enumerate() {
            let request = WriteRequest::CreateSession {
                timeout_ms: 30_000,
                password: vec![i as u8; 16],
            };
            let ctx = Context {
                session_id,
                cxid: 0,
                zxid: tree.last_zxid() + 1,
                time_ms: 0,
                auth: &[],
                features: &features,
            };
            let txn = tree::prepare(&tree, &mut Pending::new(), &request, &ctx);
            tree::apply(&mut tree, &txn);
        }
        Machine {
            durable: tree.clone(),
            tree,
            dirty: false,
            pending: Pending::new(),
        }
    }

    pub(crate) fn sync(&mut self) {
        if self.dirty {
            self.durable = self.tree.clone();
            self.dirty = false;
        }
    }

    pub(crate) fn crash(&mut self) {
        self.tree = self.durable.clone();
        self.dirty = false;
        self.pending = Pending::new();
    }

    /// Applies a committed write. First checks that preparing the same
    /// request against this server's tree as it is now, with nothing
    /// pending, gives exactly the transaction the leader prepared ahead
    /// against its pending writes: the state the leader assumed is the
    /// state every server applies to.
    pub(crate) fn apply(&mut self, id: u64, index: u64, p: &Prepared) -> Result<(), String> {
        let features = Features::default();
        let ctx = Context {
            session_id: p.session_id,
            cxid: p.cxid,
            zxid: p.txn.zxid,
            time_ms: p.time_ms,
            auth: &[],
            features: &features,
        };
        let again = tree::prepare(&self.tree, &mut Pending::new(), &p.request, &ctx);
        if again != p.txn {
            return Err(format!(
                "server {id} at index {index}: the leader prepared {:?} but this tree gives {again:?}",
                p.txn
            ));
        }
        tree::apply(&mut self.tree, &p.txn);
        self.dirty = true;
        self.pending.applied(p.txn.zxid);
        Ok(())
    }

    /// Catching up by snapshot: the tree as another server had it.
    pub(crate) fn install(&mut self, tree: DataTree) {
        self.tree = tree;
        self.dirty = true;
        self.pending = Pending::new();
    }

    pub(crate) fn fingerprint(&self) -> Vec<(String, Option<Vec<u8>>, StatPersisted)> {
        fingerprint(&self.tree)
    }
}

/// Every znode with its data and Stat, in path order: two servers with the
/// same fingerprint hold the same tree.
pub(crate) fn fingerprint(tree: &DataTree) -> Vec<(String, Option<Vec<u8>>, StatPersisted)> {
    {
        let mut out = Vec::new();
        let mut stack = vec!["/".to_owned()];
        while let Some(path) = stack.pop() {
            let Some(node) = tree.node(&path) else {
                continue;
            };
            for child in &node.children {
                stack.push(if path == "/" {
                    format!("/{child}")
                } else {
                    format!("{path}/{child}")
                });
            }
            out.push((path, node.data.clone(), node.stat));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// A random client write over a handful of paths, so that writes collide.
pub(crate) fn random_write(rng: &mut Rng) -> (i64, WriteRequest) {
    let session = SESSIONS[rng.below(SESSIONS.len())];
    let path = |rng: &mut Rng| PATHS[rng.below(PATHS.len())].to_owned();
    let version = |rng: &mut Rng| [-1, 0, 1, 2][rng.below(4)];
    let request = match rng.below(10) {
        0..=2 => {
            let flags = [0, 1, 2, 3, 4][rng.below(5)];
            WriteRequest::Create {
                op: if flags == 4 {
                    OpCode::CreateContainer
                } else {
                    OpCode::Create2
                },
                request: CreateTtlRequest {
                    path: path(rng),
                    data: Some(vec![rng.below(256) as u8]),
                    acl: Acl::open_unsafe(),
                    flags,
                    ttl: -1,
                },
            }
        }
        3..=4 => WriteRequest::Delete(DeleteRequest {
            path: path(rng),
            version: version(rng),
        }),
        5..=7 => WriteRequest::SetData(SetDataRequest {
            path: path(rng),
            data: Some(vec![rng.below(256) as u8; 2]),
            version: version(rng),
        }),
        _ => WriteRequest::Multi(
            (0..1 + rng.below(3))
                .map(|_| match rng.below(4) {
                    0 => MultiOp::Create {
                        op: OpCode::Create,
                        request: CreateRequest {
                            path: path(rng),
                            data: None,
                            acl: Acl::open_unsafe(),
                            flags: 0,
                        },
                    },
                    1 => MultiOp::Delete(DeleteRequest {
                        path: path(rng),
                        version: version(rng),
                    }),
                    2 => MultiOp::SetData(SetDataRequest {
                        path: path(rng),
                        data: Some(vec![7]),
                        version: version(rng),
                    }),
                    _ => MultiOp::Check(CheckVersionRequest {
                        path: path(rng),
                        version: version(rng),
                    }),
                })
                .collect(),
        ),
    };
    (session, request)
}

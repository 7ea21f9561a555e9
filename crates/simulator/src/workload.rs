//! The simulated clients and what they did: each client has a session and
//! at most one operation in flight, against a server the seed picks —
//! create, setData with and without a version, delete, multi, getData
//! after a ReadIndex round (`sync`), re-opening its session (live, or one
//! it closed) and closing it. Every operation's invocation and response go
//! into a history (`lincheck`), checked for linearizability at the end of
//! the run; an operation whose connection broke has an unknown outcome (it
//! may or may not have happened), as for a real client.
//!
//! Sessions are in the history as keys of their own (`@session/<id>`):
//! creating one is a create, closing it a delete, and a re-open a read of
//! it — so a re-open answered from a server's stale copy (without the
//! leader) shows as a stale read.

use std::collections::BTreeMap;

use consensus::driver::{Requester, Submission};
use consensus::random::SplitMix;
use lincheck::models::znode::{MultiOp, MultiResult, ZkError, ZnodeOp, ZnodeOutput};
use lincheck::{OpId, Recorder};
use proto::{
    Acl, CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, ErrorCode, OpCode,
    SetDataRequest,
};
use tree::{DataTree, Outcome, WriteRequest};

use crate::machine::{Registry, SimWrite};

/// The keys the clients write: top-level znodes, so that creates never
/// miss a parent and deletes never find children. A multi touches the
/// keys of one pair only, so the history splits into small parts the
/// checker searches quickly.
pub const KEYS: [&str; 6] = ["/k0", "/k1", "/k2", "/k3", "/k4", "/k5"];

pub fn session_key(session: i64) -> String {
    format!("@session/{session:x}")
}

/// What an operation waits for.
#[derive(Debug, Clone)]
enum Wait {
    /// A write's outcome at the server it was submitted to.
    Write(Requester),
    /// A ReadIndex round, then the value of `key` at that server.
    Read { context: u64, key: Key },
}

#[derive(Debug, Clone)]
enum Key {
    Node(String),
    Session(i64),
}

#[derive(Debug, Clone)]
struct InFlight {
    op: OpId,
    server: u64,
    /// When it started (the run's event count).
    since: u64,
    wait: Wait,
    /// A session this operation creates or closes.
    session: Option<(i64, bool)>,
}

#[derive(Debug, Default)]
struct Client {
    session: Option<i64>,
    /// Sessions it closed (acknowledged): re-opening one must fail.
    closed: Vec<i64>,
    cxid: i32,
    in_flight: Option<InFlight>,
}

/// What the cluster must do for a new operation.
#[derive(Debug)]
pub enum Action {
    Submit(Submission<SimWrite>),
    ReadIndex(u64),
}

/// How the counts of a run came out.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub invoked: u64,
    pub acknowledged: u64,
    pub unknown: u64,
    pub reads: u64,
}

pub struct Workload {
    pub recorder: Recorder<ZnodeOp, ZnodeOutput>,
    clients: Vec<Client>,
    next_session: i64,
    next_number: u64,
    next_context: u64,
    pub registry: Registry,
    pub counts: Counts,
    /// Every session ever created, for the final reads.
    pub sessions: Vec<i64>,
    /// The run's event count, set by the cluster before each call.
    pub now: u64,
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload")
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl Workload {
    pub fn new(clients: usize, registry: Registry) -> Workload {
        Workload {
            recorder: Recorder::new(),
            // One more than asked: the last one only reads at the end.
            clients: (0..=clients).map(|_| Client::default()).collect(),
            next_session: 0x1000,
            next_number: 1,
            next_context: 1,
            registry,
            counts: Counts::default(),
            sessions: Vec::new(),
            now: 0,
        }
    }

    /// Client `c` starts an operation against `server`, if it has none in
    /// flight.
    pub fn start(&mut self, rng: &mut SplitMix, c: usize, server: u64) -> Option<Action> {
        if self.clients.get(c)?.in_flight.is_some() {
            return None;
        }
        let Some(session) = self.clients[c].session else {
            let session = self.next_session;
            self.next_session += 1;
            let op = self.invoke(
                c,
                ZnodeOp::Create {
                    path: session_key(session),
                    data: "".into(),
                },
            );
            let write = WriteRequest::CreateSession {
                timeout_ms: 30_000,
                password: vec![c as u8; 16],
            };
            return Some(self.submit(c, server, op, session, 0, write, Some((session, true))));
        };
        let roll = rng.below(100);
        if roll < 30 {
            let key = pick_key(rng);
            let op = self.invoke(c, ZnodeOp::GetData { path: key.clone() });
            return Some(self.read(c, server, op, Key::Node(key)));
        }
        if roll < 35 {
            // Re-open a live session (elsewhere), or one this client closed.
            let target = match self.clients[c].closed.last() {
                Some(&closed) if rng.below(2) == 0 => closed,
                _ => session,
            };
            let op = self.invoke(
                c,
                ZnodeOp::GetData {
                    path: session_key(target),
                },
            );
            return Some(self.read(c, server, op, Key::Session(target)));
        }
        if roll < 37 {
            let op = self.invoke(
                c,
                ZnodeOp::Delete {
                    path: session_key(session),
                    version: None,
                },
            );
            let cxid = self.next_cxid(c);
            return Some(self.submit(
                c,
                server,
                op,
                session,
                cxid,
                WriteRequest::CloseSession,
                Some((session, false)),
            ));
        }
        let (znode_op, write) = random_write(rng, c, self.next_number);
        let op = self.invoke(c, znode_op);
        let cxid = self.next_cxid(c);
        Some(self.submit(c, server, op, session, cxid, write, None))
    }

    /// A read of every key and session at `server`, after the run settled:
    /// what is there now must agree with everything acknowledged.
    pub fn final_read(&mut self, c: usize, server: u64, key_index: usize) -> Option<Action> {
        let key = match KEYS.get(key_index) {
            Some(key) => Key::Node((*key).to_owned()),
            None => Key::Session(*self.sessions.get(key_index - KEYS.len())?),
        };
        let path = match &key {
            Key::Node(path) => path.clone(),
            Key::Session(s) => session_key(*s),
        };
        let op = self.invoke(c, ZnodeOp::GetData { path });
        Some(self.read(c, server, op, key))
    }

    pub fn final_reads(&self) -> usize {
        KEYS.len() + self.sessions.len()
    }

    pub fn idle(&self, c: usize) -> bool {
        self.clients.get(c).is_some_and(|c| c.in_flight.is_none())
    }

    /// The clients that run operations during a run.
    pub fn clients(&self) -> usize {
        self.clients.len() - 1
    }

    /// The client that reads everything at the end.
    pub fn verifier(&self) -> usize {
        self.clients.len() - 1
    }

    fn invoke(&mut self, c: usize, input: ZnodeOp) -> OpId {
        self.counts.invoked += 1;
        self.recorder.invoke(c as u64, input)
    }

    fn next_cxid(&mut self, c: usize) -> i32 {
        let client = &mut self.clients[c];
        client.cxid += 1;
        client.cxid
    }

    #[allow(clippy::too_many_arguments)]
    fn submit(
        &mut self,
        c: usize,
        server: u64,
        op: OpId,
        session_id: i64,
        cxid: i32,
        request: WriteRequest,
        session: Option<(i64, bool)>,
    ) -> Action {
        let number = self.next_number;
        self.next_number += 1;
        self.registry.borrow_mut().insert(number, request.clone());
        let requester = Requester { session_id, cxid };
        self.clients[c].in_flight = Some(InFlight {
            op,
            server,
            since: self.now,
            wait: Wait::Write(requester),
            session,
        });
        Action::Submit(Submission {
            requester,
            write: SimWrite { number, request },
        })
    }

    fn read(&mut self, c: usize, server: u64, op: OpId, key: Key) -> Action {
        let context = self.next_context;
        self.next_context += 1;
        self.clients[c].in_flight = Some(InFlight {
            op,
            server,
            since: self.now,
            wait: Wait::Read { context, key },
            session: None,
        });
        Action::ReadIndex(context)
    }

    /// A transaction applied at `server`: the answer to its requester, if
    /// it is a client of this server waiting for it.
    pub fn outcome(
        &mut self,
        server: u64,
        requester: Requester,
        outcome: &Outcome,
    ) -> Result<(), String> {
        let Some(c) = self.clients.iter().position(|c| {
            c.in_flight.as_ref().is_some_and(|f| {
                f.server == server && matches!(&f.wait, Wait::Write(r) if *r == requester)
            })
        }) else {
            return Ok(());
        };
        let Some(in_flight) = self.clients[c].in_flight.take() else {
            return Ok(());
        };
        let Some(input) = self
            .recorder
            .history()
            .get(in_flight.op)
            .map(|o| o.input.clone())
        else {
            return Ok(());
        };
        match output_of(&input, outcome) {
            Some(output) => {
                let ok = !matches!(output, ZnodeOutput::Error(_));
                self.recorder
                    .complete(in_flight.op, output)
                    .map_err(|e| e.to_string())?;
                self.counts.acknowledged += 1;
                if let Some((session, create)) = in_flight.session
                    && ok
                {
                    let client = &mut self.clients[c];
                    if create {
                        client.session = Some(session);
                        self.sessions.push(session);
                    } else {
                        client.session = None;
                        client.closed.push(session);
                    }
                }
            }
            None => self.unknown(c, in_flight)?,
        }
        Ok(())
    }

    /// A ReadIndex round `context` is done at `server`: the value is read
    /// from its tree now.
    pub fn read_ready(&mut self, server: u64, context: u64, tree: &DataTree) -> Result<(), String> {
        let Some(c) = self.clients.iter().position(|c| {
            c.in_flight.as_ref().is_some_and(|f| {
                f.server == server
                    && matches!(&f.wait, Wait::Read { context: x, .. } if *x == context)
            })
        }) else {
            return Ok(());
        };
        let Some(in_flight) = self.clients[c].in_flight.take() else {
            return Ok(());
        };
        let Wait::Read { key, .. } = &in_flight.wait else {
            return Ok(());
        };
        let output = match key {
            Key::Node(path) => match tree.node(path) {
                Some(node) => ZnodeOutput::Data {
                    data: node.data.clone().unwrap_or_default().into(),
                    version: node.stat.version,
                },
                None => ZnodeOutput::Error(ZkError::NoNode),
            },
            Key::Session(session) => match tree.session(*session) {
                Some(_) => ZnodeOutput::Data {
                    data: "".into(),
                    version: 0,
                },
                None => ZnodeOutput::Error(ZkError::NoNode),
            },
        };
        self.counts.reads += 1;
        self.recorder
            .complete(in_flight.op, output)
            .map_err(|e| e.to_string())
    }

    /// The read asked under `context` at `server` was refused (no leader).
    pub fn read_refused(&mut self, server: u64, context: u64) -> Result<(), String> {
        self.fail_where(|f| {
            f.server == server && matches!(&f.wait, Wait::Read { context: x, .. } if *x == context)
        })
    }

    /// A write submitted at `server` could not reach a leader.
    pub fn failed(&mut self, server: u64, requester: Requester) -> Result<(), String> {
        self.fail_where(|f| {
            f.server == server && matches!(&f.wait, Wait::Write(r) if *r == requester)
        })
    }

    /// `server` crashed, or its leader changed: every operation in flight
    /// through it has an unknown outcome (its client's connection broke).
    pub fn server_lost(&mut self, server: u64) -> Result<(), String> {
        while self
            .clients
            .iter()
            .any(|c| c.in_flight.as_ref().is_some_and(|f| f.server == server))
        {
            self.fail_where(|f| f.server == server)?;
        }
        Ok(())
    }

    /// A client gives up on an operation that waited longer than `patience`
    /// events (ZooKeeper's clients time out and reconnect): its outcome is
    /// unknown.
    pub fn time_out(&mut self, patience: u64) -> Result<(), String> {
        let now = self.now;
        while self.clients.iter().any(|c| {
            c.in_flight
                .as_ref()
                .is_some_and(|f| now.saturating_sub(f.since) > patience)
        }) {
            self.fail_where(|f| now.saturating_sub(f.since) > patience)?;
        }
        Ok(())
    }

    fn fail_where(&mut self, matches: impl Fn(&InFlight) -> bool) -> Result<(), String> {
        let Some(c) = self
            .clients
            .iter()
            .position(|c| c.in_flight.as_ref().is_some_and(&matches))
        else {
            return Ok(());
        };
        if let Some(in_flight) = self.clients[c].in_flight.take() {
            self.unknown(c, in_flight)?;
        }
        Ok(())
    }

    fn unknown(&mut self, c: usize, in_flight: InFlight) -> Result<(), String> {
        self.counts.unknown += 1;
        if let Some((session, _)) = in_flight.session {
            // Whether the session exists is unknown: the client starts a
            // new one (the other is read at the end all the same).
            let client = &mut self.clients[c];
            if client.session == Some(session) {
                client.session = None;
            }
            if !self.sessions.contains(&session) {
                self.sessions.push(session);
            }
        }
        self.recorder
            .fail_unknown(in_flight.op)
            .map_err(|e| e.to_string())
    }

    /// Operations still in flight at `server`, by read context.
    pub fn reads_at(&self, server: u64) -> BTreeMap<u64, usize> {
        self.clients
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match &c.in_flight {
                Some(InFlight {
                    server: s,
                    wait: Wait::Read { context, .. },
                    ..
                }) if *s == server => Some((*context, i)),
                _ => None,
            })
            .collect()
    }
}

fn pick_key(rng: &mut SplitMix) -> String {
    KEYS[rng.below(KEYS.len() as u64) as usize].to_owned()
}

fn pick_version(rng: &mut SplitMix) -> Option<i32> {
    match rng.below(3) {
        0 => None,
        v => Some(v as i32 - 1),
    }
}

/// A random write over the keys (so that writes collide), as the history
/// sees it and as the tree gets it. `number` makes the data unique.
fn random_write(rng: &mut SplitMix, c: usize, number: u64) -> (ZnodeOp, WriteRequest) {
    let data = format!("c{c}-{number}");
    let path = pick_key(rng);
    match rng.below(10) {
        0..=2 => (
            ZnodeOp::Create {
                path: path.clone(),
                data: data.as_str().into(),
            },
            WriteRequest::Create {
                op: OpCode::Create,
                request: CreateTtlRequest {
                    path,
                    data: Some(data.into_bytes()),
                    acl: Acl::open_unsafe(),
                    flags: 0,
                    ttl: -1,
                },
            },
        ),
        3 => {
            let version = pick_version(rng);
            (
                ZnodeOp::Delete {
                    path: path.clone(),
                    version,
                },
                WriteRequest::Delete(DeleteRequest {
                    path,
                    version: version.unwrap_or(-1),
                }),
            )
        }
        4..=7 => {
            let version = pick_version(rng);
            (
                ZnodeOp::SetData {
                    path: path.clone(),
                    data: data.as_str().into(),
                    version,
                },
                WriteRequest::SetData(SetDataRequest {
                    path,
                    data: Some(data.into_bytes()),
                    version: version.unwrap_or(-1),
                }),
            )
        }
        _ => {
            let mut ops = Vec::new();
            let mut history = Vec::new();
            let pair = 2 * rng.below(KEYS.len() as u64 / 2) as usize;
            for i in 0..1 + rng.below(3) {
                let path = KEYS[pair + rng.below(2) as usize].to_owned();
                let data = format!("{data}-{i}");
                match rng.below(4) {
                    0 => {
                        history.push(MultiOp::Create {
                            path: path.clone(),
                            data: data.as_str().into(),
                        });
                        ops.push(proto::MultiOp::Create {
                            op: OpCode::Create,
                            request: CreateRequest {
                                path,
                                data: Some(data.into_bytes()),
                                acl: Acl::open_unsafe(),
                                flags: 0,
                            },
                        });
                    }
                    1 => {
                        let version = pick_version(rng);
                        history.push(MultiOp::Delete {
                            path: path.clone(),
                            version,
                        });
                        ops.push(proto::MultiOp::Delete(DeleteRequest {
                            path,
                            version: version.unwrap_or(-1),
                        }));
                    }
                    2 => {
                        let version = pick_version(rng);
                        history.push(MultiOp::SetData {
                            path: path.clone(),
                            data: data.as_str().into(),
                            version,
                        });
                        ops.push(proto::MultiOp::SetData(SetDataRequest {
                            path,
                            data: Some(data.into_bytes()),
                            version: version.unwrap_or(-1),
                        }));
                    }
                    _ => {
                        let version = rng.below(3) as i32;
                        history.push(MultiOp::CheckVersion {
                            path: path.clone(),
                            version,
                        });
                        ops.push(proto::MultiOp::Check(CheckVersionRequest { path, version }));
                    }
                }
            }
            (ZnodeOp::Multi(history), WriteRequest::Multi(ops))
        }
    }
}

fn zk_error(code: ErrorCode) -> Option<ZkError> {
    match code {
        ErrorCode::NoNode => Some(ZkError::NoNode),
        ErrorCode::NodeExists => Some(ZkError::NodeExists),
        ErrorCode::BadVersion => Some(ZkError::BadVersion),
        _ => None,
    }
}

/// The history's output for a transaction's outcome; `None` for an
/// outcome the model does not know (the operation then counts as
/// unknown).
fn output_of(input: &ZnodeOp, outcome: &Outcome) -> Option<ZnodeOutput> {
    Some(match outcome {
        Outcome::Created { .. } | Outcome::SessionCreated => ZnodeOutput::Created,
        Outcome::DataSet { stat } => ZnodeOutput::Set {
            version: stat.version,
        },
        Outcome::Deleted | Outcome::SessionClosed => ZnodeOutput::Deleted,
        Outcome::Checked => ZnodeOutput::Checked,
        Outcome::Error(code) => ZnodeOutput::Error(zk_error(*code)?),
        Outcome::AclSet { .. } => return None,
        Outcome::Multi(results) => {
            let failed = results.iter().position(|r| {
                matches!(r, Outcome::Error(code)
                    if *code != ErrorCode::Ok && *code != ErrorCode::RuntimeInconsistency)
            });
            match failed {
                Some(index) => {
                    let Outcome::Error(code) = &results[index] else {
                        return None;
                    };
                    ZnodeOutput::Multi(MultiResult::Failed {
                        index,
                        error: zk_error(*code)?,
                    })
                }
                None => {
                    let ZnodeOp::Multi(ops) = input else {
                        return None;
                    };
                    if ops.len() != results.len() {
                        return None;
                    }
                    let outputs = results
                        .iter()
                        .map(|r| output_of(input, r))
                        .collect::<Option<Vec<_>>>()?;
                    ZnodeOutput::Multi(MultiResult::Ok(outputs))
                }
            }
        }
    })
}

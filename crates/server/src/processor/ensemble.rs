//! The ZooKeeper layer as a member of an ensemble: the driver's state
//! machine (`consensus::driver::StateMachine`), and what its clients need
//! of the driver.
//!
//! - Writes are submitted to the driver, which has the leader prepare them
//!   here (`prepare`: against the tree plus the writes prepared before,
//!   exactly as a standalone server does) and hands every committed one
//!   back to apply (`apply`, the same path as a standalone server's). The
//!   server whose client sent a write answers it then, matching it by
//!   (session, cxid).
//! - Sessions are global: created and closed through the log on any
//!   server; the leader alone expires them, from the activity followers
//!   report with their status.
//! - `sync` is a ReadIndex round, and so is a session re-open: answered
//!   once the leader has confirmed with a quorum that it still leads and
//!   this server has applied up to the commit index it had then.
//! - Without a leader this server serves nobody: new sessions are refused
//!   and clients are disconnected, as a ZooKeeper server that lost its
//!   quorum does; they reconnect to a server that has one.
//!
//! What the ZooKeeper layer asks of the driver while it handles a request
//! (a write, a ReadIndex round) is queued and handed over by the processor
//! once the request is done (`Processor::settle`): the driver may be in
//! the middle of calling back into this layer when a request runs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use consensus::driver::{
    ApplyKind, Applying, Installed, MembershipOp, MembershipResult, Prepared, Requester, RoleView,
    SnapshotId, Staged, StateMachine, Submission,
};
use consensus::membership::{Membership, ReconfigError};
use consensus::{Proposed, Role};
use proto::{ErrorCode, Id, OpCode, PathResponse, Response, perms};
use storage::ApplyBatch;
use storage::image::{FileDir, Images, Restored};
use storage::writer::WriteCommand;
use tokio::sync::oneshot;
use tree::{CONFIG, Context, Pending, Txn, TxnOp, WriteRequest};

use super::connect::PendingReopen;
use super::pipeline::Waiter;
use super::{EnsembleDriver, ZooKeeper};
use crate::membership::{reconfig_error_code, target_of};
use crate::service_message::{Forwarded, ForwardedWrite, decode_report, encode_report};
use crate::sessions::ConnId;
use crate::stats::wall_clock_ms;

/// A write as the driver carries it: what to prepare, with the identities
/// of the client's connection (for ACL checks on the leader).
#[derive(Debug, Clone, PartialEq)]
pub struct ZkWrite {
    kind: WriteKind,
    auth: Vec<Id>,
}

/// What a write is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum WriteKind {
    Write(WriteRequest),
    /// Committed as an error transaction (a write whose body did not
    /// parse).
    Error(ErrorCode),
}

/// What the ZooKeeper layer asks of the driver.
#[derive(Debug)]
pub(super) enum DriverCall {
    Submit(Submission<ZkWrite>),
    ReadIndex(u64),
    Membership(MembershipOp, u64),
}

/// What waits for a ReadIndex round, then for the apply.
#[derive(Debug)]
enum ReadIndexWaiter {
    Sync {
        conn: ConnId,
        xid: i32,
        path: String,
        received: Instant,
    },
    /// A session re-opened by a client.
    Reopen(PendingReopen),
}

impl ReadIndexWaiter {
    fn conn(&self) -> ConnId {
        match self {
            ReadIndexWaiter::Sync { conn, .. } => *conn,
            ReadIndexWaiter::Reopen(reopen) => reopen.conn,
        }
    }
}

/// The ensemble side of the ZooKeeper layer.
#[derive(Debug)]
pub(crate) struct Replicated {
    /// This server's part, as the driver last said.
    view: RoleView,
    /// Clients' writes not yet applied, by requester.
    awaiting: HashMap<Requester, Waiter>,
    /// Syncs and re-opened sessions waiting for their ReadIndex round.
    reads: HashMap<u64, ReadIndexWaiter>,
    next_read: u64,
    /// Sessions with client activity since the last report to the leader.
    touched: HashSet<i64>,
    /// What to hand to the driver once the current request is done.
    calls: VecDeque<DriverCall>,
    /// Admin membership requests waiting for their answer, by ticket.
    tickets: HashMap<u64, oneshot::Sender<MembershipResult>>,
    next_ticket: u64,
    /// Snapshot images: made here to send, or received to install.
    images: Images<FileDir>,
    /// Where the thread making an image leaves its outcome.
    made: Arc<Mutex<Option<Result<SnapshotId, String>>>>,
}

impl Replicated {
    /// `images` is the directory snapshot images are kept in.
    pub(super) fn new(images: &Path) -> Replicated {
        Replicated {
            view: RoleView {
                role: Role::Follower,
                leader: None,
                term: 0,
                leader_changed: false,
                serving: false,
                planned_handover: false,
            },
            awaiting: HashMap::new(),
            reads: HashMap::new(),
            next_read: 1,
            touched: HashSet::new(),
            calls: VecDeque::new(),
            tickets: HashMap::new(),
            next_ticket: 1,
            images: Images::open(FileDir::new(images)),
            made: Arc::new(Mutex::new(None)),
        }
    }

    /// A leader is known and this server is a member with its state.
    pub(super) fn serving(&self) -> bool {
        self.view.serving
    }

    pub(super) fn leads(&self) -> bool {
        self.view.role == Role::Leader
    }

    /// An admin membership request, handed to the driver with a ticket.
    pub(super) fn membership_request(
        &mut self,
        op: MembershipOp,
        answer: oneshot::Sender<MembershipResult>,
    ) {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.tickets.insert(ticket, answer);
        self.calls.push_back(DriverCall::Membership(op, ticket));
    }
}

/// Hands one queued call to the driver.
pub(super) fn call_driver(driver: &mut EnsembleDriver, call: DriverCall, zk: &mut ZooKeeper) {
    match call {
        DriverCall::Submit(submission) => driver.submit(submission, zk),
        DriverCall::ReadIndex(context) => {
            if driver.read_index(context).is_err() {
                zk.read_index_refused(context);
            }
        }
        DriverCall::Membership(op, ticket) => driver.membership_request(op, ticket, zk),
    }
}

impl ZooKeeper {
    fn replicated(&mut self) -> Option<&mut Replicated> {
        self.ensemble.as_mut()
    }

    pub(super) fn take_driver_calls(&mut self) -> Vec<DriverCall> {
        self.ensemble
            .as_mut()
            .map(|e| e.calls.drain(..).collect())
            .unwrap_or_default()
    }

    /// A write of this server's (a client's, or the leader's own expiry and
    /// reaping), for the driver to propose or forward. Its waiter is
    /// answered when it is applied.
    pub(super) fn submit_replicated(
        &mut self,
        kind: WriteKind,
        session_id: i64,
        cxid: i32,
        auth_conn: Option<ConnId>,
        waiter: Waiter,
    ) {
        let auth: Vec<Id> = auth_conn
            .and_then(|c| self.conns.get(&c))
            .map(|c| c.auth.clone())
            .unwrap_or_default();
        let requester = Requester { session_id, cxid };
        let conn = waiter.conn();
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        if conn.is_some() {
            ensemble.awaiting.insert(requester, waiter);
        }
        ensemble.calls.push_back(DriverCall::Submit(Submission {
            requester,
            write: ZkWrite { kind, auth },
        }));
        if let Some(c) = conn.and_then(|c| self.conns.get_mut(&c)) {
            c.pending_writes += 1;
        }
    }

    /// Notes client activity of a session, for the leader's expiry.
    pub(super) fn touch_replicated(&mut self, session_id: i64) {
        if let Some(ensemble) = self.replicated()
            && !ensemble.leads()
            && session_id != 0
        {
            ensemble.touched.insert(session_id);
        }
    }

    /// `sync` in an ensemble: a ReadIndex round. Later requests of the
    /// connection wait for it like for a write.
    pub(super) fn sync_replicated(
        &mut self,
        conn: ConnId,
        xid: i32,
        path: String,
        received: Instant,
    ) {
        self.start_read_index(ReadIndexWaiter::Sync {
            conn,
            xid,
            path,
            received,
        });
        if let Some(c) = self.conns.get_mut(&conn) {
            c.pending_writes += 1;
        }
    }

    /// A session re-opened by a client: decided once this server has
    /// applied what the leader had committed when asked
    /// (`connect::finish_reopen`).
    pub(super) fn revalidate_session(&mut self, reopen: PendingReopen) {
        self.start_read_index(ReadIndexWaiter::Reopen(reopen));
    }

    fn start_read_index(&mut self, waiter: ReadIndexWaiter) {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        let context = ensemble.next_read;
        ensemble.next_read += 1;
        ensemble.reads.insert(context, waiter);
        ensemble.calls.push_back(DriverCall::ReadIndex(context));
    }

    /// The driver refused a round (no leader): the client goes, and tries
    /// another server.
    fn read_index_refused(&mut self, context: u64) {
        if let Some(waiter) = self.replicated().and_then(|e| e.reads.remove(&context)) {
            self.close(waiter.conn());
        }
    }

    fn answer_sync(&mut self, conn: ConnId, xid: i32, path: String, received: Instant) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.pending_writes = c.pending_writes.saturating_sub(1);
        }
        let zxid = self.tree.last_zxid();
        let body = Response::Sync(PathResponse { path });
        self.reply(
            conn,
            xid,
            zxid,
            ErrorCode::Ok,
            &body,
            OpCode::Sync,
            received,
        );
        self.drain_queue(conn);
    }

    /// A client's write that cannot be carried out now (no leader, or
    /// leadership changed under it): its connection is closed, as
    /// ZooKeeper closes a connection whose server lost its leader; the
    /// client reconnects and learns the outcome by reading.
    fn fail_write(&mut self, requester: Requester) {
        if let Some(waiter) = self
            .replicated()
            .and_then(|e| e.awaiting.remove(&requester))
            && let Some(conn) = waiter.conn()
        {
            self.close(conn);
        }
    }

    /// A client's reconfig that no leader will finish any more (its leader
    /// left and handed the job on, which never answered) ends its
    /// connection; checked every tick.
    pub(super) fn fail_stale_reconfigs(&mut self) {
        let deadline_ms = u64::from(self.config.init_limit.unwrap_or(10).max(1))
            * u64::from(self.config.tick_time_ms)
            * 3;
        let timeout =
            std::time::Duration::from_millis(deadline_ms).max(std::time::Duration::from_secs(30));
        let stale: Vec<Requester> = self
            .ensemble
            .as_ref()
            .map(|e| {
                e.awaiting
                    .iter()
                    .filter(|(_, w)| w.is_reconfig() && w.waited() > timeout)
                    .map(|(k, _)| *k)
                    .collect()
            })
            .unwrap_or_default();
        for requester in stale {
            self.fail_write(requester);
        }
    }

    /// Tracks every session of the tree with its full timeout from `now`,
    /// keeping the connection attached to it, if any.
    fn track_tree_sessions(&mut self, now: u64) {
        for (id, session) in self.tree.sessions() {
            let owner = self.sessions.owner(*id);
            self.sessions.track(*id, session.timeout_ms, owner, now);
        }
    }

    /// A client's reconfig, checked as ZooKeeper checks it, in its order:
    /// enabled, the target (version and arguments), then WRITE on
    /// `/zookeeper/config`. The session is not checked here but by the
    /// server the client is connected to: the leader may not have applied
    /// its creation yet.
    fn check_reconfig(
        &self,
        request: &proto::ReconfigRequest,
        auth: &[Id],
        membership: &Membership,
    ) -> Result<Vec<consensus::membership::Member>, ReconfigError> {
        if !self.features.reconfig_enabled {
            return Err(ReconfigError::Disabled);
        }
        let target = target_of(membership, request, self.config.standalone_enabled)?;
        let acl = self
            .tree
            .node(CONFIG)
            .map(|n| n.acl.as_ref().clone())
            .unwrap_or_default();
        tree::acl::check(
            &acl,
            perms::WRITE,
            auth,
            self.features.skip_acl,
            self.features.acl_providers,
        )
        .map_err(|_| ReconfigError::NoAuth)?;
        Ok(target)
    }

    /// `/zookeeper/config` := the membership, as ZooKeeper's reconfig
    /// transaction sets it (version -1, fires watches), answering the
    /// reconfig it completes.
    fn write_config(
        &mut self,
        membership: &Membership,
        answers: Option<Requester>,
        time_ms: i64,
        batch: &mut ApplyBatch,
    ) {
        let (session_id, cxid) = answers.map_or((0, 0), |r| (r.session_id, r.cxid));
        let txn = Txn {
            session_id,
            cxid,
            zxid: membership.version,
            time_ms,
            op: TxnOp::SetData {
                path: CONFIG.to_owned(),
                data: Some(membership.render().into_bytes()),
                version: -1,
            },
        };
        let waiter = answers.and_then(|r| self.replicated().and_then(|e| e.awaiting.remove(&r)));
        self.apply_txn(&txn, waiter, batch);
    }

    fn error_txn(&self, requester: Requester, code: ErrorCode, at: Proposed) -> Vec<u8> {
        storage::encode_txn(&Txn {
            session_id: requester.session_id,
            cxid: requester.cxid,
            zxid: at.zxid,
            time_ms: wall_clock_ms(),
            op: TxnOp::Error(code),
        })
    }
}

impl StateMachine<ZkWrite> for ZooKeeper {
    fn prepare(
        &mut self,
        submission: &Submission<ZkWrite>,
        at: Proposed,
        membership: &Membership,
    ) -> Prepared {
        let Submission { requester, write } = submission;
        let time_ms = wall_clock_ms();
        let request = match &write.kind {
            WriteKind::Write(WriteRequest::Reconfig(request)) => {
                return match self.check_reconfig(request, &write.auth, membership) {
                    Ok(target) => Prepared::Reconfig { target },
                    Err(e) => {
                        tracing::info!(error = %e, "reconfig refused");
                        Prepared::Entry(self.error_txn(*requester, reconfig_error_code(&e), at))
                    }
                };
            }
            WriteKind::Write(request) => request,
            WriteKind::Error(code) => {
                return Prepared::Entry(self.error_txn(*requester, *code, at));
            }
        };
        let ctx = Context {
            session_id: requester.session_id,
            cxid: requester.cxid,
            zxid: at.zxid,
            time_ms,
            auth: &write.auth,
            features: &self.features,
        };
        let txn = tree::prepare(&self.tree, &mut self.pending, request, &ctx);
        Prepared::Entry(storage::encode_txn(&txn))
    }

    fn refusal(&mut self, requester: Requester, error: &ReconfigError, at: Proposed) -> Vec<u8> {
        self.error_txn(requester, reconfig_error_code(error), at)
    }

    fn apply(&mut self, entry: Applying<'_>) -> Result<(), String> {
        match entry.kind {
            ApplyKind::Txn(bytes) => {
                let txn = storage::decode_txn(bytes).map_err(|e| e.to_string())?;
                if txn.zxid != entry.zxid {
                    return Err(format!(
                        "it carries zxid {:#x}, its position says {:#x}",
                        txn.zxid, entry.zxid
                    ));
                }
                let requester = Requester {
                    session_id: txn.session_id,
                    cxid: txn.cxid,
                };
                let waiter = self
                    .replicated()
                    .and_then(|e| e.awaiting.remove(&requester));
                let mut batch = std::mem::take(&mut self.apply_batch);
                self.apply_txn(&txn, waiter, &mut batch);
                self.apply_batch = batch;
            }
            ApplyKind::LeaderStart => self.tree.advance_zxid(entry.zxid),
            ApplyKind::Membership {
                membership,
                answers,
                time_ms,
            } => {
                let mut batch = std::mem::take(&mut self.apply_batch);
                self.write_config(membership, answers, time_ms, &mut batch);
                self.apply_batch = batch;
            }
        }
        Ok(())
    }

    fn applied(&mut self, index: u64, zxid: i64) {
        let mut batch = std::mem::take(&mut self.apply_batch);
        batch.applied_index = index;
        batch.applied_zxid = zxid;
        self.writer.send(WriteCommand::Apply(batch));
    }

    /// The image is made from a view of the store taken by the log writer
    /// (after the apply batch of `index`, so it holds exactly that state),
    /// on a thread of its own: clients are served meanwhile.
    fn make_snapshot(&mut self, index: u64, term: u64, _zxid: i64, in_use: &[SnapshotId]) {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        let made = ensemble.made.clone();
        let dir = ensemble.images.dir().clone();
        let asked = Instant::now();
        let keep = in_use.to_vec();
        let sent = self.writer.send(WriteCommand::View(Box::new(move |view| {
            // How long the log writer took to get to the view and take it
            // (writes wait meanwhile).
            let view_ms = asked.elapsed().as_millis() as u64;
            let view = match view {
                Ok(view) => view,
                Err(e) => {
                    *lock(&made) = Some(Err(format!("taking a view of the store: {e}")));
                    return;
                }
            };
            let spawned = std::thread::Builder::new()
                .name("image-maker".into())
                .spawn({
                    let made = made.clone();
                    move || {
                        let started = Instant::now();
                        let outcome = Images::make(&dir, view.as_ref(), index, term, &keep)
                            .map_err(|e| e.to_string());
                        if let Ok(id) = &outcome {
                            tracing::info!(
                                image = %id,
                                view_ms,
                                took_ms = started.elapsed().as_millis() as u64,
                                "wrote a snapshot's image"
                            );
                        }
                        *lock(&made) = Some(outcome);
                    }
                });
            if let Err(e) = spawned {
                *lock(&made) = Some(Err(format!("starting the image maker: {e}")));
            }
        })));
        if !sent {
            *lock(&ensemble.made) = Some(Err("the log writer is gone".into()));
        }
    }

    fn snapshot_made(&mut self) -> Option<Result<SnapshotId, String>> {
        lock(&self.ensemble.as_ref()?.made).take()
    }

    fn read_snapshot(
        &mut self,
        id: &SnapshotId,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, String> {
        let ensemble = self.ensemble.as_ref().ok_or("not in an ensemble")?;
        ensemble.images.read(id, offset, len)
    }

    fn receive_snapshot(
        &mut self,
        id: &SnapshotId,
        offset: u64,
        bytes: &[u8],
    ) -> Result<Staged, String> {
        let ensemble = self.ensemble.as_mut().ok_or("not in an ensemble")?;
        ensemble.images.receive(id, offset, bytes)
    }

    fn check_snapshot(&mut self, index: u64, term: u64, data: &[u8]) -> Result<(), String> {
        let ensemble = self.ensemble.as_mut().ok_or("not in an ensemble")?;
        ensemble.images.prepare(index, term, data)
    }

    /// Catching up by snapshot: the tree becomes the leader's as of the
    /// snapshot's index. Clients connected here are disconnected (they
    /// reconnect and re-register their watches, which fire for what
    /// changed).
    fn install_snapshot(
        &mut self,
        index: u64,
        term: u64,
        data: &[u8],
    ) -> Result<Installed, String> {
        let ensemble = self.ensemble.as_mut().ok_or("not in an ensemble")?;
        let Restored {
            tree,
            zxid,
            install,
        } = ensemble.images.take(index, term, data)?;
        self.writer.send(install);
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.close(conn);
        }
        self.tree = tree;
        self.pending = Pending::new();
        self.apply_batch = ApplyBatch::default();
        // Every connection was closed above: no session has an owner.
        let now = self.now_ms();
        self.track_tree_sessions(now);
        let membership = storage::consensus_log::committed_membership(&self.tree)
            .map_err(|e| format!("the snapshot's /zookeeper/config: {e}"))?;
        Ok(Installed { zxid, membership })
    }

    fn check_entry(&mut self, data: &[u8]) -> Result<(), String> {
        storage::decode_txn(data)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn bootstrap(&mut self, index: u64, term: u64, zxid: i64, membership: &Membership) {
        storage::recovery::set_static_membership(&mut self.tree, zxid, &membership.render());
        let image = storage::recovery::image_of(&self.tree, index, term, zxid);
        self.writer
            .send(WriteCommand::InstallImage(Box::new(image)));
    }

    /// A new role or leader. Writes and syncs in flight through a leader
    /// that is gone fail (their clients reconnect); without a leader nobody
    /// is served.
    fn role_changed(&mut self, view: RoleView) {
        let now = self.now_ms();
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        ensemble.view = view;
        if !view.leader_changed {
            return;
        }
        // Prepared writes of a lost leadership are forgotten; those that
        // still commit are applied like anyone else's.
        self.pending = Pending::new();
        let mut doomed: Vec<ConnId> = Vec::new();
        // A reconfig may outlive its leader (one that leaves hands the job
        // over): its waiter stays, with a deadline (`fail_stale_reconfigs`).
        let (kept, failed): (Vec<_>, Vec<_>) = ensemble
            .awaiting
            .drain()
            .partition(|(_, w)| w.is_reconfig());
        ensemble.awaiting.extend(kept);
        doomed.extend(failed.into_iter().filter_map(|(_, w)| w.conn()));
        doomed.extend(ensemble.reads.drain().map(|(_, w)| w.conn()));
        if view.serving {
            // Read-only sessions end with the read-only mode, as when
            // ZooKeeper's read-only server makes way for a follower.
            doomed.extend(
                self.conns
                    .iter()
                    .filter(|(_, c)| c.read_only)
                    .map(|(id, _)| *id),
            );
        } else if view.planned_handover {
            // The new leader is moments away; only the clients with writes
            // in flight (doomed above) lose their connection.
        } else {
            // No quorum: ZooKeeper's servers drop their clients then.
            doomed.extend(self.conns.keys().copied());
        }
        for conn in doomed {
            self.close(conn);
        }
        if view.role == Role::Leader {
            // The new leader expires sessions from now on: each gets its
            // full timeout to show activity (as after a restart).
            self.track_tree_sessions(now);
        }
    }

    fn read_index_ready(&mut self, context: u64) {
        let Some(waiter) = self.replicated().and_then(|e| e.reads.remove(&context)) else {
            return;
        };
        match waiter {
            ReadIndexWaiter::Sync {
                conn,
                xid,
                path,
                received,
            } => self.answer_sync(conn, xid, path, received),
            ReadIndexWaiter::Reopen(reopen) => self.finish_reopen(reopen),
        }
    }

    fn submission_failed(&mut self, requester: Requester) {
        self.fail_write(requester);
    }

    fn leader_unreachable(&mut self) {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        let mut doomed: Vec<ConnId> = Vec::new();
        let (kept, failed): (Vec<_>, Vec<_>) = ensemble
            .awaiting
            .drain()
            .partition(|(_, w)| w.is_reconfig());
        ensemble.awaiting.extend(kept);
        doomed.extend(failed.into_iter().filter_map(|(_, w)| w.conn()));
        doomed.extend(ensemble.reads.drain().map(|(_, w)| w.conn()));
        if !doomed.is_empty() {
            tracing::info!(
                clients = doomed.len(),
                "the connection to the leader broke: failing what went through it"
            );
        }
        for conn in doomed {
            self.close(conn);
        }
    }

    fn encode_submission(&self, submission: &Submission<ZkWrite>) -> Vec<u8> {
        let write = match &submission.write.kind {
            WriteKind::Write(WriteRequest::CreateSession {
                timeout_ms,
                password,
            }) => Forwarded::CreateSession {
                timeout_ms: *timeout_ms,
                password: password.clone(),
            },
            WriteKind::Write(write) => match super::writes::request_of(write) {
                Some(request) => Forwarded::Request(request),
                None => Forwarded::Error(ErrorCode::MarshallingError.code()),
            },
            WriteKind::Error(code) => Forwarded::Error(code.code()),
        };
        ForwardedWrite {
            auth: submission.write.auth.clone(),
            write,
        }
        .encode(submission.requester.cxid)
    }

    fn decode_submission(
        &mut self,
        requester: Requester,
        bytes: &[u8],
    ) -> Result<Submission<ZkWrite>, String> {
        let forwarded = ForwardedWrite::decode(bytes).map_err(|e| e.to_string())?;
        let kind = match forwarded.write {
            Forwarded::Request(request) => {
                if request.op() == OpCode::CloseSession {
                    // From now on the session cannot expire.
                    self.sessions.remove(requester.session_id);
                }
                match super::writes::write_request(request) {
                    Some(write) => WriteKind::Write(write),
                    None => return Err("a forwarded request that is not a write".into()),
                }
            }
            Forwarded::CreateSession {
                timeout_ms,
                password,
            } => WriteKind::Write(WriteRequest::CreateSession {
                timeout_ms,
                password,
            }),
            Forwarded::Error(code) => {
                WriteKind::Error(ErrorCode::from_code(code).unwrap_or(ErrorCode::MarshallingError))
            }
        };
        Ok(Submission {
            requester,
            write: ZkWrite {
                kind,
                auth: forwarded.auth,
            },
        })
    }

    fn status_report(&mut self) -> Vec<u8> {
        let sessions: Vec<i64> = self
            .replicated()
            .map(|e| e.touched.drain().collect())
            .unwrap_or_default();
        encode_report(&sessions)
    }

    fn status_heard(&mut self, from: u64, report: &[u8]) {
        let now = self.now_ms();
        match decode_report(report) {
            Ok(sessions) => {
                for session in sessions {
                    self.sessions.touch(session, now);
                }
            }
            Err(e) => tracing::warn!(peer = from, error = %e, "undecodable status report"),
        }
    }

    fn membership_answered(&mut self, ticket: u64, result: MembershipResult) {
        if let Some(answer) = self.replicated().and_then(|e| e.tickets.remove(&ticket)) {
            let _ = answer.send(result);
        }
    }

    fn removed(&mut self) {
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.close(conn);
        }
    }
}

/// The made-image slot, locked (a panic while it was held leaves at worst
/// no outcome, and the driver makes another image).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

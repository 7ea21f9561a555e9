//! The write pipeline: a write is prepared (against the tree plus the writes
//! still in flight), appended to the log, and applied only once the log
//! writer reports it durable; then its watches fire and it is answered.
//!
//! Per-connection order: a connection's writes are prepared in order and
//! applied in log order, so their replies leave in order. A read (or any
//! request that is not a write) waits in the connection's queue while the
//! connection has writes in flight, so a read after a write observes it and
//! its reply follows the write's. Requests that arrive while a new session
//! is being created wait the same way.

use std::time::Instant;

use proto::{ConnectResponse, ErrorCode, OpCode, Request, RequestError, RequestHeader, Response};
use storage::{ApplyBatch, EntryKind, LogEntry};
use tree::{Context, Outcome, Txn, TxnOp, WriteRequest, prepare};

use super::{Outgoing, ZooKeeper, writes};
use crate::sessions::ConnId;
use crate::stats::wall_clock_ms;
use storage::writer::{SyncStats, WriteCommand};

/// A request waiting in its connection's queue.
#[derive(Debug)]
pub(super) enum Queued {
    Request {
        header: RequestHeader,
        request: Request,
        received: Instant,
    },
    Undecodable {
        header: RequestHeader,
        error: RequestError,
        received: Instant,
    },
}

impl Queued {
    /// Writes may be prepared while earlier writes are in flight; anything
    /// else must wait until they are applied.
    fn is_write(&self) -> bool {
        match self {
            Queued::Request { request, .. } => writes::is_write(request),
            Queued::Undecodable {
                error: RequestError::Malformed { op, .. },
                ..
            } => writes::is_write_op(*op),
            Queued::Undecodable { .. } => false,
        }
    }
}

/// Who is waiting for a transaction's outcome.
#[derive(Debug)]
pub(super) enum Waiter {
    /// A client's write, answered from the outcome.
    Client {
        conn: ConnId,
        xid: i32,
        op: OpCode,
        received: Instant,
    },
    /// A write whose body did not parse: answered MarshallingError with the
    /// zxid it consumed.
    Malformed {
        conn: ConnId,
        xid: i32,
        op: OpCode,
        received: Instant,
    },
    /// A new session, answered with the connect response.
    NewSession {
        conn: ConnId,
        timeout_ms: i32,
        read_only: Option<bool>,
        password: Vec<u8>,
    },
    /// An expired session's close: the connection still holding it closes.
    Expired { owner: Option<ConnId> },
    /// Container and TTL reaping.
    Internal,
}

impl Waiter {
    pub(super) fn conn(&self) -> Option<ConnId> {
        match self {
            Waiter::Client { conn, .. }
            | Waiter::Malformed { conn, .. }
            | Waiter::NewSession { conn, .. } => Some(*conn),
            Waiter::Expired { .. } | Waiter::Internal => None,
        }
    }

    /// A client's reconfig (which may outlive a leader).
    pub(super) fn is_reconfig(&self) -> bool {
        matches!(
            self,
            Waiter::Client {
                op: OpCode::Reconfig,
                ..
            }
        )
    }

    /// How long a client's request has waited.
    pub(super) fn waited(&self) -> std::time::Duration {
        match self {
            Waiter::Client { received, .. } | Waiter::Malformed { received, .. } => {
                received.elapsed()
            }
            _ => std::time::Duration::ZERO,
        }
    }
}

/// A transaction appended to the log and not yet applied.
#[derive(Debug)]
pub(super) struct InFlight {
    index: u64,
    txn: Txn,
    waiter: Waiter,
}

impl ZooKeeper {
    /// Prepares a write for `session_id` with the identities of `auth_conn`
    /// (none for internal writes) and sends it to the log.
    pub(super) fn submit(
        &mut self,
        write: &WriteRequest,
        session_id: i64,
        cxid: i32,
        auth_conn: Option<ConnId>,
        waiter: Waiter,
    ) {
        if self.ensemble.is_some() {
            let kind = super::ensemble::WriteKind::Write(write.clone());
            self.submit_replicated(kind, session_id, cxid, auth_conn, waiter);
            return;
        }
        let auth = auth_conn
            .and_then(|c| self.conns.get(&c))
            .map(|c| c.auth.as_slice())
            .unwrap_or_default();
        let ctx = Context {
            session_id,
            cxid,
            zxid: self.next_zxid(),
            time_ms: wall_clock_ms(),
            auth,
            features: &self.features,
        };
        let txn = prepare(&self.tree, &mut self.pending, write, &ctx);
        self.submit_txn(txn, waiter);
    }

    /// A standalone server's zxids are its log indexes (epoch 0).
    fn next_zxid(&self) -> i64 {
        i64::try_from(self.next_index).unwrap_or(i64::MAX)
    }

    /// A write that failed before it could be prepared still takes a zxid.
    pub(super) fn submit_error(
        &mut self,
        session_id: i64,
        cxid: i32,
        code: ErrorCode,
        waiter: Waiter,
    ) {
        if self.ensemble.is_some() {
            let kind = super::ensemble::WriteKind::Error(code);
            self.submit_replicated(kind, session_id, cxid, None, waiter);
            return;
        }
        let txn = Txn {
            session_id,
            cxid,
            zxid: self.next_zxid(),
            time_ms: wall_clock_ms(),
            op: TxnOp::Error(code),
        };
        self.submit_txn(txn, waiter);
    }

    fn submit_txn(&mut self, txn: Txn, waiter: Waiter) {
        let index = self.next_index;
        self.next_index += 1;
        let entry = LogEntry {
            index,
            term: 0,
            kind: EntryKind::Txn,
            data: storage::encode_txn(&txn),
        };
        if !self.writer.send(WriteCommand::Append(vec![entry])) {
            // The writer has stopped: the failure is being reported through
            // its event channel and the server is going down. Nothing more
            // can become durable, so nothing more is answered.
            return;
        }
        if let Some(conn) = waiter.conn().and_then(|c| self.conns.get_mut(&c)) {
            conn.pending_writes += 1;
        }
        self.inflight.push_back(InFlight { index, txn, waiter });
    }

    /// The log is durable up to `index`: apply what it covers, in order,
    /// write the effects to the store, fire watches, answer (standalone).
    pub(super) fn durable(&mut self, index: u64, sync: SyncStats) {
        self.stats.record_sync(sync.entries, sync.duration);
        let mut batch = ApplyBatch::default();
        while self.inflight.front().is_some_and(|f| f.index <= index) {
            let Some(InFlight { index, txn, waiter }) = self.inflight.pop_front() else {
                break;
            };
            self.apply_txn(&txn, Some(waiter), &mut batch);
            batch.applied_index = index;
            batch.applied_zxid = txn.zxid;
        }
        if batch.applied_index > 0 {
            let applied_index = batch.applied_index;
            self.writer.send(WriteCommand::Apply(batch));
            self.compact_log(applied_index);
        }
    }

    /// Keeps `snapCount` entries behind the applied index for replicas to
    /// catch up from (and for inspection); drops older ones in steps.
    fn compact_log(&mut self, applied_index: u64) {
        let retain = self.config.log_retention_entries.max(1);
        if applied_index > self.compacted_through + 2 * retain {
            let through = applied_index - retain;
            self.compacted_through = through;
            self.writer.send(WriteCommand::Compact(through));
        }
    }

    pub(super) fn complete(&mut self, waiter: Waiter, txn: &Txn, outcome: Outcome) {
        let zxid = txn.zxid;
        match waiter {
            Waiter::Client {
                conn,
                xid,
                op,
                received,
            } => self.answer_write(conn, xid, op, received, zxid, outcome),
            Waiter::Malformed {
                conn,
                xid,
                op,
                received,
            } => {
                self.reply(
                    conn,
                    xid,
                    zxid,
                    ErrorCode::MarshallingError,
                    &Response::Empty,
                    op,
                    received,
                );
            }
            Waiter::NewSession {
                conn,
                timeout_ms,
                read_only,
                password,
            } => {
                self.session_created(conn, txn.session_id, timeout_ms, read_only, password);
            }
            Waiter::Expired { owner } => {
                if let Some(conn) = owner {
                    self.close(conn);
                }
            }
            Waiter::Internal => {
                if !matches!(outcome, Outcome::Deleted) {
                    tracing::debug!(?outcome, "container reaping skipped");
                }
            }
        }
    }

    fn session_created(
        &mut self,
        conn: ConnId,
        session_id: i64,
        timeout_ms: i32,
        read_only: Option<bool>,
        password: Vec<u8>,
    ) {
        let now = self.now_ms();
        let owner = self.conns.get(&conn).filter(|c| !c.closing).map(|_| conn);
        self.sessions.track(session_id, timeout_ms, owner, now);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.session_id = session_id;
        c.establishing = false;
        tracing::debug!(
            session = format_args!("0x{session_id:x}"),
            timeout_ms,
            "session created"
        );
        let response = ConnectResponse {
            protocol_version: 0,
            timeout_ms,
            session_id,
            password,
            read_only: read_only.map(|_| false),
        };
        self.send_connect_response(conn, &response);
        self.stats.record_request(0, true);
        self.drain_queue(conn);
    }

    /// Runs the queued requests of a connection that may run now: writes
    /// whenever they reach the front, anything else once no write of the
    /// connection is in flight.
    pub(super) fn drain_queue(&mut self, conn_id: ConnId) {
        loop {
            let Some(conn) = self.conns.get_mut(&conn_id) else {
                return;
            };
            if conn.closing || conn.establishing {
                return;
            }
            let runnable = conn
                .queue
                .front()
                .is_some_and(|q| q.is_write() || conn.pending_writes == 0);
            if !runnable {
                return;
            }
            let Some(item) = conn.queue.pop_front() else {
                return;
            };
            self.run_queued(conn_id, item);
        }
    }

    /// A new request of a connection: run now, or queued behind earlier
    /// ones of the same connection if it must wait.
    pub(super) fn accept(&mut self, conn_id: ConnId, item: Queued) {
        if self.must_queue(conn_id, &item) {
            if let Some(conn) = self.conns.get_mut(&conn_id) {
                conn.queue.push_back(item);
            }
        } else {
            self.run_queued(conn_id, item);
        }
    }

    fn run_queued(&mut self, conn_id: ConnId, item: Queued) {
        match item {
            Queued::Request {
                header,
                request,
                received,
            } => self.dispatch(conn_id, header, request, received),
            Queued::Undecodable {
                header,
                error,
                received,
            } => self.dispatch_undecodable(conn_id, header, error, received),
        }
    }

    /// Whether a new request must wait behind earlier ones of its connection.
    fn must_queue(&self, conn_id: ConnId, item: &Queued) -> bool {
        self.conns.get(&conn_id).is_some_and(|c| {
            c.establishing || !c.queue.is_empty() || (c.pending_writes > 0 && !item.is_write())
        })
    }

    /// A top-level check that succeeds has no reply (see `writes`); every
    /// other write is answered from its outcome.
    fn answer_write(
        &mut self,
        conn: ConnId,
        xid: i32,
        op: OpCode,
        received: Instant,
        zxid: i64,
        outcome: Outcome,
    ) {
        match (op, outcome) {
            (OpCode::CloseSession, _) => {
                self.reply(
                    conn,
                    xid,
                    zxid,
                    ErrorCode::Ok,
                    &Response::Empty,
                    op,
                    received,
                );
                self.close(conn);
            }
            (OpCode::Reconfig, Outcome::DataSet { stat }) => {
                let data = self
                    .tree
                    .node(tree::CONFIG)
                    .and_then(|n| n.data.clone())
                    .unwrap_or_default();
                let body = Response::GetData(proto::GetDataResponse {
                    data: Some(data),
                    stat,
                });
                self.reply(conn, xid, zxid, ErrorCode::Ok, &body, op, received);
            }
            (OpCode::Check, Outcome::Checked) => {
                if let Some(c) = self.conns.get(&conn) {
                    let _ = c.outbound.send(Outgoing::NoReply);
                }
            }
            (op, outcome) => {
                let (err, body) = writes::response(op, outcome);
                self.reply(conn, xid, zxid, err, &body, op, received);
            }
        }
    }
}

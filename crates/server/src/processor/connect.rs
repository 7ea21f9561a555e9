//! The connect handshake (`ZooKeeperServer.processConnectRequest`): refuse a
//! client that has seen a newer zxid than ours, negotiate the timeout, then
//! create a session (a createSession transaction) or re-open an existing one
//! with its password.

use std::net::SocketAddr;

use proto::{ConnectRequest, ConnectResponse, Id, PASSWORD_LEN};
use rand::RngCore as _;
use tree::WriteRequest;

use super::pipeline::Waiter;
use super::{Conn, OutboundTx, Outgoing, ZooKeeper};
use crate::sessions::{ConnId, negotiate_timeout};
use crate::stats::ConnStats;

/// A session re-opened by a client, waiting to be answered.
#[derive(Debug)]
pub(super) struct PendingReopen {
    pub(super) conn: ConnId,
    session_id: i64,
    password: Vec<u8>,
    timeout_ms: i32,
    /// The response's `readOnly` (false, if the client sent the field).
    read_only: Option<bool>,
}

impl ZooKeeper {
    pub(super) fn connect(
        &mut self,
        conn_id: ConnId,
        remote: SocketAddr,
        request: ConnectRequest,
        outbound: OutboundTx,
        identities: Vec<Id>,
    ) {
        self.stats.packets_received += 1;
        self.stats.connection_requests += 1;
        let no_quorum = self.ensemble.as_ref().is_some_and(|e| !e.serving());
        let read_only = no_quorum && self.config.read_only_mode && request.read_only == Some(true);
        if no_quorum && !read_only {
            // As a ZooKeeper server that is not running (no quorum): the
            // client tries another server.
            tracing::debug!(%remote, "refusing a session: no leader, so no quorum to serve");
            let _ = outbound.send(Outgoing::Close);
            return;
        }
        if request.last_zxid_seen > self.tree.last_zxid() {
            tracing::info!(
                %remote,
                client_zxid = format_args!("0x{:x}", request.last_zxid_seen),
                our_zxid = format_args!("0x{:x}", self.tree.last_zxid()),
                "refusing session request: client has seen a newer zxid; it must try another server"
            );
            let _ = outbound.send(Outgoing::Close);
            return;
        }
        let timeout_ms = negotiate_timeout(
            request.timeout_ms,
            self.config.min_session_timeout_ms,
            self.config.max_session_timeout_ms,
        );
        let mut stats = ConnStats::new();
        stats.packets_received = 1;
        self.conns.insert(
            conn_id,
            Conn {
                outbound,
                remote,
                session_id: 0,
                timeout_ms,
                auth: std::iter::once(Id::new("ip", remote.ip().to_string()))
                    .chain(identities)
                    .collect(),
                stats,
                closing: false,
                establishing: false,
                read_only,
                sasl: None,
                pending_writes: 0,
                queue: std::collections::VecDeque::new(),
            },
        );
        if read_only {
            self.read_only_session(conn_id, &request, timeout_ms);
        } else if request.session_id == 0 {
            self.create_session(conn_id, timeout_ms, request.read_only);
        } else {
            self.reopen_session(conn_id, &request, timeout_ms);
        }
    }

    /// A new session is a createSession transaction; the connect response
    /// goes out once it is applied (`pipeline`), and requests the client
    /// pipelined behind its handshake wait until then.
    fn create_session(&mut self, conn_id: ConnId, timeout_ms: i32, read_only: Option<bool>) {
        let session_id = self.sessions.next_session_id();
        let mut password = vec![0u8; PASSWORD_LEN];
        rand::rng().fill_bytes(&mut password);
        if let Some(conn) = self.conns.get_mut(&conn_id) {
            conn.establishing = true;
        }
        let write = WriteRequest::CreateSession {
            timeout_ms,
            password: password.clone(),
        };
        let waiter = Waiter::NewSession {
            conn: conn_id,
            timeout_ms,
            read_only,
            password,
        };
        self.submit(&write, session_id, 0, None, waiter);
    }

    /// Re-open: the password must match the one the session was created
    /// with. Any other connection holding the session is closed first, as
    /// ZooKeeper does (`closeSession(sessionId, CLIENT_RECONNECT)`).
    fn reopen_session(&mut self, conn_id: ConnId, request: &ConnectRequest, timeout_ms: i32) {
        let session_id = request.session_id;
        let others: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(id, c)| **id != conn_id && c.session_id == session_id && !c.closing)
            .map(|(id, _)| *id)
            .collect();
        for other in others {
            self.close(other);
        }
        let reopen = PendingReopen {
            conn: conn_id,
            session_id,
            password: request.password.clone(),
            timeout_ms,
            read_only: request.read_only.map(|_| false),
        };
        if self.ensemble.is_some() {
            // As a ZooKeeper follower asks its leader (`revalidateSession`),
            // a re-open is answered only after a ReadIndex round: once the
            // leader has confirmed with a quorum that it still leads and
            // this server has applied what it had committed. A session
            // created on another server a moment ago is then known here,
            // one expired meanwhile is gone, and while there is no leader
            // the client is refused and tries another server. Requests
            // pipelined behind the handshake wait meanwhile.
            if let Some(conn) = self.conns.get_mut(&conn_id) {
                conn.establishing = true;
            }
            self.revalidate_session(reopen);
            return;
        }
        self.finish_reopen(reopen);
    }

    /// Answers a re-open: the session, or expired.
    pub(super) fn finish_reopen(&mut self, reopen: PendingReopen) {
        let PendingReopen {
            conn: conn_id,
            session_id,
            password,
            timeout_ms,
            read_only,
        } = reopen;
        if self.conns.get(&conn_id).is_none_or(|c| c.closing) {
            return;
        }
        let valid = self
            .tree
            .session(session_id)
            .is_some_and(|s| s.password == password)
            // In an ensemble the leader expires sessions through the log:
            // a session in the tree is alive, whichever server it was on.
            && (self.ensemble.is_some() || self.sessions.is_alive(session_id));
        if !valid {
            tracing::info!(
                session = format_args!("0x{session_id:x}"),
                "invalid session re-open (expired or wrong password)"
            );
            self.send_connect_response(conn_id, &ConnectResponse::expired(read_only));
            self.close(conn_id);
            return;
        }
        let now = self.now_ms();
        self.sessions.reattach(session_id, timeout_ms, conn_id, now);
        if let Some(conn) = self.conns.get_mut(&conn_id) {
            conn.session_id = session_id;
            conn.establishing = false;
        }
        let response = ConnectResponse {
            protocol_version: 0,
            timeout_ms,
            session_id,
            password,
            read_only,
        };
        self.send_connect_response(conn_id, &response);
        self.drain_queue(conn_id);
    }

    /// A read-only session, as ZooKeeper's read-only server gives: a new
    /// one is local to this server (never in the log, gone when the server
    /// regains a quorum and disconnects it); an existing session is served
    /// read-only. The response says `readOnly`.
    fn read_only_session(&mut self, conn_id: ConnId, request: &ConnectRequest, timeout_ms: i32) {
        let (session_id, password) = if request.session_id == 0 {
            let mut password = vec![0u8; PASSWORD_LEN];
            rand::rng().fill_bytes(&mut password);
            (self.sessions.next_session_id(), password)
        } else {
            match self.tree.session(request.session_id) {
                Some(s) if s.password == request.password => {
                    (request.session_id, s.password.clone())
                }
                _ => {
                    self.send_connect_response(conn_id, &ConnectResponse::expired(Some(true)));
                    self.close(conn_id);
                    return;
                }
            }
        };
        if let Some(conn) = self.conns.get_mut(&conn_id) {
            conn.session_id = session_id;
        }
        tracing::info!(
            session = format_args!("0x{session_id:x}"),
            "read-only session: no quorum, readonlymode.enabled"
        );
        let response = ConnectResponse {
            protocol_version: 0,
            timeout_ms,
            session_id,
            password,
            read_only: Some(true),
        };
        self.send_connect_response(conn_id, &response);
    }

    pub(super) fn send_connect_response(&mut self, conn_id: ConnId, response: &ConnectResponse) {
        let mut frame = Vec::new();
        proto::frame::encode_frame(&mut frame, |out| response.encode(out));
        self.send_frame(conn_id, frame);
    }
}

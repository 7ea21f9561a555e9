//! The request processor: one task that owns the data tree, the watches and
//! the session tracker, and handles every connection's requests in arrival
//! order.
//!
//! Why one task: ZooKeeper's ordering guarantees fall out of it. Requests of
//! one connection are handled in order, so replies go out in request order
//! and a read after a write on the same session sees the write. Watch events
//! a write triggers are queued on each connection's outbound channel before
//! the write's reply and before any later reply, so a client always sees the
//! event before it sees the changed data. The tree needs no lock because
//! nothing else touches it.
//!
//! Writes are prepared here but applied only once the log writer
//! (`crate::durability`) reports them durable: see `pipeline`.
//!
//! Files: `connect` (the handshake and session creation), `reads`, `writes`,
//! `pipeline` (prepare → log → apply → answer, and per-connection order),
//! `watches` (registration, setWatches, delivery), `admin` (the state that
//! four-letter words and the admin API report), `expiry` (sessions and
//! container/TTL reaping).

mod admin;
mod apply;
mod connect;
mod ensemble;
mod expiry;
mod pipeline;
mod reads;
mod watches;
mod writes;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use consensus::driver::{Driver, DriverConfig, DriverError};
use proto::{
    ConnectRequest, ErrorCode, Id, OpCode, Request, RequestError, RequestHeader, Response,
};
use tokio::sync::{mpsc, oneshot};
use tree::{DataTree, Features, Pending, WatchManager};

pub use admin::{AdminAnswer, AdminQuery, ConnectionInfo, ReplicaStatus, ServerSnapshot};
pub use consensus::driver::{MembershipAnswer, MembershipOp, MembershipResult};
pub use ensemble::ZkWrite;

use crate::config::Config;
use crate::durability::{LogWriterThread, WriterEvent, WriterHandle};
use crate::ensemble_config::Ensemble;
use crate::peers::Peers;
use crate::sessions::{ConnId, SessionTracker};
use crate::stats::{ConnStats, ServerStats, wall_clock_ms};
use pipeline::{InFlight, Queued};
use storage::recovery::Recovered;

/// What a connection's writer task sends to its socket.
#[derive(Debug)]
pub enum Outgoing {
    /// A reply to a request (counts against the connection's in-flight limit).
    Reply(Vec<u8>),
    /// A notification or handshake frame.
    Frame(Vec<u8>),
    /// A request that gets no reply: frees its in-flight slot.
    NoReply,
    /// Flush what was queued, then close the connection.
    Close,
}

pub type OutboundTx = mpsc::UnboundedSender<Outgoing>;

/// Messages into the processor.
#[derive(Debug)]
pub enum Command {
    Connect {
        conn: ConnId,
        remote: SocketAddr,
        request: ConnectRequest,
        outbound: OutboundTx,
        /// What the connection's TLS certificate authenticates it as.
        identities: Vec<Id>,
    },
    Request {
        conn: ConnId,
        header: RequestHeader,
        request: Request,
        received: Instant,
    },
    /// A frame whose header parsed but whose op or body did not.
    Undecodable {
        conn: ConnId,
        header: RequestHeader,
        error: RequestError,
        received: Instant,
    },
    /// The connection's socket is gone.
    Closed {
        conn: ConnId,
    },
    Admin(AdminQuery, oneshot::Sender<AdminAnswer>),
    /// From the peer transport (ensemble only).
    Peer(crate::peers::PeerEvent),
    /// A membership change from the admin API.
    Membership(MembershipOp, oneshot::Sender<MembershipResult>),
}

/// A client connection as the processor sees it.
#[derive(Debug)]
pub(crate) struct Conn {
    outbound: OutboundTx,
    remote: SocketAddr,
    /// 0 until the handshake established a session.
    session_id: i64,
    timeout_ms: i32,
    /// Identities for ACL checks; every connection starts as `ip:<addr>`.
    auth: Vec<Id>,
    stats: ConnStats,
    /// Set once the processor decided to close it; later requests are
    /// dropped unanswered.
    closing: bool,
    /// Its createSession is in flight: requests wait.
    establishing: bool,
    /// A read-only session (an ensemble member without a quorum, with
    /// `readonlymode.enabled`): reads are served, writes refused.
    read_only: bool,
    /// Its SASL exchange, once begun.
    sasl: Option<crate::sasl::DigestMd5>,
    /// Its writes prepared and not yet applied.
    pending_writes: usize,
    /// Requests waiting for earlier ones (see `pipeline`).
    queue: VecDeque<Queued>,
}

/// Why the processor stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    #[error("the store failed: {0}")]
    Storage(#[from] storage::StorageError),
    #[error("could not start the log writer: {0}")]
    Writer(#[from] std::io::Error),
    #[error("replication failed: {0}")]
    Driver(#[from] DriverError),
}

/// How this server takes part in an ensemble.
#[derive(Debug)]
pub struct ReplicaSetup {
    pub ensemble: Ensemble,
    /// `conclave.join`: a new server joining an existing ensemble.
    pub join: bool,
    /// The transport to the other members.
    pub peers: Peers,
    /// Seeds this server's election timeouts and back-off jitter.
    pub seed: u64,
}

/// The driver of a member of an ensemble, over the peer transport and the
/// log writer thread.
type EnsembleDriver = Driver<ZkWrite, Peers, WriterHandle>;

/// The request processor: the ZooKeeper layer and, in an ensemble, the
/// driver that replicates its writes.
pub struct Processor {
    /// Declared first so that it is dropped first: its handle on the log
    /// writer must be gone before the writer thread is joined.
    driver: Option<EnsembleDriver>,
    zk: ZooKeeper,
    writer_events: Option<mpsc::UnboundedReceiver<WriterEvent>>,
}

/// The ZooKeeper layer: the tree, the watches, the sessions and the
/// connections, and what they need of the log. In an ensemble it is the
/// driver's state machine (`ensemble.rs`).
pub(crate) struct ZooKeeper {
    config: Arc<Config>,
    features: Features,
    tree: DataTree,
    watches: WatchManager,
    sessions: SessionTracker,
    conns: HashMap<ConnId, Conn>,
    stats: ServerStats,
    started: Instant,
    /// Changes prepared and not yet applied.
    pending: Pending,
    /// Transactions in the log and not yet applied, in log order
    /// (standalone).
    inflight: VecDeque<InFlight>,
    writer: LogWriterThread,
    /// Index (and, standalone, zxid) of the next log entry.
    next_index: u64,
    /// Log entries up to here were dropped by retention (standalone).
    compacted_through: u64,
    /// The ensemble side; `None` for a standalone server.
    ensemble: Option<ensemble::Replicated>,
    /// The effects of the committed entries the driver handed over in its
    /// current round, written to the store in one batch when it ends.
    apply_batch: storage::ApplyBatch,
}

/// Trees smaller than this are freed when the processor is dropped.
const TREE_LEFT_TO_THE_EXIT: usize = 100_000;

impl Drop for ZooKeeper {
    /// The processor is dropped when the server stops, and the process
    /// ends right after: a large tree is left for the exit to reclaim
    /// instead of being freed node by node. At 5,000,000 znodes freeing it
    /// took 5.8 s of a 7.5-s SIGTERM; freeing it on a thread of its own
    /// still cost 1.5 s, the log writer's allocations while it closed the
    /// store consolidating the allocator's free lists the freed nodes
    /// filled.
    fn drop(&mut self) {
        if self.tree.node_count() >= TREE_LEFT_TO_THE_EXIT {
            Box::leak(Box::new(std::mem::take(&mut self.tree)));
        }
    }
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("connections", &self.zk.conns.len())
            .field("driver", &self.driver)
            .finish_non_exhaustive()
    }
}

impl Processor {
    /// A processor serving the recovered state; its store goes to the log
    /// writer thread.
    pub fn new(config: Arc<Config>, recovered: Recovered) -> Result<Self, ProcessorError> {
        Processor::with_replica(config, recovered, None)
    }

    /// A processor that is a member of an ensemble when `replica` is given.
    pub fn with_replica(
        config: Arc<Config>,
        recovered: Recovered,
        replica: Option<ReplicaSetup>,
    ) -> Result<Self, ProcessorError> {
        let features = Features {
            extended_types: config.extended_types_enabled,
            skip_acl: config.skip_acl,
            reconfig_enabled: config.reconfig_enabled,
            acl_providers: config.acl_providers(),
        };
        // Standalone ZooKeeper uses server id 1 for session ids.
        let server_id = u8::try_from(config.server_id.unwrap_or(1)).unwrap_or(1);
        let mut sessions = SessionTracker::new(
            config.tick_time_ms,
            server_id,
            u64::try_from(wall_clock_ms()).unwrap_or(0),
        );
        // Sessions survive a restart: each gets its full timeout from now
        // to reconnect, as with ZooKeeper.
        for (id, record) in recovered.tree.sessions() {
            sessions.track(*id, record.timeout_ms, None, 0);
        }
        let stored = match &replica {
            Some(_) => Some(storage::consensus_log::stored_state(
                recovered.store.as_ref(),
                &recovered.tree,
            )?),
            None => None,
        };
        // A fresh member's store starts after its bootstrap point.
        let compacted_through = recovered.store.meta().compacted.0;
        let (writer, events) = LogWriterThread::spawn(recovered.store)?;
        let driver = match (replica, stored) {
            (Some(setup), Some(stored)) => {
                let config = driver_config(&config, &setup);
                Some(Driver::new(config, stored, setup.peers, writer.handle())?)
            }
            _ => None,
        };
        let ensemble = driver
            .as_ref()
            .map(|_| ensemble::Replicated::new(&config.data_log_dir.join("images")));
        let zk = ZooKeeper {
            features,
            tree: recovered.tree,
            watches: WatchManager::new(),
            sessions,
            conns: HashMap::new(),
            stats: ServerStats::default(),
            started: Instant::now(),
            pending: Pending::new(),
            inflight: VecDeque::new(),
            writer,
            next_index: recovered.next_index,
            compacted_through,
            config,
            ensemble,
            apply_batch: storage::ApplyBatch::default(),
        };
        Ok(Processor {
            driver,
            zk,
            writer_events: Some(events),
        })
    }

    /// A processor on an in-memory store, for tests.
    pub fn in_memory(config: Arc<Config>) -> Self {
        let store = Box::new(storage::memory::MemoryStore::new());
        let recovered = storage::recovery::recover(store).expect("a fresh memory store recovers");
        Processor::new(config, recovered).expect("the log writer thread starts")
    }

    /// Runs until every command sender is dropped, or the store fails, or
    /// the ensemble driver stops.
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
    ) -> Result<(), ProcessorError> {
        let Some(mut events) = self.writer_events.take() else {
            return Ok(());
        };
        let config = self.zk.config.clone();
        let tick = std::time::Duration::from_millis(u64::from(config.tick_time_ms.clamp(10, 1000)));
        let mut expiry_timer = tokio::time::interval(tick);
        expiry_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reaper_timer = tokio::time::interval(
            config
                .container_check_interval
                .max(std::time::Duration::from_millis(10)),
        );
        reaper_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        reaper_timer.tick().await;
        let mut raft_timer = tokio::time::interval(raft_tick(&config));
        raft_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let replicated = self.driver.is_some();
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => {
                        self.handle(command)?;
                        // In an ensemble whatever else is queued goes in
                        // the same batch (bounded, so timers and the
                        // writer's events are not starved).
                        for _ in 0..if replicated { COMMAND_BATCH } else { 0 } {
                            match commands.try_recv() {
                                Ok(command) => self.handle(command)?,
                                Err(_) => break,
                            }
                        }
                        self.settle()?;
                    }
                    None => break,
                },
                event = events.recv() => match event {
                    Some(WriterEvent::Durable { index, marker, sync }) => {
                        match (marker, self.driver.as_mut()) {
                            (Some(number), Some(driver)) => {
                                if sync.synced {
                                    self.zk.stats.record_sync(sync.entries, sync.duration);
                                }
                                driver.persisted(number, &mut self.zk)?;
                                self.settle()?;
                            }
                            _ => self.zk.durable(index, sync),
                        }
                    }
                    Some(WriterEvent::Failed(e)) => return Err(e.into()),
                    None => break,
                },
                _ = expiry_timer.tick() => {
                    self.zk.expire_sessions();
                    self.zk.fail_stale_reconfigs();
                    self.settle()?;
                }
                _ = reaper_timer.tick() => {
                    self.zk.reap_containers();
                    self.settle()?;
                }
                _ = raft_timer.tick(), if replicated => {
                    if let Some(driver) = self.driver.as_mut() {
                        driver.tick(wall_clock_ms(), &mut self.zk)?;
                    }
                    self.settle()?;
                }
            }
        }
        Ok(())
    }

    /// Handles one command; public for tests that drive the processor
    /// without sockets.
    pub fn handle(&mut self, command: Command) -> Result<(), ProcessorError> {
        let zk = &mut self.zk;
        match command {
            Command::Connect {
                conn,
                remote,
                request,
                outbound,
                identities,
            } => zk.connect(conn, remote, request, outbound, identities),
            Command::Request {
                conn,
                header,
                request,
                received,
            } => zk.request(conn, header, request, received),
            Command::Undecodable {
                conn,
                header,
                error,
                received,
            } => zk.undecodable(conn, header, error, received),
            Command::Closed { conn } => zk.closed(conn),
            Command::Admin(query, reply) => {
                let answer = self.admin(query);
                let _ = reply.send(answer);
            }
            Command::Peer(event) => self.peer_event(event)?,
            Command::Membership(op, answer) => match zk.ensemble.as_mut() {
                Some(ensemble) => ensemble.membership_request(op, answer),
                None => {
                    let _ = answer.send(Err(consensus::membership::ReconfigError::BadArguments(
                        "this server runs standalone".into(),
                    )));
                }
            },
        }
        Ok(())
    }

    /// What a peer sent, or the transport noticed, goes to the driver.
    fn peer_event(&mut self, event: crate::peers::PeerEvent) -> Result<(), ProcessorError> {
        use crate::peers::PeerEvent;
        let Some(driver) = self.driver.as_mut() else {
            return Ok(());
        };
        let zk = &mut self.zk;
        match event {
            PeerEvent::Raft { from, message } => driver.receive(from, *message, zk)?,
            PeerEvent::Service { from, payload } => driver.notice(from, &payload, zk)?,
            PeerEvent::Unreachable(peer) => driver.unreachable(peer, zk),
            PeerEvent::SnapshotSent { peer, delivered } => driver.snapshot_sent(peer, delivered),
            PeerEvent::Gone(peer) => driver.peer_gone(peer),
        }
        Ok(())
    }

    /// Hands what the ZooKeeper layer asked of the driver (writes, ReadIndex
    /// rounds, membership changes) to it, and lets it work, until nothing
    /// more is asked: applying a write can run requests queued behind it,
    /// which ask again.
    fn settle(&mut self) -> Result<(), ProcessorError> {
        let Some(driver) = self.driver.as_mut() else {
            return Ok(());
        };
        loop {
            let calls = self.zk.take_driver_calls();
            if calls.is_empty() {
                break;
            }
            for call in calls {
                ensemble::call_driver(driver, call, &mut self.zk);
            }
            driver.flush(&mut self.zk)?;
        }
        driver.flush(&mut self.zk)?;
        Ok(())
    }

    fn admin(&mut self, query: AdminQuery) -> AdminAnswer {
        let serving = self.driver.as_ref().is_none_or(|d| d.serving());
        match query {
            AdminQuery::Snapshot => {
                let mut snapshot = self.zk.snapshot();
                snapshot.replica = self
                    .driver
                    .as_ref()
                    .map(|d| admin::replica_status(d, &self.zk.config, serving));
                AdminAnswer::Snapshot(Box::new(snapshot))
            }
            query => self.zk.admin(query, serving),
        }
    }
}

fn driver_config(config: &Config, setup: &ReplicaSetup) -> DriverConfig {
    let (heartbeat, election) = raft_ticks(config);
    let mut driver = DriverConfig::new(
        setup.ensemble.my_id,
        setup.ensemble.members.clone(),
        election,
        setup.seed,
    );
    driver.join = setup.join;
    driver.heartbeat_ticks = heartbeat;
    driver.status_every_ticks = STATUS_EVERY_TICKS;
    driver.reconfig_deadline_ticks =
        u64::from(setup.ensemble.init_limit.max(1)) * u64::from(RAFT_TICKS_PER_TICK);
    driver.retained_entries = config.log_retention_entries.clamp(1, MAX_RETAINED_ENTRIES);
    driver.retained_bytes = RETAINED_LOG_BYTES;
    // A frame holds a batch of appends or a chunk of a snapshot's image
    // with room to spare.
    driver.max_size_per_msg = driver
        .max_size_per_msg
        .min(config.peer_max_frame as u64 / 4);
    driver.snapshot_chunk_bytes = config.snapshot_chunk_bytes.min(config.peer_max_frame / 2);
    driver.snapshot_bytes_per_tick = match config.snapshot_send_rate {
        0 => u64::MAX,
        rate => (rate.saturating_mul(raft_tick(config).as_millis() as u64) / 1000).max(1),
    };
    driver
}

/// Most log entries an ensemble member keeps behind its applied index
/// (`snapCount × autopurge.snapRetainCount` when smaller), within
/// [`RETAINED_LOG_BYTES`]: raft-rs reads the log from memory, so a follower
/// further behind costs a snapshot, not memory on every server. A
/// follower that falls this far behind under a burst of writes (20,000
/// entries were under a second of creates through an ensemble's leader on
/// this host: 26,500 a second at 5,000,000 znodes) would otherwise need a
/// whole image of the tree.
const MAX_RETAINED_ENTRIES: u64 = 300_000;

/// What the log kept in memory may take: about 160,000 entries of 256-byte
/// writes.
const RETAINED_LOG_BYTES: u64 = 64 << 20;

/// A follower reports its status to the leader every this many raft ticks
/// (twice per ZooKeeper tick, with the heartbeats' rhythm).
const STATUS_EVERY_TICKS: u64 = 5;

impl ZooKeeper {
    /// Milliseconds on the monotonic clock since the processor started.
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn request(
        &mut self,
        conn_id: ConnId,
        header: RequestHeader,
        request: Request,
        received: Instant,
    ) {
        let now = self.now_ms();
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        if conn.closing {
            return;
        }
        conn.stats.packets_received += 1;
        self.stats.packets_received += 1;
        let session_id = conn.session_id;
        self.sessions.touch(session_id, now);
        self.touch_replicated(session_id);
        self.accept(
            conn_id,
            Queued::Request {
                header,
                request,
                received,
            },
        );
    }

    /// Handles a request whose turn has come.
    fn dispatch(
        &mut self,
        conn_id: ConnId,
        header: RequestHeader,
        request: Request,
        received: Instant,
    ) {
        let op = request.op();
        if !matches!(request, Request::Auth(_) | Request::Sasl(_))
            && !self.authenticated_enough(conn_id)
        {
            // `AuthenticationHelper.enforceAuthentication`.
            tracing::warn!(
                conn = conn_id,
                "a request before the authentication this server enforces; closing"
            );
            self.reply(
                conn_id,
                header.xid,
                0,
                ErrorCode::SessionClosedRequireSaslAuth,
                &Response::Empty,
                op,
                received,
            );
            self.close(conn_id);
            return;
        }
        match request {
            // A ping is answered with the ping xid whatever xid it carried.
            Request::Ping => {
                let zxid = self.tree.last_zxid();
                self.reply(
                    conn_id,
                    proto::xid::PING,
                    zxid,
                    ErrorCode::Ok,
                    &Response::Empty,
                    op,
                    received,
                );
            }
            // A multiRead of writes: ZooKeeper decodes it, starts an empty
            // response, refuses the first op, and sends that empty response
            // with MarshallingError.
            Request::MultiRead(ops)
                if matches!(ops.first(), Some(proto::MultiReadOp::Write(_))) =>
            {
                let mut frame = Vec::new();
                let zxid = self.tree.last_zxid();
                let (err, body) = (ErrorCode::MarshallingError, Response::Multi(Vec::new()));
                proto::encode_reply_with_body(&mut frame, header.xid, zxid, err, &body);
                self.send_reply(conn_id, frame, header.xid, zxid, op, received);
            }
            Request::Auth(packet) => self.auth(conn_id, header.xid, &packet, received),
            Request::Sasl(packet) => self.sasl(conn_id, header.xid, &packet, received),
            request
                if self.conns.get(&conn_id).is_some_and(|c| c.read_only)
                    && (writes::is_write(&request) || matches!(request, Request::Sync(_))) =>
            {
                // ZooKeeper's ReadOnlyRequestProcessor: every change, and
                // sync, is refused; closing the session closes the
                // connection.
                if matches!(request, Request::CloseSession) {
                    self.reply(
                        conn_id,
                        header.xid,
                        0,
                        ErrorCode::Ok,
                        &Response::Empty,
                        op,
                        received,
                    );
                    self.close(conn_id);
                } else {
                    let zxid = self.tree.last_zxid();
                    self.reply(
                        conn_id,
                        header.xid,
                        zxid,
                        ErrorCode::NotReadOnly,
                        &Response::Empty,
                        op,
                        received,
                    );
                }
            }
            request if writes::is_write(&request) => self.write(conn_id, header, request, received),
            Request::Sync(r) if self.ensemble.is_some() => {
                self.sync_replicated(conn_id, header.xid, r.path, received);
            }
            request => {
                let (err, response) = self.read(conn_id, &request);
                if err == ErrorCode::Ok {
                    self.record_read_stats(&request);
                }
                let zxid = self.tree.last_zxid();
                self.reply(conn_id, header.xid, zxid, err, &response, op, received);
            }
        }
    }

    /// An op code ZooKeeper does not know is answered Unimplemented (zxid -1)
    /// and the connection closed. A body that does not parse is
    /// MarshallingError; for a write ZooKeeper had already assigned a zxid,
    /// so the failure is committed as an error transaction.
    fn undecodable(
        &mut self,
        conn_id: ConnId,
        header: RequestHeader,
        error: RequestError,
        received: Instant,
    ) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        if conn.closing {
            return;
        }
        self.accept(
            conn_id,
            Queued::Undecodable {
                header,
                error,
                received,
            },
        );
    }

    fn dispatch_undecodable(
        &mut self,
        conn_id: ConnId,
        header: RequestHeader,
        error: RequestError,
        received: Instant,
    ) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        tracing::info!(conn = conn_id, remote = %conn.remote, %error, "undecodable request");
        match error {
            RequestError::UnknownOp(_) | RequestError::Header(_) => {
                self.reply(
                    conn_id,
                    header.xid,
                    -1,
                    ErrorCode::Unimplemented,
                    &Response::Empty,
                    OpCode::Error,
                    received,
                );
                self.close(conn_id);
            }
            // ZooKeeper had already given a write its zxid when the body
            // failed to parse: the failure is committed as an error
            // transaction and answered with that zxid.
            RequestError::Malformed { op, .. } if writes::is_write_op(op) => {
                let session_id = conn.session_id;
                let waiter = pipeline::Waiter::Malformed {
                    conn: conn_id,
                    xid: header.xid,
                    op,
                    received,
                };
                self.submit_error(session_id, header.xid, ErrorCode::MarshallingError, waiter);
            }
            RequestError::Malformed { op, .. } => {
                let zxid = self.tree.last_zxid();
                self.reply(
                    conn_id,
                    header.xid,
                    zxid,
                    ErrorCode::MarshallingError,
                    &Response::Empty,
                    op,
                    received,
                );
            }
        }
    }

    fn auth(&mut self, conn_id: ConnId, xid: i32, packet: &proto::AuthPacket, received: Instant) {
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        let ip = conn.remote.ip().to_string();
        let auth = packet.auth.as_deref().unwrap_or_default();
        match tree::acl::authenticate(
            &packet.scheme,
            auth,
            &ip,
            self.config.super_digest.as_deref(),
        ) {
            Ok(ids) => {
                for id in ids {
                    if !conn.auth.contains(&id) {
                        conn.auth.push(id);
                    }
                }
                self.reply(
                    conn_id,
                    xid,
                    0,
                    ErrorCode::Ok,
                    &Response::Empty,
                    OpCode::Auth,
                    received,
                );
            }
            Err(code) => {
                tracing::warn!(conn = conn_id, scheme = %packet.scheme, "authentication failed");
                self.auth_failed(conn_id, xid, code, OpCode::Auth, received);
            }
        }
    }

    /// A failed authentication (auth packet or SASL): counted, answered
    /// with `code`, and the connection closed, as ZooKeeper does.
    fn auth_failed(
        &mut self,
        conn_id: ConnId,
        xid: i32,
        code: ErrorCode,
        op: OpCode,
        received: Instant,
    ) {
        self.stats.auth_failed += 1;
        self.reply(conn_id, xid, 0, code, &Response::Empty, op, received);
        self.close(conn_id);
    }

    /// Whether the connection has authenticated as `enforce.auth.schemes`
    /// asks (always, when nothing is enforced).
    fn authenticated_enough(&self, conn_id: ConnId) -> bool {
        let Some(schemes) = &self.config.enforce_auth else {
            return true;
        };
        self.conns
            .get(&conn_id)
            .is_some_and(|c| c.auth.iter().any(|id| schemes.contains(&id.scheme)))
    }

    /// One token of a SASL exchange (`ZooKeeperServer.processSasl`): the
    /// answer token, or AuthFailed and the connection closed. Without SASL
    /// users configured every exchange fails, as ZooKeeper's does without
    /// a JAAS `Server` section.
    fn sasl(&mut self, conn_id: ConnId, xid: i32, packet: &proto::SaslRequest, received: Instant) {
        let users = self.config.sasl_users.clone();
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        let step = match users.as_deref() {
            None => {
                crate::sasl::Step::Failure("SASL is not configured (no JAAS Server section)".into())
            }
            Some(users) => {
                let exchange = conn.sasl.get_or_insert_with(crate::sasl::DigestMd5::start);
                exchange.step(packet.token.as_deref().unwrap_or_default(), users)
            }
        };
        let token = match step {
            crate::sasl::Step::Challenge(token) => token,
            crate::sasl::Step::Success { token, user } => {
                tracing::info!(conn = conn_id, %user, "SASL client authenticated");
                let id = Id::new("sasl", user);
                if !conn.auth.contains(&id) {
                    conn.auth.push(id);
                }
                token
            }
            crate::sasl::Step::Failure(reason) => {
                tracing::warn!(conn = conn_id, %reason, "SASL authentication failed");
                self.auth_failed(conn_id, xid, ErrorCode::AuthFailed, OpCode::Sasl, received);
                return;
            }
        };
        let response = Response::Sasl(proto::SaslResponse { token: Some(token) });
        self.reply(
            conn_id,
            xid,
            0,
            ErrorCode::Ok,
            &response,
            OpCode::Sasl,
            received,
        );
    }

    /// Queues a reply frame and accounts for it.
    #[allow(clippy::too_many_arguments)]
    fn reply(
        &mut self,
        conn_id: ConnId,
        xid: i32,
        zxid: i64,
        err: ErrorCode,
        body: &Response,
        op: OpCode,
        received: Instant,
    ) {
        let mut frame = Vec::new();
        proto::encode_reply(&mut frame, xid, zxid, err, body);
        self.send_reply(conn_id, frame, xid, zxid, op, received);
    }

    /// Queues an encoded reply and accounts for it.
    fn send_reply(
        &mut self,
        conn_id: ConnId,
        frame: Vec<u8>,
        xid: i32,
        zxid: i64,
        op: OpCode,
        received: Instant,
    ) {
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        let latency_ms = u64::try_from(received.elapsed().as_millis()).unwrap_or(u64::MAX);
        conn.stats.packets_sent += 1;
        conn.stats.last_op = last_op_name(op);
        if xid >= 0 {
            conn.stats.last_cxid = i64::from(xid);
        }
        conn.stats.last_zxid = zxid;
        conn.stats.last_response_ms = wall_clock_ms();
        conn.stats.last_latency_ms = latency_ms;
        conn.stats.latency.record(latency_ms);
        self.stats.packets_sent += 1;
        let size = frame.len().saturating_sub(proto::frame::LENGTH_PREFIX);
        if matches!(op, OpCode::Auth | OpCode::Sasl) {
            // ZooKeeper answers these outside its request pipeline: they
            // count in neither the latencies nor `response_bytes`.
            self.stats.client_response.record(size);
        } else {
            let update = writes::is_write_op(op) || op == OpCode::CreateSession;
            self.stats.record_request(latency_ms, update);
            self.stats.record_reply(size);
        }
        let _ = conn.outbound.send(Outgoing::Reply(frame));
    }

    /// Sends a frame that is not a reply (handshake, notification).
    fn send_frame(&mut self, conn_id: ConnId, frame: Vec<u8>) {
        if let Some(conn) = self.conns.get_mut(&conn_id) {
            conn.stats.packets_sent += 1;
            self.stats.packets_sent += 1;
            let _ = conn.outbound.send(Outgoing::Frame(frame));
        }
    }

    /// Flushes and closes a connection; its watches go now, its session
    /// stays until it expires or is closed.
    fn close(&mut self, conn_id: ConnId) {
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        if conn.closing {
            return;
        }
        conn.closing = true;
        let _ = conn.outbound.send(Outgoing::Close);
        let session_id = conn.session_id;
        self.watches.remove_watcher(conn_id);
        self.sessions.detach(session_id, conn_id);
    }

    fn closed(&mut self, conn_id: ConnId) {
        if let Some(conn) = self.conns.remove(&conn_id) {
            self.watches.remove_watcher(conn_id);
            self.sessions.detach(conn.session_id, conn_id);
        }
    }
}

/// Most commands handled between two rounds of replication work.
const COMMAND_BATCH: usize = 256;

/// Raft ticks per ZooKeeper tick. Fine-grained so that the steps of a
/// failover that are counted in ticks (the staggered campaigns after a
/// leader's process is gone) take a fraction of a `tickTime`.
pub(super) const RAFT_TICKS_PER_TICK: u32 = 10;

/// How long a raft tick is: a tenth of a ZooKeeper tick.
fn raft_tick(config: &Config) -> std::time::Duration {
    std::time::Duration::from_millis(u64::from(
        (config.tick_time_ms / RAFT_TICKS_PER_TICK).max(2),
    ))
}

/// (heartbeat, election timeout) in raft ticks. The leader's heartbeats
/// come twice per `tickTime`. A follower that has heard nothing from its
/// leader for `syncLimit` ZooKeeper ticks gives up on it, as ZooKeeper's
/// followers do; here that is the upper end of the randomized election
/// timeout (raft-rs draws it from [e, 2e) raft ticks).
fn raft_ticks(config: &Config) -> (usize, usize) {
    let sync_limit = usize::try_from(config.sync_limit.unwrap_or(5)).unwrap_or(5);
    let per_tick = RAFT_TICKS_PER_TICK as usize;
    (per_tick / 2, sync_limit.max(3) * per_tick / 2)
}

/// The four-letter code `cons` shows as `lop=` (`FinalRequestProcessor`).
fn last_op_name(op: OpCode) -> &'static str {
    match op {
        OpCode::Ping => "PING",
        OpCode::CreateSession => "SESS",
        OpCode::CloseSession => "CLOS",
        OpCode::Multi => "MULT",
        OpCode::MultiRead => "MLTR",
        OpCode::Create | OpCode::Create2 | OpCode::CreateTtl | OpCode::CreateContainer => "CREA",
        OpCode::Delete | OpCode::DeleteContainer => "DELE",
        OpCode::SetData => "SETD",
        OpCode::Reconfig => "RECO",
        OpCode::SetAcl => "SETA",
        OpCode::Sync => "SYNC",
        OpCode::Check => "CHEC",
        OpCode::Exists => "EXIS",
        OpCode::GetData => "GETD",
        OpCode::SetWatches => "SETW",
        OpCode::SetWatches2 => "STW2",
        OpCode::AddWatch => "ADDW",
        OpCode::GetAcl => "GETA",
        OpCode::GetChildren | OpCode::GetChildren2 => "GETC",
        OpCode::GetAllChildrenNumber => "GETACN",
        OpCode::CheckWatches => "CHKW",
        OpCode::RemoveWatches => "REMW",
        OpCode::WhoAmI => "HOMI",
        OpCode::GetEphemerals => "GETE",
        OpCode::Auth | OpCode::Sasl | OpCode::Error => "NA",
    }
}

//! The peer transport: one TCP connection to each other member of the
//! ensemble for what this server sends it, and a listener on this server's
//! quorum port for what the others send. Frames are `consensus::wire`'s;
//! every connection starts with a `Hello` naming the ensemble and both
//! ends. The transport checks only that much: who may say what is the
//! ensemble driver's decision (`consensus::driver`, its guard), so that the
//! simulator, which runs the same driver, checks the same rules.
//!
//! Why one direction per connection: no tie-breaking between two
//! connections for the same pair, and a reader never competes with a
//! writer. The one exception: a server that contacts this one without
//! being a member (a joiner discovering its ensemble) has no connection
//! from here, so its answers go back on the connection it opened.
//!
//! Peers are addressed by host name, resolved again on every connection
//! attempt: in Kubernetes a StatefulSet pod's DNS name resolves only once
//! the pod exists, and to a new address after it is rescheduled. A peer
//! that cannot be reached, or that refuses this server, is retried after
//! an exponential, capped, jittered delay (`consensus::driver::backoff`),
//! and said so in the log once per change of state, not on every attempt.
//! A peer that connects to this server is up again: the delay before
//! connecting back to it ends at once (a restarted member would otherwise
//! wait up to the longest delay for the answers to its first questions).
//!
//! With `sslQuorum=true` every connection is mutual TLS (`crate::tls::
//! QuorumTls`): the dialling side checks the other's certificate names the
//! host it dialled; the accepting side, that the certificate of a
//! connection whose Hello names a member names that member's host, then
//! and whenever the membership changes, so one member's certificate cannot
//! speak for another. A connection that fails its TLS handshake is closed
//! before a byte of it is read as a frame. `portUnification` takes plain
//! and TLS connections on the one port (for turning TLS on or off by a
//! rolling restart); a plain connection has no identity to check. At most
//! [`HANDSHAKES`] connections may be between their accept and a checked
//! Hello at once, each for at most the handshake timeout, so a flood of
//! connections that never finish cannot starve the members' own.
//!
//! Messages for a peer wait in a bounded queue. Raft tolerates loss, so
//! when the queue is full (the peer is slow or away) new messages are
//! dropped and raft is told the peer is unreachable; a snapshot that could
//! not be delivered is reported as failed, or the leader would wait for it
//! forever.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consensus::driver::Transport;
use consensus::driver::backoff::Backoff;
use consensus::membership::Member;
use consensus::raft::eraftpb::{Message, MessageType};
use consensus::wire::{self, Frame, Hello};
use tokio::io::{AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::processor::Command;
use crate::tls::{PeerCertificate, QuorumTls};

/// Messages waiting for one peer, at most.
const QUEUE: usize = 4096;
/// Answers waiting for a server that contacted this one, at most.
const REPLY_QUEUE: usize = 64;
/// How long connecting or a Hello may take (a TLS handshake has its own,
/// `ssl.quorum.handshakeDetectionTimeoutMillis`, on top).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Inbound connections between their accept and a checked Hello, at most;
/// more are closed at once.
const HANDSHAKES: usize = 64;
const FIRST_BACKOFF_MS: u64 = 50;
const MAX_BACKOFF_MS: u64 = 5_000;
/// A connection that stayed up this long was a success: the next failure
/// starts the back-off from the beginning.
const HEALTHY: Duration = Duration::from_secs(2);

/// How peer connections are protected (`sslQuorum`, `portUnification`).
#[derive(Debug, Clone)]
pub struct PeerSecurity {
    /// The quorum TLS stores, when either key is on.
    pub tls: Option<QuorumTls>,
    /// Dial peers over TLS (`sslQuorum=true`).
    pub dial_tls: bool,
    /// Take plain connections too (`sslQuorum=false`, or `portUnification`).
    pub accept_plain: bool,
}

impl PeerSecurity {
    /// Plain peers both ways: no `sslQuorum`, no `portUnification`.
    pub fn plain() -> PeerSecurity {
        PeerSecurity {
            tls: None,
            dial_tls: false,
            accept_plain: true,
        }
    }
}

/// A peer connection, plain or TLS.
type PeerStream = crate::tls::BoxedStream;

/// Each member's host as this server knows the membership: what an inbound
/// connection's certificate must name to speak for that member.
type MemberHosts = Arc<HashMap<u64, String>>;

fn member_hosts(members: &[Member]) -> MemberHosts {
    Arc::new(members.iter().map(|m| (m.id, m.host.clone())).collect())
}

/// Why a connection whose Hello says it is `from` may not speak for it:
/// `from` is a member whose host its certificate does not name. A server
/// that is not a member (a joiner) speaks only as a non-member, which the
/// ensemble driver's guard judges.
fn identity_refusal(
    hosts: &HashMap<u64, String>,
    from: u64,
    certificate: &PeerCertificate,
) -> Option<String> {
    let host = hosts.get(&from)?;
    (!certificate.names(host))
        .then(|| format!("the certificate presented does not name {host}, server {from}'s host"))
}

/// What the transport reports to the processor.
#[derive(Debug)]
pub enum PeerEvent {
    /// A Raft message from `from` (whose connection's Hello named it).
    Raft { from: u64, message: Box<Message> },
    /// A notice (`consensus::driver::Notice`'s bytes) from `from`.
    Service { from: u64, payload: Vec<u8> },
    /// `peer` could not be reached (raft slows down probing it).
    Unreachable(u64),
    /// A snapshot to `peer` was written out, or could not be.
    SnapshotSent { peer: u64, delivered: bool },
    /// `peer`'s process is gone: it closed our connection and its port
    /// refuses new ones (reported once per outage).
    Gone(u64),
}

/// What goes out to one peer.
#[derive(Debug)]
enum Outbound {
    Raft(Box<Message>),
    Service(Vec<u8>),
}

/// Answer channels to servers that contacted this one, by their id: what
/// this server sends to a server it has no address for (one that is not a
/// member in its view, which may be behind) goes back on the connection
/// that server opened.
type Replies = Arc<Mutex<HashMap<u64, mpsc::Sender<Outbound>>>>;

/// Per peer, what wakes its sender out of a back-off delay: a connection
/// that peer opened to this server.
type Wakers = Arc<Mutex<HashMap<u64, Arc<tokio::sync::Notify>>>>;

/// The processor's handle on the transport.
#[derive(Debug)]
pub struct Peers {
    queues: HashMap<u64, mpsc::Sender<Outbound>>,
    /// Per peer: whether its connection is up (for status reports).
    connected: HashMap<u64, Arc<AtomicBool>>,
    /// Per peer: where it listens, and the flag that stops its sender.
    addresses: HashMap<u64, (String, u16, Arc<AtomicBool>)>,
    replies: Replies,
    wakers: Wakers,
    ensemble_name: String,
    my_id: u64,
    seed: u64,
    /// The largest frame a peer may send (`conclave.peerMaxFrameBytes`).
    max_frame: usize,
    commands: mpsc::Sender<Command>,
    runtime: tokio::runtime::Handle,
    /// Each member's host, for the inbound side's certificate checks.
    hosts: watch::Sender<MemberHosts>,
    /// What senders dial peers with (`sslQuorum=true`).
    dial_tls: Option<QuorumTls>,
}

impl Peers {
    /// Queues a raft message; false if it was dropped (full queue, or a
    /// peer with neither an address nor a connection to this server),
    /// which the caller reports to raft.
    pub fn send_raft(&self, message: Message) -> bool {
        let to = message.to;
        self.send(to, Outbound::Raft(Box::new(message)))
    }

    /// Queues a notice for `to`; false if dropped.
    pub fn send_service(&self, to: u64, payload: Vec<u8>) -> bool {
        self.send(to, Outbound::Service(payload))
    }

    /// On the connection to `to`, or, for a server that is not a member in
    /// this server's view (a joiner, or a member this server's log has not
    /// caught up with yet), on the connection it opened.
    fn send(&self, to: u64, item: Outbound) -> bool {
        if let Some(queue) = self.queues.get(&to) {
            return queue.try_send(item).is_ok();
        }
        let reply = self
            .replies
            .lock()
            .ok()
            .and_then(|replies| replies.get(&to).cloned());
        reply.is_some_and(|r| r.try_send(item).is_ok())
    }

    /// Follows a membership change: senders start for new members and stop
    /// for members that left (or moved: they start again at the new
    /// address).
    pub fn follow_members(&mut self, members: &[Member]) {
        self.hosts.send_replace(member_hosts(members));
        let wanted: HashMap<u64, (String, u16)> = members
            .iter()
            .filter(|m| m.id != self.my_id)
            .map(|m| (m.id, (m.host.clone(), m.quorum_port)))
            .collect();
        let stale: Vec<u64> = self
            .addresses
            .iter()
            .filter(|(id, (host, port, _))| {
                wanted.get(id).is_none_or(|(h, p)| h != host || p != port)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some((_, _, stop)) = self.addresses.remove(&id) {
                stop.store(true, Ordering::Relaxed);
            }
            self.queues.remove(&id);
            self.connected.remove(&id);
            if let Ok(mut wakers) = self.wakers.lock() {
                wakers.remove(&id);
            }
            tracing::info!(peer = id, "no longer a member: stopped connecting to it");
        }
        for (id, (host, port)) in wanted {
            if !self.addresses.contains_key(&id) {
                self.spawn_sender(id, host, port);
            }
        }
    }

    fn spawn_sender(&mut self, id: u64, host: String, port: u16) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let up = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        self.queues.insert(id, tx);
        self.connected.insert(id, up.clone());
        self.addresses
            .insert(id, (host.clone(), port, stop.clone()));
        let wake = Arc::new(tokio::sync::Notify::new());
        if let Ok(mut wakers) = self.wakers.lock() {
            wakers.insert(id, wake.clone());
        }
        let peer = PeerAddress { id, host, port };
        let hello = Hello {
            ensemble: self.ensemble_name.clone(),
            from: self.my_id,
            to: id,
        };
        let backoff = Backoff::new(
            FIRST_BACKOFF_MS,
            MAX_BACKOFF_MS,
            self.seed ^ id.wrapping_mul(0x9e37_79b9),
        );
        let link = Link {
            peer,
            hello,
            commands: self.commands.clone(),
            up,
            stop,
            backoff,
            wake,
            max_frame: self.max_frame,
            tls: self.dial_tls.clone(),
        };
        self.runtime.spawn(send_loop(link, rx));
    }

    /// Whether this server's connection to `peer` is up.
    pub fn is_connected(&self, peer: u64) -> bool {
        self.connected
            .get(&peer)
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

/// The driver's network.
impl Transport for Peers {
    fn send(&mut self, message: Message) -> bool {
        self.send_raft(message)
    }

    fn notify(&mut self, to: u64, notice: Vec<u8>) -> bool {
        self.send_service(to, notice)
    }

    fn set_members(&mut self, members: &[Member]) {
        self.follow_members(members);
    }
}

/// Where a peer listens.
#[derive(Debug, Clone)]
struct PeerAddress {
    id: u64,
    host: String,
    port: u16,
}

/// One outbound connection's state.
struct Link {
    peer: PeerAddress,
    hello: Hello,
    commands: mpsc::Sender<Command>,
    up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    backoff: Backoff,
    /// Ends a back-off delay early: the peer connected to this server.
    wake: Arc<tokio::sync::Notify>,
    max_frame: usize,
    /// Dial over TLS.
    tls: Option<QuorumTls>,
}

impl Link {
    /// Waits out a back-off delay, or less if the peer shows it is up.
    async fn pause(&mut self) {
        let delay = Duration::from_millis(self.backoff.next_delay_ms());
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = self.wake.notified() => self.backoff.reset(),
        }
    }
}

/// What a server's peer transport is started with.
#[derive(Debug)]
pub struct PeerSetup {
    pub my_id: u64,
    pub ensemble_name: String,
    pub listener: TcpListener,
    /// The membership as the server starts with it (zoo.cfg's, or the
    /// stored one), until the driver sets the committed one: whose
    /// certificate may speak for whom from the first connection on.
    pub members: Vec<Member>,
    /// Jitters the reconnection delays.
    pub seed: u64,
    pub max_frame: usize,
    pub security: PeerSecurity,
}

/// Starts the listener for inbound connections and returns the handle the
/// driver sends through (its members are set when the driver starts);
/// events go to the processor through `commands`.
pub fn start(setup: PeerSetup, commands: mpsc::Sender<Command>) -> Peers {
    let PeerSetup {
        my_id,
        ensemble_name,
        listener,
        members,
        seed,
        max_frame,
        security,
    } = setup;
    let ensemble_name = ensemble_name.as_str();
    let replies: Replies = Arc::new(Mutex::new(HashMap::new()));
    let wakers: Wakers = Arc::new(Mutex::new(HashMap::new()));
    let (hosts, hosts_rx) = watch::channel(member_hosts(&members));
    if let Some(tls) = &security.tls {
        tls.watch_files();
    }
    tokio::spawn(accept_loop(
        listener,
        ensemble_name.to_owned(),
        my_id,
        Inbound {
            replies: replies.clone(),
            wakers: wakers.clone(),
            newest: Newest::default(),
            max_frame,
            hosts: hosts_rx,
            security: security.clone(),
            refusals: Refusals::default(),
        },
        commands.clone(),
    ));
    Peers {
        queues: HashMap::new(),
        connected: HashMap::new(),
        addresses: HashMap::new(),
        replies,
        wakers,
        ensemble_name: ensemble_name.to_owned(),
        my_id,
        seed,
        max_frame,
        commands,
        runtime: tokio::runtime::Handle::current(),
        hosts,
        dial_tls: security.tls.clone().filter(|_| security.dial_tls),
    }
}

/// Why a connection ended or could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// Every address refused the TCP connection: nothing listens there.
    NotListening(String),
    /// The peer said no (wrong ensemble, wrong id), and why.
    Refused(String),
    /// Anything else: resolution, timeouts, a broken connection.
    Other(String),
}

impl Failure {
    fn text(&self) -> &str {
        match self {
            Failure::NotListening(s) | Failure::Refused(s) | Failure::Other(s) => s,
        }
    }
}

/// Keeps a connection to the peer up and writes its queue into it.
async fn send_loop(mut link: Link, mut queue: mpsc::Receiver<Outbound>) {
    let id = link.peer.id;
    let mut last_failure: Option<Failure> = None;
    // The peer closed the connection we had: a refused reconnect then
    // means its process is gone.
    let mut closed_by_peer = false;
    loop {
        if link.stop.load(Ordering::Relaxed) {
            return;
        }
        let stream = match connect(&link.peer, &link.hello, link.tls.as_ref()).await {
            Ok(stream) => stream,
            Err(failure) => {
                if closed_by_peer && matches!(failure, Failure::NotListening(_)) {
                    closed_by_peer = false;
                    let _ = link.commands.try_send(Command::Peer(PeerEvent::Gone(id)));
                }
                let _ = link
                    .commands
                    .try_send(Command::Peer(PeerEvent::Unreachable(id)));
                if last_failure.as_ref() != Some(&failure) {
                    tracing::warn!(
                        peer = id,
                        host = %link.peer.host,
                        port = link.peer.port,
                        error = %failure.text(),
                        "peer not reachable; retrying with back-off"
                    );
                    last_failure = Some(failure);
                }
                // What was queued meanwhile is stale: raft resends what
                // matters once the peer answers again.
                discard_queued(&mut queue, id, &link.commands);
                link.pause().await;
                continue;
            }
        };
        link.up.store(true, Ordering::Relaxed);
        let since = Instant::now();
        let ended = write_while_up(&mut link, stream, &mut queue).await;
        link.up.store(false, Ordering::Relaxed);
        let Some(ended) = ended else {
            // The processor is gone: the server is stopping.
            return;
        };
        closed_by_peer = matches!(ended, Failure::Other(_));
        let _ = link
            .commands
            .try_send(Command::Peer(PeerEvent::Unreachable(id)));
        if since.elapsed() >= HEALTHY {
            link.backoff.reset();
        }
        if last_failure.as_ref() != Some(&ended) {
            match &ended {
                Failure::Refused(reason) => tracing::warn!(
                    peer = id,
                    %reason,
                    "peer refused this server; retrying with back-off"
                ),
                other => tracing::warn!(
                    peer = id,
                    error = %other.text(),
                    "connection to peer broke; reconnecting"
                ),
            }
            last_failure = Some(ended.clone());
        }
        if !matches!(ended, Failure::Other(_)) || since.elapsed() < HEALTHY {
            link.pause().await;
        }
    }
}

/// Writes the queue into a connected stream until it breaks (`Some`: why)
/// or the processor is gone (`None`). What the peer sends back — a
/// refusal, or its answers when this server is not a member in its view —
/// is read alongside.
async fn write_while_up(
    link: &mut Link,
    stream: PeerStream,
    queue: &mut mpsc::Receiver<Outbound>,
) -> Option<Failure> {
    let id = link.peer.id;
    let my_id = link.hello.from;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let commands = link.commands.clone();
    let max_frame = link.max_frame;
    let mut read_back = tokio::spawn(async move {
        loop {
            match read_frame(&mut reader, max_frame).await {
                Ok(Frame::Refused(reason)) => return Failure::Refused(reason),
                Ok(Frame::Service(payload)) => {
                    let event = PeerEvent::Service { from: id, payload };
                    if commands.send(Command::Peer(event)).await.is_err() {
                        return Failure::Other("stopping".into());
                    }
                }
                // A peer that does not know this server as a member (its
                // log is behind) answers its vote requests and appends here.
                Ok(Frame::Raft(message)) if message.from == id && message.to == my_id => {
                    let event = PeerEvent::Raft { from: id, message };
                    if commands.send(Command::Peer(event)).await.is_err() {
                        return Failure::Other("stopping".into());
                    }
                }
                Ok(_) => return Failure::Other("the peer wrote an unexpected frame".into()),
                Err(e) => return Failure::Other(format!("the peer closed the connection ({e})")),
            }
        }
    });
    let mut buf = Vec::new();
    let ended = loop {
        let first = tokio::select! {
            item = queue.recv() => match item {
                Some(item) => item,
                None => {
                    read_back.abort();
                    return None;
                }
            },
            ended = &mut read_back => {
                break ended.unwrap_or_else(|e| Failure::Other(e.to_string()));
            }
        };
        // Write everything queued in one go.
        buf.clear();
        let mut snapshots = 0;
        let mut next = Some(first);
        while let Some(item) = next {
            snapshots += usize::from(is_snapshot(&item));
            encode(item, &mut buf);
            next = if buf.len() < 1 << 20 {
                queue.try_recv().ok()
            } else {
                None
            };
        }
        let written = write_flushed(&mut writer, &buf).await;
        for _ in 0..snapshots {
            let event = PeerEvent::SnapshotSent {
                peer: id,
                delivered: written.is_ok(),
            };
            let _ = link.commands.send(Command::Peer(event)).await;
        }
        if let Err(e) = written {
            break Failure::Other(e.to_string());
        }
    };
    read_back.abort();
    Some(ended)
}

fn is_snapshot(item: &Outbound) -> bool {
    matches!(item, Outbound::Raft(m) if m.get_msg_type() == MessageType::MsgSnapshot)
}

fn encode(item: Outbound, out: &mut Vec<u8>) {
    let frame = match item {
        Outbound::Raft(m) => Frame::Raft(m),
        Outbound::Service(payload) => Frame::Service(payload),
    };
    wire::encode_frame(&frame, out);
}

/// Drops what waits for an unreachable peer; a snapshot among it counts as
/// not delivered.
fn discard_queued(
    queue: &mut mpsc::Receiver<Outbound>,
    peer: u64,
    commands: &mpsc::Sender<Command>,
) {
    while let Ok(item) = queue.try_recv() {
        if is_snapshot(&item) {
            let event = PeerEvent::SnapshotSent {
                peer,
                delivered: false,
            };
            let _ = commands.try_send(Command::Peer(event));
        }
    }
}

/// Writes `bytes` and flushes them: a TLS stream may hold written bytes
/// back until flushed.
async fn write_flushed<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    writer.write_all(bytes).await?;
    writer.flush().await
}

/// Resolves the peer's name now, connects (over TLS when `tls` is given:
/// the peer's certificate must name `peer.host`), and says Hello.
async fn connect(
    peer: &PeerAddress,
    hello: &Hello,
    tls: Option<&QuorumTls>,
) -> Result<PeerStream, Failure> {
    let attempt = async {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((peer.host.as_str(), peer.port))
            .await
            .map_err(|e| Failure::Other(format!("cannot resolve {}: {e}", peer.host)))?
            .collect();
        let mut last = Failure::Other(format!("{} resolves to no address", peer.host));
        for address in addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    let mut stream: PeerStream = match tls {
                        None => Box::new(stream),
                        Some(tls) => {
                            Box::new(tls.connect(&peer.host, stream).await.map_err(|e| {
                                Failure::Refused(format!("TLS with {address}: {e}"))
                            })?)
                        }
                    };
                    let mut out = Vec::new();
                    wire::encode_frame(&Frame::Hello(hello.clone()), &mut out);
                    write_flushed(&mut stream, &out)
                        .await
                        .map_err(|e| Failure::Other(format!("sending hello to {address}: {e}")))?;
                    return Ok(stream);
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    last = Failure::NotListening(format!("connecting to {address}: {e}"));
                }
                Err(e) => last = Failure::Other(format!("connecting to {address}: {e}")),
            }
        }
        Err(last)
    };
    let limit = HANDSHAKE_TIMEOUT + tls.map_or(Duration::ZERO, |t| t.handshake_timeout);
    match tokio::time::timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Other(format!(
            "connecting to {}:{} timed out",
            peer.host, peer.port
        ))),
    }
}

/// What the inbound side shares with the senders.
#[derive(Clone)]
struct Inbound {
    replies: Replies,
    wakers: Wakers,
    /// Per peer, the number of its newest connection (and the last number
    /// given): a connection superseded by a newer one from the same
    /// server delivers nothing more. A process that restarted (a member
    /// that lost its disk, taken back by the leader on its new connection)
    /// must never have a message its previous life sent counted after
    /// that: an acknowledgement of entries it no longer holds.
    newest: Newest,
    max_frame: usize,
    hosts: watch::Receiver<MemberHosts>,
    security: PeerSecurity,
    /// Refused connections are logged at most every [`REFUSALS_EVERY`]:
    /// whoever floods the port does not flood the log.
    refusals: Refusals,
}

/// How often refused peer connections are logged as warnings (the rest go
/// to the debug log).
const REFUSALS_EVERY: Duration = Duration::from_secs(10);

/// When a refusal was last logged as a warning (shared by every inbound
/// connection's task).
#[derive(Clone, Default)]
struct Refusals(Arc<Mutex<Option<Instant>>>);

impl Refusals {
    /// Whether this refusal is logged as a warning.
    fn loud(&self) -> bool {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let loud = last.is_none_or(|t| t.elapsed() >= REFUSALS_EVERY);
        if loud {
            *last = Some(Instant::now());
        }
        loud
    }
}

/// Per peer, the number of its newest connection, behind a lock that a
/// reader holds while it hands a frame on: a frame read from a connection
/// is handed on before a newer connection from the same server is
/// registered, or not at all.
#[derive(Clone, Default)]
struct Newest {
    counter: Arc<std::sync::atomic::AtomicU64>,
    peers: Arc<Mutex<HashMap<u64, Arc<tokio::sync::Mutex<u64>>>>>,
}

impl Newest {
    /// Registers a new connection from `peer`: its number and its lock.
    async fn register(&self, peer: u64) -> Option<(u64, Arc<tokio::sync::Mutex<u64>>)> {
        let generation = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let lock = self
            .peers
            .lock()
            .ok()?
            .entry(peer)
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(0)))
            .clone();
        *lock.lock().await = generation;
        Some((generation, lock))
    }
}

async fn accept_loop(
    listener: TcpListener,
    ensemble: String,
    my_id: u64,
    inbound: Inbound,
    commands: mpsc::Sender<Command>,
) {
    let handshakes = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES));
    let mut crowded_since: Option<Instant> = None;
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a peer connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            // Closed unread; said once per crowded spell, not per connection.
            if crowded_since.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                tracing::warn!(%remote, limit = HANDSHAKES, "too many peer connections in their handshake: closing new ones");
                crowded_since = Some(Instant::now());
            }
            continue;
        };
        let (ensemble, inbound, commands) = (ensemble.clone(), inbound.clone(), commands.clone());
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            if let Err(e) = receive(stream, permit, &ensemble, my_id, inbound, &commands).await {
                tracing::debug!(%remote, error = %e, "peer connection closed");
            }
        });
    }
}

/// The connection as this server takes it: TLS (with the certificate to
/// check, when names are checked) or plain, as the settings allow.
async fn secure(
    stream: TcpStream,
    security: &PeerSecurity,
) -> Result<(PeerStream, Option<PeerCertificate>), String> {
    let Some(tls) = &security.tls else {
        return Ok((Box::new(stream), None));
    };
    let is_tls = if security.accept_plain {
        // portUnification: a plain peer's first frame starts with its
        // length, whose first byte is 0 for any Hello.
        tokio::time::timeout(tls.handshake_timeout, crate::tls::starts_tls(&stream))
            .await
            .map_err(|_| "nothing sent in time".to_owned())?
            .map_err(|e| format!("reading: {e}"))?
    } else {
        true
    };
    if !is_tls {
        return Ok((Box::new(stream), None));
    }
    let (stream, certificate) = tokio::time::timeout(tls.handshake_timeout, tls.accept(stream))
        .await
        .map_err(|_| "the TLS handshake took too long".to_owned())?
        .map_err(|e| format!("TLS handshake refused: {e}"))?;
    let certificate = tls.checks_names().then_some(certificate);
    Ok((Box::new(stream), certificate))
}

/// Reads one peer connection: the Hello, then frames for the processor;
/// answers to the peer's notices go back on it when this server has no
/// connection of its own to the peer.
async fn receive(
    stream: TcpStream,
    handshake: tokio::sync::OwnedSemaphorePermit,
    ensemble: &str,
    my_id: u64,
    inbound: Inbound,
    commands: &mpsc::Sender<Command>,
) -> Result<(), String> {
    let Inbound {
        replies,
        wakers,
        newest,
        max_frame,
        mut hosts,
        security,
        refusals,
    } = inbound;
    let (stream, certificate) = match secure(stream, &security).await {
        Ok(secured) => secured,
        Err(e) => {
            if refusals.loud() {
                tracing::warn!(error = %e, "a peer connection was refused before its first frame (more are logged at debug level for 10 s)");
            } else {
                tracing::debug!(error = %e, "a peer connection was refused before its first frame");
            }
            return Err(e);
        }
    };
    let (mut reader, mut writer) = tokio::io::split(stream);
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_frame(&mut reader, max_frame))
        .await
        .map_err(|_| "no hello in time".to_owned())??;
    let Frame::Hello(hello) = first else {
        return Err("the first frame is not a hello".into());
    };
    let identity = certificate
        .as_ref()
        .and_then(|c| identity_refusal(&hosts.borrow_and_update(), hello.from, c));
    let refusal = if hello.ensemble != ensemble {
        Some(format!(
            "this is ensemble {ensemble:?}, not {:?}",
            hello.ensemble
        ))
    } else if hello.to != my_id {
        Some(format!("this is server {my_id}, not {}", hello.to))
    } else if hello.from == my_id {
        Some(format!("this is server {my_id} itself"))
    } else {
        identity
    };
    if let Some(reason) = refusal {
        let mut out = Vec::new();
        wire::encode_frame(&Frame::Refused(reason.clone()), &mut out);
        let _ = write_flushed(&mut writer, &out).await;
        if certificate.is_some() {
            if refusals.loud() {
                tracing::warn!(claimed = hello.from, %reason, "refused a peer connection");
            } else {
                tracing::debug!(claimed = hello.from, %reason, "refused a peer connection");
            }
        }
        return Err(format!("refused: {reason}"));
    }
    drop(handshake);
    let from = hello.from;
    let Some((generation, current)) = newest.register(from).await else {
        return Err("the connection table is poisoned".into());
    };
    // It is up: the connection back to it need not wait out a back-off.
    let wake = wakers.lock().ok().and_then(|w| w.get(&from).cloned());
    if let Some(wake) = wake {
        wake.notify_one();
    }
    let (reply_tx, mut reply_rx) = mpsc::channel::<Outbound>(REPLY_QUEUE);
    if let Ok(mut map) = replies.lock() {
        map.insert(from, reply_tx.clone());
    }
    let answer = tokio::spawn(async move {
        let mut out = Vec::new();
        while let Some(item) = reply_rx.recv().await {
            out.clear();
            encode(item, &mut out);
            if write_flushed(&mut writer, &out).await.is_err() {
                return;
            }
        }
    });
    let result = async {
        loop {
            let frame = read_frame(&mut reader, max_frame).await?;
            // The membership changed since this connection's certificate
            // was checked: its Hello's server may have become a member, or
            // moved.
            if let Some(certificate) = &certificate
                && hosts.has_changed().unwrap_or(false)
                && let Some(reason) =
                    identity_refusal(&hosts.borrow_and_update(), from, certificate)
            {
                tracing::warn!(peer = from, %reason, "closed a peer connection");
                return Err(reason);
            }
            let held = current.lock().await;
            if *held != generation {
                return Err(format!(
                    "server {from} connected again: this connection is over"
                ));
            }
            let event = match frame {
                Frame::Raft(message) => {
                    if message.from != from || message.to != my_id {
                        return Err(format!(
                            "server {from} sent a message from {} to {}",
                            message.from, message.to
                        ));
                    }
                    PeerEvent::Raft { from, message }
                }
                Frame::Service(payload) => PeerEvent::Service { from, payload },
                Frame::Hello(_) => return Err("a second hello".into()),
                Frame::Refused(reason) => return Err(format!("peer refused: {reason}")),
            };
            if commands.send(Command::Peer(event)).await.is_err() {
                return Ok(());
            }
        }
    }
    .await;
    answer.abort();
    if let Ok(mut map) = replies.lock()
        && map.get(&from).is_some_and(|tx| tx.same_channel(&reply_tx))
    {
        map.remove(&from);
    }
    result
}

/// One frame of at most `max` bytes. A larger one ends the connection with
/// a warning: peers send nothing that large (snapshots travel in chunks),
/// so it is a peer with another limit, or not a peer at all.
async fn read_frame<R: tokio::io::AsyncRead + Unpin>(
    stream: &mut R,
    max: usize,
) -> Result<Frame, String> {
    let mut header = [0u8; 4];
    stream
        .read_exact(&mut header)
        .await
        .map_err(|e| format!("reading: {e}"))?;
    let len = wire::frame_len(header, max).map_err(|e| {
        tracing::warn!(error = %e, "a peer sent a frame over the limit");
        e.to_string()
    })?;
    let mut payload = vec![0u8; len];
    stream
        .read_exact(&mut payload)
        .await
        .map_err(|e| format!("reading: {e}"))?;
    wire::decode_frame(&payload).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A listener that says Hello back with a refusal, as a server of
    /// another ensemble does, counting the connections it gets.
    async fn refusing_peer() -> (u16, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::Relaxed);
                let mut out = Vec::new();
                wire::encode_frame(
                    &Frame::Refused("this is ensemble \"a\", not \"b\"".into()),
                    &mut out,
                );
                let _ = stream.write_all(&out).await;
            }
        });
        (port, count)
    }

    #[test]
    fn refusals_are_loud_once_per_spell() {
        let refusals = Refusals::default();
        assert!(refusals.loud());
        assert!(!refusals.loud());
        assert!(!refusals.clone().loud(), "clones share the clock");
    }

    /// A refused server comes back after an exponential, capped, jittered
    /// delay, not at once: a refused peer once made 270,000 connections in
    /// 80 s.
    #[tokio::test]
    async fn a_refused_peer_backs_off() {
        let (port, count) = refusing_peer().await;
        let (commands, mut rx) = mpsc::channel(1024);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let setup = PeerSetup {
            my_id: 1,
            ensemble_name: "b".into(),
            listener,
            members: Vec::new(),
            seed: 7,
            max_frame: wire::DEFAULT_MAX_FRAME,
            security: PeerSecurity::plain(),
        };
        let mut peers = start(setup, commands);
        peers.follow_members(&[Member {
            id: 2,
            host: "127.0.0.1".into(),
            quorum_port: port,
            election_port: port + 1,
            role: consensus::membership::MemberRole::Participant,
            client: None,
        }]);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let attempts = count.load(Ordering::Relaxed);
        // 25-50, 50-100, ... ms: at most about eight in three seconds.
        assert!(
            (2..=10).contains(&attempts),
            "{attempts} connections in 3 s"
        );
    }
}

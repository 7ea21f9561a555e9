//! The peer transport: one TCP connection to each other member of the
//! ensemble for what this server sends it, and a listener on this server's
//! quorum port for what the others send. Frames are `consensus::wire`'s;
//! every connection starts with a `Hello` naming the ensemble and both ends,
//! and nothing a peer sends reaches raft before that checked out.
//!
//! Why one direction per connection: no tie-breaking between two
//! connections for the same pair, and a reader never competes with a writer.
//!
//! Peers are addressed by host name, resolved again on every connection
//! attempt: in Kubernetes a StatefulSet pod's DNS name resolves only once
//! the pod exists, and to a new address after it is rescheduled. A peer
//! that cannot be reached is retried with a capped backoff, and said so in
//! the log (once per change of state, not on every attempt).
//!
//! Messages for a peer wait in a bounded queue. Raft tolerates loss, so
//! when the queue is full (the peer is slow or away) new messages are
//! dropped and raft is told the peer is unreachable; a snapshot that could
//! not be delivered is reported as failed, or the leader would wait for it
//! forever.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use consensus::raft::eraftpb::{Message, MessageType};
use consensus::wire::{self, Frame, Hello};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::ensemble_config::{Ensemble, Member};
use crate::processor::Command;

/// Messages waiting for one peer, at most.
const QUEUE: usize = 4096;
/// How long connecting or a Hello may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What the transport reports to the processor.
#[derive(Debug)]
pub enum PeerEvent {
    /// A message from a peer, after its connection's Hello checked out.
    Raft(Box<Message>),
    /// A ZooKeeper-layer message (`crate::service_message`) from `from`.
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

/// The processor's handle on the transport.
#[derive(Debug, Clone)]
pub struct Peers {
    queues: HashMap<u64, mpsc::Sender<Outbound>>,
    /// Per peer: whether its connection is up (for status reports).
    connected: HashMap<u64, Arc<AtomicBool>>,
    /// Per peer: where it listens, and the flag that stops its sender.
    addresses: HashMap<u64, (String, u16, Arc<AtomicBool>)>,
    /// Who may connect in (shared with the listener).
    members: Arc<RwLock<Vec<u64>>>,
    ensemble_name: String,
    my_id: u64,
    commands: mpsc::Sender<Command>,
    runtime: tokio::runtime::Handle,
}

impl Peers {
    /// Queues a raft message; false if it was dropped (full queue or
    /// unknown peer), which the caller reports to raft.
    pub fn send(&self, message: Message) -> bool {
        match self.queues.get(&message.to) {
            Some(queue) => queue.try_send(Outbound::Raft(Box::new(message))).is_ok(),
            None => false,
        }
    }

    /// Queues a ZooKeeper-layer message for `to`; false if dropped.
    pub fn send_service(&self, to: u64, payload: Vec<u8>) -> bool {
        match self.queues.get(&to) {
            Some(queue) => queue.try_send(Outbound::Service(payload)).is_ok(),
            None => false,
        }
    }

    /// Follows a membership change: senders start for new members and stop
    /// for members that left (or moved: they start again at the new
    /// address); the listener accepts exactly the members.
    pub fn set_members(&mut self, members: &[Member]) {
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
            tracing::info!(peer = id, "no longer a member: stopped connecting to it");
        }
        for (id, (host, port)) in wanted {
            if !self.addresses.contains_key(&id) {
                self.spawn_sender(id, host, port);
            }
        }
        if let Ok(mut allowed) = self.members.write() {
            *allowed = members
                .iter()
                .map(|m| m.id)
                .filter(|&id| id != self.my_id)
                .collect();
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
        let peer = PeerAddress { id, host, port };
        let hello = Hello {
            ensemble: self.ensemble_name.clone(),
            from: self.my_id,
            to: id,
        };
        self.runtime
            .spawn(send_loop(peer, hello, rx, self.commands.clone(), up, stop));
    }

    /// Whether this server's connection to `peer` is up.
    pub fn is_connected(&self, peer: u64) -> bool {
        self.connected
            .get(&peer)
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

/// Where a peer listens.
#[derive(Debug, Clone)]
struct PeerAddress {
    id: u64,
    host: String,
    port: u16,
}

/// Starts a sender task for every other member and the listener for
/// inbound connections; events go to the processor through `commands`.
pub fn start(
    ensemble: &Ensemble,
    ensemble_name: &str,
    listener: TcpListener,
    commands: mpsc::Sender<Command>,
) -> Peers {
    let members = Arc::new(RwLock::new(Vec::new()));
    let mut peers = Peers {
        queues: HashMap::new(),
        connected: HashMap::new(),
        addresses: HashMap::new(),
        members: members.clone(),
        ensemble_name: ensemble_name.to_owned(),
        my_id: ensemble.my_id,
        commands: commands.clone(),
        runtime: tokio::runtime::Handle::current(),
    };
    peers.set_members(&ensemble.members);
    tokio::spawn(accept_loop(
        listener,
        ensemble_name.to_owned(),
        ensemble.my_id,
        members,
        commands,
    ));
    peers
}

/// Keeps a connection to `peer` up and writes its queue into it.
async fn send_loop(
    peer: PeerAddress,
    hello: Hello,
    mut queue: mpsc::Receiver<Outbound>,
    commands: mpsc::Sender<Command>,
    up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) {
    let mut backoff = Duration::from_millis(50);
    let mut last_error: Option<String> = None;
    // The peer closed the connection we had: a refused reconnect then
    // means its process is gone.
    let mut closed_by_peer = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let stream = match connect(&peer, &hello).await {
            Ok(stream) => {
                tracing::info!(peer = peer.id, host = %peer.host, port = peer.port, "connected to peer");
                last_error = None;
                closed_by_peer = false;
                backoff = Duration::from_millis(50);
                stream
            }
            Err(e) => {
                if closed_by_peer && e.refused {
                    closed_by_peer = false;
                    let _ = commands.try_send(Command::Peer(PeerEvent::Gone(peer.id)));
                }
                if last_error.as_deref() != Some(e.message.as_str()) {
                    tracing::warn!(
                        peer = peer.id,
                        host = %peer.host,
                        port = peer.port,
                        error = %e.message,
                        "peer not reachable yet; retrying"
                    );
                    last_error = Some(e.message);
                }
                let _ = commands.try_send(Command::Peer(PeerEvent::Unreachable(peer.id)));
                // What was queued meanwhile is stale: raft resends what
                // matters once the peer answers again.
                discard_queued(&mut queue, peer.id, &commands);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        up.store(true, Ordering::Relaxed);
        let (mut reader, mut writer) = stream.into_split();
        // The peer never writes on this connection (but a refusal): a read
        // that ends is the peer closing it, which a writer would notice
        // only at its next write.
        let mut watch = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok(n) = reader.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        });
        let mut buf = Vec::new();
        let broken = loop {
            let first = tokio::select! {
                item = queue.recv() => match item {
                    Some(item) => item,
                    // The processor is gone: the server is stopping.
                    None => return,
                },
                _ = &mut watch => {
                    closed_by_peer = true;
                    break "the peer closed the connection".to_owned();
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
            let written = writer.write_all(&buf).await;
            for _ in 0..snapshots {
                let event = PeerEvent::SnapshotSent {
                    peer: peer.id,
                    delivered: written.is_ok(),
                };
                let _ = commands.send(Command::Peer(event)).await;
            }
            if let Err(e) = written {
                break e.to_string();
            }
        };
        watch.abort();
        up.store(false, Ordering::Relaxed);
        tracing::warn!(peer = peer.id, error = %broken, "connection to peer broke; reconnecting");
        let _ = commands.try_send(Command::Peer(PeerEvent::Unreachable(peer.id)));
    }
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

/// Why a connection attempt failed.
struct ConnectError {
    message: String,
    /// Every address refused the connection: nothing listens there.
    refused: bool,
}

/// Resolves the peer's name now, connects, and says Hello.
async fn connect(peer: &PeerAddress, hello: &Hello) -> Result<TcpStream, ConnectError> {
    let failed = |message: String| ConnectError {
        message,
        refused: false,
    };
    let attempt = async {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((peer.host.as_str(), peer.port))
            .await
            .map_err(|e| failed(format!("cannot resolve {}: {e}", peer.host)))?
            .collect();
        let mut last = failed(format!("{} resolves to no address", peer.host));
        for address in addresses {
            match TcpStream::connect(address).await {
                Ok(mut stream) => {
                    let _ = stream.set_nodelay(true);
                    let mut out = Vec::new();
                    wire::encode_frame(&Frame::Hello(hello.clone()), &mut out);
                    stream
                        .write_all(&out)
                        .await
                        .map_err(|e| failed(format!("sending hello to {address}: {e}")))?;
                    return Ok(stream);
                }
                Err(e) => {
                    last = ConnectError {
                        message: format!("connecting to {address}: {e}"),
                        refused: e.kind() == std::io::ErrorKind::ConnectionRefused,
                    };
                }
            }
        }
        Err(last)
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, attempt).await {
        Ok(result) => result,
        Err(_) => Err(failed(format!(
            "connecting to {}:{} timed out",
            peer.host, peer.port
        ))),
    }
}

async fn accept_loop(
    listener: TcpListener,
    ensemble: String,
    my_id: u64,
    members: Arc<RwLock<Vec<u64>>>,
    commands: mpsc::Sender<Command>,
) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a peer connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (ensemble, members, commands) = (ensemble.clone(), members.clone(), commands.clone());
        tokio::spawn(async move {
            if let Err(e) = receive(stream, &ensemble, my_id, members, &commands).await {
                tracing::info!(%remote, error = %e, "peer connection closed");
            }
        });
    }
}

/// Reads one peer connection: the Hello, then frames for the processor.
async fn receive(
    mut stream: TcpStream,
    ensemble: &str,
    my_id: u64,
    members: Arc<RwLock<Vec<u64>>>,
    commands: &mpsc::Sender<Command>,
) -> Result<(), String> {
    let is_member = |id: u64| members.read().is_ok_and(|m| m.contains(&id));
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_frame(&mut stream))
        .await
        .map_err(|_| "no hello in time".to_owned())??;
    let Frame::Hello(hello) = first else {
        return Err("the first frame is not a hello".into());
    };
    let refusal = if hello.ensemble != ensemble {
        Some(format!(
            "this is ensemble {ensemble:?}, not {:?}",
            hello.ensemble
        ))
    } else if hello.to != my_id {
        Some(format!("this is server {my_id}, not {}", hello.to))
    } else if !is_member(hello.from) {
        Some(format!(
            "server {} is not a member of this ensemble",
            hello.from
        ))
    } else {
        None
    };
    if let Some(reason) = refusal {
        let mut out = Vec::new();
        wire::encode_frame(&Frame::Refused(reason.clone()), &mut out);
        let _ = stream.write_all(&out).await;
        return Err(format!("refused: {reason}"));
    }
    let from = hello.from;
    loop {
        let frame = read_frame(&mut stream).await?;
        if !is_member(from) {
            return Err(format!("server {from} is no longer a member"));
        }
        let event = match frame {
            Frame::Raft(m) => {
                if m.from != from || m.to != my_id {
                    return Err(format!(
                        "server {from} sent a message from {} to {}",
                        m.from, m.to
                    ));
                }
                PeerEvent::Raft(m)
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

async fn read_frame(stream: &mut TcpStream) -> Result<Frame, String> {
    let mut header = [0u8; 4];
    stream
        .read_exact(&mut header)
        .await
        .map_err(|e| format!("reading: {e}"))?;
    let len = wire::frame_len(header, wire::DEFAULT_MAX_FRAME).map_err(|e| e.to_string())?;
    let mut payload = vec![0u8; len];
    stream
        .read_exact(&mut payload)
        .await
        .map_err(|e| format!("reading: {e}"))?;
    wire::decode_frame(&payload).map_err(|e| e.to_string())
}

//! The network between the members: a fault-injecting TCP proxy that
//! knows who talks to whom.
//!
//! Every member's zoo.cfg names server N as `[::1]:<quorum port N>`. The
//! server itself listens on `0.0.0.0:<port>` (IPv4 only: its zoo.cfg says
//! `quorumListenOnAllIPs=true`, which binds the quorum port on every IPv4
//! interface), so the same port on the IPv6 loopback is free,
//! and this proxy listens there: every peer connection of the ensemble
//! passes through it, and nothing else (clients, four-letter words and the
//! admin API go to 127.0.0.1 directly). A peer connection starts with the
//! sender's `Hello` naming both server ids (`consensus::wire`); the proxy
//! reads it to learn the direction (from, to), then connects to
//! `127.0.0.1:<port>` and forwards bytes both ways.
//!
//! Blocking a direction holds its bytes: the proxy stops reading, so the
//! sender's socket buffer fills and its writes stall, and nothing is
//! closed — nobody sees a refused or reset connection, only silence, as in
//! a real partition. Healing lets the held bytes through. A connection
//! opened during a partition gets its Hello read (to name the link) and
//! then waits, unforwarded, until the link heals. Directions are blocked
//! one by one, so one-way partitions are just a subset of the links. The
//! bytes a connection carries back to the side that opened it (a
//! discovery answer) belong to the opposite direction.
//!
//! While a member is down (killed, or between a kill and its restart) its
//! listener here is closed too, so its peers' connections are refused as
//! they would be by the dead server itself: Conclave notices a crashed
//! leader sooner that way (`docs/architecture.md`, "Failure detection").

use std::collections::HashSet;
use std::io::{Read as _, Write as _};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use consensus::wire::{self, Frame};

/// A direction between two servers, by server id.
pub type Link = (u64, u64);

#[derive(Debug, Default)]
struct Shared {
    blocked: Mutex<HashSet<Link>>,
    stop: AtomicBool,
    connections: AtomicU64,
}

impl Shared {
    fn is_blocked(&self, link: Link) -> bool {
        self.blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&link)
    }
}

/// One member as the proxy sees it.
#[derive(Debug)]
struct Target {
    id: u64,
    port: u16,
    down: Arc<AtomicBool>,
}

#[derive(Debug)]
pub struct Proxy {
    shared: Arc<Shared>,
    targets: Vec<Target>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// Whether this machine can listen on the IPv6 loopback.
pub fn ipv6_loopback_unavailable() -> Option<String> {
    match TcpListener::bind((Ipv6Addr::LOCALHOST, 0)) {
        Ok(_) => None,
        Err(e) => Some(format!("cannot listen on [::1]: {e}")),
    }
}

impl Proxy {
    /// Listens on `[::1]:port` for each `(server id, quorum port)`.
    pub fn start(members: &[(u64, u16)]) -> std::io::Result<Proxy> {
        let shared = Arc::new(Shared::default());
        let mut targets = Vec::new();
        for &(id, port) in members {
            let listener = bind(port)?;
            let down = Arc::new(AtomicBool::new(false));
            let (s, d) = (shared.clone(), down.clone());
            std::thread::Builder::new()
                .name(format!("proxy-{id}"))
                .spawn(move || accept_loop(Some(listener), id, port, d, s))?;
            targets.push(Target { id, port, down });
        }
        Ok(Proxy { shared, targets })
    }

    /// The address servers are told to reach member `id` at.
    pub fn address(&self, id: u64) -> String {
        let port = self.target(id).port;
        format!("[::1]:{port}")
    }

    fn target(&self, id: u64) -> &Target {
        self.targets
            .iter()
            .find(|t| t.id == id)
            .expect("a member of the ensemble")
    }

    /// Member `id` is down (its listener here closes) or up again.
    pub fn set_down(&self, id: u64, down: bool) {
        self.target(id).down.store(down, Ordering::Relaxed);
    }

    /// Holds everything sent along these links.
    pub fn block(&self, links: &[Link]) {
        let mut blocked = self
            .shared
            .blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        blocked.extend(links.iter().copied());
    }

    /// Blocks exactly these links (the union of the partitions in force)
    /// and lets every other through.
    pub fn block_only(&self, links: impl IntoIterator<Item = Link>) {
        let mut blocked = self
            .shared
            .blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *blocked = links.into_iter().collect();
    }

    /// Lets everything through.
    pub fn heal(&self) {
        self.shared
            .blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Peer connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }
}

fn bind(port: u16) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port)))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn accept_loop(
    mut listener: Option<TcpListener>,
    id: u64,
    port: u16,
    down: Arc<AtomicBool>,
    shared: Arc<Shared>,
) {
    while !shared.stop.load(Ordering::Relaxed) {
        if down.load(Ordering::Relaxed) {
            listener = None;
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let Some(open) = &listener else {
            // Up again: listen again (retried until the port is free).
            listener = bind(port).ok();
            if listener.is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            continue;
        };
        match open.accept() {
            Ok((stream, _)) => {
                shared.connections.fetch_add(1, Ordering::Relaxed);
                let shared = shared.clone();
                let _ = std::thread::Builder::new()
                    .name(format!("proxy-{id}-conn"))
                    .spawn(move || {
                        let _ = forward(stream, id, port, &shared);
                    });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Reads the Hello, waits while its link is blocked, connects to the
/// member and forwards both ways.
fn forward(client: TcpStream, to: u64, port: u16, shared: &Arc<Shared>) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut header = [0u8; 4];
    (&client).read_exact(&mut header)?;
    let len = wire::frame_len(header, 64 << 10).map_err(std::io::Error::other)?;
    let mut payload = vec![0u8; len];
    (&client).read_exact(&mut payload)?;
    let Ok(Frame::Hello(hello)) = wire::decode_frame(&payload) else {
        return Err(std::io::Error::other("the first frame is not a Hello"));
    };
    let link = (hello.from, to);
    while shared.is_blocked(link) {
        if shared.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let server = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )?;
    server.set_nodelay(true)?;
    client.set_nodelay(true)?;
    (&server).write_all(&header)?;
    (&server).write_all(&payload)?;
    let (c2, s2) = (client.try_clone()?, server.try_clone()?);
    let back = (to, hello.from);
    let shared2 = shared.clone();
    let reverse = std::thread::Builder::new()
        .name(format!("proxy-{}-{}", back.0, back.1))
        .spawn(move || pump(s2, c2, back, &shared2))?;
    pump(client, server, link, shared);
    let _ = reverse.join();
    Ok(())
}

/// Copies `from` to `to` while the link is open; holds while it is
/// blocked. Ends when either side closes.
fn pump(mut from: TcpStream, mut to: TcpStream, link: Link, shared: &Shared) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(20)));
    let mut buf = vec![0u8; 64 * 1024];
    while !shared.stop.load(Ordering::Relaxed) {
        if shared.is_blocked(link) {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}

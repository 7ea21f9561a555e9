//! A fault-injecting TCP proxy between the members of a test ensemble: for
//! every ordered pair (from, to) a listener that forwards `from`'s peer
//! connection to `to`'s quorum port. Each member's zoo.cfg names the others
//! by their proxy ports (`ensemble_support`), so every byte between two
//! servers passes here.
//!
//! Blocking a direction holds its bytes (the proxy stops reading, so the
//! sender's socket buffer fills and its writes stall) without closing
//! anything, as a network partition does: nobody sees a refused connection,
//! only silence. Unblocking lets the held bytes through. Conclave's peer
//! connections carry one direction each, so blocking (a, b) and not (b, a)
//! is an asymmetric partition.

use std::collections::{HashMap, HashSet};
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Blocked = Arc<Mutex<HashSet<(usize, usize)>>>;

pub struct Links {
    ports: HashMap<(usize, usize), u16>,
    blocked: Blocked,
    stop: Arc<AtomicBool>,
}

impl Drop for Links {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Links {
    /// Proxies for `n` members whose quorum ports are `targets`.
    pub fn start(targets: &[u16]) -> Links {
        let blocked: Blocked = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut ports = HashMap::new();
        for from in 0..targets.len() {
            for (to, &target) in targets.iter().enumerate() {
                if from == to {
                    continue;
                }
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                listener.set_nonblocking(true).unwrap();
                ports.insert((from, to), listener.local_addr().unwrap().port());
                let (blocked, stop) = (blocked.clone(), stop.clone());
                std::thread::spawn(move || accept(listener, target, (from, to), blocked, stop));
            }
        }
        Links {
            ports,
            blocked,
            stop,
        }
    }

    /// The port `from` uses to reach `to`.
    pub fn port(&self, from: usize, to: usize) -> u16 {
        self.ports[&(from, to)]
    }

    /// Holds everything `from` sends to `to`.
    pub fn block(&self, from: usize, to: usize) {
        self.blocked.lock().unwrap().insert((from, to));
    }

    /// Cuts member `i` off from every other, both ways.
    pub fn isolate(&self, i: usize, n: usize) {
        for other in (0..n).filter(|&o| o != i) {
            self.block(i, other);
            self.block(other, i);
        }
    }

    pub fn heal(&self) {
        self.blocked.lock().unwrap().clear();
    }
}

fn accept(
    listener: TcpListener,
    target: u16,
    link: (usize, usize),
    blocked: Blocked,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((client, _)) => {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    // Nothing listens there (the member is down): the
                    // client sees its connection close.
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (b1, b2) = (blocked.clone(), blocked.clone());
                let (st1, st2) = (stop.clone(), stop.clone());
                let back = (link.1, link.0);
                std::thread::spawn(move || pump(client, server, link, b1, st1));
                std::thread::spawn(move || pump(s2, c2, back, b2, st2));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return,
        }
    }
}

/// Copies `from` to `to` while the link is open; holds while it is blocked.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    link: (usize, usize),
    blocked: Blocked,
    stop: Arc<AtomicBool>,
) {
    from.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = [0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        if blocked.lock().unwrap().contains(&link) {
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

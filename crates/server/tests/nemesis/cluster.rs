//! The ensemble under test: real `conclave-server` processes on loopback,
//! each with its data directory on its own LazyFS mount (made in this
//! process with the `lazyfs` library), peer traffic through the
//! [`Proxy`], and the operations the nemesis needs: SIGKILL, SIGSTOP and
//! SIGCONT, restart, power cut, wipe.
//!
//! Layout under the run's directory, per member N:
//! `member-N/zoo.cfg`, `member-N/server-K.log` (one log per start, kept
//! off the mount so a power cut never touches it), `member-N/disk` (the
//! LazyFS backing directory: what a real disk would hold) and
//! `member-N/mnt` (the mount; `dataDir` is `mnt/data`, the store
//! `mnt/data/store`).
//!
//! Every member gets the same `server.N` lines, and fixed ports for its
//! whole life (client, quorum, admin): restarts, power cuts and wipes
//! change nothing in zoo.cfg, as with a real host. Dropping the cluster
//! kills every server (SIGKILL, paused ones too) and unmounts every mount.

use std::io::{Read as _, Write as _};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::proxy::Proxy;

/// Settings every member gets besides its ports and `server.N` lines.
/// `snapCount=500` keeps 1500 log entries (`autopurge.snapRetainCount`
/// 3): a member down for a few seconds under load is caught up by
/// snapshot, so that path runs under faults too.
const COMMON_CONFIG: &[&str] = &[
    "tickTime=200",
    "initLimit=10",
    "syncLimit=5",
    "maxClientCnxns=0",
    "snapCount=500",
    "admin.enableServer=true",
    "admin.serverAddress=127.0.0.1",
    // The server.N lines name the proxy on [::1]; each server listens on
    // 0.0.0.0 (IPv4 only), where the proxy forwards to.
    "quorumListenOnAllIPs=true",
];

const SETPRIV: &str = "/usr/bin/setpriv";

#[derive(Debug)]
pub struct Member {
    pub id: u64,
    pub dir: PathBuf,
    pub client_port: u16,
    pub admin_port: u16,
    mount_point: PathBuf,
    mounted: Option<lazyfs::Mounted>,
    controller: lazyfs::Controller,
    child: Option<Child>,
    paused: bool,
    starts: u32,
}

#[derive(Debug)]
pub struct Cluster {
    pub members: Vec<Member>,
    pub proxy: Proxy,
}

/// Why the cluster could not be set up on this machine (no FUSE, no IPv6
/// loopback): the test is skipped unless told to require it.
#[derive(Debug)]
pub struct Unavailable(pub String);

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A port nothing listens on now (on 0.0.0.0, 127.0.0.1 and [::1]), never
/// handed out before by this process, outside the kernel's ephemeral range
/// (32768 and up) and outside the range `tests/integration/support.rs`
/// takes its ports from (10000 to 32199): a killed server's ports are free
/// until it restarts, and another test process must not take them
/// meanwhile. Each process takes its ports from its own block of 2000 to
/// 9999, chosen by its pid.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    const BLOCK: u32 = 100;
    let base = 2_000 + (std::process::id() % 80) * BLOCK;
    let bindable = |port: u16| {
        TcpListener::bind(("0.0.0.0", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind((Ipv6Addr::LOCALHOST, port)).is_ok()
    };
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = if n < BLOCK {
            u16::try_from(base + n).unwrap_or(0)
        } else {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        if port != 0 && !given.contains(&port) && bindable(port) {
            given.push(port);
            return port;
        }
    }
}

/// Sends a four-letter word and returns the whole answer.
pub fn four_letter(addr: SocketAddr, cmd: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(cmd.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Detaches LazyFS mounts of earlier runs of this test whose process died
/// (SIGKILL, a crash): they answer `ENOTCONN` and would stay forever.
pub fn detach_stale_mounts() {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    for line in mounts.lines() {
        let Some(point) = line.split(' ').nth(4) else {
            continue;
        };
        if point.contains("conclave-nemesis-") {
            let _ = lazyfs::recover_stale_mount(Path::new(point));
        }
    }
}

impl Cluster {
    /// Mounts a LazyFS per member under `root`, writes the configuration
    /// and `myid`, starts every server, and waits until one leads and all
    /// serve.
    pub fn start(n: usize, root: &Path) -> Result<Cluster, Unavailable> {
        if !Path::new("/dev/fuse").exists() {
            return Err(Unavailable("/dev/fuse is absent".into()));
        }
        if let Some(why) = crate::proxy::ipv6_loopback_unavailable() {
            return Err(Unavailable(why));
        }
        detach_stale_mounts();
        let ids: Vec<u64> = (1..=n as u64).collect();
        let quorum: Vec<u16> = ids.iter().map(|_| free_port()).collect();
        let proxy = Proxy::start(
            &ids.iter()
                .copied()
                .zip(quorum.iter().copied())
                .collect::<Vec<_>>(),
        )
        .map_err(|e| Unavailable(format!("cannot start the proxy on [::1]: {e}")))?;
        let server_lines: Vec<String> = ids
            .iter()
            .map(|&id| format!("server.{id}={}:{}", proxy.address(id), free_port()))
            .collect();
        let mut members = Vec::new();
        for &id in &ids {
            let dir = root.join(format!("member-{id}"));
            let disk = dir.join("disk");
            let mount_point = dir.join("mnt");
            std::fs::create_dir_all(disk.join("data")).unwrap();
            std::fs::create_dir_all(&mount_point).unwrap();
            // Written on the "disk" before mounting: durable, and kept by
            // every power cut and wipe.
            std::fs::write(disk.join("data").join("myid"), format!("{id}\n")).unwrap();
            let mounted = lazyfs::mount(&lazyfs::MountConfig::new(&disk, &mount_point))
                .map_err(|e| Unavailable(format!("cannot mount LazyFS: {e}")))?;
            let controller = mounted.controller();
            let member = Member {
                id,
                dir,
                client_port: free_port(),
                admin_port: free_port(),
                mount_point,
                mounted: Some(mounted),
                controller,
                child: None,
                paused: false,
                starts: 0,
            };
            let mut config: Vec<String> = COMMON_CONFIG.iter().map(|s| (*s).to_owned()).collect();
            config.push(format!("dataDir={}", member.data_dir().display()));
            config.push(format!("clientPort={}", member.client_port));
            config.push("clientPortAddress=127.0.0.1".to_owned());
            config.push(format!("admin.serverPort={}", member.admin_port));
            config.extend(server_lines.iter().cloned());
            std::fs::write(member.dir.join("zoo.cfg"), config.join("\n") + "\n").unwrap();
            members.push(member);
        }
        let mut cluster = Cluster { members, proxy };
        for i in 0..n {
            cluster.spawn(i);
        }
        if let Err(e) = cluster.await_healthy(Duration::from_secs(60)) {
            panic!("the ensemble did not form: {e}\n{}", cluster.log_tails(30));
        }
        Ok(cluster)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn client_addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.members[i].client_port))
    }

    pub fn client_addrs(&self) -> Vec<SocketAddr> {
        (0..self.len()).map(|i| self.client_addr(i)).collect()
    }

    /// Starts member `i`'s server on its data directory; does not wait.
    pub fn spawn(&mut self, i: usize) {
        let m = &mut self.members[i];
        assert!(m.child.is_none(), "server {} is running", m.id);
        m.starts += 1;
        let log_path = m.dir.join(format!("server-{}.log", m.starts));
        let log = std::fs::File::create(&log_path).unwrap();
        self.proxy.set_down(m.id, false);
        let server = env!("CARGO_BIN_EXE_conclave-server");
        // Through `setpriv --pdeathsig KILL` (util-linux) where it exists:
        // it execs the server (same pid) with the parent-death signal set,
        // so servers die with this test's thread even if the test process
        // is killed before its Drop runs.
        let mut command = if Path::new(SETPRIV).exists() {
            let mut c = Command::new(SETPRIV);
            c.args(["--pdeathsig", "KILL", "--", server]);
            c
        } else {
            Command::new(server)
        };
        let child = command
            .arg("--config")
            .arg(m.dir.join("zoo.cfg"))
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start conclave-server");
        m.child = Some(child);
        m.paused = false;
    }

    pub fn running(&self, i: usize) -> bool {
        self.members[i].child.is_some()
    }

    /// SIGKILL, and waits until the process is gone (paused or not).
    pub fn kill9(&mut self, i: usize) {
        let m = &mut self.members[i];
        if let Some(mut child) = m.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        m.paused = false;
        self.proxy.set_down(m.id, true);
    }

    /// SIGSTOP (true) or SIGCONT (false): a frozen process keeps its
    /// sockets, so to the others it is silent, not gone.
    pub fn pause(&mut self, i: usize, paused: bool) {
        let m = &mut self.members[i];
        let Some(child) = &m.child else { return };
        let signal = if paused { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {}", child.id());
        m.paused = paused;
    }

    /// A server that exited without being killed: its exit status, once.
    pub fn exited_by_itself(&mut self, i: usize) -> Option<ExitStatus> {
        let m = &mut self.members[i];
        let status = m.child.as_mut()?.try_wait().ok()??;
        m.child = None;
        m.paused = false;
        self.proxy.set_down(m.id, true);
        Some(status)
    }

    /// Drops every write member `i`'s disk had not synced (the server must
    /// be dead, as after a power failure): (files, bytes) dropped.
    pub fn power_cut(&mut self, i: usize) -> (u64, u64) {
        assert!(!self.running(i), "power cut of a running server");
        let report = self.members[i].controller.power_cut();
        (report.files, report.bytes)
    }

    /// Empties member `i`'s data directory but `myid` (the server must be
    /// dead): a member that lost its disk and came back with its id.
    /// Returns how many entries were removed.
    pub fn wipe(&mut self, i: usize) -> usize {
        assert!(!self.running(i), "wipe of a running server");
        let data = self.members[i].data_dir();
        let mut removed = 0;
        for entry in std::fs::read_dir(&data).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == "myid") {
                continue;
            }
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
            removed += 1;
        }
        removed
    }

    /// `Mode:` from `srvr`, or None while the server does not serve (or is
    /// down or paused: not asked then).
    pub fn mode(&self, i: usize) -> Option<String> {
        let m = &self.members[i];
        if m.child.is_none() || m.paused {
            return None;
        }
        let out = four_letter(self.client_addr(i), "srvr").ok()?;
        out.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(str::to_owned)
    }

    pub fn serving(&self, i: usize) -> bool {
        self.mode(i).is_some()
    }

    /// The member that says it leads, if exactly one does.
    pub fn leader(&self) -> Option<usize> {
        let leaders: Vec<usize> = (0..self.len())
            .filter(|&i| self.mode(i).as_deref() == Some("leader"))
            .collect();
        match leaders[..] {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Waits until every member runs and serves and exactly one leads;
    /// returns the leader, or what the members said at the deadline.
    pub fn await_healthy(&self, limit: Duration) -> Result<usize, String> {
        let deadline = Instant::now() + limit;
        loop {
            let modes: Vec<Option<String>> = (0..self.len()).map(|i| self.mode(i)).collect();
            let leaders: Vec<usize> = (0..modes.len())
                .filter(|&i| modes[i].as_deref() == Some("leader"))
                .collect();
            if leaders.len() == 1 && modes.iter().all(Option::is_some) {
                return Ok(leaders[0]);
            }
            if Instant::now() > deadline {
                let said: Vec<String> = modes
                    .iter()
                    .zip(&self.members)
                    .map(|(mode, m)| {
                        let state = if m.child.is_none() {
                            "not running".to_owned()
                        } else if m.paused {
                            "paused".to_owned()
                        } else {
                            mode.clone().unwrap_or_else(|| "not serving".to_owned())
                        };
                        format!("server {}: {state}", m.id)
                    })
                    .collect();
                return Err(format!(
                    "no single leader with every member serving after {limit:?}: {}",
                    said.join(", ")
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET /ensemble` of member `i` (empty if it does not answer).
    pub fn ensemble_status(&self, i: usize) -> String {
        let Ok(mut s) = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], self.members[i].admin_port)),
            Duration::from_secs(1),
        ) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ =
            s.write_all(b"GET /ensemble HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or(out)
    }

    /// Every server's log files, in start order.
    pub fn log_paths(&self) -> Vec<PathBuf> {
        self.members
            .iter()
            .flat_map(|m| (1..=m.starts).map(|k| m.dir.join(format!("server-{k}.log"))))
            .collect()
    }

    /// Member `i`'s log of its latest start.
    pub fn current_log(&self, i: usize) -> PathBuf {
        let m = &self.members[i];
        m.dir.join(format!("server-{}.log", m.starts))
    }

    /// The last `lines` lines of each member's current log.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for m in &self.members {
            let path = m.dir.join(format!("server-{}.log", m.starts));
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(lines).collect();
            out.push_str(&format!("---- server {} ({})\n", m.id, path.display()));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Kills every server and unmounts every mount; what went wrong.
    pub fn shutdown(&mut self) -> Vec<String> {
        for i in 0..self.len() {
            self.kill9(i);
        }
        let mut errors = Vec::new();
        for m in &mut self.members {
            if let Some(mounted) = m.mounted.take()
                && let Err(e) = mounted.unmount()
            {
                errors.push(format!("unmounting {}: {e}", m.mount_point.display()));
            }
        }
        self.proxy.heal();
        errors
    }
}

impl Member {
    /// `dataDir`, on the mount.
    pub fn data_dir(&self) -> PathBuf {
        self.mount_point.join("data")
    }
}

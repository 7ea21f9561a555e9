//! Starting servers for tests: Conclave from the binary cargo built, and
//! Apache ZooKeeper 3.8 from Debian's `zookeeper` package. Both get a fresh
//! data directory, free loopback ports and the same zoo.cfg; both are
//! killed when dropped.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a started server is not serving.
enum NotServing {
    Exited(std::process::ExitStatus),
    TimedOut,
}

/// Polls `srvr` every `poll` until the server answers it (ZooKeeper's
/// readiness check), the process exits, or a minute passes.
fn await_srvr(addr: SocketAddr, child: &mut Child, poll: Duration) -> Result<(), NotServing> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(out) = four_letter(addr, "srvr")
            && out.contains("Mode:")
        {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(NotServing::Exited(status));
        }
        std::thread::sleep(poll);
    }
    Err(NotServing::TimedOut)
}

/// Which implementation a server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Conclave,
    ZooKeeper,
}

pub struct TestServer {
    pub kind: Kind,
    pub addr: SocketAddr,
    child: Child,
    dir: PathBuf,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nothing listens on now, never handed out before by this process,
/// and outside the kernel's ephemeral range (32768 and up here): an
/// ephemeral port may be taken at any moment by some process's outbound
/// connection, and a server that then fails to bind its quorum port never
/// joins. Each test process takes its ports from its own block of 200,
/// chosen by its pid (nextest runs tests in separate processes); when the
/// block runs out, ephemeral ports are used.
/// This process's block of 200 ports (of 110): claimed with a lock file,
/// so that test processes running at the same time (nextest runs each test
/// in its own) never pick from the same block; a process id picks where
/// the search starts. The lock is held until the process ends.
fn port_block() -> u32 {
    static CLAIMED: std::sync::OnceLock<(u32, Option<std::fs::File>)> = std::sync::OnceLock::new();
    let (block, _lock) = CLAIMED.get_or_init(|| {
        let start = std::process::id() % 110;
        for i in 0..110 {
            let block = (start + i) % 110;
            let path = std::env::temp_dir().join(format!("conclave-test-ports-{block}.lock"));
            let Ok(file) = std::fs::File::create(&path) else {
                continue;
            };
            if file.try_lock().is_ok() {
                return (block, Some(file));
            }
        }
        (start, None)
    });
    *block
}

pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    const BLOCK: u32 = 200;
    let base = 10_000 + port_block() * BLOCK;
    let bindable = |port: u16| {
        TcpListener::bind(("0.0.0.0", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
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

fn temp_dir(kind: Kind) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("conclave-test-{}-{kind:?}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    dir
}

/// Sends a four-letter word and returns the whole answer.
pub fn four_letter(addr: SocketAddr, cmd: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(cmd.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

impl TestServer {
    /// Starts a server with the given extra zoo.cfg lines and waits until it
    /// answers `srvr`.
    pub fn start(kind: Kind, extra_cfg: &[&str]) -> TestServer {
        let dir = temp_dir(kind);
        let port = free_port();
        let admin_port = free_port();
        let mut cfg = format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.serverPort={admin_port}\nadmin.serverAddress=127.0.0.1\n",
            dir.join("data").display()
        );
        for line in extra_cfg {
            cfg.push_str(line);
            cfg.push('\n');
        }
        let cfg_path = dir.join("zoo.cfg");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = match kind {
            Kind::Conclave => Command::new(env!("CARGO_BIN_EXE_conclave-server"))
                .arg("--config")
                .arg(&cfg_path)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start conclave-server"),
            Kind::ZooKeeper => zookeeper_command(&dir, &cfg_path)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start Apache ZooKeeper (install Debian's zookeeper package and a JRE)"),
        };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut server = TestServer {
            kind,
            addr,
            child,
            dir,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        match await_srvr(self.addr, &mut self.child, Duration::from_millis(100)) {
            Ok(()) => {}
            Err(NotServing::Exited(status)) => {
                panic!("{:?} exited with {status}; log:\n{}", self.kind, self.log())
            }
            Err(NotServing::TimedOut) => {
                panic!("{:?} did not start; log:\n{}", self.kind, self.log())
            }
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }
}

/// `java ... ZooKeeperServerMain zoo.cfg` with Debian's jars. The Netty
/// jars that Debian's zookeeper.jar manifest leaves out are added, for
/// `serverCnxnFactory=...NettyServerCnxnFactory` (the secure client port).
fn zookeeper_command(dir: &Path, cfg: &Path) -> Command {
    let mut cmd = Command::new("java");
    cmd.arg("-cp")
        .arg(
            "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:\
             /usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar:\
             /usr/share/java/netty-transport-native-unix-common.jar",
        )
        .arg(format!("-Dzookeeper.log.dir={}", dir.display()))
        .arg("-Dzookeeper.root.logger=WARN,CONSOLE")
        .arg("-Xmx256m")
        .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
        .arg(cfg)
        .stdin(Stdio::null());
    cmd
}

/// Starts one server of each kind with the same configuration.
pub fn pair(extra_cfg: &[&str]) -> (TestServer, TestServer) {
    (
        TestServer::start(Kind::ZooKeeper, extra_cfg),
        TestServer::start(Kind::Conclave, extra_cfg),
    )
}

// ------------------------------------------------ durable data directories

/// A data directory that outlives server processes, for restart and crash
/// tests: each `start` writes a zoo.cfg with fresh ports and runs
/// `conclave-server` on the same store (`data/store`). Removed when dropped,
/// unless the test is panicking: then it is kept and its path printed, so a
/// failure can be inspected (`conclave-server inspect --config <dir>/zoo.cfg`).
pub struct DataDir {
    root: PathBuf,
    starts: std::cell::Cell<u32>,
}

/// A `conclave-server` process on a [`DataDir`]; killed (SIGKILL) when
/// dropped.
pub struct Conclave {
    pub addr: SocketAddr,
    child: Child,
    log: PathBuf,
    exited: Option<std::process::ExitStatus>,
}

/// A server run that was expected to exit by itself.
#[derive(Debug)]
pub struct Exited {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Every file under a directory with its contents, to prove that a refused
/// start changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files(pub std::collections::BTreeMap<PathBuf, Vec<u8>>);

impl Drop for DataDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "keeping data directory {} for inspection",
                self.root.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

impl DataDir {
    pub fn new(label: &str) -> DataDir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!(
            "conclave-durable-{}-{label}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("data")).unwrap();
        DataDir {
            root,
            starts: std::cell::Cell::new(0),
        }
    }

    /// `dataDir` (and `dataLogDir`).
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The RocksDB store the server keeps under `dataLogDir`.
    pub fn store_dir(&self) -> PathBuf {
        self.data_dir().join("store")
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join("zoo.cfg")
    }

    /// Writes zoo.cfg with fresh loopback ports and the extra lines.
    fn write_config(&self, extra_cfg: &[&str]) -> SocketAddr {
        let port = free_port();
        let mut cfg = format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n",
            self.data_dir().display()
        );
        for line in extra_cfg {
            cfg.push_str(line);
            cfg.push('\n');
        }
        std::fs::write(self.config_path(), cfg).unwrap();
        format!("127.0.0.1:{port}").parse().unwrap()
    }

    fn next_log(&self, what: &str) -> PathBuf {
        let n = self.starts.get() + 1;
        self.starts.set(n);
        self.root.join(format!("{what}-{n}.log"))
    }

    /// Starts the server without waiting for it to serve.
    pub fn spawn(&self, extra_cfg: &[&str]) -> Conclave {
        self.spawn_wrapped(extra_cfg, &[])
    }

    /// [`DataDir::spawn`] through a wrapper command (`wrapper` followed by
    /// the server's command line), e.g. `unshare`.
    pub fn spawn_wrapped(&self, extra_cfg: &[&str], wrapper: &[String]) -> Conclave {
        let addr = self.write_config(extra_cfg);
        let log = self.next_log("server");
        let out = std::fs::File::create(&log).unwrap();
        let bin = env!("CARGO_BIN_EXE_conclave-server");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let child = command
            .arg("--config")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start conclave-server");
        Conclave {
            addr,
            child,
            log,
            exited: None,
        }
    }

    /// Starts the server and waits until it answers `srvr`.
    pub fn start(&self, extra_cfg: &[&str]) -> Conclave {
        let mut server = self.spawn(extra_cfg);
        server.wait_ready();
        server
    }

    /// Runs the server expecting it to exit by itself within `limit`
    /// (killed and reported otherwise); stdout and stderr apart.
    pub fn run_to_exit(&self, extra_cfg: &[&str], limit: Duration) -> Exited {
        self.write_config(extra_cfg);
        self.run_command_to_exit(&["--config"], limit)
    }

    /// `conclave-server inspect --config zoo.cfg [--log]` on this directory
    /// (with the zoo.cfg of the last start).
    pub fn inspect(&self, log: bool) -> Exited {
        let mut args = vec!["inspect", "--config"];
        if log {
            args.insert(1, "--log");
        }
        self.run_command_to_exit(&args, Duration::from_secs(60))
    }

    /// `conclave-server recover-alone --config zoo.cfg` on this directory
    /// (with the zoo.cfg of the last start).
    pub fn recover_alone(&self) -> Exited {
        self.run_command_to_exit(&["recover-alone", "--config"], Duration::from_secs(60))
    }

    fn run_command_to_exit(&self, args: &[&str], limit: Duration) -> Exited {
        let stdout_path = self.next_log("stdout");
        let stderr_path = stdout_path.with_extension("stderr");
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_conclave-server"))
            .args(args)
            .arg(self.config_path())
            // What an operator sees: no backtrace in the error report.
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .expect("start conclave-server");
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "conclave-server {args:?} did not exit within {limit:?}; stdout:\n{}\nstderr:\n{}",
                    std::fs::read_to_string(&stdout_path).unwrap_or_default(),
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Exited {
            status,
            stdout: std::fs::read_to_string(&stdout_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
            elapsed: started.elapsed(),
        }
    }

    /// Every file under the data directory, with its contents.
    pub fn files(&self) -> Files {
        fn walk(base: &Path, dir: &Path, out: &mut std::collections::BTreeMap<PathBuf, Vec<u8>>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let entry = entry.unwrap();
                let path = entry.path();
                let relative = path.strip_prefix(base).unwrap().to_owned();
                if entry.file_type().unwrap().is_dir() {
                    out.insert(relative.join(""), Vec::new());
                    walk(base, &path, out);
                } else {
                    out.insert(relative, std::fs::read(&path).unwrap());
                }
            }
        }
        let mut out = std::collections::BTreeMap::new();
        walk(&self.data_dir(), &self.data_dir(), &mut out);
        Files(out)
    }
}

impl Files {
    /// Without RocksDB's diagnostic `LOG` and `LOG.old.*` files, which every
    /// attempt to open a store rotates (even one refused for a held lock).
    pub fn without_info_logs(mut self) -> Files {
        self.0.retain(|path, _| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            name != "LOG" && !name.starts_with("LOG.old.")
        });
        self
    }

    /// What differs from `later`, one line per file; empty if nothing.
    pub fn changes(&self, later: &Files) -> Vec<String> {
        let mut out = Vec::new();
        for (path, before) in &self.0 {
            match later.0.get(path) {
                None => out.push(format!("removed {}", path.display())),
                Some(after) if after != before => out.push(format!(
                    "changed {} ({} -> {} bytes)",
                    path.display(),
                    before.len(),
                    after.len()
                )),
                Some(_) => {}
            }
        }
        for path in later.0.keys() {
            if !self.0.contains_key(path) {
                out.push(format!("added {}", path.display()));
            }
        }
        out
    }
}

impl Drop for Conclave {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Conclave {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the server answers `srvr`; panics with its log if it
    /// exits or takes longer than a minute.
    pub fn wait_ready(&mut self) {
        match await_srvr(self.addr, &mut self.child, Duration::from_millis(5)) {
            Ok(()) => {}
            Err(NotServing::Exited(status)) => {
                self.exited = Some(status);
                panic!("conclave-server exited with {status}; log:\n{}", self.log());
            }
            Err(NotServing::TimedOut) => {
                panic!("conclave-server did not start; log:\n{}", self.log())
            }
        }
    }

    /// SIGKILL, and waits until the process is gone.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        self.exited = Some(self.child.wait().unwrap());
    }

    /// SIGTERM (an orderly shutdown); returns how the process exited.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.exited = Some(status);
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "conclave-server did not stop on SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits up to `limit` for the process to exit by itself; how it
    /// exited, or `None` if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.exited = Some(status);
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Whether the tests run as root (some need mount namespaces).
pub fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

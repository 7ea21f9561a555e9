//! Starting servers for tests: Conclave from the binary cargo built, and
//! Apache ZooKeeper 3.8 from Debian's `zookeeper` package. Both get a fresh
//! data directory, free loopback ports and the same zoo.cfg; both are
//! killed when dropped.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(out) = four_letter(self.addr, "srvr")
                && out.contains("Mode:")
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{:?} exited with {status}; log:\n{}", self.kind, self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{:?} did not start; log:\n{}", self.kind, self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }
}

/// `java ... ZooKeeperServerMain zoo.cfg` with Debian's jars.
fn zookeeper_command(dir: &Path, cfg: &Path) -> Command {
    let mut cmd = Command::new("java");
    cmd.arg("-cp")
        .arg("/etc/zookeeper/conf:/usr/share/java/zookeeper.jar")
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

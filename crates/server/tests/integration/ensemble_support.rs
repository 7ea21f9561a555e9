//! Local ensembles of real `conclave-server` processes on loopback for the
//! multi-process tests: each member has its own data directory (outliving
//! its processes, so members can be killed and restarted), a zoo.cfg with
//! the `server.N` lines (the same for all, or naming the others through a
//! fault-injecting proxy, `partition_proxy`), and admin HTTP on its own
//! port; `tickTime=200` keeps elections under a second or so.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::raw_client::RawClient;
use crate::support::{Conclave, DataDir, four_letter, free_port};

pub struct Member {
    pub id: u64,
    pub dir: DataDir,
    pub process: Option<Conclave>,
}

pub struct LocalEnsemble {
    pub members: Vec<Member>,
    /// Each member's zoo.cfg lines.
    configs: Vec<Vec<String>>,
    /// Each member's admin HTTP port.
    pub admin_ports: Vec<u16>,

    /// Each server sees this file as its /etc/hosts (a private mount
    /// namespace), when set.
    hosts_file: Option<std::path::PathBuf>,
}

impl LocalEnsemble {
    /// Starts `n` servers and waits until they agree on a leader.
    pub fn start(n: usize, extra_cfg: &[&str]) -> LocalEnsemble {
        LocalEnsemble::start_with_observers(n, 0, extra_cfg)
    }

    /// Starts `voters` participants and `observers` observers (the last
    /// ids) and waits until they agree on a leader.
    pub fn start_with_observers(
        voters: usize,
        observers: usize,
        extra_cfg: &[&str],
    ) -> LocalEnsemble {
        let ensemble = LocalEnsemble::spawn_all(
            voters + observers,
            observers,
            extra_cfg,
            |_| "127.0.0.1".to_owned(),
            None,
        );
        ensemble.await_leader(Duration::from_secs(60));
        ensemble
    }

    /// Starts `n` servers (the last `observers` of them observers) that
    /// know each other as `host(id)`, each seeing `hosts_file` as its
    /// /etc/hosts if given; does not wait for them.
    pub fn spawn_all(
        n: usize,
        observers: usize,
        extra_cfg: &[&str],
        host: impl Fn(u64) -> String,
        hosts_file: Option<std::path::PathBuf>,
    ) -> LocalEnsemble {
        let quorum: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let configs = (0..n)
            .map(|_| config_for(n, observers, extra_cfg, |i| (host(i as u64 + 1), quorum[i])))
            .collect();
        LocalEnsemble::spawn_configs(n, configs, hosts_file)
    }

    /// Starts `n` servers known to each other as `127.0.0.N` (N their id,
    /// so each has an address of its own for its certificate to name),
    /// each with the zoo.cfg lines `member_cfg(id)` too; does not wait.
    pub fn spawn_distinct_hosts(
        n: usize,
        member_cfg: impl Fn(u64) -> Vec<String>,
    ) -> LocalEnsemble {
        let quorum: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let configs = (0..n)
            .map(|me| {
                let mut config =
                    config_for(n, 0, &[], |i| (format!("127.0.0.{}", i + 1), quorum[i]));
                config.extend(member_cfg(me as u64 + 1));
                config
            })
            .collect();
        LocalEnsemble::spawn_configs(n, configs, None)
    }

    /// Member `i`'s quorum address, from its `server.N` line.
    pub fn quorum_addr(&self, i: usize) -> SocketAddr {
        let prefix = format!("server.{}=", i + 1);
        let line = self.configs[i]
            .iter()
            .find_map(|l| l.strip_prefix(&prefix))
            .expect("a server line");
        let mut parts = line.split(':');
        let host = parts.next().expect("host");
        let port = parts.next().expect("port");
        format!("{host}:{port}").parse().expect("an address")
    }

    /// Stops member `i` with SIGTERM and waits for it to exit.
    pub fn terminate(&mut self, i: usize) {
        if let Some(p) = self.members[i].process.take() {
            p.terminate();
        }
    }

    /// Starts `n` servers whose peer traffic all passes through a proxy
    /// that can partition them; waits until they agree on a leader.
    pub fn start_proxied(
        n: usize,
        extra_cfg: &[&str],
    ) -> (LocalEnsemble, crate::partition_proxy::Links) {
        let quorum: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let links = crate::partition_proxy::Links::start(&quorum);
        let configs = (0..n)
            .map(|me| {
                config_for(n, 0, extra_cfg, |i| {
                    let port = if i == me {
                        quorum[i]
                    } else {
                        links.port(me, i)
                    };
                    ("127.0.0.1".to_owned(), port)
                })
            })
            .collect();
        let ensemble = LocalEnsemble::spawn_configs(n, configs, None);
        ensemble.await_leader(Duration::from_secs(60));
        (ensemble, links)
    }

    fn spawn_configs(
        n: usize,
        mut configs: Vec<Vec<String>>,
        hosts_file: Option<std::path::PathBuf>,
    ) -> LocalEnsemble {
        let admin_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        for (config, port) in configs.iter_mut().zip(&admin_ports) {
            config.push("admin.enableServer=true".to_owned());
            config.push("admin.serverAddress=127.0.0.1".to_owned());
            config.push(format!("admin.serverPort={port}"));
        }
        let members = (1..=n as u64)
            .map(|id| {
                let dir = DataDir::new(&format!("ensemble-{id}"));
                std::fs::write(dir.data_dir().join("myid"), format!("{id}\n")).unwrap();
                Member {
                    id,
                    dir,
                    process: None,
                }
            })
            .collect();
        let mut ensemble = LocalEnsemble {
            members,
            configs,
            admin_ports,
            hosts_file,
        };
        for i in 0..n {
            ensemble.spawn(i);
        }
        ensemble
    }

    fn spawn(&mut self, i: usize) {
        let config: Vec<&str> = self.configs[i].iter().map(String::as_str).collect();
        let wrapper: Vec<String> = match &self.hosts_file {
            // A private mount namespace whose /etc/hosts is the test's file
            // (a bind mount of the file: rewriting it in place is seen).
            Some(hosts) => vec![
                "unshare".into(),
                "--mount".into(),
                "--".into(),
                "sh".into(),
                "-c".into(),
                "mount --bind \"$0\" /etc/hosts && exec \"$@\"".into(),
                hosts.display().to_string(),
            ],
            None => Vec::new(),
        };
        let process = self.members[i].dir.spawn_wrapped(&config, &wrapper);
        self.members[i].process = Some(process);
    }

    /// Starts a new server that joins the ensemble (`conclave.join=true`,
    /// an empty data directory, a zoo.cfg naming the first member's servers
    /// and itself); returns its index and its `server.N=...` line, for a
    /// reconfig to add it.
    pub fn add_member(&mut self, role: &str) -> (usize, String) {
        self.add_joiner(role, true)
    }

    /// [`LocalEnsemble::add_member`] without `conclave.join`: as ZooKeeper's
    /// reconfiguration guide starts a new server.
    pub fn add_member_as_zookeeper_documents(&mut self, role: &str) -> (usize, String) {
        self.add_joiner(role, false)
    }

    fn add_joiner(&mut self, role: &str, join: bool) -> (usize, String) {
        let id = self.members.len() as u64 + 1;
        let line = format!(
            "server.{id}=127.0.0.1:{}:{}:{role}",
            free_port(),
            free_port()
        );
        // The first member's lines: limits, server lines, the test's
        // settings (its admin port aside).
        let mut config: Vec<String> = self.configs[0]
            .iter()
            .filter(|l| !l.starts_with("admin."))
            .cloned()
            .collect();
        config.push(line.clone());
        if join {
            config.push("conclave.join=true".to_owned());
        }
        let port = free_port();
        config.push("admin.enableServer=true".to_owned());
        config.push("admin.serverAddress=127.0.0.1".to_owned());
        config.push(format!("admin.serverPort={port}"));
        let dir = DataDir::new(&format!("ensemble-{id}"));
        std::fs::write(dir.data_dir().join("myid"), format!("{id}\n")).unwrap();
        self.members.push(Member {
            id,
            dir,
            process: None,
        });
        self.configs.push(config);
        self.admin_ports.push(port);
        let i = self.members.len() - 1;
        self.spawn(i);
        (i, line)
    }

    /// Adds a zoo.cfg line for member `i`'s next start.
    pub fn add_config_line(&mut self, i: usize, line: &str) {
        self.configs[i].push(line.to_owned());
    }

    /// Runs stopped member `i` with its zoo.cfg until it exits (a start
    /// that must be refused).
    pub fn run_to_exit(&self, i: usize, limit: Duration) -> crate::support::Exited {
        assert!(self.members[i].process.is_none(), "member {i} is running");
        let config: Vec<&str> = self.configs[i].iter().map(String::as_str).collect();
        self.members[i].dir.run_to_exit(&config, limit)
    }

    /// `conclave-server recover-alone` on member `i`'s data directory.
    pub fn recover_alone(&self, i: usize) -> crate::support::Exited {
        self.members[i].dir.recover_alone()
    }

    /// An HTTP request to member `i`'s admin server: (status, body).
    pub fn admin(
        &self,
        i: usize,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.admin_ports[i])).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(150))).unwrap();
        let body = body.unwrap_or("");
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        std::io::Write::write_all(&mut s, request.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut out);
        let status = out
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// Starts a stopped member again on its data directory (a new client
    /// port) without waiting for it.
    pub fn restart(&mut self, i: usize) {
        assert!(self.members[i].process.is_none(), "member {i} is running");
        self.spawn(i);
    }

    /// SIGKILL.
    pub fn kill9(&mut self, i: usize) {
        if let Some(p) = self.members[i].process.take() {
            p.kill9();
        }
    }

    /// SIGSTOP / SIGCONT: the process is frozen, its sockets stay open, so
    /// to the others it is a server cut off from the network.
    pub fn freeze(&self, i: usize, frozen: bool) {
        let pid = self.members[i].process.as_ref().expect("running").pid();
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// `GET /ensemble` of member `i`, as JSON text.
    pub fn ensemble_status(&self, i: usize) -> String {
        // Empty while the server does not listen yet.
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.admin_ports[i])) else {
            return String::new();
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        std::io::Write::write_all(
            &mut s,
            b"GET /ensemble HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut out);
        out.split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or(out)
    }

    pub fn addr(&self, i: usize) -> SocketAddr {
        self.members[i].process.as_ref().expect("running").addr
    }

    /// `Mode:` from `srvr`, or None while it does not serve.
    pub fn mode(&self, i: usize) -> Option<String> {
        let process = self.members[i].process.as_ref()?;
        let out = four_letter(process.addr, "srvr").ok()?;
        out.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(str::to_owned)
    }

    /// Waits until every running member serves and exactly one leads;
    /// returns the leader's index.
    pub fn await_leader(&self, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            let modes: Vec<Option<String>> = (0..self.members.len())
                .map(|i| {
                    if self.members[i].process.is_some() {
                        self.mode(i)
                    } else {
                        Some("down".to_owned())
                    }
                })
                .collect();
            let leaders: Vec<usize> = (0..modes.len())
                .filter(|&i| modes[i].as_deref() == Some("leader"))
                .collect();
            if leaders.len() == 1 && modes.iter().all(Option::is_some) {
                return leaders[0];
            }
            assert!(
                Instant::now() < deadline,
                "no single leader after {limit:?}: {modes:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until exactly one of `candidates` leads; returns it.
    pub fn await_leader_among(&self, candidates: &[usize], limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            let leaders: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|&i| self.mode(i).as_deref() == Some("leader"))
                .collect();
            if let [leader] = leaders[..] {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "none of {candidates:?} leads after {limit:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until none of `members` serves (`srvr` says so).
    pub fn await_not_serving(&self, members: &[usize], limit: Duration) {
        let deadline = Instant::now() + limit;
        while let Some(&i) = members.iter().find(|&&i| self.mode(i).is_some()) {
            assert!(
                Instant::now() < deadline,
                "member {i} still serves after {limit:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A client session on member `i`, retried while it refuses (no leader
    /// yet).
    pub fn client(&self, i: usize) -> RawClient {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match RawClient::connect(self.addr(i), 10_000) {
                Ok(client) => return client,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "member {i} refuses sessions: {e}\n{}",
                        self.logs()
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        for m in &self.members {
            if let Some(p) = &m.process {
                let log = p.log();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                out.push_str(&format!("---- server {} (last lines)\n", m.id));
                for line in tail.into_iter().rev() {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// Member `me`'s zoo.cfg lines: `server.N` lines naming member i as
/// `peer(i)` (host, quorum port), the limits, and `extra_cfg`.
fn config_for(
    n: usize,
    observers: usize,
    extra_cfg: &[&str],
    peer: impl Fn(usize) -> (String, u16),
) -> Vec<String> {
    let mut config = vec![
        "tickTime=200".to_owned(),
        "initLimit=10".to_owned(),
        "syncLimit=5".to_owned(),
    ];
    for i in 0..n {
        let role = if i >= n - observers { ":observer" } else { "" };
        let (host, port) = peer(i);
        config.push(format!(
            "server.{}={host}:{port}:{}{role}",
            i + 1,
            free_port()
        ));
    }
    config.extend(extra_cfg.iter().map(|s| (*s).to_owned()));
    config
}

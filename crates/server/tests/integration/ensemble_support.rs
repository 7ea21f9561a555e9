//! Local ensembles of real `conclave-server` processes on loopback for the
//! multi-process tests: each member has its own data directory (outliving
//! its processes, so members can be killed and restarted) and a zoo.cfg
//! with the same `server.N` lines; `tickTime=200` keeps elections under a
//! second or so.

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
    config: Vec<String>,
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
        let mut config = vec![
            "tickTime=200".to_owned(),
            "initLimit=10".to_owned(),
            "syncLimit=5".to_owned(),
        ];
        for i in 1..=n {
            let role = if i > n - observers { ":observer" } else { "" };
            config.push(format!(
                "server.{i}={}:{}:{}{role}",
                host(i as u64),
                free_port(),
                free_port()
            ));
        }
        config.extend(extra_cfg.iter().map(|s| (*s).to_owned()));
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
            config,
            hosts_file,
        };
        for i in 0..n {
            ensemble.spawn(i);
        }
        ensemble
    }

    fn spawn(&mut self, i: usize) {
        let config: Vec<&str> = self.config.iter().map(String::as_str).collect();
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

"""The two servers under comparison, and pairs of them.

* ``zookeeper``: Debian's Apache ZooKeeper 3.8 (``ZooKeeperServerMain``),
  the reference.
* ``conclave``: the Conclave binary (``$CONCLAVE_BIN`` or
  ``${CARGO_TARGET_DIR:-<repo>/target}/debug/conclave-server``).

Starting, probing and stopping a server is ``../pylib/zkservers.py`` (shared
with the kazoo suite).  Here: every server gets free loopback ports (client +
admin HTTP), its own temp directory holding ``zoo.cfg``, ``data/`` and
``server.log``.  Settings that are JVM system properties for ZooKeeper
(``zkservers.SYSPROP_KEYS``: ``jute.maxbuffer``, ``znode.container.*``) are
passed to the JVM as ``-D`` flags and written into ``zoo.cfg`` for Conclave.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.request
from pathlib import Path

# The launcher shared with the kazoo suite: crates/server/tests/pylib/zkservers.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))

import zkservers  # noqa: E402
from zkservers import ServerError, conclave_bin, free_port  # noqa: E402

DEFAULT_CONFIG = {
    "tickTime": "2000",
    "maxClientCnxns": "0",
    "4lw.commands.whitelist": "*",
    "admin.enableServer": "true",
    "admin.serverAddress": "127.0.0.1",
}


def other_kind() -> str:
    """Which implementation is compared against the reference ZooKeeper."""
    kind = os.environ.get("DIFF_OTHER", "conclave").strip().lower()
    if kind in ("zk", "zookeeper"):
        return "zookeeper"
    if kind == "conclave":
        return "conclave"
    raise ValueError(f"DIFF_OTHER must be 'zookeeper' or 'conclave', not {kind!r}")


class Server(zkservers.ServerProcess):
    """One server process (reference ZooKeeper or Conclave) on free client
    and admin ports, ``zoo.cfg`` written once (``DEFAULT_CONFIG`` + ``config``;
    a value of None removes a default)."""

    heap = "256m"
    classpath = ["/etc/zookeeper/conf"] + zkservers.ZK_CLASSPATH
    jvm_flags = ["-Dzookeeper.root.logger=INFO,CONSOLE"]

    def __init__(self, kind: str, config: dict | None = None, label: str = ""):
        super().__init__(kind, free_port(), label=label, dir_prefix="diff")
        self.admin_port = free_port()
        self.config = dict(DEFAULT_CONFIG)
        for k, v in (config or {}).items():
            if v is None:
                self.config.pop(k, None)
            else:
                self.config[k] = str(v)
        self.write_config(
            [
                ("dataDir", self.datadir),
                ("clientPort", self.port),
                ("clientPortAddress", self.host),
                ("admin.serverPort", self.admin_port),
            ]
            + list(self.config.items())
        )

    @property
    def hosts(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://{self.host}:{self.admin_port}"

    def restart(self, hard: bool = True, timeout: float = 30.0) -> None:
        """Kill (SIGKILL when hard) and start again on the same ports and data."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.start(timeout)

    def destroy(self) -> None:
        self.kill()
        if os.environ.get("DIFF_KEEP_DIRS"):
            return
        self.remove_dir()

    # ------------------------------------------------------------- utilities
    def four_letter(self, cmd: str, timeout: float = 5.0) -> str:
        with socket.create_connection((self.host, self.port), timeout=timeout) as s:
            s.sendall(cmd.encode())
            chunks = []
            while True:
                try:
                    b = s.recv(65536)
                except (ConnectionResetError, socket.timeout):
                    break
                if not b:
                    break
                chunks.append(b)
        return b"".join(chunks).decode("utf-8", errors="replace")

    def admin_get(self, path: str, timeout: float = 5.0):
        """GET on the admin server; returns (status, content-type, body)."""
        url = self.admin_url + path
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return r.status, r.headers.get("Content-Type", ""), r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read().decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"<Server {self.label} {self.hosts} admin={self.admin_port} dir={self.dir}>"


def _start_one(kind, config, label, attempts=3) -> Server:
    """Start a server; retry with new ports when it dies during startup
    (a port picked by free_port() may be grabbed by someone else)."""
    last = None
    for _ in range(attempts):
        srv = Server(kind, config, label=label)
        try:
            srv.start()
            return srv
        except ServerError as e:
            last = e
            srv.destroy()
            if kind == "conclave" and not conclave_bin().exists():
                break
    raise last


class Ensemble:
    """``members`` servers of one kind forming an ensemble on loopback,
    looking like one ``Server`` to the scenarios: ``hosts`` is the whole
    connection string, while ``host``/``port`` (raw clients, four-letter
    words) and the admin API are member 1's."""

    def __init__(self, kind: str, config: dict | None, members: int, label: str):
        quorum = {"initLimit": "10", "syncLimit": "5"}
        for i in range(1, members + 1):
            quorum[f"server.{i}"] = f"127.0.0.1:{free_port()}:{free_port()}"
        self.kind = kind
        self.label = label
        self.members = [
            Server(kind, {**(config or {}), **quorum}, label=f"{label}#{i}")
            for i in range(1, members + 1)
        ]
        for i, m in enumerate(self.members, start=1):
            (m.datadir / "myid").write_text(f"{i}\n")
            if kind == "zookeeper":
                m.main_class = zkservers.ZK_QUORUM_MAIN

    @property
    def first(self) -> Server:
        return self.members[0]

    host = property(lambda self: self.first.host)
    port = property(lambda self: self.first.port)
    dir = property(lambda self: self.first.dir)
    admin_url = property(lambda self: self.first.admin_url)

    @property
    def hosts(self) -> str:
        return ",".join(m.hosts for m in self.members)

    def start(self, timeout: float = 60.0) -> None:
        # All first, then wait: a member serves only once a quorum is up.
        for m in self.members:
            m.spawn()
        for m in self.members:
            m.wait_ready(timeout)

    def alive(self) -> bool:
        return all(m.alive() for m in self.members)

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(f"--- {m.label}\n" + m.log_tail(n) for m in self.members)

    def four_letter(self, cmd: str, timeout: float = 5.0) -> str:
        return self.first.four_letter(cmd, timeout)

    def admin_get(self, path: str, timeout: float = 5.0):
        return self.first.admin_get(path, timeout)

    def restart(self, hard: bool = True, timeout: float = 60.0) -> None:
        """Every member killed (SIGKILL when hard) and started again."""
        for m in self.members:
            m.kill() if hard else m.stop()
        self.start(timeout)

    def destroy(self) -> None:
        for m in self.members:
            m.destroy()

    def __repr__(self) -> str:
        return f"<Ensemble {self.label} {self.hosts}>"


def ensemble_members() -> int:
    """``DIFF_MEMBERS``: 1 (standalone servers, default) or an ensemble size."""
    return int(os.environ.get("DIFF_MEMBERS", "1"))


def start_pair(config: dict | None = None, other: str | None = None):
    """Start reference ZooKeeper and the other server concurrently (with
    ``DIFF_MEMBERS=3``: a ZooKeeper ensemble and an ensemble of the other)."""
    other = other or other_kind()
    members = ensemble_members()
    if members > 1:
        ref = Ensemble("zookeeper", config, members, "zookeeper(ref)")
        oth = Ensemble(other, config, members, f"{other}(other)")
        try:
            ref.start()
            oth.start()
        except BaseException:
            ref.destroy()
            oth.destroy()
            raise
        return ref, oth
    ref = Server("zookeeper", config, label="zookeeper(ref)")
    ref.spawn()
    try:
        oth = _start_one(other, config, f"{other}(other)")
    except BaseException:
        ref.destroy()
        raise
    try:
        ref.wait_ready()
    except ServerError:
        ref.destroy()
        try:
            ref = _start_one("zookeeper", config, "zookeeper(ref)")
        except BaseException:
            oth.destroy()
            raise
    return ref, oth

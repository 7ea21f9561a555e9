"""Launch one standalone server: Apache ZooKeeper 3.8 or Conclave.

Shared by the two Python suites that compare Conclave with ZooKeeper:
``differential/servers.py`` and ``kazoo_suite/kazoo_suite_plugin.py``.  Each
puts this directory on ``sys.path`` and subclasses ``ServerProcess``.

* ``zookeeper``: Debian's Apache ZooKeeper 3.8 (``java ZooKeeperServerMain``
  with the jars from ``/usr/share/java``);
* ``conclave``: the Conclave binary (``$CONCLAVE_BIN`` or
  ``${CARGO_TARGET_DIR:-<repo>/target}/debug/conclave-server``).

A ``ServerProcess`` owns a temp directory holding ``zoo.cfg``, ``data/`` and
the server's log (stdout + stderr); it writes ``zoo.cfg`` for its kind,
starts the process in its own session, waits until a client session can be
created and closed again, and stops it (SIGTERM, then SIGKILL) or kills it
(SIGKILL).  Settings that ZooKeeper only reads as JVM system properties
(``SYSPROP_KEYS``) become ``-D`` flags for the JVM and are left out of its
``zoo.cfg`` (its parser would turn them into ``zookeeper.<key>``); Conclave
reads them from ``zoo.cfg``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[3]

ZK_MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"
# A member of an ensemble (zoo.cfg with server.N lines).
ZK_QUORUM_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"

# What ZooKeeperServerMain needs besides what Debian's zookeeper.jar manifest
# lists: the servlet API for Jetty (admin server) and a logging backend
# (slf4j-simple writes to stderr, which goes to the server's log).
ZK_CLASSPATH = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/servlet-api.jar",
    "/usr/share/java/slf4j-simple.jar",
]
# The Netty connection factory (needed for a TLS port) also wants these,
# which the manifest leaves out.
NETTY_JARS = [
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/netty-resolver.jar",
    "/usr/share/java/netty-transport-native-unix-common.jar",
]
# Quick startup, small heap (-Xmx is up to the suite).
JVM_FLAGS = [
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Xms64m",
    "-Xshare:auto",
    "-Djava.net.preferIPv4Stack=true",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
]

# zoo.cfg keys that ZooKeeper only reads as JVM system properties.
SYSPROP_KEYS = {
    "jute.maxbuffer",
    "znode.container.checkIntervalMs",
    "znode.container.maxNeverUsedIntervalMs",
    "readonlymode.enabled",
}

KINDS = ("zookeeper", "conclave")


def conclave_bin() -> Path:
    env = os.environ.get("CONCLAVE_BIN")
    if env:
        return Path(env)
    target = os.environ.get("CARGO_TARGET_DIR") or str(REPO / "target")
    return Path(target) / "debug" / "conclave-server"


_GIVEN_PORTS: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on now and never handed out before
    by this process (the kernel may give a just-released port again at
    once, and a server's client, admin and quorum ports must differ)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port


class ServerError(RuntimeError):
    pass


class ServerProcess:
    """One server process of ``kind`` in a fresh temp dir.

    Subclasses choose the JVM's ``heap``, ``classpath`` and ``jvm_flags``
    (class attributes), call ``write_config`` and then ``start``.
    """

    heap = "256m"
    classpath = ZK_CLASSPATH
    jvm_flags: list[str] = []
    log_name = "server.log"
    log = logging.getLogger("zkservers")
    # ZooKeeper's main class (ZK_QUORUM_MAIN for an ensemble member).
    main_class = ZK_MAIN

    def __init__(self, kind: str, port: int, label: str = "", dir_prefix: str = "zk"):
        assert kind in KINDS, kind
        self.kind = kind
        self.label = label or kind
        self.host = "127.0.0.1"
        self.port = port  # the client port, probed by wait_ready()
        self.dir = Path(tempfile.mkdtemp(prefix=f"{dir_prefix}-{kind}-"))
        self.datadir = self.dir / "data"
        self.datadir.mkdir()
        self.cfg_path = self.dir / "zoo.cfg"
        self.log_path = self.dir / self.log_name
        self.jaas_path: Path | None = None  # -Djava.security.auth.login.config
        self.sysprops: dict[str, str] = {}
        self.proc: subprocess.Popen | None = None
        self._log_handle = None
        self.starts = 0

    # ------------------------------------------------------------------ config
    def write_config(self, entries) -> None:
        """Write ``zoo.cfg`` from (key, value) pairs, in order; for ZooKeeper
        the ``SYSPROP_KEYS`` become ``-D`` flags instead."""
        lines = []
        self.sysprops = {}
        for k, v in entries:
            if self.kind == "zookeeper" and k in SYSPROP_KEYS:
                self.sysprops[k] = v
                continue
            lines.append(f"{k}={v}")
        self.cfg_path.write_text("\n".join(lines) + "\n")

    def command(self) -> list[str]:
        if self.kind == "zookeeper":
            jaas = [f"-Djava.security.auth.login.config={self.jaas_path}"] if self.jaas_path else []
            return (
                ["java"]
                + JVM_FLAGS
                + [f"-Xmx{self.heap}"]
                + self.jvm_flags
                + ["-cp", ":".join(self.classpath), f"-Dzookeeper.log.dir={self.dir}"]
                + jaas
                + [f"-D{k}={v}" for k, v in self.sysprops.items()]
                + [self.main_class, str(self.cfg_path)]
            )
        binary = conclave_bin()
        if not binary.exists():
            raise ServerError(
                f"Conclave binary not found at {binary}: build it with "
                "`cargo build -p server` or set CONCLAVE_BIN"
            )
        return [str(binary), "--config", str(self.cfg_path)]

    # --------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 30.0, note: str = ""):
        self.spawn(note)
        self.wait_ready(timeout)
        return self

    def spawn(self, note: str = "") -> None:
        """Start the process (not waiting); ``note`` goes into the log's
        ``===== start #N =====`` line."""
        assert self.proc is None or self.proc.poll() is not None
        cmd = self.command()
        self._log_handle = open(self.log_path, "ab")
        note = f" ({note})" if note else ""
        self._log_handle.write(f"\n===== start #{self.starts + 1}{note} =====\n".encode())
        self._log_handle.flush()
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        self.proc = subprocess.Popen(
            cmd,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.dir,
            env=env,
            start_new_session=True,
        )
        self.starts += 1
        self.log.info("started %s pid %s on %s:%s", self.label, self.proc.pid, self.host, self.port)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Ready = a client session can be established (then closed again).

        The probe session is created and closed explicitly so that it is a
        deterministic pair of transactions on both servers.
        """
        deadline = time.monotonic() + timeout
        last_err = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._close_log()
                raise ServerError(
                    f"{self.label} exited with {self.proc.returncode} during startup\n"
                    + self.log_tail()
                )
            try:
                if probe_session(self.host, self.port):
                    return
            except OSError as e:  # not listening yet
                last_err = e
            time.sleep(0.1)
        raise ServerError(f"{self.label} not ready after {timeout}s ({last_err})\n" + self.log_tail())

    def stop(self, grace: float = 10.0) -> None:
        """Graceful stop: SIGTERM, then SIGKILL after ``grace`` seconds."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.log.warning("%s pid %s ignored SIGTERM; killing", self.label, self.proc.pid)
                self.proc.kill()
                self.proc.wait(10)
        self._close_log()

    def kill(self) -> None:
        """SIGKILL, no chance to flush anything."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)
        self._close_log()

    def remove_dir(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _close_log(self) -> None:
        if self._log_handle:
            self._log_handle.close()
            self._log_handle = None

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        errors = [l for l in lines if re.search(r"error|exception|panic", l, re.I) and not l.lstrip().startswith("at ")]
        head = ""
        if errors:
            head = f"--- first error lines of {self.label} ---\n" + "\n".join(errors[:10]) + "\n"
        return head + f"--- last {n} log lines of {self.label} ({self.log_path}) ---\n" + "\n".join(lines[-n:])


# --------------------------------------------------------------------------
# readiness probe: a session can be created (and is closed again)
def probe_session(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=2) as s:
        s.settimeout(5)
        # ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly
        body = struct.pack(">iqiq", 0, 0, 30000, 0) + struct.pack(">i", 16) + b"\0" * 16 + b"\0"
        s.sendall(struct.pack(">i", len(body)) + body)
        hdr = recv_exact(s, 4)
        if hdr is None:
            return False
        (n,) = struct.unpack(">i", hdr)
        resp = recv_exact(s, n)
        if resp is None or n < 20:
            return False
        _, timeout, sid = struct.unpack(">iiq", resp[:16])
        if sid == 0 or timeout <= 0:
            return False
        s.sendall(struct.pack(">iii", 8, 1, -11))  # closeSession
        hdr = recv_exact(s, 4)
        if hdr is not None:
            (n,) = struct.unpack(">i", hdr)
            recv_exact(s, n)
        return True


def recv_exact(s: socket.socket, n: int):
    """``n`` bytes from ``s``, or None on EOF, reset or timeout."""
    buf = b""
    while len(buf) < n:
        try:
            b = s.recv(n - len(buf))
        except (ConnectionResetError, socket.timeout):
            return None
        if not b:
            return None
        buf += b
    return buf

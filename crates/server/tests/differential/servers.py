"""Start/stop helpers for the two servers under comparison.

* ``zookeeper``: Debian's Apache ZooKeeper 3.8 (``ZooKeeperServerMain``),
  the reference.
* ``conclave``: the Conclave binary (``$CONCLAVE_BIN`` or
  ``${CARGO_TARGET_DIR:-<repo>/target}/debug/conclave-server``).

Every server gets free loopback ports (client + admin HTTP), its own temp
directory holding ``zoo.cfg``, ``data/`` and ``server.log``.  Settings that
are JVM system properties for ZooKeeper (``SYSPROP_KEYS``) are passed to the
JVM as ``-D`` flags and written into ``zoo.cfg`` for Conclave.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[3]

ZK_CLASSPATH = ":".join([
    "/etc/zookeeper/conf",
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-simple.jar",
    # Jetty (admin server) needs the servlet API, which the jar manifest omits.
    "/usr/share/java/servlet-api.jar",
])
ZK_MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"
JVM_FLAGS = [
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Xms64m",
    "-Xmx256m",
    "-Xshare:auto",
    "-Djava.net.preferIPv4Stack=true",
]

# zoo.cfg keys that ZooKeeper only reads as JVM system properties.
SYSPROP_KEYS = {
    "jute.maxbuffer",
    "znode.container.checkIntervalMs",
    "znode.container.maxNeverUsedIntervalMs",
}

DEFAULT_CONFIG = {
    "tickTime": "2000",
    "maxClientCnxns": "0",
    "4lw.commands.whitelist": "*",
    "admin.enableServer": "true",
    "admin.serverAddress": "127.0.0.1",
}


def conclave_bin() -> Path:
    env = os.environ.get("CONCLAVE_BIN")
    if env:
        return Path(env)
    target = os.environ.get("CARGO_TARGET_DIR") or str(REPO / "target")
    return Path(target) / "debug" / "conclave-server"


def other_kind() -> str:
    """Which implementation is compared against the reference ZooKeeper."""
    kind = os.environ.get("DIFF_OTHER", "conclave").strip().lower()
    if kind in ("zk", "zookeeper"):
        return "zookeeper"
    if kind == "conclave":
        return "conclave"
    raise ValueError(f"DIFF_OTHER must be 'zookeeper' or 'conclave', not {kind!r}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerError(RuntimeError):
    pass


class Server:
    """One server process (reference ZooKeeper or Conclave)."""

    def __init__(self, kind: str, config: dict | None = None, label: str = ""):
        assert kind in ("zookeeper", "conclave"), kind
        self.kind = kind
        self.label = label or kind
        self.config = dict(DEFAULT_CONFIG)
        for k, v in (config or {}).items():
            if v is None:
                self.config.pop(k, None)
            else:
                self.config[k] = str(v)
        self.dir = Path(tempfile.mkdtemp(prefix=f"diff-{kind}-"))
        self.datadir = self.dir / "data"
        self.datadir.mkdir()
        self.port = free_port()
        self.admin_port = free_port()
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen | None = None
        self.log_path = self.dir / "server.log"
        self._log_handle = None
        self.starts = 0
        self._write_config()

    # ------------------------------------------------------------------ config
    @property
    def hosts(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://{self.host}:{self.admin_port}"

    def _write_config(self) -> None:
        lines = [
            f"dataDir={self.datadir}",
            f"clientPort={self.port}",
            f"clientPortAddress={self.host}",
            f"admin.serverPort={self.admin_port}",
        ]
        for k, v in self.config.items():
            if self.kind == "zookeeper" and k in SYSPROP_KEYS:
                continue
            lines.append(f"{k}={v}")
        self.cfg_path = self.dir / "zoo.cfg"
        self.cfg_path.write_text("\n".join(lines) + "\n")

    def _command(self) -> list[str]:
        if self.kind == "zookeeper":
            props = [f"-D{k}={v}" for k, v in self.config.items() if k in SYSPROP_KEYS]
            return (
                ["java"]
                + JVM_FLAGS
                + [
                    "-cp",
                    ZK_CLASSPATH,
                    f"-Dzookeeper.log.dir={self.dir}",
                    "-Dzookeeper.root.logger=INFO,CONSOLE",
                    "-Dorg.slf4j.simpleLogger.showDateTime=true",
                ]
                + props
                + [ZK_MAIN, str(self.cfg_path)]
            )
        binary = conclave_bin()
        if not binary.exists():
            raise ServerError(
                f"Conclave binary not found at {binary}: build it with "
                "`cargo build -p server` or set CONCLAVE_BIN"
            )
        return [str(binary), "--config", str(self.cfg_path)]

    # --------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 30.0) -> "Server":
        self.spawn()
        self.wait_ready(timeout)
        return self

    def spawn(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self._log_handle = open(self.log_path, "ab")
        self._log_handle.write(f"\n===== start #{self.starts + 1} =====\n".encode())
        self._log_handle.flush()
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        self.proc = subprocess.Popen(
            self._command(),
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.dir,
            env=env,
            start_new_session=True,
        )
        self.starts += 1

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Ready = a client session can be established (then closed again).

        The probe session is created and closed explicitly so that it is a
        deterministic pair of transactions on both servers.
        """
        deadline = time.monotonic() + timeout
        last_err = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"{self.label} exited with {self.proc.returncode} during startup\n"
                    + self.log_tail()
                )
            try:
                if _probe_session(self.host, self.port):
                    return
            except OSError as e:  # not listening yet
                last_err = e
            time.sleep(0.1)
        raise ServerError(f"{self.label} not ready after {timeout}s ({last_err})\n" + self.log_tail())

    def stop(self) -> None:
        """Graceful stop (SIGTERM, then SIGKILL)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close_log()

    def kill(self) -> None:
        """SIGKILL, no chance to flush anything."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close_log()

    def restart(self, hard: bool = True, timeout: float = 30.0) -> None:
        """Kill (SIGKILL when hard) and start again on the same ports and data."""
        if hard:
            self.kill()
        else:
            self.stop()
        # The port may linger briefly; retry spawning while the old socket drains.
        self.start(timeout)

    def destroy(self) -> None:
        self.kill()
        if os.environ.get("DIFF_KEEP_DIRS"):
            return
        shutil.rmtree(self.dir, ignore_errors=True)

    def _close_log(self) -> None:
        if self._log_handle:
            self._log_handle.close()
            self._log_handle = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

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


def _probe_session(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=2) as s:
        s.settimeout(5)
        body = struct.pack(">iqiq", 0, 0, 30000, 0) + struct.pack(">i", 16) + b"\0" * 16 + b"\0"
        s.sendall(struct.pack(">i", len(body)) + body)
        hdr = _recv_exact(s, 4)
        if hdr is None:
            return False
        (n,) = struct.unpack(">i", hdr)
        resp = _recv_exact(s, n)
        if resp is None or n < 20:
            return False
        _, timeout, sid = struct.unpack(">iiq", resp[:16])
        if sid == 0 or timeout <= 0:
            return False
        # closeSession
        s.sendall(struct.pack(">iii", 8, 1, -11))
        hdr = _recv_exact(s, 4)
        if hdr is None:
            return True
        (n,) = struct.unpack(">i", hdr)
        _recv_exact(s, n)
        return True


def _recv_exact(s: socket.socket, n: int):
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


def start_pair(config: dict | None = None, other: str | None = None) -> tuple[Server, Server]:
    """Start reference ZooKeeper and the other server concurrently."""
    other = other or other_kind()
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

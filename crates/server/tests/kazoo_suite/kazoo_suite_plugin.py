"""pytest plugin: run kazoo's own test suite against one standalone server,
or against a three-server ensemble (``--members=3``).

kazoo's harness (``kazoo.testing.harness``) normally builds a 3-node
ZooKeeper ensemble itself.  This plugin replaces
``kazoo.testing.harness.get_global_cluster`` with a cluster whose members
are either

* ``zookeeper``: Debian's Apache ZooKeeper 3.8 (``ZooKeeperServerMain``), or
* ``conclave``: the Conclave binary (``$CONCLAVE_BIN`` or
  ``${CARGO_TARGET_DIR:-<repo>/target}/debug/conclave-server``),

chosen with ``--server=conclave|zookeeper`` (or ``$KAZOO_SUITE_SERVER``).

Writing ``zoo.cfg``, starting, probing and stopping a server is
``../pylib/zkservers.py`` (shared with the differential suite); this plugin
adds kazoo's cluster interface, the TLS key/trust stores, the JAAS file and
the Netty connection factory.

Both kinds get the very same ``zoo.cfg`` -- the file kazoo's own harness
writes for ZooKeeper >= 3.5 (Netty connection factory, a TLS
``secureClientPort`` with a generated keystore/truststore, SASL auth
provider, ``4lw.commands.whitelist=*``, ``reconfigEnabled=true``, super
digest for password "test"), minus the quorum lines.  Settings that only
exist as JVM system properties for ZooKeeper (``zkservers.SYSPROP_KEYS``,
here ``readonlymode.enabled``) are passed to the JVM as ``-D`` flags and are
written into ``zoo.cfg`` as well (where ZooKeeper's parser would otherwise
turn them into ``zookeeper.<key>`` properties, so they are left out of
ZooKeeper's copy).  The JAAS file that kazoo's SASL tests ask for
(``ZOOKEEPER_JAAS_AUTH=digest``) is written for both: ZooKeeper gets it as
``-Djava.security.auth.login.config``, Conclave as the same key in zoo.cfg.

Every server keeps its ports for the life of the cluster object so that
``stop()``/``run()`` inside a test brings it back on the same address, as
kazoo's tests expect.  ``run()`` waits until a client session can be
established (kazoo's harness instead sleeps 2 s).

Unexpected server exits (crashes) are recorded and shown at the end of the
run and written to ``--crash-log`` if given.
"""

from __future__ import annotations

import atexit
import logging
import os
import pathlib
import re
import shutil
import sys
import time
from collections import namedtuple

import pytest

HERE = pathlib.Path(__file__).resolve().parent
# The launcher shared with the differential suite: crates/server/tests/pylib/zkservers.py
sys.path.insert(0, str(HERE.parent / "pylib"))

import zkservers  # noqa: E402
from zkservers import ZK_MAIN, conclave_bin, free_port  # noqa: E402

log = logging.getLogger("kazoo_suite")

ZK_VERSION = "3.8.0"

SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="  # password "test"

JAAS_DIGEST = """
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_jaasuser="jaas_password";
};"""

ServerInfo = namedtuple(
    "ServerInfo", "server_id client_port secure_client_port admin_port"
)


# --------------------------------------------------------------------------
# state shared with the pytest hooks
_KIND = None
_MEMBERS = 1
_CRASHES: list[str] = []
_CURRENT_TEST = {"nodeid": None}


class ManagedServer(zkservers.ServerProcess):
    """One standalone server with the interface of kazoo's ManagedZooKeeper."""

    heap = "512m"
    # the Netty connection factory serves the TLS port
    classpath = zkservers.ZK_CLASSPATH + zkservers.NETTY_JARS
    # the JVM-only flags kazoo's harness passes
    jvm_flags = [
        "-Dfile.encoding=UTF-8",
        "-Djava.awt.headless=true",
        "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS",
    ]
    log_name = "zookeeper.log"
    log = logging.getLogger("kazoo_suite")

    def __init__(self, kind, server_info, config, jaas_config, ssl_configuration, quorum=()):
        super().__init__(kind, server_info.client_port, dir_prefix="kazoo")
        self.server_info = server_info
        # (key, value) pairs of an ensemble: server.N lines and limits
        self.quorum = list(quorum)
        if self.quorum:
            self.main_class = zkservers.ZK_QUORUM_MAIN
        self.config = dict(config)
        self.jaas_config = jaas_config
        self.ssl_configuration = ssl_configuration
        self._running = False

    # -- kazoo's ManagedZooKeeper interface --------------------------------
    @property
    def address(self):
        return "%s:%s" % (self.host, self.client_port)

    @property
    def secure_address(self):
        return "%s:%s" % (self.host, self.secure_client_port)

    @property
    def client_port(self):
        return self.server_info.client_port

    @property
    def secure_client_port(self):
        return self.server_info.secure_client_port

    @property
    def running(self):
        if self._running and not self.alive():
            # died behind our back: record it, and let setup_zookeeper()
            # start a fresh one instead of failing every later test.
            self._note_crash()
            self._running = False
            self._close_log()
        return self._running

    def run(self):
        if self.running:
            return
        self.spawn_member()
        self.wait_member()

    def spawn_member(self):
        """Writes the config and starts the process without waiting."""
        if self.running:
            return
        wp = self.dir
        self.datadir.mkdir(parents=True, exist_ok=True)
        (self.datadir / "myid").write_text(str(self.server_info.server_id))
        truststore = wp / "truststore.jks"
        keystore = wp / "keystore.jks"
        self.ssl_configuration["truststore"].save(str(truststore), "apassword")
        self.ssl_configuration["keystore"].save(str(keystore), "apassword")
        self.jaas_path = wp / "jaas.conf"
        self.jaas_path.write_text(self.jaas_config or "")

        self.write_config(
            [
                ("tickTime", "2000"),
                ("dataDir", self.datadir),
                ("clientPort", self.server_info.client_port),
                ("secureClientPort", self.server_info.secure_client_port),
                ("maxClientCnxns", "0"),
                ("admin.serverPort", self.server_info.admin_port),
                ("serverCnxnFactory", "org.apache.zookeeper.server.NettyServerCnxnFactory"),
                ("authProvider.1", "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"),
                ("ssl.keyStore.location", keystore),
                ("ssl.keyStore.password", "apassword"),
                ("ssl.trustStore.location", truststore),
                ("ssl.trustStore.password", "apassword"),
            ]
            + list(self.config.items())
            + self.quorum
            # ZooKeeper reads the JAAS file from a JVM flag; Conclave has no
            # JVM and reads the same flag from zoo.cfg.
            + ([("java.security.auth.login.config", self.jaas_path)] if self.kind == "conclave" else [])
        )
        self.spawn(note=f"{time.strftime('%H:%M:%S')}, test {_CURRENT_TEST['nodeid']}")
        self._running = True

    def wait_member(self):
        try:
            self.wait_ready(timeout=60.0)
        except zkservers.ServerError:
            if not self.alive():
                self._running = False
            raise

    def reset(self):
        self.stop()
        shutil.rmtree(self.datadir, True)
        self.datadir.mkdir(parents=True)
        (self.datadir / "myid").write_text(str(self.server_info.server_id))

    def stop(self):
        if not self.running:
            return
        super().stop(grace=20)
        self._running = False

    def destroy(self):
        self.stop()
        keep = os.environ.get("KAZOO_SUITE_KEEP_DIRS")
        if keep:
            dest = pathlib.Path(keep)
            dest.mkdir(parents=True, exist_ok=True)
            if self.log_path.exists():
                with open(dest / f"{self.kind}-server.log", "ab") as out:
                    out.write(self.log_path.read_bytes())
        self.remove_dir()

    def get_logs(self, num_lines=100):
        if self.log_path.exists():
            return self.log_path.read_text(errors="replace").splitlines(True)[-num_lines:]
        return []

    # -- helpers -----------------------------------------------------------
    def log_tail(self, n=40):
        return "".join(self.get_logs(n))

    def _note_crash(self):
        rc = self.proc.returncode
        msg = (
            f"{self.kind} server (pid {self.proc.pid}) exited unexpectedly with "
            f"status {rc}; noticed at/after test {_CURRENT_TEST['nodeid']}"
        )
        log.error(msg)
        _CRASHES.append(msg + "\n" + self.log_tail(30))


class ServerCluster:
    """Stand-in for kazoo.testing.common.ZookeeperCluster: one standalone
    server, or an ensemble of ``members`` servers on loopback."""

    def __init__(self, kind, config, jaas_config, members=1):
        from kazoo.testing.common import ZookeeperCluster

        self._ssl_configuration = {}
        # reuse kazoo's own CA/server/client certificate generation
        ZookeeperCluster.perform_ssl_certs_generation(self)
        infos = [ServerInfo(i, free_port(), free_port(), free_port()) for i in range(1, members + 1)]
        quorum = []
        if members > 1:
            quorum = [("initLimit", "10"), ("syncLimit", "5")] + [
                (f"server.{i.server_id}", f"127.0.0.1:{free_port()}:{free_port()}") for i in infos
            ]
        self._servers = [
            ManagedServer(kind, info, config, jaas_config, dict(self._ssl_configuration), quorum)
            for info in infos
        ]

    def __getitem__(self, k):
        return self._servers[k]

    def __iter__(self):
        return iter(self._servers)

    def __len__(self):
        return len(self._servers)

    def start(self):
        # All first, then wait: a member of an ensemble serves only once a
        # quorum is up.
        for server in self:
            server.spawn_member()
        for server in self:
            server.wait_member()

    def stop(self):
        for server in self:
            server.stop()

    def terminate(self):
        for server in self:
            server.destroy()

    def reset(self):
        for server in self:
            server.reset()

    def get_logs(self):
        logs = []
        for server in self:
            logs += server.get_logs()
        return logs

    def get_ssl_client_configuration(self):
        from kazoo.testing.common import ZookeeperCluster

        return ZookeeperCluster.get_ssl_client_configuration(self)


_CLUSTER = None
_CLUSTER_CONF = None


def get_global_cluster():
    """Replacement for kazoo.testing.harness.get_global_cluster."""
    global _CLUSTER, _CLUSTER_CONF
    conf = {
        k: os.environ.get(k)
        for k in ("ZOOKEEPER_JAAS_AUTH", "ZOOKEEPER_LOCAL_SESSION_RO")
    }
    if _CLUSTER is not None:
        if conf == _CLUSTER_CONF:
            return _CLUSTER
        log.info("config change detected, reconfiguring cluster")
        _CLUSTER.terminate()
        _CLUSTER = None

    local_ro = conf["ZOOKEEPER_LOCAL_SESSION_RO"] or "false"
    config = {
        "4lw.commands.whitelist": "*",
        "reconfigEnabled": "true",
        "localSessionsEnabled": local_ro,
        "localSessionsUpgradingEnabled": local_ro,
        "DigestAuthenticationProvider.superDigest": SUPER_DIGEST,
        "readonlymode.enabled": "true",
    }
    jaas = None
    if conf["ZOOKEEPER_JAAS_AUTH"] == "digest":
        jaas = JAAS_DIGEST
    elif conf["ZOOKEEPER_JAAS_AUTH"]:
        # gssapi needs a KDC (KRB5_TEST_ENV); kazoo skips those tests first.
        raise RuntimeError("unsupported ZOOKEEPER_JAAS_AUTH=%r" % conf["ZOOKEEPER_JAAS_AUTH"])
    _CLUSTER = ServerCluster(_KIND, config, jaas, _MEMBERS)
    _CLUSTER_CONF = conf
    # backstop: servers run in their own session, so make sure none outlive us
    atexit.register(lambda c: [s.stop() for s in c], _CLUSTER)
    return _CLUSTER


# --------------------------------------------------------------------------
# pytest hooks
def pytest_addoption(parser):
    group = parser.getgroup("kazoo_suite")
    group.addoption(
        "--server",
        action="store",
        default=os.environ.get("KAZOO_SUITE_SERVER", "conclave"),
        choices=("conclave", "zookeeper"),
        help="which server kazoo's tests run against (default: $KAZOO_SUITE_SERVER or conclave)",
    )
    group.addoption(
        "--members",
        action="store",
        type=int,
        default=int(os.environ.get("KAZOO_SUITE_MEMBERS", "1")),
        help="servers in the cluster: 1 (standalone, default) or an ensemble of 3",
    )
    group.addoption(
        "--outcomes-json",
        action="store",
        default=None,
        help="file to write one outcome (and failure message) per test to",
    )
    group.addoption(
        "--crash-log",
        action="store",
        default=None,
        help="file to write unexpected server exits to",
    )


def pytest_configure(config):
    global _KIND, _MEMBERS
    _KIND = config.getoption("--server")
    _MEMBERS = config.getoption("--members")
    os.environ.setdefault("ZOOKEEPER_VERSION", ZK_VERSION)
    if _KIND == "conclave" and not conclave_bin().exists():
        raise pytest.UsageError(
            f"Conclave binary not found at {conclave_bin()}: run `cargo build -p server` "
            "or set CONCLAVE_BIN"
        )
    import kazoo.testing.harness as harness

    harness.get_global_cluster = get_global_cluster


def pytest_report_header(config):
    what = str(conclave_bin()) if _KIND == "conclave" else f"java {ZK_MAIN}"
    shape = "one standalone server" if _MEMBERS == 1 else f"an ensemble of {_MEMBERS} servers"
    return [f"kazoo_suite: server={_KIND} ({what}), {shape}, "
            f"ZOOKEEPER_VERSION={os.environ.get('ZOOKEEPER_VERSION')} CI={os.environ.get('CI')}"]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    _CURRENT_TEST["nodeid"] = item.nodeid


# nodeid (normalised to "kazoo/tests/...") -> {"outcome", "when", "message", "longrepr", "duration"}
_OUTCOMES: dict[str, dict] = {}


def normalise_nodeid(nodeid: str) -> str:
    i = nodeid.find("kazoo/tests/")
    return nodeid[i:] if i >= 0 else nodeid


def _crash_message(report) -> str:
    lr = report.longrepr
    if lr is None:
        return ""
    if isinstance(lr, tuple):  # skip: (path, lineno, reason)
        return str(lr[2])
    crash = getattr(lr, "reprcrash", None)
    if crash is not None and crash.message:
        return crash.message
    return str(lr).strip().splitlines()[-1] if str(lr).strip() else ""


_TB_ENTRY = re.compile(r"(\S*kazoo/tests/[\w/]+\.py):(\d+): in (\S+)\n[ \t]+(\S.*)")


def _test_location(text: str) -> str:
    """Innermost traceback entry inside kazoo/tests (with --tb=short)."""
    found = _TB_ENTRY.findall(text or "")
    if not found:
        return ""
    path, line, func, src = found[-1]
    return f"{normalise_nodeid(path)}:{line} in {func}: {src.strip()}"


def pytest_runtest_logreport(report):
    nid = normalise_nodeid(report.nodeid)
    rec = _OUTCOMES.setdefault(nid, {"outcome": "passed", "when": None, "message": "",
                                     "longrepr": "", "duration": 0.0})
    rec["duration"] += report.duration
    if report.passed:
        return
    if report.skipped:
        if rec["outcome"] == "passed":
            rec.update(outcome="skipped", when=report.when, message=_crash_message(report))
        return
    # failed
    if rec["outcome"] in ("failed", "error"):
        rec["longrepr"] += f"\n\n--- {report.when} ---\n" + report.longreprtext
        return
    outcome = "failed" if report.when == "call" else "error"
    rec.update(outcome=outcome, when=report.when, message=_crash_message(report),
               location=_test_location(report.longreprtext), longrepr=report.longreprtext)


def pytest_sessionfinish(session, exitstatus):
    global _CLUSTER
    if _CLUSTER is not None:
        # notice a crash in the very last test too
        for s in _CLUSTER:
            _ = s.running
        _CLUSTER.terminate()
        _CLUSTER = None
    out = session.config.getoption("--outcomes-json")
    if out:
        import json

        pathlib.Path(out).write_text(json.dumps(
            {"server": _KIND, "exitstatus": int(exitstatus), "crashes": _CRASHES,
             "tests": _OUTCOMES}, indent=1, sort_keys=True))
    path = session.config.getoption("--crash-log")
    if path:
        pathlib.Path(path).write_text("\n\n".join(_CRASHES))


def pytest_terminal_summary(terminalreporter):
    if _CRASHES:
        terminalreporter.section(f"{_KIND}: unexpected server exits")
        for c in _CRASHES:
            terminalreporter.write_line(c)

"""Differential harness: run one scenario on each server, normalize, compare.

A scenario is ``def scenario(ctx) -> observation`` where the observation is
plain JSON-able data.  It is computed against the reference ZooKeeper and
against the other server; the test fails with a readable diff when the two
differ.

Normalization (done by the scenario through ``ctx`` helpers) only removes
what legitimately differs between two correct servers:

* zxids: ``ctx.zx(z)`` is the difference to a baseline zxid read at scenario
  start (``0`` and ``-1`` stay literal), so zxid *advancement* stays visible;
* session ids: ``ctx.sid(s)`` maps to ordinals ``S1``, ``S2``… in order of
  first appearance (``0`` stays ``0``);
* times: ``ctx.t(ms)`` is ``0`` for literal 0, ``"T"`` when plausible (within
  the scenario's wall-clock window), ``"implausible:<ms>"`` otherwise;
  relations between times are compared explicitly (``ctx.trel``, and the
  ``ctime?mtime`` key of normalized stats);
* children lists are sorted where order is unspecified (``sorted()``).
"""

from __future__ import annotations

import difflib
import json
import logging
import re
import threading
import time
import traceback

from kazoo.client import KazooClient

import rawclient
from rawclient import Closed, RawClient, err_name

logging.getLogger("kazoo").setLevel(logging.CRITICAL)


class ScenarioError(AssertionError):
    pass


def _sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class Ctx:
    """Everything a scenario needs to talk to one server and normalize."""

    def __init__(self, server, role: str, name: str):
        self.server = server
        self.role = role
        self.name = name
        self.root = "/" + _sanitize(name)
        self.host = server.host
        self.port = server.port
        self._sids: dict[int, str] = {}
        self._cleanup: list = []
        self.base = None
        self.t_start_ms = int(time.time() * 1000)
        self._observer: RawClient | None = None
        self.notes: list[str] = []

    # ------------------------------------------------------------- baseline
    def begin(self) -> None:
        """Open the observer connection and read the baseline zxid.

        The observer keeps its session alive with background pings, so that
        it never expires (an expiry would be a txn at an unpredictable
        zxid)."""
        self._observer = RawClient(self.host, self.port)
        res = self._observer.connect()
        self.sid(res.session_id)  # ordinals follow session creation order
        self._observer.start_keepalive()
        self.base = self._observer.exists("/").zxid

    def zxid_now(self):
        """Current server zxid (via a read on the observer), normalized.
        After a server restart the observer reconnects (same session)."""
        try:
            return self.zx(self._observer.exists("/").zxid)
        except (OSError, Closed, TimeoutError):
            old = self._observer
            old.close()
            self._observer = RawClient(self.host, self.port)
            s = old.session
            res = self._observer.connect(session_id=s.session_id, passwd=s.passwd, timeout_ms=s.timeout)
            if res.timeout <= 0:
                # the server lost the observer's session: use a new one
                self._observer.close()
                self._observer = RawClient(self.host, self.port)
                self._observer.connect()
            self._observer.start_keepalive()
            return self.zx(self._observer.exists("/").zxid)

    def end(self) -> None:
        for fn in reversed(self._cleanup):
            try:
                fn()
            except Exception:
                pass
        self._cleanup.clear()
        if self._observer is not None:
            self._observer.close_session(timeout=2)
            self._observer.close()
            self._observer = None

    # -------------------------------------------------------------- clients
    def kazoo(self, start=True, chroot: str = "", **kw) -> KazooClient:
        kw.setdefault("timeout", 10.0)
        kw.setdefault("connection_retry", dict(max_tries=-1, delay=0.05, max_delay=0.5))
        kw.setdefault("command_retry", None)
        c = KazooClient(hosts=self.server.hosts + chroot, **kw)
        if start:
            c.start(timeout=10)

        def _stop():
            try:
                c.stop()
            finally:
                c.close()

        self._cleanup.append(_stop)
        return c

    def raw(self, connect=True, keepalive=False, **kw) -> RawClient:
        c = RawClient(self.host, self.port)
        if connect:
            res = c.connect(**kw)
            self.sid(res.session_id)  # ordinals follow session creation order
            if keepalive:
                c.start_keepalive()

        def _close():
            rep = None
            if not c.closed:
                rep = c.close_session(timeout=1)
            c.close()
            s = c.session
            if rep is None and s is not None and s.session_id and s.timeout > 0:
                # The server dropped the connection but the session may live
                # on: re-attach and close it, so it cannot expire later at
                # an unpredictable zxid in another scenario.
                self._reap_session(s)

        self._cleanup.append(_close)
        return c

    def _reap_session(self, s) -> None:
        try:
            d = RawClient(self.host, self.port, timeout=3)
            try:
                res = d.connect(session_id=s.session_id, passwd=s.passwd, timeout_ms=s.timeout)
                if res.timeout > 0:
                    d.close_session(timeout=2)
            finally:
                d.close()
        except (OSError, Closed):
            pass

    def on_cleanup(self, fn) -> None:
        self._cleanup.append(fn)

    # --------------------------------------------------------- normalizers
    def zx(self, z):
        if z is None:
            return None
        if z in (0, -1):
            return z
        if self.base is None:
            raise ScenarioError("ctx.zx() before ctx.begin()")
        return f"b{z - self.base:+d}"

    def sid(self, s):
        if s is None or s == 0:
            return s
        if s not in self._sids:
            self._sids[s] = f"S{len(self._sids) + 1}"
        return self._sids[s]

    def t(self, ms):
        if ms is None or ms == 0:
            return ms
        now = int(time.time() * 1000)
        if self.t_start_ms - 5000 <= ms <= now + 5000:
            return "T"
        return f"implausible:{ms}"

    @staticmethod
    def trel(a, b) -> str:
        return "<" if a < b else ("=" if a == b else ">")

    def stat(self, st):
        """Normalize a Stat (raw dict or kazoo ZnodeStat)."""
        if st is None:
            return None
        if not isinstance(st, dict):
            st = {
                "czxid": st.czxid,
                "mzxid": st.mzxid,
                "ctime": st.ctime,
                "mtime": st.mtime,
                "version": st.version,
                "cversion": st.cversion,
                "aversion": st.aversion,
                "ephemeralOwner": st.ephemeralOwner,
                "dataLength": st.dataLength,
                "numChildren": st.numChildren,
                "pzxid": st.pzxid,
            }
        return {
            "czxid": self.zx(st["czxid"]),
            "mzxid": self.zx(st["mzxid"]),
            "pzxid": self.zx(st["pzxid"]),
            "ctime": self.t(st["ctime"]),
            "mtime": self.t(st["mtime"]),
            # After a data change mtime may equal ctime when both fall in one
            # millisecond: only "<=" is guaranteed.  Strict advancement is
            # checked with explicit pauses (test_stat_lifecycle).
            "ctime?mtime": self.trel(st["ctime"], st["mtime"])
            if st["version"] == 0 or st["ctime"] > st["mtime"]
            else "<=",
            "version": st["version"],
            "cversion": st["cversion"],
            "aversion": st["aversion"],
            "ephemeralOwner": self.sid(st["ephemeralOwner"]),
            "dataLength": st["dataLength"],
            "numChildren": st["numChildren"],
        }

    # ------------------------------------------------------ raw reply views
    def reply(self, rep, parse=None):
        """Normalize a raw Reply: err name, zxid, and the parsed body."""
        out = {"err": err_name(rep.err), "zxid": self.zx(rep.zxid)}
        if rep.err == 0 and parse is not None:
            out["body"] = parse(rep.reader())
        elif rep.body:
            out["extra_body_len"] = len(rep.body)
        return out

    def r_stat(self, rep):
        return self.reply(rep, lambda r: self.stat(r.stat()))

    def r_create2(self, rep):
        return self.reply(rep, lambda r: {"path": r.string(), "stat": self.stat(r.stat())})

    def r_path(self, rep):
        return self.reply(rep, lambda r: r.string())

    def r_data(self, rep):
        def p(r):
            d = r.buffer()
            return {"data": None if d is None else d.decode("latin-1"), "stat": self.stat(r.stat())}

        return self.reply(rep, p)

    def r_children(self, rep, sort=True):
        def p(r):
            ch = r.strings()
            return sorted(ch) if (sort and ch is not None) else ch

        return self.reply(rep, p)

    def r_children2(self, rep):
        def p(r):
            ch = r.strings()
            return {"children": sorted(ch) if ch is not None else None, "stat": self.stat(r.stat())}

        return self.reply(rep, p)

    def r_acl(self, rep):
        return self.reply(rep, lambda r: {"acl": r.acls(), "stat": self.stat(r.stat())})

    def r_multi(self, rep):
        def norm(entry):
            e = dict(entry)
            if "stat" in e:
                e["stat"] = self.stat(e["stat"])
            if "data" in e and e["data"] is not None:
                e["data"] = e["data"].decode("latin-1")
            if e.get("children") is not None:
                e["children"] = sorted(e["children"])
            return e

        return self.reply(rep, lambda r: [norm(x) for x in rawclient.parse_multi_response(r)])

    def event(self, ev):
        if ev is None:
            return None
        return {
            "type": rawclient.EVENT_NAMES.get(ev.type, ev.type),
            "state": rawclient.STATE_NAMES.get(ev.state, ev.state),
            "path": ev.path,
            "zxid": self.zx(ev.zxid),
        }

    def events(self, evs):
        return [self.event(e) for e in evs]


# ---------------------------------------------------------------- kazoo glue
def attempt(fn, *args, **kw):
    """Call fn; return ("ok", result) or ("error", ExceptionClassName)."""
    try:
        return ("ok", fn(*args, **kw))
    except Exception as e:  # noqa: BLE001
        return ("error", type(e).__name__)


class EventRecorder:
    """Thread-safe collector for kazoo watch callbacks."""

    def __init__(self):
        self.items = []
        self.cond = threading.Condition()

    def __call__(self, ev):
        with self.cond:
            self.items.append({"type": ev.type, "state": ev.state, "path": ev.path})
            self.cond.notify_all()

    def wait(self, n=1, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.items) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return list(self.items)


# --------------------------------------------------------------- comparison
def deep_diff(a, b, path="$"):
    """List of one-line differences between two JSON-able values."""
    out = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            p = f"{path}.{k}"
            if k not in a:
                out.append(f"{p}: missing in ref, other={_short(b[k])}")
            elif k not in b:
                out.append(f"{p}: ref={_short(a[k])}, missing in other")
            else:
                out.extend(deep_diff(a[k], b[k], p))
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            out.append(f"{path}: length ref={len(a)} other={len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            out.extend(deep_diff(x, y, f"{path}[{i}]"))
        if len(a) != len(b):
            for i in range(min(len(a), len(b)), max(len(a), len(b))):
                if i < len(a):
                    out.append(f"{path}[{i}]: ref={_short(a[i])}, missing in other")
                else:
                    out.append(f"{path}[{i}]: missing in ref, other={_short(b[i])}")
    elif a != b or type(a) is not type(b):
        out.append(f"{path}: ref={_short(a)} other={_short(b)}")
    return out


def _short(v, n=200):
    s = json.dumps(v, sort_keys=True, default=str)
    return s if len(s) <= n else s[: n - 3] + "..."


def canonical(obs):
    """JSON round-trip: tuples become lists, keys are strings."""
    return json.loads(json.dumps(obs, sort_keys=True, default=str))


def run_scenario(server, role, name, scenario):
    ctx = Ctx(server, role, name)
    try:
        ctx.begin()
        # canonicalize before cleanup: cleanup (closing clients) must not
        # mutate lists the observation still references
        obs = canonical(scenario(ctx))
    finally:
        ctx.end()
    return obs


def compare(ref_server, other_server, name, scenario):
    try:
        ref = run_scenario(ref_server, "ref", name, scenario)
    except Exception:
        raise ScenarioError(
            f"scenario {name} failed against the reference ZooKeeper (a test bug):\n"
            + traceback.format_exc()
            + "\n"
            + ref_server.log_tail(40)
        )
    try:
        other = run_scenario(other_server, "other", name, scenario)
    except Exception:
        raise ScenarioError(
            f"scenario {name}: exception against {other_server.label}:\n"
            + traceback.format_exc()
            + "\nreference observation:\n"
            + json.dumps(ref, indent=1, sort_keys=True)
            + "\n"
            + other_server.log_tail(40)
        )
    if ref != other:
        diffs = deep_diff(ref, other)
        a = json.dumps(ref, indent=1, sort_keys=True).splitlines()
        b = json.dumps(other, indent=1, sort_keys=True).splitlines()
        udiff = "\n".join(
            difflib.unified_diff(a, b, "zookeeper(ref)", other_server.label, n=3, lineterm="")
        )
        raise ScenarioError(
            f"scenario {name}: observations differ ({len(diffs)} difference(s))\n"
            + "\n".join("  " + d for d in diffs[:40])
            + ("\n  ..." if len(diffs) > 40 else "")
            + "\n\nunified diff of the observations:\n"
            + udiff
        )
    return ref

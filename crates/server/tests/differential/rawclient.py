"""A minimal raw-socket ZooKeeper client (jute over TCP), built on ``struct``.

It does exactly what it is told: no retries, no reconnects, no ping thread
(unless asked), no interpretation.  Used by byte-level scenarios that kazoo
cannot express: handshake variants, arbitrary frames, reply headers with
their zxids, notification ordering relative to replies, closed connections.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass, field

# ----------------------------------------------------------------- constants
class Op:
    NOTIFICATION = 0
    CREATE = 1
    DELETE = 2
    EXISTS = 3
    GET_DATA = 4
    SET_DATA = 5
    GET_ACL = 6
    SET_ACL = 7
    GET_CHILDREN = 8
    SYNC = 9
    PING = 11
    GET_CHILDREN2 = 12
    CHECK = 13
    MULTI = 14
    CREATE2 = 15
    RECONFIG = 16
    CHECK_WATCHES = 17
    REMOVE_WATCHES = 18
    CREATE_CONTAINER = 19
    DELETE_CONTAINER = 20
    CREATE_TTL = 21
    MULTI_READ = 22
    AUTH = 100
    SET_WATCHES = 101
    SASL = 102
    GET_EPHEMERALS = 103
    GET_ALL_CHILDREN_NUMBER = 104
    SET_WATCHES2 = 105
    ADD_WATCH = 106
    WHO_AM_I = 107
    CREATE_SESSION = -10
    CLOSE_SESSION = -11
    ERROR = -1


class Xid:
    NOTIFICATION = -1
    PING = -2
    AUTH = -4
    SET_WATCHES = -8


ERR_NAMES = {
    0: "OK",
    -1: "SystemError",
    -2: "RuntimeInconsistency",
    -3: "DataInconsistency",
    -4: "ConnectionLoss",
    -5: "MarshallingError",
    -6: "Unimplemented",
    -7: "OperationTimeout",
    -8: "BadArguments",
    -13: "NewConfigNoQuorum",
    -14: "ReconfigInProgress",
    -15: "UnknownSession",
    -100: "APIError",
    -101: "NoNode",
    -102: "NoAuth",
    -103: "BadVersion",
    -108: "NoChildrenForEphemerals",
    -110: "NodeExists",
    -111: "NotEmpty",
    -112: "SessionExpired",
    -113: "InvalidCallback",
    -114: "InvalidACL",
    -115: "AuthFailed",
    -118: "SessionMoved",
    -119: "NotReadOnly",
    -120: "EphemeralOnLocalSession",
    -121: "NoWatcher",
    -122: "RequestTimeout",
    -123: "ReconfigDisabled",
    -124: "SessionClosedRequireSasl",
    -125: "QuotaExceeded",
    -127: "Throttled",
}


def err_name(code: int) -> str:
    return ERR_NAMES.get(code, f"err{code}")


class Perm:
    READ = 1
    WRITE = 2
    CREATE = 4
    DELETE = 8
    ADMIN = 16
    ALL = 31


class Mode:  # CreateMode flags
    PERSISTENT = 0
    EPHEMERAL = 1
    PERSISTENT_SEQUENTIAL = 2
    EPHEMERAL_SEQUENTIAL = 3
    CONTAINER = 4
    PERSISTENT_WITH_TTL = 5
    PERSISTENT_SEQUENTIAL_WITH_TTL = 6


class WatcherType:
    CHILDREN = 1
    DATA = 2
    ANY = 3
    PERSISTENT = 4
    PERSISTENT_RECURSIVE = 5


class AddWatchMode:
    PERSISTENT = 0
    PERSISTENT_RECURSIVE = 1


EVENT_NAMES = {
    -1: "None",
    1: "NodeCreated",
    2: "NodeDeleted",
    3: "NodeDataChanged",
    4: "NodeChildrenChanged",
    5: "DataWatchRemoved",
    6: "ChildWatchRemoved",
    7: "PersistentWatchRemoved",
}
STATE_NAMES = {
    -1: "Unknown",
    0: "Disconnected",
    3: "SyncConnected",
    4: "AuthFailed",
    5: "ConnectedReadOnly",
    6: "SaslAuthenticated",
    -112: "Expired",
    7: "Closed",
}

OPEN_ACL_UNSAFE = [(Perm.ALL, "world", "anyone")]


# ------------------------------------------------------------------- writer
class W:
    """Jute writer."""

    def __init__(self):
        self.parts: list[bytes] = []

    def int(self, v: int) -> "W":
        self.parts.append(struct.pack(">i", v))
        return self

    def long(self, v: int) -> "W":
        self.parts.append(struct.pack(">q", v))
        return self

    def bool(self, v: bool) -> "W":
        self.parts.append(b"\1" if v else b"\0")
        return self

    def buffer(self, v: bytes | None) -> "W":
        if v is None:
            return self.int(-1)
        self.int(len(v))
        self.parts.append(bytes(v))
        return self

    def string(self, v: str | None) -> "W":
        return self.buffer(None if v is None else v.encode("utf-8"))

    def raw(self, b: bytes) -> "W":
        self.parts.append(b)
        return self

    def strings(self, vs: list[str] | None) -> "W":
        if vs is None:
            return self.int(-1)
        self.int(len(vs))
        for v in vs:
            self.string(v)
        return self

    def acls(self, acls) -> "W":
        if acls is None:
            return self.int(-1)
        self.int(len(acls))
        for perms, scheme, ident in acls:
            self.int(perms).string(scheme).string(ident)
        return self

    def bytes(self) -> bytes:
        return b"".join(self.parts)


# ------------------------------------------------------------------- reader
class R:
    """Jute reader."""

    def __init__(self, data: bytes, off: int = 0):
        self.data = data
        self.off = off

    def remaining(self) -> int:
        return len(self.data) - self.off

    def int(self) -> int:
        (v,) = struct.unpack_from(">i", self.data, self.off)
        self.off += 4
        return v

    def long(self) -> int:
        (v,) = struct.unpack_from(">q", self.data, self.off)
        self.off += 8
        return v

    def bool(self) -> bool:
        v = self.data[self.off]
        self.off += 1
        return v != 0

    def buffer(self) -> bytes | None:
        n = self.int()
        if n < 0:
            return None
        v = self.data[self.off : self.off + n]
        if len(v) != n:
            raise ValueError("short buffer")
        self.off += n
        return v

    def string(self) -> str | None:
        b = self.buffer()
        return None if b is None else b.decode("utf-8", errors="replace")

    def strings(self) -> list[str] | None:
        n = self.int()
        if n < 0:
            return None
        return [self.string() for _ in range(n)]

    def stat(self) -> dict:
        return dict(
            czxid=self.long(),
            mzxid=self.long(),
            ctime=self.long(),
            mtime=self.long(),
            version=self.int(),
            cversion=self.int(),
            aversion=self.int(),
            ephemeralOwner=self.long(),
            dataLength=self.int(),
            numChildren=self.int(),
            pzxid=self.long(),
        )

    def acls(self) -> list | None:
        n = self.int()
        if n < 0:
            return None
        return [(self.int(), self.string(), self.string()) for _ in range(n)]


# ------------------------------------------------------------- request bodies
def create_body(path, data=b"", acl=OPEN_ACL_UNSAFE, flags=0, ttl=None) -> bytes:
    w = W().string(path).buffer(data).acls(acl).int(flags)
    if ttl is not None:
        w.long(ttl)
    return w.bytes()


def path_version(path, version=-1) -> bytes:
    return W().string(path).int(version).bytes()


def path_watch(path, watch=False) -> bytes:
    return W().string(path).bool(watch).bytes()


def path_only(path) -> bytes:
    return W().string(path).bytes()


def set_data_body(path, data, version=-1) -> bytes:
    return W().string(path).buffer(data).int(version).bytes()


def set_acl_body(path, acl, version=-1) -> bytes:
    return W().string(path).acls(acl).int(version).bytes()


def path_type(path, wtype) -> bytes:
    return W().string(path).int(wtype).bytes()


def add_watch_body(path, mode) -> bytes:
    return W().string(path).int(mode).bytes()


def auth_body(scheme, auth: bytes, typ=0) -> bytes:
    return W().int(typ).string(scheme).buffer(auth).bytes()


def set_watches_body(rel_zxid, data=(), exist=(), child=(), persistent=None, recursive=None) -> bytes:
    w = W().long(rel_zxid).strings(list(data)).strings(list(exist)).strings(list(child))
    if persistent is not None or recursive is not None:
        w.strings(list(persistent or [])).strings(list(recursive or []))
    return w.bytes()


def multi_body(ops) -> bytes:
    """ops: list of (op_type, body_bytes)."""
    w = W()
    for typ, body in ops:
        w.int(typ).bool(False).int(-1).raw(body)
    w.int(-1).bool(True).int(-1)
    return w.bytes()


def parse_multi_response(r: R, read_op=False) -> list[dict]:
    out = []
    while True:
        typ = r.int()
        done = r.bool()
        err = r.int()
        if done:
            break
        if typ == Op.ERROR:
            out.append({"type": "error", "err": err_name(r.int())})
        elif typ in (Op.CREATE, Op.CREATE_CONTAINER):
            out.append({"type": "create", "path": r.string()})
        elif typ in (Op.CREATE2, Op.CREATE_TTL):
            out.append({"type": "create2", "path": r.string(), "stat": r.stat()})
        elif typ == Op.DELETE:
            out.append({"type": "delete"})
        elif typ == Op.SET_DATA:
            out.append({"type": "setData", "stat": r.stat()})
        elif typ == Op.CHECK:
            out.append({"type": "check"})
        elif typ == Op.GET_DATA:
            out.append({"type": "getData", "data": r.buffer(), "stat": r.stat()})
        elif typ == Op.GET_CHILDREN:
            out.append({"type": "getChildren", "children": r.strings()})
        else:
            out.append({"type": f"op{typ}", "err": err})
            break
    return out


# ------------------------------------------------------------------- records
@dataclass
class Reply:
    xid: int
    zxid: int
    err: int
    body: bytes
    at: float = 0.0

    @property
    def errname(self) -> str:
        return err_name(self.err)

    def reader(self) -> R:
        return R(self.body)


@dataclass
class Event:
    type: int
    state: int
    path: str
    zxid: int

    def short(self) -> str:
        return f"{EVENT_NAMES.get(self.type, self.type)}:{self.path}"


@dataclass
class ConnectResult:
    protocol_version: int
    timeout: int
    session_id: int
    passwd: bytes
    read_only: bool | None
    length: int


class Closed(Exception):
    """The server closed the connection (EOF or reset)."""


class RawClient:
    def __init__(self, host: str, port: int, timeout: float = 5.0):
        self.host = host
        self.port = port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.xid = 0
        self.session: ConnectResult | None = None
        self.events: list[Event] = []  # notifications seen while waiting for replies
        self.log: list = []  # everything received, in order: Reply or Event
        self.closed = False
        self._send_lock = threading.Lock()
        self._keepalive: threading.Thread | None = None
        self._keepalive_stop = threading.Event()

    # --------------------------------------------------------------- framing
    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, payload: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def start_keepalive(self, interval: float | None = None) -> None:
        """Send pings from a background thread (sending only; the ping
        replies are dropped by read_message while keepalive is on)."""
        if interval is None:
            interval = max(0.05, (self.session.timeout if self.session else 30000) / 1000.0 / 4)

        def run():
            while not self._keepalive_stop.wait(interval):
                try:
                    self.send_frame(struct.pack(">ii", Xid.PING, Op.PING))
                except OSError:
                    return

        self._keepalive = threading.Thread(target=run, daemon=True)
        self._keepalive.start()

    def stop_keepalive(self) -> None:
        self._keepalive_stop.set()
        if self._keepalive:
            self._keepalive.join(2)
            self._keepalive = None
        self._keepalive_stop = threading.Event()

    def _fill(self, n: int, timeout: float | None) -> None:
        if timeout is not None:
            self.sock.settimeout(timeout)
        while len(self.buf) < n:
            try:
                b = self.sock.recv(65536)
            except ConnectionResetError:
                self.closed = True
                raise Closed("connection reset")
            if not b:
                self.closed = True
                raise Closed("eof")
            self.buf += b

    def read_frame(self, timeout: float | None = 5.0) -> bytes:
        self._fill(4, timeout)
        (n,) = struct.unpack(">i", self.buf[:4])
        self._fill(4 + n, timeout)
        frame = self.buf[4 : 4 + n]
        self.buf = self.buf[4 + n :]
        return frame

    # ------------------------------------------------------------- handshake
    def connect(
        self,
        timeout_ms: int = 30000,
        session_id: int = 0,
        passwd: bytes = b"\0" * 16,
        last_zxid: int = 0,
        read_only: bool | None = False,
        protocol_version: int = 0,
    ) -> ConnectResult:
        w = W().int(protocol_version).long(last_zxid).int(timeout_ms).long(session_id).buffer(passwd)
        if read_only is not None:
            w.bool(read_only)
        self.send_frame(w.bytes())
        frame = self.read_frame()
        r = R(frame)
        res = ConnectResult(r.int(), r.int(), r.long(), r.buffer(), None, len(frame))
        if r.remaining() >= 1:
            res.read_only = r.bool()
        self.session = res
        return res

    # -------------------------------------------------------------- requests
    def next_xid(self) -> int:
        self.xid += 1
        return self.xid

    def send(self, op: int, body: bytes = b"", xid: int | None = None) -> int:
        if xid is None:
            xid = self.next_xid()
        self.send_frame(struct.pack(">ii", xid, op) + body)
        return xid

    def read_message(self, timeout: float | None = 5.0):
        frame = self.read_frame(timeout)
        xid, zxid, err = struct.unpack(">iqi", frame[:16])
        body = frame[16:]
        if xid == Xid.NOTIFICATION:
            r = R(body)
            ev = Event(r.int(), r.int(), r.string(), zxid)
            self.events.append(ev)
            self.log.append(ev)
            return ev
        rep = Reply(xid, zxid, err, body, time.monotonic())
        if xid == Xid.PING and self._keepalive is not None:
            return rep  # keepalive noise: not logged
        self.log.append(rep)
        return rep

    def wait_reply(self, xid: int, timeout: float = 5.0) -> Reply:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply for xid {xid}")
            m = self.read_message(left)
            if isinstance(m, Reply) and m.xid == xid:
                return m

    def call(self, op: int, body: bytes = b"", xid: int | None = None, timeout: float = 5.0) -> Reply:
        xid = self.send(op, body, xid)
        return self.wait_reply(xid, timeout)

    def wait_event(self, timeout: float = 5.0) -> Event | None:
        """Next notification (already buffered or arriving within timeout)."""
        for i, ev in enumerate(self.events):
            self.events.pop(i)
            return ev
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                m = self.read_message(left)
            except socket.timeout:
                return None
            if isinstance(m, Event):
                self.events.remove(m)
                return m

    def drain_events(self, wait: float = 0.3) -> list[Event]:
        out = list(self.events)
        self.events.clear()
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                m = self.read_message(left)
            except socket.timeout:
                break
            if isinstance(m, Event):
                self.events.remove(m)
                out.append(m)
        return out

    def is_closed_by_server(self, timeout: float = 3.0) -> bool:
        """True if the server closes the connection within timeout.

        Anything received in the meantime is kept in ``self.log``.
        """
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self.read_message(left)
            except Closed:
                return True
            except socket.timeout:
                return False
            except OSError:
                return True

    # -------------------------------------------------------- convenience ops
    def ping(self) -> Reply:
        return self.call(Op.PING, b"", xid=Xid.PING)

    def create(self, path, data=b"", acl=OPEN_ACL_UNSAFE, flags=0) -> Reply:
        return self.call(Op.CREATE, create_body(path, data, acl, flags))

    def create2(self, path, data=b"", acl=OPEN_ACL_UNSAFE, flags=0) -> Reply:
        return self.call(Op.CREATE2, create_body(path, data, acl, flags))

    def delete(self, path, version=-1) -> Reply:
        return self.call(Op.DELETE, path_version(path, version))

    def exists(self, path, watch=False) -> Reply:
        return self.call(Op.EXISTS, path_watch(path, watch))

    def get_data(self, path, watch=False) -> Reply:
        return self.call(Op.GET_DATA, path_watch(path, watch))

    def set_data(self, path, data, version=-1) -> Reply:
        return self.call(Op.SET_DATA, set_data_body(path, data, version))

    def get_children(self, path, watch=False) -> Reply:
        return self.call(Op.GET_CHILDREN, path_watch(path, watch))

    def get_children2(self, path, watch=False) -> Reply:
        return self.call(Op.GET_CHILDREN2, path_watch(path, watch))

    def get_acl(self, path) -> Reply:
        return self.call(Op.GET_ACL, path_only(path))

    def set_acl(self, path, acl, version=-1) -> Reply:
        return self.call(Op.SET_ACL, set_acl_body(path, acl, version))

    def sync(self, path) -> Reply:
        return self.call(Op.SYNC, path_only(path))

    def add_auth(self, scheme, auth: bytes) -> Reply:
        return self.call(Op.AUTH, auth_body(scheme, auth), xid=Xid.AUTH)

    def multi(self, ops) -> Reply:
        return self.call(Op.MULTI, multi_body(ops))

    def multi_read(self, ops) -> Reply:
        return self.call(Op.MULTI_READ, multi_body(ops))

    def close_session(self, timeout: float = 5.0) -> Reply | None:
        try:
            return self.call(Op.CLOSE_SESSION, b"", timeout=timeout)
        except (Closed, TimeoutError, OSError):
            return None

    def close(self) -> None:
        self.stop_keepalive()
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

"""Wire-level behaviour: handshake variants, session re-attach, bad
passwords, lastZxidSeen ahead, malformed frames, jute.maxbuffer, pings,
pipelining, closeSession."""

import socket
import struct
import time

from rawclient import Closed, Mode, Op, R, RawClient, W, Xid, create_body, path_watch, set_data_body


def conn_view(ctx, res):
    """Normalized ConnectResponse."""
    return {
        "protocol_version": res.protocol_version,
        "timeout": res.timeout,
        "session": ctx.sid(res.session_id),
        "passwd_len": None if res.passwd is None else len(res.passwd),
        "passwd_zero": res.passwd is not None and not any(res.passwd),
        "read_only": res.read_only,
        "frame_len": res.length,
    }


def test_handshake_variants(diff):
    def scenario(ctx):
        obs = {}
        for label, kw in [
            ("with_readonly_false", dict(read_only=False)),
            ("with_readonly_true", dict(read_only=True)),
            ("without_readonly_byte", dict(read_only=None)),
            ("timeout_10000", dict(timeout_ms=10000)),
            ("timeout_0", dict(timeout_ms=0)),
            ("timeout_negative", dict(timeout_ms=-5)),
            ("timeout_1", dict(timeout_ms=1)),
            ("timeout_huge", dict(timeout_ms=2**31 - 1)),
            ("protocol_version_1", dict(protocol_version=1)),
            ("passwd_short", dict(passwd=b"abc")),
            ("passwd_null", dict(passwd=None)),
        ]:
            c = ctx.raw(connect=False)
            try:
                res = c.connect(**kw)
                row = conn_view(ctx, res)
                row["usable"] = ctx.reply(c.exists("/"))["err"]
            except Exception as e:  # noqa: BLE001
                row = {"exception": type(e).__name__}
            obs[label] = row
        # the password is stable per session and differs between sessions
        a = ctx.raw(connect=False).connect()
        b = ctx.raw(connect=False).connect()
        obs["passwords_differ"] = a.passwd != b.passwd
        obs["session_ids_differ"] = a.session_id != b.session_id
        return obs

    diff.check(scenario)


def test_session_reattach(diff):
    """Reconnect with session id + password keeps the session (ephemerals,
    watches); the old connection is closed by the server."""

    def scenario(ctx):
        r = ctx.root
        c1 = ctx.raw(connect=False)
        s1 = c1.connect(timeout_ms=10000)
        c1.create(r)
        c1.create(r + "/eph", flags=Mode.EPHEMERAL)
        c1.get_data(r, watch=True)
        c2 = ctx.raw(connect=False)
        s2 = c2.connect(timeout_ms=10000, session_id=s1.session_id, passwd=s1.passwd)
        obs = {"first": conn_view(ctx, s1), "reattach": conn_view(ctx, s2)}
        obs["same_passwd"] = s1.passwd == s2.passwd
        obs["old_conn_closed"] = c1.is_closed_by_server(2.0)
        obs["eph_owner"] = ctx.r_stat(c2.exists(r + "/eph"))
        obs["whoami_after"] = ctx.reply(c2.call(Op.WHO_AM_I, b""))["err"]
        # watches registered on the first connection belong to the session:
        # ZooKeeper keeps them per connection, so they are gone (clients
        # re-register with setWatches)
        other = ctx.raw()
        other.set_data(r, b"changed")
        obs["events_on_new_conn"] = ctx.events(c2.drain_events(0.5))
        # the reattached session keeps its ephemeral until closed
        c2.close_session()
        obs["after_close"] = ctx.reply(other.exists(r + "/eph"))["err"]
        return obs

    diff.check(scenario)


def test_bad_session_credentials(diff):
    """Wrong password, unknown session id, closed session: expired
    handshake (timeOut 0) and connection closed.  Any reconnect attempt that
    names a live session also closes that session's current connection."""

    def scenario(ctx):
        base = ctx.raw(connect=False)
        s = base.connect(timeout_ms=10000)
        obs = {}
        cases = {
            "wrong_password": dict(session_id=s.session_id, passwd=b"\x01" * 16),
            "short_password": dict(session_id=s.session_id, passwd=b"\x01"),
            "unknown_session": dict(session_id=s.session_id ^ 0x5A5A5A, passwd=s.passwd),
        }
        for label, kw in cases.items():
            c = RawClient(ctx.host, ctx.port)
            try:
                res = c.connect(timeout_ms=10000, **kw)
                row = conn_view(ctx, res)
                row["closed"] = c.is_closed_by_server(2.0)
            except Closed:
                row = {"closed_without_response": True}
            c.close()
            try:
                row["original_connection"] = ctx.reply(base.exists("/"))["err"]
            except (Closed, OSError):
                row["original_connection"] = "closed"
                base.close()
                base = ctx.raw(connect=False)
                res = base.connect(timeout_ms=10000, session_id=s.session_id, passwd=s.passwd)
                row["session_still_valid"] = conn_view(ctx, res)
            obs[label] = row
        base.close_session()
        c = RawClient(ctx.host, ctx.port)
        try:
            res = c.connect(timeout_ms=10000, session_id=s.session_id, passwd=s.passwd)
            row = conn_view(ctx, res)
            row["closed"] = c.is_closed_by_server(2.0)
        except Closed:
            row = {"closed_without_response": True}
        c.close()
        obs["closed_session"] = row
        return obs

    diff.check(scenario)


def test_last_zxid_seen_ahead(diff):
    """A client that has seen a zxid newer than the server's is refused:
    the connection is closed without a ConnectResponse."""

    def scenario(ctx):
        obs = {}
        probe = ctx.raw()
        for label, delta in [("equal", 0), ("ahead_by_1", 1), ("ahead_by_2", 2), ("far_ahead", 1 << 40)]:
            z = probe.exists("/").zxid + delta
            c = RawClient(ctx.host, ctx.port)
            try:
                res = c.connect(last_zxid=z)
                row = conn_view(ctx, res)
                row["closed"] = c.is_closed_by_server(1.0)
                if not row["closed"]:
                    c.close_session()  # no session may outlive its scenario
            except Closed:
                row = {"closed_without_response": True}
            except socket.timeout:
                row = {"no_response_but_open": True}
            c.close()
            obs[label] = row
        obs["server_ok"] = ctx.reply(probe.exists("/"))["err"]
        return obs

    diff.check(scenario)


def send_and_watch(ctx, frames, then_exists=True):
    """Send raw bytes on a fresh connected socket; report what comes back."""
    c = ctx.raw()
    for f in frames:
        c.send_raw(f)
    out = {}
    if then_exists:
        try:
            x = c.send(Op.EXISTS, path_watch("/"))
            rep = c.wait_reply(x, timeout=2)
            out["followup"] = ctx.reply(rep)["err"]
        except Closed:
            out["followup"] = "closed"
        except (socket.timeout, TimeoutError):
            out["followup"] = "timeout"
        except OSError as e:
            out["followup"] = "oserror"
    out["closed"] = c.closed or c.is_closed_by_server(1.5)
    out["received"] = [
        {"xid": m.xid, "err": m.errname} if hasattr(m, "xid") else ctx.event(m) for m in c.log
    ]
    return out


def test_malformed_frames(diff):
    """Malformed frames close that connection only; others keep working."""

    def scenario(ctx):
        bystander = ctx.raw()
        obs = {}
        cases = {
            "negative_length": struct.pack(">i", -1),
            "zero_length": struct.pack(">i", 0),
            "short_header": struct.pack(">i", 4) + struct.pack(">i", 7),
            "truncated_create": struct.pack(">i", 14) + struct.pack(">ii", 5, Op.CREATE) + b"\x00\x00\x00\x10/a",
            "create_bad_string_len": struct.pack(">i", 12) + struct.pack(">ii", 5, Op.CREATE) + struct.pack(">i", 1 << 30),
            "getdata_no_body": struct.pack(">i", 8) + struct.pack(">ii", 5, Op.GET_DATA),
            "exists_extra_bytes": struct.pack(">i", 8 + 4 + 1 + 1 + 7)
            + struct.pack(">ii", 5, Op.EXISTS)
            + W().string("/").bool(False).bytes()
            + b"garbage",
            "ping_with_body": struct.pack(">i", 12) + struct.pack(">ii", Xid.PING, Op.PING) + b"abcd",
            "huge_length": struct.pack(">i", 0x7FFFFFFF),
        }
        for label, frame in cases.items():
            obs[label] = send_and_watch(ctx, [frame])
        obs["bystander"] = ctx.reply(bystander.exists("/"))["err"]
        return obs

    diff.check(scenario)


def test_malformed_handshake(diff):
    def scenario(ctx):
        obs = {}
        cases = {
            "short_connect": struct.pack(">i", 8) + b"\x00" * 8,
            "negative_length": struct.pack(">i", -4),
            "huge_length": struct.pack(">i", 1 << 30),
            "request_before_connect": struct.pack(">i", 13) + struct.pack(">ii", 1, Op.EXISTS) + W().string("/").bool(False).bytes(),
            "connect_bad_passwd_len": struct.pack(">i", 28) + struct.pack(">iqiq", 0, 0, 10000, 0) + struct.pack(">i", 9999),
            "http_get": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        }
        for label, data in cases.items():
            c = RawClient(ctx.host, ctx.port)
            c.send_raw(data)
            received = []
            try:
                f = c.read_frame(timeout=2)
                received.append(len(f))
                closed = c.is_closed_by_server(1.5)
            except Closed:
                closed = True
            except (socket.timeout, TimeoutError):
                closed = False
            obs[label] = {"frames": received, "closed": closed}
            c.close()
        probe = ctx.raw()
        obs["server_ok"] = ctx.reply(probe.exists("/"))["err"]
        return obs

    diff.check(scenario)


def test_ping_and_pipelining(diff):
    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        obs = {}
        rep = c.ping()
        obs["ping"] = {"xid": rep.xid, "err": rep.errname, "zxid": ctx.zx(rep.zxid), "body_len": len(rep.body)}
        c.create(r)
        rep = c.ping()
        obs["ping_after_write"] = {"xid": rep.xid, "err": rep.errname, "zxid": ctx.zx(rep.zxid)}
        # ping with a normal xid
        c.send(Op.PING, b"", xid=4242)
        rep = c.read_message(3)
        obs["ping_normal_xid"] = {"xid": rep.xid, "err": rep.errname, "zxid": ctx.zx(rep.zxid)}
        # 60 pipelined requests (mixed reads/writes): replies in order
        xids = []
        for i in range(20):
            xids.append(c.send(Op.CREATE, create_body(f"{r}/n{i}", b"")))
            xids.append(c.send(Op.GET_DATA, path_watch(f"{r}/n{i}")))
            xids.append(c.send(Op.EXISTS, path_watch(f"{r}/missing{i}")))
        c.wait_reply(xids[-1], timeout=10)
        replies = [m for m in c.log if hasattr(m, "xid") and m.xid in set(xids)]
        obs["pipelined_order_ok"] = [m.xid for m in replies] == xids
        obs["pipelined"] = [(m.errname, ctx.zx(m.zxid)) for m in replies]
        # xids need not be increasing: the server echoes whatever it gets
        for x in (0, -100, 2**31 - 1, 7, 7):
            rep = c.call(Op.EXISTS, path_watch("/"), xid=x)
            obs.setdefault("odd_xids", []).append(rep.xid)
        return obs

    diff.check(scenario)


def test_close_session(diff):
    def scenario(ctx):
        r = ctx.root
        w = ctx.raw()
        c = ctx.raw()
        c.create(r)
        c.create(r + "/e1", flags=Mode.EPHEMERAL)
        c.create(r + "/e2", flags=Mode.EPHEMERAL_SEQUENTIAL)
        w.get_children(r, watch=True)
        w.exists(r + "/e1", watch=True)
        rep = c.close_session()
        obs = {"close_reply": ctx.reply(rep) if rep else None}
        obs["closed_after"] = c.is_closed_by_server(2.0)
        ev = w.drain_events(0.5)
        obs["events"] = sorted((e.type, e.path) for e in ev)
        obs["children"] = ctx.r_children2(w.get_children2(r))
        obs["zxid"] = ctx.zxid_now()
        # A request pipelined right behind closeSession races with the close
        # in ZooKeeper itself (SessionExpired reply or not), so it is not
        # observed; only the close reply and the close of the connection.
        d = ctx.raw()
        x = d.send(Op.CLOSE_SESSION, b"")
        rep = d.wait_reply(x)
        obs["second_close"] = {
            "reply": ctx.reply(rep),
            "closed": d.is_closed_by_server(2.0),
        }
        return obs

    diff.check(scenario)


MAXBUF = 100000


def test_jute_maxbuffer(configured):
    """Requests over jute.maxbuffer close that connection; others continue."""
    d = configured({"jute.maxbuffer": str(MAXBUF)})

    def scenario(ctx):
        r = ctx.root
        bystander = ctx.raw()
        bystander.create(r)
        obs = {}
        # frame = 8 (header) + 4 + len(path) + 4 + n (data) + 4 (version)
        overhead = 8 + 4 + len(r.encode()) + 4 + 4
        for label, n in [
            ("data_90k", 90000),
            ("frame_maxbuf_minus_1", MAXBUF - 1 - overhead),
            ("frame_maxbuf", MAXBUF - overhead),
            ("frame_maxbuf_plus_1", MAXBUF + 1 - overhead),
            ("data_maxbuf", MAXBUF),
            ("data_maxbuf_plus_1024", MAXBUF + 1024),
            ("data_maxbuf_plus_2000", MAXBUF + 2000),
            ("data_200k", 200000),
        ]:
            c = ctx.raw()
            try:
                rep = c.set_data(r, b"d" * n)
                row = {"reply": ctx.reply(rep)}
            except Closed:
                row = {"reply": "closed"}
            except (socket.timeout, TimeoutError):
                row = {"reply": "timeout"}
            row["closed"] = c.closed or c.is_closed_by_server(1.0)
            obs[label] = row
            obs[label + "_bystander"] = ctx.reply(bystander.exists(r))["err"]
        # frame length alone over the limit (no body sent)
        c = ctx.raw()
        c.send_raw(struct.pack(">i", MAXBUF + 5000))
        obs["length_only_over"] = c.is_closed_by_server(2.0)
        obs["final_len"] = ctx.reply(bystander.exists(r), lambda rd: rd.stat()["dataLength"])
        return obs

    d.check(scenario)


def test_session_timeout_negotiation(diff):
    """Default tickTime 2000: min 4000 (2x), max 40000 (20x)."""

    def scenario(ctx):
        out = {}
        for t in (1, 1000, 3999, 4000, 4001, 10000, 39999, 40000, 40001, 100000):
            c = ctx.raw(connect=False)
            out[str(t)] = c.connect(timeout_ms=t).timeout
        return out

    diff.check(scenario)


def test_session_timeout_config(configured):
    d = configured({"tickTime": "500", "minSessionTimeout": "3000", "maxSessionTimeout": "7000"})

    def scenario(ctx):
        out = {}
        for t in (1, 1000, 2999, 3000, 5000, 7000, 7001, 100000):
            c = ctx.raw(connect=False)
            out[str(t)] = c.connect(timeout_ms=t).timeout
        return out

    d.check(scenario)


def test_session_timeout_tick_only(configured):
    d = configured({"tickTime": "300"})

    def scenario(ctx):
        out = {}
        for t in (1, 599, 600, 601, 5999, 6000, 6001, 100000):
            c = ctx.raw(connect=False)
            out[str(t)] = c.connect(timeout_ms=t).timeout
        return out

    d.check(scenario)

"""Session lifecycle with short timeouts: expiry removes ephemerals and
fires watches, pings keep sessions alive, re-attach within the timeout."""

import time

from rawclient import Closed, Mode, Op, RawClient

FAST = {"tickTime": "200"}  # sessions between 400 ms and 4 s


def wait_gone(c, path, limit=8.0):
    deadline = time.time() + limit
    while time.time() < deadline:
        if c.exists(path).err != 0:
            return True
        time.sleep(0.05)
    return False


def test_session_expiry(configured):
    d = configured(FAST)

    def scenario(ctx):
        r = ctx.root
        w = ctx.raw(keepalive=True, timeout_ms=4000)
        w.create(r)
        a = ctx.raw(connect=False)
        sa = a.connect(timeout_ms=400)
        ctx.sid(sa.session_id)
        obs = {"negotiated": sa.timeout}
        a.create(r + "/e1", flags=Mode.EPHEMERAL)
        a.create(r + "/es-", flags=Mode.EPHEMERAL_SEQUENTIAL)
        a.create(r + "/p")  # persistent: survives
        a.exists(r + "/x", watch=True)
        w.exists(r + "/e1", watch=True)
        w.get_children(r, watch=True)
        w.get_data(r + "/p", watch=True)
        z_before = ctx.zxid_now()
        t0 = time.time()
        gone = wait_gone(w, r + "/e1")
        elapsed = time.time() - t0
        obs["ephemeral_removed"] = gone
        obs["expired_in_time"] = elapsed < 3.0
        time.sleep(0.2)
        # one closeSession txn deletes all the session's ephemerals; their
        # order (hence the order of the events) is hash order in ZooKeeper
        obs["watch_events"] = sorted(ctx.events(w.drain_events(0.3)), key=lambda e: (e["path"], e["type"]))
        obs["children_after"] = ctx.r_children2(w.get_children2(r))
        obs["zxid_before_expiry"] = z_before
        obs["zxid_after_expiry"] = ctx.zxid_now()
        obs["expired_client_closed"] = a.is_closed_by_server(1.0)
        obs["expired_client_received"] = [
            ctx.event(m) if hasattr(m, "path") else {"xid": m.xid, "err": m.errname}
            for m in a.log
            if not hasattr(m, "xid") or m.xid > 3
        ]
        a.close()
        b = RawClient(ctx.host, ctx.port)
        try:
            res = b.connect(timeout_ms=400, session_id=sa.session_id, passwd=sa.passwd)
            obs["reconnect_after_expiry"] = {"timeout": res.timeout, "session": ctx.sid(res.session_id)}
            obs["reconnect_closed"] = b.is_closed_by_server(1.0)
        except Closed:
            obs["reconnect_after_expiry"] = "closed"
        b.close()
        return obs

    d.check(scenario)


def test_pings_keep_session_alive(configured):
    d = configured(FAST)

    def scenario(ctx):
        r = ctx.root
        w = ctx.raw(keepalive=True, timeout_ms=4000)
        w.create(r)
        a = ctx.raw(connect=False)
        sa = a.connect(timeout_ms=400)
        a.create(r + "/e", flags=Mode.EPHEMERAL)
        # explicit pings every 100 ms for 1.5 s (> 3 session timeouts)
        replies = []
        for _ in range(15):
            time.sleep(0.1)
            rep = a.ping()
            replies.append((rep.xid, rep.errname))
        obs = {"pings": sorted(set(replies)), "alive_after_pings": ctx.reply(w.exists(r + "/e"))["err"]}
        # other requests count as activity too
        for _ in range(10):
            time.sleep(0.1)
            a.exists("/")
        obs["alive_after_reads"] = ctx.reply(w.exists(r + "/e"))["err"]
        # drop the socket (not the session): the ephemeral stays until expiry
        a.close()
        obs["right_after_socket_close"] = ctx.reply(w.exists(r + "/e"))["err"]
        # re-attach within the timeout: same session, ephemeral kept
        b = ctx.raw(connect=False)
        res = b.connect(timeout_ms=400, session_id=sa.session_id, passwd=sa.passwd)
        obs["reattach"] = {"timeout": res.timeout, "same": res.session_id == sa.session_id}
        for _ in range(10):
            time.sleep(0.1)
            b.ping()
        obs["after_reattach"] = ctx.r_stat(w.exists(r + "/e"))
        b.close()
        obs["expired_later"] = wait_gone(w, r + "/e")
        return obs

    d.check(scenario)


def test_expiry_fires_watches_of_other_sessions_only(configured):
    """Watches set by the expiring session itself are dropped with it."""
    d = configured(FAST)

    def scenario(ctx):
        r = ctx.root
        w = ctx.raw(keepalive=True, timeout_ms=4000)
        w.create(r)
        w.create(r + "/shared", b"s")
        a = ctx.raw(connect=False)
        a.connect(timeout_ms=400)
        a.get_data(r + "/shared", watch=True)
        a.create(r + "/eph", flags=Mode.EPHEMERAL)
        wait_gone(w, r + "/eph")
        w.set_data(r + "/shared", b"changed")
        time.sleep(0.3)
        return {
            "a_received_after_handshake": [
                ctx.event(m) if hasattr(m, "path") else m.xid for m in a.log if not hasattr(m, "xid") or m.xid > 2
            ],
            "a_closed": a.is_closed_by_server(1.0),
        }

    d.check(scenario)


def test_kazoo_session_expiry_state(configured):
    """kazoo sees LOST after its session expires while disconnected."""
    d = configured(FAST)

    def scenario(ctx):
        from harness import attempt

        r = ctx.root
        w = ctx.raw(keepalive=True, timeout_ms=4000)
        w.create(r)
        k = ctx.kazoo(timeout=0.4, connection_retry=dict(max_tries=-1, delay=3.0, max_delay=3.0, max_jitter=0.01))
        states = []
        k.add_listener(lambda s: states.append(str(s)))
        k.create(r + "/e", ephemeral=True)
        sid, pw = k.client_id
        # steal the connection, then let the session expire before kazoo
        # comes back (kazoo waits 3 s before reconnecting)
        thief = RawClient(ctx.host, ctx.port)
        thief.connect(timeout_ms=400, session_id=sid, passwd=pw)
        thief.close()
        gone = wait_gone(w, r + "/e")
        deadline = time.time() + 10
        while time.time() < deadline and "LOST" not in states:
            time.sleep(0.1)
        while time.time() < deadline and not k.connected:
            time.sleep(0.1)
        return {
            "ephemeral_gone": gone,
            "states": states,
            "new_session": k.connected and k.client_id[0] != sid,
            "works_after": attempt(lambda: k.exists(r) is not None),
        }

    d.check(scenario)

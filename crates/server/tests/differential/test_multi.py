"""multi / multiRead / check (inside multi and top-level)."""

from rawclient import (
    OPEN_ACL_UNSAFE,
    Closed,
    Mode,
    Op,
    Perm,
    W,
    create_body,
    multi_body,
    path_only,
    path_version,
    path_watch,
    set_data_body,
)


def test_multi_success(diff):
    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        c.create(r, b"root")
        ops = [
            (Op.CREATE, create_body(r + "/a", b"A")),
            (Op.CREATE2, create_body(r + "/b", b"B")),
            (Op.CREATE, create_body(r + "/s-", b"", flags=Mode.PERSISTENT_SEQUENTIAL)),
            (Op.CREATE2, create_body(r + "/e-", b"", flags=Mode.EPHEMERAL_SEQUENTIAL)),
            (Op.SET_DATA, set_data_body(r + "/a", b"A2", 0)),
            (Op.CHECK, path_version(r + "/a", 1)),
            (Op.CHECK, path_version(r, -1)),
            (Op.DELETE, path_version(r + "/b", 0)),
            (Op.CREATE, create_body(r + "/b", b"again")),
            (Op.CREATE_CONTAINER, create_body(r + "/cont", b"", flags=Mode.CONTAINER)),
        ]
        obs = {"multi": ctx.r_multi(c.multi(ops))}
        obs["children"] = ctx.r_children2(c.get_children2(r))
        obs["a"] = ctx.r_data(c.get_data(r + "/a"))
        obs["b"] = ctx.r_data(c.get_data(r + "/b"))
        obs["zxid_after"] = ctx.zxid_now()
        obs["empty_multi"] = ctx.r_multi(c.multi([]))
        obs["zxid_after_empty"] = ctx.zxid_now()
        return obs

    diff.check(scenario)


def test_multi_failure_results(diff):
    """Failing multi: earlier ops report 0, the failing op its code, later
    ops RuntimeInconsistency; nothing applied; a zxid is consumed."""

    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        c.create(r, b"root")
        c.create(r + "/x", b"x")
        obs = {}
        z0 = ctx.zxid_now()
        cases = {
            "nodeexists_middle": [
                (Op.CREATE, create_body(r + "/n1")),
                (Op.SET_DATA, set_data_body(r + "/x", b"changed")),
                (Op.CREATE, create_body(r + "/x")),
                (Op.DELETE, path_version(r + "/x")),
                (Op.CREATE, create_body(r + "/n2")),
            ],
            "check_badversion_first": [
                (Op.CHECK, path_version(r + "/x", 5)),
                (Op.CREATE, create_body(r + "/n3")),
            ],
            "check_missing": [
                (Op.CREATE, create_body(r + "/n4")),
                (Op.CHECK, path_version(r + "/missing", -1)),
            ],
            "delete_notempty_last": [
                (Op.CREATE, create_body(r + "/x/kid")),
                (Op.DELETE, path_version(r + "/x")),
            ],
            "setdata_badversion": [
                (Op.SET_DATA, set_data_body(r + "/x", b"v", 3)),
            ],
            "create_dup_within": [
                (Op.CREATE, create_body(r + "/dup")),
                (Op.CREATE, create_body(r + "/dup")),
            ],
            "bad_path": [
                (Op.CREATE, create_body(r + "/ok1")),
                (Op.CREATE, create_body(r + "/bad/")),
            ],
            "invalid_acl": [
                (Op.CREATE, create_body(r + "/ok2")),
                (Op.CREATE, create_body(r + "/noacl", acl=[])),
            ],
            "ttl_unimplemented": [
                (Op.CREATE_TTL, create_body(r + "/ttl", flags=Mode.PERSISTENT_WITH_TTL) + W().long(1000).bytes()),
            ],
            "child_of_ephemeral": [
                (Op.CREATE, create_body(r + "/eph", flags=Mode.EPHEMERAL)),
                (Op.CREATE, create_body(r + "/eph/kid")),
            ],
        }
        for name, ops in cases.items():
            rep = c.multi(ops)
            obs[name] = ctx.r_multi(rep)
            obs[name]["header_err"] = rep.errname
            obs[name]["zxid_after"] = ctx.zxid_now()
        obs["start_zxid"] = z0
        obs["children"] = ctx.r_children2(c.get_children2(r))
        obs["x"] = ctx.r_data(c.get_data(r + "/x"))
        return obs

    diff.check(scenario)


def test_multi_acl_failure(diff):
    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        c.create(r)
        c.create(r + "/ro", acl=[(Perm.READ, "world", "anyone")])
        rep = c.multi([(Op.CREATE, create_body(r + "/ok")), (Op.CREATE, create_body(r + "/ro/kid"))])
        return {"multi": ctx.r_multi(rep), "header": rep.errname, "children": ctx.r_children(c.get_children(r))}

    diff.check(scenario)


def test_multi_read(diff):
    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        c.create(r, b"root")
        c.create(r + "/a", b"A")
        c.create(r + "/b", b"B")
        ops = [
            (Op.GET_CHILDREN, path_watch(r)),
            (Op.GET_DATA, path_watch(r + "/a")),
            (Op.GET_DATA, path_watch(r + "/missing")),
            (Op.GET_CHILDREN, path_watch(r + "/missing")),
            (Op.GET_DATA, path_watch(r + "/b")),
        ]
        obs = {"multi_read": ctx.r_multi(c.multi_read(ops))}
        obs["multi_read_empty"] = ctx.r_multi(c.multi_read([]))
        # write op inside multiRead, read op inside multi
        for name, call, ops in [
            ("write_in_multiread", c.multi_read, [(Op.CREATE, create_body(r + "/w"))]),
            ("read_in_multi", c.multi, [(Op.GET_DATA, path_watch(r + "/a"))]),
            ("mixed_in_multi", c.multi, [(Op.CREATE, create_body(r + "/w2")), (Op.GET_DATA, path_watch(r + "/a"))]),
        ]:
            x = ctx.raw()
            xid = x.send(Op.MULTI_READ if call == c.multi_read else Op.MULTI, multi_body(ops))
            try:
                rep = x.wait_reply(xid, timeout=3)
                obs[name] = {"reply": ctx.r_multi(rep), "header": rep.errname}
            except Exception as e:  # noqa: BLE001
                obs[name] = {"exception": type(e).__name__}
            obs[name]["closed"] = x.is_closed_by_server(1.0)
        obs["children"] = ctx.r_children(c.get_children(r))
        obs["zxid_end"] = ctx.zxid_now()
        return obs

    diff.check(scenario)


def test_multi_read_acl(diff):
    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        c.create(r)
        c.create(r + "/secret", b"s", acl=[(Perm.WRITE, "world", "anyone")])
        c.create(r + "/open", b"o")
        rep = c.multi_read(
            [
                (Op.GET_DATA, path_watch(r + "/open")),
                (Op.GET_DATA, path_watch(r + "/secret")),
                (Op.GET_CHILDREN, path_watch(r + "/secret")),
                (Op.GET_CHILDREN, path_watch(r)),
            ]
        )
        return {"multi_read": ctx.r_multi(rep), "header": rep.errname}

    diff.check(scenario)


def test_multi_watches(diff):
    """Watches fire for every op of a committed multi; none for a failed one."""

    def scenario(ctx):
        c = ctx.raw()
        w = ctx.raw()
        r = ctx.root
        c.create(r)
        c.create(r + "/a", b"a")
        w.get_children(r, watch=True)
        w.get_data(r + "/a", watch=True)
        w.exists(r + "/new", watch=True)
        failed = c.multi([(Op.CREATE, create_body(r + "/new")), (Op.CHECK, path_version(r + "/a", 9))])
        ev_failed = ctx.events(w.drain_events(0.3))
        ok = c.multi(
            [
                (Op.CREATE, create_body(r + "/new")),
                (Op.SET_DATA, set_data_body(r + "/a", b"a2")),
            ]
        )
        ev_ok = w.drain_events(0.5)
        return {
            "failed": ctx.r_multi(failed),
            "events_after_failed": ev_failed,
            "ok": ctx.r_multi(ok),
            "events_after_ok": sorted((e.type, e.path) for e in ev_ok),
        }

    diff.check(scenario)


def test_top_level_check(diff):
    """op 13 (check) outside a multi.  ZooKeeper 3.8.0 processes it as a
    write (a zxid is consumed) and then fails to serialize the reply: no
    reply for an existing node; a missing node answers NoNode."""

    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        c.create(r)
        obs = {"z0": ctx.zxid_now()}
        sent_ok = []

        def send(op, body):
            x = c.next_xid()
            try:
                c.send(op, body, xid=x)
                sent_ok.append(x)
            except OSError:
                pass  # already closed by the server
            return x

        x1 = send(Op.CHECK, path_version(r, -1))
        x2 = send(Op.CHECK, path_version(r, 0))
        x3 = send(Op.CHECK, path_version(r, 5))
        x4 = send(Op.CHECK, path_version(r + "/missing", -1))
        x5 = send(Op.EXISTS, path_watch(r))
        try:
            c.wait_reply(x5, timeout=5)
            closed = c.is_closed_by_server(1.0)
        except (Closed, OSError):
            closed = "closed before the exists reply"
        except TimeoutError:
            closed = "no exists reply within 5 s"
        seen = {m.xid: m for m in c.log if hasattr(m, "xid")}
        for label, x in [("existing_any", x1), ("existing_v0", x2), ("existing_badversion", x3), ("missing", x4)]:
            obs[label] = ctx.reply(seen[x]) if x in seen else "no reply"
        obs["closed"] = closed
        obs["zxid_after"] = ctx.zxid_now()
        obs["reply_order"] = [m.xid for m in c.log if hasattr(m, "xid")]
        return obs

    diff.check(scenario)


def test_unknown_opcode_closes(diff):
    """Unknown op codes: Unimplemented reply, then the connection closes."""

    def scenario(ctx):
        obs = {}
        for op in (99, 1000, -5, 50, 108):
            c = ctx.raw()
            xid = c.send(op, path_only("/"))
            try:
                rep = c.wait_reply(xid, timeout=3)
                obs[str(op)] = {"reply": ctx.reply(rep), "xid": rep.xid}
            except Exception as e:  # noqa: BLE001
                obs[str(op)] = {"exception": type(e).__name__}
            obs[str(op)]["closed"] = c.is_closed_by_server(2.0)
        return obs

    diff.check(scenario)

"""Scenarios that need pristine servers: the initial tree, the reserved
/zookeeper subtree, restart after SIGKILL, maxClientCnxns."""

import socket
import time

from rawclient import OPEN_ACL_UNSAFE, Closed, Mode, Op, Perm, RawClient, path_only


def test_fresh_tree(fresh):
    """'/', '/zookeeper', '/zookeeper/config', '/zookeeper/quota' on a new
    server: data, Stat, ACL, children; what can and cannot be done there."""
    d = fresh()

    def scenario(ctx):
        c = ctx.raw()
        obs = {}
        for p in ("/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"):
            obs[p] = {
                "data": ctx.r_data(c.get_data(p)),
                "children": ctx.r_children2(c.get_children2(p)),
                "acl": ctx.r_acl(c.get_acl(p)),
                "exists": ctx.r_stat(c.exists(p)),
            }
        obs["all_children_number_root"] = ctx.reply(
            c.call(Op.GET_ALL_CHILDREN_NUMBER, path_only("/")), lambda r: r.int()
        )
        obs["ephemerals"] = ctx.reply(c.call(Op.GET_EPHEMERALS, path_only("/")), lambda r: r.strings())
        obs["delete_root"] = ctx.reply(c.delete("/"))
        obs["delete_zookeeper"] = ctx.reply(c.delete("/zookeeper"))
        obs["delete_zookeeper_config"] = ctx.reply(c.delete("/zookeeper/config"))
        obs["delete_zookeeper_quota"] = ctx.reply(c.delete("/zookeeper/quota"))
        obs["set_zookeeper_config"] = ctx.reply(c.set_data("/zookeeper/config", b"x"))
        obs["set_zookeeper"] = ctx.r_stat(c.set_data("/zookeeper", b"x"))
        obs["set_zookeeper_quota"] = ctx.r_stat(c.set_data("/zookeeper/quota", b"q"))
        obs["setacl_zookeeper_config"] = ctx.reply(c.set_acl("/zookeeper/config", OPEN_ACL_UNSAFE))
        obs["setacl_root"] = ctx.r_stat(c.set_acl("/", OPEN_ACL_UNSAFE, 0))
        obs["set_root"] = ctx.r_stat(c.set_data("/", b"rootdata"))
        obs["create_quota_child"] = ctx.r_create2(c.create2("/zookeeper/quota/q", b""))
        obs["create_zookeeper_child"] = ctx.r_create2(c.create2("/zookeeper/mine", b""))
        obs["seq_in_zookeeper"] = ctx.r_path(c.create("/zookeeper/s", flags=Mode.PERSISTENT_SEQUENTIAL))
        obs["seq_in_root"] = ctx.r_path(c.create("/", flags=Mode.PERSISTENT_SEQUENTIAL))
        obs["seq_in_root2"] = ctx.r_path(c.create("/s", flags=Mode.PERSISTENT_SEQUENTIAL))
        obs["eph_in_zookeeper"] = ctx.r_path(c.create("/zookeeper/eph", flags=Mode.EPHEMERAL))
        obs["delete_zookeeper_child"] = ctx.reply(c.delete("/zookeeper/mine"))
        obs["root_after"] = ctx.r_children2(c.get_children2("/"))
        obs["zookeeper_after"] = ctx.r_children2(c.get_children2("/zookeeper"))
        obs["count_after"] = ctx.reply(c.call(Op.GET_ALL_CHILDREN_NUMBER, path_only("/")), lambda r: r.int())
        return obs

    d.check(scenario)


def test_restart_after_sigkill(fresh):
    """Everything acknowledged survives SIGKILL + restart; zxids continue;
    sessions survive a restart and can be re-attached."""
    d = fresh()

    def scenario(ctx):
        r = ctx.root
        c = ctx.raw(connect=False)
        sc = c.connect(timeout_ms=20000)
        c.create(r, b"root")
        c.create(r + "/a", b"a")
        c.set_data(r + "/a", b"a2")
        c.create(r + "/s-", flags=Mode.PERSISTENT_SEQUENTIAL)
        c.create(r + "/eph", flags=Mode.EPHEMERAL)
        c.set_acl(r + "/a", [(Perm.READ | Perm.WRITE, "world", "anyone")])
        c.delete(r + "/s-0000000001")
        before = {
            "children": ctx.r_children2(c.get_children2(r)),
            "a": ctx.r_data(c.get_data(r + "/a")),
            "acl": ctx.r_acl(c.get_acl(r + "/a")),
            "eph": ctx.r_stat(c.exists(r + "/eph")),
            "zxid": ctx.zxid_now(),
        }
        c.close()
        ctx.server.restart(hard=True)
        n = RawClient(ctx.host, ctx.port)
        res = n.connect(timeout_ms=20000, session_id=sc.session_id, passwd=sc.passwd)
        reattach = {"session": ctx.sid(res.session_id), "timeout": res.timeout}
        if res.timeout <= 0:
            # session not re-attachable: continue with a new one
            n.close()
            n = ctx.raw(timeout_ms=20000)
        after = {
            "reattach": reattach,
            "children": ctx.r_children2(n.get_children2(r)),
            "a": ctx.r_data(n.get_data(r + "/a")),
            "acl": ctx.r_acl(n.get_acl(r + "/a")),
            "eph": ctx.r_stat(n.exists(r + "/eph")),
            "zxid": ctx.zxid_now(),
            "next_seq": ctx.r_path(n.create(r + "/s-", flags=Mode.PERSISTENT_SEQUENTIAL)),
        }
        n.close_session()
        n.close()
        after["eph_after_close"] = ctx.reply(ctx.raw().exists(r + "/eph"))["err"]
        return {"before": before, "after": after}

    d.check(scenario)


def test_max_client_cnxns(fresh):
    """maxClientCnxns=2 per IP (the harness's observer connection is one)."""
    d = fresh({"maxClientCnxns": "2"})

    def scenario(ctx):
        def try_connect():
            """(client or None, observation)"""
            try:
                cl = RawClient(ctx.host, ctx.port)
            except OSError:
                return None, "closed"  # same outcome as a close right after accept
            try:
                return cl, {"timeout": cl.connect().timeout}
            except (Closed, OSError):
                cl.close()
                return None, "closed"

        obs = {}
        a, obs["second"] = try_connect()
        b, obs["third"] = try_connect()
        if b is not None:
            b.close_session()
            b.close()
        try:
            with socket.create_connection((ctx.host, ctx.port), timeout=3) as s:
                s.sendall(b"ruok")
                data = s.recv(100)
                obs["ruok_at_limit"] = data.decode() or "<closed>"
        except OSError:
            obs["ruok_at_limit"] = "<closed>"
        if a is not None:
            obs["existing_still_work"] = ctx.reply(a.exists("/"))["err"]
            a.close_session()
            a.close()
        time.sleep(0.5)
        c, obs["after_one_closed"] = try_connect()
        if c is not None:
            c.close_session()
            c.close()
        return obs

    d.check(scenario)

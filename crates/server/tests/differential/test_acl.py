"""ACLs and authentication: world, auth, digest, ip, super; NoAuth exactly
where ZooKeeper answers it; InvalidACL; getACL redaction; addauth failures;
whoAmI."""

import base64
import hashlib

from rawclient import OPEN_ACL_UNSAFE, Mode, Op, Perm, R, Xid, auth_body

SUPER_PASSWORD = "superpw"


def digest(user: str, password: str) -> str:
    """ZooKeeper's DigestAuthenticationProvider.generateDigest."""
    h = hashlib.sha1(f"{user}:{password}".encode()).digest()
    return f"{user}:{base64.b64encode(h).decode()}"


SUPER = {"DigestAuthenticationProvider.superDigest": digest("super", SUPER_PASSWORD)}


def all_ops(ctx, c, path, child_name="kid"):
    """Try every operation on a node; returns {op: errname}."""
    out = {}
    out["exists"] = ctx.reply(c.exists(path))["err"]
    out["getData"] = ctx.reply(c.get_data(path))["err"]
    out["getChildren"] = ctx.reply(c.get_children(path))["err"]
    out["getChildren2"] = ctx.reply(c.get_children2(path))["err"]
    out["getACL"] = ctx.reply(c.get_acl(path))["err"]
    out["setData"] = ctx.reply(c.set_data(path, b"w"))["err"]
    out["create"] = ctx.reply(c.create(f"{path}/{child_name}"))["err"]
    out["delete_child"] = ctx.reply(c.delete(f"{path}/{child_name}"))["err"]
    return out


def test_world_permissions(diff):
    """Each single permission bit (and none) on world:anyone."""

    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        c.create(r)
        obs = {}
        for name, perms in [
            ("none", 0),
            ("read", Perm.READ),
            ("write", Perm.WRITE),
            ("create", Perm.CREATE),
            ("delete", Perm.DELETE),
            ("admin", Perm.ADMIN),
            ("create_delete", Perm.CREATE | Perm.DELETE),
        ]:
            p = f"{r}/{name}"
            c.create(p, b"d")
            c.create(p + "/existing")
            c.set_acl(p, [(perms, "world", "anyone")])
            row = all_ops(ctx, c, p)
            row["delete_existing"] = ctx.reply(c.delete(p + "/existing"))["err"]
            row["getACL_body"] = ctx.r_acl(c.get_acl(p)).get("body", {}).get("acl")
            row["setACL"] = ctx.reply(c.set_acl(p, [(perms, "world", "anyone")]))["err"]
            obs[name] = row
        # deleting a node only needs DELETE on the parent, not on the node
        c.create(r + "/locked", acl=[(0, "world", "anyone")])
        obs["delete_locked_node"] = ctx.reply(c.delete(r + "/locked"))
        obs["zxid_end"] = ctx.zxid_now()
        return obs

    diff.check(scenario)


def test_digest_and_auth_schemes(diff):
    def scenario(ctx):
        r = ctx.root
        owner = ctx.raw()
        owner_auth = ctx.reply(owner.add_auth("digest", b"alice:secret"))
        other = ctx.raw()
        other.add_auth("digest", b"bob:hunter2")
        anon = ctx.raw()
        wrongpw = ctx.raw()
        wrongpw.add_auth("digest", b"alice:wrong")
        obs = {"owner_auth": owner_auth}
        owner.create(r)
        obs["create_auth_acl"] = ctx.r_create2(owner.create2(r + "/auth", b"a", acl=[(Perm.ALL, "auth", "")]))
        obs["auth_acl_stored"] = ctx.r_acl(owner.get_acl(r + "/auth"))
        obs["create_auth_acl_with_id"] = ctx.reply(owner.create(r + "/auth2", acl=[(Perm.ALL, "auth", "ignored")]))
        obs["auth2_acl"] = ctx.r_acl(owner.get_acl(r + "/auth2"))
        obs["create_digest_acl"] = ctx.reply(
            anon.create(r + "/dig", b"d", acl=[(Perm.READ | Perm.WRITE, "digest", digest("alice", "secret"))])
        )
        obs["digest_acl_stored_as_seen_by_anon"] = ctx.r_acl(anon.get_acl(r + "/dig"))
        obs["digest_acl_seen_by_owner"] = ctx.r_acl(owner.get_acl(r + "/dig"))
        for who, cl in [("owner", owner), ("other", other), ("anon", anon), ("wrongpw", wrongpw)]:
            obs[f"{who}_auth_node"] = all_ops(ctx, cl, r + "/auth")
            obs[f"{who}_dig_node"] = all_ops(ctx, cl, r + "/dig")
        # multiple identities on one connection
        both = ctx.raw()
        both.add_auth("digest", b"alice:secret")
        both.add_auth("digest", b"bob:hunter2")
        obs["both_create_auth"] = ctx.reply(both.create(r + "/both", acl=[(Perm.ALL, "auth", "")]))
        obs["both_acl"] = ctx.r_acl(both.get_acl(r + "/both"))
        obs["other_reads_both"] = ctx.reply(other.get_data(r + "/both"))["err"]
        # an ACL mixing world READ and a digest ADMIN
        owner.create(
            r + "/mixed",
            b"m",
            acl=[(Perm.READ, "world", "anyone"), (Perm.ALL, "digest", digest("alice", "secret"))],
        )
        obs["mixed_anon_acl_view"] = ctx.r_acl(anon.get_acl(r + "/mixed"))
        obs["mixed_owner_acl_view"] = ctx.r_acl(owner.get_acl(r + "/mixed"))
        obs["mixed_anon_ops"] = all_ops(ctx, anon, r + "/mixed")
        # readonly-with-admin redaction: ADMIN but no READ
        owner.create(r + "/adminonly", acl=[(Perm.ADMIN, "world", "anyone"), (Perm.READ, "digest", digest("x", "y"))])
        obs["adminonly_acl_view"] = ctx.r_acl(anon.get_acl(r + "/adminonly"))
        obs["zxid_end"] = ctx.zxid_now()
        return obs

    diff.check(scenario)


def test_ip_scheme(diff):
    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        c.create(r)
        obs = {}
        for name, ident in [
            ("exact", "127.0.0.1"),
            ("cidr8", "127.0.0.0/8"),
            ("cidr32", "127.0.0.1/32"),
            ("other", "10.1.2.3"),
            ("othercidr", "10.0.0.0/8"),
            ("cidr0", "0.0.0.0/0"),
        ]:
            obs[f"create_{name}"] = ctx.reply(c.create(f"{r}/{name}", b"x", acl=[(Perm.ALL, "ip", ident)]))
            obs[f"read_{name}"] = ctx.reply(c.get_data(f"{r}/{name}"))["err"]
            obs[f"acl_{name}"] = ctx.r_acl(c.get_acl(f"{r}/{name}")).get("body", {}).get("acl")
        for bad in ["127.0.0.1/", "127.0.0", "::1", "localhost", "127.0.0.1/-1", ""]:
            obs[f"invalid_{bad}"] = ctx.reply(c.create(f"{r}/bad", acl=[(Perm.ALL, "ip", bad)]))["err"]
        obs["addauth_ip"] = ctx.reply(c.add_auth("ip", b"10.0.0.1"))
        obs["after_addauth_ip_alive"] = ctx.reply(c.exists("/"))["err"]
        return obs

    diff.check(scenario)


def test_addauth_unknown_scheme_closes(diff):
    """addauth with an unknown scheme: AuthFailed reply, then the
    connection is closed (and the session is gone)."""

    def scenario(ctx):
        c = ctx.raw()
        rep = c.add_auth("nosuchscheme", b"whatever")
        obs = {"reply": ctx.reply(rep), "reply_xid": rep.xid}
        obs["closed"] = c.is_closed_by_server(3)
        obs["received"] = [
            ctx.event(m) if hasattr(m, "type") else {"xid": m.xid, "err": m.errname} for m in c.log
        ]
        return obs

    diff.check(scenario)


def test_addauth_variants(diff):
    def scenario(ctx):
        obs = {}
        for label, scheme, cred in [
            ("digest_no_colon", "digest", b"nocolon"),
            ("digest_empty", "digest", b""),
            ("digest_colon_only", "digest", b":"),
            ("digest_multi_colon", "digest", b"a:b:c"),
            ("world", "world", b"anyone"),
            ("super_no_digest_config", "super", b"x"),
            ("sasl", "sasl", b"x"),
            ("empty_scheme", "", b"x"),
        ]:
            c = ctx.raw()
            rep = c.add_auth(scheme, cred)
            row = {"reply": ctx.reply(rep)}
            row["closed"] = c.is_closed_by_server(1.0)
            if not row["closed"]:
                who = c.call(Op.WHO_AM_I, b"")
                row["whoami"] = ctx.reply(who, lambda rd: sorted([rd.string(), rd.string()] for _ in range(rd.int())))
            obs[label] = row
        # non-auth xid on an auth packet
        c = ctx.raw()
        rep = c.call(Op.AUTH, auth_body("digest", b"u:p"), xid=77)
        obs["auth_with_normal_xid"] = {"xid": rep.xid, "reply": ctx.reply(rep)}
        return obs

    diff.check(scenario)


def whoami(ctx, c):
    """whoAmI, sorted: ZooKeeper returns its auth-info set in Java hash
    order, which is not part of the protocol (like getChildren order)."""
    rep = c.call(Op.WHO_AM_I, b"")
    return ctx.reply(rep, lambda rd: sorted([rd.string(), rd.string()] for _ in range(rd.int())))


def test_whoami(diff):
    def scenario(ctx):
        c = ctx.raw()
        obs = {"anon": whoami(ctx, c)}
        c.add_auth("digest", b"alice:secret")
        obs["alice"] = whoami(ctx, c)
        c.add_auth("digest", b"bob:pw")
        obs["alice_bob"] = whoami(ctx, c)
        c.add_auth("digest", b"alice:secret")
        obs["alice_again"] = whoami(ctx, c)
        c.add_auth("digest", b"alice:other")
        obs["alice_other_pw"] = whoami(ctx, c)
        return obs

    diff.check(scenario)


def test_super_digest(configured):
    d = configured(SUPER)

    def scenario(ctx):
        r = ctx.root
        owner = ctx.raw()
        owner.add_auth("digest", b"alice:secret")
        owner.create(r)
        owner.create(r + "/locked", b"l", acl=[(Perm.ALL, "auth", "")])
        owner.create(r + "/locked/child", b"c", acl=[(Perm.ALL, "auth", "")])
        owner.create(r + "/none", b"n", acl=[(0, "world", "anyone")])
        su = ctx.raw()
        obs = {"super_auth": ctx.reply(su.add_auth("digest", f"super:{SUPER_PASSWORD}".encode()))}
        obs["whoami"] = whoami(ctx, su)
        obs["super_locked"] = all_ops(ctx, su, r + "/locked")
        obs["super_acl_view"] = ctx.r_acl(su.get_acl(r + "/locked"))
        obs["super_none"] = all_ops(ctx, su, r + "/none")
        obs["super_setacl"] = ctx.r_stat(su.set_acl(r + "/locked", OPEN_ACL_UNSAFE))
        obs["super_delete"] = ctx.reply(su.delete(r + "/locked/child"))
        bad = ctx.raw()
        obs["super_wrong_pw"] = ctx.reply(bad.add_auth("digest", b"super:nope"))
        obs["super_wrong_pw_read"] = ctx.reply(bad.get_data(r + "/none"))["err"]
        obs["super_wrong_pw_whoami"] = whoami(ctx, bad)
        obs["zookeeper_config_by_super"] = ctx.reply(su.set_data("/zookeeper/config", b"x", 12345))["err"]
        return obs

    d.check(scenario)


def test_acl_checks_on_create_parent(diff):
    """create needs CREATE on the parent; delete needs DELETE on the parent;
    NoAuth vs NodeExists/NoNode precedence."""

    def scenario(ctx):
        c = ctx.raw()
        r = ctx.root
        c.create(r)
        c.create(r + "/p", acl=[(Perm.READ, "world", "anyone")])
        obs = {}
        obs["create_under_readonly"] = ctx.reply(c.create(r + "/p/x"))
        obs["create_missing_under_readonly"] = ctx.reply(c.create(r + "/p/x/y"))
        obs["delete_missing_under_readonly"] = ctx.reply(c.delete(r + "/p/x"))
        obs["seq_under_readonly"] = ctx.reply(c.create(r + "/p/s", flags=Mode.PERSISTENT_SEQUENTIAL))
        c.create(r + "/q")
        c.create(r + "/q/existing")
        c.set_acl(r + "/q", [(Perm.READ, "world", "anyone")])
        obs["create_existing_under_readonly"] = ctx.reply(c.create(r + "/q/existing"))
        obs["delete_badversion_under_readonly"] = ctx.reply(c.delete(r + "/q/existing", 5))
        obs["setdata_badversion_noauth"] = ctx.reply(c.set_data(r + "/p", b"x", 5))
        obs["setacl_badversion_noadmin"] = ctx.reply(c.set_acl(r + "/p", OPEN_ACL_UNSAFE, 5))
        obs["q_stat"] = ctx.r_stat(c.exists(r + "/q"))
        obs["zxid_end"] = ctx.zxid_now()
        return obs

    diff.check(scenario)

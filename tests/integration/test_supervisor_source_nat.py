#!/usr/bin/python3
"""Supervisor end to end, per-user source addresses (multi-address hosts):
direct upstreams with `source` or `interface` fill the cells' SNAT maps
(netns/snat.h), so each user's DC connections leave the host from its own
address.

The sandbox's host side (up0, 198.18.0.1/24) gets two more addresses,
198.18.0.11 and .12, and a second interface srcif0 (a veth end) holds
198.18.0.13/32; [cells] nat = true.

- ann (source .11), ben (source .12) and cat (interface srcif0): the fake DC
  sees each one's connections from its own address; dan has no upstream and
  still leaves through masquerade (198.18.0.1).
- fay's interface has no IPv4 address, gus's source is not an address of
  the host: their workers are not started, with the reason in the status,
  and the others are unaffected.
- A reload moves ann to a new address .14 and srcif0 to .15: new
  connections of ann and cat leave from those, a connection of ann's opened
  before the reload keeps working (conntrack keeps its translation), and
  ben, unchanged, still leaves from .12.
- hal, created through the API, inherits [egress] upstreams = ["src-b"] and
  leaves from .12; a PATCH that gives him an explicit empty list (direct)
  moves his new connections to masquerade at once, without a reload.
- The cell entries leave the maps when a user is removed.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import os
import signal
import sys
import time

import harness as h
import sandbox as sb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_supervisor_api import Api  # noqa: E402

KEYS = {
    "ann": "0123456789abcdef0123456789abce01",
    "ben": "0123456789abcdef0123456789abce02",
    "cat": "0123456789abcdef0123456789abce03",
    "dan": "0123456789abcdef0123456789abce04",
    "fay": "0123456789abcdef0123456789abce05",
    "gus": "0123456789abcdef0123456789abce06",
    "hal": "0123456789abcdef0123456789abce07",
}
FOREIGN = "198.18.0.99"  # on no interface of the host
ADDR_A, ADDR_B, ADDR_IF, ADDR_A2, ADDR_IF2 = ("198.18.0.11", "198.18.0.12", "198.18.0.13",
                                              "198.18.0.14", "198.18.0.15")


def dc_lines_since(path, n0):
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return [], 0
    return lines[n0:], len(lines)


def upstreams_toml(src_a):
    return ('[[upstream]]\nname = "src-a"\ntype = "direct"\nsource = "%s"\n\n'
            '[[upstream]]\nname = "src-b"\ntype = "direct"\nsource = "%s"\n\n'
            '[[upstream]]\nname = "src-if"\ntype = "direct"\ninterface = "srcif0"\n\n'
            '[[upstream]]\nname = "src-none"\ntype = "direct"\ninterface = "srcnone0"\n\n'
            '[[upstream]]\nname = "src-foreign"\ntype = "direct"\nsource = "%s"\n\n'
            % (src_a, ADDR_B, FOREIGN))


def write_config(env, src_a, users):
    # [egress] upstreams = ["src-b"]: users the file does not give a list
    # (hal, made through the API) leave from ben's address.
    text = env.config_text(users, sections={"egress": {"upstreams": ["src-b"]},
                                            "connections": {"per_ip_rate": 0}})
    first_user = text.index("[[user]]")
    text = text[:first_user] + upstreams_toml(src_a) + text[first_user:]
    tmp = env.config + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, env.config)


def froms_of(env, name, n0, count=3):
    """Opens `count` connections of `name`'s, each one echo round trip;
    returns (the DC's from= addresses of the new records, new n0)."""
    ok = 0
    for _ in range(count):
        st = sb.Stream(env.port, KEYS[name], dc=2, timeout=10)
        try:
            ok += 1 if st.roundtrip(1024) else 0
        finally:
            st.close()
    h.check(ok == count, "%s: %d of %d connections echo" % (name, ok, count))
    time.sleep(0.2)
    new, n0 = dc_lines_since(env.dc_record, n0)
    return [l.rsplit("from=", 1)[1] if "from=" in l else "?" for l in new], n0


def snat_elements():
    r = sb.run(["nft", "list", "map", "inet", "mtwarden", "snat4"], check=False)
    return r.stdout


def reload(env, users_expected):
    seen = len(env.log_text())
    env.sup.signal(signal.SIGHUP)
    want = "reloaded users=%d" % users_expected
    deadline = time.monotonic() + 15
    while want not in env.log_text()[seen:] and time.monotonic() < deadline:
        time.sleep(0.1)
    h.check(want in env.log_text()[seen:], "the reload is taken (%s)" % want)
    return seen


def test():
    for a in (ADDR_A, ADDR_B):
        sb.run(["ip", "addr", "add", a + "/24", "dev", "up0"])
    for ifname in ("srcif0", "srcnone0"):
        sb.run(["ip", "link", "add", ifname, "type", "veth", "peer", "name", ifname + "p"])
        sb.run(["ip", "link", "set", ifname, "up"])
        sb.run(["ip", "link", "set", ifname + "p", "up"])
    sb.run(["ip", "addr", "add", ADDR_IF + "/32", "dev", "srcif0"])
    env = sb.Setup("srcnat", pool="10.207.0.0/16", prefix="mtq", nat=True, uid_first=270000)
    try:
        users = [
            {"name": "ann", "secret": KEYS["ann"], "upstreams": ["src-a"]},
            {"name": "ben", "secret": KEYS["ben"], "upstreams": ["src-b"]},
            {"name": "cat", "secret": KEYS["cat"], "upstreams": ["src-if"]},
            {"name": "dan", "secret": KEYS["dan"], "upstreams": []},
            {"name": "fay", "secret": KEYS["fay"], "upstreams": ["src-none"]},
            {"name": "gus", "secret": KEYS["gus"], "upstreams": ["src-foreign"]},
        ]
        write_config(env, ADDR_A, users)
        env.start()
        s = env.require_running(["ann", "ben", "cat", "dan"])
        fay = env.wait_status(lambda s: (env.user("fay", s) or {}).get("state") == "failed", timeout=15)
        fay = env.user("fay", fay or s) or {}
        h.check(fay.get("state") == "failed" and
                fay.get("fail_reason") == "cell source: interface srcnone0 has no IPv4 address",
                "fay (interface without IPv4) is not started, with the reason (%s: %r)"
                % (fay.get("state"), fay.get("fail_reason")))
        gus = env.user("gus", env.status()) or {}
        h.check(gus.get("state") == "failed" and
                gus.get("fail_reason") == "cell source: source %s is not an address of this host" % FOREIGN,
                "gus (source not on this host) is not started, with the reason (%s: %r)"
                % (gus.get("state"), gus.get("fail_reason")))
        cells = {u["name"]: u["cell"]["ipv4"] for u in s["users"] if u.get("cell")}

        n0 = dc_lines_since(env.dc_record, 0)[1]
        expect = {"ann": ADDR_A, "ben": ADDR_B, "cat": ADDR_IF, "dan": sb.HOST_ADDR}
        for name, addr in expect.items():
            froms, n0 = froms_of(env, name, n0)
            h.check(len(froms) == 3 and all(f == addr for f in froms),
                    "the DC sees %s's connections from %s, not its cell %s (%s)"
                    % (name, addr, cells.get(name), froms))
        maps = snat_elements()
        sb.log("snat4 before the reload: %s" % " ".join(maps.split()))

        # hal through the API: [egress]'s source, then none after a PATCH.
        api = Api(sock_path=os.path.join(env.run_dir, "api.sock"))
        resp = api.post("/v1/users", {"name": "hal", "secrets": [KEYS["hal"]]})
        h.check(resp.status == 201, "hal created through the API (%r)" % resp)
        env.require_running(["hal"])
        froms, n0 = froms_of(env, "hal", n0)
        h.check(len(froms) == 3 and all(f == ADDR_B for f in froms),
                "hal (inherits [egress] src-b) leaves from %s (%s)" % (ADDR_B, froms))
        seen = len(env.log_text())
        resp = api.patch("/v1/users/hal", {"upstreams": []})
        h.check(resp.status == 200, "hal's upstreams set to [] through the API (%r)" % resp)
        want = "cell source set user=hal"
        deadline = time.monotonic() + 10
        while want not in env.log_text()[seen:] and time.monotonic() < deadline:
            time.sleep(0.1)
        h.check("source=masquerade" in "".join(l for l in env.log_text()[seen:].splitlines()
                                                if want in l),
                "the PATCH logs hal's cell source as masquerade")
        froms, n0 = froms_of(env, "hal", n0)
        h.check(len(froms) == 3 and all(f == sb.HOST_ADDR for f in froms),
                "after the PATCH hal's new connections are masqueraded (%s)" % froms)
        resp = api.delete("/v1/users/hal")
        h.check(resp.status in (200, 204), "hal deleted (%r)" % resp)

        # Reload: ann to a new address, srcif0's address moved.
        sb.run(["ip", "addr", "add", ADDR_A2 + "/24", "dev", "up0"])
        sb.run(["ip", "addr", "del", ADDR_IF + "/32", "dev", "srcif0"])
        sb.run(["ip", "addr", "add", ADDR_IF2 + "/32", "dev", "srcif0"])
        held = sb.Stream(env.port, KEYS["ann"], dc=2, timeout=10)
        h.check(held.roundtrip(512), "a connection of ann's opened before the reload echoes")
        n0 = dc_lines_since(env.dc_record, 0)[1]
        write_config(env, ADDR_A2, users)
        seen = reload(env, 6)
        log = env.log_text()[seen:]
        h.check("cell source set user=ann" in log and "source=" + ADDR_A2 in log and
                "cell source set user=cat" in log and "source=" + ADDR_IF2 in log,
                "the reload logs ann's and cat's new sources")
        h.check("cell source set user=ben" not in log, "ben's unchanged source is not touched")
        h.check(held.roundtrip(4096), "ann's connection from before the reload still echoes")
        held.close()
        expect = {"ann": ADDR_A2, "ben": ADDR_B, "cat": ADDR_IF2, "dan": sb.HOST_ADDR}
        for name, addr in expect.items():
            froms, n0 = froms_of(env, name, n0)
            h.check(len(froms) == 3 and all(f == addr for f in froms),
                    "after the reload the DC sees %s's new connections from %s (%s)"
                    % (name, addr, froms))

        # A user removed: its cell's entry leaves the map.
        ann_if = (env.user("ann") or {}).get("cell", {}).get("host_if")
        write_config(env, ADDR_A2, [u for u in users if u["name"] != "ann"])
        reload(env, 5)
        maps = snat_elements()
        h.check(ADDR_A2 not in maps and (ann_if or "?") not in maps and ADDR_B in maps and ADDR_IF2 in maps,
                "after ann's removal only ben's and cat's sources stay in snat4 (%s; ann's cell %s)"
                % (" ".join(maps.split()), ann_if))
    finally:
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_supervisor_source_nat")

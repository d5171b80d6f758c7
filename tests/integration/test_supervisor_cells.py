#!/usr/bin/python3
"""Supervisor end to end, cells: three users with different secrets and
transports (telethon abridged with a plain key, telethon randomized
intermediate for a dd user, mtcute fake TLS for an ee user) each echo through
the proxy; the fake DC sees each user's connection arrive from that user's
cell address ([cells] nat = false); each worker runs in its own netns under a
uid of its own with no capabilities and no_new_privs, the gate too; an HTTP
probe and a disabled user's handshake reach the mask host byte-exact; SIGTERM
exits 0 and leaves no netns, veth or nft table behind.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import os
import signal
import time

import harness as h
import sandbox as sb

ALICE = "0123456789abcdef0123456789abcdef"                    # telethon abridged
BOB = "dd" + "1123456789abcdef0123456789abcdef"               # telethon randomized (dd)
CAROL_DOMAIN = "www.example.com"
CAROL = "ee" + "2123456789abcdef0123456789abcdef" + CAROL_DOMAIN.encode().hex()  # mtcute TLS
DAVE = "3123456789abcdef0123456789abcdef"                     # disabled


def dc_lines_since(path, n0):
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return [], 0
    return lines[n0:], len(lines)


def check_from(env, n0, ip, what):
    new, n = dc_lines_since(env.dc_record, n0)
    froms = [l.split("from=", 1)[1] if "from=" in l else "?" for l in new]
    h.check(len(new) >= 1 and all(f == ip for f in froms) and all(" ok" in l for l in new),
            "%s: fake DC saw the connection from the user's cell %s (%s)" % (what, ip, new))
    return n


def test():
    env = sb.Setup("cells", pool="10.201.0.0/16", prefix="mtt", nat=False, uid_first=210000)
    try:
        users = [
            {"name": "alice", "secret": ALICE},
            {"name": "bob", "secret": BOB},
            {"name": "carol", "secret": CAROL},
            {"name": "dave", "secret": DAVE, "enabled": False},
        ]
        env.write_config(users)
        env.start()
        s = env.require_running(["alice", "bob", "carol"])
        st = {u["name"]: u for u in s["users"]}
        h.check(st.get("dave", {}).get("state") == "disabled" and not st.get("dave", {}).get("pid"),
                "disabled user dave has no worker (%s)" % st.get("dave", {}).get("state"))
        h.check(s.get("cells") == 3, "3 cells (status cells=%s)" % s.get("cells"))
        ns, links, tables = sb.cell_objects(env.prefix)
        h.check(len(ns) == 3 and len(links) == 3 and "table inet mtwarden" in tables,
                "3 netns, 3 host veths, nft table inet mtwarden while running (%s %s %s)" % (ns, links, tables))

        # Echo through each cell with a real peer; the DC sees the cell address.
        n0 = dc_lines_since(env.dc_record, 0)[1]
        sb.telethon(env.port, ALICE, "abridged", dc=2, what="alice telethon abridged")
        n0 = check_from(env, n0, st["alice"]["cell"]["ipv4"], "alice")
        sb.telethon(env.port, BOB, "randomized", dc=-2, what="bob telethon randomized (dd)")
        n0 = check_from(env, n0, st["bob"]["cell"]["ipv4"], "bob")
        sb.mtcute(env.port, CAROL, dc=4, what="carol mtcute fake TLS (ee)")
        n0 = check_from(env, n0, st["carol"]["cell"]["ipv4"], "carol")
        ips = {st[n]["cell"]["ipv4"] for n in ("alice", "bob", "carol")}
        h.check(len(ips) == 3 and all(ip.startswith("10.201.") for ip in ips),
                "three distinct cell addresses from the pool (%s)" % sorted(ips))

        # Confinement: own uid, no caps, no_new_privs, own netns.
        my_ns = sb.netns_of(os.getpid())
        uids = set()
        for n in ("alice", "bob", "carol"):
            u = st[n]
            uid = sb.confined(u["pid"], "worker of %s" % n)
            h.check(uid == u["uid"] and uid is not None and uid > 210000,
                    "worker of %s runs as its status uid %s (got %s)" % (n, u["uid"], uid))
            uids.add(uid)
            wns = sb.netns_of(u["pid"])
            try:
                cell_ino = os.stat(os.path.join(env.netns_dir, u["cell"]["netns"])).st_ino
            except OSError:
                cell_ino = None
            h.check(wns is not None and wns != my_ns and wns == "net:[%s]" % cell_ino,
                    "worker of %s is inside its cell netns %s (%s)" % (n, u["cell"]["netns"], wns))
        h.check(len(uids) == 3, "each worker has a uid of its own (%s)" % sorted(uids))
        gate_pid = s["gate"]["pid"]
        gate_uid = sb.confined(gate_pid, "gate")
        h.check(gate_uid is not None and gate_uid not in uids, "gate uid %s differs from the workers'" % gate_uid)
        h.check(sb.netns_of(gate_pid) == my_ns, "gate runs in the host (sandbox root) netns")

        # An HTTP probe lands at the mask host byte-exact.
        before = h.mask_records(env.mask_dir)
        req = b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: probe\r\n\r\n"
        ans = h.probe(env.port, req)
        got = h.wait_new_record(env.mask_dir, before)
        h.check(got == req, "HTTP probe reached the mask host byte-exact (%r)" % (got[:80] if got else got))
        h.check(b"mask-answer" in ans, "the mask host's answer came back (%r)" % ans[:60])

        # A disabled user's handshake is masked, byte-exact.
        before = h.mask_records(env.mask_dir)
        c = h.Obfs2Client(DAVE, dc=2)
        payload = c.init + c.seal(b"hello from a disabled user" * 10)
        ans = h.probe(env.port, payload)
        got = h.wait_new_record(env.mask_dir, before)
        h.check(got == payload, "disabled user's handshake relayed to the mask host byte-exact (%d of %d bytes)"
                % (len(got or b""), len(payload)))
        h.check(b"mask-answer" in ans, "disabled user got the mask host's answer")
        # The gate's counters reach status.json with the next sweeps.
        s2 = env.wait_status(lambda s: s["gate"].get("counters", {}).get("masked", 0) >= 2, timeout=6)
        gc = s2["gate"].get("counters", {})
        handed = gc.get("handoffs", 0) + gc.get("direct_handoffs", 0)
        h.check(gc.get("masked", 0) >= 2 and handed >= 3,
                "gate counters: masked=%s (>= 2), handoffs + direct_handoffs=%s (>= 3)" % (gc.get("masked"), handed))
        # Lanes are on by default: the three users' clients went gate -> worker.
        h.check(gc.get("direct_handoffs", 0) >= 3 and s2.get("direct_handoffs_total", 0) >= 3,
                "direct lanes used: gate direct_handoffs=%s, supervisor direct_handoffs_total=%s"
                % (gc.get("direct_handoffs"), s2.get("direct_handoffs_total")))

        # Clean stop: exit 0, nothing left.
        t0 = time.monotonic()
        env.sup.signal(signal.SIGTERM)
        try:
            rc = env.sup.wait(40)
        except Exception:  # noqa: BLE001
            rc = None
        sb.log("SIGTERM -> exit %s in %.2f s" % (rc, time.monotonic() - t0))
        h.check(rc == 0, "SIGTERM: supervisor exits 0 (got %s)" % rc)
        ns, links, tables = sb.cell_objects(env.prefix)
        h.check(ns == [], "no netns with prefix %s left (%s)" % (env.prefix, ns))
        h.check(links == [], "no veth with prefix %s left (%s)" % (env.prefix, links))
        h.check("table inet mtwarden" not in tables, "no nft table inet mtwarden left (%s)" % tables)
        alive = [n for n in ("alice", "bob", "carol") if os.path.exists("/proc/%d" % st[n]["pid"])]
        h.check(alive == [] and not os.path.exists("/proc/%d" % gate_pid),
                "no worker or gate process left (%s)" % alive)
        h.check(not os.path.exists(os.path.join(env.run_dir, "status.json")), "status.json removed on stop")
    finally:
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_supervisor_cells")

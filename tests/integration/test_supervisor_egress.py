#!/usr/bin/python3
"""Supervisor end to end, cell egress (docs/security.md): from inside a
user's cell, as the user's worker uid, a connection to an address that is
neither a DC nor the mask host (another sandbox host, the cloud metadata
address 169.254.169.254, the fake DC's own host on another port) fails,
while the fake DC and the mask host answer and the user's clients relay;
each dropped packet is counted for that user (status.json, API metrics) and
logged in bounded volume. A reload that moves the DC to a new port lets the
cells reach the new one at once, keeps a transfer that runs across it, and
keeps the old port open until the last worker started before it is gone.
A mask host given by name (an /etc/hosts entry bound over the sandbox's
own mount namespace) is resolved into the sets, and only then is DNS to
the resolv.conf name servers allowed.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import json
import os
import signal
import socket
import subprocess
import time

import harness as h
import sandbox as sb

ALICE = "6a23456789abcdef0123456789abcdef"
BOB = "6b23456789abcdef0123456789abcdef"
OTHER_HOST = "198.18.0.3"
METADATA = "169.254.169.254"

LISTENER = r"""
import socket, sys, threading
socks = []
for spec in sys.argv[1:]:
    host, port = spec.rsplit(":", 1)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(64)
    socks.append(s)
def serve(s):
    while True:
        c, _ = s.accept()
        c.sendall(b"hello\n")
        c.close()
for s in socks:
    threading.Thread(target=serve, args=(s,), daemon=True).start()
print("listening", flush=True)
threading.Event().wait()
"""

CONNECT = r"""
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    s = socket.create_connection((host, port), timeout=float(sys.argv[3]))
    s.close()
    print("connected")
except OSError as e:
    print("failed %s" % (e.strerror or e))
"""


def from_cell(netns, uid, host, port, timeout=1.5):
    """Connects from inside the cell as `uid`: "connected" or "failed ..."."""
    argv = ["nsenter", "--net=/run/netns/" + netns, "setpriv", "--reuid", str(uid), "--regid", str(uid),
            "--clear-groups", "/usr/bin/python3", "-c", CONNECT, host, str(port), str(timeout)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return (r.stdout.strip() or r.stderr.strip() or "no output")


def from_sandbox(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def api_get(env, path):
    """GET over the API's Unix socket (root may always use it)."""
    http = "http://localhost" + path
    r = subprocess.run(["curl", "-s", "--unix-socket", os.path.join(env.run_dir, "api.sock"), http],
                       capture_output=True, text=True, timeout=30)
    return r.stdout


def drops(env, name):
    return (env.user(name) or {}).get("egress_dropped", 0)


def reload(env, users, dc_port, seen):
    lines = ["%d=%s:%d" % (n, sb.INET_ADDR, dc_port) for n in sb.DC_INDICES]
    env.write_config(users, sections={"telegram": {"dc": lines}})
    env.sup.signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while "reloaded users=" not in env.log_text()[seen:] and time.monotonic() < deadline:
        time.sleep(0.1)
    h.check("reloaded users=" in env.log_text()[seen:], "the reload is taken")


def test():
    env = sb.Setup("egress", pool="10.216.0.0/16", prefix="mte", nat=False, uid_first=350000)
    try:
        # Hosts that are not the DC's: a second address of the "internet"
        # and the metadata address, both routed from the sandbox.
        sb.run(sb.in_inet(["ip", "addr", "add", OTHER_HOST + "/24", "dev", "eth0"]))
        sb.run(sb.in_inet(["ip", "addr", "add", METADATA + "/32", "dev", "lo"]))
        sb.run(["ip", "route", "add", METADATA + "/32", "via", sb.INET_ADDR])
        other_port = sb.free_port()
        listener = sb.Proc(sb.in_inet(["/usr/bin/python3", "-c", LISTENER, "%s:9000" % OTHER_HOST,
                                       "%s:80" % METADATA, "%s:%d" % (sb.INET_ADDR, other_port)]),
                           name="listener")
        listener.wait_line("listening")
        # The test can fail: from outside any cell all three answer.
        for host, port in ((OTHER_HOST, 9000), (METADATA, 80), (sb.INET_ADDR, other_port)):
            h.check(from_sandbox(host, port), "%s:%d answers from the sandbox (outside the cells)" % (host, port))

        users = [{"name": "alice", "secret": ALICE}, {"name": "bob", "secret": BOB}]
        env.write_config(users)
        env.start()
        s = env.require_running(["alice", "bob"])
        alice = env.user("alice", s)
        netns, uid = alice["cell"]["netns"], alice["uid"]
        dc_port = env.dc["echo"][1]

        r = subprocess.run(["nft", "list", "set", "inet", "mtwarden", "egress4"], capture_output=True, text=True)
        h.check("%s . tcp . %d" % (sb.INET_ADDR, dc_port) in r.stdout and
                "%s . tcp . %d" % (sb.INET_ADDR, env.mask_port) in r.stdout,
                "the egress set holds the fake DC and the mask host (%s)" % " ".join(r.stdout.split())[-200:])

        # --- allowed: the DC and the mask host, as the worker's uid in its cell.
        h.check(from_cell(netns, uid, sb.INET_ADDR, dc_port) == "connected", "alice's cell reaches the fake DC")
        h.check(from_cell(netns, uid, sb.INET_ADDR, env.mask_port) == "connected", "alice's cell reaches the mask host")
        # --- dropped: everything else.
        before = drops(env, "alice")
        for host, port, what in ((OTHER_HOST, 9000, "a non-DC sandbox host"),
                                 (METADATA, 80, "the metadata address"),
                                 (sb.INET_ADDR, other_port, "the DC's host on another port")):
            got = from_cell(netns, uid, host, port)
            h.check(got.startswith("failed"), "alice's cell cannot reach %s %s:%d (%s)" % (what, host, port, got))
        # DC traffic still flows for the same user.
        h.check(h.echo_session(env.port, ALICE, total=256 * 1024), "alice relays through the DC meanwhile")
        s = env.wait_status(lambda s: (env.user("alice", s) or {}).get("egress_dropped", 0) >= before + 3, timeout=15)
        after = drops(env, "alice")
        h.check(after >= before + 3, "alice's drop counter rose by at least 3 SYNs (%d -> %d)" % (before, after))
        h.check(drops(env, "bob") == 0, "bob's drop counter stays 0 (%d)" % drops(env, "bob"))
        log = env.log_text()
        h.check("cell egress dropped user=alice" in log, "the drops are logged for alice")
        n_logged = log.count("cell egress dropped user=alice")
        h.check(n_logged <= 2, "in bounded volume (%d lines for several drops)" % n_logged)
        metrics = api_get(env, "/metrics")
        line = next((l for l in metrics.splitlines()
                     if l.startswith('mtwarden_user_egress_dropped_packets_total{user="alice"}')), "")
        h.check(line and int(line.split()[-1]) >= before + 3, "/metrics shows alice's drops (%r)" % line)
        user = json.loads(api_get(env, "/v1/users/alice/status") or "{}")
        h.check(user.get("egress_dropped", 0) >= before + 3,
                "GET /v1/users/alice/status shows egress_dropped (%s)" % user.get("egress_dropped"))

        # --- reload: the DC moves to a new port, without cutting connections.
        new_dc, new_port = sb.start_fake_dc("echo")
        h.check(from_cell(netns, uid, sb.INET_ADDR, new_port).startswith("failed"),
                "before the reload the new DC port is not reachable from the cell")
        t = sb.Transfer(env.port, ALICE, total=6 * 1024 * 1024, chunk=16384, pause=0.003)
        t.start()
        t.started.wait(20)
        reload(env, users, new_port, len(env.log_text()))
        h.check(from_cell(netns, uid, sb.INET_ADDR, new_port) == "connected", "after the reload the new DC port is")
        h.check(from_cell(netns, uid, sb.INET_ADDR, dc_port) == "connected",
                "the old DC port stays open while alice's worker from before the reload runs")
        t.join(120)
        h.check(t.ok is True, "a transfer across the reload completes intact (%s)" % t.error)
        # Both workers started before the reload: once both are replaced the old port closes.
        s = env.status()
        for name in ("alice", "bob"):
            os.kill(env.user(name, s)["pid"], signal.SIGKILL)
        old = {n: env.user(n, s)["pid"] for n in ("alice", "bob")}
        s = env.wait_status(lambda s: all(env.user(n, s)["state"] == "running" and env.user(n, s)["pid"] not in (0, old[n])
                                          for n in old), timeout=20)
        h.check(s is not None, "both workers restarted")
        got = "connected"
        deadline = time.monotonic() + 5
        while got == "connected" and time.monotonic() < deadline:
            got = from_cell(netns, uid, sb.INET_ADDR, dc_port, timeout=1)
        h.check(got.startswith("failed"), "the old DC port is closed once no worker uses it (%s)" % got)
        h.check(h.echo_session(env.port, ALICE, total=64 * 1024), "alice relays through the new DC")
        new_dc.stop()
        listener.stop()
        h.check(env.stop() == 0, "clean stop")

        # --- a mask host given by name: its address and DNS are allowed.
        hosts = os.path.join(env.dir, "hosts")
        with open("/etc/hosts") as f, open(hosts, "w") as out:
            out.write(f.read() + "\n%s mask.egress.test\n" % sb.INET_ADDR)
        sb.run(["mount", "--bind", hosts, "/etc/hosts"])  # the sandbox's own mount namespace
        try:
            env.write_config(users, sections={"mask": {"address": "mask.egress.test:%d" % env.mask_port}})
            seen = len(env.log_text())
            env.start()
            a = env.user("alice", env.require_running(["alice", "bob"]))
            r = subprocess.run(["nft", "list", "set", "inet", "mtwarden", "egress4"], capture_output=True, text=True)
            text = " ".join(r.stdout.split())
            h.check("%s . tcp . %d" % (sb.INET_ADDR, env.mask_port) in text,
                    "the mask host's name resolved into the egress set")
            with open("/etc/resolv.conf") as f:
                servers = [l.split()[1] for l in f if l.startswith("nameserver") and len(l.split()) > 1
                           and ":" not in l.split()[1]]
            h.check(all("%s . udp . 53" % ns in text and "%s . tcp . 53" % ns in text for ns in servers),
                    "DNS to the name servers %s allowed because a name is used" % servers)
            h.check("dns=yes" in env.log_text()[seen:], "the update is logged with dns=yes")
            h.check(from_cell(a["cell"]["netns"], a["uid"], sb.INET_ADDR, env.mask_port) == "connected",
                    "the cell reaches the mask host at its resolved address")
            h.check(env.stop() == 0, "clean stop")
        finally:
            sb.run(["umount", "/etc/hosts"], check=False)
    finally:
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "egress")

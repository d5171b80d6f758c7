#!/usr/bin/python3
"""Supervisor end to end, a reload reaching running workers
(docs/configuration.md, "Reloads"; docs/worker-control.md, "settings"):

- a reload that moves DC 2 to another fake DC sends the running worker a
  settings message: the worker is not restarted, a connection opened before
  the reload keeps relaying to the first DC, and new connections reach the
  second one;
- with an IPv6 pool, `[cells] ipv6_forwarding = true` and a reload that
  adds an IPv6 address to DC 2 with `prefer_ipv6 = true`, new connections
  leave the cell over IPv6 (NAT66) and reach a fake DC listening on an
  IPv6 address only; telethon relays through it; turning prefer_ipv6 off
  again sends new connections back to IPv4;
- a reload that changes a restart-only setting ([[listener]]) names it in
  the answer of POST /v1/reload and in `mtwardenctl reload`, and the running
  listener keeps serving.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import json
import os
import subprocess
import time

import harness as h
import sandbox as sb

ALICE = "6c23456789abcdef0123456789abcdef"
HOST6 = "fd00:198:18::1"
INET6 = "fd00:198:18::2"
CTL = os.environ.get("MTW_CTL", "build/ht/ctl/mtwardenctl")


def start_dc(listen, record):
    p = sb.Proc(sb.in_inet([h.FAKE_DC, "--listen", listen, "--mode", "echo", "--record", record]),
                name="fake-dc-" + os.path.basename(record))
    return p, int(p.wait_line("listening ").split()[1])


def records(path):
    try:
        with open(path) as f:
            return [l.strip() for l in f if l.strip()]
    except FileNotFoundError:
        return []


def wait_records(path, n, timeout=10):
    deadline = time.monotonic() + timeout
    while len(records(path)) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return records(path)


def reload_and_wait(env, users, sections, seen, listeners=None):
    """Writes the config, reloads over the API, waits for the settings."""
    env.write_config(users, sections=sections, listeners=listeners)
    r = subprocess.run(["curl", "-s", "-X", "POST", "--unix-socket",
                        os.path.join(env.run_dir, "api.sock"), "http://localhost/v1/reload"],
                       capture_output=True, text=True, timeout=30)
    try:
        answer = json.loads(r.stdout)
    except ValueError:
        answer = {"raw": r.stdout}
    deadline = time.monotonic() + 10
    while "settings sent user=alice" not in env.log_text()[seen:] and time.monotonic() < deadline:
        time.sleep(0.05)
    return answer


def test():
    sb.run(["ip", "addr", "add", HOST6 + "/64", "dev", "up0", "nodad"])
    sb.run(sb.in_inet(["ip", "addr", "add", INET6 + "/64", "dev", "eth0", "nodad"]))
    env = sb.Setup("live", pool="10.217.0.0/16", prefix="mtl", nat=True, uid_first=360000)
    try:
        rec_b = os.path.join(env.dir, "dc-b.log")
        rec_6 = os.path.join(env.dir, "dc-6.log")
        dc_b, port_b = start_dc(sb.INET_ADDR + ":0", rec_b)
        dc_6, port_6 = start_dc("[%s]:0" % INET6, rec_6)
        users = [{"name": "alice", "secret": ALICE}]
        cells = {"ipv6_prefix": "fd6d:7477:6173::/48", "ipv6_forwarding": True}
        first = {"cells": cells}
        env.write_config(users, sections=first)
        env.start()
        alice = env.user("alice", env.require_running(["alice"]))
        pid = alice["pid"]

        # Before: DC 2 is the Setup's echo DC (dc.log).
        old = sb.Stream(env.port, ALICE)
        h.check(old.roundtrip(), "a connection relays before the reload")
        h.check(len(wait_records(env.dc_record, 1)) == 1, "it reached the first DC")

        # Reload 1: DC 2 moves to another fake DC (IPv4).
        moved = env.dc_lines()
        moved[sb.DC_INDICES.index(2)] = "2=%s:%d" % (sb.INET_ADDR, port_b)
        seen = len(env.log_text())
        answer = reload_and_wait(env, users, {"cells": cells, "telegram": {"dc": moved}}, seen)
        h.check(answer.get("reloaded") is True and answer.get("restart_needed") == [],
                "POST /v1/reload: taken, nothing waits for a restart (%s)" % answer)
        h.check("settings sent user=alice" in env.log_text()[seen:], "the running worker is sent its new settings")
        new = sb.Stream(env.port, ALICE)
        h.check(new.roundtrip(), "a connection opened after the reload relays")
        got = wait_records(rec_b, 1)
        h.check(len(got) == 1 and "from=" + sb.HOST_ADDR in got[0],
                "it reached the new DC, NATed to the host's address (%s)" % got)
        h.check(old.roundtrip(16384), "the connection opened before the reload still relays")
        h.check(len(records(env.dc_record)) == 1, "and it stayed on the first DC (no reconnect)")
        alice = env.user("alice", env.status())
        h.check(alice["pid"] == pid and alice["state"] == "running",
                "the worker was not restarted (pid %s -> %s)" % (pid, alice["pid"]))
        new.close()

        # Reload 2: DC 2 gets an IPv6 address and prefer_ipv6 goes on.
        both = list(moved)
        both[sb.DC_INDICES.index(2)] = "2=%s:%d,[%s]:%d" % (sb.INET_ADDR, port_b, INET6, port_6)
        seen = len(env.log_text())
        reload_and_wait(env, users, {"cells": cells, "telegram": {"dc": both, "prefer_ipv6": True}}, seen)
        v6 = sb.Stream(env.port, ALICE)
        h.check(v6.roundtrip(), "with prefer_ipv6 a new connection relays")
        got6 = wait_records(rec_6, 1)
        h.check(len(got6) == 1 and "from=" + HOST6 in got6[0],
                "it reached the IPv6-only DC from the host's IPv6 address (NAT66) (%s)" % got6)
        v6.close()
        sb.telethon(env.port, ALICE, "abridged", dc=2, sizes="4,1024,65536",
                    what="telethon abridged over the cell's IPv6 egress")
        h.check(len(records(rec_6)) >= 2, "telethon's connection went over IPv6 too")
        h.check(old.roundtrip(), "the first connection still relays after two reloads")

        # Reload 3: prefer_ipv6 off again: new connections go back to IPv4.
        before_b = len(records(rec_b))
        seen = len(env.log_text())
        reload_and_wait(env, users, {"cells": cells, "telegram": {"dc": both}}, seen)
        v4 = sb.Stream(env.port, ALICE)
        h.check(v4.roundtrip(), "without prefer_ipv6 a new connection relays")
        h.check(len(wait_records(rec_b, before_b + 1)) == before_b + 1,
                "and it went to the IPv4 address again")
        v4.close()

        # Reload 4: a listener change waits for a restart and says so.
        extra = sb.free_port()
        listeners = [{"bind": "127.0.0.1:%d" % env.port, "protocols": "all"},
                     {"bind": "127.0.0.1:%d" % extra, "protocols": "all"}]
        env.write_config(users, sections={"cells": cells, "telegram": {"dc": both}}, listeners=listeners)
        r = subprocess.run([CTL, "--socket", os.path.join(env.run_dir, "api.sock"), "reload"],
                           capture_output=True, text=True, timeout=30)
        h.check(r.returncode == 0 and "waiting for a restart: [[listener]]" in r.stdout,
                "mtwardenctl reload names the listener change (%r)" % r.stdout)
        after = sb.Stream(env.port, ALICE)
        h.check(after.roundtrip(), "the running listener keeps serving")
        after.close()
        h.check(old.roundtrip(), "the first connection survived every reload")
        h.check(env.user("alice", env.status())["pid"] == pid, "one worker process throughout")
        old.close()
        for p in (dc_b, dc_6):
            p.stop()
    finally:
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "live_settings")

#!/usr/bin/python3
"""Supervisor end to end, egress through SOCKS upstreams: real dante-server
(sockd, username/password checked by PAM against its own password file) and
real microsocks, both in the sandbox's "internet" namespace, reached from the
users' cells.

- alice (auth = "user-name") and bob (auth = "user-secret") relay telethon
  through gate -> cell -> dante -> fake DC; the DC sees the connections come
  from dante's address, not the cells'; dante's log names alice and bob as
  the authenticated SOCKS users.
- mallory's name is not in dante's password file: dante refuses her, its log
  says so, and her client gets no DC.
- carol goes through microsocks without authentication.
- frank goes over SOCKS4 (user id = his name) to a second sockd.
- dave has a dead upstream (weight 1000) and dante (weight 1): his clients
  still reach the DC (failover), and the dead one is marked down.
- erin has microsocks and dante; microsocks is killed while a transfer runs
  through dante: that transfer continues, and new connections all work.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import subprocess
import time

import harness as h
import sandbox as sb
from socks_common import (DANTE_PORT, DANTE4_PORT, DEAD_PORT, MICRO_PORT, dc_lines_since, read,
                          start_dante, start_dante_socks4, start_microsocks)

KEYS = {
    "alice": "0123456789abcdef0123456789abcd01",
    "bob": "0123456789abcdef0123456789abcd02",
    "mallory": "0123456789abcdef0123456789abcd03",
    "carol": "0123456789abcdef0123456789abcd04",
    "dave": "0123456789abcdef0123456789abcd05",
    "erin": "0123456789abcdef0123456789abcd06",
    "frank": "0123456789abcdef0123456789abcd07",
}


def upstreams_toml():
    def up(name, typ, port, extra=""):
        return '[[upstream]]\nname = "%s"\ntype = "%s"\naddress = "%s:%d"\n%s\n' % (
            name, typ, sb.INET_ADDR, port, extra)
    return (up("dante", "socks5", DANTE_PORT, 'auth = "user-name"') +
            up("dante-secret", "socks5", DANTE_PORT, 'auth = "user-secret"') +
            up("micro", "socks5", MICRO_PORT) +
            up("dead", "socks5", DEAD_PORT, "weight = 1000") +
            up("dante-light", "socks5", DANTE_PORT, 'auth = "user-name"\nweight = 1') +
            up("dante4", "socks4", DANTE4_PORT, 'auth = "user-name"'))


def test():
    env = sb.Setup("socks", pool="10.203.0.0/16", prefix="mts", nat=False, uid_first=230000)
    d = env.dir
    try:
        # auth = "user-name": the password is the user's name; bob: his upstream_password.
        dante, dante_log = start_dante(d, {"alice": "alice", "bob": "bob-pw", "erin": "erin",
                                           "dave": "dave"})
        micro = start_microsocks(d)
        dante4, dante4_log = start_dante_socks4(d)
        users = [
            {"name": "alice", "secret": KEYS["alice"], "upstreams": ["dante"]},
            {"name": "bob", "secret": KEYS["bob"], "upstreams": ["dante-secret"],
             "upstream_password": "bob-pw"},
            {"name": "mallory", "secret": KEYS["mallory"], "upstreams": ["dante"]},
            {"name": "carol", "secret": KEYS["carol"], "upstreams": ["micro"]},
            {"name": "dave", "secret": KEYS["dave"], "upstreams": ["dead", "dante-light"]},
            {"name": "erin", "secret": KEYS["erin"], "upstreams": ["micro", "dante-light"]},
            {"name": "frank", "secret": KEYS["frank"], "upstreams": ["dante4"]},
        ]
        text = env.config_text(users, sections={"egress": {"health_interval_ms": 0, "failures": 1,
                                                            "retry_min_ms": 60000,
                                                            "retry_max_ms": 60000}})
        # [[upstream]] tables go before the [[user]] array (TOML allows either order).
        first_user = text.index("[[user]]")
        text = text[:first_user] + upstreams_toml() + text[first_user:]
        with open(env.config, "w") as f:
            f.write(text)
        r = subprocess.run([sb.SUPERVISOR, "--config", env.config, "--check"], capture_output=True,
                           text=True)
        h.check(r.returncode == 0, "mtwarden --check accepts the upstreams (%s)" % r.stderr.strip()[-300:])
        env.start()
        names = list(KEYS)
        s = env.require_running(names)
        cell = {u["name"]: u["cell"]["ipv4"] for u in s["users"]}

        # alice and bob: telethon through dante; the DC sees dante's address.
        n0 = dc_lines_since(env.dc_record, 0)[1]
        sb.telethon(env.port, KEYS["alice"], "abridged", dc=2, what="alice telethon via dante (user-name)")
        sb.telethon(env.port, KEYS["bob"], "intermediate", dc=4, what="bob telethon via dante (user-secret)")
        new, n0 = dc_lines_since(env.dc_record, n0)
        froms = [l.split("from=", 1)[1] if "from=" in l else "?" for l in new]
        h.check(len(new) >= 2 and all(f == sb.INET_ADDR for f in froms),
                "the DC saw alice's and bob's connections from dante %s, not their cells %s/%s (%s)"
                % (sb.INET_ADDR, cell["alice"], cell["bob"], new))
        dl = read(dante_log)
        h.check("pam.username%alice@" + cell["alice"] in dl,
                "dante's log names alice as the SOCKS user, from her cell %s" % cell["alice"])
        h.check("pam.username%bob@" + cell["bob"] in dl,
                "dante's log names bob as the SOCKS user, from his cell %s" % cell["bob"])

        # mallory: dante checks the password and refuses her.
        st = sb.Stream(env.port, KEYS["mallory"], dc=2, timeout=10)
        try:
            ok = st.roundtrip(256)
        except (OSError, RuntimeError, ValueError) as e:
            ok = False
            sb.log("mallory's connection failed as expected: %r" % e)
        st.close()
        h.check(not ok, "mallory (not in dante's password file) gets no DC")
        time.sleep(0.5)
        dl = read(dante_log)
        h.check('pam_authenticate() for user "mallory" failed' in dl,
                "dante's log shows mallory's authentication failed")
        new, n0 = dc_lines_since(env.dc_record, n0)
        h.check(new == [], "no DC connection for mallory (%s)" % new)
        log = env.log_text()
        h.check("upstream failed upstream=dante" in log and "username/password rejected" in log,
                "the worker logs the refusal with its reason")

        # carol: microsocks, no authentication.
        sb.telethon(env.port, KEYS["carol"], "abridged", dc=2, what="carol telethon via microsocks")
        new, n0 = dc_lines_since(env.dc_record, n0)
        h.check(len(new) >= 1 and all(l.endswith("from=" + sb.INET_ADDR) for l in new),
                "the DC saw carol's connection from microsocks (%s)" % new)

        # frank: SOCKS4 (the user id is his name) to the second sockd.
        sb.telethon(env.port, KEYS["frank"], "abridged", dc=2, what="frank telethon via dante over SOCKS4")
        new, n0 = dc_lines_since(env.dc_record, n0)
        h.check(len(new) >= 1 and all(l.endswith("from=" + sb.INET_ADDR) for l in new),
                "the DC saw frank's connection from dante (%s)" % new)
        h.check("tcp/connect [: %s." % cell["frank"] in read(dante4_log),
                "the SOCKS4 sockd logged frank's connection from his cell %s" % cell["frank"])

        # dave: the dead upstream (weight 1000) fails, dante carries the connection.
        sb.telethon(env.port, KEYS["dave"], "abridged", dc=2, what="dave telethon, failover dead -> dante")
        for _ in range(3):
            st = sb.Stream(env.port, KEYS["dave"], dc=2, timeout=10)
            h.check(st.roundtrip(1024), "dave: another connection through dante")
            st.close()
        log = env.log_text()
        h.check("upstream failed upstream=dead" in log and "upstream marked down upstream=dead" in log,
                "dave's dead upstream failed and was marked down")
        h.check("pam.username%dave@" + cell["dave"] in read(dante_log), "dante carried dave's connections")
        # The worker's per-upstream counters reach the status (and /metrics).
        def dave_ups(s):
            u = env.user("dave", s) or {}
            return {x["name"]: x for x in u.get("upstreams", [])}
        s = env.wait_status(lambda s: dave_ups(s).get("dante-light", {}).get("connects", 0) >= 4, timeout=15)
        ups = dave_ups(s or {})
        h.check(ups.get("dead", {}).get("up") is False and ups.get("dead", {}).get("marked_down") == 1
                and ups.get("dante-light", {}).get("up") is True
                and ups.get("dante-light", {}).get("connects", 0) >= 4,
                "status: dave's upstreams dead (down, marked down once) and dante-light (up, >= 4 connects): %s"
                % ups)

        # erin: kill microsocks during a transfer through dante.
        moved = False
        xfer = None
        for attempt in range(10):  # find a connection that went through dante (weights 1:1)
            before = read(dante_log).count("pam.username%erin@")
            t = sb.Transfer(env.port, KEYS["erin"], total=8 << 20, chunk=16384, pause=0.02)
            t.start()
            t.started.wait(10)
            time.sleep(0.5)
            if read(dante_log).count("pam.username%erin@") > before:
                xfer = t
                break
            t.join(60)
        h.check(xfer is not None, "a transfer of erin's runs through dante")
        micro.stop()
        sb.log("microsocks stopped")
        # At least 6 connections, and more until one has tried microsocks
        # (weights 1:1: all of 6 go to dante about once in 64 runs).
        ok_new = tried = 0
        while tried < 6 or (tried < 40 and "marked down upstream=micro" not in env.log_text()):
            tried += 1
            try:
                st = sb.Stream(env.port, KEYS["erin"], dc=2, timeout=10)
                ok_new += 1 if st.roundtrip(512) else 0
                st.close()
            except (OSError, RuntimeError, ValueError) as e:
                sb.log("erin new connection failed: %r" % e)
        h.check(ok_new == tried, "with microsocks gone, all %d new connections of erin's work (%d)"
                % (tried, ok_new))
        if xfer is not None:
            xfer.join(120)
            h.check(xfer.ok is True, "the transfer through dante continued (%s bytes, error %s)"
                    % (xfer.done_bytes, xfer.error))
        log = env.log_text()
        h.check("upstream=micro" in log and ("marked down upstream=micro" in log
                                             or "upstream marked down upstream=micro" in log),
                "microsocks was marked down for erin")
        dante.stop()
    finally:
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_supervisor_socks")

#!/usr/bin/python3
"""Supervisor end to end, quota: carol has quota 5 MB and throttle_rate
2 Mbit/s (normal download rate 16 Mbit/s so the quota takes a few seconds).
One long-lived connection reads a fake DC in source mode: once ~5 MB are
used, the goodput on that SAME connection drops to 2 Mbit/s (measured over
6 s after the switch), the connection stays open, and status.json shows
throttled with the quota reason. Then the quota in the file is raised and
SIGHUP sent: the same connection speeds up again, live.

Tolerance: rates are payload rates (the shaper adds the TCP/IP/Ethernet
headers, netns/rate.h); the goodput must be within 10 % of 2 Mbit/s
(test_supervisor_shaping.py holds the shaper to +-5 %).

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import socket
import threading
import time

import harness as h
import sandbox as sb

CAROL = "6123456789abcdef0123456789abcdef"
ALICE = "7123456789abcdef0123456789abcdef"
THROTTLE_BPS = 2_000_000
NORMAL_BPS = 16_000_000


class Reader(threading.Thread):
    """Reads one proxied connection as fast as possible, recording progress."""

    def __init__(self, port, secret, dc):
        super().__init__(daemon=True)
        self.c = h.Obfs2Client(secret, dc=dc)
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.s.sendall(self.c.init)
        self.total = 0
        self.samples = [(time.monotonic(), 0)]
        self.closed = None
        self.lock = threading.Lock()
        self.stop_flag = False

    def run(self):
        try:
            while not self.stop_flag:
                b = self.s.recv(65536)
                if not b:
                    self.closed = "EOF"
                    return
                with self.lock:
                    self.total += len(b)
                    self.samples.append((time.monotonic(), self.total))
        except OSError as e:
            self.closed = "error: %s" % e

    def at(self, t):
        with self.lock:
            best = self.samples[0][1]
            for ts, tot in self.samples:
                if ts <= t:
                    best = tot
                else:
                    break
            return best

    def rate_bps(self, t0, t1):
        return (self.at(t1) - self.at(t0)) * 8 / (t1 - t0)

    def close(self):
        self.stop_flag = True
        try:
            self.s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.s.close()


def users(quota):
    return [{"name": "alice", "secret": ALICE},
            {"name": "carol", "secret": CAROL, "quota": quota, "throttle_rate": "2mbit",
             "rate_down": "16mbit", "rate_up": "16mbit"}]


def test():
    env = sb.Setup("quota", pool="10.203.0.0/16", prefix="mtq", nat=True, dc_modes=("echo", "source"),
                   uid_first=230000)
    reader = None
    try:
        dc_map = {4: "source", -4: "source"}
        env.write_config(users("5MB"), dc_map=dc_map)
        env.start()
        s = env.require_running(["alice", "carol"])
        c0 = env.user("carol", s)
        h.check(c0["quota_bytes"] == 5_000_000 and c0["quota_state"] == "normal" and not c0["throttled"],
                "carol starts unthrottled with quota 5000000 (%s %s)" % (c0["quota_bytes"], c0["quota_state"]))
        h.check(c0["cell"]["rate_down_bps"] == NORMAL_BPS, "carol's cell shaped to 16 Mbit/s down (%s)"
                % c0["cell"]["rate_down_bps"])

        reader = Reader(env.port, CAROL, dc=4)
        reader.start()
        t_start = time.monotonic()
        s = env.wait_status(lambda s: env.user("carol", s)["throttled"], timeout=30, poll=0.05)
        t_thr = time.monotonic()
        c1 = env.user("carol", s)
        at_switch = reader.at(t_thr)
        sb.log("throttled after %.2f s; client had %d bytes, accounted usage %d (up %d down %d)"
               % (t_thr - t_start, at_switch, sb.user_usage(c1), c1["usage_up"], c1["usage_down"]))
        h.check(c1["throttled"] and c1["quota_state"] == "throttled" and "quota" in c1["throttle_reason"],
                "status: throttled, quota_state throttled, reason %r" % c1["throttle_reason"])
        h.check(sb.user_usage(c1) >= 5_000_000, "throttled only once usage reached the quota (%d)" % sb.user_usage(c1))
        h.check(c1["rate_down_bps"] == THROTTLE_BPS and c1["cell"]["rate_down_bps"] == THROTTLE_BPS,
                "effective and cell download rate 2 Mbit/s (%s, %s)" % (c1["rate_down_bps"], c1["cell"]["rate_down_bps"]))
        pre = reader.rate_bps(t_start + 0.5, t_thr - 0.1) if t_thr - t_start > 1 else None
        sb.log("goodput before the switch: %s Mbit/s" % ("%.2f" % (pre / 1e6) if pre else "n/a"))

        time.sleep(1.5)  # buffers past the shaper drain
        t0 = time.monotonic()
        time.sleep(6.0)
        t1 = time.monotonic()
        thr = reader.rate_bps(t0, t1)
        expect = THROTTLE_BPS
        sb.log("throttled goodput on the same connection over %.1f s: %.3f Mbit/s (expected %.3f +-10%%)"
               % (t1 - t0, thr / 1e6, expect / 1e6))
        h.check(abs(thr - expect) <= 0.10 * expect,
                "throttled goodput %.3f Mbit/s within 10%% of %.3f Mbit/s" % (thr / 1e6, expect / 1e6))
        h.check(reader.closed is None, "the connection stays open while throttled (%s)" % reader.closed)
        h.check(h.echo_session(env.port, ALICE, total=1024 * 1024), "alice unaffected by carol's throttle")
        s = env.status()
        h.check(env.user("alice", s)["throttled"] is False, "alice not throttled")

        # Raise the quota and reload: the same connection speeds up.
        env.write_config(users("1GB"), dc_map=dc_map)
        t_hup = time.monotonic()
        env.sup.signal(1)
        s = env.wait_status(lambda s: not env.user("carol", s)["throttled"], timeout=15, poll=0.05)
        t_un = time.monotonic()
        c2 = env.user("carol", s)
        sb.log("unthrottled %.2f s after SIGHUP" % (t_un - t_hup))
        h.check(not c2["throttled"] and c2["quota_state"] in ("normal", "warned") and c2["quota_bytes"] == 1_000_000_000,
                "after SIGHUP with quota 1GB: not throttled (%s, %s)" % (c2["quota_state"], c2["quota_bytes"]))
        h.check(c2["cell"]["rate_down_bps"] == NORMAL_BPS, "cell back at 16 Mbit/s (%s)" % c2["cell"]["rate_down_bps"])
        time.sleep(1.0)
        t2 = time.monotonic()
        time.sleep(3.0)
        t3 = time.monotonic()
        fast = reader.rate_bps(t2, t3)
        sb.log("goodput after unthrottle on the same connection: %.3f Mbit/s" % (fast / 1e6))
        h.check(reader.closed is None and fast > 3 * THROTTLE_BPS,
                "the same connection speeds up after the reload (%.2f Mbit/s, closed=%s)" % (fast / 1e6, reader.closed))
        h.check(fast <= NORMAL_BPS * 1.10, "and stays within carol's normal 16 Mbit/s shape (%.2f)" % (fast / 1e6))
        h.check("reload" in env.log_text(), "the reload is logged")
        reader.close()
        rc = env.stop()
        h.check(rc == 0, "SIGTERM: exit 0 (%s)" % rc)
    finally:
        if reader:
            reader.close()
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_supervisor_quota")

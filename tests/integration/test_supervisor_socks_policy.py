#!/usr/bin/python3
"""Supervisor end to end, upstream policy through the real gate and cells:
weights, shaping and quotas with SOCKS upstreams (real dante and microsocks
in the sandbox's "internet" namespace).

- wally has dante (weight 3) and microsocks (weight 1). microsocks binds its
  outgoing connections to a second address of the internet namespace
  (198.18.0.3), dante to 198.18.0.2, so the fake DC tells which upstream
  carried each connection without asking the worker. Over 200 new
  connections the count through dante must lie in the two-sided exact
  binomial interval of p = 3/4 whose tails hold at most 1e-4 each; the test
  first checks that the same interval rejects the wrong splits 1:1 and 1:3
  and all-to-one, so a selection that ignored the weights fails.
- sam goes through dante with rate_down = 4 Mbit/s: his download (fake DC in
  source mode) runs at 4 Mbit/s within the 10 % of test_supervisor_quota.py,
  measured from 1.5 s after the start over 6 s: the cell's shaper holds
  traffic that leaves through a SOCKS proxy too.
- quinn goes through dante with quota 5 MB, throttle_rate 2 Mbit/s and
  16 Mbit/s otherwise: once usage reaches the quota the status shows him
  throttled and the same connection slows to 2 Mbit/s (within 10 %), as
  test_supervisor_quota.py checks for a direct user.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import math
import os
import sys
import time

import harness as h
import sandbox as sb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import socks_common as socks  # noqa: E402
from test_supervisor_quota import Reader  # noqa: E402

KEYS = {
    "wally": "0123456789abcdef0123456789abcf01",
    "sam": "0123456789abcdef0123456789abcf02",
    "quinn": "0123456789abcdef0123456789abcf03",
}
MICRO_OUT = "198.18.0.3"  # microsocks' outgoing address
CONNECTIONS = 200
WEIGHT_DANTE, WEIGHT_MICRO = 3, 1
TAIL = 1e-4  # each tail of the binomial acceptance interval
DC_SOURCE = 4
SAM_BPS = 4_000_000
THROTTLE_BPS = 2_000_000


def binom_interval(n, p, tail):
    """The smallest [lo, hi] with P(X < lo) <= tail and P(X > hi) <= tail
    for X ~ Binomial(n, p) (exact sums)."""
    pmf = [math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(n + 1)]
    lo, acc = 0, 0.0
    while acc + pmf[lo] <= tail:
        acc += pmf[lo]
        lo += 1
    hi, acc = n, 0.0
    while acc + pmf[hi] <= tail:
        acc += pmf[hi]
        hi -= 1
    return lo, hi


def binom_mass(n, p, lo, hi):
    return sum(math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(lo, hi + 1))


def upstreams_toml():
    return ('[[upstream]]\nname = "dante"\ntype = "socks5"\naddress = "%s:%d"\nauth = "user-name"\n'
            'weight = %d\n\n'
            '[[upstream]]\nname = "micro"\ntype = "socks5"\naddress = "%s:%d"\nweight = %d\n\n'
            % (sb.INET_ADDR, socks.DANTE_PORT, WEIGHT_DANTE, sb.INET_ADDR, socks.MICRO_PORT,
               WEIGHT_MICRO))


def weights(env, n0):
    p = WEIGHT_DANTE / (WEIGHT_DANTE + WEIGHT_MICRO)
    lo, hi = binom_interval(CONNECTIONS, p, TAIL)
    # The interval must tell the configured split from wrong ones: the chance
    # that a 1:1, 1:3, all-dante or all-microsocks selection lands in it.
    wrong = {"1:1": 0.5, "1:3": 0.25, "all dante": 1.0, "all microsocks": 0.0}
    for label, q in wrong.items():
        mass = binom_mass(CONNECTIONS, q, lo, hi)
        h.check(mass < 0.05, "the interval [%d, %d] rejects a %s split (it would pass with p %.2g)"
                % (lo, hi, label, mass))
    ok = 0
    for i in range(CONNECTIONS):
        st = sb.Stream(env.port, KEYS["wally"], dc=2, timeout=10)
        try:
            ok += 1 if st.roundtrip(64) else 0
        except (OSError, RuntimeError, ValueError) as e:
            sb.log("wally connection %d failed: %r" % (i, e))
        finally:
            st.close()
    h.check(ok == CONNECTIONS, "all %d connections of wally's echo (%d)" % (CONNECTIONS, ok))
    time.sleep(0.3)
    new, n0 = socks.dc_lines_since(env.dc_record, n0)
    froms = [l.rsplit("from=", 1)[1] if "from=" in l else "?" for l in new]
    via_dante = froms.count(sb.INET_ADDR)
    via_micro = froms.count(MICRO_OUT)
    sb.log("wally: %d via dante, %d via microsocks, %d other (weights %d:%d, interval [%d, %d])"
           % (via_dante, via_micro, len(froms) - via_dante - via_micro, WEIGHT_DANTE, WEIGHT_MICRO,
              lo, hi))
    h.check(via_dante + via_micro == CONNECTIONS and len(froms) == CONNECTIONS,
            "the DC saw all %d connections, each from dante or microsocks (%d + %d of %d)"
            % (CONNECTIONS, via_dante, via_micro, len(froms)))
    h.check(lo <= via_dante <= hi,
            "weights %d:%d: %d of %d connections through dante, within the binomial interval [%d, %d]"
            % (WEIGHT_DANTE, WEIGHT_MICRO, via_dante, CONNECTIONS, lo, hi))
    return n0


def measure(reader, secs):
    t0 = time.monotonic()
    time.sleep(secs)
    t1 = time.monotonic()
    return reader.rate_bps(t0, t1), t1 - t0


def shaping(env, dante_log):
    reader = Reader(env.port, KEYS["sam"], dc=DC_SOURCE)
    reader.start()
    try:
        time.sleep(1.5)  # TCP start-up, queues filling
        got, span = measure(reader, 6.0)
        sb.log("sam via dante, rate_down %.1f Mbit/s: %.3f Mbit/s over %.1f s"
               % (SAM_BPS / 1e6, got / 1e6, span))
        h.check(abs(got - SAM_BPS) <= 0.10 * SAM_BPS,
                "sam's download through dante %.3f Mbit/s within 10%% of his rate_down %.1f Mbit/s"
                % (got / 1e6, SAM_BPS / 1e6))
        h.check(reader.closed is None, "sam's connection stays open (%s)" % reader.closed)
    finally:
        reader.close()
    h.check("pam.username%sam@" in socks.read(dante_log), "dante carried sam's connection")


def quota(env, dante_log):
    c0 = env.user("quinn")
    h.check(c0["quota_bytes"] == 5_000_000 and not c0["throttled"],
            "quinn starts unthrottled with quota 5000000 (%s)" % c0["quota_state"])
    reader = Reader(env.port, KEYS["quinn"], dc=DC_SOURCE)
    reader.start()
    try:
        t_start = time.monotonic()
        s = env.wait_status(lambda s: env.user("quinn", s)["throttled"], timeout=30, poll=0.05)
        c1 = env.user("quinn", s)
        sb.log("quinn throttled after %.2f s; client had %d bytes, accounted usage %d"
               % (time.monotonic() - t_start, reader.at(time.monotonic()), sb.user_usage(c1)))
        h.check(c1["throttled"] and c1["quota_state"] == "throttled" and "quota" in c1["throttle_reason"],
                "quinn (through dante) throttled for his quota (%s, %r)"
                % (c1["quota_state"], c1["throttle_reason"]))
        h.check(sb.user_usage(c1) >= 5_000_000, "only once usage reached the quota (%d)" % sb.user_usage(c1))
        time.sleep(1.5)  # buffers past the shaper drain
        got, span = measure(reader, 6.0)
        sb.log("quinn throttled via dante: %.3f Mbit/s over %.1f s" % (got / 1e6, span))
        h.check(abs(got - THROTTLE_BPS) <= 0.10 * THROTTLE_BPS,
                "quinn's throttled goodput through dante %.3f Mbit/s within 10%% of %.1f Mbit/s"
                % (got / 1e6, THROTTLE_BPS / 1e6))
        h.check(reader.closed is None, "quinn's connection stays open while throttled (%s)" % reader.closed)
    finally:
        reader.close()
    h.check("pam.username%quinn@" in socks.read(dante_log), "dante carried quinn's connection")


def test():
    sb.run(sb.in_inet(["ip", "addr", "add", MICRO_OUT + "/24", "dev", "eth0"]))
    env = sb.Setup("socksp", pool="10.208.0.0/16", prefix="mtp", nat=False,
                   dc_modes=("echo", "source"), uid_first=280000)
    d = env.dir
    try:
        dante, dante_log = socks.start_dante(d, {n: n for n in KEYS})
        micro = sb.Proc(sb.in_inet(["microsocks", "-i", sb.INET_ADDR, "-p", str(socks.MICRO_PORT),
                                    "-b", MICRO_OUT]),
                        name="microsocks", stderr_path=os.path.join(d, "microsocks.log"))
        socks.wait_listening(socks.MICRO_PORT, "microsocks")
        users = [
            {"name": "wally", "secret": KEYS["wally"], "upstreams": ["dante", "micro"]},
            {"name": "sam", "secret": KEYS["sam"], "upstreams": ["dante"],
             "rate_down": "4mbit", "rate_up": "4mbit"},
            {"name": "quinn", "secret": KEYS["quinn"], "upstreams": ["dante"], "quota": "5MB",
             "throttle_rate": "2mbit", "rate_down": "16mbit", "rate_up": "16mbit"},
        ]
        # per_ip_rate off: the 200 connections come from one client address
        # faster than the gate's default 30/s.
        text = env.config_text(users, sections={"egress": {"health_interval_ms": 0},
                                                "connections": {"per_ip_rate": 0}},
                               dc_map={DC_SOURCE: "source", -DC_SOURCE: "source"})
        first_user = text.index("[[user]]")
        text = text[:first_user] + upstreams_toml() + text[first_user:]
        with open(env.config, "w") as f:
            f.write(text)
        env.start()
        env.require_running(list(KEYS))
        n0 = socks.dc_lines_since(env.dc_record, 0)[1]
        weights(env, n0)
        shaping(env, dante_log)
        quota(env, dante_log)
        micro.stop()
        dante.stop()
    finally:
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_supervisor_socks_policy")

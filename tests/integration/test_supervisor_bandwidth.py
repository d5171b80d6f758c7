#!/usr/bin/python3
"""Supervisor end to end, the host bandwidth budget ([bandwidth] down):
three users download through the gate and their cells from the fake DC in
source mode under a 48 Mbit/s budget, sweeps every 500 ms.

- heavy1 and heavy2 read as fast as they can; light echoes about
  12 Mbit/s through the echo DC (sent at that pace, so its download is
  that too). Max-min fair: light keeps what it uses and the
  heavy two split the rest; from two sweeps on, each heavy user's payload
  must be within +-10 % of (budget - light) / 2, light counted as its
  cell's link carries it (the veth counter), and all three together no
  more than 10 % over the budget.
- light stops: its share goes to the heavy two, about 24 Mbit/s each, within
  two sweeps (checked from 1.5 s after).
- heavy1's bandwidth_weight set to 3 over the API (PATCH, live): the two
  heavy users get 3:1 of the budget, 36 and 12 Mbit/s within +-10 %, with
  no worker restarted and no connection broken.
- The status shows each user's share (share_down_bps), /metrics the
  mtwarden_user_bandwidth_share_bps gauge.
- The budget is removed by a reload: the heavy users are unshaped again
  (far over the budget together).

The rates are TCP payload, as the budget is. Runs in its own network
sandbox (tests/integration/sandbox.py); needs root.
"""

import os
import socket
import sys
import threading
import time

import harness as h
import sandbox as sb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_supervisor_api import Api  # noqa: E402
from test_supervisor_shaping import DC_SOURCE, Conn, Sampler, mean_rate, secret_for  # noqa: E402

MBIT = 1_000_000
BUDGET = 48 * MBIT
LIGHT = 12 * MBIT
SWEEP_MS = 500


class PacedEcho:
    """A light user: `bps` of payload sent to the echo DC in one write per
    50 ms and read back, so its download is what it sends, whatever share
    it is given (a reader that merely reads slowly would let the proxy's
    buffers towards it fill first, seconds of download above its pace)."""

    def __init__(self, port, secret, bps):
        self.c = h.Obfs2Client(secret, dc=2)  # echo
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s.sendall(self.c.init)
        self.per_tick = int(bps / 8 / 20)
        self.bytes = 0
        self.error = None
        self.stop_flag = False
        self.t = threading.Thread(target=self.send, daemon=True)
        self.r = threading.Thread(target=self.read, daemon=True)
        self.t.start()
        self.r.start()

    def send(self):
        chunk = bytes(self.per_tick)
        next_t = time.monotonic()
        while not self.stop_flag:
            try:
                self.s.sendall(self.c.seal(chunk))
            except OSError as e:
                if not self.stop_flag:
                    self.error = "send: %s" % e
                return
            next_t += 0.05
            time.sleep(max(0.0, next_t - time.monotonic()))

    def read(self):
        while not self.stop_flag:
            try:
                b = self.s.recv(1 << 16)
            except OSError as e:
                if not self.stop_flag:
                    self.error = "recv: %s" % e
                return
            if not b:
                if not self.stop_flag:
                    self.error = "EOF after %d bytes" % self.bytes
                return
            self.bytes += len(b)

    def close(self):
        self.stop_flag = True
        try:
            self.s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.t.join(2)
        self.r.join(2)
        self.s.close()


def measure(conns, secs):
    """Payload rate (bits/s) of each connection over the next `secs`."""
    samplers = [Sampler([c]) for c in conns]
    for s in samplers:
        s.start()
    t0 = time.monotonic()
    time.sleep(secs)
    for s in samplers:
        s.stop_flag = True
        s.join()
    return [mean_rate(s.samples, t0, t0 + secs) for s in samplers]


def near(value, want, tol=0.10):
    return abs(value - want) <= tol * want


def test():
    env = sb.Setup("bandwidth", pool="10.221.0.0/16", prefix="mbw", nat=False, dc_modes=("echo", "source"),
                   uid_first=331000)
    conns = []
    try:
        sections = {"bandwidth": {"down": "48mbit"}, "accounting": {"sweep_interval_ms": SWEEP_MS}}
        env.write_config([], sections=sections, dc_map={DC_SOURCE: "source", -DC_SOURCE: "source"})
        env.start()
        api = Api(sock_path=os.path.join(env.run_dir, "api.sock"))
        secrets = {}
        for i, name in enumerate(("heavy1", "heavy2", "light")):
            secrets[name] = secret_for(i)
            resp = api.post("/v1/users", {"name": name, "secrets": [secrets[name]]})
            h.check(resp.status == 201, "create %s (no limit of its own): %r" % (name, resp))
        env.require_running(list(secrets))

        heavy = [Conn(env.port, secrets["heavy1"], True), Conn(env.port, secrets["heavy2"], True)]
        light = PacedEcho(env.port, secrets["light"], LIGHT)
        conns = heavy + [light]
        time.sleep(3 * SWEEP_MS / 1000 + 1.0)  # two sweeps to divide, a second for TCP to settle
        # light's demand is what its cell's link carries (the veth counter).
        veth0, t0 = api.get("/v1/users/light/status").json["bytes_down_total"], time.monotonic()
        rates = measure(conns, 4.0)
        light_link = (api.get("/v1/users/light/status").json["bytes_down_total"] - veth0) * 8 / (time.monotonic() - t0)
        sb.log("under the budget: heavy1 %.2f, heavy2 %.2f, light %.2f Mbit/s (%.2f on its link)"
               % (tuple(r / MBIT for r in rates) + (light_link / MBIT,)))
        want = (BUDGET - light_link) / 2
        for name, r in zip(("heavy1", "heavy2"), rates):
            h.check(near(r, want), "%s gets %.2f Mbit/s, the max-min fair %.2f +-10 %%" % (name, r / MBIT, want / MBIT))
        h.check(near(rates[2], LIGHT, 0.15), "light keeps what it uses: %.2f Mbit/s" % (rates[2] / MBIT))
        total = rates[0] + rates[1] + light_link
        h.check(total <= 1.10 * BUDGET, "all three together %.2f Mbit/s, within the %d Mbit/s budget"
                % (total / MBIT, BUDGET // MBIT))
        st = {n: api.get("/v1/users/%s/status" % n).json for n in secrets}
        for n in secrets:
            sb.log("%s: measured %.2f, share %.2f, in force %.2f Mbit/s" % (
                n, st[n].get("measured_down_bps", 0) / MBIT, st[n].get("share_down_bps", 0) / MBIT,
                st[n].get("rate_down_bps", 0) / MBIT))
        for name in ("heavy1", "heavy2"):
            share = st[name].get("share_down_bps", 0)
            h.check(near(share, want, 0.15), "%s's status shows its share %s (about %.2f Mbit/s)"
                    % (name, share, want / MBIT))
            h.check(st[name].get("rate_down_bps") == share, "... and that rate in force (%s)" % st[name].get("rate_down_bps"))
        h.check(st["heavy1"].get("share_up_bps") == 0, "no upload budget: share_up_bps 0")
        metrics = api.get("/metrics").body.decode()
        h.check('mtwarden_user_bandwidth_share_bps{user="heavy1",direction="down"}' in metrics,
                "/metrics has the share gauge")
        h.check(all(c.error is None for c in conns), "no connection broke (%s)" % [c.error for c in conns])

        # light stops: its share goes to the others.
        light.close()
        conns.remove(light)
        time.sleep(3 * SWEEP_MS / 1000)
        rates = measure(heavy, 4.0)
        sb.log("light gone: heavy1 %.2f, heavy2 %.2f Mbit/s" % tuple(r / MBIT for r in rates))
        for name, r in zip(("heavy1", "heavy2"), rates):
            h.check(near(r, BUDGET / 2), "light gone: %s gets %.2f Mbit/s, half the budget +-10 %%"
                    % (name, r / MBIT))

        # Weights: heavy1 weighs 3, heavy2 keeps the default 1.
        pids = {n: api.get("/v1/users/%s/status" % n).json["worker_pid"] for n in ("heavy1", "heavy2")}
        resp = api.patch("/v1/users/heavy1", {"limits": {"bandwidth_weight": 3}})
        h.check(resp.status == 200 and resp.json["limits"].get("bandwidth_weight") == 3
                and resp.json["overrides"].get("bandwidth_weight") == 3,
                "PATCH bandwidth_weight 3: %r" % (((resp.json["limits"], resp.json["overrides"])
                                                    if resp.status == 200 else resp),))
        time.sleep(3 * SWEEP_MS / 1000 + 1.0)
        rates = measure(heavy, 4.0)
        sb.log("weights 3:1: heavy1 %.2f, heavy2 %.2f Mbit/s" % tuple(r / MBIT for r in rates))
        for name, r, want in zip(("heavy1", "heavy2"), rates, (BUDGET * 3 / 4, BUDGET / 4)):
            h.check(near(r, want), "weights 3:1: %s gets %.2f Mbit/s, %.0f +-10 %%"
                    % (name, r / MBIT, want / MBIT))
        st = {n: api.get("/v1/users/%s/status" % n).json for n in ("heavy1", "heavy2")}
        h.check(st["heavy1"].get("bandwidth_weight") == 3 and st["heavy2"].get("bandwidth_weight") == 1,
                "status shows the weights (%s, %s)"
                % (st["heavy1"].get("bandwidth_weight"), st["heavy2"].get("bandwidth_weight")))
        h.check(near(st["heavy1"].get("share_down_bps", 0), BUDGET * 3 / 4, 0.05),
                "heavy1's share is three quarters of the budget (%s)" % st["heavy1"].get("share_down_bps"))
        h.check(all(st[n]["worker_pid"] == pids[n] for n in pids),
                "a weight restarts no worker (%s -> %s)" % (pids, {n: st[n]["worker_pid"] for n in st}))
        h.check(all(c.error is None for c in heavy), "no connection broke (%s)" % [c.error for c in heavy])

        # The budget removed by a reload: unshaped again.
        env.write_config([], sections={"accounting": {"sweep_interval_ms": SWEEP_MS}},
                         dc_map={DC_SOURCE: "source", -DC_SOURCE: "source"})
        resp = api.post("/v1/reload", {})
        h.check(resp.status == 200, "reload without [bandwidth]: %r" % resp)
        time.sleep(3 * SWEEP_MS / 1000 + 1.0)
        rates = measure(heavy, 2.0)
        sb.log("no budget: heavy1 %.2f, heavy2 %.2f Mbit/s" % tuple(r / MBIT for r in rates))
        h.check(sum(rates) > 2 * BUDGET, "without the budget the two heavy users move %.1f Mbit/s together"
                % (sum(rates) / MBIT))
        st = {n: api.get("/v1/users/%s/status" % n).json for n in secrets}
        h.check(st["heavy1"].get("share_down_bps") == 0 and st["heavy1"].get("rate_down_bps") == 0,
                "status: no share, no rate in force (%s, %s)"
                % (st["heavy1"].get("share_down_bps"), st["heavy1"].get("rate_down_bps")))
        h.check(all(c.error is None for c in heavy), "no connection broke (%s)" % [c.error for c in heavy])
        for c in conns:
            c.close()
        conns = []
        rc = env.stop()
        h.check(rc == 0, "SIGTERM: exit 0 (%s)" % rc)
    finally:
        for c in conns:
            c.close()
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_supervisor_bandwidth")

#!/usr/bin/python3
"""Speed of the management HTTP API (docs/api.md) with many users.

Run through bench/api_bench.sh (root). Reuses supervisor_bench.py's sandbox
(unshare --net --mount, fake DCs in netns "inet") and starts ONE real
supervisor with --users users (1000; cells at start unless --on-demand 1),
its API on the Unix socket <run_dir>/api.sock and on TCP 127.0.0.1:PORT
with a bearer token (read at first start from <state_dir>/first-start-secrets.txt:
stdout is a pipe here, not a terminal).

Phases (--only, default "wrk cpu metrics"), each repeated --reps (3) times, medians:
  wrk       GET /v1/users/<name>/status over TCP with wrk (a Lua script walks
            through u0..u<N-1>): requests/s, p50/p99, supervisor CPU.
  cpu       a bulk transfer through u0's cell (mtw-bench-loadgen, fake TLS,
            download and upload), supervisor/gate/worker CPU from /proc over
            --cpu-seconds, without and with a paced --rate (100) req/s of
            GET /v1/users/<name>/status over the Unix socket (http.client),
            and CPU 1's busy time from /proc/stat (--relay-rate fixes the
            relay's rate so that busy time compares between windows).
  probe     (not by default) no bulk transfer: supervisor CPU idle vs under
            the paced --rate, optionally with --probe CMD (perf, strace -c).
  metrics   GET /metrics over the Unix socket: time per scrape (median of
            --scrapes, 20) and body size.
  floor     (not by default; no supervisor) the paced --rate against
            api_bench.c, a minimal epoll server built with cc: the CPU per
            request of the wake-up and syscalls alone on this host.
"""

import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import supervisor_bench as sb  # noqa: E402

out, log, med, loadavg = sb.out, sb.log, sb.med, sb.loadavg


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.path_ = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path_)
        self.sock = s


def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    return r.status, body


# ------------------------------------------------------------------ /proc


def task_ns(pid):
    """CPU time of every thread of pid in ns (schedstat: exact, unlike the 10 ms ticks of stat)."""
    tot = 0
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                    tot += int(f.read().split()[0])
            except OSError:
                pass
    except OSError:
        return None
    return tot


class CpuWindow:
    """utime+stime (/proc/PID/stat) and schedstat ns of a set of pids over a window."""

    def __init__(self, pids, cpu=None):
        self.pids = dict(pids)  # name -> pid or list of pids
        self.cpu = cpu  # also the busy time of this CPU (the proxy CPU when pinned)

    def _sample(self):
        res = {}
        if self.cpu is not None:
            res["_cpu"] = cpu_busy_ticks(self.cpu)
        for name, p in self.pids.items():
            ps = p if isinstance(p, list) else [p]
            ticks = [sb.cpu_ticks(x) for x in ps]
            ns = [task_ns(x) for x in ps]
            res[name] = (sum(t for t in ticks if t is not None), sum(n for n in ns if n is not None))
        return res, time.monotonic()

    def start(self):
        self.c0, self.t0 = self._sample()

    def stop(self):
        c1, t1 = self._sample()
        el = t1 - self.t0
        r = {"seconds": el}
        if self.cpu is not None:
            r["cpu_busy_pct"] = 100.0 * (c1["_cpu"] - self.c0["_cpu"]) / sb.CLK_TCK / el
        for name in self.pids:
            r[name + "_stat_pct"] = 100.0 * (c1[name][0] - self.c0[name][0]) / sb.CLK_TCK / el
            r[name + "_pct"] = 100.0 * (c1[name][1] - self.c0[name][1]) / 1e9 / el
        return r


class Probe:
    """An operator's shell command (perf, strace -c) run beside a measured
    window; {name} fields are filled from the keyword arguments. An empty
    command runs nothing."""

    def __init__(self, cmd, **fields):
        self.proc = subprocess.Popen(cmd.format(**fields), shell=True) if cmd else None
        self.ran = self.proc is not None

    def finish(self):
        # The command bounds itself (perf -- sleep N); one that does not is
        # stopped rather than left running into the next window.
        if self.proc:
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.terminate()


# ------------------------------------------------------------------ API load


CLIENT_CPUS = None  # set of CPUs for the paced client's thread (main())


def cpu_busy_ticks(cpu):
    """Busy time of one CPU in USER_HZ ticks from /proc/stat: everything but
    idle, iowait and steal. Idle is measured exactly under NO_HZ (not
    sampled), and softirq work counts here whichever task it interrupted."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu%s " % cpu):
                v = [int(x) for x in line.split()[1:]]
                return v[0] + v[1] + v[2] + v[5] + v[6]
    return None


class PacedClient(threading.Thread):
    """GET /v1/users/u<i>/status at a fixed rate over the Unix socket (keep-alive
    or one connection per request), names cycling through u0..u<n-1>."""

    def __init__(self, sock, rate, n_users, keepalive=True):
        super().__init__(daemon=True)
        self.sock, self.rate, self.n, self.keepalive = sock, rate, n_users, keepalive
        self.stop_ev = threading.Event()
        self.lat = []
        self.errors = 0
        self.bytes = 0
        self.t_start = self.t_end = None

    def run(self):
        # Only this thread: the client is load, not the product, and must
        # not run on the supervisor's CPU (it did, unpinned, in an earlier measurement's
        # profile). Set by main() from the bench's CPU split.
        if CLIENT_CPUS:
            os.sched_setaffinity(0, CLIENT_CPUS)
        conn = UnixHTTPConnection(self.sock) if self.keepalive else None
        self.t_start = time.monotonic()
        i = 0
        while not self.stop_ev.is_set():
            due = self.t_start + i / self.rate
            d = due - time.monotonic()
            if d > 0:
                time.sleep(d)
            t = time.monotonic()
            try:
                c = conn or UnixHTTPConnection(self.sock)
                st, body = get(c, "/v1/users/u%d/status" % (i % self.n))
                if not self.keepalive:
                    c.close()
                if st != 200:
                    self.errors += 1
                self.bytes += len(body)
            except (OSError, http.client.HTTPException):
                self.errors += 1
                if conn:
                    conn.close()
                    conn = UnixHTTPConnection(self.sock)
            self.lat.append(time.monotonic() - t)
            i += 1
        self.t_end = time.monotonic()
        if conn:
            conn.close()

    def finish(self):
        self.stop_ev.set()
        self.join(10)
        el = (self.t_end or time.monotonic()) - self.t_start
        return {"requests": len(self.lat), "req_per_s": len(self.lat) / el if el else 0, "errors": self.errors,
                "p50_ms": 1000 * sb.pct(self.lat, 0.5) if self.lat else None,
                "p99_ms": 1000 * sb.pct(self.lat, 0.99) if self.lat else None,
                "bytes_per_req": self.bytes / len(self.lat) if self.lat else None}


# ------------------------------------------------------------------ system


def start_system(b):
    a = b.a
    tcp_port = sb.free_port()
    extra = ["[api]", 'tcp = "127.0.0.1:%d"' % tcp_port]
    rate = ['rate_up = "%s"' % a.relay_rate, 'rate_down = "%s"' % a.relay_rate] if a.relay_rate else []
    sup = b.supervisor("api", a.users, bool(a.on_demand), "api", extra_toml=extra, extra_defaults=rate)
    la = loadavg()
    line = sup.start(timeout=1800)
    if a.on_demand:
        s, t_ready = sup.wait(lambda s: s.get("gate", {}).get("ready"), 300)
        # u0 carries the bulk transfer: activate its cell with one connection.
        b.loadgen("activate-u0", sup.port, sup.secrets[0], ["--mode", "latency", "--conns", "1"])
        s, t_ready = sup.wait_running(["u0"], 120)
    else:
        s, t_ready = sup.wait_running(timeout=1800)
    time.sleep(a.settle)
    token = None
    secrets = os.path.join(os.path.dirname(sup.run_dir), "state", "first-start-secrets.txt")
    lines = open(secrets).read().splitlines() if os.path.exists(secrets) else []
    for i, l in enumerate(lines):
        if l.startswith("API bearer token") and i + 1 < len(lines):
            token = lines[i + 1].strip()
    if not token or not token.startswith("mtw_"):
        raise RuntimeError("no API bearer token in " + secrets)
    sup.tcp_port = tcp_port
    sup.token = token
    sup.api_sock = os.path.join(sup.run_dir, "api.sock")
    sp, gp, workers = sup.pids(s)
    out(" %s; %d users (%s), ready after %.1f s, %d workers running (load at start %s, now %s)"
        % (line, a.users, "on demand" if a.on_demand else "cells at start", t_ready, len(workers), la, loadavg()))
    out(" API: unix %s, tcp 127.0.0.1:%d (bearer token from first-start-secrets.txt)" % (sup.api_sock, tcp_port))
    # Sanity: one request on each transport.
    c = UnixHTTPConnection(sup.api_sock)
    st, body = get(c, "/v1/users/u1/status")
    c.close()
    if st != 200:
        raise RuntimeError("GET status over the Unix socket: %d %s" % (st, body[:200]))
    c = http.client.HTTPConnection("127.0.0.1", tcp_port, timeout=10)
    c.request("GET", "/v1/users/u1/status", headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    body2 = r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError("GET status over TCP: %d %s" % (r.status, body2[:200]))
    out(" GET /v1/users/u1/status: %d bytes of JSON" % len(body))
    return sup


def sup_pids(sup):
    sp, gp, workers = sup.pids()
    st = {u["name"]: u for u in sup.status()["users"]}
    return sp, gp, st["u0"]["pid"], workers


WRK_LUA = """-- GET /v1/users/u<i>/status, i cycling through 0..N-1 (per thread, threads start apart)
local n = %d
local i = 0
init = function(args)
  i = math.random(0, n - 1)
end
request = function()
  i = (i + 1) %% n
  return wrk.format("GET", "/v1/users/u" .. i .. "/status")
end
"""


def parse_wrk(text):
    def dur(s):
        m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
        if not m:
            return None
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]
    r = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    r["rps"] = float(m.group(1)) if m else None
    for q in ("50", "90", "99"):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+(\S+)" % q, text, re.M)
        r["p%s_ms" % q] = dur(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors:(.*)", text)
    r["socket_errors"] = m.group(1).strip() if m else ""
    m = re.search(r"(\d+) requests in", text)
    r["requests"] = int(m.group(1)) if m else None
    return r


def phase_wrk(b, sup):
    a = b.a
    lua = os.path.join(b.dir, "status.lua")
    with open(lua, "w") as f:
        f.write(WRK_LUA % a.users)
    cmd = ["wrk", "-t%d" % a.wrk_threads, "-c%d" % a.wrk_conns, "-d%ds" % a.wrk_seconds, "--latency",
           "-H", "Authorization: Bearer $TOKEN", "-s", lua, "http://127.0.0.1:%d" % sup.tcp_port]
    out("== wrk: GET /v1/users/<u0..u%d>/status over TCP, %d rep(s)\n   %s"
        % (a.users - 1, a.reps, " ".join(cmd) + (" (on CPU %s)" % b.load_cpus if b.load_cpus else "")))
    cmd[cmd.index("Authorization: Bearer $TOKEN")] = "Authorization: Bearer " + sup.token
    if b.load_cpus:
        cmd = ["taskset", "-c", b.load_cpus] + cmd
    sp, gp, _, _ = sup_pids(sup)
    reps = []
    for rep in range(a.reps):
        la = loadavg()
        w = CpuWindow({"sup": sp})
        w.start()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=a.wrk_seconds + 60)
        c = w.stop()
        with open(os.path.join(b.dir, "wrk-%d.txt" % rep), "w") as f:
            f.write(r.stdout + r.stderr)
        j = parse_wrk(r.stdout)
        j["load"] = la
        j["sup_cpu_pct"] = c["sup_pct"]
        j["us_cpu_per_req"] = (c["sup_pct"] / 100 * c["seconds"] * 1e6 / j["requests"]) if j.get("requests") else None
        reps.append(j)
        out(" rep %d (load %s): %8.0f req/s, p50 %.3f ms, p90 %.3f ms, p99 %.3f ms; non-2xx %d%s; "
            "supervisor CPU %.0f%% (%.0f us CPU per request)"
            % (rep + 1, la, j["rps"] or -1, j["p50_ms"] or -1, j["p90_ms"] or -1, j["p99_ms"] or -1, j["non2xx"],
               ("; socket errors " + j["socket_errors"]) if j["socket_errors"] else "", c["sup_pct"],
               j["us_cpu_per_req"] or -1))
    out(" median of %d: %.0f req/s, p50 %.3f ms, p99 %.3f ms, %.0f us supervisor CPU per request"
        % (len(reps), med([r["rps"] for r in reps]), med([r["p50_ms"] for r in reps]),
           med([r["p99_ms"] for r in reps]), med([r["us_cpu_per_req"] for r in reps])))
    b.summary["wrk"] = {"cmd": cmd[:cmd.index("-H") + 1] + ["Authorization: Bearer ..."] + cmd[cmd.index("-H") + 2:],
                        "reps": reps}


def phase_cpu(b, sup):
    a = b.a
    out("== cpu: bulk transfer through u0's cell (fake TLS, 1 conn), %d s CPU window after %d s, "
        "without / with %d req/s of GET /v1/users/<name>/status over the Unix socket (%s), %d rep(s)"
        % (a.cpu_seconds, a.warmup, a.rate, "keep-alive" if a.keepalive else "new connection per request",
           a.reps))
    sp, gp, wp, workers = sup_pids(sup)
    if b.proxy_cpus:
        sb.pin([sp, gp, wp], b.proxy_cpus)
        out(" supervisor, gate and u0's worker pinned to CPU %s; loadgen, DCs and the API client on %s; "
            "the %d other (idle) workers unpinned" % (b.proxy_cpus, b.load_cpus, len(workers) - 1))
    others = [p for p in workers if p != wp]
    # The same paced load against api_bench.c on the supervisor's CPU, in the
    # same transfer: what a minimal server's wake-up per request costs there
    # (the floor under "added"), measured in this run.
    floor, floor_sock = start_floor(b, "floor-cpu.sock")
    try:
        res = cpu_windows(b, sup, sp, gp, wp, others, floor, floor_sock)
    finally:
        floor.kill()
        floor.wait()
    report_cpu(b, res)


def cpu_windows(b, sup, sp, gp, wp, others, floor, floor_sock):
    a = b.a
    res = {}
    for rep in range(a.reps):
        for direction, dc in (("download", 1), ("upload", 3)):
            for variant in ("base", "api", "floor"):
                key = "%s %s" % (direction, variant)
                argv = [b.loadgen_bin, "--target", "127.0.0.1:%d" % sup.port, "--proto", "tls",
                        "--secret", sup.secrets[0], "--label", "cpu-" + key.replace(" ", "-"),
                        "--timeout", "120", "--mode", "throughput", "--direction", direction, "--conns", "1",
                        "--dc", str(dc), "--duration", "%g" % (a.cpu_seconds + 1), "--warmup", "%g" % a.warmup,
                        "--pid", str(wp)]
                if b.load_cpus:
                    argv = ["taskset", "-c", b.load_cpus] + argv
                la = loadavg()
                client = (PacedClient(sup.api_sock if variant == "api" else floor_sock, a.rate, a.users,
                                      a.keepalive) if variant != "base" else None)
                lg = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                if client:
                    client.start()
                time.sleep(a.warmup)
                probe = Probe(a.cpu_probe if rep == 0 else "", pid=sp, floor=floor.pid, dir=b.dir,
                              key=key.replace(" ", "-"))
                w = CpuWindow({"sup": sp, "gate": gp, "worker": wp, "others": others, "floor": floor.pid},
                              cpu=b.proxy_cpus)
                w.start()
                time.sleep(a.cpu_seconds)
                c = w.stop()
                probe.finish()
                api_r = client.finish() if client else None
                so, se = lg.communicate(timeout=180)
                try:
                    j = json.loads(so.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    j = {"error": se[-500:]}
                with open(os.path.join(b.dir, "loadgen.jsonl"), "a") as f:
                    f.write(json.dumps(j) + "\n")
                relay = c["sup_pct"] + c["gate_pct"] + c["worker_pct"]
                r = {"load": la, "cpu": c, "mb_per_s": j.get("mb_per_s"), "api": api_r, "relay_pct": relay}
                res.setdefault(key, []).append(r)
                out(" rep %d %-14s (load %s): %7.1f MB/s; CPU %% of a core: supervisor %.2f (stat %.1f), "
                    "gate %.2f, worker %.1f, relay %.1f; idle workers %.1f; floor server %.2f; CPU %s busy %.1f%s"
                    % (rep + 1, key, la, j.get("mb_per_s", -1), c["sup_pct"], c["sup_stat_pct"], c["gate_pct"],
                       c["worker_pct"], relay, c["others_pct"], c["floor_pct"], b.proxy_cpus,
                       c.get("cpu_busy_pct", -1),
                       "; API %.1f req/s, p50 %.2f ms, p99 %.2f ms, %d errors" % (
                           api_r["req_per_s"], api_r["p50_ms"], api_r["p99_ms"], api_r["errors"]) if api_r else ""))
    return res


def report_cpu(b, res):
    a = b.a
    out(" medians of %d:" % a.reps)
    summ = {}
    for direction in ("download", "upload"):
        base, api = res["%s base" % direction], res["%s api" % direction]
        flo = res["%s floor" % direction]
        g = lambda rs, k: med([r["cpu"][k] for r in rs])
        own = lambda r: r["cpu"]["worker_pct"] + r["cpu"]["gate_pct"]
        own_per_mb = lambda r: (own(r) / 100 * 1e6 / r["mb_per_s"]) if r.get("mb_per_s") else None
        # Paired per rep (base and api run back to back), then the median.
        added = [ra["cpu"]["sup_pct"] - rb["cpu"]["sup_pct"] for rb, ra in zip(base, api)]
        added_stat = [ra["cpu"]["sup_stat_pct"] - rb["cpu"]["sup_stat_pct"] for rb, ra in zip(base, api)]
        share = [100 * (ra["cpu"]["sup_pct"] - rb["cpu"]["sup_pct"]) / ra["relay_pct"] for rb, ra in zip(base, api)
                 if ra["relay_pct"]]
        s = {"mb_base": med([r["mb_per_s"] for r in base]), "mb_api": med([r["mb_per_s"] for r in api]),
             "sup_base": g(base, "sup_pct"), "sup_api": g(api, "sup_pct"), "added": med(added),
             "added_stat": med(added_stat), "relay_base": med([r["relay_pct"] for r in base]),
             "relay_api": med([r["relay_pct"] for r in api]), "share_of_relay": med(share),
             # The relay's own processes (u0's worker + gate, not the supervisor):
             # does the API load slow them or make them spend more CPU per MB?
             # Paired per rep, relative change with / without, then the median.
             "own_base": med([own(r) for r in base]), "own_api": med([own(r) for r in api]),
             "own_us_per_mb_base": med([own_per_mb(r) for r in base]),
             "own_us_per_mb_api": med([own_per_mb(r) for r in api]),
             "own_per_mb_change_pct": med([100 * (own_per_mb(ra) / own_per_mb(rb) - 1)
                                           for rb, ra in zip(base, api) if own_per_mb(rb) and own_per_mb(ra)]),
             "mb_change_pct": med([100 * (ra["mb_per_s"] / rb["mb_per_s"] - 1) for rb, ra in zip(base, api)
                                   if rb.get("mb_per_s") and ra.get("mb_per_s")]),
             # api_bench.c under the same load: its CPU with minus without.
             "floor_added": med([rf["cpu"]["floor_pct"] - rb["cpu"]["floor_pct"] for rb, rf in zip(base, flo)]),
             "floor_share_of_relay": med([100 * (rf["cpu"]["floor_pct"] - rb["cpu"]["floor_pct"]) / rf["relay_pct"]
                                          for rb, rf in zip(base, flo) if rf["relay_pct"]]),
             "api_rps": med([r["api"]["req_per_s"] for r in api]),
             "api_p50_ms": med([r["api"]["p50_ms"] for r in api]),
             "api_p99_ms": med([r["api"]["p99_ms"] for r in api])}
        # The whole proxy CPU: everything the API load changes there (the
        # supervisor, wake-ups and cache misses it causes the worker), with
        # the relay's softirq work counted once whichever task it ran in.
        # The relay's own share is scaled by throughput (a faster relay is
        # busier), so with a fixed rate (--relay-rate) the scale is ~1.
        if b.proxy_cpus:
            def busy_added(rb, rx):
                if not (rb.get("mb_per_s") and rx.get("mb_per_s")):
                    return None
                return rx["cpu"]["cpu_busy_pct"] - rb["cpu"]["cpu_busy_pct"] * rx["mb_per_s"] / rb["mb_per_s"]
            s["cpu_busy_base"] = med([r["cpu"]["cpu_busy_pct"] for r in base])
            s["cpu_busy_api"] = med([r["cpu"]["cpu_busy_pct"] for r in api])
            s["cpu_busy_added"] = med([x for x in (busy_added(rb, ra) for rb, ra in zip(base, api)) if x is not None])
            s["cpu_busy_floor_added"] = med([x for x in (busy_added(rb, rf) for rb, rf in zip(base, flo))
                                             if x is not None])
        summ[direction] = s
        out("  %-8s: %.1f MB/s without API load, %.1f MB/s with; supervisor %.2f%% -> %.2f%% of a core, "
            "added %.2f%% of a core (stat ticks: %.1f%%; per rep %s) = %.2f%% of the relay's CPU "
            "(supervisor+gate+worker %.1f%% -> %.1f%%) [goal <= 1%%]; API %.1f req/s, p50 %.2f ms, p99 %.2f ms"
            % (direction, s["mb_base"] or -1, s["mb_api"] or -1, s["sup_base"], s["sup_api"], s["added"],
               s["added_stat"], " ".join("%+.2f" % x for x in added), s["share_of_relay"] or -1, s["relay_base"],
               s["relay_api"], s["api_rps"], s["api_p50_ms"], s["api_p99_ms"]))
        out("            relay's own (worker+gate): %.1f%% -> %.1f%% of a core, %.0f -> %.0f us CPU per MB "
            "(%+.1f%%, per rep paired), throughput %+.1f%%"
            % (s["own_base"], s["own_api"], s["own_us_per_mb_base"] or -1, s["own_us_per_mb_api"] or -1,
               s["own_per_mb_change_pct"] or 0, s["mb_change_pct"] or 0))
        out("            floor (bench/api_bench.c, same rate, same transfer): added %.2f%% of a core = %.2f%% of "
            "the relay's CPU; the API costs %.1fx the floor"
            % (s["floor_added"], s["floor_share_of_relay"] or -1,
               s["added"] / s["floor_added"] if s["floor_added"] > 0 else float("nan")))
        if b.proxy_cpus:
            out("            CPU %s busy (all tasks; /proc/stat): %.1f%% -> %.1f%%; added, relay scaled by throughput: "
                "API %.2f%% of a core = %.2f%% of the CPU's busy time, floor %.2f%%"
                % (b.proxy_cpus, s["cpu_busy_base"], s["cpu_busy_api"], s["cpu_busy_added"],
                   100 * s["cpu_busy_added"] / s["cpu_busy_base"] if s["cpu_busy_base"] else -1,
                   s["cpu_busy_floor_added"]))
    b.summary["cpu"] = {"reps": res, "medians": summ}


def phase_probe(b, sup):
    """No bulk transfer: the supervisor's CPU idle and under the paced API
    load, optionally with --probe CMD ({pid}, {dir} substituted) running
    during the loaded window, e.g. perf record or strace -c."""
    a = b.a
    out("== probe: supervisor CPU idle vs %g req/s (%s), %g s each, %d rep(s)%s"
        % (a.rate, "keep-alive" if a.keepalive else "new connection per request", a.cpu_seconds, a.reps,
           "; probe: " + a.probe if a.probe else ""))
    sp, _, _, _ = sup_pids(sup)
    reps = []
    for rep in range(a.reps):
        la = loadavg()
        w = CpuWindow({"sup": sp})
        w.start()
        time.sleep(a.cpu_seconds)
        idle = w.stop()
        client = PacedClient(sup.api_sock, a.rate, a.users, a.keepalive)
        client.start()
        time.sleep(0.5)
        probe = Probe(a.probe if rep == 0 else "", pid=sp, dir=b.dir)
        w = CpuWindow({"sup": sp})
        w.start()
        time.sleep(a.cpu_seconds)
        busy = w.stop()
        api_r = client.finish()
        probe.finish()
        added = busy["sup_pct"] - idle["sup_pct"]
        r = {"load": la, "idle": idle, "busy": busy, "api": api_r, "added_pct": added,
             "us_per_req": added / 100 * 1e6 / api_r["req_per_s"] if api_r["req_per_s"] else None,
             "probe": probe.ran}
        reps.append(r)
        out(" rep %d (load %s): supervisor %.2f%% idle, %.2f%% with %.1f req/s: +%.2f%% of a core = %.0f us per "
            "request%s" % (rep + 1, la, idle["sup_pct"], busy["sup_pct"], api_r["req_per_s"], added,
                           r["us_per_req"] or -1, " (probe running)" if probe.ran else ""))
    out(" median of %d: +%.2f%% of a core, %.0f us CPU per request"
        % (len(reps), med([r["added_pct"] for r in reps]), med([r["us_per_req"] for r in reps])))
    b.summary.setdefault("probe", []).append(reps)


def start_floor(b, name):
    """Builds bench/api_bench.c (once) and starts it on the proxy CPU(s)."""
    exe, sock = os.path.join(b.dir, "api_bench_floor"), os.path.join(b.dir, name)
    if not os.path.exists(exe):
        subprocess.run(["cc", "-O2", "-o", exe, os.path.join(sb.ROOT, "bench", "api_bench.c")], check=True)
    argv = (["taskset", "-c", b.proxy_cpus] if b.proxy_cpus else []) + [exe, sock]
    srv = subprocess.Popen(argv)
    for _ in range(50):
        if os.path.exists(sock):
            break
        time.sleep(0.1)
    return srv, sock


def phase_floor(b):
    """The same paced load against api_bench.c, a minimal epoll server (the
    wake-up and the API's syscalls, no parsing or JSON): what any server
    process costs per request on this host, the floor under phase_probe."""
    a = b.a
    srv, sock = start_floor(b, "floor.sock")
    try:
        out("== floor: minimal epoll server (bench/api_bench.c%s) idle vs %g req/s, %g s each, %d rep(s)"
            % (" on CPU " + b.proxy_cpus if b.proxy_cpus else "", a.rate, a.cpu_seconds, a.reps))
        reps = []
        for rep in range(a.reps):
            la = loadavg()
            w = CpuWindow({"floor": srv.pid})
            w.start()
            time.sleep(a.cpu_seconds / 2)
            idle = w.stop()
            client = PacedClient(sock, a.rate, a.users, a.keepalive)
            client.start()
            time.sleep(0.5)
            w = CpuWindow({"floor": srv.pid})
            w.start()
            time.sleep(a.cpu_seconds)
            busy = w.stop()
            api_r = client.finish()
            added = busy["floor_pct"] - idle["floor_pct"]
            r = {"load": la, "added_pct": added, "api": api_r,
                 "us_per_req": added / 100 * 1e6 / api_r["req_per_s"] if api_r["req_per_s"] else None}
            reps.append(r)
            out(" rep %d (load %s): +%.2f%% of a core with %.1f req/s = %.0f us per request"
                % (rep + 1, la, added, api_r["req_per_s"], r["us_per_req"] or -1))
        out(" median of %d: +%.2f%% of a core, %.0f us CPU per request"
            % (len(reps), med([r["added_pct"] for r in reps]), med([r["us_per_req"] for r in reps])))
        b.summary["floor"] = reps
    finally:
        srv.kill()
        srv.wait()


def phase_metrics(b, sup):
    a = b.a
    out("== metrics: GET /metrics over the Unix socket (new connection each), %d scrapes per rep, %d rep(s)"
        % (a.scrapes, a.reps))
    sp, _, _, _ = sup_pids(sup)
    reps = []
    for rep in range(a.reps):
        la = loadavg()
        ts, sizes = [], []
        w = CpuWindow({"sup": sp})
        w.start()
        for _ in range(a.scrapes):
            t = time.monotonic()
            c = UnixHTTPConnection(sup.api_sock, timeout=30)
            st, body = get(c, "/metrics")
            c.close()
            ts.append(time.monotonic() - t)
            if st != 200:
                raise RuntimeError("/metrics: %d" % st)
            sizes.append(len(body))
            time.sleep(0.05)
        cw = w.stop()
        with open(os.path.join(b.dir, "metrics.txt"), "wb") as f:
            f.write(body)
        lines = body.count(b"\n")
        r = {"load": la, "median_ms": 1000 * statistics.median(ts), "min_ms": 1000 * min(ts),
             "max_ms": 1000 * max(ts), "bytes": statistics.median(sizes), "lines": lines,
             "sup_cpu_ms_per_scrape": cw["sup_pct"] / 100 * cw["seconds"] * 1000 / a.scrapes}
        reps.append(r)
        out(" rep %d (load %s): median %.2f ms per scrape (min %.2f, max %.2f), %d bytes, %d lines; "
            "supervisor CPU %.2f ms per scrape (incl. its idle sweeps over the window)"
            % (rep + 1, la, r["median_ms"], r["min_ms"], r["max_ms"], r["bytes"], lines,
               r["sup_cpu_ms_per_scrape"]))
    out(" median of %d: %.2f ms per scrape, %d bytes (%.0f bytes per user)"
        % (len(reps), med([r["median_ms"] for r in reps]), med([r["bytes"] for r in reps]),
           med([r["bytes"] for r in reps]) / a.users))
    b.summary["metrics"] = reps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(sb.ROOT, "build", "hb"))
    ap.add_argument("--out-dir", default=None)
    ap.add_argument("--only", default="wrk cpu metrics")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--on-demand", type=int, default=0, help="1: users without cells (only u0 gets one)")
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--wrk-threads", type=int, default=1)
    ap.add_argument("--wrk-conns", type=int, default=8)
    ap.add_argument("--wrk-seconds", type=int, default=10)
    ap.add_argument("--rate", type=float, default=100.0, help="API requests per second in the cpu phase")
    ap.add_argument("--keepalive", type=int, default=1, help="0: one connection per API request")
    ap.add_argument("--cpu-seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--probe", default="", help="probe phase: shell command run during the first loaded "
                    "window, {pid} = supervisor, {dir} = output dir")
    ap.add_argument("--cpu-probe", default="", help="cpu phase: shell command run during each window of the "
                    "first rep, {pid} = supervisor, {floor} = floor server, {dir} = output dir, {key} = window "
                    "(download-base, download-api, download-floor, upload-...)")
    ap.add_argument("--relay-rate", default="", help="[defaults] rate_up and rate_down (e.g. 2400mbit): "
                    "a fixed relay rate below the proxy CPU's limit, so its busy time measures the API's cost")
    ap.add_argument("--scrapes", type=int, default=20)
    ap.add_argument("--nat", type=int, default=1)
    ap.add_argument("--pin", type=int, default=1)
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    args.nat = bool(args.nat)
    # Bench() reads these; unused here.
    sb.enter_sandbox()
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if not sb.shutil.which("wrk") and "wrk" in args.only.split():
        sys.exit("api_bench: wrk not found (apt-get install wrk)")
    b = sb.Bench(args)
    global CLIENT_CPUS
    if b.load_cpus:
        CLIENT_CPUS = set()
        for part in b.load_cpus.split(","):
            lo, _, hi = part.partition("-")
            CLIENT_CPUS.update(range(int(lo), int(hi or lo) + 1))
    only = args.only.split()
    out("mtw API bench: build=%s out=%s cpus=%d pin=%s load=%s"
        % (args.build, b.dir, os.cpu_count(), b.proxy_cpus or "off", loadavg()))
    sup = None
    try:
        if "floor" in only:
            phase_floor(b)
        if set(only) & {"wrk", "metrics", "cpu", "probe"}:
            sup = start_system(b)
            if "wrk" in only:
                phase_wrk(b, sup)
            if "metrics" in only:
                phase_metrics(b, sup)
            if "cpu" in only:
                phase_cpu(b, sup)
            if "probe" in only:
                phase_probe(b, sup)
            rc, t_stop = sup.stop()
            out(" stop: rc=%s, %.1f s" % (rc, t_stop))
    finally:
        with open(os.path.join(b.dir, "summary.json"), "w") as f:
            json.dump(b.summary, f, indent=1, default=str)
        sb.kill_all()
    out("raw results: %s (summary.json, wrk-*.txt, metrics.txt, loadgen.jsonl, */supervisor.log)" % b.dir)


if __name__ == "__main__":
    main()

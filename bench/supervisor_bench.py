#!/usr/bin/python3
"""Scale benchmarks of the supervisor (mtwarden + gate + one worker per cell).

Run through bench/supervisor_bench.sh (root). The driver re-executes itself
inside a throw-away sandbox:

    unshare --net --mount --propagation private --fork --kill-child

then mounts a tmpfs on /run, brings loopback up and creates a netns "inet"
(veth up0 198.18.0.1/24 <-> eth0 198.18.0.2/24) where the fake DCs
(mtw-bench-dc --init on: echo, source, sink) listen. Cells reach them
through the host routing of the sandbox (NAT as configured). Nothing leaves
the sandbox: it has loopback and that veth only.

Phases (--only, default all):
  scale     N (1000) users, cells at start: start time, RSS/PSS of the whole
            system, idle CPU (supervisor, sweep, gate, workers).
  ondemand  M (10000) on-demand users, A (100) activated: memory; first
            connection latency of cold users vs new connections of warm users.
  latency   connect -> first echoed byte, gate + fd passing vs a standalone
            worker (mtwarden-worker --bind), fresh connections.
  throughput bulk MB/s through gate + cell vs a standalone worker.

Clients are mtw-bench-loadgen (fake TLS with ee secrets, --mode latency /
throughput). Prints human-readable results on stdout and a JSON summary in
OUT_DIR/summary.json.
"""

import argparse
import ctypes
import hashlib
import json
import os
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARK = "MTW_SUPERVISOR_BENCH_SANDBOX"
INET_NS = "inet"
HOST_ADDR = "198.18.0.1"
INET_ADDR = "198.18.0.2"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

_children = []


def log(msg):
    print("[%8.2f] %s" % (time.monotonic() - T0, msg), file=sys.stderr, flush=True)


T0 = time.monotonic()


def out(msg=""):
    print(msg, flush=True)


def _pdeathsig():
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def run(cmd, check=True):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))
    return r


# ------------------------------------------------------------------ sandbox


def enter_sandbox():
    if os.environ.get(MARK) == "1":
        run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run"])
        run(["ip", "link", "set", "lo", "up"])
        run(["ip", "netns", "add", INET_NS])
        run(["ip", "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", INET_NS])
        run(["ip", "addr", "add", HOST_ADDR + "/24", "dev", "up0"])
        run(["ip", "link", "set", "up0", "up"])
        ns = ["ip", "netns", "exec", INET_NS]
        run(ns + ["ip", "link", "set", "lo", "up"])
        run(ns + ["ip", "addr", "add", INET_ADDR + "/24", "dev", "eth0"])
        run(ns + ["ip", "link", "set", "eth0", "up"])
        run(ns + ["ip", "route", "add", "default", "via", HOST_ADDR])  # pools routed back (nat=false)
        return
    if os.geteuid() != 0:
        sys.exit("supervisor_bench: needs root (network namespaces, veths, tc, nft)")
    env = dict(os.environ)
    env[MARK] = "1"
    argv = ["unshare", "--net", "--mount", "--propagation", "private", "--fork", "--kill-child",
            sys.executable, os.path.abspath(sys.argv[0])] + sys.argv[1:]
    p = subprocess.Popen(argv, env=env)
    try:
        rc = p.wait()
    except KeyboardInterrupt:
        p.send_signal(signal.SIGINT)
        rc = p.wait()
    sys.exit(rc if rc >= 0 else 1)


class Proc:
    """A child with a parent-death signal; stdout lines are collected."""

    def __init__(self, argv, name, log_path, cpus=None):
        self.name = name
        self.lines = []
        self.cond = threading.Condition()
        if cpus:
            argv = ["taskset", "-c", cpus] + argv
        err = open(log_path, "ab")
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1,
                                  preexec_fn=_pdeathsig)
        err.close()
        _children.append(self.p)
        self.t = threading.Thread(target=self._pump, daemon=True)
        self.t.start()

    def _pump(self):
        for line in self.p.stdout:
            with self.cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self.cond.notify_all()

    def wait_line(self, prefix, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, l in self.lines:
                    if l.startswith(prefix):
                        return t, l
                left = deadline - time.monotonic()
                if left <= 0 or self.p.poll() is not None:
                    raise RuntimeError("%s: no line %r within %.0f s" % (self.name, prefix, timeout))
                self.cond.wait(min(left, 0.2))

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


def kill_all():
    for p in _children:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass


# ------------------------------------------------------------------ /proc


def smaps_rollup(pid):
    """(rss_kib, pss_kib) or None if the process is gone."""
    rss = pss = None
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        return None
    return rss, pss


def cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def meminfo():
    out_ = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out_[k] = int(v.split()[0])
    return out_


def netns_slab():
    """Active net_namespace objects host-wide (kernel netns still being torn down count)."""
    try:
        with open("/proc/slabinfo") as f:
            for line in f:
                if line.startswith("net_namespace "):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def quiesce(baseline, timeout=300):
    """Waits until the kernel finished tearing down the namespaces of a stopped run.

    cleanup_net() runs asynchronously after the supervisor exits and takes
    the rtnl lock for every veth: a following run would measure it. Returns
    the seconds waited (None if the count is not readable)."""
    if baseline is None:
        return None
    # The slab count is approximate (per-CPU slabs count as active) and other
    # work on the host creates namespaces too: done when back at the baseline
    # or when the count has not fallen for 5 s.
    t = time.monotonic()
    low, low_t = netns_slab(), t
    while time.monotonic() - t < timeout:
        n = netns_slab()
        if n is None or n <= baseline + 16:
            break
        if n < low:
            low, low_t = n, time.monotonic()
        elif time.monotonic() - low_t >= 5:
            return low_t - t
        time.sleep(0.5)
    return time.monotonic() - t


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def pct(vals, q):
    v = sorted(vals)
    if not v:
        return None
    i = int(q * (len(v) - 1) + 0.5)
    return v[min(i, len(v) - 1)]


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


# ------------------------------------------------------------------ users


def user_secret(i, run_tag):
    """A distinct ee secret per user: key from a hash, domain uN.<tag>.bench.test."""
    key = hashlib.sha256(("mtw-bench %s %d" % (run_tag, i)).encode()).hexdigest()[:32]
    domain = "u%d.%s.bench.test" % (i, run_tag)
    return "ee" + key + domain.encode().hex()


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(str(v))


# ------------------------------------------------------------------ bench


class Bench:
    def __init__(self, args):
        self.a = args
        b = args.build
        self.sup_bin = os.path.join(b, "daemon", "mtwarden")
        self.gate_bin = os.path.join(b, "gate", "mtwarden-gate")
        self.worker_bin = os.path.join(b, "worker", "mtwarden-worker")
        self.loadgen_bin = os.path.join(b, "bench", "mtw-bench-loadgen")
        self.dc_bin = os.path.join(b, "bench", "mtw-bench-dc")
        for x in (self.sup_bin, self.gate_bin, self.worker_bin, self.loadgen_bin, self.dc_bin):
            if not os.access(x, os.X_OK):
                sys.exit("missing %s (build it first, see bench/README.md)" % x)
        self.dir = args.out_dir or tempfile.mkdtemp(prefix="mtw-supbench.")
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.summary = {"args": vars(args), "ncpu": os.cpu_count()}
        self.runs = 0
        ncpu = os.cpu_count() or 1
        # Proxy side on CPU 1, clients and DCs on the others (latency/throughput only).
        self.proxy_cpus = "1" if args.pin and ncpu >= 2 else None
        self.load_cpus = ("0" if ncpu == 2 else "0,2-%d" % (ncpu - 1)) if self.proxy_cpus else None
        self.netns0 = netns_slab()
        self.dcs = {}
        for mode in ("echo", "source", "sink"):
            p = Proc(["ip", "netns", "exec", INET_NS, self.dc_bin, "--listen", INET_ADDR + ":0",
                      "--mode", mode, "--init", "on", "--max-seconds", "86400"],
                     "dc-" + mode, os.path.join(self.dir, "dc.log"), cpus=self.load_cpus)
            _, line = p.wait_line("listening", 10)
            self.dcs[mode] = (p, int(line.split()[-1]))
        # DC 2 echoes, DC 1 sources (download), DC 3 sinks (upload).
        self.dc_flags = ["2=%s:%d" % (INET_ADDR, self.dcs["echo"][1]),
                         "1=%s:%d" % (INET_ADDR, self.dcs["source"][1]),
                         "3=%s:%d" % (INET_ADDR, self.dcs["sink"][1])]

    # ---------------------------------------------------------- supervisor

    def supervisor(self, name, n_users, on_demand, tag, extra_cells=None, extra_toml=(), extra_defaults=()):
        self.runs += 1
        d = os.path.join(self.dir, "%s-%d" % (name, self.runs))
        os.makedirs(d)
        secrets = [user_secret(i, tag) for i in range(n_users)]
        port = free_port()
        cells = {"ipv4_pool": "10.%d.0.0/16" % (64 + self.runs), "ipv6_prefix": "",
                 "netns_dir": "/run/netns", "name_prefix": "sb%d" % self.runs,
                 "nat": self.a.nat, "worker_memory_max": "64MiB",
                 "uid_first": 300000 + 100000 * self.runs, "gid_first": 300000 + 100000 * self.runs,
                 "uid_count": n_users + 10}
        cells.update(extra_cells or {})
        lines = ["[server]", 'state_dir = %s' % toml_value(d + "/state"),
                 'run_dir = %s' % toml_value(d + "/run"), 'log_level = "info"',
                 "create_first_user = false", "",
                 "[[listener]]", 'bind = "127.0.0.1:%d"' % port, "",
                 "[telegram]", "dc = %s" % toml_value(self.dc_flags), "",
                 "[cells]"] + ["%s = %s" % (k, toml_value(v)) for k, v in cells.items()] + [
                 "",
                 # Every benchmark client connects from 127.0.0.1: the gate's
                 # per-IP rate limit would throttle the load generator itself.
                 "[connections]", "per_ip_rate = 0",
                 "direct_lanes = %s" % toml_value(bool(getattr(self.a, "direct_lanes", 1))),
                 ""] + list(extra_toml) + ["", "[defaults]", "on_demand = %s" % toml_value(on_demand)] + list(extra_defaults) + [""]
        for i, s in enumerate(secrets):
            lines += ["[[user]]", 'name = "u%d"' % i, 'secret = "%s"' % s, ""]
        cfg = os.path.join(d, "mtwarden.toml")
        with open(cfg, "w") as f:
            f.write("\n".join(lines))
        return Sup(self, d, cfg, port, secrets)

    # ---------------------------------------------------------- loadgen

    def loadgen(self, label, port, secret, args, secrets=None, timeout=600, samples=False):
        """Runs the loadgen; its JSON line as a dict. samples=True (latency
        mode): the raw per-connection microseconds come back in j["samples"]
        (not written to loadgen.jsonl)."""
        argv = [self.loadgen_bin, "--target", "127.0.0.1:%d" % port, "--proto", "tls",
                "--secret", secret, "--label", label, "--timeout", str(timeout)] + list(args)
        samples_path = os.path.join(self.dir, "samples-%s.txt" % label) if samples else None
        if samples_path:
            argv += ["--samples-file", samples_path]
        if secrets:
            path = os.path.join(self.dir, "secrets-%s.txt" % label)
            with open(path, "w") as f:
                f.write("\n".join(secrets) + "\n")
            argv += ["--secrets-file", path]
        if self.load_cpus:
            argv = ["taskset", "-c", self.load_cpus] + argv
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 60)
        line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "{}"
        try:
            j = json.loads(line)
        except ValueError:
            j = {"error": line}
        if r.returncode != 0 or j.get("failed"):
            log("loadgen %s rc=%d %s %s" % (label, r.returncode, line, r.stderr.strip()[-300:]))
        with open(os.path.join(self.dir, "loadgen.jsonl"), "a") as f:
            f.write(json.dumps(j) + "\n")
        if samples_path:
            try:
                with open(samples_path) as f:
                    j["samples"] = [int(x) for x in f.read().split()]
                os.unlink(samples_path)
            except (OSError, ValueError):
                j["samples"] = []
        return j

    def standalone_worker(self, secret):
        port = free_port()
        argv = [self.worker_bin, "--bind", "127.0.0.1:%d" % port, "--secret", secret,
                "--fast-mode", "on", "--idle-timeout", "600", "--stats-interval", "0",
                "--log-level", "warn"]
        for d in self.dc_flags:
            argv += ["--dc", d]
        p = Proc(argv, "worker", os.path.join(self.dir, "standalone-worker.log"), cpus=self.proxy_cpus)
        p.wait_line("listening", 10)
        return p, port


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Sup:
    def __init__(self, bench, d, cfg, port, secrets):
        self.b = bench
        self.dir = d
        self.cfg = cfg
        self.port = port
        self.secrets = secrets
        self.run_dir = os.path.join(d, "run")
        self.proc = None

    def start(self, timeout=900):
        argv = [self.b.sup_bin, "--config", self.cfg, "--worker-bin", self.b.worker_bin,
                "--gate-bin", self.b.gate_bin]
        # MTW_SUP_WRAP: a command prefix for the supervisor, e.g. "strace -T -tt -o FILE".
        argv = shlex.split(os.environ.get("MTW_SUP_WRAP", "")) + argv
        self.t0 = time.monotonic()
        self.proc = Proc(argv, "mtwarden", os.path.join(self.dir, "supervisor.log"))
        t, line = self.proc.wait_line("mtwarden started", timeout)
        self.t_started = t - self.t0
        return line

    def status(self):
        for _ in range(50):
            try:
                with open(os.path.join(self.run_dir, "status.json")) as f:
                    return json.load(f)
            except (OSError, ValueError):
                time.sleep(0.02)
        raise RuntimeError("no status.json")

    def wait(self, pred, timeout, poll=0.05):
        deadline = time.monotonic() + timeout
        while True:
            try:
                s = self.status()
                if pred(s):
                    return s, time.monotonic() - self.t0
            except RuntimeError:
                s = None
            if time.monotonic() > deadline:
                raise RuntimeError("timeout waiting for status; last: %s" % (
                    {k: v for k, v in (s or {}).items() if k != "users"}))
            time.sleep(poll)

    def wait_running(self, names=None, timeout=900):
        def pred(s):
            if not s.get("gate", {}).get("ready"):
                return False
            us = s.get("users", [])
            if names is None:
                return all(u["state"] == "running" and u["pid"] for u in us)
            # Idle on-demand users are not listed in status.json.
            st = {u["name"]: u for u in us}
            return all(st.get(n, {}).get("state") == "running" and st[n]["pid"] for n in names)
        return self.wait(pred, timeout)

    def pids(self, s=None):
        s = s or self.status()
        workers = [u["pid"] for u in s["users"] if u.get("pid")]
        return s.get("pid") or self.proc.p.pid, s["gate"].get("pid"), workers

    def stop(self):
        t = time.monotonic()
        try:  # the real supervisor (under MTW_SUP_WRAP the direct child is the wrapper)
            real = self.status().get("pid")
            if real and real != self.proc.p.pid:
                os.kill(real, signal.SIGTERM)
        except (RuntimeError, OSError):
            pass
        rc = self.proc.stop(timeout=300)
        return rc, time.monotonic() - t


# ------------------------------------------------------------------ phases


def memory(sup_pid, gate_pid, workers):
    res = {"supervisor": smaps_rollup(sup_pid), "gate": smaps_rollup(gate_pid) if gate_pid else None}
    rss = pss = 0
    n = 0
    for p in workers:
        m = smaps_rollup(p)
        if m:
            rss += m[0]
            pss += m[1]
            n += 1
    res["workers"] = (rss, pss)
    res["workers_n"] = n
    tot_rss = rss + sum(x[0] for x in (res["supervisor"], res["gate"]) if x)
    tot_pss = pss + sum(x[1] for x in (res["supervisor"], res["gate"]) if x)
    res["total"] = (tot_rss, tot_pss)
    return res


def fmt_mem(m, users):
    mib = lambda k: k / 1024.0
    s = ("  supervisor RSS %.1f / PSS %.1f MiB; gate RSS %.1f / PSS %.1f MiB; %d workers RSS %.1f / PSS %.1f MiB"
         % (mib(m["supervisor"][0]), mib(m["supervisor"][1]), mib(m["gate"][0]), mib(m["gate"][1]),
            m["workers_n"], mib(m["workers"][0]), mib(m["workers"][1])))
    s += "\n  total RSS %.1f MiB, PSS %.1f MiB" % (mib(m["total"][0]), mib(m["total"][1]))
    if users:
        s += "; per user (total / %d): RSS %.2f MiB, PSS %.2f MiB" % (
            users, mib(m["total"][0]) / users, mib(m["total"][1]) / users)
    if m["workers_n"]:
        s += "\n  per worker: RSS %.2f MiB, PSS %.2f MiB" % (
            mib(m["workers"][0]) / m["workers_n"], mib(m["workers"][1]) / m["workers_n"])
    return s


def idle_cpu(sup, seconds):
    s0 = sup.status()
    sp, gp, workers = sup.pids(s0)
    c0 = {p: cpu_ticks(p) for p in [sp, gp] + workers}
    t0 = time.monotonic()
    time.sleep(seconds)
    s1 = sup.status()
    el = time.monotonic() - t0
    c1 = {p: cpu_ticks(p) for p in c0}
    d = lambda p: (c1[p] - c0[p]) / CLK_TCK if c0.get(p) is not None and c1.get(p) is not None else 0.0
    sweeps = s1["sweeps"] - s0["sweeps"]
    sweep_ns = s1["sweep_cpu_ns_total"] - s0["sweep_cpu_ns_total"]
    return {
        "seconds": el,
        "sup_cpu_pct": 100 * d(sp) / el,
        "gate_cpu_pct": 100 * d(gp) / el,
        "workers_cpu_pct": 100 * sum(d(p) for p in workers) / el,
        "sweeps": sweeps,
        "sweep_ms_per_sweep": sweep_ns / 1e6 / sweeps if sweeps else None,
        "sweep_ms_per_sweep_lifetime": s1["sweep_cpu_ns_total"] / 1e6 / s1["sweeps"] if s1["sweeps"] else None,
        "sweep_cpu_pct": 100 * sweep_ns / 1e9 / el,
    }


def phase_scale(b):
    a = b.a
    n = a.users
    out("== 1. %d users with cells at start (on_demand = false), %d rep(s)" % (n, a.reps))
    reps = []
    for rep in range(a.reps):
        sup = b.supervisor("scale", n, False, "s%d" % rep)
        mi0 = meminfo()
        la = loadavg()
        line = sup.start()
        s, t_run = sup.wait_running(timeout=1800)
        log("scale rep %d: %s; 'started' after %.2f s, all %d running after %.2f s" % (
            rep + 1, line, sup.t_started, n, t_run))
        time.sleep(a.settle)
        sp, gp, workers = sup.pids()
        m = memory(sp, gp, workers)
        mi1 = meminfo()
        cpu = idle_cpu(sup, a.idle_seconds)
        rc, t_stop = sup.stop()
        t_q = quiesce(b.netns0)
        log("scale rep %d: stopped rc=%s in %.2f s; kernel netns teardown finished %.1f s later"
            % (rep + 1, rc, t_stop, -1 if t_q is None else t_q))
        r = {"t_started": sup.t_started, "t_all_running": t_run, "t_stop": t_stop, "t_kernel_teardown": t_q,
             "mem": m, "cpu": cpu,
             "load_before": la, "load_after": loadavg(),
             "kernel_delta_kib": {k: mi1[k] - mi0[k] for k in ("Slab", "SUnreclaim", "KernelStack", "PageTables")},
             "memavail_delta_kib": mi0["MemAvailable"] - mi1["MemAvailable"]}
        reps.append(r)
        out(" rep %d (load %s): 'started' %.2f s, all running %.2f s (%.2f ms per cell), stop %.2f s "
            "(+ %.1f s until the kernel freed the namespaces)"
            % (rep + 1, la, sup.t_started, t_run, 1000 * t_run / n, t_stop, -1 if t_q is None else t_q))
        out(fmt_mem(m, n))
        out("  kernel (indicative, host-wide /proc/meminfo delta): Slab %+.1f MiB, PageTables %+.1f MiB, "
            "KernelStack %+.1f MiB; MemAvailable %+.1f MiB"
            % (r["kernel_delta_kib"]["Slab"] / 1024, r["kernel_delta_kib"]["PageTables"] / 1024,
               r["kernel_delta_kib"]["KernelStack"] / 1024, -r["memavail_delta_kib"] / 1024))
        out("  idle %.0f s: supervisor CPU %.2f%% (sweep alone %.2f%%: %.2f ms/sweep, %d sweeps), gate %.2f%%, "
            "all workers %.2f%%" % (cpu["seconds"], cpu["sup_cpu_pct"], cpu["sweep_cpu_pct"],
                                    cpu["sweep_ms_per_sweep"] or -1, cpu["sweeps"], cpu["gate_cpu_pct"],
                                    cpu["workers_cpu_pct"]))
    mib = 1024.0
    out(" median of %d: all running %.2f s; total RSS %.1f MiB (%.2f MiB/user), PSS %.1f MiB (%.2f MiB/user) "
        "[goal <= 3 MiB/user]; supervisor idle CPU %.2f%%, sweep %.2f ms/sweep"
        % (len(reps), med([r["t_all_running"] for r in reps]),
           med([r["mem"]["total"][0] for r in reps]) / mib, med([r["mem"]["total"][0] for r in reps]) / mib / n,
           med([r["mem"]["total"][1] for r in reps]) / mib, med([r["mem"]["total"][1] for r in reps]) / mib / n,
           med([r["cpu"]["sup_cpu_pct"] for r in reps]), med([r["cpu"]["sweep_ms_per_sweep"] for r in reps])))
    b.summary["scale"] = reps


def lat_line(j):
    if not j or "p50_us" not in j:
        return "failed: %s" % j
    return "p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms (n=%d, failed %d)" % (
        j["p50_us"] / 1000, j["p90_us"] / 1000, j["p99_us"] / 1000, j["max_us"] / 1000, j["ok"], j["failed"])


def phase_ondemand(b):
    a = b.a
    n, active, cold = a.od_users, a.od_active, a.cold
    out("== 2. %d users, on_demand = true, %d activated; cold first connections: %d rep(s) x %d users"
        % (n, active, a.cold_reps, cold))
    if active + cold * a.cold_reps > n:
        sys.exit("--od-active + --cold * --cold-reps must not exceed --od-users")
    sup = b.supervisor("ondemand", n, True, "od")
    la = loadavg()
    line = sup.start()
    s, t_ready = sup.wait(lambda s: s.get("gate", {}).get("ready"), 300)
    out(" start: %s; 'started' %.2f s, gate ready %.2f s (load %s)" % (line, sup.t_started, t_ready, la))
    sp, gp, workers = sup.pids(s)
    m0 = memory(sp, gp, workers)
    out(" no cell yet:")
    out(fmt_mem(m0, n))
    cpu0 = idle_cpu(sup, a.od_idle_seconds)
    out("  idle %.0f s, no cells: supervisor CPU %.2f%% (sweep %.2f ms/sweep), gate %.2f%%"
        % (cpu0["seconds"], cpu0["sup_cpu_pct"], cpu0["sweep_ms_per_sweep"] or -1, cpu0["gate_cpu_pct"]))
    # Activate the first `active` users: each first connection starts a cell (these are cold too).
    act = b.loadgen("od-activate", sup.port, sup.secrets[0],
                    ["--mode", "latency", "--conns", str(active)], secrets=sup.secrets[:active])
    out(" activation of %d users (cold, sequential): %s" % (active, lat_line(act)))
    names = ["u%d" % i for i in range(active)]
    s, _ = sup.wait_running(names, 120)
    time.sleep(a.settle)
    sp, gp, workers = sup.pids()
    m1 = memory(sp, gp, workers)
    out(" %d of %d users active (cells + workers):" % (len(workers), n))
    out(fmt_mem(m1, n))
    cpu1 = idle_cpu(sup, a.od_idle_seconds)
    out("  idle %.0f s, %d cells: supervisor CPU %.2f%% (sweep %.2f ms/sweep), gate %.2f%%, workers %.2f%%"
        % (cpu1["seconds"], len(workers), cpu1["sup_cpu_pct"], cpu1["sweep_ms_per_sweep"] or -1,
           cpu1["gate_cpu_pct"], cpu1["workers_cpu_pct"]))
    warm, colds = [], []
    nxt = active
    for rep in range(a.cold_reps):
        w = b.loadgen("od-warm-%d" % rep, sup.port, sup.secrets[0],
                      ["--mode", "latency", "--conns", str(a.warm_conns)], secrets=sup.secrets[:active])
        c = b.loadgen("od-cold-%d" % rep, sup.port, sup.secrets[nxt],
                      ["--mode", "latency", "--conns", str(cold)], secrets=sup.secrets[nxt:nxt + cold])
        nxt += cold
        warm.append(w)
        colds.append(c)
        out(" rep %d (load %s):\n  warm user, new connection: %s\n  cold user, first connection: %s"
            % (rep + 1, loadavg(), lat_line(w), lat_line(c)))
    g = lambda js, k: med([j.get(k) for j in js]) / 1000 if js and med([j.get(k) for j in js]) else -1
    out(" median of %d: cold p50 %.2f ms, p99 %.2f ms [goal p99 <= 100 ms]; warm p50 %.2f ms, p99 %.2f ms"
        % (len(colds), g(colds, "p50_us"), g(colds, "p99_us"), g(warm, "p50_us"), g(warm, "p99_us")))
    s, _ = sup.wait_running(["u%d" % i for i in range(nxt)], 120)
    time.sleep(a.settle)
    sp, gp, workers = sup.pids()
    m2 = memory(sp, gp, workers)
    out(" after the cold runs, %d cells:" % len(workers))
    out(fmt_mem(m2, n))
    rc, t_stop = sup.stop()
    t_q = quiesce(b.netns0)
    out(" stop: rc=%s, %.2f s (+ %.1f s kernel netns teardown)" % (rc, t_stop, -1 if t_q is None else t_q))
    b.summary["ondemand"] = {"t_started": sup.t_started, "t_gate_ready": t_ready, "mem_no_cells": m0,
                             "cpu_no_cells": cpu0, "activate": act, "mem_active": m1, "cpu_active": cpu1,
                             "warm": warm, "cold": colds, "mem_after": m2, "t_stop": t_stop}


def cpu_set(spec):
    """'0,2-5' -> {0, 2, 3, 4, 5}"""
    out = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


class driver_on:
    """Runs this process (the driver) on `cpus` inside the block (no-op for None)."""

    def __init__(self, cpus):
        self.cpus, self.old = cpus, None

    def __enter__(self):
        if self.cpus:
            self.old = os.sched_getaffinity(0)
            os.sched_setaffinity(0, cpu_set(self.cpus))
        return self

    def __exit__(self, *exc):
        if self.old:
            os.sched_setaffinity(0, self.old)
        return False


def pin(pids, cpus):
    for p in pids:
        if p:
            run(["taskset", "-a", "-pc", cpus, str(p)], check=False)


def small_system(b):
    sup = b.supervisor("small", b.a.small_users, False, "small")
    sup.start()
    sup.wait_running(timeout=120)
    sp, gp, workers = sup.pids()
    if b.proxy_cpus:
        pin([sp, gp] + workers, b.proxy_cpus)
    wp, wport = b.standalone_worker(sup.secrets[0])
    return sup, wp, wport


def boot_ci(a, b, q, n=300, seed=1):
    """Bootstrap 90 % interval of pct(b, q) - pct(a, q) (resampling each side)."""
    import random
    rnd = random.Random(seed)
    diffs = []
    for _ in range(n):
        ra = [a[rnd.randrange(len(a))] for _ in range(len(a))]
        rb = [b[rnd.randrange(len(b))] for _ in range(len(b))]
        diffs.append(pct(rb, q) - pct(ra, q))
    diffs.sort()
    return diffs[int(0.05 * (n - 1))], diffs[int(0.95 * (n - 1))]


def phase_latency(b, sup, wport):
    """Standalone worker vs gate + fd passing + cell worker, interleaved.

    Each rep runs --lat-blocks blocks per kind of --lat-conns / blocks
    connections, alternating standalone and gate (ABBA order), so both see
    the same host load over time; every sample is kept (loadgen
    --samples-file) and percentiles come from the pooled samples, not from
    medians of per-run percentiles. p99 of 1,000 samples rests on 10 of
    them; pooled over reps it rests on 10 x reps."""
    a = b.a
    per_block = max(1, a.lat_conns // a.lat_blocks)
    out("== 3. connect -> first echoed byte, fresh connections, fake TLS; %d rep(s) x %d blocks x %d conns "
        "per kind, interleaved; standalone worker vs gate + fd passing + cell worker (%d users configured)"
        % (a.reps, a.lat_blocks, per_block, a.small_users))
    res = {"standalone": [], "gate": []}
    pooled = {"standalone": [], "gate": []}
    for rep in range(a.reps):
        rep_s = {"standalone": [], "gate": []}
        for blk in range(a.lat_blocks):
            order = (("standalone", wport), ("gate", sup.port))
            if blk % 2:
                order = order[::-1]
            for kind, port in order:
                # One untimed connection first: a fresh loadgen's first
                # connection costs 4-9 ms of its own (every block's first
                # sample, both kinds: 1 % of the samples, i.e. the p99).
                j = b.loadgen("lat-%s-%d-%d" % (kind, rep, blk), port, sup.secrets[0],
                              ["--mode", "latency", "--conns", str(per_block), "--warmup-conns", "1"],
                              samples=True)
                rep_s[kind] += j.pop("samples", [])
                if j.get("failed"):
                    log("latency block %s %d/%d: %s failed" % (kind, rep, blk, j.get("failed")))
        la = loadavg()
        for kind in rep_s:
            v = rep_s[kind]
            pooled[kind] += v
            j = {"n": len(v), "p50_us": pct(v, 0.5), "p90_us": pct(v, 0.9), "p99_us": pct(v, 0.99),
                 "max_us": pct(v, 1.0), "load": la}
            res[kind].append(j)
            out(" rep %d %-10s (load %s): p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.2f ms (n=%d)"
                % (rep + 1, kind, la, j["p50_us"] / 1000, j["p90_us"] / 1000, j["p99_us"] / 1000,
                   j["max_us"] / 1000, j["n"]))
    s_, g_ = pooled["standalone"], pooled["gate"]
    summary = {}
    if s_ and g_:
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            ps, pg = pct(s_, q), pct(g_, q)
            lo, hi = boot_ci(s_, g_, q)
            paired = [(g["%s_us" % name] - s["%s_us" % name]) / 1000
                      for s, g in zip(res["standalone"], res["gate"])]
            summary[name] = {"standalone_us": ps, "gate_us": pg, "added_us": pg - ps, "ratio": pg / ps,
                             "ci90_us": [lo, hi], "per_rep_added_ms": paired}
            out(" pooled %s (n=%d each): standalone %.3f ms, gate %.3f ms, added %.3f ms "
                "(90%% bootstrap %.3f..%.3f), ratio %.2fx; per rep %s%s"
                % (name, min(len(s_), len(g_)), ps / 1000, pg / 1000, (pg - ps) / 1000, lo / 1000, hi / 1000,
                   pg / ps, " ".join("%+.3f" % x for x in paired),
                   " [goal added <= 0.3 ms at p99]" if name == "p99" else ""))
    res["pooled"] = summary
    with open(os.path.join(b.dir, "latency-samples.json"), "w") as f:
        json.dump(pooled, f)  # every sample (us), for a second look at the tails
    b.summary["latency"] = res


def phase_throughput(b, sup, wport):
    a = b.a
    out("== 4. bulk throughput, fake TLS client, %d s per point (+%d s warm-up), %d rep(s); "
        "standalone worker (loopback, DC via up0) vs gate + cell (cell veth, %s, up0)"
        % (a.duration, a.warmup, a.reps, "NAT" if a.nat else "routed"))
    sp, gp, workers = sup.pids()
    cell_worker = workers[0]
    res = {}
    for rep in range(a.reps):
        for point, dc, direction, conns in (("download 1 conn", 1, "download", 1),
                                            ("upload 1 conn", 3, "upload", 1),
                                            ("download %d conns" % a.tp_conns, 1, "download", a.tp_conns)):
            for kind, port, pid in (("standalone", wport, b.standalone_pid), ("gate", sup.port, cell_worker)):
                j = b.loadgen("tp-%s-%s-%d" % (kind, point.replace(" ", "_"), rep), port, sup.secrets[0],
                              ["--mode", "throughput", "--direction", direction, "--conns", str(conns),
                               "--dc", str(dc), "--duration", str(a.duration), "--warmup", str(a.warmup),
                               "--pid", str(pid), "--dc-pid", str(b.dcs["source" if dc == 1 else "sink"][0].p.pid)])
                res.setdefault(point, {}).setdefault(kind, []).append(j)
                out(" rep %d %-18s %-10s: %8.1f MB/s (worker CPU %s%%, loadgen %s%%, dc %s%%; load %s)"
                    % (rep + 1, point, kind, j.get("mb_per_s", -1), j.get("proxy_cpu_pct"),
                       j.get("loadgen_cpu_pct"), j.get("dc_cpu_pct"), loadavg()))
    for point, kinds in res.items():
        s = med([j.get("mb_per_s") for j in kinds["standalone"]])
        g = med([j.get("mb_per_s") for j in kinds["gate"]])
        # Each rep runs the two back to back: the ratio within a rep is less
        # exposed to the host's changing load than the ratio of medians.
        paired = [jg["mb_per_s"] / js["mb_per_s"] for js, jg in zip(kinds["standalone"], kinds["gate"])
                  if js.get("mb_per_s") and jg.get("mb_per_s")]
        out(" median %-18s standalone %8.1f MB/s, gate + cell %8.1f MB/s, ratio of medians %.2fx, "
            "median of paired ratios %.2fx %s [goal >= 0.9x]"
            % (point, s or -1, g or -1, (g / s) if s and g else -1, med(paired) or -1,
               "(" + " ".join("%.2f" % x for x in paired) + ")"))
    b.summary["throughput"] = res


def perf_top(data, path, lines=25, extra=()):
    """perf report of `data` (no children, by symbol) into `path`; returns the top lines."""
    r = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "--sort", "comm,dso,sym",
                        "-g", "none", "--percent-limit", "0.7"] + list(extra),
                       capture_output=True, text=True)
    with open(path, "w") as f:
        f.write(r.stdout)
    rows = [l for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")]
    return rows[:lines]


def ctxsw(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            v = [int(l.split()[1]) for l in f if "ctxt_switches" in l]
        return sum(v)
    except OSError:
        return None


def phase_profile(b):
    """Where the supervisor's time goes: perf (cpu-clock) of the start of --users
    cells, of the idle supervisor, and the idle workers' wake-ups."""
    a = b.a
    if not shutil.which("perf"):
        out("== profile: perf not found, skipped")
        return
    n = a.users
    out("== profile: %d users (perf -e cpu-clock; reports in %s/profile-*.txt)" % (n, b.dir))
    sup = b.supervisor("profile", n, False, "p")
    argv = [b.sup_bin, "--config", sup.cfg, "--worker-bin", b.worker_bin, "--gate-bin", b.gate_bin]
    data = os.path.join(b.dir, "perf-start.data")
    # perf starts the supervisor: the whole start sequence is recorded.
    sup.t0 = time.monotonic()
    sup.proc = Proc(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g", "-o", data, "--"] + argv,
                    "mtwarden", os.path.join(sup.dir, "supervisor.log"))
    t, _ = sup.proc.wait_line("mtwarden started", 1800)
    s, t_run = sup.wait_running(timeout=1800)
    out(" start under perf: 'started' %.2f s, all running %.2f s" % (t - sup.t0, t_run))
    time.sleep(a.settle)
    sp, gp, workers = sup.pids(s)
    idle = os.path.join(b.dir, "perf-idle.data")
    c0 = {p: ctxsw(p) for p in workers}
    t0 = time.monotonic()
    subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g", "-o", idle, "-p", str(sp),
                    "--", "sleep", "10"], capture_output=True)
    el = time.monotonic() - t0
    c1 = {p: ctxsw(p) for p in workers}
    sw = sum(c1[p] - c0[p] for p in workers if c0[p] is not None and c1[p] is not None)
    out(" idle workers: %.1f context switches per worker per second (timers + report requests)"
        % (sw / len(workers) / el))
    wdata = os.path.join(b.dir, "perf-workers.data")
    subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-o", wdata, "-p",
                    ",".join(str(p) for p in workers[:200]), "--", "sleep", "5"], capture_output=True)
    # The real supervisor is perf's child: stop it with SIGTERM, then perf ends.
    sup_pid = sp
    os.kill(sup_pid, signal.SIGTERM)
    sup.proc.p.wait(300)
    quiesce(b.netns0)
    for name, d, extra in (("start", data, ["--comm", "mtwarden"]), ("idle", idle, []),
                           ("workers", wdata, [])):
        rows = perf_top(d, os.path.join(b.dir, "profile-%s.txt" % name), 14, extra)
        out(" perf %s (top symbols, %% of samples):" % name)
        for l in rows:
            out("   " + l.strip()[:150])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "hb"))
    ap.add_argument("--out-dir", default=None)
    ap.add_argument("--only", default="scale ondemand latency throughput")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--settle", type=float, default=3.0, help="seconds after all running before memory")
    ap.add_argument("--idle-seconds", type=float, default=30.0)
    ap.add_argument("--od-users", type=int, default=10000)
    ap.add_argument("--od-active", type=int, default=100)
    ap.add_argument("--od-idle-seconds", type=float, default=10.0)
    ap.add_argument("--cold", type=int, default=150, help="cold users per rep")
    ap.add_argument("--cold-reps", type=int, default=3)
    ap.add_argument("--warm-conns", type=int, default=500)
    ap.add_argument("--small-users", type=int, default=10)
    ap.add_argument("--lat-conns", type=int, default=1000, help="latency: connections per kind per rep")
    ap.add_argument("--lat-blocks", type=int, default=10, help="latency: interleaved blocks per rep")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--tp-conns", type=int, default=100)
    ap.add_argument("--nat", type=int, default=1)
    ap.add_argument("--direct-lanes", type=int, default=1,
                    help="[connections] direct_lanes of the supervisors (0: every client via the supervisor)")
    ap.add_argument("--pin", type=int, default=1)
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    args.nat = bool(args.nat)
    enter_sandbox()
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    b = Bench(args)
    only = args.only.split()
    out("mtw supervisor bench: build=%s out=%s cpus=%d pin=%s nat=%s load=%s"
        % (args.build, b.dir, os.cpu_count(), b.proxy_cpus or "off", args.nat, loadavg()))
    try:
        if "scale" in only:
            phase_scale(b)
        if "profile" in only:
            phase_profile(b)
        if "ondemand" in only:
            phase_ondemand(b)
        if "latency" in only or "throughput" in only:
            sup, wp, wport = small_system(b)
            b.standalone_pid = wp.p.pid
            # The driver too stays off the proxy's CPU while it measures:
            # between and around loadgen runs it took 2-3 ms slices of CPU 1
            # (perf sched), which landed in the gate path's samples.
            with driver_on(b.load_cpus):
                if "latency" in only:
                    phase_latency(b, sup, wport)
                if "throughput" in only:
                    phase_throughput(b, sup, wport)
            wp.stop()
            sup.stop()
    finally:
        with open(os.path.join(b.dir, "summary.json"), "w") as f:
            json.dump(b.summary, f, indent=1, default=str)
        kill_all()
    out("raw results: %s (summary.json, loadgen.jsonl, */supervisor.log)" % b.dir)


if __name__ == "__main__":
    main()

"""Sandbox for the supervisor's end-to-end tests (tests/integration/test_supervisor_*.py).

Every test script calls `sandbox.enter()` first. Started as root outside a
sandbox, the script re-executes itself under
`unshare --net --mount --propagation private --fork --kill-child` with
MTW_SANDBOX=1 in the environment; inside, a tmpfs goes on /run (so /run/netns
and /run/mtwarden are the sandbox's own), loopback comes up, and a fake
"internet" network namespace `inet` is created:

    sandbox root netns                      netns "inet"
    lo 127.0.0.1 (supervisor listeners)      lo
    up0 198.18.0.1/24  <---- veth ---->      eth0 198.18.0.2/24, default via 198.18.0.1
    (cells' veths, ip_forward by mtwarden)   mtw-fake-dc, mtw-fake-mask on 198.18.0.2

Nothing here can reach the host's network: the sandbox netns has only
loopback and the veth into `inet`. Not root (or no unshare): prints the reason
and exits 77 (CTest SKIP_RETURN_CODE for integration_supervisor_*).
"""

import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import harness as h

MARK = "MTW_SANDBOX"
INET_NS = "inet"
HOST_ADDR = "198.18.0.1"
INET_ADDR = "198.18.0.2"
SUPERVISOR = os.environ.get("MTW_SUPERVISOR", "build/ht/daemon/mtwarden")
GATE = os.environ.get("MTW_GATE", "build/ht/gate/mtwarden-gate")
WORKER = os.environ.get("MTW_WORKER", h.WORKER)

_children = []  # Popen objects to kill at exit


def log(msg):
    print("[%7.3f] %s" % (time.monotonic() - _T0, msg), flush=True)


_T0 = time.monotonic()


def _pdeathsig():
    # Children die with the test script (a CTest timeout kills the script).
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def skip(reason):
    print("SKIP: %s" % reason, flush=True)
    sys.exit(77)


def run(cmd, check=True, quiet=False):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))
    return r


def enter():
    """Re-executes the calling script inside a fresh net+mount namespace."""
    if os.environ.get(MARK) != "1":
        if os.geteuid() != 0:
            skip("the supervisor tests need root (network namespaces, veths, tc, nft); "
                 "run them as root, e.g. sudo ctest -L integration")
        unshare = shutil.which("unshare")
        if not unshare:
            skip("unshare (util-linux) not found")
        for tool, msg in (("ip", "iproute2"), ("nft", "nftables"), ("tc", "iproute2 tc")):
            if not shutil.which(tool):
                skip("%s (%s) not found" % (tool, msg))
        for name, path in (("MTW_SUPERVISOR", SUPERVISOR), ("MTW_GATE", GATE), ("MTW_WORKER", WORKER),
                           ("MTW_FAKE_DC", h.FAKE_DC), ("MTW_FAKE_MASK", h.FAKE_MASK)):
            if not os.access(path, os.X_OK):
                print("FAIL: %s=%s is not an executable (build mtwarden, mtwarden-gate, "
                      "mtwarden-worker, mtw-fake-dc, mtw-fake-mask)" % (name, path), flush=True)
                sys.exit(1)
        env = dict(os.environ)
        env[MARK] = "1"
        argv = [unshare, "--net", "--mount", "--propagation", "private", "--fork", "--kill-child",
                sys.executable] + sys.argv
        try:
            p = subprocess.Popen(argv, env=env)
        except OSError as e:
            skip("cannot run unshare: %s" % e)
        try:
            rc = p.wait()
        except KeyboardInterrupt:
            p.send_signal(signal.SIGINT)
            rc = p.wait()
        sys.exit(rc if rc >= 0 else 1)
    # Inside the sandbox.
    r = run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run"], check=False)
    if r.returncode != 0:
        skip("cannot mount a tmpfs on /run inside the sandbox: %s" % r.stderr.strip())
    run(["ip", "link", "set", "lo", "up"])
    _make_inet()
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


def _make_inet():
    run(["ip", "netns", "add", INET_NS])
    run(["ip", "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", INET_NS])
    run(["ip", "addr", "add", HOST_ADDR + "/24", "dev", "up0"])
    run(["ip", "link", "set", "up0", "up"])
    ns = ["ip", "netns", "exec", INET_NS]
    run(ns + ["ip", "link", "set", "lo", "up"])
    run(ns + ["ip", "addr", "add", INET_ADDR + "/24", "dev", "eth0"])
    run(ns + ["ip", "link", "set", "eth0", "up"])
    # Covers the cells' pools too (routed back when [cells] nat = false).
    run(ns + ["ip", "route", "add", "default", "via", HOST_ADDR])


# ------------------------------------------------------------------ processes


class Proc(h.Proc):
    """harness.Proc with a parent-death signal and an optional stderr file."""

    def __init__(self, argv, name=None, stderr_path=None, pass_fds=()):
        self.name = name or os.path.basename(argv[0])
        import queue
        self.lines = queue.Queue()
        self.all_lines = []
        self.stderr_path = stderr_path
        err = open(stderr_path, "ab") if stderr_path else None
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1,
                                  preexec_fn=_pdeathsig, pass_fds=pass_fds)
        if err:
            err.close()
        _children.append(self.p)
        self.t = threading.Thread(target=self._pump, daemon=True)
        self.t.start()


def in_inet(argv):
    return ["ip", "netns", "exec", INET_NS] + argv


def start_fake_dc(mode="echo", record=None, source_bytes=None):
    argv = [h.FAKE_DC, "--listen", INET_ADDR + ":0", "--mode", mode]
    if record:
        argv += ["--record", record]
    if source_bytes is not None:
        argv += ["--source-bytes", str(source_bytes)]
    p = Proc(in_inet(argv), name="fake-dc-" + mode)
    port = int(p.wait_line("listening ").split()[1])
    return p, port


def start_fake_mask(record_dir):
    os.makedirs(record_dir, exist_ok=True)
    p = Proc(in_inet([h.FAKE_MASK, "--listen", INET_ADDR + ":0", "--record-dir", record_dir]),
             name="fake-mask")
    port = int(p.wait_line("listening ").split()[1])
    return p, port


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def kill_all():
    for p in _children:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass


# ------------------------------------------------------------------- config


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(str(v))


DC_INDICES = [1, 2, 3, 4, 5, -1, -2, -3, -4, -5]


class Setup:
    """One test's directory, fake DC(s), fake mask and supervisor config."""

    def __init__(self, name, pool="10.201.0.0/16", prefix="mtt", nat=False, dc_modes=("echo",),
                 uid_first=210000):
        self.dir = tempfile.mkdtemp(prefix="mtw-sv-%s-" % name)
        os.chmod(self.dir, 0o755)
        self.state_dir = os.path.join(self.dir, "state")
        self.run_dir = os.path.join(self.dir, "run")
        self.netns_dir = "/run/netns"  # the sandbox's own tmpfs; `ip netns` looks there
        self.config = os.path.join(self.dir, "mtwarden.toml")
        self.log_path = os.path.join(self.dir, "supervisor.log")
        self.dc_record = os.path.join(self.dir, "dc.log")
        self.mask_dir = os.path.join(self.dir, "mask")
        self.pool = pool
        self.prefix = prefix
        self.nat = nat
        self.uid_first = uid_first
        self.port = free_port()
        self.dc = {}
        for mode in dc_modes:
            p, port = start_fake_dc(mode, record=self.dc_record if mode == "echo" else None)
            self.dc[mode] = (p, port)
        self.mask, self.mask_port = start_fake_mask(self.mask_dir)
        self.sup = None
        self.sup_runs = 0

    def dc_lines(self, mapping=None):
        """["2=198.18.0.2:P", ...]; mapping {index: mode} overrides echo."""
        out = []
        for n in DC_INDICES:
            mode = (mapping or {}).get(n, "echo")
            out.append("%d=%s:%d" % (n, INET_ADDR, self.dc[mode][1]))
        return out

    def config_text(self, users, sections=None, dc_map=None, listeners=None):
        sec = {
            "server": {"state_dir": self.state_dir, "run_dir": self.run_dir, "log_level": "info",
                       "create_first_user": False},
            # No profile probes: they would reach the fake mask and show up
            # among its records (tests that want them turn them on).
            "mask": {"address": "%s:%d" % (INET_ADDR, self.mask_port), "probe": False},
            "telegram": {"dc": self.dc_lines(dc_map)},
            "cells": {"ipv4_pool": self.pool, "ipv6_prefix": "", "netns_dir": self.netns_dir,
                      "name_prefix": self.prefix, "nat": self.nat, "worker_memory_max": 0,
                      # ASan's shadow memory alone exceeds any real RLIMIT_DATA.
                      "gate_memory_max": 0,
                      "uid_first": self.uid_first, "gid_first": self.uid_first, "uid_count": 100},
            "timeouts": {"restart_backoff_min_ms": 250},
            "accounting": {},
            "connections": {},
            "defaults": {},
        }
        for k, v in (sections or {}).items():
            sec.setdefault(k, {}).update(v)
        out = []
        for name in ("server",):
            out.append("[%s]" % name)
            out += ["%s = %s" % (k, toml_value(v)) for k, v in sec[name].items()]
            out.append("")
        for l in (listeners or [{"bind": "127.0.0.1:%d" % self.port, "protocols": "all"}]):
            out.append("[[listener]]")
            out += ["%s = %s" % (k, toml_value(v)) for k, v in l.items()]
            out.append("")
        for name, kv in sec.items():
            if name == "server":
                continue
            out.append("[%s]" % name)
            out += ["%s = %s" % (k, toml_value(v)) for k, v in kv.items()]
            out.append("")
        for u in users:
            out.append("[[user]]")
            out += ["%s = %s" % (k, toml_value(v)) for k, v in u.items()]
            out.append("")
        return "\n".join(out)

    def write_config(self, users, **kw):
        text = self.config_text(users, **kw)
        tmp = self.config + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.config)
        return text

    # ---------------------------------------------------------- supervisor

    def argv(self, extra=()):
        return [SUPERVISOR, "--config", self.config, "--worker-bin", WORKER, "--gate-bin", GATE] + list(extra)

    def start(self, timeout=60, extra=()):
        """Starts the supervisor and waits for "mtwarden started"."""
        self.sup_runs += 1
        with open(self.log_path, "a") as f:
            f.write("==== supervisor run %d ====\n" % self.sup_runs)
        t0 = time.monotonic()
        self.sup = Proc(self.argv(extra), name="mtwarden", stderr_path=self.log_path)
        try:
            line = self.sup.wait_line("mtwarden started", timeout=timeout)
        except RuntimeError:
            self.dump_log()
            raise
        log("supervisor up in %.2f s: %s" % (time.monotonic() - t0, line))
        return line

    def stop(self, timeout=40):
        """SIGTERM, wait; returns the exit status (SIGKILL after the timeout: None)."""
        if not self.sup or self.sup.p.poll() is not None:
            return self.sup.p.returncode if self.sup else None
        self.sup.signal(signal.SIGTERM)
        try:
            return self.sup.wait(timeout)
        except subprocess.TimeoutExpired:
            self.sup.p.kill()
            self.sup.p.wait()
            return None

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def dump_log(self, lines=80):
        text = self.log_text().splitlines()
        print("---- supervisor log (last %d lines of %d) ----" % (min(lines, len(text)), len(text)))
        for l in text[-lines:]:
            print("  | " + l)
        print("----", flush=True)

    def status(self, timeout=10):
        return h.read_stats(os.path.join(self.run_dir, "status.json"), timeout)

    def wait_status(self, pred, timeout=20, poll=0.1):
        deadline = time.monotonic() + timeout
        while True:
            try:
                s = self.status()
                if pred(s):
                    return s
            except (OSError, ValueError):
                s = None
            if time.monotonic() > deadline:
                return s
            time.sleep(poll)

    def require_running(self, names, timeout=30):
        """Waits until the users' workers run and the gate is ready; else fails the test."""
        s = self.wait_status(all_running(names), timeout=timeout)
        ok = s is not None and all_running(names)(s)
        if not ok:
            st = {u["name"]: (u["state"], u["fail_reason"]) for u in (s or {}).get("users", [])}
            why = "users %s, gate %s" % (st, (s or {}).get("gate"))
            for line in self.log_text().splitlines():
                if "gate spawn failed" in line or "worker not started" in line:
                    why += "; log: " + line
                    break
            h.check(False, "%s running and the gate ready within %d s (%s)" % (", ".join(names), timeout, why))
            raise RuntimeError("the supervisor did not come up")
        h.check(True, "%s running, gate ready" % ", ".join(names))
        return s

    def user(self, name, s=None):
        s = s or self.status()
        for u in s.get("users", []):
            if u.get("name") == name:
                return u
        return None

    def cleanup(self):
        try:
            if self.sup and self.sup.p.poll() is None:
                rc = self.stop(30)
                if rc is None:
                    log("supervisor needed SIGKILL at cleanup")
        finally:
            for mode, (p, _) in self.dc.items():
                p.stop()
            self.mask.stop()
        if h.FAILURES:
            self.dump_log(120)
        shutil.rmtree(self.dir, ignore_errors=True)


def all_running(names):
    def pred(s):
        st = {u["name"]: u for u in s.get("users", [])}
        return all(n in st and st[n]["state"] == "running" and st[n].get("pid") for n in names) and \
            s.get("gate", {}).get("ready") is True
    return pred


# ---------------------------------------------------------- cell inspection


def wire_bps(payload_bps):
    """The htb class rate for a payload limit: netns::wire_bps (netns/rate.h),
    payload * 1514 / 1448 rounded up (full-size TCP segments with timestamps
    in 1514-byte Ethernet frames)."""
    return -(-payload_bps * 1514 // 1448)


def tc_rate_text(payload_bps):
    """What `tc class show` prints for the htb class of a payload limit,
    e.g. "rate 2091Kbit " for 2 Mbit/s: the kernel holds bytes per second,
    and tc divides by 1000 while the value stays exact or >= 1000000."""
    bits = wire_bps(payload_bps) // 8 * 8
    units = ["", "K", "M", "G", "T"]
    i = 0
    while i < len(units) - 1:
        if bits < 1000 or (bits % 1000 and bits < 1000 * 1000):
            break
        bits //= 1000
        i += 1
    return "rate %d%sbit " % (bits, units[i])


def cell_objects(prefix):
    """(netns names, link names, nft tables) that a run with `prefix` could own."""
    ns = []
    r = run(["ip", "netns", "list"], check=False)
    for line in r.stdout.splitlines():
        n = line.split()[0] if line.split() else ""
        if n.startswith(prefix):
            ns.append(n)
    links = []
    r = run(["ip", "-o", "link"], check=False)
    for line in r.stdout.splitlines():
        m = re.match(r"\d+:\s+([^:@\s]+)", line)
        if m and m.group(1).startswith(prefix):
            links.append(m.group(1))
    r = run(["nft", "list", "tables"], check=False)
    tables = [l.strip() for l in r.stdout.splitlines() if l.strip()]
    return sorted(ns), sorted(links), tables


def proc_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except OSError:
        pass
    return out


def confined(pid, what):
    """Checks uid != 0, no capabilities at all, no_new_privs. Returns the uid or None."""
    st = proc_status(pid)
    if not st:
        h.check(False, "%s: /proc/%d/status readable" % (what, pid))
        return None
    uids = st.get("Uid", "").split()
    gids = st.get("Gid", "").split()
    caps = {k: st.get(k) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
    h.check(len(uids) == 4 and len(set(uids)) == 1 and uids[0] != "0",
            "%s (pid %d) runs under a non-root uid, real=effective=saved=fs (Uid: %s, Gid: %s)"
            % (what, pid, st.get("Uid"), st.get("Gid")))
    h.check(all(v is not None and int(v, 16) == 0 for v in caps.values()),
            "%s has no capabilities (%s)" % (what, caps))
    h.check(st.get("NoNewPrivs") == "1", "%s has NoNewPrivs 1 (%s)" % (what, st.get("NoNewPrivs")))
    return int(uids[0]) if uids else None


def fds_without_cloexec(pid, lowest=3):
    """[(fd, target)] of pid's descriptors >= lowest that lack O_CLOEXEC: each
    would leak into any program the process executes."""
    out = []
    base = "/proc/%d/fd" % pid
    for name in os.listdir(base):
        fd = int(name)
        if fd < lowest:
            continue
        try:
            with open("/proc/%d/fdinfo/%d" % (pid, fd)) as f:
                flags = next(int(l.split()[1], 8) for l in f if l.startswith("flags:"))
            target = os.readlink(os.path.join(base, name))
        except (OSError, StopIteration):
            continue  # closed meanwhile
        if not flags & 0o2000000:
            out.append((fd, target))
    return out


def netns_of(pid):
    try:
        return os.readlink("/proc/%d/ns/net" % pid)
    except OSError:
        return None


# ------------------------------------------------------------------ clients


def run_peer(argv, what, timeout=120):
    t0 = time.monotonic()
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, preexec_fn=_pdeathsig)
    except subprocess.TimeoutExpired:
        h.check(False, what + ": peer timed out")
        return None
    line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "{}"
    try:
        res = json.loads(line)
    except ValueError:
        res = {}
    h.check(r.returncode == 0 and res.get("ok") is True,
            "%s: echo intact in %.1f s (%s)" % (what, time.monotonic() - t0,
                                               line[:300] if r.returncode else "packets=%s bytes=%s" % (
                                                   res.get("packets"), res.get("bytes_each_way"))))
    if r.returncode != 0 and r.stderr:
        print(r.stderr[-2000:], flush=True)
    return res


def telethon(port, secret, mode, dc=2, sizes="4,64,1024,16384,65536", what=None):
    peer = os.path.join(h.peers_dir(), "telethon_echo.py")
    return run_peer(["/usr/bin/python3", peer, "--host", "127.0.0.1", "--port", str(port),
                     "--secret", secret, "--mode", mode, "--dc", str(dc), "--sizes", sizes,
                     "--fast-aes", "--timeout", "30"], what or "telethon %s" % mode)


def mtcute(port, secret, dc=2, sizes="8,64,1024,2880,16384,65536", what=None):
    peer = os.path.join(h.peers_dir(), "mtcute_echo.mjs")
    if not os.path.isdir(os.path.join(h.peers_dir(), "node_modules", "@mtcute")):
        h.check(False, "mtcute installed (cd tests/peers && npm ci --ignore-scripts)")
        return None
    return run_peer(["node", peer, "--host", "127.0.0.1", "--port", str(port), "--secret", secret,
                     "--dc", str(dc), "--sizes", sizes, "--timeout", "30"], what or "mtcute fake-tls")


class Stream:
    """A raw obfuscated2 connection through the proxy (echo DC: bytes come back)."""

    def __init__(self, port, secret_hex, dc=2, timeout=20, source=None):
        self.c = h.Obfs2Client(secret_hex, dc=dc)
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                          source_address=(source, 0) if source else None)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.sendall(self.c.init)

    def roundtrip(self, n=4096, timeout=None):
        if timeout is not None:
            self.s.settimeout(timeout)
        data = os.urandom(n)
        self.s.sendall(self.c.seal(data))
        back = self.c.open(h.recv_exact(self.s, n))
        return back == data

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class Transfer(threading.Thread):
    """A long echo transfer on one connection in the background."""

    def __init__(self, port, secret_hex, total, chunk=16384, pause=0.0, dc=2):
        super().__init__(daemon=True)
        self.args = (port, secret_hex, total, chunk, pause, dc)
        self.ok = None
        self.error = None
        self.done_bytes = 0
        self.started = threading.Event()

    def run(self):
        port, secret, total, chunk, pause, dc = self.args
        try:
            st = Stream(port, secret, dc=dc, timeout=30)
            try:
                while self.done_bytes < total:
                    n = min(chunk, total - self.done_bytes)
                    if not st.roundtrip(n):
                        self.ok = False
                        self.error = "echo mismatch at %d" % self.done_bytes
                        return
                    self.done_bytes += n
                    self.started.set()
                    if pause:
                        time.sleep(pause)
                self.ok = True
            finally:
                st.close()
        except (OSError, ConnectionError) as e:
            self.ok = False
            self.error = "%s after %d bytes" % (e, self.done_bytes)
        finally:
            self.started.set()


def user_usage(u):
    return (u or {}).get("usage_up", 0) + (u or {}).get("usage_down", 0)


def main_wrapper(fn, name):
    """Runs fn() inside the sandbox; always kills what the test started."""
    enter()
    log("sandbox ready for %s (pid %d)" % (name, os.getpid()))
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - a crash is a failed test, with its traceback
        import traceback
        traceback.print_exc()
        h.check(False, "%s raised %r" % (name, e))
    finally:
        kill_all()
    h.finish()

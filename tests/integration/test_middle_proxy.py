#!/usr/bin/python3
"""Middle-proxy mode end to end: the real worker with --ad-tag against the
test middle proxy of tests/tools/middle_proxy.py (written from protocol.md
§8), all on 127.0.0.1.

- telethon round trips (abridged dc 2, intermediate dc 4, randomized
  intermediate dc -3; only cluster 2 and "default 2" are configured, so 4 and
  -3 take the default) and mtcute over fake TLS, with the transport flags
  right on each PROXY_REQ;
- the ad tag on every PROXY_REQ; the server's PING answered;
- 8 concurrent clients over a pool of 2 middle-proxy connections;
- CLOSE_EXT from the middle proxy closes that client;
- quick acks: the flag on exactly the packet that asked, SIMPLE_ACK back to
  the client little-endian (intermediate) or big-endian (abridged);
- --public-ip: the key derivation uses it (a middle proxy that sees
  another client address cannot decrypt us without it);
- a stalled middle proxy: the waiting client is closed within the stall
  timeout plus a tick, the connection replaced, new clients work;
- hostile bytes from a middle proxy (a bad CRC, a skipped sequence number,
  a 32 MiB frame header) close that connection's clients only; the worker
  keeps serving; answers for an unknown conn_id get CLOSE_CONN and disturb
  nobody;
- a middle proxy answering the handshake with the wrong peer pid: the client
  is closed, the worker carries on;
- --prefer-ipv6 with --proxy-config-v6: the middle proxy on [::1] is used
  (the IPv6 key derivation), without it the IPv4 one;
- --egress-file: middle-proxy connections go through a SOCKS5 upstream
  (dante, which reports its bound address); microsocks, which reports
  none, is refused with a reason.
"""

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

import harness as h

sys.path.insert(0, os.path.join(h.SOURCE_DIR, "tests", "tools"))
from middle_proxy import MiddleProxy  # noqa: E402

AD_TAG = "0123456789abcdeffedcba9876543210"
SIZES = "4,8,12,16,60,64,252,256,508,512,1020,1024,4096,16380,16384,65536,262144"
STALL_S = 2.0
F_AD_TAG, F_MAGIC, F_EXT2 = 0x8, 0x1000, 0x20000
F_PAD, F_INTERMEDIATE, F_ABRIDGED = 0x8000000, 0x20000000, 0x40000000


def run_telethon(port, mode, secret, dc):
    peer = os.path.join(h.peers_dir(), "telethon_echo.py")
    what = "telethon %s dc=%d" % (mode, dc)
    try:
        r = subprocess.run(["/usr/bin/python3", peer, "--host", "127.0.0.1", "--port", str(port),
                            "--secret", secret, "--mode", mode, "--dc", str(dc), "--sizes", SIZES,
                            "--fast-aes", "--timeout", "30"],
                           capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        h.check(False, what + ": peer timed out")
        return
    line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "{}"
    try:
        res = json.loads(line)
    except ValueError:
        res = {}
    h.check(r.returncode == 0 and res.get("ok") is True, "%s: echo intact (%s)" % (what, line[:300]))


class RawClient:
    """Intermediate (or abridged) framing over obfuscated2, by hand
    (harness.Obfs2Client)."""

    def __init__(self, port, dc=2, abridged=False):
        self.abridged = abridged
        self.c = h.Obfs2Client(h.SIMPLE_SECRET, tag=(b"\xef" if abridged else b"\xee") * 4, dc=dc)
        self.s = h.connect(port)
        self.s.sendall(self.c.init)

    def send(self, data, quick_ack=False):
        if self.abridged:
            assert len(data) < 4 * 0x7F
            head = bytes([len(data) // 4 | (0x80 if quick_ack else 0)])
        else:
            head = struct.pack("<I", len(data) | (0x80000000 if quick_ack else 0))
        self.s.sendall(self.c.seal(head + data))

    def read(self, n):
        return self.c.open(h.recv_exact(self.s, n))

    def echo(self, n=256, quick_ack=False):
        """True if `n` random bytes come back intact (after the quick ack the
        test middle proxy sends, if asked: CRC32 | top bit, BE for abridged)."""
        data = os.urandom(n)
        self.send(data, quick_ack)
        if quick_ack:
            token = struct.pack("<I", zlib.crc32(data) | 0x80000000)
            if self.read(4) != (token[::-1] if self.abridged else token):
                return False
        if self.abridged:
            length = self.read(1)[0] * 4
        else:
            (length,) = struct.unpack("<I", self.read(4))
        return length == n and self.read(n) == data

    def closed_within(self, seconds):
        """Seconds until the worker closed us, or None if still open after `seconds`."""
        t0 = time.monotonic()
        self.s.settimeout(seconds)
        try:
            while True:
                if not self.s.recv(65536):
                    return time.monotonic() - t0
        except socket.timeout:
            return None
        except OSError:
            return time.monotonic() - t0

    def close(self):
        self.s.close()


def write_files(d, port):
    secret = os.urandom(128)
    ps = os.path.join(d, "proxy-secret")
    with open(ps, "wb") as f:
        f.write(secret)
    pc = os.path.join(d, "proxy-multi.conf")
    with open(pc, "w") as f:
        f.write("# test config\nproxy_for 2 127.0.0.1:%d;\ndefault 2;\n" % port)
    return secret, ps, pc


def mtcute_run(mp, port):
    """Fake TLS: the PROXY_REQ flags are those of the inner transport (padded)."""
    peer = os.path.join(h.peers_dir(), "mtcute_echo.mjs")
    if not os.path.isdir(os.path.join(h.peers_dir(), "node_modules", "@mtcute")):
        h.check(False, "mtcute installed (cd tests/peers && npm ci --ignore-scripts)")
        return
    before = len(mp.flags)
    try:
        r = subprocess.run(["node", peer, "--host", "127.0.0.1", "--port", str(port), "--secret",
                            h.TLS_SECRET, "--dc", "2", "--sizes", SIZES.replace("4,", "", 1),
                            "--timeout", "30"], capture_output=True, text=True, timeout=120)
        line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "{}"
        ok = r.returncode == 0 and json.loads(line).get("ok") is True
    except (subprocess.TimeoutExpired, ValueError) as e:
        ok, line = False, str(e)
    h.check(ok, "mtcute fake TLS: echo intact (%s)" % line[:300])
    flags = mp.flags[before:]
    want = F_INTERMEDIATE | F_PAD
    h.check(flags and all(f & (F_ABRIDGED | F_INTERMEDIATE | F_PAD) == want for f in flags),
            "fake TLS: padded-intermediate flags %#x on all %d requests" % (want, len(flags)))


def telethon_section(mp, port):
    cases = [("abridged", h.SIMPLE_SECRET, 2, F_ABRIDGED),
             ("intermediate", h.SIMPLE_SECRET, 4, F_INTERMEDIATE),
             ("randomized", "dd" + h.SIMPLE_SECRET, -3, F_INTERMEDIATE | F_PAD)]
    for mode, secret, dc, want in cases:
        before = len(mp.flags)
        run_telethon(port, mode, secret, dc)
        flags = mp.flags[before:]
        mask = F_ABRIDGED | F_INTERMEDIATE | F_PAD
        h.check(flags and all(f & mask == want for f in flags),
                "%s: transport flags %#x on all %d requests" % (mode, want, len(flags)))
        h.check(all(f & (F_AD_TAG | F_MAGIC | F_EXT2) == F_AD_TAG | F_MAGIC | F_EXT2 for f in flags),
                "%s: ad-tag, magic and extmode2 flags set" % mode)
    mtcute_run(mp, port)
    h.check(mp.tags and all(t == AD_TAG for t in mp.tags),
            "ad tag on every PROXY_REQ (%d requests, tags seen %s)" % (len(mp.tags), sorted(set(map(str, mp.tags)))))
    h.check(mp.count("pongs") >= 1, "the middle proxy's PING was answered with its id")


def pool_section(mp, port, stats):
    n = 8
    accepted = mp.accepted
    results = [False] * n
    ready = threading.Barrier(n + 1)
    done = threading.Event()

    def client(i):
        try:
            c = RawClient(port, dc=2 if i % 2 else 5)
            ok = all(c.echo(4 * (i + 1) * 16) for _ in range(5))
        except (OSError, ConnectionError):
            ok, c = False, None
        ready.wait(30)
        done.wait(30)
        if ok and c is not None:
            ok = c.echo(1024)
        results[i] = ok
        if c is not None:
            c.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    ready.wait(30)
    s = h.wait_stats(stats, lambda s: s.get("middle_clients", 0) >= n, timeout=5)
    h.check(s.get("middle_clients", 0) >= n, "%d clients multiplexed at once (stats %s)" % (n, s.get("middle_clients")))
    done.set()
    for t in threads:
        t.join(60)
    h.check(all(results), "%d concurrent clients echo intact (%s)" % (n, results))
    h.check(mp.accepted == accepted and mp.accepted <= 2,
            "%d clients over %d middle-proxy connections (pool 2)" % (n, mp.accepted))


def close_ext_section(mp, port):
    c = RawClient(port)
    h.check(c.echo(), "client before CLOSE_EXT echoes")
    mp.close_ext()
    t = c.closed_within(5)
    h.check(t is not None, "CLOSE_EXT closes the client (after %s s)" % t)
    c.close()


def quick_ack_section(mp, port):
    for abridged in (False, True):
        what = "abridged" if abridged else "intermediate"
        before = len(mp.flags)
        c = RawClient(port, abridged=abridged)
        ok = c.echo(64) and c.echo(128, quick_ack=True) and c.echo(64)
        c.close()
        h.check(ok, "%s: a quick-ack request gets SIMPLE_ACK back as a quick ack in %s byte order"
                % (what, "big-endian" if abridged else "little-endian"))
        flags = mp.flags[before:]
        h.check([bool(f & 0x80000000) for f in flags] == [False, True, False],
                "%s: the quick-ack flag only on the packet that asked (%s)" % (what, [hex(f) for f in flags]))


def public_ip_section(d, ps, pc, secret):
    """Behind NAT: the middle proxy derives keys with the address it sees,
    which the worker only knows from --public-ip. The test middle proxy
    pretends the client's address is 203.0.113.9."""
    mp = MiddleProxy(secret, client_ip=socket.inet_aton("203.0.113.9"))
    with open(pc, "w") as f:
        f.write("proxy_for 2 127.0.0.1:%d;\n" % mp.port)
    w = None
    try:
        for public_ip, want in (("203.0.113.9", True), (None, False)):
            args = ["--bind", "127.0.0.1:0", "--secret", h.SIMPLE_SECRET, "--ad-tag", AD_TAG,
                    "--proxy-secret", ps, "--proxy-config", pc, "--log-level", "critical"]
            if public_ip:
                args += ["--public-ip", public_ip]
            w, ports = h.start_worker(args)
            c = RawClient(ports[0])
            try:
                ok = c.echo()
            except (OSError, ConnectionError):
                ok = False
            c.close()
            h.check(ok == want, "--public-ip %s: the middle proxy %s our handshake" %
                    (public_ip, "decrypts" if want else "cannot decrypt"))
            w.stop()
            w = None
    finally:
        mp.close()
        h.cleanup(w)


def prefer_ipv6_section(d, ps, secret):
    """--prefer-ipv6 takes the middle proxies of the IPv6 list
    (--proxy-config-v6): the key derivation over IPv6 (both addresses in the
    KDF, the IPv4 fields zero) agrees with the test middle proxy's; without
    the flag the IPv4 list is used."""
    v4 = MiddleProxy(secret)
    v6 = MiddleProxy(secret, listen=("::1", 0))
    pc4 = os.path.join(d, "v4.conf")
    pc6 = os.path.join(d, "v6.conf")
    with open(pc4, "w") as f:
        f.write("proxy_for 2 127.0.0.1:%d;\ndefault 2;\n" % v4.port)
    with open(pc6, "w") as f:
        f.write("proxy_for 2 [::1]:%d;\ndefault 2;\n" % v6.port)
    w = None
    try:
        for prefer, want, other in ((True, v6, v4), (False, v4, v6)):
            args = ["--bind", "127.0.0.1:0", "--secret", h.SIMPLE_SECRET, "--ad-tag", AD_TAG,
                    "--proxy-secret", ps, "--proxy-config", pc4, "--proxy-config-v6", pc6,
                    "--log-level", "error"] + (["--prefer-ipv6"] if prefer else [])
            w, ports = h.start_worker(args)
            before, other_before = len(want.tags), len(other.tags)
            c = RawClient(ports[0], dc=-2)
            try:
                ok = c.echo(300) and c.echo(5000)
            except (OSError, ConnectionError):
                ok = False
            c.close()
            what = "IPv6 ([::1])" if want is v6 else "IPv4"
            h.check(ok and len(want.tags) > before and len(other.tags) == other_before,
                    "prefer_ipv6 %s: echo through the %s middle proxy only" % (prefer, what))
            w.stop()
            w = None
        h.check(not v6.errors, "the IPv6 middle proxy derived the same keys (%s)" % v6.errors[:2])
    finally:
        v4.close()
        v6.close()
        h.cleanup(w)


DANTE_CONF = """logoutput: %(log)s
internal: 127.0.0.1 port = %(port)d
external: 127.0.0.1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
user.libwrap: nobody
client pass {
  from: 127.0.0.0/8 to: 0.0.0.0/0
  log: connect disconnect error
}
socks pass {
  from: 127.0.0.0/8 to: 0.0.0.0/0
  command: connect
  log: connect disconnect error
}
"""


def wait_port(port, timeout=10):
    """Until something listens on 127.0.0.1:port (ss, so no junk byte reaches it)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True, text=True).stdout
        if out.strip():
            return True
        time.sleep(0.1)
    return False


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def egress_section(d, ps, secret):
    """Middle-proxy connections go through the user's SOCKS upstreams
    (--egress-file): through dante (which reports the address of its end of
    the tunnel, so the key derivation uses the address and port the middle
    proxy sees); microsocks reports 0.0.0.0:0, so it cannot carry them: the
    worker says why and the client is closed (no fallback standalone)."""
    if not shutil.which("danted") or not shutil.which("microsocks"):
        h.check(False, "danted and microsocks installed (scripts/deps.sh --test)")
        return
    mp = MiddleProxy(secret)
    pc = os.path.join(d, "egress.conf")
    with open(pc, "w") as f:
        f.write("proxy_for 2 127.0.0.1:%d;\ndefault 2;\n" % mp.port)
    dante_port, micro_port = free_port(), free_port()
    dante_log = os.path.join(d, "sockd.log")
    conf = os.path.join(d, "danted.conf")
    with open(conf, "w") as f:
        f.write(DANTE_CONF % {"log": dante_log, "port": dante_port})
    procs = [subprocess.Popen(["danted", "-f", conf, "-p", os.path.join(d, "danted.pid"), "-N", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
             subprocess.Popen(["microsocks", "-i", "127.0.0.1", "-p", str(micro_port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    workers = []
    try:
        h.check(wait_port(dante_port) and wait_port(micro_port), "danted and microsocks listen")
        policy = "policy health_interval_ms=0 health_dc=2 failures=3 retry_min_ms=60000 " \
                 "retry_max_ms=60000 fallback_direct=0\n"
        for name, port in (("dante", dante_port), ("micro", micro_port)):
            eg = os.path.join(d, "egress-%s.txt" % name)
            with open(eg, "w") as f:
                f.write(policy + "upstream name=%s type=socks5 address=127.0.0.1:%d weight=1\n"
                        % (name, port))
            stats = os.path.join(d, "stats-%s.json" % name)
            err = os.path.join(d, "worker-%s.log" % name)
            with open(err, "w") as ef:
                p = subprocess.Popen([h.WORKER, "--bind", "127.0.0.1:0", "--secret", h.SIMPLE_SECRET,
                                      "--ad-tag", AD_TAG, "--proxy-secret", ps, "--proxy-config", pc,
                                      "--egress-file", eg, "--stats-file", stats,
                                      "--dc-connect-timeout", "3", "--log-level", "info"],
                                     stdout=subprocess.PIPE, stderr=ef, text=True)
            workers.append(p)
            port = None
            for line in p.stdout:
                if line.startswith("listening "):
                    port = int(line.strip().rsplit(":", 1)[1])
                    break
            before = len(mp.tags)
            c = RawClient(port)
            try:
                ok = c.echo(300) and c.echo(4000)
            except (OSError, ConnectionError):
                ok = False
            if name == "dante":
                c.close()
                h.check(ok and len(mp.tags) > before,
                        "through dante: echo via the middle proxy (%d requests)" % (len(mp.tags) - before))
                with open(dante_log, errors="replace") as f:
                    text = f.read()
                h.check(("127.0.0.1.%d" % mp.port) in text,
                        "dante logged the connection to the middle proxy's port %d" % mp.port)
                s = h.wait_stats(stats, lambda s: any(u.get("connects", 0) >= 1 for u in s.get("upstreams", [])))
                ups = s.get("upstreams", [])
                h.check(ups and ups[0].get("name") == "dante" and ups[0].get("connects") == 1,
                        "the upstream's counters count the middle-proxy connection (%s)" % ups)
            else:
                t = c.closed_within(6) if not ok else None
                c.close()
                h.check(not ok and t is not None and len(mp.tags) == before,
                        "through microsocks (no bound address): the client is closed, nothing reaches "
                        "the middle proxy")
                with open(err, errors="replace") as f:
                    text = f.read()
                h.check("reports no usable bound address" in text and "upstream=micro" in text,
                        "the worker logs why microsocks cannot carry a middle-proxy connection")
            p.terminate()
            h.check(p.wait(30) == 0, "%s worker exits 0 on SIGTERM" % name)
    finally:
        for p in workers + procs:  # SIGTERM first: danted's mother stops its children
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        mp.close()


def stall_section(mp, port, stats):
    c = RawClient(port)
    h.check(c.echo(), "client before the stall echoes")
    errors = h.read_stats(stats).get("middle_errors", 0)
    accepted = mp.accepted
    mp.mode = "stall"
    c.send(os.urandom(64))
    t = c.closed_within(STALL_S + 4)
    h.check(t is not None and t <= STALL_S + 1.5,
            "stalled middle proxy: the waiting client is closed in %s s (stall timeout %s s)" % (t, STALL_S))
    c.close()
    h.check(mp.count("stalled_frames") >= 2, "the worker probed the stalled connection with a PING")
    mp.mode = "echo"
    ok = True
    for _ in range(2):  # both pool slots
        c = RawClient(port)
        ok = c.echo() and ok
        c.close()
    h.check(ok, "new clients work after the stall")
    h.check(mp.accepted == accepted + 1, "the stalled connection was replaced (%d -> %d connections)"
            % (accepted, mp.accepted))
    s = h.wait_stats(stats, lambda s: s.get("middle_errors", 0) > errors)
    h.check(s.get("middle_errors", 0) == errors + 1, "middle_errors counts the stall (%s)" % s.get("middle_errors"))


def slow_upload_section(mp, port, stats):
    """A request that takes longer than the stall timeout to reach the middle
    proxy (a slow path, or a user shaped to 1 Mbit/s) is not a stall: bytes
    still move towards it, so the client waits for its answer."""
    errors = h.read_stats(stats).get("middle_errors", 0)
    c = RawClient(port)
    c.s.settimeout(STALL_S * 10)
    h.check(c.echo(), "client before the slow upload echoes")
    mp.mode = "slowread"
    t0 = time.monotonic()
    try:
        ok = c.echo(512 * 1024)
    except (OSError, ConnectionError, ValueError) as e:
        ok = False
        print("slow upload: %s" % e, flush=True)
    took = time.monotonic() - t0
    mp.mode = "echo"
    c.close()
    h.check(took > STALL_S, "the 512 KiB request took %.1f s to arrive, longer than the stall timeout" % took)
    h.check(ok, "... and its answer came back: a slow upload is not a stall")
    h.check(h.read_stats(stats).get("middle_errors", 0) == errors, "no middle-proxy error counted")


def backpressure_section(mp, port):
    """A client that asks faster than it reads (24 MiB of echo requests sent
    before it reads a byte) is slowed down at its requests, not closed: the
    worker stops reading it while its unread answers pass 1 MiB, and every
    answer comes back intact once it reads."""
    c = RawClient(port)
    c.s.settimeout(30)
    packets = [os.urandom(65536) for _ in range(384)]
    sent = []

    def send():
        try:
            for p in packets:
                c.send(p)
                sent.append(len(p))
        except OSError as e:
            sent.append(str(e))

    t = threading.Thread(target=send, daemon=True)
    t.start()
    time.sleep(2)  # the client reads nothing meanwhile
    stalled_at = len(sent)
    ok = True
    try:
        for p in packets:
            (length,) = struct.unpack("<I", c.read(4))
            if length != len(p) or c.read(length) != p:
                ok = False
                break
    except (OSError, ConnectionError, ValueError) as e:
        ok = False
        print("backpressure: read failed: %s" % e, flush=True)
    t.join(10)
    c.close()
    h.check(stalled_at < len(packets),
            "the worker stopped taking requests while the answers were unread (%d of %d sent)"
            % (stalled_at, len(packets)))
    h.check(ok and len(sent) == len(packets) and all(isinstance(x, int) for x in sent),
            "a client asking faster than it reads: 24 MiB of answers intact, not closed")


def hostile_section(mp, port, worker, stats, mode):
    a = RawClient(port)
    b = RawClient(port)  # round robin: the other connection of the pool
    h.check(a.echo() and b.echo(), "%s: two clients on the two connections echo" % mode)
    errors = h.read_stats(stats).get("middle_errors", 0)
    mp.mode = mode
    a.send(os.urandom(64))
    t = a.closed_within(5)
    h.check(t is not None, "%s from the middle proxy closes its client (%s s)" % (mode, t))
    mp.mode = "echo"
    h.check(b.echo(), "%s: the client on the other middle-proxy connection still echoes" % mode)
    h.check(worker.p.poll() is None, "%s: the worker survived" % mode)
    c = RawClient(port)
    h.check(c.echo(), "%s: a new client works afterwards" % mode)
    for x in (a, b, c):
        x.close()
    s = h.wait_stats(stats, lambda s: s.get("middle_errors", 0) > errors)
    h.check(s.get("middle_errors", 0) == errors + 1, "%s: middle_errors counts the bad connection" % mode)


def unknown_id_section(mp, port):
    c = RawClient(port)
    mp.mode = "unknown"
    ok = c.echo() and c.echo()
    mp.mode = "echo"
    h.check(ok, "answers for an unknown conn_id do not disturb the client")
    deadline = time.time() + 5
    while time.time() < deadline and not mp.unknown_ids <= mp.closed_ids:
        time.sleep(0.05)
    h.check(mp.unknown_ids and mp.unknown_ids <= mp.closed_ids,
            "the worker answers an unknown conn_id with CLOSE_CONN (%d ids)" % len(mp.unknown_ids))
    c.close()


def badpid_section(d, ps, pc, secret):
    """A middle proxy that answers the handshake with the wrong peer pid."""
    mp = MiddleProxy(secret, mode="badpid")
    with open(pc, "w") as f:
        f.write("proxy_for 2 127.0.0.1:%d;\ndefault 2;\n" % mp.port)
    stats = os.path.join(d, "stats-badpid.json")
    w, ports = h.start_worker(["--bind", "127.0.0.1:0", "--secret", h.SIMPLE_SECRET,
                               "--ad-tag", AD_TAG, "--proxy-secret", ps, "--proxy-config", pc,
                               "--middle-pool", "1", "--stats-file", stats, "--log-level", "error"])
    try:
        c = RawClient(ports[0])
        c.send(os.urandom(64))
        t = c.closed_within(5)
        h.check(t is not None, "wrong handshake pid: the client is closed (%s s)" % t)
        c.close()
        s = h.wait_stats(stats, lambda s: s.get("middle_errors", 0) >= 1)
        h.check(s.get("middle_errors") == 1 and s.get("middle_opened") == 0 and s["active"] == 0,
                "wrong handshake pid: counted as an error, never opened (%s)" % json.dumps(s))
        h.check(w.p.poll() is None and mp.count("handshakes") == 1,
                "wrong handshake pid: the worker survived, the middle proxy saw the handshake")
        w.signal(15)
        h.check(w.wait(30) == 0, "badpid worker exits 0 on SIGTERM")
    finally:
        mp.close()
        h.cleanup(w)


def main():
    d = h.tmpdir()
    w = None
    mp = None
    try:
        # A small receive window on every connection: slow_upload_section's
        # slow reader then holds the worker's sending back, as a slow path
        # would, instead of a buffer taking the whole request at once.
        mp = MiddleProxy(b"", rcvbuf=32768)
        secret, ps, pc = write_files(d, mp.port)
        mp.secret = secret
        stats = os.path.join(d, "stats.json")
        w, ports = h.start_worker(["--bind", "127.0.0.1:0", "--secret", h.SIMPLE_SECRET,
                                   "--secret", h.TLS_SECRET, "--ad-tag", AD_TAG, "--proxy-secret", ps, "--proxy-config", pc,
                                   "--middle-pool", "2", "--middle-stall-timeout", str(STALL_S),
                                   "--stats-file", stats, "--log-level", "info"])
        port = ports[0]
        telethon_section(mp, port)
        pool_section(mp, port, stats)
        close_ext_section(mp, port)
        quick_ack_section(mp, port)
        stall_section(mp, port, stats)
        slow_upload_section(mp, port, stats)
        backpressure_section(mp, port)
        for mode in ("garbage", "badseq", "oversized"):
            hostile_section(mp, port, w, stats, mode)
        unknown_id_section(mp, port)
        h.check(mp.count("close_conns") >= 1, "closed clients are reported with CLOSE_CONN (%d)"
                % mp.count("close_conns"))
        h.check(not mp.errors, "the middle proxy saw no protocol errors (%s)" % mp.errors[:3])
        s = h.wait_stats(stats, lambda s: s["active"] == 0)
        h.check(s["active"] == 0 and s.get("middle_clients") == 0,
                "all clients gone, none left attached (%s)" % json.dumps(s))
        w.signal(15)
        h.check(w.wait(30) == 0, "worker exits 0 on SIGTERM")
        badpid_section(d, ps, pc, secret)
        public_ip_section(d, ps, pc, secret)
        prefer_ipv6_section(d, ps, secret)
        egress_section(d, ps, secret)
    finally:
        if mp is not None:
            mp.close()
        h.cleanup(w, dirs=[d])
    h.finish()


if __name__ == "__main__":
    main()

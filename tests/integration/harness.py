"""Shared helpers for the worker integration tests (tests/integration/test_*.py).

Starts the real binaries named by the environment (MTW_WORKER, MTW_FAKE_DC,
MTW_FAKE_MASK; set by CTest), and speaks obfuscated2 and fake TLS itself with
python3-cryptography so tests need no other client for probes and raw flows.
Everything stays on 127.0.0.1.
"""

import hashlib
import hmac
import json
import os
import queue
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

WORKER = os.environ.get("MTW_WORKER", "build/hD/worker/mtwarden-worker")
FAKE_DC = os.environ.get("MTW_FAKE_DC", "build/hD/tests/tools/mtw-fake-dc")
FAKE_MASK = os.environ.get("MTW_FAKE_MASK", "build/hD/tests/tools/mtw-fake-mask")
SOURCE_DIR = os.environ.get("MTW_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))

SIMPLE_SECRET = "00112233445566778899aabbccddeeff"
OTHER_SECRET = "ffeeddccbbaa99887766554433221100"
TLS_DOMAIN = "www.example.com"
TLS_SECRET = "ee" + "0123456789abcdeffedcba9876543210" + TLS_DOMAIN.encode().hex()

FAILURES = []


def check(cond, what):
    """Records a failed expectation (the test keeps going, then exits 1)."""
    if cond:
        print("ok   " + what, flush=True)
    else:
        print("FAIL " + what, flush=True)
        FAILURES.append(what)


def finish():
    if FAILURES:
        print("%d check(s) failed: %s" % (len(FAILURES), "; ".join(FAILURES)), flush=True)
        sys.exit(1)
    print("all checks passed", flush=True)
    sys.exit(0)


class Proc:
    """A child process whose stdout lines are collected by a thread."""

    def __init__(self, argv, pass_fds=(), name=None):
        self.name = name or os.path.basename(argv[0])
        self.lines = queue.Queue()
        self.all_lines = []
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=None, pass_fds=pass_fds,
                                  text=True, bufsize=1)
        self.t = threading.Thread(target=self._pump, daemon=True)
        self.t.start()

    def _pump(self):
        for line in self.p.stdout:
            line = line.rstrip("\n")
            self.all_lines.append(line)
            self.lines.put(line)

    def wait_line(self, prefix, timeout=30):
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise RuntimeError("%s: no line starting with %r" % (self.name, prefix))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line.startswith(prefix):
                return line

    @property
    def pid(self):
        return self.p.pid

    def signal(self, sig):
        self.p.send_signal(sig)

    def wait(self, timeout):
        return self.p.wait(timeout=timeout)

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def start_fake_dc(mode="echo", expect_dc=None, record=None):
    argv = [FAKE_DC, "--listen", "127.0.0.1:0", "--mode", mode]
    if expect_dc is not None:
        argv += ["--expect-dc", str(expect_dc)]
    if record:
        argv += ["--record", record]
    p = Proc(argv, name="fake-dc")
    port = int(p.wait_line("listening ").split()[1])
    return p, port


def start_fake_mask(record_dir):
    p = Proc([FAKE_MASK, "--listen", "127.0.0.1:0", "--record-dir", record_dir], name="fake-mask")
    port = int(p.wait_line("listening ").split()[1])
    return p, port


def dc_flags(dc_port):
    out = []
    for n in range(1, 6):
        out += ["--dc", "%d=127.0.0.1:%d" % (n, dc_port)]
    return out


def start_worker(args, pass_fds=(), expect_listen=1):
    p = Proc([WORKER] + args, pass_fds=pass_fds, name="worker")
    ports = []
    for _ in range(expect_listen):
        line = p.wait_line("listening ")
        ports.append(int(line.rsplit(":", 1)[1]))
    return p, ports


def read_stats(path, timeout=10):
    deadline = time.time() + timeout
    while True:
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def wait_stats(path, pred, timeout=15):
    deadline = time.time() + timeout
    while True:
        s = read_stats(path)
        if pred(s) or time.time() > deadline:
            return s
        time.sleep(0.2)


def count_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def tmpdir():
    d = tempfile.mkdtemp(prefix="mtw-it-")
    return d


# ---------------------------------------------------------------- obfuscated2


def aes_ctr(key, iv):
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()


class Obfs2Client:
    """A minimal obfuscated2 client: init for a 16-byte key, then raw bytes.

    The proxy does not parse frames in direct mode and the fake DC echoes
    bytes, so tests can send any byte string and expect it back.
    """

    FORBIDDEN = {b"HEAD", b"POST", b"GET ", b"OPTI", b"\x16\x03\x01\x02", b"\xdd" * 4, b"\xee" * 4}

    def __init__(self, secret_hex, tag=b"\xef" * 4, dc=2):
        raw = bytes.fromhex(secret_hex)
        key = raw[1:17] if len(raw) >= 17 else raw
        while True:
            h = bytearray(os.urandom(64))
            if h[0] != 0xEF and bytes(h[0:4]) not in self.FORBIDDEN and h[4:8] != b"\0\0\0\0":
                break
        h[56:60] = tag
        h[60:62] = struct.pack("<h", dc)
        enc_key = hashlib.sha256(bytes(h[8:40]) + key).digest()
        r = bytes(h[8:56])[::-1]
        dec_key = hashlib.sha256(r[0:32] + key).digest()
        self.enc = aes_ctr(enc_key, bytes(h[40:56]))
        self.dec = aes_ctr(dec_key, r[32:48])
        encrypted = self.enc.update(bytes(h))
        self.init = bytes(h[:56]) + encrypted[56:]

    def seal(self, data):
        return self.enc.update(data)

    def open(self, data):
        return self.dec.update(data)


class SourcedEcho:
    """An obfuscated2 echo connection (secret_hex) from a given source
    address to (dst, port): the init is sent at once."""

    def __init__(self, secret_hex, dst, port, source):
        self.c = Obfs2Client(secret_hex)
        family = socket.AF_INET6 if ":" in dst else socket.AF_INET
        self.s = socket.socket(family, socket.SOCK_STREAM)
        self.s.settimeout(15)
        self.s.bind((source, 0))
        self.s.connect((dst, port))
        self.s.sendall(self.c.init)

    def echo(self, n=4096):
        data = os.urandom(n)
        self.s.sendall(self.c.seal(data))
        return self.c.open(recv_exact(self.s, n)) == data

    def close(self):
        self.s.close()


def connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(sock, n):
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(min(65536, n - len(out)))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(out), n))
        out += chunk
    return bytes(out)


def echo_session(port, secret_hex, total=256 * 1024, chunk=16384, dc=2, pause=0.0,
                 first_bytes_cb=None):
    """Connects, sends `total` random bytes in chunks and checks the echo.

    Returns True when every byte came back intact. `pause` sleeps between
    chunks (to keep a transfer active across signals).
    """
    c = Obfs2Client(secret_hex, dc=dc)
    s = connect(port)
    try:
        s.sendall(c.init)
        sent = 0
        while sent < total:
            n = min(chunk, total - sent)
            data = os.urandom(n)
            s.sendall(c.seal(data))
            back = c.open(recv_exact(s, n))
            if back != data:
                return False
            sent += n
            if pause:
                time.sleep(pause)
        return True
    except (OSError, ConnectionError) as e:
        print("echo session failed: %s" % e, flush=True)
        return False
    finally:
        s.close()


# ------------------------------------------------------------------ fake TLS


def tls_ext(kind, data):
    """One ClientHello extension: type, length, data."""
    return struct.pack(">HH", kind, len(data)) + data


def u16_list(values, len_bytes=2):
    """Big-endian 16-bit values behind their length in `len_bytes` bytes."""
    data = b"".join(struct.pack(">H", v) for v in values)
    return len(data).to_bytes(len_bytes, "big") + data


def sni_ext(name):
    """server_name with one host name."""
    name = name.encode()
    return tls_ext(0x00, struct.pack(">HBH", len(name) + 3, 0, len(name)) + name)


def versions_ext(versions=(0x0304,)):
    """supported_versions."""
    return tls_ext(0x2B, u16_list(versions, 1))


def groups_ext(groups=(0x001D,)):
    """supported_groups."""
    return tls_ext(0x0A, u16_list(groups))


def key_share_ext():
    """key_share: one x25519 share, random bytes."""
    return tls_ext(0x33, struct.pack(">HHH", 36, 0x1D, 32) + os.urandom(32))


def client_hello(secret_hex, ts=None, sni=TLS_DOMAIN, pad_to=517, suites=(0x1301, 0x1302, 0x1303),
                 exts=None):
    """A ClientHello record carrying the fake-TLS HMAC of `secret_hex` and
    the timestamp `ts` (default: now). Its extensions: server_name (none
    when sni is None), then `exts` (default: TLS 1.3 only, an x25519 key
    share, x25519), then padding up to `pad_to` bytes on the wire."""
    key = bytes.fromhex(secret_hex)[1:17]
    ext = sni_ext(sni) if sni is not None else b""
    ext += b"".join(exts) if exts is not None else versions_ext() + key_share_ext() + groups_ext()
    body = b"\x03\x03" + b"\0" * 32 + b"\x20" + os.urandom(32) + u16_list(suites)
    body += b"\x01\x00"
    fixed = 5 + 4 + len(body) + 2 + len(ext)
    ext += tls_ext(0x15, b"\0" * max(0, pad_to - fixed - 4))
    body += struct.pack(">H", len(ext)) + ext
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    record = bytearray(b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs)
    digest = hmac.new(key, bytes(record), hashlib.sha256).digest()
    ts = int(time.time()) if ts is None else ts
    rnd = digest[:28] + bytes(a ^ b for a, b in zip(digest[28:32], struct.pack("<I", ts & 0xFFFFFFFF)))
    record[11:43] = rnd
    return bytes(record)


def read_tls_record(sock):
    """One TLS record: (type, payload)."""
    head = recv_exact(sock, 5)
    return head[0], recv_exact(sock, struct.unpack(">H", head[3:5])[0])


def verify_server_hello(secret_hex, hello, answer):
    """True when `answer` (ServerHello ‖ CCS ‖ ApplicationData records, as
    sent) carries the HMAC of the client random (hello[11:43]) and the answer
    with its random zeroed (protocol.md §5 "Response")."""
    key = bytes.fromhex(secret_hex)[1:17]
    zeroed = answer[:11] + b"\0" * 32 + answer[43:]
    return hmac.new(key, hello[11:43] + zeroed, hashlib.sha256).digest() == answer[11:43]


def tls_records(payload, max_payload=16384 - 5):
    """Application data records carrying `payload`."""
    out = bytearray()
    for i in range(0, len(payload), max_payload):
        part = payload[i:i + max_payload]
        out += b"\x17\x03\x03" + struct.pack(">H", len(part)) + part
    return bytes(out)


class FakeTlsClient:
    """A fake-TLS ('ee') client: ClientHello, the server's answer checked
    (HMAC), then CCS and the obfuscated2 init and data in records."""

    CCS = b"\x14\x03\x03\x00\x01\x01"

    def __init__(self, secret_hex, dc=2):
        self.secret = secret_hex
        self.obfs = Obfs2Client(secret_hex, tag=b"\xdd" * 4, dc=dc)

    def handshake(self, sock, pipelined=b""):
        """Sends the hello (and `pipelined` right behind it, in the same
        write, without waiting for the answer), reads and checks the
        answer; True when valid."""
        hello = client_hello(self.secret, sni=bytes.fromhex(self.secret[34:]).decode())
        sock.sendall(hello + pipelined)
        answer = bytearray()
        for want in (0x16, 0x14, 0x17):
            t, body = read_tls_record(sock)
            if t != want:
                return False
            answer += bytes([t]) + b"\x03\x03" + struct.pack(">H", len(body)) + body
        return verify_server_hello(self.secret, hello, bytes(answer))

    def first_flight(self, data):
        """CCS, then the init and the sealed `data` in records: what a client
        sends right after the ServerHello."""
        return self.CCS + tls_records(self.obfs.init + self.obfs.seal(data))

    def read_plain(self, sock, n):
        """Reads records until n payload bytes came back; returns them opened."""
        out = bytearray()
        while len(out) < n:
            t, body = read_tls_record(sock)
            if t != 0x17:
                raise ConnectionError("record type %d from the proxy" % t)
            out += body
        return self.obfs.open(bytes(out))


# -------------------------------------------------------------------- probes


def probe(port, data, half_close=True, timeout=15):
    """Sends `data`, optionally half-closes, returns everything read until EOF."""
    s = connect(port, timeout=timeout)
    try:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        out = bytearray()
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
            if not half_close and out.endswith(b"mask-answer\n"):
                break
        return bytes(out)
    finally:
        s.close()


def mask_records(record_dir):
    return sorted(f for f in os.listdir(record_dir) if f.endswith(".bin"))


def wait_new_record(record_dir, before, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        now = mask_records(record_dir)
        new = [f for f in now if f not in before]
        if new:
            with open(os.path.join(record_dir, new[0]), "rb") as f:
                return f.read()
        time.sleep(0.05)
    return None


def peers_dir():
    return os.path.join(SOURCE_DIR, "tests", "peers")


def cleanup(*procs, dirs=()):
    for p in procs:
        if p is not None:
            p.stop()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)

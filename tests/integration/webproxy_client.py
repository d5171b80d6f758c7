"""The app and bridge-page side of the WEB proxy, for tests: written from
../shared/docs/webproxy.md (frames §1.5, capability §1.2) and our own
carrier (docs/webfront.md: one WebSocket, subprotocol tproxy-v1.<token>,
one batch per binary message). The WebSocket client is a minimal RFC 6455
one over Python's ssl module (certificates are not verified: the tests use a
self-signed one)."""

import base64
import hashlib
import hmac
import os
import re
import socket
import ssl
import struct
import subprocess

import harness as h

OPEN, DATA, CLOSE, WINDOW, PING, PONG, HELLO, WELCOME, BYE = (
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x11, 0x1F)
INITIAL_WINDOW = 4 * 1024 * 1024
HOST = "proxy.example.com"


def capability(secret_hex, host):
    key = bytes.fromhex(secret_hex)
    mac = hmac.new(key, b"tdesktop-web-proxy-bridge-v1\n" + host.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def frame(ftype, sid, payload=b""):
    return struct.pack(">I", (ftype << 24) | sid) + struct.pack(">I", len(payload)) + payload


def frames(batch):
    out, off = [], 0
    while off < len(batch):
        if len(batch) - off < 8:
            raise ValueError("truncated frame header")
        head, n = struct.unpack(">II", batch[off:off + 8])
        if off + 8 + n > len(batch):
            raise ValueError("truncated frame")
        out.append((head >> 24, head & 0xFFFFFF, batch[off + 8:off + 8 + n]))
        off += 8 + n
    return out


def tls_connect(port, host, timeout=10):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname=host)


def peer_cert_sha256(port, host):
    s = tls_connect(port, host)
    try:
        return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()
    finally:
        s.close()


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed in the response head")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


def http_get(port, host, target, method="GET", extra=""):
    """One request on a fresh TLS connection: (status, headers, body)."""
    s = tls_connect(port, host)
    try:
        s.sendall(("%s %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n"
                   % (method, target, host, extra)).encode())
        status, headers, body = read_head(s)
        n = int(headers.get("content-length", "0"))
        if method == "HEAD":
            return status, headers, b""
        while len(body) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, headers, body
    finally:
        s.close()


def bootstrap_of(page):
    m = re.search(rb'const bootstrap = "([A-Za-z0-9_-]+)"', page)
    return m.group(1).decode() if m else None


class Carrier:
    """The page's WebSocket to the relay."""

    def __init__(self, port, host, token, timeout=15):
        self.sock = tls_connect(port, host, timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            "GET /api/v1/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: tproxy-v1.%s\r\nOrigin: https://%s\r\n\r\n"
            % (host, key, token, host)).encode())
        self.status, self.headers, self.buf = read_head(self.sock)
        self.closed = False

    @property
    def upgraded(self):
        return self.status == 101

    def _send(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
            (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")
             ).to_bytes(n, "big")
        self.sock.sendall(head + mask + masked)

    def send(self, batch):
        self._send(0x2, batch)

    def send_text(self, text):
        self._send(0x1, text.encode())

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(262144)
            if not chunk:
                raise ConnectionError("carrier closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        """The next binary message (a batch); None when the relay closed."""
        message = b""
        while True:
            b0, b1 = self._need(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._need(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._need(8))[0]
            payload = self._need(n)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                if not self.closed:
                    try:
                        self._send(0x8, payload[:2])
                    except OSError:
                        pass
                self.closed = True
                return None
            if opcode == 0x9:
                self._send(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            message += payload
            if b0 & 0x80:
                return message

    def close(self):
        try:
            self._send(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()


def make_cert(directory, name, cn):
    cert, key = os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=DNS:" + cn, "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


def der_sha256(cert_path):
    der = subprocess.run(["openssl", "x509", "-in", cert_path, "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return hashlib.sha256(der).hexdigest()


class App:
    """Telegram's side of one carrier: frames, streams, both windows."""

    def __init__(self, carrier):
        self.c = carrier
        self.streams = {}
        self.c.send(frame(HELLO, 0, b"\x01"))
        self.welcome = frames(self.c.recv())

    def open(self, sid, secret_hex, tag):
        self.c.send(frame(OPEN, sid))
        client = h.Obfs2Client(secret_hex, tag=tag)
        self.streams[sid] = {"credit": INITIAL_WINDOW, "window": INITIAL_WINDOW,
                             "rx": bytearray(), "closed": False, "obfs": client}
        self.send_raw(sid, client.init)

    def pump(self):
        batch = self.c.recv()
        if batch is None:
            raise ConnectionError("carrier closed")
        for ftype, sid, payload in frames(batch):
            s = self.streams.get(sid)
            if ftype == DATA:
                s["window"] -= len(payload)
                if s["window"] < 0:
                    raise RuntimeError("relay overran the app's window")
                s["rx"] += payload
            elif ftype == WINDOW:
                s["credit"] += int.from_bytes(payload, "big")
            elif ftype == CLOSE:
                s["closed"] = True
            elif ftype == PING:
                self.c.send(frame(PONG, 0, payload))
            elif ftype == BYE:
                raise ConnectionError("relay said BYE")

    def send_raw(self, sid, data):
        s = self.streams[sid]
        off = 0
        while off < len(data):
            n = min(65536, len(data) - off)
            while s["credit"] < n:
                self.pump()
            self.c.send(frame(DATA, sid, data[off:off + n]))
            s["credit"] -= n
            off += n

    def read(self, sid, n):
        s = self.streams[sid]
        while len(s["rx"]) < n:
            if s["closed"]:
                raise ConnectionError("stream %d closed" % sid)
            self.pump()
        out = bytes(s["rx"][:n])
        del s["rx"][:n]
        self.c.send(frame(WINDOW, sid, n.to_bytes(4, "big")))
        s["window"] += n
        return s["obfs"].open(out)

    def echo(self, sid, data):
        self.send_raw(sid, self.streams[sid]["obfs"].seal(data))
        return self.read(sid, len(data)) == data


def open_carrier(port, secret_hex, host=HOST):
    status, _, page = http_get(port, host, "/?bridge=" + capability(secret_hex, host))
    token = bootstrap_of(page) if status == 200 else None
    return Carrier(port, host, token) if token else None, token

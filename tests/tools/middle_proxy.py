#!/usr/bin/python3
"""A test Telegram middle proxy: the server side of the RPC protocol of
../shared/docs/protocol.md §8, written from the spec (not from our C++).

Per connection: the client's RPC_NONCE (clear, seq -2; key selector and AES
schema checked), our RPC_NONCE, the key derivation (aes_create_keys with the
addresses as this socket sees them), AES-256-CBC both ways, the client's
RPC_HANDSHAKE (seq -1) answered with its sender_pid as our peer_pid, then
CRC32 frames with sequence numbers from 0. RPC_PROXY_REQ is answered by an
RPC_PROXY_ANS echoing the MTProto packet (the ad tag and flags of every
request are recorded); RPC_PING gets RPC_PONG; RPC_CLOSE_CONN is recorded;
right after the handshake the server sends its own RPC_PING and records the
PONG. A PROXY_REQ with the quick-ack flag is first answered with
RPC_SIMPLE_ACK, confirm = LE u32 (CRC32(packet) | 0x80000000). close_ext() sends RPC_CLOSE_EXT for every live conn_id on demand.

Modes (MiddleProxy.mode, read on every frame, so it can change under live
connections):
  echo     as above
  stall    after the handshake, read everything and answer nothing
  garbage  answer the next PROXY_REQ with a frame whose CRC is wrong
  badseq   ... with a frame whose sequence number skips ahead
  oversized ... with a frame header announcing 32 MiB
  unknown  answer each PROXY_REQ twice: first for a conn_id the client never
           used (the client should answer CLOSE_CONN for it), then properly
  badpid   answer the handshake with a peer_pid that is not the client's
  slowread read at about 160 KiB/s (a slow path to the middle proxy), answer
           as echo; with MiddleProxy(rcvbuf=...) small, the client's sending
           slows to match

Importable (tests/integration/test_middle_proxy.py starts it in-process) or
runnable: middle_proxy.py --secret-file FILE [--listen 127.0.0.1:0|[::1]:0] [--mode M]
[--record FILE] prints "listening PORT" and serves until killed; --record
appends "conn_id tag flags" (hex; tag "none" when absent) per PROXY_REQ;
SIGUSR1 switches to stall mode, SIGUSR2 back to echo. Needs python3-cryptography.
"""

import argparse
import hashlib
import os
import signal
import socket
import struct
import threading
import time
import zlib

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

RPC_NONCE = 0x7ACB87AA
RPC_HANDSHAKE = 0x7682EEF5
RPC_PROXY_REQ = 0x36CEF1EE
RPC_PROXY_ANS = 0x4403DA0D
RPC_SIMPLE_ACK = 0x3BAC409B
RPC_CLOSE_EXT = 0x5EB634A2
RPC_CLOSE_CONN = 0x1FCF425D
RPC_PING = 0x5730A2DF
RPC_PONG = 0x8430EAA7
TL_PROXY_TAG = 0xDB1E26AE
OUR_PID = b"MIDDLEPROXY1"


class ProtocolError(Exception):
    pass


def frame(seq, payload):
    body = struct.pack("<Ii", len(payload) + 12, seq) + payload
    out = body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)
    while len(out) % 16:
        out += struct.pack("<I", 4)
    return out


def derive(srv_nonce, clt_nonce, ts, srv_ip, srv_port, clt_ip, clt_port, purpose, secret):
    """aes_create_keys: ip4 fields are the address bytes reversed; over IPv6
    (16-byte addresses) they are zero and the client's and then the server's
    IPv6 address follow the second server nonce."""
    v6 = len(srv_ip) == 16
    ip4 = (lambda a: b"\0" * 4) if v6 else (lambda a: a[::-1])
    s = (srv_nonce + clt_nonce + struct.pack("<I", ts) + ip4(srv_ip) + struct.pack("<H", clt_port)
         + purpose + ip4(clt_ip) + struct.pack("<H", srv_port) + secret + srv_nonce
         + (clt_ip + srv_ip if v6 else b"") + clt_nonce)
    key = hashlib.md5(s[1:]).digest()[:12] + hashlib.sha1(s).digest()
    iv = hashlib.md5(s[2:]).digest()
    return key, iv


class Conn:
    def __init__(self, server, sock):
        self.server = server
        self.sock = sock
        self.buf = b""
        self.raw = b""
        self.dec = None
        self.enc = None
        self.in_seq = -2
        self.out_seq = -2
        self.lock = threading.Lock()
        self.conn_ids = set()

    # -- reading ------------------------------------------------------------
    def _fill(self):
        if self.server.mode == "slowread":  # about 160 KiB/s
            time.sleep(0.1)
            data = self.sock.recv(16384)
        else:
            data = self.sock.recv(65536)
        if not data:
            raise EOFError()
        if self.dec is None:
            self.buf += data
            return
        self.raw += data
        whole = len(self.raw) // 16 * 16
        if whole:
            self.buf += self.dec.update(self.raw[:whole])
            self.raw = self.raw[whole:]

    def read_frame(self):
        while True:
            while len(self.buf) < 4:
                self._fill()
            (length,) = struct.unpack("<I", self.buf[:4])
            if length == 4:
                self.buf = self.buf[4:]
                continue
            if length < 12 or length % 4 or length > (1 << 25):
                raise ProtocolError("bad length %d" % length)
            while len(self.buf) < length:
                self._fill()
            body, self.buf = self.buf[:length], self.buf[length:]
            (seq,) = struct.unpack("<i", body[4:8])
            if seq != self.in_seq:
                raise ProtocolError("bad seq %d, want %d" % (seq, self.in_seq))
            if zlib.crc32(body[:-4]) & 0xFFFFFFFF != struct.unpack("<I", body[-4:])[0]:
                raise ProtocolError("bad crc")
            self.in_seq += 1
            return body[8:-4]

    # -- writing ------------------------------------------------------------
    def send(self, payload, corrupt=False, seq_skew=0, oversized=False):
        with self.lock:
            f = bytearray(frame(self.out_seq + seq_skew, payload))
            if corrupt:
                f[len(payload) + 8] ^= 0xFF  # the first CRC byte
            if oversized:
                f = bytearray(struct.pack("<Ii", 32 << 20, self.out_seq) + os.urandom(8))
            self.out_seq += 1
            data = bytes(f)
            if self.enc is not None:
                data = self.enc.update(data)
            self.sock.sendall(data)

    # -- protocol -----------------------------------------------------------
    def handshake(self):
        secret = self.server.secret
        p = self.read_frame()
        if len(p) != 32:
            raise ProtocolError("nonce size %d" % len(p))
        typ, key_select, schema, ts = struct.unpack("<I4sII", p[:16])
        if typ != RPC_NONCE or key_select != secret[:4] or schema != 1:
            raise ProtocolError("bad nonce")
        clt_nonce = p[16:32]
        srv_nonce = os.urandom(16)
        self.send(struct.pack("<I4sII", RPC_NONCE, secret[:4], 1, ts) + srv_nonce)
        # The clear nonce frame may be followed by clear padding words; what
        # follows them is encrypted (an encrypted block starting with a
        # padding word is a 2^-32 chance). The client sends more only after
        # our nonce.
        while len(self.buf) < 4:
            self._fill()
        while self.buf[:4] == struct.pack("<I", 4):
            self.buf = self.buf[4:]
        srv_ip, srv_port = self.sock.getsockname()[:2]
        clt_ip, clt_port = self.sock.getpeername()[:2]
        fam = self.sock.family
        srv_ip = socket.inet_pton(fam, srv_ip)
        clt_ip = self.server.client_ip or socket.inet_pton(fam, clt_ip)
        args = (srv_nonce, clt_nonce, ts, srv_ip, srv_port, clt_ip, clt_port)
        ck, civ = derive(*args, b"CLIENT", secret)
        sk, siv = derive(*args, b"SERVER", secret)
        self.dec = Cipher(algorithms.AES(ck), modes.CBC(civ)).decryptor()
        self.enc = Cipher(algorithms.AES(sk), modes.CBC(siv)).encryptor()
        if self.buf:  # bytes after the nonce are already encrypted
            self.raw, self.buf = self.buf, b""
        p = self.read_frame()
        if len(p) != 32:
            raise ProtocolError("handshake size %d" % len(p))
        typ, flags = struct.unpack("<II", p[:8])
        if typ != RPC_HANDSHAKE:
            raise ProtocolError("not a handshake")
        sender_pid = p[8:20]
        peer = b"WRONGPEERPID" if self.server.mode == "badpid" else sender_pid
        self.send(struct.pack("<II", RPC_HANDSHAKE, 0) + OUR_PID + peer)

    def serve(self):
        self.handshake()
        self.server.note("handshakes")
        if self.server.mode == "echo":
            self.send(struct.pack("<IQ", RPC_PING, 0x1122334455667788))
        while True:
            p = self.read_frame()
            (typ,) = struct.unpack("<I", p[:4])
            mode = self.server.mode
            if typ == RPC_PONG:
                if struct.unpack("<Q", p[4:12])[0] == 0x1122334455667788:
                    self.server.note("pongs")
                continue
            if typ == RPC_CLOSE_CONN:
                (cid,) = struct.unpack("<Q", p[4:12])
                self.conn_ids.discard(cid)
                self.server.note("close_conns")
                with self.server.lock:
                    self.server.closed_ids.add(cid)
                continue
            if mode == "stall":
                self.server.note("stalled_frames")
                continue
            if typ == RPC_PING:
                self.server.note("pings")
                self.send(struct.pack("<I", RPC_PONG) + p[4:12])
                continue
            if typ != RPC_PROXY_REQ:
                raise ProtocolError("unexpected type %08x" % typ)
            flags, cid = struct.unpack("<IQ", p[4:16])
            off = 56
            tag = None
            if flags & 0xC:
                (extra,) = struct.unpack("<I", p[off:off + 4])
                ext = p[off + 4:off + 4 + extra]
                off += 4 + extra
                if struct.unpack("<I", ext[:4])[0] == TL_PROXY_TAG and ext[4] == 16:
                    tag = ext[5:21].hex()
            self.server.record_request(tag, flags, cid)
            self.conn_ids.add(cid)
            ans = struct.pack("<IIQ", RPC_PROXY_ANS, 0, cid) + p[off:]
            if mode in ("garbage", "badseq", "oversized"):
                self.server.note("hostile_sent")
                self.send(ans, corrupt=mode == "garbage", seq_skew=5 if mode == "badseq" else 0,
                          oversized=mode == "oversized")
                continue
            if flags & 0x80000000:  # the client asked for a quick ack
                self.server.note("quick_acks")
                confirm = struct.pack("<I", zlib.crc32(p[off:]) | 0x80000000)
                self.send(struct.pack("<IQ", RPC_SIMPLE_ACK, cid) + confirm)
            if mode == "unknown":
                with self.server.lock:
                    self.server.unknown_ids.add(cid ^ 1)
                self.send(struct.pack("<IIQ", RPC_PROXY_ANS, 0, cid ^ 1) + p[off:])
            self.send(struct.pack("<IIQ", RPC_PROXY_ANS, 0, cid) + p[off:])

    def close_ext(self):
        for cid in list(self.conn_ids):
            self.send(struct.pack("<IQ", RPC_CLOSE_EXT, cid))
            self.conn_ids.discard(cid)


class MiddleProxy:
    """Listens on 127.0.0.1 (or `listen`, IPv4 or IPv6); one thread per connection."""

    def __init__(self, secret, mode="echo", listen=("127.0.0.1", 0), client_ip=None, record=None,
                 rcvbuf=None):
        self.secret = secret
        self.record = record  # a file: one line "conn_id_hex tag_hex_or_none flags_hex" per PROXY_REQ
        self.mode = mode
        self.client_ip = client_ip  # the address to use as the client's in the KDF (NAT)
        self.lock = threading.Lock()
        self.counts = {}
        self.tags = []
        self.flags = []
        self.errors = []
        self.conns = []
        self.accepted = 0
        self.closed_ids = set()   # conn_ids the client sent CLOSE_CONN for
        self.unknown_ids = set()  # conn_ids "unknown" mode answered without a request
        self.lsock = socket.socket(socket.AF_INET6 if ":" in listen[0] else socket.AF_INET)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            # Inherited by every accepted connection: its receive window
            # stays this small, so a slow reader ("slowread") is what the
            # client's kernel sees, not a buffer that takes everything at once.
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.lsock.bind(listen)
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def note(self, what):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def count(self, what):
        with self.lock:
            return self.counts.get(what, 0)

    def record_request(self, tag, flags, conn_id=0):
        with self.lock:
            self.tags.append(tag)
            self.flags.append(flags)
            if self.record:
                with open(self.record, "a") as f:
                    f.write("%016x %s %x\n" % (conn_id, tag or "none", flags))

    def close_ext(self):
        """Sends RPC_CLOSE_EXT for every conn_id each live connection has seen."""
        for c in list(self.conns):
            try:
                c.close_ext()
            except OSError:
                pass

    def _accept(self):
        while True:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        c = Conn(self, s)
        self.conns.append(c)
        try:
            c.serve()
        except EOFError:
            pass
        except (ProtocolError, OSError, struct.error, IndexError) as e:
            with self.lock:
                self.errors.append(str(e))
        finally:
            self.conns.remove(c)
            s.close()

    def live(self):
        return len(self.conns)

    def close(self):
        self.lsock.close()
        for c in list(self.conns):
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--secret-file", required=True)
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--record", help="append a line per PROXY_REQ: conn_id tag flags (hex)")
    ap.add_argument("--mode", default="echo", choices=["echo", "stall", "garbage", "badseq", "oversized", "unknown", "badpid",
                                                          "slowread"])
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    host = host.strip("[]")
    with open(a.secret_file, "rb") as f:
        secret = f.read()
    mp = MiddleProxy(secret, a.mode, (host, int(port)), record=a.record)

    def set_mode(mode):
        mp.mode = mode

    # Run as a separate process, the tests switch modes by signal.
    signal.signal(signal.SIGUSR1, lambda *_: set_mode("stall"))
    signal.signal(signal.SIGUSR2, lambda *_: set_mode("echo"))
    print("listening %d" % mp.port, flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()

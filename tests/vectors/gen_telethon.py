#!/usr/bin/python3
"""Independent-implementation vectors from Debian's python3-telethon.

Usage (Debian's interpreter; telethon is visible only to it):
    /usr/bin/python3 tests/vectors/gen_telethon.py > tests/vectors/telethon.json

What it does: builds telethon's own MTProxy connection classes
(telethon.network.connection.tcpmtproxy.ConnectionTcpMTProxy{Abridged,
Intermediate,RandomizedIntermediate}) against an in-memory writer and runs
their real code paths (_init_conn -> MTProxyIO.init_header, _send ->
codec.encode_packet + MTProxyIO.write, _recv -> codec.read_packet over
MTProxyIO.readexactly). The only thing replaced is the randomness source
(os.urandom and the `random` module), so the output is reproducible.
Nothing here derives keys or encrypts by itself: server->client ciphertext
is made with a deep copy of telethon's own decryptor (AES-CTR is symmetric)
and then checked by feeding it through telethon's receive path.

Field meanings are documented in tests/vectors/README.md.
"""

import asyncio
import copy
import hashlib
import json
import os
import random
import sys

import telethon
from telethon.network.connection import tcpmtproxy

SEED = b"mtwarden-telethon-vectors-v1"
SECRET16 = bytes.fromhex("0123456789abcdeffedcba9876543210")


class Drbg:
    """SHA-256 counter-mode byte stream: deterministic stand-in for urandom."""

    def __init__(self, label):
        self._label = SEED + b"/" + label.encode()
        self._ctr = 0
        self._buf = b""

    def __call__(self, n):
        while len(self._buf) < n:
            self._buf += hashlib.sha256(self._label + self._ctr.to_bytes(8, "big")).digest()
            self._ctr += 1
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


def payload(label, size):
    """Known payload bytes: a pure function of (label, size)."""
    return Drbg("payload/%s/%d" % (label, size))(size)


class Logs(dict):
    def __missing__(self, key):
        import logging
        return logging.getLogger(key)


class MemWriter:
    def __init__(self):
        self.data = bytearray()

    def write(self, b):
        self.data += b


class MemReader:
    def __init__(self, data):
        self._data = bytes(data)
        self._pos = 0

    async def readexactly(self, n):
        if self._pos + n > len(self._data):
            raise asyncio.IncompleteReadError(self._data[self._pos:], n)
        out = self._data[self._pos:self._pos + n]
        self._pos += n
        return out

    def at_end(self):
        return self._pos == len(self._data)


CLASSES = {
    "abridged": (tcpmtproxy.ConnectionTcpMTProxyAbridged, "efefefef"),
    "intermediate": (tcpmtproxy.ConnectionTcpMTProxyIntermediate, "eeeeeeee"),
    "randomized": (tcpmtproxy.ConnectionTcpMTProxyRandomizedIntermediate, "dddddddd"),
}

# Sizes are multiples of 4 (abridged requires it). 504/508 straddle the
# abridged one-byte/0x7f boundary (L = 126 / 127).
C2S_SIZES = [4, 8, 64, 504, 508, 512, 1028, 2048]
S2C_SIZES = [8, 508, 1024]


def s2c_frame(mode, data, pad):
    """Server->client framing, written from the transport spec (not telethon):
    abridged length byte / 0x7f+u24, intermediate u32 LE, padded u32 LE with
    `pad` (0..3) extra bytes, as the official server pads toward clients."""
    if mode == "abridged":
        n = len(data) // 4
        hdr = bytes([n]) if n < 0x7F else b"\x7f" + n.to_bytes(3, "little")
        return hdr + data
    body = data + pad
    return len(body).to_bytes(4, "little") + body


async def make_case(name, mode, dc, secret_hex):
    cls, tag = CLASSES[mode]
    rnd = Drbg("case/" + name)
    os.urandom = rnd  # telethon calls os.urandom through the module
    random.seed(SEED + name.encode())

    conn = cls("127.0.0.1", 443, dc, loggers=Logs(),
               proxy=("127.0.0.1", 443, secret_hex))
    writer = MemWriter()
    conn._writer = writer
    conn._reader = None
    conn._codec = conn.packet_codec(conn)
    conn._init_conn()
    init = bytes(writer.data)
    assert len(init) == 64 and init == bytes(conn._obfuscation.header)
    if len(secret_hex) == 34:
        # Same randomness, 16-byte form: telethon must produce the same init.
        os.urandom = Drbg("case/" + name)
        again = tcpmtproxy.MTProxyIO.init_header(
            bytes.fromhex(secret_hex[2:]), dc, cls.packet_codec)[0]
        assert bytes(again) == init, "telethon treats dd+key differently from key"
        os.urandom = rnd

    # Capture telethon's plaintext framing too (diagnostics only): wrap
    # MTProxyIO.write for the data phase.
    plain = bytearray()
    real_write = conn._obfuscation.write

    def spy(data):
        plain.extend(data)
        real_write(data)

    conn._obfuscation.write = spy
    c2s_payloads = [payload(name, n) for n in C2S_SIZES]
    for p in c2s_payloads:
        conn._send(p)
    c2s = bytes(writer.data[64:])
    assert len(c2s) == len(plain)

    # Server -> client: plaintext frames encrypted with a copy of telethon's
    # decryptor, then read back through telethon's real receive path.
    s2c_payloads = [payload(name + "/s2c", n) for n in S2C_SIZES]
    pads = [b"", b"\xa5", b"\x5a\x5a\x5a"]
    s2c_plain = b"".join(
        s2c_frame(mode, p, pads[i] if mode == "randomized" else b"")
        for i, p in enumerate(s2c_payloads))
    s2c = copy.deepcopy(conn._obfuscation._decrypt).encrypt(s2c_plain)
    conn._obfuscation._reader = MemReader(s2c)
    got = [await conn._recv() for _ in s2c_payloads]
    assert got == s2c_payloads, "telethon did not decode our s2c frames"
    assert conn._obfuscation._reader.at_end()

    return {
        "name": name,
        "mode": mode,
        "telethon_class": cls.__name__,
        "secret": secret_hex,
        "dc": dc,
        "expected_tag": tag,
        "init": init.hex(),
        "c2s_payloads": [p.hex() for p in c2s_payloads],
        "c2s": c2s.hex(),
        "c2s_plain": bytes(plain).hex(),
        "s2c_payloads": [p.hex() for p in s2c_payloads],
        "s2c_plain": s2c_plain.hex(),
        "s2c": s2c.hex(),
    }


async def main():
    k = SECRET16.hex()
    specs = [
        ("abridged_dc2", "abridged", 2, k),
        ("abridged_media_dc4", "abridged", -4, k),
        ("intermediate_dc1", "intermediate", 1, k),
        ("intermediate_media_dc2", "intermediate", -2, k),
        ("intermediate_test_dc10003", "intermediate", 10003, k),
        ("randomized_dc5", "randomized", 5, k),
        ("randomized_media_dc3", "randomized", -3, k),
        ("randomized_cdn_dc203", "randomized", 203, k),
        # The 'dd'+key form as a link carries it. telethon 1.25.1 strips the
        # leading 0xdd here; the init must match the 16-byte-secret form.
        ("randomized_dd17_dc2", "randomized", 2, "dd" + k),
    ]
    cases = [await make_case(*s) for s in specs]
    out = {
        "generator": "tests/vectors/gen_telethon.py",
        "telethon_version": telethon.__version__,
        "python": sys.version.split()[0],
        "key": k,
        "cases": cases,
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    real_urandom = os.urandom
    try:
        asyncio.run(main())
    finally:
        os.urandom = real_urandom

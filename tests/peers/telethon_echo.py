#!/usr/bin/python3
"""Real-peer echo client: Debian's python3-telethon through an MTProxy.

Usage (Debian's interpreter; telethon is visible only to /usr/bin/python3):
    /usr/bin/python3 tests/peers/telethon_echo.py --host 127.0.0.1 --port 4443 \\
        --secret 0123456789abcdeffedcba9876543210 --mode abridged --dc 2 \\
        [--sizes 4,8,512,1048576 | --count 50 [--max-size 65536]] \\
        [--seed 1] [--timeout 30] [--fast-aes]

Connects with telethon's own MTProxy connection class
(ConnectionTcpMTProxyAbridged / ...Intermediate / ...RandomizedIntermediate,
chosen by --mode) at packet level: `await conn.connect()`, `await
conn.send(bytes)`, `await conn.recv()`; no Telegram login. The proxy must lead
to a fake DC that echoes every byte the client sends, so each packet comes
back as the same transport frame, which telethon decodes. Packets are sent
one at a time (send, then wait for the echo) so TCP backpressure can never
deadlock the run. Sizes are multiples of 4 with random content (seeded).

--secret: 32 hex (the key), or "dd" + 32 hex with --mode randomized (the
leading dd is dropped and the 16-byte key given to telethon; telethon 1.25.1
would strip it the same way, which gen_telethon.py checks).
Fake-TLS ("ee") secrets are not supported by telethon. --dc is the signed DC
index telethon writes into its init (negative = media).
--fast-aes swaps telethon's pure-Python AES-CTR primitive (pyaes, ~200 KB/s)
for python3-cryptography's; telethon's key derivation, init, framing and
stream handling stay its own. Use it for MiB-sized runs.

Output: one JSON line on stdout, {"ok": true, ...} with packet and byte
counts; exit 0. On failure {"ok": false, "error": "...", ...} and exit 1
(echo mismatch or protocol failure) or 2 (could not connect / bad arguments).
"""

import argparse
import asyncio
import json
import logging
import random
import sys
import time

import telethon
from telethon.network.connection import tcpmtproxy

MODES = {
    "abridged": tcpmtproxy.ConnectionTcpMTProxyAbridged,
    "intermediate": tcpmtproxy.ConnectionTcpMTProxyIntermediate,
    "randomized": tcpmtproxy.ConnectionTcpMTProxyRandomizedIntermediate,
}
DEFAULT_SIZES = [4, 8, 12, 16, 60, 64, 124, 252, 256, 504, 508, 512, 1020, 1024,
                 2048, 4096, 8192, 16380, 16384, 65536, 262144, 1048576]


class Loggers(dict):
    def __missing__(self, key):
        return logging.getLogger(key)


def emit(obj, code):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()
    sys.exit(code)


def use_fast_aes():
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    class FastAesCtr:
        """Same interface as telethon.crypto.AESModeCTR (continuous CTR stream)."""

        def __init__(self, key, iv):
            self._ctx = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()

        def encrypt(self, data):
            return self._ctx.update(bytes(data))

        decrypt = encrypt

    tcpmtproxy.AESModeCTR = FastAesCtr


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--secret", required=True, help="32 hex, or dd + 32 hex")
    p.add_argument("--mode", choices=sorted(MODES), required=True)
    p.add_argument("--dc", type=int, default=2, help="signed DC index (negative = media)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--sizes", help="comma-separated packet sizes (multiples of 4)")
    g.add_argument("--count", type=int, help="this many random sizes (multiples of 4)")
    p.add_argument("--max-size", type=int, default=65536, help="upper bound for --count sizes")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per connect / echo")
    p.add_argument("--fast-aes", action="store_true")
    return p.parse_args()


def fail_args(msg):
    emit({"ok": False, "client": "telethon", "error": msg}, 2)


async def run(a):
    secret = a.secret.lower()
    if len(secret) == 34 and secret.startswith("dd"):
        # telethon itself refuses dd secrets outside randomized mode.
        if a.mode != "randomized":
            fail_args("a dd secret requires --mode randomized")
        secret = secret[2:]
    if len(secret) != 32:
        fail_args("secret must be 32 hex digits or dd + 32 hex (telethon has no fake TLS)")
    try:
        bytes.fromhex(secret)
    except ValueError:
        fail_args("secret is not hex")

    rnd = random.Random(a.seed)
    if a.sizes:
        sizes = [int(x) for x in a.sizes.split(",") if x]
    elif a.count:
        sizes = [4 * rnd.randint(1, max(1, a.max_size // 4)) for _ in range(a.count)]
    else:
        sizes = DEFAULT_SIZES
    if any(n <= 0 or n % 4 for n in sizes):
        fail_args("sizes must be positive multiples of 4")

    cls = MODES[a.mode]
    base = {"client": "telethon", "telethon_version": telethon.__version__,
            "class": cls.__name__, "mode": a.mode, "dc": a.dc}
    conn = cls(a.host, a.port, a.dc, loggers=Loggers(), proxy=(a.host, a.port, secret))
    t0 = time.monotonic()
    try:
        # telethon's MTProxy connect sends the init, then waits up to 2 s for
        # the proxy to close on it (its workaround for rejected codecs).
        await asyncio.wait_for(conn.connect(timeout=a.timeout), a.timeout + 5)
    except Exception as e:  # noqa: BLE001 - report any connect failure
        emit(dict(base, ok=False, error="connect failed: %r" % (e,)), 2)

    sent = 0
    try:
        for i, n in enumerate(sizes):
            data = rnd.randbytes(n)
            await conn.send(data)
            try:
                got = await asyncio.wait_for(conn.recv(), a.timeout)
            except asyncio.TimeoutError:
                emit(dict(base, ok=False, error="timeout waiting for echo",
                          packet_index=i, size=n, packets_ok=i), 1)
            except ConnectionError as e:
                emit(dict(base, ok=False, error="connection closed: %s" % e,
                          packet_index=i, size=n, packets_ok=i), 1)
            if got != data:
                first = next((j for j in range(min(len(got), n)) if got[j] != data[j]),
                             min(len(got), n))
                emit(dict(base, ok=False, error="echo mismatch", packet_index=i, size=n,
                          got_size=len(got), first_diff=first, packets_ok=i), 1)
            sent += n
    finally:
        await conn.disconnect()
    emit(dict(base, ok=True, packets=len(sizes), bytes_each_way=sent,
              max_size=max(sizes), seconds=round(time.monotonic() - t0, 3)), 0)


def main():
    a = parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    if a.fast_aes:
        use_fast_aes()
    asyncio.run(run(a))


if __name__ == "__main__":
    main()

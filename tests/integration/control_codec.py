"""An independent Python codec for the control protocol (docs/worker-control.md),
used by the integration tests that play the supervisor. Written from the
document, not from ipc/control_protocol.cpp, so the two check each other.

Every datagram: "MTWC" | version u8 (1) | type u8 | flags u16 (0) | body length
u32 LE || body. Handoff, gate-table, gate-handoff, gate-mask, lane,
gate-lane, mask-profiles and egress carry exactly one fd in SCM_RIGHTS.

A report may end with an egress section (a worker with --egress-file, or
any managed worker): u16 count (0 only when a clients section follows),
then per upstream u8 name length, name, u8 up, five u64 (connects,
failures, bytes_up, bytes_down, marked_down); then, from a managed worker,
the clients section: i64 last close (Unix seconds), u8 truncated, u16 count
(<= 1024), then per address u8 family (4/6), u8 0, u16 port 0, 16-byte
address, u32 connections (>= 1).

Direct lanes (bodies, little-endian):
  lane (9)         u32 lane                       (+ fd: the worker's end)
  gate-lane (10)   u32 user, u32 lane, u64 allow_until   (+ fd: the gate's end)
  gate-credit (11) u32 user, u32 lane, u8 close, 3 zero bytes, u64 allow_until
  gate-direct (12) u16 count, then count 28-byte entries: u32 user, u32 lane,
                   u8 family (0/4/6), u8 0, u16 port, 16-byte address
allow_until UNLIMITED (2^64-1) means no cap.
"""

import array
import socket
import struct

(HANDOFF, REPORT, SET_LIMITS, RELOAD, REPORT_REQUEST, GATE_TABLE, GATE_HANDOFF, GATE_MASK, LANE,
 GATE_LANE, GATE_CREDIT, GATE_DIRECT, MASK_PROFILES, MIDDLE, EGRESS) = range(1, 16)
SETTINGS = 16

UNLIMITED = 0xFFFFFFFFFFFFFFFF
DIRECT_ENTRY_SIZE = 28
MAX_DIRECT_ENTRIES = 512

COUNTERS = ["accepted", "active", "closed", "handshake_ok", "fail_not_mtproxy", "fail_bad_hmac",
            "fail_clock_skew", "fail_replay", "fail_wrong_sni", "fail_unknown_tag",
            "fail_not_allowed", "fail_timeout", "fail_closed_early", "fail_bad_tls_init",
            "bytes_client_to_dc", "bytes_dc_to_client", "masked", "masked_bytes_to_mask",
            "masked_bytes_from_mask", "dc_connect_failures", "handoffs", "mask_requests",
            "overload_closed", "rate_limited", "direct_handoffs", "seccomp_denied",
            "source_limited", "evicted_unproven", "mask_unreachable", "mask_dropped",
            "middle_connections", "middle_clients", "middle_opened", "middle_errors",
            "middle_relays", "middle_fallbacks", "middle_down"]

MAX_HANDOFF_DATA = 17 * 1024


def message(mtype, body):
    return b"MTWC" + struct.pack("<BBHI", 1, mtype, 0, len(body)) + body


def parse_header(dgram):
    if len(dgram) < 12 or dgram[:4] != b"MTWC":
        raise ValueError("bad header")
    ver, mtype, flags, blen = struct.unpack("<BBHI", dgram[4:12])
    if ver != 1 or flags != 0 or blen != len(dgram) - 12:
        raise ValueError("bad header fields")
    return mtype, dgram[12:]


def handoff_body(listener_id, peer, data):
    """peer: (ip, port) of an IPv4 peer, or None for "unknown"."""
    if peer is None:
        fam, addr, port = 0, b"\0" * 16, 0
    else:
        fam, addr, port = 4, socket.inet_aton(peer[0]) + b"\0" * 12, peer[1]
    assert len(data) <= MAX_HANDOFF_DATA
    return struct.pack("<IBBH", listener_id, fam, 0, port) + addr + struct.pack("<I", len(data)) + data


def encode_peer(peer):
    """(ip, port) -> family u8, 0, port u16, 16-byte address; None -> family 0."""
    if peer is None:
        return struct.pack("<BBH", 0, 0, 0) + b"\0" * 16
    if ":" in peer[0]:
        return struct.pack("<BBH", 6, 0, peer[1]) + socket.inet_pton(socket.AF_INET6, peer[0])
    return struct.pack("<BBH", 4, 0, peer[1]) + socket.inet_aton(peer[0]) + b"\0" * 12


def decode_peer(raw):
    """The 20 bytes encode_peer makes -> (ip, port) or None."""
    fam, reserved, port = struct.unpack("<BBH", raw[:4])
    addr = raw[4:20]
    if reserved != 0 or fam not in (0, 4, 6) or len(raw) != 20:
        raise ValueError("bad peer address")
    if fam == 4:
        return (socket.inet_ntoa(addr[:4]), port)
    if fam == 6:
        return (socket.inet_ntop(socket.AF_INET6, addr), port)
    return None


def decode_handoff_body(body):
    """flags bit 0: a u64 hello time (CLOCK_MONOTONIC ns) follows the address."""
    listener_id, fam, flags, port = struct.unpack("<IBBH", body[:8])
    addr = body[8:24]
    hello_at_ns = 0
    if flags & 1:
        (hello_at_ns,) = struct.unpack("<Q", body[24:32])
        body = body[:24] + body[32:]
    (n,) = struct.unpack("<I", body[24:28])
    if flags & ~1 or fam not in (0, 4, 6) or n != len(body) - 28 or n > MAX_HANDOFF_DATA:
        raise ValueError("bad handoff body")
    if fam == 4:
        peer = (socket.inet_ntoa(addr[:4]), port)
    elif fam == 6:
        peer = (socket.inet_ntop(socket.AF_INET6, addr), port)
    else:
        peer = None
    return {"listener_id": listener_id, "peer": peer, "data": body[28:], "hello_at_ns": hello_at_ns}


def gate_table(generation):
    return message(GATE_TABLE, struct.pack("<Q", generation))


def gate_mask(listener_id, peer, data):
    return message(GATE_MASK, handoff_body(listener_id, peer, data))


def egress(generation):
    """Type 15; the fd sent with it is a file holding the worker's whole egress
    (the --egress-file text form, docs/worker.md "Egress")."""
    return message(EGRESS, struct.pack("<Q", generation))


def report_request():
    return message(REPORT_REQUEST, b"")


def handoff(listener_id, peer, data):
    return message(HANDOFF, handoff_body(listener_id, peer, data))


def set_limits(max_connections=0xFFFFFFFF, idle_timeout_ms=0xFFFFFFFF, handshake_timeout_ms=0xFFFFFFFF):
    """0xFFFFFFFF leaves a limit unchanged."""
    return message(SET_LIMITS, struct.pack("<III", max_connections, idle_timeout_ms, handshake_timeout_ms))


def reload(secrets_hex):
    body = struct.pack("<H", len(secrets_hex))
    for s in secrets_hex:
        raw = bytes.fromhex(s)
        body += struct.pack("<H", len(raw)) + raw
    return message(RELOAD, body)


def settings(args, generation=0):
    """The worker's live flags, e.g. ["--dc", "2=127.0.0.1:443", "--prefer-ipv6"]."""
    body = struct.pack("<QH", generation, len(args))
    for a in args:
        raw = a.encode()
        body += struct.pack("<H", len(raw)) + raw
    return message(SETTINGS, body)


def lane(lane_id):
    return message(LANE, struct.pack("<I", lane_id))


def gate_lane(user, lane_id, allow_until):
    return message(GATE_LANE, struct.pack("<IIQ", user, lane_id, allow_until))


def gate_credit(user, lane_id, allow_until=0, close=False):
    return message(GATE_CREDIT, struct.pack("<IIB3xQ", user, lane_id, 1 if close else 0, allow_until))


def gate_direct(entries):
    """entries: [(user, lane, peer)] with peer (ip, port) or None."""
    assert 1 <= len(entries) <= MAX_DIRECT_ENTRIES
    body = struct.pack("<H", len(entries))
    for user, lane_id, peer in entries:
        body += struct.pack("<II", user, lane_id) + encode_peer(peer)
    return message(GATE_DIRECT, body)


def decode_clients(body):
    """The report's clients section: {last_close, truncated, open: [(address text, connections)]}."""
    if len(body) < 11:
        raise ValueError("report: short clients section")
    last_close, truncated, n = struct.unpack("<qBH", body[:11])
    if truncated > 1 or n > 1024 or len(body) != 11 + 24 * n:
        raise ValueError("report: bad clients section")
    out = []
    for i in range(n):
        e = body[11 + 24 * i:11 + 24 * (i + 1)]
        family, reserved, port = struct.unpack("<BBH", e[:4])
        (conns,) = struct.unpack("<I", e[20:24])
        if family not in (4, 6) or reserved or port or conns == 0:
            raise ValueError("report: bad client entry")
        addr = socket.inet_ntop(socket.AF_INET, e[4:8]) if family == 4 else socket.inet_ntop(socket.AF_INET6, e[4:20])
        out.append((addr, conns))
    return {"last_close": last_close, "truncated": bool(truncated), "open": out}


def decode_upstreams(body, rep=None):
    """The report's egress section: a list of dicts, one per upstream; a
    clients section after it goes to rep["clients"]."""
    (n,) = struct.unpack("<H", body[:2])
    if not 0 <= n <= 64:
        raise ValueError("report: upstream count")
    at, ups = 2, []
    for _ in range(n):
        ln = body[at]
        if not 1 <= ln <= 64 or len(body) < at + 1 + ln + 1 + 40:
            raise ValueError("report: bad upstream entry")
        name = body[at + 1:at + 1 + ln].decode()
        up = body[at + 1 + ln]
        fields = struct.unpack("<5Q", body[at + 2 + ln:at + 2 + ln + 40])
        ups.append(dict(zip(["connects", "failures", "bytes_up", "bytes_down", "marked_down"],
                            fields), name=name, up=bool(up)))
        at += 2 + ln + 40
    if at != len(body):
        if rep is None:
            raise ValueError("report: trailing bytes")
        rep["clients"] = decode_clients(body[at:])
    elif n == 0:
        raise ValueError("report: upstream count")
    return ups


def decode(dgram):
    """Returns (type, dict) for the messages a gate or worker sends (and the
    lane messages, so tests can check their own encoding)."""
    mtype, body = parse_header(dgram)
    if mtype == REPORT:
        seq, count = struct.unpack("<QH", body[:10])
        end = 10 + 8 * count
        if len(body) < end:
            raise ValueError("bad report length")
        values = struct.unpack("<%dQ" % count, body[10:end])
        rep = dict(zip(COUNTERS, values))
        for name in COUNTERS[count:]:
            rep[name] = 0
        rep["seq"] = seq
        rep["upstreams"] = decode_upstreams(body[end:], rep) if len(body) > end else []
        return mtype, rep
    if mtype == GATE_HANDOFF:
        (user,) = struct.unpack("<I", body[:4])
        h = decode_handoff_body(body[4:])
        h["user"] = user
        return mtype, h
    if mtype == HANDOFF:
        return mtype, decode_handoff_body(body)
    if mtype == GATE_DIRECT:
        if len(body) < 2:
            raise ValueError("short gate-direct")
        (count,) = struct.unpack("<H", body[:2])
        if count == 0 or count > MAX_DIRECT_ENTRIES or len(body) != 2 + count * DIRECT_ENTRY_SIZE:
            raise ValueError("bad gate-direct length")
        entries = []
        for i in range(count):
            e = body[2 + i * DIRECT_ENTRY_SIZE:2 + (i + 1) * DIRECT_ENTRY_SIZE]
            user, lane_id = struct.unpack("<II", e[:8])
            entries.append({"user": user, "lane": lane_id, "peer": decode_peer(e[8:])})
        return mtype, {"entries": entries}
    if mtype == LANE:
        if len(body) != 4:
            raise ValueError("bad lane length")
        return mtype, {"lane": struct.unpack("<I", body)[0]}
    if mtype == GATE_LANE:
        if len(body) != 16:
            raise ValueError("bad gate-lane length")
        user, lane_id, allow = struct.unpack("<IIQ", body)
        return mtype, {"user": user, "lane": lane_id, "allow_until": allow}
    if mtype == GATE_CREDIT:
        if len(body) != 20:
            raise ValueError("bad gate-credit length")
        user, lane_id, close, r0, r1, r2, allow = struct.unpack("<IIBBBBQ", body)
        if close > 1 or (r0, r1, r2) != (0, 0, 0):
            raise ValueError("bad gate-credit flags")
        return mtype, {"user": user, "lane": lane_id, "close": close == 1, "allow_until": allow}
    raise ValueError("unexpected message type %d" % mtype)


def send(sock, dgram, fd=None):
    anc = []
    if fd is not None:
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
    sock.sendmsg([dgram], anc)


def recv(sock, timeout=None):
    """Returns (bytes, [fds]); raises socket.timeout. Empty bytes and no fds = EOF."""
    sock.settimeout(timeout)
    data, anc, flags, _ = sock.recvmsg(65536, socket.CMSG_SPACE(4 * array.array("i").itemsize))
    fds = []
    for level, typ, cdata in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            a = array.array("i")
            a.frombytes(cdata[:len(cdata) - (len(cdata) % a.itemsize)])
            fds.extend(a)
    return data, fds

"""An independent Python codec for the control protocol (docs/worker-control.md),
used by the integration tests that play the supervisor. Written from the
document, not from worker/control_protocol.cpp, so the two check each other.

Every datagram: "MTWC" | version u8 (1) | type u8 | flags u16 (0) | body length
u32 LE || body. Handoff, gate-table, gate-handoff and gate-mask carry exactly
one fd in SCM_RIGHTS.
"""

import array
import socket
import struct

HANDOFF, REPORT, SET_LIMITS, RELOAD, REPORT_REQUEST, GATE_TABLE, GATE_HANDOFF, GATE_MASK = range(1, 9)

COUNTERS = ["accepted", "active", "closed", "handshake_ok", "fail_not_mtproxy", "fail_bad_hmac",
            "fail_clock_skew", "fail_replay", "fail_wrong_sni", "fail_unknown_tag",
            "fail_not_allowed", "fail_timeout", "fail_closed_early", "fail_bad_tls_init",
            "bytes_client_to_dc", "bytes_dc_to_client", "masked", "masked_bytes_to_mask",
            "masked_bytes_from_mask", "dc_connect_failures", "handoffs", "mask_requests",
            "overload_closed", "rate_limited"]

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


def decode_handoff_body(body):
    listener_id, fam, reserved, port = struct.unpack("<IBBH", body[:8])
    addr = body[8:24]
    (n,) = struct.unpack("<I", body[24:28])
    if reserved != 0 or fam not in (0, 4, 6) or n != len(body) - 28 or n > MAX_HANDOFF_DATA:
        raise ValueError("bad handoff body")
    if fam == 4:
        peer = (socket.inet_ntoa(addr[:4]), port)
    elif fam == 6:
        peer = (socket.inet_ntop(socket.AF_INET6, addr), port)
    else:
        peer = None
    return {"listener_id": listener_id, "peer": peer, "data": body[28:]}


def gate_table(generation):
    return message(GATE_TABLE, struct.pack("<Q", generation))


def gate_mask(listener_id, peer, data):
    return message(GATE_MASK, handoff_body(listener_id, peer, data))


def report_request():
    return message(REPORT_REQUEST, b"")


def decode(dgram):
    """Returns (type, dict) for the messages a gate or worker sends."""
    mtype, body = parse_header(dgram)
    if mtype == REPORT:
        seq, count = struct.unpack("<QH", body[:10])
        if len(body) != 10 + 8 * count:
            raise ValueError("bad report length")
        values = struct.unpack("<%dQ" % count, body[10:])
        rep = dict(zip(COUNTERS, values))
        for name in COUNTERS[count:]:
            rep[name] = 0
        rep["seq"] = seq
        return mtype, rep
    if mtype == GATE_HANDOFF:
        (user,) = struct.unpack("<I", body[:4])
        h = decode_handoff_body(body[4:])
        h["user"] = user
        return mtype, h
    if mtype == HANDOFF:
        return mtype, decode_handoff_body(body)
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

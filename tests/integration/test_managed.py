#!/usr/bin/python3
"""Managed mode: this script plays the gate/parent. It accepts a client's TCP
connection itself, reads the first bytes, and hands the socket plus those
bytes to the worker over --control-fd (AF_UNIX SOCK_SEQPACKET, SCM_RIGHTS),
encoding the messages from docs/worker-control.md independently of the C++
code. The client session then completes through the worker; report, reload,
set-limits, settings (a bad set kept out whole, a good one moving the DC
for new clients) and a malformed datagram are exercised, and closing the
control socket makes the worker drain and exit 0 after a final report."""

import array
import os
import socket
import struct
import threading

import harness as h

COUNTERS = ["accepted", "active", "closed", "handshake_ok", "fail_not_mtproxy", "fail_bad_hmac",
            "fail_clock_skew", "fail_replay", "fail_wrong_sni", "fail_unknown_tag",
            "fail_not_allowed", "fail_timeout", "fail_closed_early", "fail_bad_tls_init",
            "bytes_client_to_dc", "bytes_dc_to_client", "masked", "masked_bytes_to_mask",
            "masked_bytes_from_mask", "dc_connect_failures", "handoffs"]


def message(mtype, body):
    return b"MTWC" + struct.pack("<BBHI", 1, mtype, 0, len(body)) + body


def handoff(listener_id, peer, data):
    ip, port = peer
    addr = socket.inet_aton(ip) + b"\0" * 12
    body = struct.pack("<IBBH", listener_id, 4, 0, port) + addr + struct.pack("<I", len(data)) + data
    return message(1, body)


def decode_report(dgram):
    magic, (ver, mtype, flags, blen) = dgram[:4], struct.unpack("<BBHI", dgram[4:12])
    assert magic == b"MTWC" and ver == 1 and mtype == 2 and blen == len(dgram) - 12
    seq, count = struct.unpack("<QH", dgram[12:22])
    values = struct.unpack("<%dQ" % count, dgram[22:22 + 8 * count])
    rep = dict(zip(COUNTERS, values))
    rep["seq"] = seq
    return rep


def settings(args, generation=1):
    body = struct.pack("<QH", generation, len(args))
    for a in args:
        body += struct.pack("<H", len(a)) + a.encode()
    return message(16, body)


def records(path):
    try:
        with open(path) as f:
            return [l for l in f if l.strip()]
    except FileNotFoundError:
        return []


def request_report(ctl):
    ctl.send(message(5, b""))
    return decode_report(ctl.recv(65536))


def hand_over(ctl, gate, secret, total):
    """A client connects to our gate socket; we read its first 80 bytes and pass it on."""
    result = {}
    c = h.Obfs2Client(secret, dc=3)

    def client():
        s = h.connect(gate.getsockname()[1])
        try:
            data = os.urandom(total)
            s.sendall(c.init + c.seal(data[:16]))
            back = c.open(h.recv_exact(s, 16))
            s.sendall(c.seal(data[16:]))
            back += c.open(h.recv_exact(s, total - 16))
            result["ok"] = back == data
        except OSError as e:
            result["error"] = str(e)
        finally:
            s.close()

    t = threading.Thread(target=client)
    t.start()
    conn, peer = gate.accept()
    first = h.recv_exact(conn, 80)  # the init and 16 data bytes, as a gate would have read
    ctl.sendmsg([handoff(9, peer, first)],
                [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [conn.fileno()]))])
    conn.close()
    t.join(60)
    return result.get("ok") is True


def main():
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    dc, dc_port = h.start_fake_dc(expect_dc=3)
    w, _ = h.start_worker(["--control-fd", str(child.fileno()), "--secret", h.SIMPLE_SECRET,
                           "--log-level", "warn"] + h.dc_flags(dc_port),
                          pass_fds=[child.fileno()], expect_listen=0)
    child.close()
    gate = socket.socket()
    gate.bind(("127.0.0.1", 0))
    gate.listen(4)
    parent.settimeout(10)
    try:
        h.check(hand_over(parent, gate, h.SIMPLE_SECRET, 200000), "handed-over client session echoes intact")
        rep = request_report(parent)
        h.check(rep["handoffs"] == 1 and rep["accepted"] == 1 and rep["handshake_ok"] == 1,
                "report counts the handoff and handshake (%s)" % rep)
        h.check(rep["bytes_client_to_dc"] == 200000, "report counts client->DC bytes")

        parent.send(b"MTWC\x01\x63garbage")  # malformed: must be dropped, not fatal
        parent.send(message(3, struct.pack("<III", 50, 0xFFFFFFFF, 5000)))  # set-limits
        raw = bytes.fromhex(h.OTHER_SECRET)
        parent.send(message(4, struct.pack("<HH", 1, len(raw)) + raw))  # reload: only OTHER
        rep2 = request_report(parent)
        h.check(rep2["seq"] == rep["seq"] + 1, "worker alive after a malformed datagram")
        h.check(hand_over(parent, gate, h.OTHER_SECRET, 5000), "secret pushed by reload works")

        # settings: the second DC takes new clients only once a valid set names it.
        rec_dir = h.tmpdir()
        second_rec = os.path.join(rec_dir, "second-dc.log")
        dc2, dc2_port = h.start_fake_dc(expect_dc=3, record=second_rec)
        try:
            moved = ["--dc", "3=127.0.0.1:%d" % dc2_port, "--handshake-timeout", "5s"]
            parent.send(settings(moved + ["--bind", "127.0.0.1:1"], 1))  # not live: all refused
            parent.send(settings(["--dc", "3=127.0.0.1:%d" % dc2_port, "--dc", "4=x"], 2))  # bad DC
            h.check(hand_over(parent, gate, h.OTHER_SECRET, 5000), "a client relays after two rejected settings")
            h.check(records(second_rec) == [], "rejected settings left the DC table as it was")
            parent.send(settings(moved, 3))
            h.check(hand_over(parent, gate, h.OTHER_SECRET, 5000), "a client relays after valid settings")
            h.check(len(records(second_rec)) == 1, "and reached the DC the settings named")
        finally:
            h.cleanup(dc2, dirs=[rec_dir])

        parent.shutdown(socket.SHUT_WR)  # parent gone: the worker drains and exits
        code = w.wait(30)
        h.check(code == 0, "worker exits 0 when the control socket closes (%s)" % code)
        final = decode_report(parent.recv(65536))
        h.check(final["handoffs"] == 4 and final["active"] == 0, "final report on exit (%s)" % final)
    finally:
        h.cleanup(w, dc)
        gate.close()
        parent.close()
    h.finish()


if __name__ == "__main__":
    main()

"""Shared by test_lanes_gate.py and test_lanes_worker.py (direct lanes,
docs/worker-control.md): processes whose stderr is kept in a file, lane
socket pairs, and checks on handed-over client sockets."""

import os
import queue
import re
import socket
import subprocess
import threading
import time

import control_codec as cc
import harness as h

GATE = os.environ.get("MTW_GATE", "build/lead/gate/mtwarden-gate")

USER, USER_TLS = 101, 4000000000
TABLE = "%d %s\n%d %s\n" % (USER, h.SIMPLE_SECRET, USER_TLS, h.TLS_SECRET)
LISTENER = 5


class LoggedProc(h.Proc):
    """h.Proc whose stderr (the log) goes to a file the test reads."""

    def __init__(self, argv, pass_fds, name, log_path):
        self.name = name
        self.log_path = log_path
        self.lines = queue.Queue()
        self.all_lines = []
        with open(log_path, "w") as log:
            self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, pass_fds=pass_fds,
                                      text=True, bufsize=1)
        self.t = threading.Thread(target=self._pump, daemon=True)
        self.t.start()

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_log(self, needle, timeout=5):
        deadline = time.time() + timeout
        while needle not in self.log():
            if time.time() > deadline:
                return False
            time.sleep(0.05)
        return True

    def alive(self):
        return self.p.poll() is None


def seqpacket_pair():
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def is_eof(sock, timeout=5):
    """True when the peer closed: recv gives no bytes and no fds."""
    try:
        data, fds = cc.recv(sock, timeout)
    except socket.timeout:
        return False
    except OSError:
        return True
    for fd in fds:
        os.close(fd)
    return data == b"" and not fds


def nothing_waiting(sock, timeout=0.3):
    try:
        data, fds = cc.recv(sock, timeout)
    except socket.timeout:
        return True
    for fd in fds:
        os.close(fd)
    return False


def send_fails_epipe(sock):
    try:
        sock.send(cc.report_request())
    except BrokenPipeError:
        return True
    except OSError:
        return False
    return False


# ----------------------------------------------------------------------- gate



def new_client(port, tls=False):
    """Connects and sends a whole handshake in one write: (socket, bytes sent)."""
    if tls:
        sent = h.client_hello(h.TLS_SECRET)
    else:
        c = h.Obfs2Client(h.SIMPLE_SECRET)
        sent = c.init + c.seal(b"sixteen bytes..!")
    s = h.connect(port)
    s.sendall(sent)
    return s, sent


def check_client_fd(fd, client, what):
    """`fd` must be a connected TCP socket whose peer is `client`."""
    s = socket.socket(fileno=fd)
    try:
        s.settimeout(10)
        h.check(s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
                and s.family == socket.AF_INET, "%s: the fd is a TCP socket" % what)
        h.check(s.getpeername() == client.getsockname(), "%s: the fd's peer is the client (%s)"
                % (what, s.getpeername()))
        s.sendall(b"through-the-fd")
        h.check(h.recv_exact(client, 14) == b"through-the-fd", "%s: fd -> client bytes" % what)
        client.sendall(b"ping")
        h.check(h.recv_exact(s, 4) == b"ping", "%s: client -> fd bytes" % what)
    except OSError as e:
        h.check(False, "%s: fd works (%s)" % (what, e))
    finally:
        s.close()



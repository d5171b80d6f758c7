#!/usr/bin/python3
"""Supervisor end to end, logging to the journal: the sandbox's private /run
gets a datagram socket at /run/systemd/journal/socket (where sd_journal_send
writes) read by this test, and mtwarden runs with stderr to a file whose
device:inode is in $JOURNAL_STREAM, which is how systemd tells a service its
stderr is the journal. With [server] log_target = "auto" the daemon then
sends native journal entries. The test parses the native protocol
(KEY=value, KEY\\n<le64 size><bytes>, or a memfd passed with SCM_RIGHTS) and
checks:

1. every entry has MESSAGE, PRIORITY (0..7) and SYSLOG_IDENTIFIER=mtwarden;
2. "worker started" carries USER=alice, CELL=<alice's netns> and MTW_PID;
3. the event lines carry EVENT= (started, worker_crashed with USER=alice
   after the test kills alice's worker, reloaded after SIGHUP, stopped);
4. a warning has PRIORITY=4;
5. no configured user's secret (hex, any case) appears in any datagram;
6. the supervisor's own lines no longer go to stderr;
7. with log_target = "stderr" the same set-up sends nothing to the journal.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import os
import re
import signal
import socket
import struct
import threading
import time

import harness as h
import sandbox as sb

ALICE = "1a23456789abcdef0123456789abcdef"
BOB_DOMAIN = "www.example.com"
BOB = "ee" + "1b23456789abcdef0123456789abcdef" + BOB_DOMAIN.encode().hex()
CAROL = "1c23456789abcdef0123456789abcdef"   # disabled
SECRETS = [ALICE, BOB, BOB[2:34], CAROL]
JOURNAL_DIR = "/run/systemd/journal"
SO_RCVBUFFORCE = 33


def parse_native(data):
    """Native journal protocol -> [(key, value bytes)]; raises ValueError when malformed."""
    out = []
    i = 0
    while i < len(data):
        nl = data.find(b"\n", i)
        if nl < 0:
            raise ValueError("field without newline at %d" % i)
        line = data[i:nl]
        if b"=" in line:
            k, _, v = line.partition(b"=")
            out.append((k.decode(), v))
            i = nl + 1
            continue
        if nl + 9 > len(data):
            raise ValueError("short binary field %r" % line)
        (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
        end = nl + 9 + n
        if end >= len(data) or data[end:end + 1] != b"\n":
            raise ValueError("bad binary field %r size %d" % (line, n))
        out.append((line.decode(), data[nl + 9:end]))
        i = end + 1
    return out


class Journal(threading.Thread):
    """Receives what sd_journal_sendv() sends to /run/systemd/journal/socket."""

    def __init__(self):
        super().__init__(daemon=True)
        os.makedirs(JOURNAL_DIR, exist_ok=True)
        self.path = os.path.join(JOURNAL_DIR, "socket")
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        except OSError:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.s.bind(self.path)
        self.s.settimeout(0.2)
        self.raw = []      # every datagram (or memfd content), bytes
        self.entries = []  # [{key: [values as str]}]
        self.errors = []
        self.memfds = 0
        self.stop_flag = False
        self.lock = threading.Lock()

    def run(self):
        while not self.stop_flag:
            try:
                data, fds, _, _ = socket.recv_fds(self.s, 1 << 20, 4)
            except socket.timeout:
                continue
            except OSError:
                return
            for fd in fds:
                try:
                    if not data:
                        size = os.fstat(fd).st_size
                        data = os.pread(fd, size, 0)
                        self.memfds += 1
                finally:
                    os.close(fd)
            try:
                fields = parse_native(data)
            except ValueError as e:
                with self.lock:
                    self.errors.append("%s: %r" % (e, data[:200]))
                continue
            entry = {}
            for k, v in fields:
                entry.setdefault(k, []).append(v.decode(errors="replace"))
            with self.lock:
                self.raw.append(data)
                self.entries.append(entry)

    def find(self, pred):
        with self.lock:
            return [e for e in self.entries if pred(e)]

    def wait(self, pred, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.find(pred)
            if got:
                return got
            time.sleep(0.1)
        return []

    def close(self):
        self.stop_flag = True
        self.join(2)
        self.s.close()
        os.unlink(self.path)


def one(e, k):
    v = e.get(k, [])
    return v[0] if len(v) == 1 else (None if not v else v)


def msg_has(text):
    return lambda e: text in (one(e, "MESSAGE") or "")


def start_with_journal_stream(env):
    open(env.log_path, "a").close()
    st = os.stat(env.log_path)
    os.environ["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
    try:
        env.start()
    finally:
        os.environ.pop("JOURNAL_STREAM", None)


def journal_run(env, users):
    j = Journal()
    j.start()
    try:
        log_size0 = os.path.getsize(env.log_path) if os.path.exists(env.log_path) else 0
        start_with_journal_stream(env)
        s = env.require_running(["alice", "bob"])
        alice = env.user("alice", s)
        cell = (alice or {}).get("cell", {}).get("netns")
        apid = (alice or {}).get("pid")

        # The supervisor's own line (the worker's "worker started ..." comes
        # through its log channel, tagged MTW_CHILD=worker: checked below).
        started = j.wait(lambda e: msg_has("worker started")(e) and one(e, "USER") == "alice" and
                         one(e, "MTW_CHILD") is None)
        h.check(len(started) == 1, "one \"worker started\" entry for alice (%d)" % len(started))
        child = j.wait(lambda e: one(e, "MTW_CHILD") == "worker" and one(e, "USER") == "alice" and
                       "worker started" in (one(e, "MTW_LINE") or ""))
        h.check(len(child) == 1 and one(child[0], "MTW_PID") == str(apid) and
                one(child[0], "MTW_MODULE") == "supervisor",
                "the worker's own start line comes through the supervisor: MTW_CHILD=worker USER=alice "
                "MTW_PID=%s (%s)" % (apid, [(one(e, "MTW_PID"), one(e, "MESSAGE")) for e in child][:2]))
        if started:
            e = started[0]
            h.check(one(e, "CELL") == cell and cell,
                    "worker started: CELL=%s is alice's netns %s" % (one(e, "CELL"), cell))
            h.check(one(e, "MTW_PID") == str(apid), "worker started: MTW_PID=%s (status pid %s)"
                    % (one(e, "MTW_PID"), apid))
            h.check(one(e, "PRIORITY") == "6" and one(e, "MTW_MODULE") == "supervisor",
                    "worker started: PRIORITY=6, MTW_MODULE=supervisor (%s, %s)"
                    % (one(e, "PRIORITY"), one(e, "MTW_MODULE")))
        ev = j.wait(lambda e: one(e, "EVENT") == "started")
        h.check(len(ev) == 1, "the start event has EVENT=started (%s)" % [one(e, "MESSAGE") for e in ev])

        # A crash: the test kills alice's worker; the supervisor restarts it.
        os.kill(apid, signal.SIGKILL)
        crashed = j.wait(lambda e: one(e, "EVENT") == "worker_crashed")
        h.check(len(crashed) >= 1 and one(crashed[0], "USER") == "alice",
                "the crash event: EVENT=worker_crashed USER=alice (%s)"
                % [(one(e, "USER"), one(e, "MESSAGE")) for e in crashed])
        warn = j.wait(lambda e: one(e, "PRIORITY") == "4" and one(e, "USER") == "alice")
        h.check(len(warn) >= 1, "a warning about alice's worker has PRIORITY=4 (%s)"
                % [one(e, "MESSAGE") for e in warn][:3])
        env.require_running(["alice", "bob"])

        env.sup.signal(signal.SIGHUP)
        rl = j.wait(lambda e: one(e, "EVENT") == "reloaded")
        h.check(len(rl) == 1, "SIGHUP: EVENT=reloaded (%s)" % [one(e, "MESSAGE") for e in rl])

        h.check(env.stop(40) == 0, "SIGTERM: exit 0")
        time.sleep(0.5)
        stopped = j.find(lambda e: one(e, "EVENT") == "stopped")
        h.check(len(stopped) == 1, "the stop event: EVENT=stopped (%d)" % len(stopped))

        with j.lock:
            entries = list(j.entries)
            raw = list(j.raw)
            errors = list(j.errors)
        h.check(errors == [], "every datagram parses as the native protocol (%s)" % errors[:3])
        bad = [e for e in entries
               if one(e, "SYSLOG_IDENTIFIER") != "mtwarden" or one(e, "MESSAGE") is None or
               one(e, "PRIORITY") not in [str(p) for p in range(8)]]
        h.check(len(entries) >= 10 and bad == [],
                "%d entries, each with one MESSAGE, PRIORITY 0..7 and SYSLOG_IDENTIFIER=mtwarden (bad: %s)"
                % (len(entries), bad[:2]))
        keys = sorted({k for e in entries for k in e})
        h.check(all(re.match(r"^[A-Z][A-Z0-9_]{0,63}$", k) for k in keys),
                "field names are valid journal names (%s)" % keys)
        h.check(not any(k.startswith("CODE_") for k in keys),
                "no CODE_FILE/CODE_LINE naming the sink itself (%s)" % [k for k in keys if k.startswith("CODE_")])
        leaks = [sec for sec in SECRETS for d in raw if sec.encode() in d.lower()]
        h.check(leaks == [], "no user's secret in any of %d datagrams (%s)" % (len(raw), sorted(set(leaks))))
        text = open(env.log_path, errors="replace").read()[log_size0:]
        own = [l for l in text.splitlines() if "[supervisor]" in l]
        h.check(own == [], "the supervisor's own lines went to the journal, not stderr (%s)" % own[:3])
        sb.log("journal: %d entries (%d via memfd), fields %s" % (len(entries), j.memfds, keys))
    finally:
        j.close()


def stderr_run(env, users):
    j = Journal()
    j.start()
    try:
        env.write_config(users, sections={"server": {"log_target": "stderr"}})
        size0 = os.path.getsize(env.log_path)
        start_with_journal_stream(env)
        env.require_running(["alice", "bob"])
        h.check(env.stop(40) == 0, "log_target = stderr: SIGTERM exits 0")
        time.sleep(0.3)
        text = open(env.log_path, errors="replace").read()[size0:]
        h.check(j.entries == [] and j.raw == [],
                "log_target = stderr: nothing sent to the journal (%d)" % len(j.raw))
        h.check("[supervisor] worker started user=alice" in text,
                "log_target = stderr: the lines are on stderr")
    finally:
        j.close()


def test():
    env = sb.Setup("journal", pool="10.208.0.0/16", prefix="mtj", nat=False, uid_first=280000)
    try:
        users = [
            {"name": "alice", "secret": ALICE},
            {"name": "bob", "secret": BOB},
            {"name": "carol", "secret": CAROL, "enabled": False},
        ]
        env.write_config(users)
        journal_run(env, users)
        stderr_run(env, users)
    finally:
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_systemd_journal")

#!/usr/bin/python3
"""Supervisor end to end, hostile workers: a user's worker that sends the
supervisor garbage, a message type a worker must never send, or a report whose
sequence goes backwards is logged, killed and restarted (with backoff), and
after crash_loop_restarts such ends the user is marked failed, its
connections go to the mask host — while another user's transfer continues
byte-exact on the same connection and the supervisor stays up.

The hostile "worker" is a small Python program given as --worker-bin: for
alice's secret it execs the real worker, for bob's it misbehaves in the way
the test selects through a mode file. It runs confined like any worker (own
uid, no capabilities).

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import os
import time

import harness as h
import sandbox as sb

ALICE = "6123456789abcdef0123456789abcdef"
BOB = "7123456789abcdef0123456789abcdef"

EVIL = r'''#!/usr/bin/python3
import os, socket, struct, sys, time
secrets = open("/proc/self/fd/4").read()
if "%(alice)s" in secrets:
    os.execv("%(real)s", ["%(real)s"] + sys.argv[1:])
mode = open("%(dir)s/mode").read().strip()
s = socket.socket(fileno=3)
def msg(t, body):
    return b"MTWC" + struct.pack("<BBHI", 1, t, 0, len(body)) + body
def report(seq):
    return msg(2, struct.pack("<QH", seq, 1) + struct.pack("<Q", 0))
s.recv(65536)  # the supervisor's first report request
if mode == "garbage":
    s.send(os.urandom(40))
elif mode == "wrong_type":
    s.send(msg(4, struct.pack("<H", 0)))  # a reload: only the supervisor sends those
elif mode == "stale_seq":
    s.send(report(1))
    time.sleep(0.3)
    s.send(report(1))
time.sleep(30)
'''


def test():
    env = sb.Setup("hostile", pool="10.206.0.0/16", prefix="mth", nat=False, uid_first=260000)
    try:
        evil = os.path.join(env.dir, "evil-worker")
        with open(evil, "w") as f:
            f.write(EVIL % {"alice": ALICE, "real": os.path.abspath(sb.WORKER), "dir": env.dir})
        os.chmod(evil, 0o755)
        mode_file = os.path.join(env.dir, "mode")

        def set_mode(m):
            with open(mode_file, "w") as f:
                f.write(m)
            os.chmod(mode_file, 0o644)

        set_mode("garbage")
        users = [{"name": "alice", "secret": ALICE}, {"name": "bob", "secret": BOB}]
        env.write_config(users, sections={"timeouts": {"crash_loop_restarts": 5,
                                                       "crash_loop_window_ms": 60000,
                                                       "restart_backoff_min_ms": 300}})
        env.start(extra=["--worker-bin", evil])
        env.require_running(["alice"])

        t = sb.Transfer(env.port, ALICE, total=8 * 1024 * 1024, chunk=16384, pause=0.004)
        t.start()
        t.started.wait(20)

        def wait_log(text, timeout=20):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if text in env.log_text():
                    return True
                time.sleep(0.05)
            return False

        # Each mode is switched as soon as the supervisor has reacted to the
        # previous one (the next instance starts only after the backoff).
        h.check(wait_log("malformed message"), "garbage from bob's worker: logged as malformed, worker killed")
        set_mode("wrong_type")
        h.check(wait_log("unexpected message type 4"), "a worker sending a reload: logged, worker killed")
        set_mode("stale_seq")
        h.check(wait_log("report sequence did not increase"), "a report with a stale sequence: logged, worker killed")
        s = env.wait_status(lambda s: (env.user("bob", s) or {}).get("state") == "failed", timeout=40)
        bob = env.user("bob", s)
        h.check(bob["state"] == "failed" and "crash loop" in bob["fail_reason"] and bob["restarts"] >= 5,
                "5 ends within the window mark bob failed (%s: %s, %d restarts)"
                % (bob["state"], bob["fail_reason"], bob["restarts"]))
        log = env.log_text()
        h.check(log.count("event=worker_misbehaved") >= 5,
                "each misbehaviour is recorded as an event (%d)" % log.count("event=worker_misbehaved"))

        before = h.mask_records(env.mask_dir) if os.path.isdir(env.mask_dir) else []
        c = h.Obfs2Client(BOB)
        so = h.connect(env.port)
        so.sendall(c.init + c.seal(b"hello"))
        time.sleep(1.0)
        so.close()
        rec = h.wait_new_record(env.mask_dir, before, timeout=15)
        h.check(rec is not None and rec.startswith(c.init),
                "a failed user's connection goes to the mask host byte-exact")

        t.join(120)
        h.check(t.ok, "alice's transfer completed byte-exact on the same connection (%d bytes)" % t.done_bytes)
        s = env.status()
        h.check(env.user("alice", s)["state"] == "running" and env.user("alice", s)["restarts"] == 0,
                "alice's worker untouched")
        h.check(env.sup.p.poll() is None, "the supervisor is still running")
        h.check(h.echo_session(env.port, ALICE, total=64 * 1024), "alice still works")
        rc = env.stop()
        h.check(rc == 0, "clean stop (exit %s)" % rc)
    finally:
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "hostile")

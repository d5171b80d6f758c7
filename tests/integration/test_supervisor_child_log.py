#!/usr/bin/python3
"""Supervisor end to end, children's log channels (docs/security.md): the
gate's and each worker's stdout/stderr are pipes of their own, re-logged by
the supervisor as `child output child=worker user=NAME pid=P line="..."`.
A worker (a wrapper that writes before exec'ing the real worker) that
writes a line looking like the supervisor's, with escape sequences and a
carriage return, appears only quoted and escaped inside a tagged line; a
flood of 100,000 lines from it is bounded (burst + rate, plus "lines
dropped" summaries that add up) while the other user relays and the
supervisor's status keeps being written.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import os
import re
import shutil
import stat
import tempfile
import time

import harness as h
import sandbox as sb

ALICE = "7a23456789abcdef0123456789abcdef"
BOB = "7b23456789abcdef0123456789abcdef"
UID_FIRST = 360000
FLOOD = 100000
FORGED = "2026-12-07T10:00:00.000 info [supervisor] worker ready user=mallory pid=1 after_ms=1"

WRAPPER = """#!/bin/sh
# alice's worker (first uid slot) forges a line and floods, then relays.
if [ "$(id -u)" = "%(uid)d" ]; then
  printf '%%s\\n' '%(forged)s' >&2
  printf 'evil\\033[2J\\rcarriage "quote" \\\\ back\\n' >&2
  head -c 5000 /dev/zero | tr '\\0' 'x' >&2; echo >&2
  (seq -f 'flood line %%.0f' 1 %(flood)d) >&2 &
fi
exec %(worker)s "$@"
"""


def test():
    wrapdir = tempfile.mkdtemp(prefix="mtw-logwrap-")
    os.chmod(wrapdir, 0o755)
    wrapper = os.path.join(wrapdir, "worker-wrapper")
    with open(wrapper, "w") as f:
        f.write(WRAPPER % {"uid": UID_FIRST + 1, "forged": FORGED, "flood": FLOOD,
                           "worker": os.path.abspath(sb.WORKER)})
    os.chmod(wrapper, 0o755)
    env = sb.Setup("childlog", pool="10.217.0.0/16", prefix="mtl", nat=False, uid_first=UID_FIRST)
    try:
        users = [{"name": "alice", "secret": ALICE}, {"name": "bob", "secret": BOB}]
        env.write_config(users)
        t0 = time.monotonic()
        env.start(extra=["--worker-bin", wrapper])
        s = env.require_running(["alice", "bob"])
        alice, bob, gate = env.user("alice", s), env.user("bob", s), s["gate"]["pid"]

        # --- while alice's worker floods: bob relays, the status keeps coming.
        ok = all(h.echo_session(env.port, BOB, total=128 * 1024) for _ in range(3))
        h.check(ok, "bob relays while alice's worker floods its log")
        h.check(h.echo_session(env.port, ALICE, total=64 * 1024), "alice relays too")
        mtime = os.stat(os.path.join(env.run_dir, "status.json")).st_mtime
        time.sleep(1.5)
        h.check(os.stat(os.path.join(env.run_dir, "status.json")).st_mtime > mtime,
                "the supervisor keeps writing its status during the flood")
        # Wait for the flood to be read to its end (paced: ~1.7 MB at 256 KiB/s).
        deadline = time.monotonic() + 30
        pat = re.compile(r"child output lines dropped child=worker user=alice pid=%d lines=(\d+) total=(\d+)" % alice["pid"])
        admitted_re = re.compile(r'child output child=worker user=alice pid=%d line="flood line (\d+)"' % alice["pid"])
        while time.monotonic() < deadline:
            text = env.log_text()
            admitted = admitted_re.findall(text)
            dropped = [int(m[1]) for m in pat.findall(text)]
            if admitted and dropped and len(admitted) + dropped[-1] >= FLOOD:
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - t0
        text = env.log_text()
        lines = text.splitlines()
        admitted = admitted_re.findall(text)
        dropped = [int(m[1]) for m in pat.findall(text)]
        summaries = len(dropped)
        sb.log("flood: %d lines admitted, %s dropped, %d summary lines, %.1f s" %
               (len(admitted), dropped[-1] if dropped else 0, summaries, elapsed))
        # The worker's own lines share the budget: a few of them may be among the dropped.
        total = len(admitted) + (dropped[-1] if dropped else 0)
        h.check(FLOOD <= total <= FLOOD + 50,
                "every flood line is either re-logged or counted as dropped (%d + %s = %d, %d written)"
                % (len(admitted), dropped[-1] if dropped else None, total, FLOOD))
        bound = 200 + 50 * elapsed + 10
        h.check(0 < len(admitted) <= bound, "re-logged flood lines bounded by burst + rate (%d <= %d)" % (len(admitted), bound))
        h.check(summaries <= 2 + elapsed / 10, "one 'lines dropped' summary per 10 s at most (%d in %.0f s)" % (summaries, elapsed))

        # --- the forged line: only inside a tagged, quoted field.
        forged = [l for l in lines if "user=mallory" in l]
        h.check(len(forged) == 1, "the forged line appears once (%d)" % len(forged))
        h.check(all(('child output child=worker user=alice pid=%d line="%s"' % (alice["pid"], FORGED)) in l
                     for l in forged), "tagged with the child and quoted: %s" % (forged[:1],))
        h.check(not any(l.startswith(FORGED[:30]) for l in lines), "no log line starts as the forged one")
        h.check("\x1b" not in text and "\r" not in text, "no raw escape or carriage return reaches the log")
        h.check('line="evil\\x1b[2J\\x0dcarriage \\"quote\\" \\\\ back"' in text,
                "control characters, quotes and backslashes escaped")
        h.check(re.search(r'line="x{1024}" cut_bytes=3976', text) is not None, "a 5,000-byte line is cut at 1,024 bytes")

        # --- the gate and bob's worker have their own tags.
        h.check(re.search(r"child output child=gate pid=%d line=\".*gate started" % gate, text) is not None,
                "the gate's lines are tagged child=gate pid=%d" % gate)
        h.check(any("child output child=worker user=bob pid=%d" % bob["pid"] in l for l in lines),
                "bob's worker's lines are tagged with bob and its pid")
        h.check(env.stop() == 0, "clean stop")
    finally:
        env.cleanup()
        shutil.rmtree(wrapdir, ignore_errors=True)


if __name__ == "__main__":
    sb.main_wrapper(test, "child_log")

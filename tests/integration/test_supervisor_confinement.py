#!/usr/bin/python3
"""Supervisor end to end, confinement (docs/security.md): the running gate
and worker are under a seccomp filter (Seccomp: 2 in /proc/PID/status) with
RLIMIT_NPROC, the gate with its RLIMIT_DATA bound; the worker's private
mount namespace hides the configuration (reading it through
/proc/PID/root fails while the host reads it) and the worker still relays.
`mtwarden-worker --confinement-check` sees every denied call fail with
EPERM. A configuration with secrets that others may read is warned about at
start, and --install-default-config writes its file 0640, root's.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import os
import subprocess

import harness as h
import sandbox as sb

ALICE = "9a23456789abcdef0123456789abcdef"
GATE_DATA = 64 << 40  # 64 TiB: a bound ASan's shadow memory fits under


def limits(pid):
    """{"Max processes": ("16", "16"), ...} from /proc/PID/limits."""
    out = {}
    with open("/proc/%d/limits" % pid) as f:
        for line in f.readlines()[1:]:
            name, soft, hard = line[:26].strip(), line[26:47].strip(), line[47:68].strip()
            out[name] = (soft, hard)
    return out


def test():
    env = sb.Setup("confine", pool="10.214.0.0/16", prefix="mts", nat=False, uid_first=340000)
    try:
        # --- the diagnostic: every denied call refused, from the worker binary.
        r = subprocess.run([sb.WORKER, "--confinement-check"], capture_output=True, text=True, timeout=60)
        lines = r.stdout.splitlines()
        h.check(r.returncode == 0 and lines[-1:] == ["ok"],
                "mtwarden-worker --confinement-check exits 0 with 'ok' (rc=%d, %s)" % (r.returncode, r.stdout[-300:]))
        for call in ("unshare", "clone", "setns", "mount", "bpf", "keyctl", "perf_event_open"):
            h.check("denied %s errno=EPERM" % call in lines, "%s denied with EPERM" % call)
        h.check("threads start" in lines, "threads still start under the filter")

        # --- --install-default-config: 0640, root's.
        fresh = os.path.join(env.dir, "fresh", "mtwarden.toml")
        r = subprocess.run([sb.SUPERVISOR, "--config", fresh, "--install-default-config", "--check"],
                           capture_output=True, text=True, timeout=60)
        st = os.stat(fresh) if os.path.exists(fresh) else None
        h.check(r.returncode == 0 and st is not None and (st.st_mode & 0o777) == 0o640 and st.st_uid == 0,
                "the installed default config is 0640 and root's (rc=%d, mode=%s)"
                % (r.returncode, oct(st.st_mode & 0o777) if st else None))

        # --- a running supervisor, its config left readable by others.
        users = [{"name": "alice", "secret": ALICE}]
        env.write_config(users, sections={"cells": {"gate_memory_max": "64TiB"}})
        os.chmod(env.config, 0o644)
        env.start()
        s = env.require_running(["alice"])
        log = env.log_text()
        h.check("config file with secrets readable by others" in log and "mode=0644" in log,
                "start warns that the config with secrets is readable by others")
        wpid, gpid = env.user("alice", s)["pid"], s["gate"]["pid"]
        for pid, what in ((wpid, "worker"), (gpid, "gate")):
            st = sb.proc_status(pid)
            h.check(st.get("Seccomp") == "2", "%s runs under a seccomp filter (Seccomp: %s)" % (what, st.get("Seccomp")))
            lim = limits(pid)
            h.check(lim.get("Max processes") == ("16", "16"),
                    "%s has RLIMIT_NPROC 16 (%s)" % (what, lim.get("Max processes")))
        glim = limits(gpid).get("Max data size")
        h.check(glim == (str(GATE_DATA), str(GATE_DATA)), "the gate has RLIMIT_DATA = gate_memory_max (%s)" % (glim,))

        # --- the worker's mount view: the config is not there for it.
        with open(env.config) as f:
            h.check("alice" in f.read(), "the host reads the config")
        try:
            with open("/proc/%d/root%s" % (wpid, env.config)) as f:
                seen = f.read()
        except OSError as e:
            seen = "error: %s" % e.strerror
        h.check(seen.startswith("error"), "the config is absent in the worker's mount namespace (%s)" % seen[:60])
        h.check(os.path.exists("/proc/%d/root%s" % (wpid, os.path.abspath(sb.WORKER))), "the worker binary's tree stays visible")

        # --- and it still relays; nothing was denied on the way.
        h.check(h.echo_session(env.port, ALICE, total=64 * 1024), "alice echoes through the confined worker")
        s = env.status()
        denied = env.user("alice", s).get("worker", {}).get("seccomp_denied")
        h.check(denied == 0, "the worker reports seccomp_denied 0 (%s)" % denied)
        h.check(s["gate"]["counters"].get("seccomp_denied") == 0, "the gate reports seccomp_denied 0")
        h.check(env.stop() == 0, "clean stop (LeakSanitizer still works under the filter)")
    finally:
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "confinement")

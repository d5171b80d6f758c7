#!/usr/bin/python3
"""Supervisor end to end, socket activation (sd_listen_fds(3), the optional
mtwarden.socket): the test binds the sockets itself, as systemd would, and
starts mtwarden with them at fds 3, 4, 5 and LISTEN_PID/LISTEN_FDS set:

- fd 3: a listening TCP socket on 127.0.0.1:P, the address of the configured
  listener: the supervisor takes it (status.json lists 127.0.0.1:P; the gate
  holds this very socket, same inode) and clients echo through it;
- fd 4: a listening TCP socket on 127.0.0.1:Q, which no listener names: it is
  logged ("passed socket matches no [[listener]]") and closed (no process of
  ours holds it; a connection to Q is refused once the test drops its copy);
- fd 5: a UDP socket on the configured listener's port: ignored in favour of
  the TCP one, closed as unclaimed.
Then: a UDP socket alone on a listener's address stops the start with the
listener's position and the reason, and nothing is left behind.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import fcntl
import os
import socket

import harness as h
import sandbox as sb

ALICE = "2a23456789abcdef0123456789abcdef"


def socket_inodes(pid):
    out = set()
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return out
    for n in names:
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, n))
        except OSError:
            continue
        if t.startswith("socket:["):
            out.add(int(t[8:-1]))
    return out


def our_pids():
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.path.basename(os.readlink("/proc/%s/exe" % d)).startswith("mtwarden"):
                    pids.append(int(d))
            except OSError:
                pass
    return pids


def activated_argv(env, fds):
    """bash moves `fds` to 3, 4, ... and execs mtwarden with LISTEN_PID = its own pid."""
    moves = " ".join("%d<&%d" % (3 + i, fd) for i, fd in enumerate(fds))
    closes = " ".join("%d<&-" % fd for fd in fds)
    script = 'exec %s %s; LISTEN_PID=$$ LISTEN_FDS=%d exec "$@"' % (moves, closes, len(fds))
    return ["/bin/bash", "-c", script, "sh"] + env.argv()


def listening(family, type_, addr):
    s = socket.socket(family, type_)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(addr)
    if type_ == socket.SOCK_STREAM:
        s.listen(128)
    # Away from 3, 4, 5, where bash puts the passed ones.
    high = fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 20)
    s.close()
    return socket.socket(fileno=high)


def start(env, socks):
    fds = [s.fileno() for s in socks]
    env.sup_runs += 1
    with open(env.log_path, "a") as f:
        f.write("==== supervisor run %d (socket activation) ====\n" % env.sup_runs)
    env.sup = sb.Proc(activated_argv(env, fds), name="mtwarden", stderr_path=env.log_path, pass_fds=fds)
    return env.sup


def test():
    env = sb.Setup("socket", pool="10.209.0.0/16", prefix="mts", nat=False, uid_first=290000)
    try:
        env.write_config([{"name": "alice", "secret": ALICE}])
        claimed = listening(socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", env.port))
        other_port = sb.free_port()
        other = listening(socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", other_port))
        udp = listening(socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", env.port))
        ino = {n: os.fstat(s.fileno()).st_ino for n, s in (("claimed", claimed), ("other", other), ("udp", udp))}
        start(env, [claimed, other, udp])
        try:
            env.sup.wait_line("mtwarden started", timeout=60)
        except RuntimeError:
            env.dump_log()
            raise
        s = env.require_running(["alice"])
        h.check(s.get("listeners") == ["127.0.0.1:%d" % env.port],
                "status.json lists the claimed listener (%s)" % s.get("listeners"))
        gate = s.get("gate", {}).get("pid")
        h.check(gate and ino["claimed"] in socket_inodes(gate),
                "the gate holds the passed socket itself (inode %d)" % ino["claimed"])
        held = {p: socket_inodes(p) & {ino["other"], ino["udp"]} for p in our_pids()}
        h.check(all(not v for v in held.values()),
                "the unclaimed sockets are closed in every process of ours (%s)" % {p: v for p, v in held.items() if v})
        log = env.log_text()
        h.check("passed socket matches no [[listener]], closed socket=127.0.0.1:%d" % other_port in log,
                "the unclaimed TCP socket is logged by address")
        h.check(log.count("passed socket matches no [[listener]]") == 2,
                "both unclaimed sockets are logged (%d)" % log.count("passed socket matches no [[listener]]"))
        h.check("listener from socket activation listener=127.0.0.1:%d" % env.port in log,
                "the claim is logged")
        # The test still holds the passed sockets; close its copies so that
        # only the supervisor's would remain.
        claimed.close()
        other.close()
        udp.close()
        st = sb.Stream(env.port, ALICE, dc=2)
        try:
            h.check(st.roundtrip(4096), "an echo through the passed listener")
        finally:
            st.close()
        try:
            c = socket.create_connection(("127.0.0.1", other_port), timeout=3)
            c.close()
            refused = False
        except OSError:
            refused = True
        h.check(refused, "the unclaimed address refuses connections once nobody holds it")
        h.check(env.stop(40) == 0, "SIGTERM: exit 0")

        # A datagram socket alone on a listener's address is refused.
        udp = listening(socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", env.port))
        p = start(env, [udp])
        try:
            rc = p.wait(60)
        except Exception:  # noqa: BLE001
            rc = None
        udp.close()
        log = env.log_text()
        h.check(rc not in (0, None), "a UDP socket on the listener's address stops the start (exit %s)" % rc)
        h.check("not a listening TCP socket" in log and "127.0.0.1:%d" % env.port in log,
                "the reason names the address: %s" % [l for l in log.splitlines() if "listening TCP" in l][:1])
        ns, links, _ = sb.cell_objects(env.prefix)
        h.check(ns == [] and links == [], "nothing left behind (%s %s)" % (ns, links))
    finally:
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_systemd_socket")

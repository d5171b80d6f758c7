"""The SOCKS servers of the supervisor's egress tests (test_supervisor_socks,
test_supervisor_upstream_assign): real dante-server (sockd, username/password
checked by PAM against its own password file) and real microsocks, started in
the sandbox's "internet" namespace (tests/integration/sandbox.py), and the
fake DC's connection record.
"""

import os
import shutil
import subprocess
import time

import harness as h
import sandbox as sb

DANTE_PORT = 1080
MICRO_PORT = 1081
DANTE4_PORT = 1082  # a second sockd without authentication, for SOCKS4
DEAD_PORT = 1099  # nothing listens there


def dc_lines_since(path, n0):
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return [], 0
    return lines[n0:], len(lines)


def start_dante(d, accounts):
    """sockd in netns inet on 198.18.0.2:1080, PAM (pam_pwdfile) with its own
    password file holding `accounts` ({name: password}); /etc/pam.d is
    replaced only inside the sandbox's mount namespace (docs:
    ../shared/docs/test-components.md, variant B)."""
    def hash_pw(pw):
        return subprocess.run(["openssl", "passwd", "-6", pw], capture_output=True, text=True,
                              check=True).stdout.strip()
    users = os.path.join(d, "users.pwd")
    with open(users, "w") as f:
        for name, pw in accounts.items():
            f.write("%s:%s\n" % (name, hash_pw(pw)))
    os.chmod(users, 0o600)
    pam = os.path.join(d, "pam.d")
    shutil.copytree("/etc/pam.d", pam, symlinks=True)
    with open(os.path.join(pam, "sockd-test"), "w") as f:
        f.write("auth required pam_pwdfile.so pwdfile=%s nodelay\naccount required pam_permit.so\n" % users)
    sb.run(["mount", "--bind", pam, "/etc/pam.d"])
    conf = os.path.join(d, "danted.conf")
    log = os.path.join(d, "sockd.log")
    with open(conf, "w") as f:
        f.write("""logoutput: %s
internal: %s port = %d
external: %s
clientmethod: none
socksmethod: pam.username
user.privileged: root
user.unprivileged: nobody
user.libwrap: nobody
client pass {
  from: 0.0.0.0/0 to: 0.0.0.0/0
  log: connect disconnect error
}
socks pass {
  from: 0.0.0.0/0 to: 0.0.0.0/0
  command: connect
  log: connect disconnect error
  pam.servicename: sockd-test
}
""" % (log, sb.INET_ADDR, DANTE_PORT, sb.INET_ADDR))
    r = sb.run(sb.in_inet(["danted", "-V", "-f", conf]), check=False)
    h.check(r.returncode == 0, "danted -V accepts the config (%s)" % (r.stdout + r.stderr).strip()[-200:])
    p = sb.Proc(sb.in_inet(["danted", "-f", conf, "-p", os.path.join(d, "danted.pid"), "-N", "1"]),
                name="danted", stderr_path=os.path.join(d, "danted.stderr"))
    wait_listening(DANTE_PORT, "danted")
    return p, log


def start_dante_socks4(d):
    """A second sockd (no authentication) that frank reaches over SOCKS4."""
    conf = os.path.join(d, "danted4.conf")
    log = os.path.join(d, "sockd4.log")
    with open(conf, "w") as f:
        f.write("""logoutput: %s
internal: %s port = %d
external: %s
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
user.libwrap: nobody
client pass {
  from: 0.0.0.0/0 to: 0.0.0.0/0
  log: connect disconnect error
}
socks pass {
  from: 0.0.0.0/0 to: 0.0.0.0/0
  command: connect
  log: connect disconnect error
}
""" % (log, sb.INET_ADDR, DANTE4_PORT, sb.INET_ADDR))
    p = sb.Proc(sb.in_inet(["danted", "-f", conf, "-p", os.path.join(d, "danted4.pid"), "-N", "1"]),
                name="danted4", stderr_path=os.path.join(d, "danted4.stderr"))
    wait_listening(DANTE4_PORT, "danted (socks4)")
    return p, log


def start_microsocks(d):
    p = sb.Proc(sb.in_inet(["microsocks", "-i", sb.INET_ADDR, "-p", str(MICRO_PORT)]),
                name="microsocks", stderr_path=os.path.join(d, "microsocks.log"))
    wait_listening(MICRO_PORT, "microsocks")
    return p


def wait_listening(port, what, timeout=10):
    # ss, not a probe connection: a probe's junk would land in the proxy's log.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = sb.run(sb.in_inet(["ss", "-Hltn", "sport = :%d" % port]), check=False)
        if r.stdout.strip():
            return
        time.sleep(0.1)
    raise RuntimeError("%s is not listening on port %d" % (what, port))


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""

# bench/lib.sh: what the loopback benchmark scripts share. Sourced, not run:
#   source "$(dirname "$0")/lib.sh"
# Sets ROOT (the checkout) and, once sourced, kills every process started with
# start() when the script exits. Expects `set -euo pipefail` in the script.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# in_root PATH: PATH as it is if absolute, else under ROOT (build dirs are
# named from the checkout, whatever the caller's working directory).
in_root() { if [[ $1 = /* ]]; then echo "$1"; else echo "$ROOT/$1"; fi; }

# make_out_dir PREFIX: sets OUT_DIR to $OUT_DIR if given, else a fresh
# /tmp/PREFIX.XXXXXX; the raw results stay there after the run.
make_out_dir() {
  OUT_DIR=${OUT_DIR:-$(mktemp -d "/tmp/$1.XXXXXX")}
  mkdir -p "$OUT_DIR"
}

# need_bins BIN...: exits unless every BIN is executable.
need_bins() {
  local bin
  for bin in "$@"; do
    [[ -x $bin ]] || { echo "missing $bin (build it first)" >&2; exit 1; }
  done
}

# own_session NICE ARGS...: other work on the host (compilers) skews the
# numbers, and the kernel schedules sessions as autogroups, so a per-process
# nice does not help against other sessions. Unless NICE is 0, re-runs this
# script with ARGS in a session of its own (once) and gives that session's
# autogroup the nice value NICE (raising the weight needs root).
own_session() {
  local nice=$1
  shift
  if [[ $nice != 0 && -z ${MTW_BENCH_SESSION:-} ]] && command -v setsid >/dev/null; then
    MTW_BENCH_SESSION=1 exec setsid --wait "$0" "$@"
  fi
  if [[ $nice != 0 && -w /proc/self/autogroup ]]; then
    echo "$nice" >/proc/self/autogroup 2>/dev/null || echo "note: could not set autogroup nice" >&2
  fi
}

# py_driver NAME [BUILD_DIR] [FLAGS...]: the launcher of a benchmark that
# builds a sandbox of its own (network namespaces, veths, tc, nft): needs
# root; in a session of its own at autogroup nice NICE (default -20), runs
# bench/NAME.py --build BUILD_DIR (default build/hb) FLAGS...
py_driver() {
  local name=$1 build=build/hb
  shift
  if [[ $# -gt 0 && $1 != -* ]]; then
    build=$1
    shift
  fi
  build=$(in_root "$build")
  if ((EUID != 0)); then
    echo "$name: needs root (network namespaces, veths, tc, nft)" >&2
    exit 77
  fi
  own_session "${NICE:--20}" "$build" "$@"
  exec /usr/bin/python3 "$ROOT/bench/$name.py" --build "$build" "$@"
}

# pin_cpus: with PIN=1 and two or more CPUs the proxy under test gets CPU 1
# to itself and the load tools share the others. Sets PROXY_CPUS and
# LOAD_CPUS (command prefixes, empty without pinning) and NCPU.
pin_cpus() {
  NCPU=$(nproc)
  if [[ $PIN = 1 && $NCPU -ge 2 ]]; then
    PROXY_CPUS=(taskset -c 1)
    LOAD_CPUS=(taskset -c 0)
    if ((NCPU > 2)); then LOAD_CPUS=(taskset -c "0,2-$((NCPU - 1))"); fi
  else
    PROXY_CPUS=()
    LOAD_CPUS=()
  fi
}

# raise_nofile: soft RLIMIT_NOFILE up to the hard limit (we cannot go past
# it); sets HARD_NOFILE to that limit as a number.
raise_nofile() {
  HARD_NOFILE=$(ulimit -Hn)
  [[ $HARD_NOFILE = unlimited ]] && HARD_NOFILE=1048576
  ulimit -n "$HARD_NOFILE"
}

# fit_conns N WHAT: how many connections the worker can hold at once, in
# FIT_CONNS, and how many client source addresses they need, in SOURCES.
# Every connection costs the worker two fds (client and DC side), and its
# DC-side connections all go 127.0.0.1 -> one DC port, so they need N
# ephemeral ports; clients bind to several 127.0.0.x instead. Says on stderr
# (naming the connections WHAT) when a limit cuts N. Call raise_nofile first.
fit_conns() {
  local n=$1 what=$2 max=$(((HARD_NOFILE - 200) / 2)) lo hi ports
  if ((n > max)); then
    echo "note: fd hard limit $HARD_NOFILE allows $max $what, not $n" >&2
    n=$max
  fi
  read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
  ports=$((hi - lo + 1))
  if ((n > ports - 1000)); then
    echo "note: ephemeral port range ($ports ports) caps $what" >&2
    n=$((ports - 1000))
  fi
  FIT_CONNS=$n
  SOURCES=$((n / (ports / 2) + 2))
}

PIDS=()
# cleanup: kills and reaps every process start() started so far.
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
trap cleanup EXIT

# start LOG CMD...: runs CMD in the background, waits up to 10 s for its
# "listening" line and sets PORT (the last number on that line) and PID;
# exits with CMD's log when CMD dies or stays silent.
start() {
  local log=$1
  shift
  # The previous process's log must not answer for this one: the shell
  # truncates it only once the child has started.
  rm -f "$log"
  "$@" >"$log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 100); do
    if grep -qs '^listening' "$log"; then
      PORT=$(grep -m1 '^listening' "$log" | grep -oE '[0-9]+$')
      return 0
    fi
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "failed to start: $*" >&2
  cat "$log" >&2
  exit 1
}

# free_port: a listening port for the worker, which does not take port 0:
# below the ephemeral range and not in use. Racy in theory; start() fails
# loudly.
free_port() {
  local p used
  used=$(ss -Htln 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }')
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 10000))
    grep -qx "$p" <<<"$used" || { echo "$p"; return 0; }
  done
  echo "no free port" >&2
  return 1
}

# Results: each point appends loadgen JSON lines to $OUT_DIR/NAME.jsonl.
# field NAME KEY: every numeric value of KEY there, one a line.
field() { { grep -oE "\"$2\":[-0-9.]+" "$OUT_DIR/$1.jsonl" 2>/dev/null || true; } | cut -d: -f2; }
best() { field "$1" "$2" | sort -g | tail -1; }
lowest() { field "$1" "$2" | sort -g | head -1; }
# ratio A B: A / B as "1.23x", or "-" when either is missing.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || a == "-" || b == "" || b == "-" || b == 0) print "-"; else printf "%.2fx", a / b }'
}

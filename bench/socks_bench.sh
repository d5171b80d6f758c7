#!/usr/bin/env bash
# Egress through a SOCKS5 upstream against direct, measured in the same run:
# download and upload throughput with 1 and 100 client connections, handshake
# latency (sequential fresh connections) and handshake rate at concurrency 1
# and 100.
# The upstreams are real SOCKS5 servers from Debian: dante (danted) and, when
# installed, microsocks. Loopback only; builds nothing.
#
#   bench/socks_bench.sh [BUILD_DIR]      (default: build/release)
#
# One worker per point, as middle_bench.sh, in front of mtw-bench-dc --init on
# (--mode source for download, sink for upload, echo for handshakes); "dante"
# and "microsocks" points give the same worker an --egress-file with one
# socks5 upstream (no authentication, weight 1, no health checks) in front of
# that DC. Clients: mtw-bench-loadgen --proto dd. Throughput is one way, not
# echo: microsocks copies each connection with one thread and blocking
# writes, so an echo that fills both directions' buffers stalls it for good
# (0 bytes measured). A "handshake" is connect, obfuscated2 init, one
# verified echo round trip through the DC: through an upstream it includes
# the worker's connect to the proxy and the SOCKS5 exchange. The worker runs
# alone on CPU 1 (PIN=1); the proxy, the DC and the load generator share the
# other CPUs.
#
# Environment: DURATION (s per point, 5), WARMUP (1), CONNS_MANY (100),
# LAT_CONNS (sequential connections for the latency point, 500), REPS (1;
# >1 keeps the best, the lowest for latencies), PIN (1), NICE (-20 as root),
# OUT_DIR (raw JSON lines; default a fresh
# /tmp/mtw-socks-bench.XXXXXX).
# Needs in BUILD_DIR: bench/mtw-bench-{loadgen,dc}, worker/mtwarden-worker;
# danted in PATH or /usr/sbin (Debian dante-server); microsocks optional.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
# Other work on the host (compilers) skews the figures: a session of its own
# at autogroup nice NICE (default -20 as root).
own_session "${NICE:-$( ((EUID == 0)) && echo -20 || echo 0)}" "$@"

BUILD=$(in_root "${1:-build/release}")
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNS_MANY=${CONNS_MANY:-100}
LAT_CONNS=${LAT_CONNS:-500}
REPS=${REPS:-1}
PIN=${PIN:-1}
make_out_dir mtw-socks-bench

LOADGEN=$BUILD/bench/mtw-bench-loadgen
DC=$BUILD/bench/mtw-bench-dc
WORKER=$BUILD/worker/mtwarden-worker
need_bins "$LOADGEN" "$DC" "$WORKER"
PATH=$PATH:/usr/sbin:/sbin
DANTED=$(command -v danted) || { echo "danted not found (apt-get install dante-server)" >&2; exit 1; }
MICROSOCKS=$(command -v microsocks || true)
MODES=(direct dante)
[[ -n $MICROSOCKS ]] && MODES+=(microsocks)

KEY=0123456789abcdef0123456789abcdef
SECRET=dd$KEY

pin_cpus
raise_nofile

# wait_port PORT WHAT: until something listens on 127.0.0.1:PORT (the SOCKS
# servers print no "listening" line); exits after 10 s.
wait_port() {
  for _ in $(seq 100); do
    ss -Htln "sport = :$1" 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  echo "$2 is not listening on port $1" >&2
  exit 1
}

# socks_server dante|microsocks: starts it on a free loopback port; sets
# SOCKS_PORT. dante binds every outgoing socket to its external address
# before connecting (bind to port 0), which needs a port no socket on that
# address holds, TIME_WAIT included: on 127.0.0.1, shared with every other
# connection of the run, the ports ran out during the second repetition
# (dante's start-up check itself failed: "cannot bind external address").
# 127.0.0.2 gives its outgoing side a port range of its own.
socks_server() {
  SOCKS_PORT=$(free_port)
  if [[ $1 = dante ]]; then
    cat >"$OUT_DIR/danted.conf" <<CONF
logoutput: $OUT_DIR/danted.log
internal: 127.0.0.1 port = $SOCKS_PORT
external: 127.0.0.2
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {
  from: 127.0.0.0/8 to: 0.0.0.0/0
  log: error
}
socks pass {
  from: 127.0.0.0/8 to: 0.0.0.0/0
  command: connect
  log: error
}
CONF
    "${LOAD_CPUS[@]}" "$DANTED" -f "$OUT_DIR/danted.conf" -p "$OUT_DIR/danted.pid" -N 1 \
      >"$OUT_DIR/danted.stderr" 2>&1 &
  else
    "${LOAD_CPUS[@]}" "$MICROSOCKS" -i 127.0.0.1 -p "$SOCKS_PORT" >"$OUT_DIR/microsocks.log" 2>&1 &
  fi
  PIDS+=("$!")
  wait_port "$SOCKS_PORT" "$1"
}

# proxy direct|dante|microsocks DC_MODE: the DC, the upstream and a worker;
# sets PROXY_PORT and PROXY_PID.
proxy() {
  start "$OUT_DIR/dc.log" "${LOAD_CPUS[@]}" "$DC" --listen 127.0.0.1:0 --mode "$2" --init on
  local dc_port=$PORT
  local args=(--bind 127.0.0.1:0 --secret "$SECRET" --idle-timeout 600 --stats-interval 0
    --log-level warn --dc "2=127.0.0.1:$dc_port")
  if [[ $1 != direct ]]; then
    socks_server "$1"
    # The text form of proto/egress.h (health_dc is written as DC + 32768).
    # failures=1000: a refused connection must not mark the only upstream
    # down (every later handshake would then fail at once, and the point
    # would measure failures).
    printf 'policy health_interval_ms=0 health_dc=32770 failures=1000 retry_min_ms=5000 retry_max_ms=300000 fallback_direct=0\nupstream name=%s type=socks5 address=127.0.0.1:%s weight=1\n' \
      "$1" "$SOCKS_PORT" >"$OUT_DIR/egress-$1"
    args+=(--egress-file "$OUT_DIR/egress-$1")
  fi
  start "$OUT_DIR/worker.log" "${PROXY_CPUS[@]}" "$WORKER" "${args[@]}"
  PROXY_PORT=$PORT
  PROXY_PID=$PID
}

# point NAME MODE DC_MODE ARGS...: one loadgen run against a fresh set of
# processes; its JSON line goes to NAME.jsonl.
point() {
  local name=$1 mode=$2 dc_mode=$3
  shift 3
  proxy "$mode" "$dc_mode"
  local out
  out=$("${LOAD_CPUS[@]}" "$LOADGEN" --target "127.0.0.1:$PROXY_PORT" --proto dd --secret "$SECRET" \
    --dc 2 --label "$name" --pid "$PROXY_PID" "$@" 2>>"$OUT_DIR/loadgen.err") || true
  echo "$out" >>"$OUT_DIR/$name.jsonl"
  echo "  $out" >&2
  cleanup
}

for rep in $(seq "$REPS"); do
  echo "repetition $rep of $REPS (out: $OUT_DIR)" >&2
  for mode in "${MODES[@]}"; do
    for conns in 1 "$CONNS_MANY"; do
      for dir in download upload; do
        dc_mode=source
        [[ $dir = upload ]] && dc_mode=sink
        point "$dir$conns-$mode" "$mode" "$dc_mode" --mode throughput --direction "$dir" \
          --conns "$conns" --duration "$DURATION" --warmup "$WARMUP" --concurrency 100
      done
      point "hs$conns-$mode" "$mode" echo --mode handshakes --concurrency "$conns" \
        --duration "$DURATION"
    done
    point "lat-$mode" "$mode" echo --mode latency --conns "$LAT_CONNS" --warmup-conns 5
  done
done

load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "SOCKS5 upstream vs direct, $(date -u +%F), load average $load, $(nproc) CPUs"
printf '%-28s %10s' "point" "direct"
for mode in "${MODES[@]:1}"; do printf ' %10s %12s' "$mode" "$mode/direct"; done
echo
row() {  # row LABEL POINT KEY best|lowest
  local d
  d=$($4 "$2-direct" "$3")
  printf '%-28s %10s' "$1" "$d"
  for mode in "${MODES[@]:1}"; do
    local m
    m=$($4 "$2-$mode" "$3")
    printf ' %10s %12s' "$m" "$(ratio "$m" "$d")"
  done
  echo
}
for conns in 1 "$CONNS_MANY"; do
  row "download MB/s, $conns conn" "download$conns" mb_per_s best
  row "upload MB/s, $conns conn" "upload$conns" mb_per_s best
  row "handshakes/s, $conns at once" "hs$conns" per_s best
done
row "handshake p50 us (1 at once)" lat p50_us lowest
row "handshake p99 us (1 at once)" lat p99_us lowest

#!/usr/bin/env bash
# Middle-proxy mode against direct mode, measured in the same run: echo
# throughput and the worker's CPU per MB with 1 and 100 client connections,
# and the worker's memory per idle multiplexed client. Loopback only; builds
# nothing.
#
#   bench/middle_bench.sh [BUILD_DIR]      (default: build/release)
#
# The far ends: direct mode relays to mtw-bench-dc --mode echo --init on (it
# decrypts and re-encrypts, as a DC's answer would be); middle mode relays to
# mtw-bench-middle --mode echo (bench/middle_far_end.cpp: the server side of
# the RPC protocol in C++, every PROXY_REQ answered with a PROXY_ANS carrying
# the same packet). Clients: mtw-bench-loadgen --proto dd --direction echo
# (whole 16380-byte packets up, the echo counted down), so each counted byte
# crossed the worker twice. The worker runs alone on CPU 1 (PIN=1).
#
# Environment: DURATION (s per point, 5), WARMUP (1), CONNS_MANY (100),
# IDLE_CONNS (2000), POOL (middle-proxy connections per cluster, 2), REPS (1;
# >1 keeps the best), PIN (1), OUT_DIR (raw JSON lines; default a fresh
# /tmp/mtw-middle-bench.XXXXXX).
# Needs in BUILD_DIR: bench/mtw-bench-{loadgen,dc,middle}, worker/mtwarden-worker.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

BUILD=$(in_root "${1:-build/release}")
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNS_MANY=${CONNS_MANY:-100}
IDLE_CONNS=${IDLE_CONNS:-2000}
POOL=${POOL:-2}
REPS=${REPS:-1}
PIN=${PIN:-1}
make_out_dir mtw-middle-bench

LOADGEN=$BUILD/bench/mtw-bench-loadgen
DC=$BUILD/bench/mtw-bench-dc
MIDDLE=$BUILD/bench/mtw-bench-middle
WORKER=$BUILD/worker/mtwarden-worker
need_bins "$LOADGEN" "$DC" "$MIDDLE" "$WORKER"

KEY=0123456789abcdef0123456789abcdef
SECRET=dd$KEY
TAG=00112233445566778899aabbccddeeff
head -c 128 /dev/urandom >"$OUT_DIR/proxy-secret"

pin_cpus
raise_nofile

# proxy direct|middle: the far end and a worker in front of it; sets
# PROXY_PORT and PROXY_PID.
proxy() {
  local args=(--bind 127.0.0.1:0 --secret "$SECRET" --idle-timeout 600 --stats-interval 0
    --log-level warn)
  if [[ $1 = direct ]]; then
    start "$OUT_DIR/dc.log" "${LOAD_CPUS[@]}" "$DC" --listen 127.0.0.1:0 --mode echo --init on
    args+=(--dc "2=127.0.0.1:$PORT")
  else
    start "$OUT_DIR/middle.log" "${LOAD_CPUS[@]}" "$MIDDLE" --listen 127.0.0.1:0 --mode echo \
      --secret-file "$OUT_DIR/proxy-secret"
    printf 'proxy_for 2 127.0.0.1:%s;\ndefault 2;\n' "$PORT" >"$OUT_DIR/proxy-multi.conf"
    args+=(--ad-tag "$TAG" --proxy-secret "$OUT_DIR/proxy-secret" --proxy-config
      "$OUT_DIR/proxy-multi.conf" --middle-pool "$POOL")
  fi
  start "$OUT_DIR/worker.log" "${PROXY_CPUS[@]}" "$WORKER" "${args[@]}"
  PROXY_PORT=$PORT
  PROXY_PID=$PID
}

# point NAME MODE ARGS...: one loadgen run; its JSON line goes to NAME.jsonl.
point() {
  local name=$1 mode=$2
  shift 2
  proxy "$mode"
  local out
  out=$("${LOAD_CPUS[@]}" "$LOADGEN" --target "127.0.0.1:$PROXY_PORT" --proto dd --secret "$SECRET" \
    --dc 2 --label "$name" --pid "$PROXY_PID" "$@" 2>>"$OUT_DIR/loadgen.err") || true
  echo "$out" >>"$OUT_DIR/$name.jsonl"
  echo "  $out" >&2
  cleanup
}

for rep in $(seq "$REPS"); do
  echo "repetition $rep of $REPS (out: $OUT_DIR)" >&2
  for mode in direct middle; do
    for conns in 1 "$CONNS_MANY"; do
      point "echo$conns-$mode" "$mode" --mode throughput --direction echo --conns "$conns" \
        --duration "$DURATION" --warmup "$WARMUP" --concurrency 100
    done
    point "idle-$mode" "$mode" --mode idle --conns "$IDLE_CONNS" --concurrency 100 --hold 1
  done
done

# CPU milliseconds per MB echoed, from the best run's CPU share and rate.
cpu_ms_per_mb() {
  local mbs pct
  mbs=$(best "$1" mb_per_s)
  pct=$(field "$1" proxy_cpu_pct | tail -1)
  awk -v m="$mbs" -v p="$pct" 'BEGIN { if (m == "" || m == 0) print "-"; else printf "%.2f", p * 10 / m }'
}

load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "middle-proxy mode vs direct mode, $(date -u +%F), load average $load, $(nproc) CPUs"
printf '%-24s %12s %12s %12s\n' "point" "direct" "middle" "middle/direct"
for conns in 1 "$CONNS_MANY"; do
  d=$(best "echo$conns-direct" mb_per_s)
  m=$(best "echo$conns-middle" mb_per_s)
  printf '%-24s %12s %12s %12s\n' "echo MB/s, $conns conn" "$d" "$m" "$(ratio "$m" "$d")"
  d=$(cpu_ms_per_mb "echo$conns-direct")
  m=$(cpu_ms_per_mb "echo$conns-middle")
  printf '%-24s %12s %12s %12s\n' "worker CPU ms/MB, $conns" "$d" "$m" "$(ratio "$m" "$d")"
done
d=$(lowest idle-direct kib_per_conn)
m=$(lowest idle-middle kib_per_conn)
printf '%-24s %12s %12s %12s\n' "KiB per idle client" "$d" "$m" "$(ratio "$m" "$d")"

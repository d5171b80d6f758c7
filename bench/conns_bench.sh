#!/usr/bin/env bash
# Cost per byte at 1 and N connections (issue 25): MB per proxy CPU-second
# (mb_per_s x 100 / proxy_cpu_pct) of relay baselines and worker binaries,
# points interleaved over REPS so that every kind sees the same host load.
# Same placement as worker_bench.sh (proxy alone on CPU 1, loadgen and DC
# on CPU 0) and, as root, a session of its own at autogroup nice -20.
# Loopback only; builds nothing.
#
#   bench/conns_bench.sh [BUILD_DIR] [KIND ...]
#
# KIND: relay-fixed | relay-lease | relay-lease-short (mtw-bench-relay
# --buffers ...; --mode plain for download, crypto for upload), worker (the
# build's), or LABEL=WORKER_BINARY (fast mode, dd client). Default: the three
# relays and the build's worker. Environment: DIRECTION (download|upload),
# CONNS (1 100: the connection counts), REPS (3), DURATION (4), WARMUP (1),
# FAST (on), OUT_DIR (default a fresh /tmp/mtw-conns.XXXXXX).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

BUILD=$(in_root "${1:-build/release}")
shift || true
KINDS=("$@")
((${#KINDS[@]})) || KINDS=(relay-fixed relay-lease relay-lease-short worker)
DIRECTION=${DIRECTION:-download}
CONNS=${CONNS:-1 100}
REPS=${REPS:-3}
DURATION=${DURATION:-4}
WARMUP=${WARMUP:-1}
FAST=${FAST:-on}

own_session "$( ((EUID == 0)) && echo -20 || echo 0)" "$BUILD" "$@"
make_out_dir mtw-conns
raise_nofile

RELAY=$BUILD/bench/mtw-bench-relay
LOADGEN=$BUILD/bench/mtw-bench-loadgen
DC=$BUILD/bench/mtw-bench-dc
need_bins "$RELAY" "$LOADGEN" "$DC"
SECRET=dd0123456789abcdef0123456789abcdef
DC_MODE=source RELAY_MODE=plain
[[ $DIRECTION = upload ]] && DC_MODE=sink RELAY_MODE=crypto

point() {  # KIND N
  local kind=$1 n=$2 init=on args bin label=$1
  [[ $kind = relay-* ]] && init=off
  start "$OUT_DIR/dc.log" taskset -c 0 "$DC" --listen 127.0.0.1:0 --mode "$DC_MODE" --init "$init"
  local dc_port=$PORT dc_pid=$PID
  case $kind in
    relay-*)
      start "$OUT_DIR/proxy.log" taskset -c 1 "$RELAY" --mode "$RELAY_MODE" \
        --buffers "${kind#relay-}" --listen 127.0.0.1:0 --upstream "127.0.0.1:$dc_port"
      args=(--proto raw)
      ;;
    *)
      bin=$BUILD/worker/mtwarden-worker
      [[ $kind = *=* ]] && label=${kind%%=*} bin=${kind#*=}
      start "$OUT_DIR/proxy.log" taskset -c 1 "$bin" --bind "127.0.0.1:$(free_port)" \
        --secret "$SECRET" --dc "2=127.0.0.1:$dc_port" --fast-mode "$FAST" --idle-timeout 600 \
        --stats-interval 0 --log-level warn
      args=(--proto dd --secret "$SECRET" --dc 2)
      ;;
  esac
  local out
  out=$(taskset -c 0 "$LOADGEN" --target "127.0.0.1:$PORT" "${args[@]}" --mode throughput \
    --direction "$DIRECTION" --conns "$n" --duration "$DURATION" --warmup "$WARMUP" \
    --pid "$PID" --dc-pid "$dc_pid" --concurrency 100 --label "$label" \
    2>>"$OUT_DIR/loadgen.err") || true
  cleanup
  echo "$out" >>"$OUT_DIR/$label-$n.jsonl"
  echo "  $out" >&2
}

echo "conns bench: build=$BUILD out=$OUT_DIR direction=$DIRECTION conns=($CONNS) reps=$REPS" >&2
for rep in $(seq "$REPS"); do
  for n in $CONNS; do
    for k in "${KINDS[@]}"; do point "$k" "$n"; done
  done
done

echo
echo "$DIRECTION: MB per proxy CPU-second (MB/s x 100 / proxy CPU %), median of $REPS [all reps]"
for k in "${KINDS[@]}"; do
  label=$k
  [[ $k = *=* ]] && label=${k%%=*}
  for n in $CONNS; do
    grep -ohE '"mb_per_s":[0-9.]+,"proxy_cpu_pct":[0-9.]+' "$OUT_DIR/$label-$n.jsonl" 2>/dev/null |
      awk -F'[:,]' '$4 > 0 { print $2 * 100 / $4 }' | sort -g |
      awk -v k="$label" -v n="$n" '{ a[NR] = $1 }
        END { printf "%-20s %5s conns %9s  [", k, n, NR ? sprintf("%.1f", a[int((NR + 1) / 2)]) : "-";
              for (i = 1; i <= NR; i++) printf "%s%.1f", (i > 1 ? " " : ""), a[i]; print "]" }'
  done
done
echo "raw JSON lines: $OUT_DIR/*.jsonl"

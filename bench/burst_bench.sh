#!/usr/bin/env bash
# Memory returned after a burst of connections (issue 25): the worker's RSS
# idle, with the burst open, and after it closed. Loopback only; builds
# nothing. Several worker binaries (e.g. before/after a change) are measured
# in the same run, one after another, each against its own fake DC.
#
#   bench/burst_bench.sh [BUILD_DIR] [LABEL=WORKER_BINARY ...]
#
# BUILD_DIR (default build/release) gives the loadgen and the fake DC and,
# without LABEL=BINARY arguments, the worker. Environment: CONNS (10000,
# capped by the fd hard limit: the worker needs two fds per connection),
# BURSTS (2: each worker gets this many bursts in a row), SETTLE (5: seconds
# after a burst closed before the last reading), REPS (1: runs of the whole
# list, workers interleaved), OUT_DIR (raw JSON lines; default a fresh
# /tmp/mtw-burst.XXXXXX).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

BUILD=$(in_root "${1:-build/release}")
shift || true
CONNS=${CONNS:-10000}
BURSTS=${BURSTS:-2}
SETTLE=${SETTLE:-5}
REPS=${REPS:-1}
make_out_dir mtw-burst

LOADGEN=$BUILD/bench/mtw-bench-loadgen
DC=$BUILD/bench/mtw-bench-dc
need_bins "$LOADGEN" "$DC"
WORKERS=("$@")
((${#WORKERS[@]})) || WORKERS=("worker=$BUILD/worker/mtwarden-worker")
for w in "${WORKERS[@]}"; do
  [[ $w = *=* && -x ${w#*=} ]] || { echo "not LABEL=EXECUTABLE: $w" >&2; exit 1; }
done

KEY=0123456789abcdef0123456789abcdef
SECRET=dd$KEY

raise_nofile
fit_conns "$CONNS" "connections at once"
CONNS=$FIT_CONNS

status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

measure() {  # LABEL BINARY
  local label=$1 bin=$2 json=$OUT_DIR/$1.jsonl
  start "$OUT_DIR/dc.log" "$DC" --listen 127.0.0.1:0 --mode echo --init on
  local dc_port=$PORT dc_pid=$PID
  start "$OUT_DIR/$label.log" "$bin" --bind "127.0.0.1:$(free_port)" --secret "$SECRET" \
    --dc "2=127.0.0.1:$dc_port" --idle-timeout 600 --stats-interval 0 --log-level warn
  local port=$PORT wpid=$PID
  sleep 1
  local cold warm b out after
  cold=$(status_kib "$wpid" VmRSS)
  # A few connections first: the first ones touch code and tables (AES,
  # the handshake) whose pages then stay; "idle" is the worker after them.
  "$LOADGEN" --target "127.0.0.1:$port" --proto dd --secret "$SECRET" --dc 2 --mode idle \
    --conns 20 --pid "$wpid" --dc-pid "$dc_pid" --label warm >/dev/null 2>>"$OUT_DIR/loadgen.err"
  sleep 1
  warm=$(status_kib "$wpid" VmRSS)
  for b in $(seq "$BURSTS"); do
    out=$("$LOADGEN" --target "127.0.0.1:$port" --proto dd --secret "$SECRET" --dc 2 \
      --mode idle --conns "$CONNS" --concurrency 200 --sources "$SOURCES" --timeout 300 \
      --pid "$wpid" --dc-pid "$dc_pid" --label "$label" 2>>"$OUT_DIR/loadgen.err") || true
    sleep $((SETTLE > 2 ? SETTLE - 2 : 0))  # the loadgen read "after close" 2 s after it
    after=$(status_kib "$wpid" VmRSS)
    echo "${out%\}},\"burst\":$b,\"rss_cold_kib\":$cold,\"rss_idle_kib\":$warm,\"rss_settled_kib\":$after,\"settle_s\":$SETTLE,\"vm_hwm_kib\":$(status_kib "$wpid" VmHWM)}" >>"$json"
    echo "  $label burst $b: $(tail -1 "$json")" >&2
  done
  cleanup
}

echo "burst bench: build=$BUILD out=$OUT_DIR conns=$CONNS bursts=$BURSTS settle=${SETTLE}s reps=$REPS" >&2
for rep in $(seq "$REPS"); do
  for w in "${WORKERS[@]}"; do measure "${w%%=*}" "${w#*=}"; done
done

line_field() { grep -oE "\"$2\":[-0-9.]+" <<<"$1" | cut -d: -f2; }  # LINE KEY
echo
echo "Worker VmRSS in KiB; idle = after 20 warm-up connections; open = $CONNS connections held;"
echo "after = ${SETTLE} s after they closed; goal: after <= 1.20 x idle."
printf '%-12s %5s %4s %8s %8s %9s %9s %10s %8s\n' worker burst est idle open after2s after "after/idle" hwm
for w in "${WORKERS[@]}"; do
  label=${w%%=*}
  while read -r line; do
    idle=$(line_field "$line" rss_idle_kib)
    after=$(line_field "$line" rss_settled_kib)
    printf '%-12s %5s %4s %8s %8s %9s %9s %10s %8s\n' "$label" "$(line_field "$line" burst)" \
      "$(line_field "$line" established)" "$idle" "$(line_field "$line" rss_open_kib)" \
      "$(line_field "$line" rss_after_close_kib)" "$after" \
      "$(awk -v a="$after" -v i="$idle" 'BEGIN { printf "%.2fx", a / i }')" \
      "$(line_field "$line" vm_hwm_kib)"
  done <"$OUT_DIR/$label.jsonl"
done
echo "raw JSON lines: $OUT_DIR/*.jsonl"

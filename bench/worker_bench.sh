#!/usr/bin/env bash
# Worker speed and memory against two baselines measured in the same run
# (issue 4, "Speed and memory"). Loopback only; builds nothing.
#
#   bench/worker_bench.sh [BUILD_DIR]      (default: build/release)
#
# Environment: DURATION (s per throughput point, default 5), WARMUP (s, 1),
# CONNS_MANY (1000), IDLE_CONNS (10000, capped by the fd hard limit),
# HS_DURATION (5), HS_CONCURRENCY (32), REPS (1; >1 keeps the best of each
# point, which filters out noise from other load on the host), PIN (1: proxy
# on one CPU, load tools on the others), NICE (default -20 as root: the
# benchmark processes outrank other work on the host), OUT_DIR (raw JSON lines; default a
# fresh /tmp/mtw-bench.XXXXXX), ONLY (space-separated subset of
# "download upload idle handshakes").
# Needs in BUILD_DIR: bench/mtw-bench-{relay,loadgen,dc}, worker/mtwarden-worker.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

BUILD=$(in_root "${1:-build/release}")
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNS_MANY=${CONNS_MANY:-1000}
IDLE_CONNS=${IDLE_CONNS:-10000}
HS_DURATION=${HS_DURATION:-5}
HS_CONCURRENCY=${HS_CONCURRENCY:-32}
REPS=${REPS:-1}
PIN=${PIN:-1}
ONLY=${ONLY:-download upload idle handshakes}

RELAY=$BUILD/bench/mtw-bench-relay
LOADGEN=$BUILD/bench/mtw-bench-loadgen
DC=$BUILD/bench/mtw-bench-dc
WORKER=$BUILD/worker/mtwarden-worker
need_bins "$RELAY" "$LOADGEN" "$DC"
HAVE_WORKER=1
if [[ ! -x $WORKER ]]; then
  echo "note: no $WORKER; measuring the baselines only" >&2
  HAVE_WORKER=0
fi

KEY=0123456789abcdef0123456789abcdef
DOMAIN_HEX=$(printf 'www.example.com' | od -An -tx1 | tr -d ' \n')
SECRET_DD=dd$KEY
SECRET_TLS=ee${KEY}${DOMAIN_HEX}

pin_cpus  # the proxy gets one CPU to itself; loadgen and DC share the rest
own_session "${NICE:-$( ((EUID == 0)) && echo -20 || echo 0)}" "$@"
make_out_dir mtw-bench  # after the re-run: its first run would leave an empty one
raise_nofile
fit_conns "$IDLE_CONNS" "idle connections"
IDLE_CONNS=$FIT_CONNS

# proxy KIND DC_MODE: starts a DC (sink|source|echo) and a proxy in front of
# it; KIND is plain | crypto (baselines) | fast | nofast (the worker).
# Sets PROXY_PORT, PROXY_PID, DC_PID, PROTO_ARGS (what the loadgen must speak).
proxy() {
  local kind=$1 dc_mode=$2 init=on
  [[ $kind = plain || $kind = crypto ]] && init=off
  start "$OUT_DIR/dc.log" "${LOAD_CPUS[@]}" "$DC" --listen 127.0.0.1:0 --mode "$dc_mode" --init "$init"
  local dc_port=$PORT
  DC_PID=$PID
  case $kind in
    plain | crypto)
      start "$OUT_DIR/relay.log" "${PROXY_CPUS[@]}" "$RELAY" --mode "$kind" \
        --listen 127.0.0.1:0 --upstream "127.0.0.1:$dc_port"
      PROTO_ARGS=(--proto raw)
      ;;
    fast | nofast | fast-tls)
      local fm=on secret=$SECRET_DD proto=dd
      [[ $kind = nofast ]] && fm=off
      [[ $kind = fast-tls ]] && secret=$SECRET_TLS proto=tls
      start "$OUT_DIR/worker.log" "${PROXY_CPUS[@]}" "$WORKER" --bind "127.0.0.1:$(free_port)" \
        --secret "$secret" --dc "2=127.0.0.1:$dc_port" --fast-mode "$fm" \
        --idle-timeout 600 --stats-interval 0 --log-level warn
      PROTO_ARGS=(--proto "$proto" --secret "$secret" --dc 2)
      ;;
  esac
  PROXY_PORT=$PORT
  PROXY_PID=$PID
}

# loadgen NAME ARGS...: one loadgen run against the current proxy; appends
# its JSON line to $OUT_DIR/NAME.jsonl and tears the proxy and DC down.
loadgen() {
  local name=$1
  shift
  local out
  out=$("${LOAD_CPUS[@]}" "$LOADGEN" --target "127.0.0.1:$PROXY_PORT" "${PROTO_ARGS[@]}" \
    --sources "$SOURCES" --dc-pid "$DC_PID" --label "$name" "$@" 2>>"$OUT_DIR/loadgen.err") || true
  echo "$out" >>"$OUT_DIR/$name.jsonl"
  echo "  $out" >&2
  cleanup
}

is_worker() { [[ $1 != plain && $1 != crypto ]]; }

throughput_point() {  # NAME DIRECTION CONNS KIND
  local name=$1 dir=$2 conns=$3 kind=$4 dc_mode=source
  is_worker "$kind" && ((HAVE_WORKER == 0)) && return 0
  [[ $dir = upload ]] && dc_mode=sink
  proxy "$kind" "$dc_mode"
  loadgen "$name" --mode throughput --direction "$dir" --conns "$conns" --pid "$PROXY_PID" \
    --duration "$DURATION" --warmup "$WARMUP" --concurrency 100
}

run_rep() {
  local k
  if [[ " $ONLY " = *" download "* ]]; then
    for k in plain crypto fast nofast; do
      throughput_point "down1-$k" download 1 "$k"
      throughput_point "downN-$k" download "$CONNS_MANY" "$k"
    done
    throughput_point "down1-fast-tls" download 1 fast-tls
  fi
  if [[ " $ONLY " = *" upload "* ]]; then
    for k in plain crypto fast; do throughput_point "up1-$k" upload 1 "$k"; done
  fi
}

run_once() {
  if [[ " $ONLY " = *" idle "* ]]; then
    if ((HAVE_WORKER)); then
      proxy fast echo
      loadgen idle-worker --mode idle --conns "$IDLE_CONNS" --pid "$PROXY_PID" \
        --concurrency 200 --timeout 300
    fi
    proxy plain echo
    loadgen idle-plain --mode idle --conns 1000 --pid "$PROXY_PID" --concurrency 200
  fi
  if [[ " $ONLY " = *" handshakes "* ]] && ((HAVE_WORKER)); then
    local k
    for k in fast-tls fast; do
      proxy "$k" echo
      loadgen "hs-$k" --mode handshakes --duration "$HS_DURATION" --pid "$PROXY_PID" \
        --concurrency "$HS_CONCURRENCY" --timeout 120
    done
  fi
}

echo "mtw worker bench: build=$BUILD out=$OUT_DIR cpus=$NCPU pin=$PIN reps=$REPS" \
  "duration=${DURATION}s idle_conns=$IDLE_CONNS sources=$SOURCES" >&2
for rep in $(seq "$REPS"); do
  echo "rep $rep/$REPS" >&2
  run_rep
done
run_once

row() {  # LABEL A B FAST NOFAST RATIO1 GOAL1 RATIO2 GOAL2
  printf '%-26s %10s %10s %10s %10s   %-22s %s\n' "$@"
}
echo
echo "Throughput in MB/s (10^6 bytes/s), best of $REPS; (a) plain relay, (b) relay + AES-CTR x2;"
echo "worker direct mode with a dd client; ratios: fast vs (a), no-fast vs (b), upload vs (b)."
row "point" "(a) plain" "(b) crypto" "fast" "no-fast" "ratio" "goal"
for n in 1 N; do
  conns=1
  [[ $n = N ]] && conns=$CONNS_MANY
  a=$(best "down$n-plain" mb_per_s)
  b=$(best "down$n-crypto" mb_per_s)
  f=$(best "down$n-fast" mb_per_s)
  nf=$(best "down$n-nofast" mb_per_s)
  row "download $conns conn" "${a:--}" "${b:--}" "${f:--}" "${nf:--}" \
    "fast/(a) $(ratio "$f" "$a")" ">= 0.90x"
  row "" "" "" "" "" "no-fast/(b) $(ratio "$nf" "$b")" "(report)"
done
t=$(best down1-fast-tls mb_per_s)
a=$(best down1-plain mb_per_s)
row "download 1 conn, fake TLS" "${a:--}" "" "${t:--}" "" "tls-fast/(a) $(ratio "$t" "$a")" "(report)"
a=$(best up1-plain mb_per_s)
b=$(best up1-crypto mb_per_s)
u=$(best up1-fast mb_per_s)
row "upload 1 conn" "${a:--}" "${b:--}" "${u:--}" "" "worker/(b) $(ratio "$u" "$b")" ">= 0.90x"
echo
kib=$(field idle-worker kib_per_conn)
est=$(field idle-worker established)
printf 'idle: %s connections held, worker VmRSS %s -> %s KiB (after close %s KiB): %s KiB/conn (goal <= 16)\n' \
  "${est:--}" "$(field idle-worker rss_before_kib)" "$(field idle-worker rss_open_kib)" \
  "$(field idle-worker rss_after_close_kib)" "${kib:--}"
printf 'idle reference: plain relay (a) with 2 x 64 KiB buffers per connection: %s KiB/conn\n' \
  "$(field idle-plain kib_per_conn)"
for k in fast-tls fast; do
  hs=$(field "hs-$k" per_s)
  cpu=$(field "hs-$k" proxy_cpu_pct)
  name="fake TLS"
  [[ $k = fast ]] && name="dd"
  # The load tools share one CPU and may saturate first: also report the
  # rate per second of worker CPU, the worker's one-core capacity.
  printf 'handshakes/s %-8s (worker on one CPU, %s clients): %s at %s%% worker CPU = %s per worker CPU-second\n' \
    "$name" "$HS_CONCURRENCY" "${hs:--}" "${cpu:--}" \
    "$(awk -v h="$hs" -v c="$cpu" 'BEGIN { if (h == "" || c <= 0) print "-"; else printf "%.0f", h * 100 / c }')"
done
echo "raw JSON lines: $OUT_DIR/*.jsonl"

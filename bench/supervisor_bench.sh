#!/usr/bin/env bash
# Scale benchmarks of the supervisor (mtwarden + gate + one worker per cell):
# start time, memory (RSS and PSS) and idle CPU of 1,000 users; 10,000
# on-demand users with cold first-connection latency; handshake latency and
# bulk throughput through gate + cell vs a standalone worker.
# Everything runs in a throw-away sandbox (unshare --net --mount); builds nothing.
#
#   sudo bench/supervisor_bench.sh [BUILD_DIR] [driver flags...]   (default build/hb)
#   sudo bench/supervisor_bench.sh build/hb --only "latency throughput" --reps 5
#
# Flags are those of bench/supervisor_bench.py (--help). Environment: NICE
# (default -20 as root: the benchmark's session outranks other work).
# Needs in BUILD_DIR: daemon/mtwarden, worker/mtwarden-worker, gate/mtwarden-gate,
# bench/mtw-bench-{loadgen,dc}.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build/hb
if [[ $# -gt 0 && $1 != -* ]]; then
  BUILD=$1
  shift
fi
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
if ((EUID != 0)); then
  echo "supervisor_bench: needs root (network namespaces, veths, tc, nft)" >&2
  exit 77
fi
# Other work on the host skews the numbers; the kernel schedules sessions as
# autogroups, so run in a session of our own and raise its weight.
NICE=${NICE:--20}
if [[ $NICE != 0 && -z ${MTW_BENCH_SESSION:-} ]] && command -v setsid >/dev/null; then
  MTW_BENCH_SESSION=1 exec setsid --wait "$0" "$BUILD" "$@"
fi
if [[ $NICE != 0 && -w /proc/self/autogroup ]]; then
  echo "$NICE" >/proc/self/autogroup 2>/dev/null || echo "note: could not set autogroup nice" >&2
fi
exec /usr/bin/python3 "$ROOT/bench/supervisor_bench.py" --build "$BUILD" "$@"

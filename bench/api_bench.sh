#!/usr/bin/env bash
# Speed of the management HTTP API with many users: GET /v1/users/<name>/status
# over TCP with wrk (req/s, p50/p99), the supervisor's added CPU under a paced
# 100 req/s while u0's cell relays a bulk transfer, and GET /metrics (time per
# scrape, body size). One real supervisor (mtwarden + gate + a worker per cell)
# in supervisor_bench.py's throw-away sandbox (unshare --net --mount); builds nothing.
#
#   sudo bench/api_bench.sh [BUILD_DIR] [driver flags...]   (default build/hb)
#   sudo bench/api_bench.sh build/hb --only "wrk metrics" --users 1000
#
# Flags are those of bench/api_bench.py (--help). Environment: NICE (default
# -20 as root). Needs wrk (Debian: apt-get install wrk) for the wrk phase and in
# BUILD_DIR: daemon/mtwarden, worker/mtwarden-worker, gate/mtwarden-gate,
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
  echo "api_bench: needs root (network namespaces, veths, tc, nft)" >&2
  exit 77
fi
NICE=${NICE:--20}
if [[ $NICE != 0 && -z ${MTW_BENCH_SESSION:-} ]] && command -v setsid >/dev/null; then
  MTW_BENCH_SESSION=1 exec setsid --wait "$0" "$BUILD" "$@"
fi
if [[ $NICE != 0 && -w /proc/self/autogroup ]]; then
  echo "$NICE" >/proc/self/autogroup 2>/dev/null || echo "note: could not set autogroup nice" >&2
fi
exec /usr/bin/python3 "$ROOT/bench/api_bench.py" --build "$BUILD" "$@"

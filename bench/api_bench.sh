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
source "$(dirname "$0")/lib.sh"

py_driver api_bench "$@"

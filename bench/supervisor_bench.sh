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
source "$(dirname "$0")/lib.sh"

py_driver supervisor_bench "$@"

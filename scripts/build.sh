#!/usr/bin/env bash
# scripts/build.sh KIND: configures and builds one build tree under build/KIND.
#   release  optimised product binaries (+ benchmarks unless MTW_BENCH=OFF)
#   asan     unit + integration tests under AddressSanitizer + UBSan
#   fuzz     libFuzzer targets (clang), sanitizers on
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: build.sh release|asan|fuzz}
jobs=${MTW_JOBS:-$(nproc)}
case "$kind" in
  release) args=(-DCMAKE_BUILD_TYPE=Release -DMTW_BUILD_TESTS=OFF -DMTW_BUILD_BENCH=${MTW_BENCH:-ON}) ;;
  asan) args=(-DCMAKE_BUILD_TYPE=Debug -DMTW_SANITIZE=ON -DMTW_BUILD_BENCH=OFF) ;;
  fuzz) args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DMTW_FUZZ=ON -DMTW_BUILD_TESTS=OFF
              -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++) ;;
  *) echo "build.sh: unknown build kind '$kind'" >&2; exit 2 ;;
esac
cmake -S . -B "build/$kind" -G Ninja "${args[@]}" >/dev/null
cmake --build "build/$kind" -j "$jobs"

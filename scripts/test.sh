#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, runs every test.
# Unit + integration tests run under ASan/UBSan; privileged tests re-exec
# themselves inside an unshare(1) network+mount sandbox; each fuzz target
# replays its seed corpus and then fuzzes for MTW_FUZZ_SECONDS (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test
if [[ -f tests/peers/package-lock.json ]]; then
  (cd tests/peers && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

bash scripts/build.sh asan
bash scripts/build.sh fuzz
bash scripts/build.sh release

status=0
echo "== formatting (.clang-format) =="
bash scripts/check-format.sh || status=1
echo "== unit + integration tests (ASan/UBSan) =="
ctest --test-dir build/asan --output-on-failure -j "$(nproc)" || status=1
echo "== fuzz targets: seed replay + ${MTW_FUZZ_SECONDS:-30} s runs =="
cmake -S . -B build/fuzz -DMTW_FUZZ_SECONDS="${MTW_FUZZ_SECONDS:-30}" >/dev/null
ctest --test-dir build/fuzz --output-on-failure -j "$(nproc)" || status=1
exit $status

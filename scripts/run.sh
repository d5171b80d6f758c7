#!/usr/bin/env bash
# Installs dependencies, builds, and runs mtwarden in the foreground on an
# embedded default configuration (Ctrl+C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
MTW_BUILD_TESTS=OFF bash scripts/build.sh release
exec bash scripts/run-default.sh "$@"

#!/usr/bin/env bash
# Installs dependencies, builds, and runs mtwarden in the foreground on an
# embedded default configuration (Ctrl+C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
# The product needs no test or benchmark libraries.
MTW_BENCH=OFF bash scripts/build.sh release
exec bash scripts/run-default.sh "$@"

#!/usr/bin/env bash
# Runs the mtwarden supervisor in the foreground on the default configuration:
#   - installs the commented default config at $MTW_CONFIG
#     (/etc/mtwarden/mtwarden.toml) when none exists,
#   - listeners on 0.0.0.0:443 and [::]:443 (IPv6 skipped when the host has none),
#   - creates the first user on first start and prints its links and a QR code,
#   - Ctrl+C stops it and tears down every cell it made.
# Environment: MTW_CONFIG, MTW_BIN (build/release/daemon/mtwarden).
# Extra arguments go to mtwarden (see `mtwarden --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${MTW_BIN:-build/release/daemon/mtwarden}
if [[ ! -x "$bin" ]]; then
  echo "run-default.sh: $bin not found; build it with: bash scripts/build.sh release" >&2
  exit 1
fi
exec "$bin" --config "${MTW_CONFIG:-/etc/mtwarden/mtwarden.toml}" --install-default-config "$@"

#!/usr/bin/env bash
# Installs every Debian package mtwarden needs to build, run and test.
# Idempotent: apt-get runs only when something is missing. Needs root.
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake ninja-build pkg-config git
  libboost1.81-all-dev libssl-dev libspdlog-dev libfmt-dev libtomlplusplus-dev
  libexpected-dev libnl-3-dev libnl-route-3-dev libnftables-dev libsdbus-c++-dev
  libsystemd-dev libsqlite3-dev libqrencode-dev libpng-dev
)
RUN_PKGS=(iproute2 nftables util-linux)
TEST_PKGS=(
  libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev
  python3 python3-telethon iperf3 nodejs npm procps psmisc curl zbar-tools
)

want=("${BUILD_PKGS[@]}" "${RUN_PKGS[@]}")
if [[ "${1:-}" == "--test" ]]; then
  want+=("${TEST_PKGS[@]}")
fi

missing=()
for p in "${want[@]}"; do
  # nodejs/npm may come from elsewhere on developer machines; a working node is enough.
  if [[ "$p" == nodejs || "$p" == npm ]] && command -v "${p/nodejs/node}" >/dev/null 2>&1; then
    continue
  fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "deps.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

#!/usr/bin/env bash
# Installs every Debian package mtwarden needs to build, run and test.
# Idempotent: apt-get runs only when something is missing. Needs root.
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake ninja-build pkg-config git
  libboost1.81-all-dev libssl-dev libspdlog-dev libfmt-dev libtomlplusplus-dev
  libexpected-dev libnl-3-dev libnl-route-3-dev libnftables-dev libsdbus-c++-dev
  libsystemd-dev libsqlite3-dev libpq-dev libqrencode-dev libpng-dev libseccomp-dev libsodium-dev help2man dpkg-dev
)
RUN_PKGS=(iproute2 nftables util-linux)
TEST_PKGS=(
  libgtest-dev libgmock-dev libbenchmark-dev clang clang-format libclang-rt-14-dev
  python3 python3-telethon iperf3 nodejs npm procps psmisc curl zbar-tools librsvg2-bin prometheus
  nginx-light openssl dante-server libpam-pwdfile microsocks chromium fonts-dejavu-core
  dbus dbus-daemon dbus-bin systemd man-db libglib2.0-bin postgresql
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
  # Packages are installed for their files only (promtool from prometheus,
  # say): no service may start as a side effect. policy-rc.d answering 101
  # is Debian's switch for that; an existing one is left alone.
  own_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  # postgresql is for the store tests, which start their own throw-away
  # server: the package must not create (or start) a system cluster.
  if [[ " ${missing[*]} " == *" postgresql "* ]]; then
    mkdir -p /etc/postgresql-common
    conf=/etc/postgresql-common/createcluster.conf
    if ! grep -qs '^[[:space:]]*create_main_cluster[[:space:]]*=[[:space:]]*false' "$conf"; then
      echo 'create_main_cluster = false' >> "$conf"
    fi
  fi
  apt-get update -qq
  rc=0
  apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
  if [[ $own_policy == 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
  if [[ $rc != 0 ]]; then exit "$rc"; fi
fi

#!/usr/bin/env bash
# Runs the standalone mtwarden-worker (one user, no cells) in the foreground:
#   - listens on 0.0.0.0:443 and [::]:443 (IPv6 skipped when the host has none),
#   - one fake-TLS ('ee') secret, generated on first run and kept in
#     $MTW_STATE_DIR/worker.secret (default /var/lib/mtwarden, mode 0600),
#   - failed handshakes masked to the secret's TLS domain on port 443,
#   - prints the tg:// and https://t.me/proxy links; Ctrl+C drains and exits.
# Environment: MTW_PORT (443), MTW_TLS_DOMAIN (www.google.com; first run only),
# MTW_MASK (HOST:PORT, or "off"), MTW_PUBLIC_HOST, MTW_STATE_DIR, MTW_WORKER_BIN.
# Extra arguments go to the worker (e.g. --log-level debug).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${MTW_WORKER_BIN:-build/release/worker/mtwarden-worker}
if [[ ! -x "$bin" ]]; then
  echo "run-default.sh: $bin not found; build it with: bash scripts/build.sh release" >&2
  exit 1
fi

state_dir=${MTW_STATE_DIR:-/var/lib/mtwarden}
secret_file=$state_dir/worker.secret
port=${MTW_PORT:-443}
domain=${MTW_TLS_DOMAIN:-www.google.com}

if [[ ! -s "$secret_file" ]]; then
  if ! mkdir -p "$state_dir" 2>/dev/null || [[ ! -w "$state_dir" ]]; then
    echo "run-default.sh: cannot write $state_dir (run as root, or set MTW_STATE_DIR)" >&2
    exit 1
  fi
  key=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  domain_hex=$(printf '%s' "$domain" | od -An -tx1 | tr -d ' \n')
  (umask 077 && printf 'ee%s%s\n' "$key" "$domain_hex" > "$secret_file.tmp")
  mv "$secret_file.tmp" "$secret_file"
  echo "run-default.sh: generated a fake-TLS secret for $domain in $secret_file" >&2
fi
chmod 600 "$secret_file"
secret=$(grep -v '^#' "$secret_file" | head -n1 | tr -d ' \r\n')

# The mask host defaults to the domain inside the secret (bytes 17.. of ee secrets).
secret_domain=$(printf '%b' "$(printf '%s' "${secret:34}" | sed 's/../\\x&/g')")
mask=${MTW_MASK:-${secret_domain}:443}

args=(--bind "0.0.0.0:$port" --secrets-file "$secret_file")
if grep -q . /proc/net/if_inet6 2>/dev/null; then  # procfs files always look empty to -s
  args+=(--bind "[::]:$port")
else
  echo "run-default.sh: no IPv6 on this host; listening on IPv4 only" >&2
fi
if [[ "$mask" != off ]]; then
  args+=(--mask "$mask")
fi
# Links need an address clients can reach; 0.0.0.0 is not one.
public_host=${MTW_PUBLIC_HOST:-$(hostname -I 2>/dev/null | awk '{print $1}')}
if [[ -n "$public_host" ]]; then
  args+=(--public-host "$public_host")
fi

exec "$bin" "${args[@]}" "$@"

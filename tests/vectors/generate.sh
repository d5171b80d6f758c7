#!/bin/sh
# Regenerates the independent-implementation vectors. Outputs are committed;
# tests only read them. Needs Debian's python3-telethon (run by
# /usr/bin/python3, not the `python3` on PATH) and Node >= 20 with the
# packages pinned in tests/peers (installed here with `npm ci` if missing).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
peers="$here/../peers"
if [ ! -d "$peers/node_modules/@mtcute/node" ]; then
  (cd "$peers" && npm ci --ignore-scripts --no-audit --no-fund)
fi
/usr/bin/python3 "$here/gen_telethon.py" > "$here/telethon.json.tmp"
mv "$here/telethon.json.tmp" "$here/telethon.json"
node "$here/gen_mtcute.mjs" > "$here/mtcute.json.tmp"
mv "$here/mtcute.json.tmp" "$here/mtcute.json"
echo "wrote $here/telethon.json $here/mtcute.json"

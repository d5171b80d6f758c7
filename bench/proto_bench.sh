#!/usr/bin/env bash
# bench/proto_bench.sh [BUILD_DIR]: runs the proto/ benchmarks from a Release
# build (default build/release) and prints the ratios issue 3 asks for:
# AES-256-CTR through proto::AesCtr vs a direct EVP loop, identification
# cost per hello/init at 1/100/1000 users, replay cache at 1 M entries.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build/release}
reps=${REPS:-5}
out=$(mktemp -d /tmp/mtw-proto-bench.XXXXXX)
for b in aes_bench identify_bench replay_bench; do
  [[ -x "$dir/bench/$b" ]] || { echo "missing $dir/bench/$b (bash scripts/build.sh release)" >&2; exit 1; }
done
"$dir/bench/aes_bench" --benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true \
  --benchmark_format=json >"$out/aes.json"
"$dir/bench/identify_bench" --benchmark_format=json >"$out/identify.json"
"$dir/bench/replay_bench" --benchmark_format=json >"$out/replay.json"

/usr/bin/python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
aes = {b["run_name"]: b for b in json.load(open(os.path.join(out, "aes.json")))["benchmarks"]
       if b.get("aggregate_name") == "median"}
print("AES-256-CTR (median of repetitions, bytes/s by CPU time)")
for size in ("16384", "65536"):
    raw = aes[f"BM_RawEvpAesCtr/{size}"]["bytes_per_second"]
    ours = aes[f"BM_ProtoAesCtr/{size}"]["bytes_per_second"]
    print(f"  {int(size)//1024:>3} KiB  EVP {raw/1e9:6.2f} GB/s  proto {ours/1e9:6.2f} GB/s  "
          f"ratio {ours/raw:.3f}x (goal >= 0.95x)")
print("Identification, CPU time per hello/init")
for b in json.load(open(os.path.join(out, "identify.json")))["benchmarks"]:
    print(f"  {b['name']:<36} {b['cpu_time']:10.2f} {b['time_unit']}")
print("Replay cache at 1 M entries")
for b in json.load(open(os.path.join(out, "replay.json")))["benchmarks"]:
    extra = {k: v for k, v in b.items() if k in ("items_per_second", "bytes_per_entry", "MiB", "entries")}
    print(f"  {b['name']:<36} {b['cpu_time']:10.1f} {b['time_unit']}  {extra}")
PY
echo "raw JSON: $out"

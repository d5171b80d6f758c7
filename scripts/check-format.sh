#!/usr/bin/env bash
# Checks that every tracked C/C++ source is formatted as .clang-format says
# (clang-format 14, Debian 12's). Prints the files that are not and exits 1;
# `clang-format -i FILE` fixes one. Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null 2>&1; then
  echo "check-format: clang-format is missing (bash scripts/deps.sh --test installs it)" >&2
  exit 1
fi
bad=()
while IFS= read -r f; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then bad+=("$f"); fi
done < <(git ls-files '*.cpp' '*.h' '*.c' | grep -v '^tests/fuzz/corpus/')
if ((${#bad[@]})); then
  echo "check-format: ${#bad[@]} file(s) not formatted (clang-format -i FILE):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "check-format: all sources formatted"

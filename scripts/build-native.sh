#!/usr/bin/env bash
# Builds every native helper (native/NAME.c -> dist/NAME): part of `npm run build` and `make build`.
# Each helper is one C file without dependencies beyond libc; only stale ones are rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p dist
command -v cc >/dev/null || {
  echo "build-native: no C compiler: apt-get install gcc libc6-dev (or run make setup)" >&2
  exit 1
}
for src in native/*.c; do
  out="dist/$(basename "$src" .c)"
  if [ ! -x "$out" ] || [ "$src" -nt "$out" ]; then
    cc -O2 -Wall -Wextra -Werror -o "$out" "$src"
  fi
done

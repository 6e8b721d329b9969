#!/usr/bin/env bash
# Runs a command while busy loops keep every core busy, as CI's machine may be:
#   bash scripts/with-cpu-hog.sh make test
# The loops end with the command (also when it fails or is interrupted).
set -uo pipefail
hogs=()
stop() { [ ${#hogs[@]} -gt 0 ] && kill "${hogs[@]}" 2>/dev/null; wait "${hogs[@]}" 2>/dev/null; }
trap stop EXIT INT TERM
for _ in $(seq "$(nproc)"); do
  nice -n 0 node -e 'for (;;);' &
  hogs+=("$!")
done
echo "with-cpu-hog: ${#hogs[@]} busy loops beside: $*" >&2
"$@"

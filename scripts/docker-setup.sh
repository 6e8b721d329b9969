#!/usr/bin/env bash
# Starts Docker (Debian docker.io) if it is not running, registers the archetype OCI runtime
# wrapper (it gives plugin interfaces their requested names before the container's first process
# runs), and imports the local busybox image the tests use. Idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
DOCKER=/usr/bin/docker
[ -x $DOCKER ] || DOCKER=$(command -v docker)
log() { echo "docker-setup: $*"; }

runtime_path="$root/bin/archetype-runc"
if ! $DOCKER info >/dev/null 2>&1; then
  log "starting dockerd"
  # No default bridge and no iptables rules: containers get only the networks we give them.
  nohup dockerd --iptables=false --ip-masq=false --bridge=none \
    --add-runtime "archetype=$runtime_path" >/var/log/archetype-dockerd.log 2>&1 &
  for _ in $(seq 100); do $DOCKER info >/dev/null 2>&1 && break; sleep 0.2; done
  $DOCKER info >/dev/null 2>&1 || { log "dockerd did not start; see /var/log/archetype-dockerd.log"; exit 1; }
fi
if ! $DOCKER image inspect busybox:local >/dev/null 2>&1; then
  log "importing busybox:local"
  r=$(mktemp -d)
  mkdir -p "$r/bin" "$r/etc" "$r/proc" "$r/sys" "$r/dev" "$r/tmp"
  cp /bin/busybox "$r/bin/busybox"
  for a in sh ip ping cat ls sleep ifconfig arping udhcpc nc ethtool; do ln -s busybox "$r/bin/$a"; done
  tar -C "$r" -c . | $DOCKER import - busybox:local >/dev/null
  rm -rf "$r"
fi

#!/usr/bin/env bash
# Starts Docker (Debian docker.io) if it is not running, installs and registers the archetype OCI
# runtime wrapper (it gives archetype-ovs plugin interfaces the names the lab asked for before the
# container's first process runs), and imports the local busybox image the tests use. Idempotent.
#
# On a user's host with dockerd managed by systemd, add this to /etc/docker/daemon.json and
# restart Docker (the default runtime makes plain `docker run` name interfaces right; without it,
# containers on archetype-ovs networks need `--runtime archetype`):
#   { "runtimes": { "archetype": { "path": "/usr/local/lib/archetype-network/archetype-runc" } },
#     "default-runtime": "archetype" }
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
DOCKER=/usr/bin/docker
[ -x $DOCKER ] || DOCKER=$(command -v docker)
log() { echo "docker-setup: $*"; }

# The wrapper lives at a stable path, not in a checkout that may move.
install_dir=/usr/local/lib/archetype-network
runtime_path="$install_dir/archetype-runc"
install -d -m 0755 "$install_dir"
# The wrapper's prestart hook in one process (native/archnet-rename.c), installed first so that
# the new wrapper never finds an old one; without it the wrapper's sh + jq hook runs. Built here
# (C only, seconds) because set-up runs before `make build`.
command -v cc >/dev/null && bash "$root/scripts/build-native.sh" || log "could not build the native helpers (gcc missing?)"
if [ -x "$root/dist/archnet-rename" ]; then
  install -m 0755 "$root/dist/archnet-rename" "$install_dir/archnet-rename"
else
  rm -f "$install_dir/archnet-rename" # never one from another checkout
  log "no dist/archnet-rename (make build): the runtime wrapper's hook uses nsenter, ip and jq"
fi
install -m 0755 "$root/bin/archetype-runc" "$install_dir/archetype-runc"
rm -f "$install_dir/archetype-runc.cjs" # the former node implementation
for cmd in awk grep jq nsenter ip; do
  command -v $cmd >/dev/null || { log "the runtime wrapper needs awk, grep, jq, nsenter and ip (scripts/host-setup.sh)"; exit 1; }
done

if ! $DOCKER info >/dev/null 2>&1; then
  log "starting dockerd"
  # No default bridge and no iptables rules: containers get only the networks we give them.
  setsid nohup dockerd --iptables=false --ip-masq=false --bridge=none \
    --add-runtime "archetype=$runtime_path" --default-runtime archetype \
    >>/var/log/archetype-dockerd.log 2>&1 &
  for _ in $(seq 100); do $DOCKER info >/dev/null 2>&1 && break; sleep 0.2; done
  $DOCKER info >/dev/null 2>&1 || { log "dockerd did not start; see /var/log/archetype-dockerd.log"; exit 1; }
fi
runtimes=$($DOCKER info --format '{{json .Runtimes}}')
if [[ $runtimes != *'"archetype"'* ]]; then
  log "WARNING: dockerd runs without the archetype runtime: plugin interfaces may get Docker's names."
  log "  add to /etc/docker/daemon.json and restart Docker:"
  log "  { \"runtimes\": { \"archetype\": { \"path\": \"$runtime_path\" } }, \"default-runtime\": \"archetype\" }"
elif [[ $($DOCKER info --format '{{.DefaultRuntime}}') != archetype ]]; then
  log "note: runtime archetype is registered but not the default: use \`docker run --runtime archetype\`"
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

#!/usr/bin/env bash
# Prepares a Debian 12 host for archetype-network. Idempotent: installs only what is missing,
# starts only what is not running. Usage: host-setup.sh [--docker | --ovn | --ovn-host]   (as root)
#   --docker    also install and start Docker (needed by the plugin tests) and a local busybox image,
#               and Chromium (the live page's browser tests drive it headless); and OVN, as --ovn.
#   --ovn       also install OVN (ovn-central, ovn-host) with its packaged services off: the ovn
#               backend's tests and `archnet central serve` run their own daemons.
#   --ovn-host  as --ovn, then start ovn-controller as this host's service (the ovn backend's
#               `make run`): systemd's unit where systemd runs, else ovn-ctl with its monitor.
#               OVS_RUNDIR, OVN_RUNDIR and OVN_LOGDIR choose another OVS and OVN's directories.
set -euo pipefail
want_docker=false
want_ovn=false
want_controller=false
case "${1:-}" in
  --docker) want_docker=true; want_ovn=true ;;
  --ovn) want_ovn=true ;;
  --ovn-host) want_ovn=true; want_controller=true ;;
  "") ;;
  *) echo "host-setup: unknown option ${1} (use --docker, --ovn or --ovn-host)" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "host-setup: run as root (the agent manages OVS and network namespaces)" >&2; exit 1; }

log() { echo "host-setup: $*"; }

# Debian packages: a command we need -> the package that ships it.
declare -A pkg=(
  [ovs-vsctl]=openvswitch-switch [ip]=iproute2 [ping]=iputils-ping [tcpdump]=tcpdump
  [nsenter]=util-linux [lldpd]=lldpd [iperf3]=iperf3 [ethtool]=ethtool [cc]=gcc [jq]=jq
  [awk]=mawk [grep]=grep
)
# Only the tests need these.
if $want_docker; then pkg[dockerd]=docker.io; pkg[busybox]=busybox-static; pkg[strace]=strace; pkg[chromium]=chromium; fi
missing=()
for cmd in "${!pkg[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${pkg[$cmd]}")
done
# The native helper (make build) needs the C library's and the kernel's headers.
dpkg -s libc6-dev >/dev/null 2>&1 || missing+=(libc6-dev)
# busybox-static ships /bin/busybox; a dynamic busybox would not work inside a scratch image.
if $want_docker && ! dpkg -s busybox-static >/dev/null 2>&1; then missing+=(busybox-static); fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# lldpd's package starts a system daemon we do not want: tests run their own.
if systemctl is-active --quiet lldpd 2>/dev/null; then systemctl stop lldpd || true; fi

# OVN for the ovn backend's tests (test/ovn/) and `archnet central serve`, which run their own
# NB/SB/northd and ovn-controller instances only. The packages' own services (central databases,
# northd, and an ovn-controller that would take over the host's OVS) must not start:
# policy-rc.d forbids it during the install, and they are disabled after.
if $want_ovn && ! { command -v ovn-northd && command -v ovn-controller; } >/dev/null 2>&1; then
  log "installing ovn-central ovn-host (their services stay off)"
  guard=false
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=true
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ovn-central ovn-host >/dev/null ||
    { $guard && rm -f /usr/sbin/policy-rc.d; exit 1; }
  $guard && rm -f /usr/sbin/policy-rc.d
  for unit in ovn-host ovn-controller ovn-central ovn-northd ovn-ovsdb-server-nb ovn-ovsdb-server-sb; do
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
fi

# Open vSwitch: the userspace datapath when the kernel module is absent.
if ! ovs-vsctl --timeout=2 show >/dev/null 2>&1; then
  log "starting Open vSwitch"
  /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random --no-monitor >/dev/null 2>&1 ||
    /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random --no-monitor
  for _ in $(seq 50); do ovs-vsctl --timeout=2 show >/dev/null 2>&1 && break; sleep 0.1; done
fi
if [ -d /sys/module/openvswitch ]; then log "OVS: kernel datapath available"; else log "OVS: no kernel module, userspace datapath (netdev)"; fi

# The ovn backend's host service: ovn-controller on this host's OVS. It waits for the settings the
# agent writes into Open_vSwitch when it starts (system-id, ovn-remote, encap type and IP).
if $want_controller; then
  ovn_rundir=${OVN_RUNDIR:-/var/run/ovn}
  if pid=$(cat "$ovn_rundir/ovn-controller.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
    log "ovn-controller: running (pid $pid)"
  elif [ -d /run/systemd/system ] && [ -z "${OVS_RUNDIR:-}${OVN_RUNDIR:-}" ]; then
    log "starting ovn-controller (systemd)"
    systemctl enable --now ovn-controller >/dev/null
  else
    log "starting ovn-controller (ovn-ctl)"
    /usr/share/ovn/scripts/ovn-ctl --ovn-manage-ovsdb=no start_controller >/dev/null
  fi
fi

if $want_docker; then
  "$(dirname "$0")/docker-setup.sh"
fi
log "ready"

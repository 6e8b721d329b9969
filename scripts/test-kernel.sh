#!/usr/bin/env bash
# make test-kernel: runs test files inside a VM with Debian's kernel (scripts/kernel-vm.sh), where
# the openvswitch kernel datapath, netem and 8021q exist, with ARCHETYPE_AGENT_DATAPATH=system.
#
#   scripts/test-kernel.sh FILE...
#
# Where no VM can start (no root, qemu cannot run) it says so and exits 0: the suites are skipped,
# not failed. The test runner's output is printed as the guest wrote it; the exit code is the guest's.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: $0 FILE..." >&2; exit 2; }
if ! why=$(bash scripts/kernel-vm.sh check); then
  echo "test-kernel: SKIPPED: no VM can start here ($why)"
  exit 0
fi
out=$(mktemp -d /tmp/archnet-kernel.XXXXXX)
trap 'rm -rf "$out"' EXIT
files=$(printf '%q ' "$@")
cat >"$out/guest.sh" <<EOF
set -u
cd $(printf '%q' "$PWD")
for m in openvswitch vxlan geneve sch_netem sch_tbf 8021q tun veth; do modprobe \$m || echo "test-kernel: modprobe \$m failed"; done
ip link set lo up
export ARCHETYPE_AGENT_DATAPATH=system ARCHNET_KERNEL_HOST=1
exec node --import tsx --test --test-concurrency=1 --test-timeout=900000 $files
EOF
started=$(date +%s)
echo "test-kernel: booting a VM (qemu, software emulation) for: $*"
rc=$(KERNEL_VM_SHARE=$PWD bash scripts/kernel-vm.sh run "$out/guest.sh" "$out") || rc=""
cat "$out/guest.log" 2>/dev/null || true
if [ -z "$rc" ]; then
  echo "test-kernel: the VM did not finish; its console:" >&2
  tail -n 40 "$out/console.log" >&2 || true
  exit 1
fi
echo "test-kernel: guest exit code ${rc:-?}, $(($(date +%s) - started)) s in the VM"
exit "${rc:-1}"

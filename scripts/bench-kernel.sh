#!/usr/bin/env bash
# make bench-kernel: bench scenarios inside a VM with Debian's kernel (scripts/kernel-vm.sh), on the
# openvswitch kernel datapath (ARCHETYPE_AGENT_DATAPATH=system), e.g. wire links beyond what the
# userspace datapath can add in reasonable time:
#
#   scripts/bench-kernel.sh --only 17 --scale-links 400,2000,5000
#
# The guest's checkout is read-only: results go to bench/results/kernel.json here. The VM emulates
# its CPUs (qemu TCG), so compare figures with each other, not with the host's.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! why=$(bash scripts/kernel-vm.sh check); then
  echo "bench-kernel: no VM can start here ($why)" >&2
  exit 1
fi
out=$(mktemp -d /tmp/archnet-bench-kernel.XXXXXX)
trap 'rm -rf "$out"' EXIT
args=$(printf '%q ' "$@")
cat >"$out/guest.sh" <<EOF
set -u
cd $(printf '%q' "$PWD")
for m in openvswitch vxlan sch_netem sch_tbf 8021q tun veth; do modprobe \$m || echo "bench-kernel: modprobe \$m failed"; done
ip link set lo up
export ARCHETYPE_AGENT_DATAPATH=system ARCHETYPE_AGENT_SWITCH_TIMEOUT_SCALE=${ARCHETYPE_AGENT_SWITCH_TIMEOUT_SCALE:-10}
exec node --import tsx bench/run.ts --out /tmp/out/kernel.json $args
EOF
echo "bench-kernel: booting a VM (qemu, software emulation) for: bench/run.ts $*"
rc=$(KERNEL_VM_SHARE=$PWD KERNEL_VM_MEM=${KERNEL_VM_MEM:-8192} bash scripts/kernel-vm.sh run "$out/guest.sh" "$out") || rc=""
cat "$out/guest.log" 2>/dev/null || true
[ -f "$out/kernel.json" ] && mkdir -p bench/results && cp "$out/kernel.json" bench/results/kernel.json
if [ -z "$rc" ]; then
  echo "bench-kernel: the VM did not finish; its console:" >&2
  tail -n 40 "$out/console.log" >&2 || true
  exit 1
fi
exit "${rc:-1}"

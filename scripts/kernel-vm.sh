#!/usr/bin/env bash
# A throw-away test host with a real kernel: Debian's own kernel in qemu, with this machine's root
# file system shared read-only over 9p (node, Open vSwitch, iproute2 and the checkout are all
# there), tmpfs over what must be writable, and OUTDIR shared read-write at /tmp/out.
#
#   scripts/kernel-vm.sh check                    # can a VM start here? (exit 0, or 1 with why)
#   scripts/kernel-vm.sh run GUEST_SCRIPT OUTDIR  # runs GUEST_SCRIPT (bash) inside; prints its exit code
#
# KERNEL_VM_SHARE=DIR also shares DIR (read-only) at the same path: needed when DIR lies under a
# folder the guest covers with tmpfs (/tmp, /run, /root ...), e.g. a checkout in /tmp.
#
# Why each choice (measured on the project's machines):
# - Software emulation (TCG): /dev/kvm opens there but a KVM guest hangs after the BIOS.
# - `-cpu Nehalem` (x86-64-v2): with the basic qemu64 model node died of SIGILL in some suites;
#   with `max` (AVX2, which qemu 7.2 was the first to emulate) a test process died once of SIGSEGV
#   in a loaded CI run. Nehalem has what node needs and no AVX, at about the same speed (69 s against 66 s).
# - 4 vCPUs: with 2, OVS 3.1's kernel datapath (per-cpu upcall dispatch) loses every upcall.
# - Fresh proc/sys/devtmpfs in the new root (9p would show this machine's /proc), a tmpfs on /run
#   before `ip netns add`, and /dev/fd links (devtmpfs has none; bash's `<(...)` needs them).
# Settings: KERNEL_VM_TIMEOUT (s, default 3000), KERNEL_VM_MEM (MiB, default 4096), KERNEL_VM_CPUS (4),
# KERNEL_VM_CPU_MODEL (Nehalem).
set -euo pipefail
cmd=${1:-}

kernel() { ls /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -1; }

# Installs what the VM needs (Debian packages) unless present.
ensure_packages() {
  local need=()
  command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
  [ -n "$(kernel)" ] || need+=(linux-image-amd64)
  dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
  command -v cpio >/dev/null || need+=(cpio)
  [ ${#need[@]} -eq 0 ] && return 0
  echo "kernel-vm: installing ${need[*]}" >&2
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

check() {
  [ "$(id -u)" = 0 ] || { echo "not root"; return 1; }
  ensure_packages >&2 || { echo "the VM's packages could not be installed"; return 1; }
  [ -n "$(kernel)" ] || { echo "no /boot/vmlinuz-*-amd64"; return 1; }
  local kver; kver=$(basename "$(kernel)"); kver=${kver#vmlinuz-}
  modprobe -S "$kver" --show-depends openvswitch >/dev/null 2>&1 || { echo "kernel $kver has no openvswitch module"; return 1; }
  qemu-system-x86_64 -accel tcg -machine none -nographic -S -display none -monitor none -serial none \
    </dev/null >/dev/null 2>&1 &
  local pid=$!
  sleep 0.5
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
    echo "qemu-system-x86_64 cannot start here"
    return 1
  fi
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  return 0
}

run() {
  local guest=$1 out=$2
  [ "$(id -u)" = 0 ] || { echo "kernel-vm: run as root" >&2; exit 1; }
  [ -f "$guest" ] || { echo "kernel-vm: no guest script $guest" >&2; exit 2; }
  ensure_packages
  local vmlinuz kver
  vmlinuz=$(kernel)
  kver=${vmlinuz#/boot/vmlinuz-}
  # Globals: the EXIT trap runs after this function has returned.
  work=$(mktemp -d /tmp/kernel-vm.XXXXXX)
  qpid=""
  trap 'if [ -n "$qpid" ]; then kill "$qpid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT INT TERM
  mkdir -p "$work/initrd"/{bin,dev,proc,sys,newroot,mods} "$out"
  cp /bin/busybox "$work/initrd/bin/"
  # Modules to mount the shared root, in dependency order.
  local i=0 f
  for f in $(for m in virtio_pci 9pnet_virtio 9p overlay; do modprobe -S "$kver" --show-depends $m; done | awk '$1 == "insmod" {print $2}' | awk '!s[$0]++'); do
    i=$((i + 1))
    cp "$f" "$work/initrd/mods/$(printf %02d $i)-$(basename "$f")"
  done
  local share=${KERNEL_VM_SHARE:-} share_dev=()
  if [ -n "$share" ]; then
    share=$(cd "$share" && pwd -P)
    share_dev=(-fsdev "local,id=s,path=$share,security_model=passthrough,readonly=on,multidevs=remap" -device virtio-9p-pci,fsdev=s,mount_tag=share)
  fi
  cat >"$work/initrd/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for pass in 1 2; do for m in /mods/*.ko; do insmod $m 2>/dev/null; done; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose hostroot /newroot || { echo "kernel-vm: 9p root failed"; poweroff -f; }
for d in tmp run root var/lib/openvswitch etc/openvswitch var/log/openvswitch var/lib/archetype-network; do
  [ -d /newroot/$d ] && mount -t tmpfs tmpfs /newroot/$d
done
mkdir -p /newroot/tmp/out; mount -t 9p -o trans=virtio,version=9p2000.L out /newroot/tmp/out
share=$(cat /share-path)
[ -n "$share" ] && mkdir -p "/newroot$share" && mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose share "/newroot$share"
umount /proc /sys
mount -t proc proc /newroot/proc; mount -t sysfs sys /newroot/sys; mount -t devtmpfs dev /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm; mount -t devpts devpts /newroot/dev/pts; mount -t tmpfs tmpfs /newroot/dev/shm
ln -sf /proc/self/fd /newroot/dev/fd; ln -sf /proc/self/fd/0 /newroot/dev/stdin; ln -sf /proc/self/fd/1 /newroot/dev/stdout; ln -sf /proc/self/fd/2 /newroot/dev/stderr
exec switch_root /newroot /bin/sh -c 'mkdir -p /run/netns /run/openvswitch; export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root; /bin/bash /tmp/out/.guest.sh > /tmp/out/guest.log 2>&1; echo "$?" > /tmp/out/guest.rc; poweroff -f'
EOF
  printf '%s' "$share" >"$work/initrd/share-path"
  chmod +x "$work/initrd/init"
  (cd "$work/initrd" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$work/initrd.gz")
  cp "$guest" "$out/.guest.sh"
  rm -f "$out/guest.rc"
  timeout "${KERNEL_VM_TIMEOUT:-3000}" qemu-system-x86_64 -accel tcg -cpu "${KERNEL_VM_CPU_MODEL:-Nehalem}" -m "${KERNEL_VM_MEM:-4096}" \
    -smp "${KERNEL_VM_CPUS:-4}" -nographic -no-reboot -kernel "$vmlinuz" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet" \
    -fsdev local,id=r,path=/,security_model=passthrough,readonly=on,multidevs=remap -device virtio-9p-pci,fsdev=r,mount_tag=hostroot \
    -fsdev local,id=o,path="$out",security_model=passthrough -device virtio-9p-pci,fsdev=o,mount_tag=out \
    "${share_dev[@]}" </dev/null >"$out/console.log" 2>&1 &
  qpid=$!
  wait "$qpid" || true
  qpid=""
  [ -f "$out/guest.rc" ] || { echo "kernel-vm: the guest did not finish (see $out/console.log)" >&2; exit 1; }
  cat "$out/guest.rc"
}

case "$cmd" in
  check) check ;;
  run) [ $# -eq 3 ] || { echo "usage: $0 run GUEST_SCRIPT OUTDIR" >&2; exit 2; }; run "$2" "$3" ;;
  *) echo "usage: $0 check | run GUEST_SCRIPT OUTDIR" >&2; exit 2 ;;
esac

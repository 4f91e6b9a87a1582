#!/bin/bash
# Runs a command as root inside a QEMU/TCG guest whose only cgroup hierarchy is
# cgroup v2 (Debian's amd64 kernel, cgroup_no_v1=all, AppArmor on), with the
# host's root shared read-only over 9p, so host-built binaries run from their
# usual paths. Prints the guest console (the command's output included) and exits
# with the command's exit status. Recipe: /work/shared/research/cgroup-v2-vm.md.
#
#   tests/vm/run-vm.sh [--mode v2|systemd] [--workdir DIR] [--timeout SECONDS] -- COMMAND [ARGS...]
#
# --mode v2 (default): guest-init.sh is PID 1 and mounts what a cgroup-v2 host has.
# --mode systemd: systemd is PID 1 on a writable overlay of the host root (D-Bus,
#   systemctl, systemd-run work); the command runs as berth-vm-test.service.
# The command runs in the current directory with PATH, HOME=/root and the host's
# BERTH_* and GTEST_* variables. /tmp, /root, /run, /var/log, /var/lib/berth are
# fresh tmpfs in the guest (a current directory under them is not visible).
# /dev/vda is a zeroed 64 MiB scratch disk.
# Exit status: the command's; 124 when --timeout (default 600 s) killed the VM;
# 125 when there is none (kernel panic, guest failure, setup error).
# --workdir (default $TMPDIR/berth-vm) keeps vmlinux-<kernel> (the PVH ELF inside
# /boot/vmlinuz-<kernel>: no decompressor to run under TCG, ~3.5 s), the
# initramfs, disk.img, and out/ (emptied each run; the guest's /run/out): cmd,
# output.log (the command's output), status, console.log (the whole console).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "run-vm: $*" >&2; exit 125; }
usage() { die "usage: run-vm.sh [--mode v2|systemd] [--workdir DIR] [--timeout SECONDS] -- COMMAND [ARGS...]"; }

mode=v2 workdir=${TMPDIR:-/tmp}/berth-vm timeout=600
while (($#)); do
  case $1 in
    --mode | --workdir | --timeout) (($# >= 2)) || usage ;;&
    --mode) mode=$2 ;;
    --workdir) workdir=$2 ;;
    --timeout) timeout=$2 ;;
    --) shift; break ;;
    *) usage ;;
  esac
  shift 2
done
(($#)) || usage
[[ $mode == v2 || $mode == systemd ]] || usage
[[ $timeout =~ ^[0-9]+$ ]] || usage
[[ $here != *[[:space:]]* ]] || die "$here: init= on the kernel command line cannot hold blanks"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
kver=$(ls /lib/modules | grep -- '-amd64$' | sort -V | tail -n1 || true)
[[ -n $kver && -f /boot/vmlinuz-$kver ]] || die "no Debian amd64 kernel (apt-get install linux-image-amd64)"

mkdir -p "$workdir"
workdir=$(cd "$workdir" && pwd)
[[ $workdir != *,* ]] || die "$workdir: qemu's -virtfs and -drive options cannot hold a comma"
exec 9>"$workdir/lock"
flock -n 9 || die "$workdir is in use by another run-vm.sh"

vmlinux=$workdir/vmlinux-$kver
if [ ! -s "$vmlinux" ]; then
  off=$(LC_ALL=C grep -obUaP -m1 '\xfd7zXZ\x00' "/boot/vmlinuz-$kver" | cut -d: -f1 | head -n1 || true)
  [ -n "$off" ] || die "/boot/vmlinuz-$kver: no xz payload"
  # xz fails on the bzImage's data after the stream; the ELF note check decides.
  tail -c +$((off + 1)) "/boot/vmlinuz-$kver" | xz -dc 2>/dev/null >"$vmlinux.tmp" || true
  readelf -n "$vmlinux.tmp" | grep 'note type: (0x00000012)' >/dev/null || die "$vmlinux.tmp: no PVH entry note"
  mv "$vmlinux.tmp" "$vmlinux"
fi
key=$(cat "$here/mkinitramfs.sh" "$here/initramfs-init" | sha256sum | cut -c1-12)
initrd=$workdir/initramfs-$kver-$key.cpio.gz
if [ ! -s "$initrd" ]; then
  rm -f "$workdir"/initramfs-*.cpio.gz
  K=$kver "$here/mkinitramfs.sh" "$initrd"
fi

out=$workdir/out
rm -rf "$out"
mkdir "$out"
truncate -s 0 "$workdir/disk.img"
truncate -s 64M "$workdir/disk.img"
{
  for v in $(compgen -e BERTH_) $(compgen -e GTEST_); do printf 'export %s=%q\n' "$v" "${!v}"; done
  printf 'cd -- %q || exit\n' "$PWD"
  printf '%q ' "$@"
  echo
} >"$out/cmd"

# The guest gets fresh tmpfs on /tmp, /root, /run, /var/log and /var/lib/berth.
# A tree of the host's under one of them that the run needs (this script's,
# the current directory, the command: a CI clone in /tmp) is bound back in at
# its own path (berth_keep=, read by guest-init.sh).
keep=''
for p in "$here" "$PWD" "$1"; do
  case $p in
    /tmp/?* | /root/?* | /run/?* | /var/log/?* | /var/lib/berth/?*)
      top=$(cut -d/ -f1-3 <<<"$p")
      [[ $top == /var/* ]] && top=$(cut -d/ -f1-4 <<<"$p")
      [[ ,$keep, == *,$top,* ]] || keep+=${keep:+,}$top
      ;;
  esac
done
[[ $keep != *[[:space:]]* ]] || die "$keep: the kernel command line cannot hold blanks"
append="console=ttyS0 quiet panic=-1 cgroup_no_v1=all apparmor=1 security=apparmor init=$here/guest-init.sh"
[ -z "$keep" ] || append+=" berth_keep=$keep"
if [ "$mode" = systemd ]; then
  # needs-update=0: the host has no /etc/.updated; ldconfig, hwdb and catalog
  # rebuilds would take minutes under TCG.
  append+=" berth_mode=systemd systemd.unified_cgroup_hierarchy=1 systemd.condition-needs-update=0"
fi
t0=${EPOCHREALTIME/./}
# qboot, not SeaBIOS: SeaBIOS's serial console sends terminal resets (ESC c,
# no line wrap) to our stdout. KVM is no option here (PVM host, see the recipe).
exec 3< <(exec timeout -s KILL "$timeout" qemu-system-x86_64 \
  -accel tcg,thread=multi -cpu max -m 2G -smp 2 -nographic -no-reboot -nic none \
  -bios /usr/share/qemu/qboot.rom \
  -kernel "$vmlinux" -initrd "$initrd" -append "$append" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap \
  -virtfs local,path="$out",mount_tag=out,security_model=passthrough \
  -drive file="$workdir/disk.img",if=virtio,format=raw,cache=none \
  </dev/null 2>&1)
qemu=$!
# Interrupted: take the VM down too (timeout passes the signal on to qemu).
trap 'kill "$qemu" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM

exec 4>"$out/console.log"
t_init='' t_start='' t_end='' panic=''
while IFS= read -r line <&3 || [ -n "$line" ]; do
  line=${line%$'\r'}
  printf '%s\n' "$line"
  printf '%s\n' "$line" >&4
  case $line in
    *"berth-vm: init "*) t_init=${t_init:-${EPOCHREALTIME/./}} ;;
    *"berth-vm: command start"*) t_start=${t_start:-${EPOCHREALTIME/./}} ;;
    *"berth-vm: command exit "*) t_end=${t_end:-${EPOCHREALTIME/./}} ;;
    *"Kernel panic"*) panic=${panic:-${line#*\] }} ;;
  esac
done
qrc=0
wait "$qemu" || qrc=$?
trap - EXIT
t_done=${EPOCHREALTIME/./}

# Seconds from $1 to $2 (microseconds), or "-" when a mark was never seen.
span() { if [[ -n $1 && -n $2 ]]; then printf '%d.%02d s' $((($2 - $1) / 1000000)) $((($2 - $1) / 10000 % 100)); else echo -; fi; }
echo "run-vm: $mode mode: qemu start to init $(span "$t0" "$t_init"), to command start $(span "$t0" "$t_start")," \
  "command $(span "$t_start" "$t_end"), total $(span "$t0" "$t_done")" >&2

status=$(cat "$out/status" 2>/dev/null || true)
if [[ $status =~ ^[0-9]+$ ]]; then
  exit "$status"
elif ((qrc == 137)); then
  echo "run-vm: timeout: the VM was killed after $timeout s" >&2
  exit 124
fi
echo "run-vm: the guest ended without an exit status (qemu exit status $qrc${panic:+; $panic})" >&2
exit 125

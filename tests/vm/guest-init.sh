#!/bin/bash
# PID 1 of the test VM (tests/vm/run-vm.sh), started by initramfs-init on the
# host's root: read-only 9p, or with berth_mode=systemd an overlay on it.
# - v2 mode: mounts what a pure cgroup-v2 host has, runs the command, powers off.
# - berth_mode=systemd: sets the overlay root up for a short boot (berth-vm.target:
#   basic.target + berth-vm-test.service) and execs systemd; that unit runs
#   "guest-init.sh run", which runs the command and lets systemd power off.
# The command is /run/out/cmd (9p share "out", written by run-vm.sh); its output
# goes to the console and /run/out/output.log, its exit status to /run/out/status.
set -uo pipefail # no -e: PID 1 must get to the poweroff
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
keep=${berth_keep:-} # host trees to bind back in (run-vm.sh)

run_command() {
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,X-mount.mkdir out /run/out || return
  if [ ! -f /run/out/cmd ]; then
    echo "berth-vm: /run/out/cmd is missing, nothing to run"
    return
  fi
  local t0=${EPOCHREALTIME/./} rc
  echo "berth-vm: command start"
  # cmd sets the BERTH_*/GTEST_* variables and the directory itself.
  env -i PATH="$PATH" HOME=/root bash -c "$(</run/out/cmd)" </dev/null 2>&1 | tee /run/out/output.log
  rc=${PIPESTATUS[0]}
  echo "berth-vm: command exit $rc after $(((${EPOCHREALTIME/./} - t0) / 1000)) ms (guest clock)"
  echo "$rc" >/run/out/status
  sync
}

# The systemd unit written below (ExecStart).
if [ "${1:-}" = run ]; then
  run_command
  exit 0
fi

echo "berth-vm: init (${berth_mode:-v2} mode)"
mount -t proc proc /proc
# The host's trees the run needs under the dirs that get fresh tmpfs (a CI
# clone in /tmp): held on /dev, which stays, until they are bound back in.
# (The 9p root cannot be mounted a second time.)
for k in ${keep//,/ }; do
  mkdir -p "/dev/.berth-keep$k" && mount --bind "$k" "/dev/.berth-keep$k"
done

if [ "${berth_mode:-}" = systemd ]; then
  # / is the overlay: these writes land in its tmpfs, the host is untouched.
  u=/etc/systemd/system
  read -r id </proc/sys/kernel/random/uuid
  echo "${id//-/}" >/etc/machine-id # not the host's; not empty (first boot)
  echo berth-vm >/etc/hostname
  # The v2 mode's fresh directories (systemd itself mounts /run, /dev/shm).
  cat >/etc/fstab <<'FSTAB'
tmpfs /tmp tmpfs mode=1777 0 0
tmpfs /var/log tmpfs mode=755 0 0
tmpfs /var/lib/berth tmpfs mode=755 0 0
tmpfs /root tmpfs mode=700 0 0
FSTAB
  # The host's trees the run needs (berth_keep, run-vm.sh), bound back in
  # over the fresh tmpfs from where they wait (below).
  for k in ${keep//,/ }; do
    echo "/dev/.berth-keep$k $k none bind,X-mount.mkdir 0 0" >>/etc/fstab
  done
  # Not multi-user.target: that would start the host's services (and gettys).
  cat >$u/berth-vm.target <<'UNIT'
[Unit]
Description=Berth test VM: basic system and the test command
Wants=basic.target berth-vm-test.service
After=basic.target
AllowIsolate=yes
UNIT
  # Type=exec, not oneshot: the boot finishes while the command runs, so the
  # system is "running" for it (systemctl is-system-running --wait returns).
  # poweroff-immediate: the status is already on the host (9p writes are
  # synchronous); stopping units and unmounting would take seconds under TCG.
  cat >$u/berth-vm-test.service <<UNIT
[Unit]
Description=Berth test VM command (/run/out/cmd)
After=local-fs.target basic.target dbus.service
Wants=dbus.service
SuccessAction=poweroff-immediate
FailureAction=poweroff-immediate

RequiresMountsFor=${keep//,/ }

[Service]
Type=exec
ExecStart=$0 run
StandardOutput=journal+console
SyslogIdentifier=berth-vm
# Every line to the console, however chatty the command.
LogRateLimitIntervalSec=0
# As deploy/systemd/berthd.service: the command may make cgroups below its own.
Delegate=yes
UNIT
  ln -sf berth-vm.target $u/default.target
  # Masked: no network, no clock to sync; timers would start apt and man-db jobs.
  # The rest is of no use in a VM without hotplug, disks to keep or logins, and
  # under TCG each costs seconds (modules still load on demand, from the 9p root).
  # An empty unit file masks like a link to /dev/null, and needs no ln(1).
  for m in timers.target systemd-timesyncd.service systemd-udevd.service systemd-udev-trigger.service \
    systemd-udevd-control.socket systemd-udevd-kernel.socket modprobe@.service systemd-binfmt.service \
    proc-sys-fs-binfmt_misc.automount systemd-random-seed.service systemd-update-utmp.service \
    systemd-journal-flush.service; do
    : >"$u/$m"
  done
  # The host's root is a Docker container's: systemd would take this VM for one.
  rm -f /.dockerenv
  # No colours and cursor moves in the boot messages on the serial console.
  export TERM=dumb
  exec /lib/systemd/systemd
fi

# One mount(8) for them all: under TCG every program start costs 0.1-0.5 s.
mount -a -T "${0%/*}/guest.fstab"
# The host's trees held on /dev (above), back at their own paths.
for k in ${keep//,/ }; do mkdir -p "$k" && mount --move "/dev/.berth-keep$k" "$k"; done
# As systemd does: every controller enabled for the children of the root.
for c in $(</sys/fs/cgroup/cgroup.controllers); do
  echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || echo "berth-vm: cannot enable the $c controller"
done
# /dev is a bare devtmpfs.
ln -s /proc/self/fd /dev/fd && ln -s fd/0 /dev/stdin && ln -s fd/1 /dev/stdout && ln -s fd/2 /dev/stderr
# The host has no /var/lib/berth, and the 9p root is read-only: an overlay on
# /var/lib makes the mount point (and a writable /var/lib).
mkdir -p /run/varlib/upper/berth /run/varlib/work
mount -t overlay -o lowerdir=/var/lib,upperdir=/run/varlib/upper,workdir=/run/varlib/work overlay /var/lib
mount -t tmpfs -o mode=755 tmpfs /var/lib/berth # empty even if the host has one
ip link set lo up
echo berth-vm >/proc/sys/kernel/hostname
run_command
echo o >/proc/sysrq-trigger
sleep 30

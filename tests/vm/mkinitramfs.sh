#!/bin/bash
# Builds the initramfs of the test VM (tests/vm/run-vm.sh): busybox-static, the
# virtio, 9p and overlay modules of the newest installed Debian amd64 kernel (or
# $K), and tests/vm/initramfs-init as /init. About 1.5 MB.
#
#   tests/vm/mkinitramfs.sh OUTFILE
set -euo pipefail
out=${1:?usage: mkinitramfs.sh OUTFILE}
here=$(cd "$(dirname "$0")" && pwd)
K=${K:-$(ls /lib/modules | grep -- '-amd64$' | sort -V | tail -n1 || true)}
[ -n "$K" ] || { echo "mkinitramfs: no /lib/modules/*-amd64 (apt-get install linux-image-amd64)" >&2; exit 1; }

d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
mkdir -p "$d"/{bin,dev,proc,sys,newroot,lib/modules}
cp /bin/busybox "$d/bin/busybox"   # busybox-static: no libraries to copy
for a in sh mount umount insmod switch_root mkdir cat echo sleep; do ln -s busybox "$d/bin/$a"; done
# Dependencies first: /init loads them in this order with plain insmod.
mods="drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev
      drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci drivers/block/virtio_blk
      net/9p/9pnet net/9p/9pnet_virtio fs/netfs/netfs fs/fscache/fscache fs/9p/9p fs/overlayfs/overlay"
for m in $mods; do
  cp "/lib/modules/$K/kernel/$m.ko" "$d/lib/modules/"
  echo "${m##*/}.ko"
done >"$d/lib/modules/order"
install -m 755 "$here/initramfs-init" "$d/init"
(cd "$d" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"

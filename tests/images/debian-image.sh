#!/usr/bin/env bash
# Builds docker.io/berth/debian:12, a real Debian 12 (bookworm) base image made
# from Debian's own packages by mmdebstrap, as an OCI image layout in <out-dir>
# (the format of deploy/demo-image.sh, which berthd imports with --import=<dir>).
#
#   tests/images/debian-image.sh build/tests/images/debian
#
# - rootfs: `mmdebstrap --variant=minbase bookworm` with merged-/usr set up the
#   way debootstrap does (bin -> usr/bin, ...), docs, man pages and translations
#   left out (dpkg path-exclude, kept in the image for later installs), apt's
#   caches dropped. Checked after the build: merged-/usr, var/run -> /run, dash as
#   /bin/sh, an /etc/passwd with Debian's system users.
# - One layer, UNCOMPRESSED (application/vnd.oci.image.layer.v1.tar, digest =
#   diff_id), as some build tools push them. Reproducible for a given mirror state:
#   sorted names, the rootfs's own numeric owners (not forced to 0), mtimes
#   clamped to SOURCE_DATE_EPOCH, no device nodes (an empty /dev, like Docker's
#   debian images).
# - Cached: when <out-dir>/index.json exists and <out-dir>/debian-image.sh.sha256
#   holds this script's sha256, exits at once. Otherwise builds in temporary
#   directories and renames the finished layout into place, so an interrupted run
#   leaves no half-made <out-dir>.
#
# Needs root (mmdebstrap --mode=unshare as root: a private mount namespace, real
# ownership), mmdebstrap, and Debian's mirror: BERTH_DEBIAN_MIRROR, else the first
# .../debian URI of the host's apt sources, else http://deb.debian.org/debian.
set -euo pipefail
out=${1:?usage: debian-image.sh <out-dir>}
out=${out%/}
ref=docker.io/berth/debian:12
suite=bookworm
stamp_name=debian-image.sh.sha256
fail() { echo "debian-image: $*" >&2; exit 1; }

self=$(readlink -f "${BASH_SOURCE[0]}")
sum=$(sha256sum "$self" | cut -d' ' -f1)
if [ -f "$out/index.json" ] && [ "$(cat "$out/$stamp_name" 2>/dev/null)" = "$sum" ]; then
  touch "$out/index.json"  # newer than this script: a build rule on it is done
  echo "debian-image: $ref in $out is up to date"
  exit 0
fi

[ "$(id -u)" = 0 ] || fail "needs root (mmdebstrap --mode=unshare as root keeps the files' real owners)"
command -v mmdebstrap >/dev/null || fail "mmdebstrap missing (apt-get install mmdebstrap)"
start=$(date +%s%N)
# Fixed, so the layer only changes when the packages do (bookworm's release day).
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1686355200}

# The host's Debian mirror: URIs: of deb822 .sources, or `deb [opts] URI` lines.
host_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    sed -nE -e 's/^[[:space:]]*URIs:[[:space:]]*//p' \
      -e 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' "$f"
  done | tr -s '[:blank:]' '\n' | awk '/^https?:\/\/[^ ]+\/debian\/?$/ && !n++ { sub(/\/$/, ""); print }'
}
mirror=${BERTH_DEBIAN_MIRROR:-$(host_mirror)}
mirror=${mirror:-http://deb.debian.org/debian}

# Scratch: the rootfs under $TMPDIR, the layout beside <out-dir> (same file
# system, so the final rename is atomic). Both go on exit, signals included.
parent=$(dirname "$out")
mkdir -p "$parent"
work=$(mktemp -d "${TMPDIR:-/tmp}/berth-debian-XXXXXX")
chmod 755 "$work"  # for apt's _apt sandbox
stage=$(mktemp -d "$parent/.$(basename "$out").tmp-XXXXXX")
old=""
cleanup() { rm -rf --one-file-system "$work" "$stage" ${old:+"$old"}; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

root=$work/rootfs
echo "debian-image: mmdebstrap $suite from $mirror (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
# merged-usr hook: the bin/sbin/lib symlinks and usr-is-merged, as debootstrap
# does; without it bookworm pulls in the usrmerge package and perl (~50 MB).
mmdebstrap --mode=unshare --variant=minbase --format=directory \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/lintian/*' \
  "$suite" "$root" "$mirror"

# A working Debian: dpkg's database is consistent, its tools run, /bin/sh is
# dash's (dpkg-query also prints dash's diversion of /bin/sh to /bin/sh.distrib).
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
in_root dpkg --audit || fail "rootfs: dpkg --audit failed"
in_root dpkg-query -S /bin/sh | grep -x 'dash: /bin/sh' >/dev/null || fail "rootfs: /bin/sh is not dash's"
in_root /bin/sh -c 'apt-get --version' >/dev/null || fail "rootfs: /bin/sh -c apt-get --version failed"
in_root getent passwd _apt >/dev/null || fail "rootfs: getent passwd _apt failed"
# apt's package caches are rebuilt on the first apt-get update.
rm -f "$root"/var/cache/apt/*.bin

# The layer, written straight into the staged layout: sorted, numeric owners as
# they are, times clamped, pax (mmdebstrap's own tar options); /dev kept empty.
mkdir -p "$stage/blobs/sha256"
layer_tar=$stage/blobs/sha256/layer.tar
tar --create --file="$layer_tar" --directory="$root" \
  --sort=name --format=pax --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
  --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" --clamp-mtime --one-file-system --xattrs \
  --anchored --exclude='./dev/*' .

# Check the layer itself: `tar -tv` fields are mode, uid/gid, size, date, time,
# name[, ->, target].
tar --numeric-owner -tvf "$layer_tar" > "$work/listing"
entry() {  # entry <name> <type char> [<symlink target>]
  awk -v n="$1" -v t="$2" -v l="${3:-}" \
    '$6 == n && substr($1, 1, 1) == t && (l == "" || ($7 == "->" && $8 == l)) { f = 1 } END { exit !f }' \
    "$work/listing" || fail "layer: no ${3:+symlink }$1${3:+ -> $3} (type $2)"
}
for d in bin sbin lib; do entry "./$d" l "usr/$d"; done  # merged-/usr
entry ./var/run l /run
entry ./usr/bin/dash -
entry ./usr/bin/sh l dash                                 # /bin/sh, through bin -> usr/bin
entry ./usr/bin/bash -
entry ./dev/ d
! grep -qE ' \./dev/.' "$work/listing" || fail "layer: entries under /dev"
tar -xOf "$layer_tar" ./etc/passwd > "$work/passwd"
tar -xOf "$layer_tar" ./etc/group > "$work/group"
for u in root:x:0:0 daemon:x:1:1 bin:x:2:2 sys:x:3:3 nobody:x:65534:65534 _apt:x:; do
  grep -q "^$u" "$work/passwd" || fail "layer: /etc/passwd has no $u... line"
done
# Real ownership kept: /etc/shadow belongs to group shadow, not to root.
shadow_gid=$(awk -F: '$1 == "shadow" { print $3 }' "$work/group")
if [ -z "$shadow_gid" ] || [ "$shadow_gid" = 0 ]; then fail "layer: /etc/group has no shadow group"; fi
awk -v o="0/$shadow_gid" '$6 == "./etc/shadow" && $2 == o { f = 1 } END { exit !f }' "$work/listing" \
  || fail "layer: /etc/shadow is not owned by 0/$shadow_gid"

# The layout, as deploy/demo-image.sh writes it, with the layer uncompressed.
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
layer=$(sha "$layer_tar")
mv "$layer_tar" "$stage/blobs/sha256/$layer"
printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["bash"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$(dpkg --print-architecture)" "$layer" > "$work/config.json"
config=$(sha "$work/config.json")
cp "$work/config.json" "$stage/blobs/sha256/$config"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
  "$config" "$(size "$work/config.json")" "$layer" "$(size "$stage/blobs/sha256/$layer")" > "$work/manifest.json"
manifest=$(sha "$work/manifest.json")
cp "$work/manifest.json" "$stage/blobs/sha256/$manifest"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest" "$(size "$work/manifest.json")" "$ref" > "$stage/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$stage/oci-layout"
echo "$sum" > "$stage/$stamp_name"
chmod 755 "$stage"  # mktemp made it 0700

# Into place: the old layout (if any) moves aside first; <out-dir> is never partial.
if [ -e "$out" ]; then
  old=$(mktemp -u "$parent/.$(basename "$out").old-XXXXXX")
  mv -T "$out" "$old"
fi
mv -T "$stage" "$out"

secs=$((($(date +%s%N) - start) / 1000000))
printf 'debian-image: %s (manifest sha256:%s) in %s\n' "$ref" "$manifest" "$out"
printf 'debian-image: layer %s MiB uncompressed (%s entries), image %s, built in %d.%03ds\n' \
  "$(($(size "$out/blobs/sha256/$layer") / 1048576))" "$(wc -l < "$work/listing")" \
  "$(du -sh "$out" | cut -f1)" $((secs / 1000)) $((secs % 1000))

#!/usr/bin/env bash
# Builds Berth's demo image, docker.io/berth/demo:latest, as an OCI image layout
# in <out-dir> from Debian's busybox-static: no network needed. berthd imports
# it with --import=<out-dir> (deploy/quickstart.sh does).
#
#   deploy/demo-image.sh /usr/local/share/berth/demo-image
set -euo pipefail
out=${1:?usage: demo-image.sh <out-dir>}
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "demo-image: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
work=$(mktemp -d /tmp/berth-demo-XXXXXX)
trap 'rm -rf "$work"' EXIT

root=$work/rootfs
mkdir -p "$root"/{bin,etc,tmp,root,proc,sys,dev}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"

# One reproducible layer: sorted names, fixed owner and times, gzip without a name.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$work/layer.tar" .
gzip -n -9 -c "$work/layer.tar" > "$work/layer.tar.gz"
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
diff_id=$(sha "$work/layer.tar")
layer=$(sha "$work/layer.tar.gz")

rm -rf "$out"
mkdir -p "$out/blobs/sha256"
cp "$work/layer.tar.gz" "$out/blobs/sha256/$layer"
printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$(dpkg --print-architecture)" "$diff_id" > "$work/config.json"
config=$(sha "$work/config.json")
cp "$work/config.json" "$out/blobs/sha256/$config"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
  "$config" "$(size "$work/config.json")" "$layer" "$(size "$work/layer.tar.gz")" > "$work/manifest.json"
manifest=$(sha "$work/manifest.json")
cp "$work/manifest.json" "$out/blobs/sha256/$manifest"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"docker.io/berth/demo:latest"}}]}' \
  "$manifest" "$(size "$work/manifest.json")" > "$out/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"
echo "demo image docker.io/berth/demo:latest (manifest sha256:$manifest) in $out"

#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running berthd on its embedded defaults:
# installs the packages, builds, installs the binaries under /usr/local, and
# starts berthd (under systemd when it is PID 1, else in the background with its
# log in /var/log/berthd.log). Run as root from the repository.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/deploy/install-deps.sh"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$top/build" -j "$(nproc)" --target berthd berth-shim
install -m 0755 "$top/build/bin/berthd" "$top/build/bin/berth-shim" /usr/local/bin/
# Pod networking: the default bridge (berth0, 10.85.0.0/16, portmap), unless the
# machine already has a CNI config of its own.
if ! ls /etc/cni/net.d/*.conf* /etc/cni/net.d/*.json >/dev/null 2>&1; then
  install -D -m 0644 "$top/deploy/cni/10-berth-bridge.conflist" /etc/cni/net.d/10-berth-bridge.conflist
fi
# The demo image, docker.io/berth/demo:latest, from busybox-static: no network needed.
demo=/usr/local/share/berth/demo-image
"$top/deploy/demo-image.sh" "$demo"

if [ -d /run/systemd/system ]; then
  install -m 0644 "$top/deploy/systemd/berthd.service" /etc/systemd/system/berthd.service
  systemctl daemon-reload
  systemctl enable --now berthd
  systemctl restart berthd
  echo "berthd is running under systemd: journalctl -u berthd"
else
  # A berthd already serving holds /var/lib/berth/berthd.lock, which names its pid.
  lock=/var/lib/berth/berthd.lock
  if [ -s "$lock" ] && pid=$(cat "$lock") && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = berthd ]; then
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  nohup /usr/local/bin/berthd --import="$demo" >>/var/log/berthd.log 2>&1 &
  for _ in $(seq 100); do [ -S /run/berth/berth.sock ] && break; sleep 0.1; done
  echo "berthd is running (pid $!): log in /var/log/berthd.log"
fi
echo "socket: /run/berth/berth.sock   metrics: http://127.0.0.1:9464/metrics"

#!/usr/bin/env bash
# Installs the Debian 12 packages in deploy/packages.txt. Idempotent: packages
# already installed are left as they are, and apt-get update runs only when
# something is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mapfile -t pkgs < <(grep -vE '^\s*(#|$)' "$here/packages.txt")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Some packages (prometheus, docker-registry) are here for the tests, which
# start their own instances on loopback; their packages would also start a
# service. Without systemd, invoke-rc.d asks policy-rc.d: 101 = do not start.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# docker-registry is here for the tests (a registry they start on loopback
# themselves); its package would also enable a registry service on :5000.
# When we are the ones who installed it, that service is switched off again.
for svc in docker-registry prometheus; do
  if [[ " ${missing[*]} " == *" $svc "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now "$svc.service" >/dev/null 2>&1 || true
  fi
done

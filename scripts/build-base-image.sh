#!/usr/bin/env bash
# Builds a local stand-in for the `python:3.11-slim-bookworm` base image with debootstrap, for
# machines that cannot pull from a container registry. Debian bookworm's python3 is 3.11, as in
# the official image. Idempotent: an existing image is kept.
#
# Usage: scripts/build-base-image.sh [IMAGE_NAME]
set -euo pipefail

image="${1:-localhost/streamr-python-base:bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if buildah inspect --type image "$image" >/dev/null 2>&1; then
  echo "base image $image already exists"
  exit 0
fi

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$workdir/rootfs" "$mirror" >"$workdir/debootstrap.log" 2>&1 || {
  tail -n 20 "$workdir/debootstrap.log" >&2
  exit 1
}
rm -rf "$workdir"/rootfs/var/cache/apt/archives/*.deb "$workdir"/rootfs/var/lib/apt/lists/*
tar -C "$workdir/rootfs" -cf "$workdir/rootfs.tar" .

container="$(buildah from scratch)"
buildah add "$container" "$workdir/rootfs.tar" / >/dev/null
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --cmd python3 "$container"
buildah commit --quiet "$container" "$image" >/dev/null
buildah rm "$container" >/dev/null
echo "built base image $image"

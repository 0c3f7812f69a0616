#!/usr/bin/env bash
# A local stand-in for the public `python:3.11-slim` image, for hosts that reach Debian's archive
# but no container registry: Debian bookworm (its python3 is 3.11) made with debootstrap and
# `docker import`ed. Build the images on it with `--build-arg BASE=deliberate-base:bookworm`.
#   sudo docker/base-image.sh [TAG]
set -euo pipefail
TAG=${1:-deliberate-base:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "$TAG exists"; exit 0
fi
ROOTFS=$(mktemp -d)
trap 'rm -rf "$ROOTFS"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$ROOTFS" "$MIRROR"
# What the public image also provides: `python` on PATH, and no apt lists or caches.
ln -sf python3 "$ROOTFS/usr/bin/python"
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/archives/*.deb
tar -C "$ROOTFS" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$TAG"
docker image ls "$TAG"

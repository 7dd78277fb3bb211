#!/usr/bin/env bash
# Build the server images the presets in profiles/ are verified with, without a registry.
# Idempotent and cached by image tag: an existing tag is never rebuilt.
#   saferun-test/nginx:1       scripts/build-debian-images.sh (called, not duplicated)
#   saferun-test/debian-base:1 Debian bookworm minbase from debootstrap, built once and shared
#   saferun-test/redis:1       base + redis-server          (tests/data/preset-images/redis)
#   saferun-test/postgres:1    base + postgresql-15         (tests/data/preset-images/postgres)
#   saferun-test/pyweb:1       base + python3 + a WSGI app  (tests/data/preset-images/pyweb)
# The three FROM the shared base install their package with apt-get inside `docker build`
# (Debian's mirror is reachable from containers), so debootstrap runs once for all of them.
# Needs root, debootstrap and a reachable Debian mirror. Measured on the 2-core CI machine:
# about 3 minutes from nothing (nginx included), under a second when every tag exists.
set -euo pipefail
cd "$(dirname "$0")/.."
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
base=saferun-test/debian-base:1
context=tests/data/preset-images

have() { docker image inspect "$1" >/dev/null 2>&1; }

scripts/build-debian-images.sh

missing=()
for name in redis postgres pyweb; do
  have "saferun-test/$name:1" || missing+=("$name")
done
[ "${#missing[@]}" -gt 0 ] || exit 0

if ! have "$base"; then
  command -v debootstrap >/dev/null || { echo "debootstrap not found: apt-get install debootstrap" >&2; exit 1; }
  [ "$(id -u)" = 0 ] || { echo "building $base needs root (debootstrap)" >&2; exit 1; }
  root=$(mktemp -d /var/tmp/saferun-debian-base.XXXXXX)
  cleanup() {
    for m in proc sys dev/pts dev; do
      mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m" || true
    done
    rm -rf --one-file-system "$root"
  }
  trap cleanup EXIT
  debootstrap --variant=minbase bookworm "$root" "$mirror" >&2
  # Point apt inside the images at the same mirror, and keep services from starting while
  # packages install (there is no init in a container).
  echo "deb $mirror bookworm main" >"$root/etc/apt/sources.list"
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb
  tar -C "$root" --numeric-owner -c . \
    | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["bash"]' - "$base" >/dev/null
  echo "built $base"
fi

for name in "${missing[@]}"; do
  # The classic builder: the engine (20.10) has no registry to fetch BuildKit's frontend from.
  DOCKER_BUILDKIT=0 docker build --quiet --tag "saferun-test/$name:1" "$context/$name" >/dev/null
  echo "built saferun-test/$name:1"
done

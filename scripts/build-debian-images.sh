#!/usr/bin/env bash
# Build the Debian-based server images the learning-mode E2E tests use, without a registry.
# Idempotent and cached by image tag: an existing tag is never rebuilt. Takes a few minutes
# (debootstrap from Debian's mirror), so CI calls it once before the tests.
#   saferun-test/nginx:1   Debian bookworm minbase + nginx; logs to the container's
#                          stdout/stderr like the official image; CMD nginx -g 'daemon off;'
# Needs root, debootstrap (apt-get install debootstrap) and a reachable Debian mirror.
set -euo pipefail
image=saferun-test/nginx:1
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if docker image inspect "$image" >/dev/null 2>&1; then
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap not found: apt-get install debootstrap" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "building $image needs root (debootstrap, chroot)" >&2; exit 1; }
root=$(mktemp -d /var/tmp/saferun-debian.XXXXXX)
cleanup() {
  # debootstrap may leave /proc or /sys mounted inside the tree: unmount before removing.
  for m in proc sys dev/pts dev; do
    mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m" || true
  done
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror" >&2
# Keep services from starting inside the chroot during package installation.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light >&2 \
  || chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx >&2
chroot "$root" apt-get clean
rm -f "$root/usr/sbin/policy-rc.d"
rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin
# Log to the container's output (what `docker logs` and `saferun why` read).
ln -sf /dev/stdout "$root/var/log/nginx/access.log"
ln -sf /dev/stderr "$root/var/log/nginx/error.log"
tar -C "$root" --numeric-owner -c . \
  | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      -c 'EXPOSE 80' -c 'CMD ["nginx", "-g", "daemon off;"]' - "$image" >/dev/null
echo "built $image"

#!/usr/bin/env bash
# Make sure a Docker engine answers (as root on Debian: install and start one).
#   scripts/engine.sh install   apt-get install what the engine and the tests need (idempotent)
#   scripts/engine.sh up        start dockerd unless one answers; prints the pid it started
#   scripts/engine.sh down PID  stop the dockerd this script started (by its pid)
# The gVisor runtime (runsc) is registered with --network=host: its default network mode
# fails in this VM's root network namespace (see ../shared/ENGINE.md).
set -euo pipefail

PACKAGES=(docker.io runsc busybox-static apparmor gcc libc6-dev libseccomp2 iproute2 openssl debootstrap docker-compose tmux nftables)

install() {
  local missing=()
  for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

register_runsc() {
  # Make sure daemon.json registers runsc the way the tests expect, keeping other settings.
  # --oci-seccomp: without it gVisor ignores the container's seccomp profile.
  mkdir -p /etc/docker
  python3 - <<'PY'
import json, os
path = "/etc/docker/daemon.json"
wanted = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=host", "--oci-seccomp"]}
try:
    with open(path) as handle:
        config = json.load(handle)
except (FileNotFoundError, ValueError):
    config = {}
if config.get("runtimes", {}).get("runsc") != wanted:
    config.setdefault("runtimes", {})["runsc"] = wanted
    with open(path + ".tmp", "w") as handle:
        json.dump(config, handle, indent=2)
    os.replace(path + ".tmp", path)
PY
}

up() {
  if docker info >/dev/null 2>&1; then
    return 0  # a running engine is used as it is; its configuration is not touched
  fi
  command -v dockerd >/dev/null || { echo "dockerd missing: run '$0 install' as root" >&2; exit 1; }
  register_runsc
  setsid dockerd >/var/log/saferun-dockerd.log 2>&1 </dev/null &
  local pid=$!
  for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
      echo "$pid"
      return 0
    fi
    sleep 0.5
  done
  echo "dockerd did not answer within 30 s; log:" >&2
  tail -n 30 /var/log/saferun-dockerd.log >&2
  exit 1
}

down() {
  local pid=${1:-}
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.25
  done
  kill -9 "$pid" 2>/dev/null || true
}

case "${1:-}" in
  install) install ;;
  up) up ;;
  down) down "${2:-}" ;;
  *) echo "usage: $0 install|up|down PID" >&2; exit 2 ;;
esac

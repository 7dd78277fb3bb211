#!/usr/bin/env bash
# Build the images that behave like the official Docker Hub ones (issue 15), without a
# registry: each Dockerfile under tests/data/official-images/NAME/ is FROM the shared
# saferun-test/debian-base:1 (built by scripts/build-preset-images.sh, which runs first) and
# repeats the official image's steps with the server from Debian packages.
#   saferun-test/official-NAME:1   for NAME in nginx redis postgres memcached httpd mariadb
#                                  haproxy mosquitto
# Idempotent and cached by image tag: an existing tag is never rebuilt. `--force` rebuilds
# them all from scratch (no layer cache); OFFICIAL_IMAGES="redis nginx" limits the run to
# those. Builds two at a time (2 cores; apt downloads and unpacking dominate).
# Measured on the 2-core CI machine (base image present, Debian mirror reachable): 79 s for
# all eight from nothing, under a second when every tag exists.
set -euo pipefail
cd "$(dirname "$0")/.."
base=saferun-test/debian-base:1
context=tests/data/official-images
names=(${OFFICIAL_IMAGES:-nginx redis postgres memcached httpd mariadb haproxy mosquitto})
force=${1:-}
no_cache=
[ "$force" != --force ] || no_cache=1

have() { docker image inspect "$1" >/dev/null 2>&1; }

missing=()
for name in "${names[@]}"; do
  if [ "$force" = --force ] || ! have "saferun-test/official-$name:1"; then
    missing+=("$name")
  fi
done
[ "${#missing[@]}" -gt 0 ] || exit 0

have "$base" || scripts/build-preset-images.sh

logs=$(mktemp -d /tmp/saferun-official-build.XXXXXX)
trap 'rm -rf "$logs"' EXIT
build() {
  local name=$1 started=$SECONDS
  # The classic builder: the engine (20.10) has no registry to fetch BuildKit's frontend from.
  if DOCKER_BUILDKIT=0 docker build --quiet ${no_cache:+--no-cache} \
      --label io.saferun.test=official-images \
      --tag "saferun-test/official-$name:1" "$context/$name" >"$logs/$name.log" 2>&1; then
    echo "built saferun-test/official-$name:1 in $((SECONDS - started)) s"
  else
    echo "FAILED saferun-test/official-$name:1:" >&2
    tail -n 40 "$logs/$name.log" >&2
    return 1
  fi
}

failed=0
pids=()
for name in "${missing[@]}"; do
  build "$name" &
  pids+=("$!")
  if [ "${#pids[@]}" -ge 2 ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
  fi
done
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
exit "$failed"

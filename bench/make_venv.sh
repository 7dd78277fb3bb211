#!/usr/bin/env bash
# A non-editable saferun for benchmarks: the committed tree at HEAD (git archive, so other
# people's uncommitted edits stay out), installed into VENV (default /tmp/benchvenv), with
# the commit recorded in VENV/saferun-commit for bench/_machine.py to report.
#   bench/make_venv.sh [--worktree] [VENV]
# --worktree installs the working tree as it is now (uncommitted changes included, recorded
# as COMMIT+worktree) for when HEAD alone does not run.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
worktree=no
if [ "${1:-}" = --worktree ]; then worktree=yes; shift; fi
venv=${1:-/tmp/benchvenv}
commit=$(git -C "$repo" rev-parse --short HEAD)
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
if [ "$worktree" = yes ]; then
  tar -C "$repo" --exclude=.git --exclude=.venv --exclude=.mypy_cache --exclude=.ruff_cache --exclude=.pytest_cache --exclude=__pycache__ --exclude=.hypothesis -c . | tar -x -C "$src"
  commit="$commit+worktree-$(date -u +%H%MZ)"
else
  git -C "$repo" archive HEAD | tar -x -C "$src"
fi
# git keeps no empty folders; the wheel force-includes every data folder
mkdir -p "$src/profiles" "$src/seccomp" "$src/apparmor"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "$src" >"$src/pip.log" 2>&1 || {
  grep -v '^WARNING: Location' "$src/pip.log" >&2; exit 1; }
echo "$commit" >"$venv/saferun-commit"
echo "saferun $commit installed in $venv"

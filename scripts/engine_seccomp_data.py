#!/usr/bin/env python3
"""Write the facts saferun's seccomp test needs from one Docker release's default profile.

    scripts/engine_seccomp_data.py VERSION DEFAULT_JSON \
        > tests/data/engine_seccomp/docker-VERSION.toml

DEFAULT_JSON is moby's profiles/seccomp/default.json at the tag vVERSION (e.g.
`git show v20.10.24:profiles/seccomp/default.json` in a moby checkout). Only the facts are
kept: the calls an x86_64 container with no capabilities gets unconditionally (arch rules
for amd64/x32/x86 included), the ones allowed only with some arguments, and the ones a
capability brings. tests/unit/profiles/test_engine_default.py compares saferun's default
profile with them for the engine that `docker info` reports.
"""

from __future__ import annotations

import json
import sys

X86_64 = {"amd64", "x32", "x86"}


def facts(profile: dict) -> dict[str, object]:
    unconditional: set[str] = set()
    by_argument: set[str] = set()
    by_capability: dict[str, set[str]] = {}
    for rule in profile["syscalls"]:
        if rule["action"] != "SCMP_ACT_ALLOW":
            continue
        includes, excludes = rule.get("includes") or {}, rule.get("excludes") or {}
        arches = set(includes.get("arches") or [])
        if arches and not arches & X86_64:
            continue
        if set(excludes.get("arches") or []) & {"amd64"}:
            continue
        names = set(rule["names"])
        if includes.get("caps"):
            for cap in includes["caps"]:
                by_capability.setdefault(cap, set()).update(names)
        elif rule.get("args") or includes.get("minKernel"):
            by_argument |= names
        else:
            unconditional |= names
    return {"unconditional": sorted(unconditional),
            "by_argument": sorted(by_argument - unconditional),
            "by_capability": {cap: sorted(n) for cap, n in sorted(by_capability.items())}}


def main() -> None:
    version, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as handle:
        data = facts(json.load(handle))
    print(f"# Docker {version}'s default seccomp profile (moby profiles/seccomp/default.json at")
    print(f"# v{version}), reduced to the facts saferun compares with; written by")
    print("# scripts/engine_seccomp_data.py.")
    print(f'version = "{version}"')
    for key in ("unconditional", "by_argument"):
        print(f"{key} = [")
        for name in data[key]:  # type: ignore[union-attr]
            print(f'    "{name}",')
        print("]")
    print("\n[by_capability]")
    for cap, names in data["by_capability"].items():  # type: ignore[union-attr]
        print(f"{cap} = {json.dumps(names)}")


if __name__ == "__main__":
    main()

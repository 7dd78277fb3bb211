"""The one way a use case obtains a plan to start: build it, then compile its seccomp profile.

saferun.plan.planner is pure and only generates the profile; libseccomp (through a memfd)
compiles it here, so a profile that does not compile raises ProfileError and never reaches
docker, an export or a learning run. Outcomes are kept per profile text for the life of the
process: `saferun check` over a repository compiles each distinct profile once. A profile
that compiled is also remembered on disk by its content (saferun.app.plancache), so a
start whose profile compiled before skips libseccomp (and importing it) altogether.
"""

from __future__ import annotations

import os
from typing import Any

from saferun.errors import ProfileError
from saferun.model.facts import HostFacts
from saferun.model.manifest import Manifest
from saferun.plan.planner import LaunchOptions, RunPlan, build_plan

_COMPILED: dict[tuple[str, tuple[str, ...]], ProfileError | None] = {}


def forget_compiled() -> None:
    """Drop the compile outcomes kept in this process (the planning server's warm-up)."""
    _COMPILED.clear()


def checked_plan(manifest: Manifest, facts: HostFacts,
                 options: LaunchOptions | None = None) -> RunPlan:
    """build_plan, with the generated seccomp profile compiled by libseccomp."""
    plan = build_plan(manifest, facts, options or LaunchOptions())
    if plan.seccomp_profile is not None:
        check_seccomp(manifest, plan.seccomp_profile)
    return plan


def judged_plan(manifest: Manifest, facts: HostFacts,
                options: LaunchOptions | None = None) -> RunPlan:
    """The one verdict every command takes: checked_plan, then bind sources judged by where
    they really lead. `run`, `learn` and `export` all start here, so no command can emit a
    mount that `run` refuses (`check` and `score` judge the same resolved paths as findings).
    """
    plan = checked_plan(manifest, facts, options)
    check_mount_sources(manifest, plan)
    return plan


def check_mount_sources(manifest: Any, plan: RunPlan) -> None:
    """Resolve every bind source's symlinks here, at the edge, and judge the real paths.

    The plan already made relative sources absolute (against the manifest's directory) and
    the manifest refused sensitive paths as written; a harmless-looking ./data that is a
    symlink to /etc, or ../../etc, is caught only by its real path.
    """
    from saferun.inputs.dockerrun import check_resolved_mounts

    resolved = [
        (m.source, os.path.realpath(m.source)) if m.kind == "bind" else None for m in plan.mounts
    ]
    check_resolved_mounts(manifest, resolved)


def check_seccomp(manifest: Manifest, profile_json: str) -> None:
    """Resolve every name the manifest wrote and compile the profile; ProfileError if not."""
    import json

    from saferun.profiles.seccomp import expand, load_data

    section = manifest.seccomp
    written = tuple(sorted(expand([*section.allow, *section.deny], load_data().groups)))
    key = (profile_json, written)
    if key not in _COMPILED:
        from saferun.app import plancache

        on_disk = plancache.compiled_key(profile_json, written)
        if plancache.profile_compiled(on_disk):
            _COMPILED[key] = None
            return
        from saferun.profiles.seccomp_check import check_profile

        try:
            check_profile(json.loads(profile_json), written)
            _COMPILED[key] = None
            plancache.remember_compiled(on_disk)
        except ProfileError as exc:
            _COMPILED[key] = exc
    failure = _COMPILED[key]
    if failure is not None:
        raise failure

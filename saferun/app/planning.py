"""The one way a use case obtains a plan to start: build it, then compile its seccomp profile.

saferun.plan.planner is pure and only generates the profile; libseccomp (through a memfd)
compiles it here, so a profile that does not compile raises ProfileError and never reaches
docker, an export or a learning run. Outcomes are kept per profile text for the life of the
process: `saferun check` over a repository compiles each distinct profile once.
"""

from __future__ import annotations

from saferun.errors import ProfileError
from saferun.model.facts import HostFacts
from saferun.model.manifest import Manifest
from saferun.plan.planner import LaunchOptions, RunPlan, build_plan

_COMPILED: dict[tuple[str, tuple[str, ...]], ProfileError | None] = {}


def checked_plan(manifest: Manifest, facts: HostFacts,
                 options: LaunchOptions | None = None) -> RunPlan:
    """build_plan, with the generated seccomp profile compiled by libseccomp."""
    plan = build_plan(manifest, facts, options or LaunchOptions())
    if plan.seccomp_profile is not None:
        check_seccomp(manifest, plan.seccomp_profile)
    return plan


def check_seccomp(manifest: Manifest, profile_json: str) -> None:
    """Resolve every name the manifest wrote and compile the profile; ProfileError if not."""
    import json

    from saferun.profiles.seccomp import expand, load_data
    from saferun.profiles.seccomp_check import check_profile

    section = manifest.seccomp
    written = tuple(sorted(expand([*section.allow, *section.deny], load_data().groups)))
    key = (profile_json, written)
    if key not in _COMPILED:
        try:
            check_profile(json.loads(profile_json), written)
            _COMPILED[key] = None
        except ProfileError as exc:
            _COMPILED[key] = exc
    failure = _COMPILED[key]
    if failure is not None:
        raise failure

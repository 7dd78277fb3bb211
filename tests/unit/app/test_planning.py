"""checked_plan: the planner generates the seccomp profile, libseccomp compiles it here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from saferun.app import planning
from saferun.app.planning import checked_plan
from saferun.errors import ProfileError
from saferun.model.facts import HostFacts
from saferun.model.manifest import Manifest
from saferun.plan.planner import build_plan

FACTS = HostFacts(security_options=frozenset({"seccomp"}), runtimes=frozenset({"runc"}))


def manifest(seccomp: dict[str, Any]) -> Manifest:
    return Manifest.from_data({"app": {"name": "web", "image": "busybox:1"},
                                    "seccomp": seccomp})


def test_a_plan_never_gets_a_profile_that_does_not_compile() -> None:
    with pytest.raises(ProfileError, match="unknown syscall 'mountt'"):
        checked_plan(manifest({"deny": ["mountt"]}), FACTS)


def test_the_planner_alone_only_generates() -> None:
    # Pure planning does not call libseccomp: it cannot tell that 'mountt' is no syscall,
    # and only checked_plan refuses the manifest.
    plan = build_plan(manifest({"deny": ["mountt"]}), FACTS)
    assert plan.seccomp_profile is not None


def test_checked_plan_equals_the_planners_plan() -> None:
    m = manifest({})
    assert checked_plan(m, FACTS) == build_plan(m, FACTS)
    assert json.loads(checked_plan(m, FACTS).seccomp_profile or "{}")["syscalls"]


def test_outcomes_are_remembered_per_profile_text(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls: list[int] = []
    from saferun.profiles import seccomp_check

    real = seccomp_check.check_profile
    monkeypatch.setattr(seccomp_check, "check_profile",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(planning, "_COMPILED", {})
    m = manifest({"allow": ["@basic-io"]})
    checked_plan(m, FACTS)
    checked_plan(m, FACTS)
    assert len(calls) == 1
    with pytest.raises(ProfileError):
        checked_plan(manifest({"deny": ["mountt"]}), FACTS)
    with pytest.raises(ProfileError):  # the remembered failure is raised again
        checked_plan(manifest({"deny": ["mountt"]}), FACTS)
    assert len(calls) == 2


def test_a_compiled_profile_is_remembered_on_disk_by_content(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Another process (an empty _COMPILED) skips libseccomp for a profile that compiled
    # before; a failure is never remembered on disk, and SAFERUN_NO_CACHE compiles again.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls: list[int] = []
    from saferun.profiles import seccomp_check

    real = seccomp_check.check_profile
    monkeypatch.setattr(seccomp_check, "check_profile",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    m = manifest({"allow": ["@basic-io", "@timer"]})
    for _ in range(2):
        monkeypatch.setattr(planning, "_COMPILED", {})
        checked_plan(m, FACTS)
    assert len(calls) == 1
    assert len(list((tmp_path / "saferun" / "compiled").glob("*.ok"))) == 1
    for _ in range(2):
        monkeypatch.setattr(planning, "_COMPILED", {})
        with pytest.raises(ProfileError):
            checked_plan(manifest({"deny": ["mountt"]}), FACTS)
    assert len(calls) == 3
    monkeypatch.setenv("SAFERUN_NO_CACHE", "1")
    monkeypatch.setattr(planning, "_COMPILED", {})
    checked_plan(m, FACTS)
    assert len(calls) == 4

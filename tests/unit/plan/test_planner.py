from __future__ import annotations

from typing import Any

import msgspec
import pytest

from saferun.errors import RequirementUnmet
from saferun.model.facts import HostFacts
from saferun.model.manifest import Manifest
from saferun.plan.planner import LaunchOptions, build_plan

FACTS = HostFacts(security_options=frozenset({"seccomp"}), runtimes=frozenset({"runc", "runsc"}))


def manifest(**sections: Any) -> Manifest:
    document: dict[str, Any] = {"app": {"name": "web", "image": "busybox:1"}}
    for key, value in sections.items():
        document[key] = {**document.get(key, {}), **value}
    return Manifest.from_data(document)


def test_plan_holds_every_hardened_default() -> None:
    plan = build_plan(manifest(), FACTS)
    assert plan.cap_drop == ("ALL",) and plan.cap_add == ()
    assert plan.user == "65534:65534"
    assert plan.read_only
    assert plan.tmpfs[0].options == "rw,noexec,nosuid,nodev,size=67108864,mode=1777"
    assert plan.memory == plan.memory_swap == 512 << 20
    assert plan.pids_limit == 256
    assert [(u.name, u.soft, u.hard) for u in plan.ulimits] == [("nofile", 1024, 4096)]
    assert "no-new-privileges" in plan.security_opts
    assert dict(plan.log_options) == {"max-size": "10m", "max-file": "3"}
    assert plan.runtime == "runc"
    assert dict(plan.labels)["io.saferun.app"] == "web"


def test_plan_is_immutable() -> None:
    plan = build_plan(manifest(), FACTS)
    with pytest.raises(AttributeError, match="immutable"):
        plan.user = "0"  # type: ignore[misc]


def test_userns_required_refuses_without_remapping() -> None:
    with pytest.raises(RequirementUnmet, match="remap user namespaces") as info:
        build_plan(manifest(security={"userns": "required"}), FACTS)
    assert info.value.fix and "daemon.json" in info.value.fix
    remapped = msgspec.structs.replace(FACTS, security_options=frozenset({"seccomp", "userns"}))
    assert build_plan(manifest(security={"userns": "required"}), remapped)
    rootless = msgspec.structs.replace(FACTS, security_options=frozenset({"seccomp", "rootless"}))
    assert build_plan(manifest(security={"userns": "required"}), rootless)


def test_missing_runtime_refuses_with_the_daemon_json_fix() -> None:
    with pytest.raises(RequirementUnmet, match="no such runtime") as info:
        build_plan(manifest(security={"runtime": "kata"}), FACTS)
    assert "io.containerd.kata.v2" in (info.value.fix or "")
    assert build_plan(manifest(security={"runtime": "gvisor"}), FACTS).runtime == "runsc"


def test_apparmor_required_refuses_and_preferred_warns() -> None:
    with pytest.raises(RequirementUnmet, match="AppArmor"):
        build_plan(manifest(apparmor={"enforcement": "required"}), FACTS)
    plan = build_plan(manifest(), FACTS)
    assert any("AppArmor" in w for w in plan.warnings)


def test_no_seccomp_support_refuses() -> None:
    with pytest.raises(RequirementUnmet, match="seccomp"):
        build_plan(manifest(), msgspec.structs.replace(FACTS, security_options=frozenset()))


def test_unsupported_limits_refuse() -> None:
    with pytest.raises(RequirementUnmet, match="memory"):
        build_plan(manifest(), msgspec.structs.replace(FACTS, memory_limit=False))
    with pytest.raises(RequirementUnmet, match="PIDs"):
        build_plan(manifest(), msgspec.structs.replace(FACTS, pids_limit=False))
    plan = build_plan(manifest(), msgspec.structs.replace(FACTS, swap_limit=False))
    assert any("swap" in w for w in plan.warnings)


def test_exceptions_are_kept_as_a_label() -> None:
    m = manifest(
        app={"user": "0"}, exceptions={"run_as_root": "legacy image chowns /data at start"}
    )
    labels = dict(build_plan(m, FACTS).labels)
    assert "legacy image chowns" in labels["io.saferun.exceptions"]


def test_launch_options_override_command_and_resolve_relative_paths() -> None:
    m = manifest(
        app={"command": ["a"], "env_files": ["app.env"]},
        filesystem={"mounts": [{"type": "bind", "source": "./data", "target": "/data"}]},
    )
    plan = build_plan(m, FACTS, LaunchOptions(command=("b", "c"), manifest_dir="/srv/app"))
    assert plan.command == ("b", "c")
    assert plan.env_files == ("/srv/app/app.env",)
    assert plan.mounts[0].source == "/srv/app/data" and plan.mounts[0].read_only


def test_non_rotating_log_driver_gets_no_rotation_defaults() -> None:
    plan = build_plan(manifest(logging={"driver": "syslog"}), FACTS)
    assert plan.log_options == ()

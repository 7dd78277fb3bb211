from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import msgspec
import pytest

from saferun.errors import RequirementUnmet
from saferun.model.facts import HostFacts
from saferun.model.manifest import Manifest
from saferun.model.runtimes import RUNTIME_ALIASES
from saferun.plan.planner import build_plan
from saferun.plan.runtime_controls import (
    CONTROLS,
    MATRIX,
    RUNTIMES,
    Support,
    check_runtime_controls,
    gvisor_network_mode,
    row_for,
    userns_notes,
)

REPO = Path(__file__).resolve().parents[3]
FACTS = HostFacts(security_options=frozenset({"seccomp"}),
                  runtimes=frozenset({"runc", "runsc", "kata"}), kvm_available=True)
APPARMOR = msgspec.structs.replace(FACTS, security_options=frozenset({"seccomp", "apparmor"}))
REMAPPED = msgspec.structs.replace(FACTS, security_options=frozenset({"seccomp", "userns"}))


def manifest(**sections: Any) -> Manifest:
    document: dict[str, Any] = {"app": {"name": "web", "image": "busybox:1"}}
    for key, value in sections.items():
        document[key] = {**document.get(key, {}), **value}
    return Manifest.from_data(document)


def test_matrix_covers_every_runtime_and_control_with_a_note_and_source() -> None:
    assert set(MATRIX) == set(RUNTIMES)
    for runtime in RUNTIMES:
        assert set(MATRIX[runtime]) == {c.id for c in CONTROLS}
        for entry in MATRIX[runtime].values():
            assert entry.note and entry.source
    assert all(e.support is Support.ENFORCED for e in MATRIX["runc"].values())


def test_every_alias_maps_to_its_matrix_row() -> None:
    for row, aliases in RUNTIME_ALIASES.items():
        for alias in aliases:
            assert row_for(alias) == row


def test_runc_plan_has_no_runtime_warnings() -> None:
    plan = build_plan(manifest(), APPARMOR)
    assert not [w for w in plan.warnings if "security.runtime" in w]


def test_gvisor_with_required_apparmor_is_refused() -> None:
    m = manifest(security={"runtime": "gvisor"}, apparmor={"enforcement": "required"})
    with pytest.raises(RequirementUnmet, match="ignores apparmor") as info:
        build_plan(m, APPARMOR)
    assert "runc" in (info.value.fix or "")


def test_gvisor_with_preferred_apparmor_warns() -> None:
    plan = build_plan(manifest(security={"runtime": "gvisor"}), APPARMOR)
    assert any('"gvisor" ignores apparmor' in w for w in plan.warnings)
    assert any('"gvisor" only partly applies seccomp' in w for w in plan.warnings)


def test_gvisor_oci_seccomp_flag_counts_seccomp_as_enforced() -> None:
    facts = msgspec.structs.replace(FACTS, runtime_args=(("runsc", ("--oci-seccomp",)),))
    plan = build_plan(manifest(security={"runtime": "gvisor"}), facts)
    assert not any("seccomp" in w for w in plan.warnings)


def test_gvisor_network_modes() -> None:
    assert gvisor_network_mode(()) == "sandbox"
    assert gvisor_network_mode(("--network=host",)) == "host"
    assert gvisor_network_mode(("--network", "none")) == "none"
    none = msgspec.structs.replace(FACTS, runtime_args=(("runsc", ("--network=none",)),))
    with pytest.raises(RequirementUnmet, match="--network=none"):
        build_plan(manifest(security={"runtime": "gvisor"},
                            network={"ports": [{"container": 80}]}), none)
    plan = build_plan(manifest(security={"runtime": "gvisor"}), none)
    assert any("the app has no network" in w for w in plan.warnings)
    host = msgspec.structs.replace(FACTS, runtime_args=(("runsc", ("--network=host",)),))
    plan = build_plan(manifest(security={"runtime": "gvisor"}), host)
    assert any("registered with --network=host" in w for w in plan.warnings)
    sandbox = build_plan(manifest(security={"runtime": "gvisor"}), FACTS)
    assert not any("--network" in w for w in sandbox.warnings)


def test_gvisor_host_pids_limit_leaves_room_for_sandbox_threads() -> None:
    plan = build_plan(manifest(security={"runtime": "gvisor"}, resources={"pids": 64}), FACTS)
    assert plan.pids_limit == 64 * 4
    plan = build_plan(manifest(resources={"pids": 64}), FACTS)
    assert plan.pids_limit == 64


def test_kata_is_detected_under_each_registered_name() -> None:
    for name in RUNTIME_ALIASES["kata"]:
        facts = msgspec.structs.replace(FACTS, runtimes=frozenset({"runc", name}))
        assert build_plan(manifest(security={"runtime": "kata"}), facts).runtime == name


def test_kata_without_kvm_is_refused_and_unknown_kvm_warns() -> None:
    m = manifest(security={"runtime": "kata"})
    with pytest.raises(RequirementUnmet, match="/dev/kvm") as info:
        build_plan(m, msgspec.structs.replace(FACTS, kvm_available=False))
    assert "kvm_intel" in (info.value.fix or "")
    plan = build_plan(m, msgspec.structs.replace(FACTS, kvm_available=None))
    assert any("could not be checked" in w for w in plan.warnings)
    assert not any("/dev/kvm" in w for w in build_plan(m, FACTS).warnings)


def test_kata_warns_that_it_ignores_seccomp() -> None:
    plan = build_plan(manifest(security={"runtime": "kata"}), FACTS)
    assert any('"kata" ignores seccomp' in w for w in plan.warnings)


def test_kata_with_required_userns_is_refused_even_when_remapped() -> None:
    m = manifest(security={"runtime": "kata", "userns": "required"})
    with pytest.raises(RequirementUnmet, match="ignores userns"):
        build_plan(m, REMAPPED)
    assert build_plan(manifest(security={"runtime": "runc", "userns": "required"}), REMAPPED)


def test_kata_missing_is_refused_with_registration_snippet() -> None:
    facts = msgspec.structs.replace(FACTS, runtimes=frozenset({"runc"}))
    with pytest.raises(RequirementUnmet, match="no such runtime") as info:
        build_plan(manifest(security={"runtime": "kata"}), facts)
    assert '"runtimeType": "io.containerd.kata.v2"' in (info.value.fix or "")


def test_check_runtime_controls_on_unconfined_seccomp_does_not_warn_about_seccomp() -> None:
    m = manifest(security={"runtime": "kata"}, seccomp={"profile": "unconfined"},
                 exceptions={"seccomp_unconfined": "legacy app needs every syscall"})
    assert not any("seccomp" in w for w in check_runtime_controls(m, FACTS, "kata"))


def test_userns_notes_report_host_uids() -> None:
    facts = msgspec.structs.replace(REMAPPED, userns_root=(100000, 100000))
    assert userns_notes(manifest(app={"user": "1000:1000"}), facts) == (
        "user namespace remapping: container uid 0 is host uid 100000; the app's uid 1000 is "
        "host uid 101000",)
    from_subuid = msgspec.structs.replace(REMAPPED, subuid_range=(231072, 65536))
    assert "host uid 231072; the app's uid 65534 is host uid 296606" in \
        userns_notes(manifest(), from_subuid)[0]
    small = msgspec.structs.replace(REMAPPED, userns_root=(100000, 100000),
                                    subuid_range=(100000, 1000))
    assert "cannot start" in userns_notes(manifest(), small)[0]
    assert userns_notes(manifest(), FACTS) == ()
    assert userns_notes(manifest(security={"userns": "off"}), facts) == ()
    plan = build_plan(manifest(), facts)
    assert plan.notes and "host uid 100000" in plan.notes[0]


def test_userns_host_is_never_rendered() -> None:
    from saferun.render.argv import render_argv
    from saferun.render.engine_api import render_create_body

    for mode in ("required", "preferred", "off"):
        plan = build_plan(manifest(security={"userns": mode}), REMAPPED)
        argv = render_argv(plan, seccomp_path="/p.json" if plan.seccomp_profile else None)
        assert not any(a.startswith("--userns") for a in argv)
        assert render_create_body(plan).get("HostConfig", {}).get("UsernsMode", "") == ""


def test_runtimes_doc_is_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location("gen_runtimes_doc",
                                                  REPO / "scripts" / "gen-runtimes-doc.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    current = (REPO / "docs" / "runtimes.md").read_text(encoding="utf-8")
    assert current == module.render(), "docs/runtimes.md is stale: run scripts/gen-runtimes-doc.py"

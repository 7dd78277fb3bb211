"""saferun.app.run's issue-15 steps: warnings and [policy] refuse, pinning a floating
image, judging shared containers, reading label files (the engine is a fake here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from saferun.app.run import (
    check_shared_containers,
    judge_warnings,
    pin_floating_image,
    read_label_files,
)
from saferun.errors import ManifestError, Refused
from saferun.inputs.dockerargs import split_command_line
from saferun.inputs.dockerrun import (
    base_for_image,
    build_manifest,
    from_docker_run,
    merge_document,
    parse_run_args,
)
from saferun.model.facts import HostFacts
from saferun.plan.planner import build_plan

FACTS = HostFacts(security_options=frozenset({"seccomp"}))
ID = "sha256:" + "ab" * 32


def manifest(line: str) -> Any:
    parsed = parse_run_args(split_command_line(f"docker run {line}"))
    dropin = from_docker_run(parsed, cwd="/srv/app")
    return build_manifest(merge_document(base_for_image(parsed.image or "img:1", None), dropin))


class FakeSession:
    def __init__(self, images: dict[str, Any] | None = None,
                 containers: dict[str, Any] | None = None) -> None:
        self.images, self.containers = images or {}, containers or {}

    def image_inspect(self, ref: str) -> Any:
        return self.images.get(ref)

    def container_inspect(self, name: str) -> Any:
        return self.containers.get(name)


def test_warnings_warn_and_a_policy_refuses(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    m = manifest("--restart always nginx")
    warned = judge_warnings(m, str(tmp_path))
    assert any("restart-always" in w for w in warned)
    assert any("image-tag-latest" in w for w in warned)
    team = tmp_path / "team.toml"
    team.write_text('[policy]\nrefuse = ["restart-always"]\n')
    monkeypatch.setenv("SAFERUN_POLICY", str(team))
    with pytest.raises(Refused) as info:
        judge_warnings(m, str(tmp_path))
    assert list(info.value.rule_ids) == ["restart-always"]
    allowed = manifest("--allow restart-always='comes back after host reboot' "
                       "--restart always nginx:1.27")
    assert judge_warnings(allowed, str(tmp_path)) == ()
    bad = tmp_path / "bad.toml"
    bad.write_text('[policy]\nrefuse = ["privileged"]\n')
    monkeypatch.setenv("SAFERUN_POLICY", str(bad))
    with pytest.raises(ManifestError, match="not a warning"):
        judge_warnings(m, str(tmp_path))


def test_a_floating_image_runs_by_its_local_id() -> None:
    plan = build_plan(manifest("nginx"), FACTS)
    session = FakeSession({"nginx": {"Id": ID, "RepoDigests": ["nginx@sha256:" + "cd" * 32]}})
    pinned = pin_floating_image(plan, session)
    labels = dict(pinned.labels)
    assert pinned.image == ID
    assert labels["io.saferun.image-digest"] == "nginx@sha256:" + "cd" * 32
    assert labels["io.saferun.image-reference"] == "nginx"
    assert pin_floating_image(plan, FakeSession()) == plan  # not local: docker pulls it
    tagged = build_plan(manifest("nginx:1.27"), FACTS)
    assert pin_floating_image(tagged, session) == tagged


def test_shared_containers_are_read_through_the_engine() -> None:
    m = manifest("--volumes-from data img:1")
    with pytest.raises(ManifestError, match="does not exist"):
        check_shared_containers(m, FakeSession())
    etc = {"Mounts": [{"Type": "bind", "Source": "/etc", "RW": False, "Destination": "/e"}]}
    with pytest.raises(Refused) as info:
        check_shared_containers(m, FakeSession(containers={"data": etc}))
    assert list(info.value.rule_ids) == ["sensitive-host-mount"]
    check_shared_containers(m, FakeSession(containers={"data": {"Mounts": []}}))


def test_label_files_may_not_set_saferun_labels(tmp_path: Path) -> None:
    good = tmp_path / "labels"
    good.write_text("# team\na=1\nb=two\n")
    assert read_label_files((str(good),)) == (("a", "1"), ("b", "two"))
    bad = tmp_path / "bad"
    bad.write_text('io.saferun.exceptions={"privileged": "x"}\n')
    with pytest.raises(ManifestError, match="reserved"):
        read_label_files((str(bad),))

"""Issue 19, case 3: `seccomp.mode = "log"` denies nothing, so it is judged as unconfined."""

from __future__ import annotations

import json

import pytest

from saferun.app.check import manifest_spec
from saferun.model.manifest import Manifest
from saferun.model.strict import ValidationError
from saferun.policy.report import judge
from saferun.policy.spec import denies_nothing

BASE = {"app": {"name": "hostile-log", "image": "nginx:1.25"}, "seccomp": {"mode": "log"}}
REASON = "measuring the app's calls for a week"


def test_log_mode_needs_a_reason() -> None:
    with pytest.raises(ValidationError, match="seccomp.mode.*seccomp-unconfined"):
        Manifest.from_data(BASE)


def test_log_mode_with_a_reason_scores_as_unconfined() -> None:
    manifest = Manifest.from_data({**BASE, "allow": {"seccomp-unconfined": REASON}})
    spec = manifest_spec(manifest, ".")
    assert spec.seccomp == "unconfined"
    findings, _results, score = judge(spec)
    assert "seccomp-unconfined" in {f.rule for f in findings}
    assert any(item.rule == "seccomp-unconfined" and item.badness == 1.0 for item in score.items)


def test_denies_nothing() -> None:
    allow_only = {"defaultAction": "SCMP_ACT_LOG",
                  "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}
    assert denies_nothing(json.dumps(allow_only))
    assert denies_nothing(json.dumps({"defaultAction": "SCMP_ACT_ALLOW"}))
    denying = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["ptrace"], "action": "SCMP_ACT_ERRNO"}]}
    assert not denies_nothing(json.dumps(denying))
    assert not denies_nothing(json.dumps({"defaultAction": "SCMP_ACT_ERRNO"}))
    assert not denies_nothing("not json")


@pytest.mark.parametrize(("profile", "unconfined"), [
    ({"defaultAction": "SCMP_ACT_LOG"}, True),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_LOG"}]}, True),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}, False),
])
def test_a_docker_run_line_with_a_profile_file_that_denies_nothing(
        tmp_path: object, profile: dict[str, object], unconfined: bool) -> None:
    """Gap 8 of the audit: `check --docker-run "... --security-opt seccomp=FILE"` judged any
    file "custom"; the docker CLI sends the file's JSON, so check reads it and a profile
    that denies nothing is seccomp-unconfined (as from docker inspect)."""
    from pathlib import Path

    from saferun.app.check import check_docker_run

    Path(str(tmp_path), "p.json").write_text(json.dumps(profile))
    for opt in ("seccomp=p.json", f"seccomp:{tmp_path}/p.json"):
        report = check_docker_run(f"docker run --security-opt {opt} nginx:1.25",
                                  cwd=str(tmp_path))
        rules = {f.rule for f in report.findings}
        assert ("seccomp-unconfined" in rules) is unconfined, (opt, report)
        assert any("denies nothing" in n for n in report.notes) is unconfined
    missing = check_docker_run("docker run --security-opt seccomp=nope.json nginx:1.25",
                               cwd=str(tmp_path))
    assert any("cannot read seccomp profile" in n for n in missing.notes), missing.notes

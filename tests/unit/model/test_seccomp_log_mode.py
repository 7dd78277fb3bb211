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

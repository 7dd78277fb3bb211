"""app.image: `saferun image check` resolves the team policy file, then checks the image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from saferun.app import image
from saferun.policy.report import TargetReport


def test_policy_path_defaults_to_the_environment(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    def fake_check(reference: str, **kwargs: Any) -> TargetReport:
        seen.append({"reference": reference, **kwargs})
        return TargetReport(reference, "image")

    monkeypatch.setattr(image, "check_image", fake_check)
    team = tmp_path / "team.toml"
    monkeypatch.setenv("SAFERUN_POLICY", str(team))
    assert image.check("nginx:1.27").target == "nginx:1.27"
    explicit = tmp_path / "other.toml"
    image.check("nginx:1.27", manifest_path=tmp_path / "m.toml", policy_path=explicit)
    assert seen[0]["policy_path"] == team and seen[0]["manifest_path"] is None
    assert seen[1]["policy_path"] == explicit and seen[1]["manifest_path"] == tmp_path / "m.toml"

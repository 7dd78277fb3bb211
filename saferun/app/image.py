"""`saferun image check`: the image policy in force (manifest + team file), applied to an image."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from saferun.app.image_policy import check_image, team_policy_path
from saferun.policy.report import TargetReport


def check(reference: str, *, manifest_path: Path | None = None,
          policy_path: Path | None = None,
          on_layer: Callable[[int, int], None] | None = None) -> TargetReport:
    """Judge REFERENCE in the local engine; the team policy is --policy, else $SAFERUN_POLICY.

    `on_layer(done, total)` is called as each layer has streamed by (for progress)."""
    team = team_policy_path(str(policy_path) if policy_path else None)
    return check_image(reference, manifest_path=manifest_path, policy_path=team,
                       on_layer=on_layer)

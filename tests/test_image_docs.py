"""docs/images.md lists every image rule as `saferun explain` prints it, and is current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from saferun.cli import cli
from saferun.policy.image_rules import IMAGE_RULES

REPO = Path(__file__).resolve().parents[1]


def test_image_doc_is_current() -> None:
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_image_doc.py"),
                             "--check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_image_doc_matches_explain() -> None:
    page = (REPO / "docs" / "images.md").read_text()
    listing = CliRunner().invoke(cli, ["explain"]).output
    for rule in IMAGE_RULES.values():
        printed = CliRunner().invoke(cli, ["explain", rule.id]).output
        assert f"### {rule.id}\n\n```\n{printed}```" in page
        assert rule.id in listing

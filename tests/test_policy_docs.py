"""docs/policy.md lists every rule as `saferun explain` prints it, and is current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from saferun.cli import cli
from saferun.policy.rules import RULES_TABLE

REPO = Path(__file__).resolve().parents[1]


def test_policy_doc_is_current() -> None:
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_policy_doc.py"),
                             "--check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_policy_doc_matches_explain() -> None:
    page = (REPO / "docs" / "policy.md").read_text()
    for rule in RULES_TABLE:
        printed = CliRunner().invoke(cli, ["explain", rule.id]).output
        assert f"### {rule.id}\n\n```\n{printed}```" in page


def test_pre_commit_hook_runs_check() -> None:
    text = (REPO / ".pre-commit-hooks.yaml").read_text()
    assert "id: saferun-check" in text and "entry: saferun check" in text

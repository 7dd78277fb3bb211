"""Generated documentation is never out of date, and the README keeps its Quickstart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_generated_docs_are_current() -> None:
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_docs.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_readme_quickstart_commands_exist() -> None:
    readme = (REPO / "README.md").read_text()
    assert "## Quickstart" in readme
    assert "scripts/quickstart" in readme and "scripts/test" in readme
    ci = (REPO / ".ci" / "run").read_text()
    assert "scripts/test" in ci

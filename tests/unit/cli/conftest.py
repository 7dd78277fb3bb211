"""Fixtures shared by the CLI tests."""

from __future__ import annotations

import pytest
from click.testing import CliRunner


@pytest.fixture
def runner() -> CliRunner:
    """Invokes `saferun` in-process; stdout and stderr are kept apart (click 8.2+)."""
    return CliRunner()

"""Rules are refused before anything starts when they could not be installed (fail closed)."""

from __future__ import annotations

import pytest

from saferun.engine import netns
from saferun.errors import RequirementUnmet


@pytest.fixture
def capable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Root with nft and nsenter on PATH, whoever runs the tests."""
    monkeypatch.setattr(netns.shutil, "which", lambda tool: f"/usr/sbin/{tool}")
    monkeypatch.setattr(netns.os, "geteuid", lambda: 0)


def test_root_with_the_tools_and_a_rootful_engine_may(capable: None) -> None:
    netns.check_rules_possible(rootless=False)


def test_a_rootless_engine_refuses(capable: None) -> None:
    with pytest.raises(RequirementUnmet, match="rootless") as refused:
        netns.check_rules_possible(rootless=True)
    assert refused.value.run_exit_code == 125  # what `saferun up` exits with
    assert "rootful Docker engine" in refused.value.render()


def test_not_root_refuses(capable: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    with pytest.raises(RequirementUnmet, match="needs root"):
        netns.check_rules_possible(rootless=False)


def test_missing_tools_are_named(capable: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.shutil, "which", lambda tool: None if tool == "nft" else tool)
    with pytest.raises(RequirementUnmet, match="need nft, which is not installed"):
        netns.check_rules_possible(rootless=False)

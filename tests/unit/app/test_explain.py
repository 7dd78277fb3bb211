"""app.explain: a rule's text, or a UsageError with a close match."""

from __future__ import annotations

import pytest

from saferun.app.explain import explain, rule_list
from saferun.errors import UsageError


def test_known_rule_and_list() -> None:
    assert "privileged" in [rule.id for rule in rule_list()]
    assert explain("privileged").startswith("privileged: ")


def test_unknown_rule_suggests_a_close_one() -> None:
    with pytest.raises(UsageError, match="did you mean host-network") as info:
        explain("host-netwrok")
    assert info.value.exit_code == 2 and "`saferun explain` lists them" in info.value.message

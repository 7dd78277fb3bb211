"""One severity scale for container, image and host (doctor) checks."""

from __future__ import annotations

import pytest

from saferun.policy import host_checks
from saferun.policy.severity import Severity


def test_labels_are_the_fail_on_choices_lowest_first() -> None:
    assert Severity.labels() == ["info", "low", "medium", "high", "critical"]
    assert [Severity.parse(label) for label in Severity.labels()] == list(Severity)
    assert Severity.parse(" HIGH ") is Severity.HIGH


def test_ordering_and_unknown_text() -> None:
    assert Severity.INFO < Severity.LOW < Severity.MEDIUM < Severity.HIGH < Severity.CRITICAL
    with pytest.raises(ValueError, match="unknown severity 'urgent'"):
        Severity.parse("urgent")


def test_doctor_checks_use_the_same_scale() -> None:
    assert host_checks.Severity is Severity
    assert all(isinstance(check.severity, Severity) for check in host_checks.CHECKS)

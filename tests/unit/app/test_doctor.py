"""app.doctor: the audit is gathered once at the edge and judged by the pure checks."""

from __future__ import annotations

import pytest

from saferun.app.doctor import audit_host
from saferun.engine import host
from saferun.policy.severity import Severity
from tests.unit.policy.test_host_checks import FAILING, GOOD


def test_audit_host_judges_the_gathered_audit(monkeypatch: pytest.MonkeyPatch) -> None:
    weak = FAILING["userns-remap"](GOOD)  # a medium finding
    monkeypatch.setattr(host, "gather_audit", lambda: weak)
    report = audit_host()
    assert report.audit is weak
    assert [f.check.id for f in report.findings if f.failed] == ["userns-remap"]
    assert report.exit_code(Severity.MEDIUM) == 1
    assert report.exit_code(Severity.HIGH) == 0


def test_a_clean_host_exits_0(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host, "gather_audit", lambda: GOOD)
    assert audit_host().exit_code(Severity.INFO) == 0

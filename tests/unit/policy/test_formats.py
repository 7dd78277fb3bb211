"""One OutputFormat enum; every report kind maps every member to a formatter or refuses it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from saferun.app.check import check_docker_run
from saferun.errors import UsageError
from saferun.policy.formats import UNSUPPORTED, FormatterTable, OutputFormat
from saferun.policy.host_checks import DOCTOR_FORMATS, run_checks
from saferun.policy.output import CHECK_FORMATS, SCORE_FORMATS
from tests.unit.policy.test_host_checks import GOOD

REPORTS = [check_docker_run("docker run --privileged -p 80:80 nginx")]

# Each report kind, what it must support, and how to call one of its formatters.
KINDS: dict[str, tuple[FormatterTable[Callable[..., str]], set[OutputFormat],
                       Callable[[Callable[..., str]], str]]] = {
    "check": (CHECK_FORMATS, {OutputFormat.TABLE, OutputFormat.JSON, OutputFormat.SARIF},
              lambda f: f(REPORTS)),
    "score": (SCORE_FORMATS, {OutputFormat.TABLE, OutputFormat.JSON}, lambda f: f(REPORTS)),
    "doctor": (DOCTOR_FORMATS, {OutputFormat.TABLE, OutputFormat.JSON},
               lambda f: f(run_checks(GOOD), GOOD)),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("member", list(OutputFormat))
def test_every_member_renders_or_is_refused(kind: str, member: OutputFormat) -> None:
    table, supported, call = KINDS[kind]
    assert set(table.formatters) == set(OutputFormat)  # every member has an explicit entry
    if member in supported:
        assert member in table.supported and member.value in table.choices()
        assert call(table.formatter(member)).strip()
        assert table.formatter(member.value) is table.formatter(member)  # --format's text
    else:
        assert table.formatters[member] is UNSUPPORTED and member.value not in table.choices()
        with pytest.raises(UsageError, match=f"has no {member.value} output") as info:
            table.formatter(member)
        assert info.value.exit_code == 2


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_choices_follow_the_enum_order(kind: str) -> None:
    table, supported, _ = KINDS[kind]
    assert table.choices() == [m.value for m in OutputFormat if m in supported]


def test_a_table_missing_a_member_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="no entry for format"):
        FormatterTable("the test report", {OutputFormat.TABLE: lambda: ""})


def test_an_unknown_format_name_is_not_a_member() -> None:
    with pytest.raises(ValueError):
        CHECK_FORMATS.formatter("yaml")

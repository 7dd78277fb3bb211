"""Output formats: one enum for every report saferun prints, and a formatter table per report.

Each kind of report (check findings, the exposure score, the doctor's host audit) lists
every OutputFormat member explicitly: a formatter, or UNSUPPORTED. A kind's formats are
therefore data (`supported`, the CLI's --format choices) and a member it does not support
is refused with a UsageError, never passed on to another formatter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from saferun.errors import UsageError


class OutputFormat(StrEnum):
    TABLE = "table"  # for people (the default)
    JSON = "json"  # for scripts; each document carries a schema version
    SARIF = "sarif"  # SARIF 2.1.0, for code-scanning tools


UNSUPPORTED = None  # a report kind's entry for a format it has no formatter for

F = TypeVar("F", bound=Callable[..., str])


@dataclass(frozen=True)
class FormatterTable(Generic[F]):
    """The formatters of one report kind: every OutputFormat member, mapped or UNSUPPORTED."""

    kind: str  # the command whose report this is, for the refusal message
    formatters: Mapping[OutputFormat, F | None]

    def __post_init__(self) -> None:
        missing = [f.value for f in OutputFormat if f not in self.formatters]
        if missing:
            raise ValueError(f"{self.kind}: no entry for format(s) {', '.join(missing)} "
                             "(map each to a formatter or to UNSUPPORTED)")

    @property
    def supported(self) -> tuple[OutputFormat, ...]:
        return tuple(f for f in OutputFormat if self.formatters[f] is not None)

    def choices(self) -> list[str]:
        """The --format choices, in the enum's order."""
        return [f.value for f in self.supported]

    def formatter(self, output_format: OutputFormat | str) -> F:
        fmt = OutputFormat(output_format)
        formatter = self.formatters[fmt]
        if formatter is None:
            raise UsageError(f"{self.kind} has no {fmt.value} output",
                             fix=f"use --format {' or '.join(self.choices())}")
        return formatter

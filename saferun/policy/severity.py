"""Severity: one scale for every finding saferun reports (container, image and host rules).

Ordered (an IntEnum: `severity >= fail_on`); printed and parsed as the lower-case label
("medium"), which is what --fail-on takes and what the JSON reports carry.
"""

from __future__ import annotations

from enum import IntEnum


class Severity(IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def labels(cls) -> list[str]:
        """Every label, lowest first: the --fail-on choices."""
        return [s.label for s in cls]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(cls.labels())
            raise ValueError(f"unknown severity '{text}' (one of: {names})") from None

"""Shared by the doc generators: replace the generated part of a page between two markers,
or (with --check) report that the committed page is out of date."""

from __future__ import annotations

import sys
from pathlib import Path


def splice(page: Path, current: str, begin: str, end: str, section: str) -> str:
    head, found, rest = current.partition(begin)
    if not found:
        raise SystemExit(f"{page}: marker missing: {begin}")
    _, found, tail = rest.partition(end)
    if not found:
        raise SystemExit(f"{page}: marker missing: {end}")
    return f"{head}{begin}\n{section}\n{end}{tail}"


def write_or_check(page: Path, begin: str, end: str, section: str, script: str) -> int:
    current = page.read_text()
    wanted = splice(page, current, begin, end, section)
    if "--check" in sys.argv[1:]:
        if wanted != current:
            print(f"out of date: {page} (run python {script})", file=sys.stderr)
            return 1
        return 0
    page.write_text(wanted)
    return 0

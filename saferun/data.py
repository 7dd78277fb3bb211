"""Locate the data folders (profiles/, seccomp/, apparmor/) in a checkout or an install."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
DATA_KINDS = ("profiles", "seccomp", "apparmor")


@cache  # `saferun check` asks once per manifest; a missing folder raises (not cached)
def data_dir(kind: str) -> Path:
    """Installed wheels carry the folders in saferun/_data; a checkout has them at the top."""
    if kind not in DATA_KINDS:
        raise ValueError(f"unknown data kind {kind!r}")
    for candidate in (_PACKAGE / "_data" / kind, _PACKAGE.parent / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"saferun data folder {kind!r} is missing from this installation")

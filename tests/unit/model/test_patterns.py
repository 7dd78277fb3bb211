"""Every pattern the models check is judged in linear time.

msgspec checks patterns with Python's re, which backtracks: a pattern that can match a
string in many ways takes exponential time on a long input that fails at its end (the
container-path pattern once took 70 s for 23 characters). Hostile manifests must not be
able to stall `check` or `run`, so every pattern is tried on long inputs built to provoke
backtracking, and the old container-path pattern's verdicts are kept exactly.
"""

from __future__ import annotations

import itertools
import re
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from saferun.model.manifest import CONTAINER_PATH_PATTERN, Manifest
from saferun.model.stack import StackFile
from saferun.model.strict import json_schema
from saferun.model.user_config import UserConfig


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield node["pattern"]
        for child in node.values():
            yield from _patterns(child)
    elif isinstance(node, list):
        for child in node:
            yield from _patterns(child)


PATTERNS = sorted({p for model in (Manifest, StackFile, UserConfig)
                   for p in _patterns(json_schema(model))})
PIECES = ["a", "A", "0", ".", "-", "_", "/", ":", "@", "+", "=", ",", "*", " ", "a.", "a/",
          "./", "a-", "0.", "a:", "a=", "ab", "/a"]


def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern)


def test_the_models_have_patterns_to_judge() -> None:
    assert len(PATTERNS) >= 20 and CONTAINER_PATH_PATTERN in PATTERNS


class _TooSlow(Exception):
    pass


def _interrupt(_signum: int, _frame: Any) -> None:
    raise _TooSlow  # re's matching loop checks for signals, so this stops a runaway search


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_long_hostile_value_is_judged_at_once(pattern: str) -> None:
    compiled = _compiled(pattern)
    inputs = [prefix + piece * (600 // len(piece)) + tail for prefix, piece, tail
              in itertools.product(("", "/", "a"), PIECES, ("{", "\x01", ".."))]
    # ~200 searches of ~600 characters: milliseconds when linear, ages when exponential.
    previous = signal.signal(signal.SIGALRM, _interrupt)
    signal.setitimer(signal.ITIMER_REAL, 5.0)
    try:
        for text in inputs:
            compiled.search(text)
    except _TooSlow:
        pytest.fail(f"pattern {pattern!r} backtracks: not judged within 5 s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


OLD_CONTAINER_PATH = r"^/(?:(?:[A-Za-z0-9_.@+-]*[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*|\.{3,})/?)*\Z"


def test_the_container_path_pattern_keeps_its_old_verdicts() -> None:
    old, new = re.compile(OLD_CONTAINER_PATH), _compiled(CONTAINER_PATH_PATTERN)
    for length in range(9):
        for letters in itertools.product("/.a,", repeat=length):
            text = "".join(letters)
            assert bool(old.search(text)) == bool(new.search(text)), text
    for text in ("/", "/data", "/var/lib/x/", "/a/.../b", "/.hidden", "/a..", "/a@b+c"):
        assert new.search(text), text
    for text in ("", "rel", "/a/../b", "/./a", "/a//b", "/..", "/a,b", "/a:b", "/a\n"):
        assert not new.search(text), text

"""Issue 19, case 12: a learning container whose learner and watchdog both died is an
orphan, removed by the next learner (saferun.engine.reaper.sweep_orphans)."""

from __future__ import annotations

from pathlib import Path

from saferun.engine.reaper import NAME_PREFIX, _live_tokens, orphans


def test_orphans_are_the_containers_no_live_watchdog_guards() -> None:
    names = [f"{NAME_PREFIX}aaaa11112222-1", f"{NAME_PREFIX}aaaa11112222-2",
             f"{NAME_PREFIX}bbbb33334444-1", "saferun-learnt-x-1", "web", f"{NAME_PREFIX}-1"]
    assert orphans(names, {"bbbb33334444"}) == names[:2]
    assert orphans(names, {"aaaa11112222", "bbbb33334444"}) == []


def test_live_tokens_read_the_watchdogs_command_lines(tmp_path: Path) -> None:
    for pid, words in (("10", [b"python3", b"-c", b"...", b"docker", b"saferun-learn-cafe01-"]),
                       ("11", [b"sleep", b"saferun-learn-notawatchdog"]), ("self", [b"x"])):
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "cmdline").write_bytes(b"\0".join(words) + b"\0")
    (tmp_path / "12").mkdir()  # a process gone meanwhile: no cmdline
    assert _live_tokens(str(tmp_path)) == {"cafe01"}

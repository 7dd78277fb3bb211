"""app.daemon_config: read and merge (nothing written), then write with a backup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from saferun.app.daemon_config import merged_config, write_config
from saferun.errors import SaferunError, UsageError


def test_without_merge_prints_the_hardened_file() -> None:
    config = merged_config(None, ())
    assert json.loads(config.text)["icc"] is False
    assert config.changes and config.path is None and config.old_text is None


def test_write_needs_merge() -> None:
    with pytest.raises(UsageError, match="--write needs --merge"):
        merged_config(None, (), write=True)


def test_merge_reads_but_does_not_write(tmp_path: Path) -> None:
    target = tmp_path / "daemon.json"
    target.write_text('{"debug": true}')
    config = merged_config(target, ("kata",))
    assert json.loads(config.text)["debug"] is True and config.old_text == '{"debug": true}'
    assert target.read_text() == '{"debug": true}'


def test_missing_file_is_a_new_one_and_unreadable_json_an_error(tmp_path: Path) -> None:
    assert merged_config(tmp_path / "none.json", ()).old_text is None
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(SaferunError, match="not valid JSON"):
        merged_config(broken, ())


def test_write_keeps_a_backup_and_skips_a_hardened_file(tmp_path: Path) -> None:
    target = tmp_path / "docker" / "daemon.json"
    first = write_config(merged_config(target, ()))
    assert first is not None and first.path == target and first.backup is None
    assert write_config(merged_config(target, ())) is None  # already hardened
    before = target.read_text()
    again = write_config(merged_config(target, ("gvisor",)))
    assert again is not None and again.backup is not None
    assert again.backup.read_text() == before
    assert "runsc" in json.loads(target.read_text())["runtimes"]

"""`saferun daemon-config`: read a daemon.json, merge the hardened options in, write it back.

The merge is pure (saferun.policy.daemon_config); this module reads the --merge file and,
with --write, keeps a backup of it and replaces it atomically. Two steps, so the CLI can
list the changes before anything is written (and before a write error).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from saferun.errors import SaferunError, UsageError
from saferun.policy.daemon_config import Change, merge_config, parse_config, render


@dataclass(frozen=True)
class MergedConfig:
    text: str  # the daemon.json to print or write
    changes: list[Change]
    path: Path | None  # the --merge file
    old_text: str | None  # its content; None when it does not exist (or no --merge)


@dataclass(frozen=True)
class Written:
    path: Path
    backup: Path | None  # where the previous file was kept; None when there was none


def merged_config(merge_path: Path | None, runtimes: tuple[str, ...], *,
                  write: bool = False) -> MergedConfig:
    """The hardened daemon.json, merged into `merge_path` when given (read, never written)."""
    if write and merge_path is None:
        raise UsageError("--write needs --merge FILE: saferun only writes a file it has "
                         "read and merged", fix="saferun daemon-config --merge "
                         "/etc/docker/daemon.json --write")
    old_text = _read(merge_path) if merge_path else None
    existing = parse_config(old_text or "", str(merge_path)) if merge_path else {}
    merged, changes = merge_config(existing, runtimes)
    return MergedConfig(render(merged), changes, merge_path, old_text)


def write_config(config: MergedConfig) -> Written | None:
    """Back up the --merge file, then replace it atomically; None when nothing changes."""
    if config.path is None:
        raise UsageError("--write needs --merge FILE")
    if not config.changes:
        return None
    return Written(config.path, _write(config.path, config.old_text, config.text))


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


def _write(path: Path, old_text: str | None, new_text: str) -> Path | None:
    """Back up the old file, then replace it atomically. Returns the backup path."""
    from saferun.engine.files import write_atomic

    backup = None
    try:
        if old_text is not None:
            mode = os.stat(path).st_mode & 0o777
            backup = path.with_name(f"{path.name}.saferun-backup-{time.strftime('%Y%m%dT%H%M%S')}")
            write_atomic(backup, old_text.encode(), mode=mode)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, new_text.encode(), mode=0o644)
    except OSError as exc:
        raise SaferunError(f"cannot write {path}: {exc.strerror}",
                           fix="run as root, or write to a copy with --merge COPY --write"
                           ) from None
    return backup

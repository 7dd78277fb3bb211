"""`saferun daemon-config`."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("daemon-config")
@click.option("--merge", "merge_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Merge into this daemon.json (e.g. /etc/docker/daemon.json; may not exist yet).")
@click.option("--write", is_flag=True,
              help="Write the result to the --merge file (atomically, after a backup).")
@click.option("--runtime", "runtimes", multiple=True, type=click.Choice(["gvisor", "kata"]),
              help="Also register this sandboxed runtime (repeatable).")
def daemon_config(merge_path: Path | None, write: bool, runtimes: tuple[str, ...]) -> None:
    """Print a hardened daemon.json; with --merge, merged into an existing one.

    Nothing is written without --write; then the old file is kept as
    FILE.saferun-backup-TIMESTAMP. Restart dockerd afterwards (userns-remap needs a
    restart, not a reload). Changes are listed on stderr.
    """
    from saferun.cli.common import exit_on_error
    from saferun.errors import UsageError
    from saferun.policy.daemon_config import merge_config, parse_config, render

    with exit_on_error():
        if write and merge_path is None:
            raise UsageError("--write needs --merge FILE: saferun only writes a file it has "
                             "read and merged", fix="saferun daemon-config --merge "
                             "/etc/docker/daemon.json --write")
        existing_text = _read(merge_path) if merge_path else None
        existing = parse_config(existing_text or "", str(merge_path)) if merge_path else {}
        merged, changes = merge_config(existing, runtimes)
        text = render(merged)
        for change in changes:
            click.echo(f"saferun: change: {change.describe()}", err=True)
        if not write:
            click.echo(text, nl=False)
            return
        assert merge_path is not None
        if not changes:
            click.echo(f"saferun: {merge_path} is already hardened; nothing written", err=True)
            return
        backup = _write(merge_path, existing_text, text)
        if backup:
            click.echo(f"saferun: previous file kept as {backup}", err=True)
        click.echo(f"saferun: wrote {merge_path}; restart dockerd to apply it", err=True)


def _read(path: Path) -> str | None:
    from saferun.errors import UsageError

    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


def _write(path: Path, old_text: str | None, new_text: str) -> Path | None:
    """Back up the old file, then replace it atomically. Returns the backup path."""
    import os
    import time

    from saferun.engine.files import write_atomic
    from saferun.errors import SaferunError

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

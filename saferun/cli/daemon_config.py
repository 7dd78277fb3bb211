"""`saferun daemon-config`."""

from __future__ import annotations

from pathlib import Path

import click

from saferun.cli.common import exit_on_error


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
    from saferun.app.daemon_config import merged_config, write_config

    with exit_on_error():
        config = merged_config(merge_path, runtimes, write=write)
        for change in config.changes:
            click.echo(f"saferun: change: {change.describe()}", err=True)
        if not write:
            click.echo(config.text, nl=False)
            return
        written = write_config(config)
    if written is None:
        click.echo(f"saferun: {merge_path} is already hardened; nothing written", err=True)
        return
    if written.backup:
        click.echo(f"saferun: previous file kept as {written.backup}", err=True)
    click.echo(f"saferun: wrote {written.path}; restart dockerd to apply it", err=True)

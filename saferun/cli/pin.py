"""`saferun pin MANIFEST`."""

from __future__ import annotations

from pathlib import Path

import click

from saferun.cli.common import exit_on_error
from saferun.cli.completion import complete_manifests


@click.command()
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False),
                shell_complete=complete_manifests)
@click.option("--dry-run", is_flag=True, help="Print the new image reference; do not write.")
def pin(manifest: Path, dry_run: bool) -> None:
    """Pin MANIFEST's image to the digest the local engine has for its tag.

    Rewrites `image = "name:tag"` as `name:tag@sha256:...`, keeping the file's comments.
    Exit 0 when pinned (or already pinned), 2 when the image has no registry digest or the
    manifest is invalid, 3 when the engine is unreachable.
    """
    from saferun.app.pin import pin as pin_manifest

    with exit_on_error():
        outcome = pin_manifest(manifest, dry_run=dry_run)
        if outcome.already:
            click.echo(f"{manifest}: already pinned: {outcome.image}")
        elif not outcome.written:
            click.echo(outcome.pinned)
        else:
            click.echo(f"{manifest}: pinned {outcome.image} -> {outcome.pinned}")

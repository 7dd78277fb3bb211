"""`saferun pin MANIFEST`."""

from __future__ import annotations

from pathlib import Path

import click

from saferun.cli.common import exit_on_error


@click.command()
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Print the new image reference; do not write.")
def pin(manifest: Path, dry_run: bool) -> None:
    """Pin MANIFEST's image to the digest the local engine has for its tag.

    Rewrites `image = "name:tag"` as `name:tag@sha256:...`, keeping the file's comments.
    Exit 0 when pinned (or already pinned), 2 when the image has no registry digest or the
    manifest is invalid, 3 when the engine is unreachable.
    """
    from saferun.app.pin import pinned_reference, rewrite_image
    from saferun.engine.api import EngineSession
    from saferun.errors import ManifestError
    from saferun.inputs.loader import load_manifest, read_manifest_bytes
    from saferun.policy.rules import image_parts

    with exit_on_error():
        image = load_manifest(manifest).app.image
        if image_parts(image)[2]:
            click.echo(f"{manifest}: already pinned: {image}")
            return
        data = EngineSession().image_inspect(image)
        if data is None:
            raise ManifestError(f"app.image: '{image}' is not in the local engine",
                                fix=f"pull or build '{image}' first")
        new = pinned_reference(image, data.get("RepoDigests") or [])
        if dry_run:
            click.echo(new)
            return
        text = read_manifest_bytes(manifest).decode("utf-8")
        updated = rewrite_image(text, new)
        tmp = manifest.with_name(f".{manifest.name}.saferun-pin")
        tmp.write_text(updated, encoding="utf-8")
        tmp.replace(manifest)
        load_manifest(manifest)  # the rewritten file must still validate
        click.echo(f"{manifest}: pinned {image} -> {new}")

"""`saferun profile apparmor MANIFEST [-o FILE] [--check]`: the profile `saferun run` loads."""

from __future__ import annotations

from pathlib import Path

import click

from saferun.cli.common import exit_on_error, warn
from saferun.engine.apparmor_parser import compile_check, write_profile_file
from saferun.inputs.loader import load_manifest
from saferun.profiles.apparmor import profile_name_for, render_apparmor


@click.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the profile to FILE (atomically) instead of standard output.")
@click.option("--check", is_flag=True,
              help="Also compile the profile with apparmor_parser (works without AppArmor).")
def apparmor(manifest: Path, output: Path | None, check: bool) -> None:
    """Print the AppArmor profile generated from MANIFEST; the same input gives the same bytes."""
    with exit_on_error():
        loaded = load_manifest(manifest)
        name = profile_name_for(loaded)
        text = render_apparmor(loaded, profile_name=name)
        if check:
            compile_check(text)
        if loaded.apparmor.mode != "generate":
            warn(f"apparmor.mode = \"{loaded.apparmor.mode}\": `saferun run` will not load "
                 f"this profile")
        if output is None:
            click.echo(text, nl=False)
        else:
            write_profile_file(text, output)
            click.echo(f"wrote {output} (load: apparmor_parser -r {output}; run with "
                       f"--security-opt apparmor={name})", err=True)

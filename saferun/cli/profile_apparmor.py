"""`saferun profile apparmor MANIFEST [-o FILE] [--check]`: the profile `saferun run` loads."""

from __future__ import annotations

from pathlib import Path

import click

from saferun.cli.common import exit_on_error, warn


@click.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the profile to FILE (atomically) instead of standard output.")
@click.option("--check", is_flag=True,
              help="Also compile the profile with apparmor_parser (works without AppArmor).")
def apparmor(manifest: Path, output: Path | None, check: bool) -> None:
    """Print the AppArmor profile generated from MANIFEST; the same input gives the same bytes."""
    from saferun.app.profiles import apparmor_profile, write_apparmor

    with exit_on_error():
        profile = apparmor_profile(manifest, check=check)
        if profile.warning:
            warn(profile.warning)
        if output is None:
            click.echo(profile.text, nl=False)
            return
        write_apparmor(profile, output)
    click.echo(f"wrote {output} (load: apparmor_parser -r {output}; run with "
               f"--security-opt apparmor={profile.name})", err=True)

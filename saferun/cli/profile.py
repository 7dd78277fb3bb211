"""`saferun profile ...`: generate profiles for scripts."""

from __future__ import annotations

import click

from saferun.cli import LazyGroup

SUBCOMMANDS = {
    "seccomp": ("saferun.cli.profile_seccomp", "Write the seccomp profile (JSON) for a manifest."),
    "apparmor": ("saferun.cli.profile_apparmor", "Write the AppArmor profile for a manifest."),
}


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS)
def profile() -> None:
    """Generate a manifest's security profiles without starting anything."""

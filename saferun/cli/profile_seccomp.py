"""`saferun profile seccomp MANIFEST [-o FILE] [--stats] [--verify] [--against OLD.json]`."""

from __future__ import annotations

import platform
from pathlib import Path

import click

from saferun.cli.common import exit_on_error, exit_with


@click.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the profile to FILE (atomically, never through a symlink).",
)
@click.option("--stats", is_flag=True, help="Report names, rules and BPF instruction counts.")
@click.option(
    "--verify",
    is_flag=True,
    help="List the high-risk syscalls the profile still allows; exit 1 if any.",
)
@click.option(
    "--against",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Report what the profile adds (+) or removes (-) compared with OLD.json.",
)
@click.option(
    "--native-arch",
    default=platform.machine(),
    show_default=True,
    help="The daemon's architecture (docker info's Architecture).",
)
def seccomp(
    manifest: Path,
    output: Path | None,
    stats: bool,
    verify: bool,
    against: Path | None,
    native_arch: str,
) -> None:
    """Print the seccomp profile generated from MANIFEST; the same input gives the same bytes."""
    from saferun.app.profiles import seccomp_profile, seccomp_report

    with exit_on_error():
        generated = seccomp_profile(manifest, native_arch=native_arch, output=output)
        if output is None:
            click.echo(generated.text, nl=False)
        report = seccomp_report(generated, stats=stats, verify=verify, against=against)
    for line in report.lines:
        click.echo(line, err=output is None)
    if report.risky:
        exit_with(1)

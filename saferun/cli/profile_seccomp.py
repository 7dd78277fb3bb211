"""`saferun profile seccomp MANIFEST [-o FILE] [--stats] [--verify] [--against OLD.json]`."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import click

from saferun.cli.common import exit_on_error
from saferun.engine.files import write_atomic
from saferun.errors import ProfileError, UsageError
from saferun.inputs.loader import load_manifest
from saferun.profiles.seccomp import render_seccomp_json
from saferun.profiles.seccomp_check import (
    CheckResult,
    diff_profiles,
    generate_checked,
    names_by_source,
    verify_high_risk,
)


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
    with exit_on_error():
        loaded = load_manifest(manifest)
        if loaded.seccomp.profile in ("docker-default", "unconfined"):
            raise UsageError(
                f'seccomp.profile = "{loaded.seccomp.profile}": saferun generates '
                "no profile for it",
                fix='use profile "default" or "strict"',
            )
        profile, result = generate_checked(
            loaded.seccomp,
            capabilities=frozenset(loaded.capabilities.add),
            native_arch=native_arch,
            runtime=loaded.security.runtime,
        )
        text = render_seccomp_json(profile)
        if output is None:
            click.echo(text, nl=False)
        else:
            write_atomic(output, text.encode(), mode=0o644)
        report = _report_lines(profile, result, stats=stats, against=against)
        risky = verify_high_risk(profile) if verify else []
        report += [f"high-risk: {line}" for line in risky]
        if verify and not risky:
            report.append("high-risk: none allowed")
        for line in report:
            click.echo(line, err=output is None)
        if risky:
            raise SystemExit(1)


def _report_lines(
    profile: dict[str, Any], result: CheckResult, *, stats: bool, against: Path | None
) -> list[str]:
    lines = []
    if stats:
        summary = {**result.as_dict(), "by_source": names_by_source(profile)}
        lines.append("stats: " + json.dumps(summary, sort_keys=True))
    if against is not None:
        try:
            old = json.loads(against.read_text())
        except (OSError, ValueError) as exc:
            raise ProfileError(f"{against}: cannot read the old profile: {exc}") from None
        diff = diff_profiles(old, profile)
        lines += [f"against {against}: {line}" for line in diff.lines()] or [
            f"against {against}: no change"
        ]
    return lines

"""`saferun image check IMAGE`: judge an image from the local engine, for CI."""

from __future__ import annotations

from pathlib import Path

import click

from saferun.cli import LazyGroup
from saferun.cli.common import echo_report, exit_on_error, exit_with
from saferun.cli.completion import complete_images, complete_manifests
from saferun.cli.style import progress
from saferun.policy.output import CHECK_FORMATS
from saferun.policy.severity import Severity

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "check": ("saferun.cli.image", "Check an image: user, secrets, setuid, tools, size, gates."),
}


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS)
def image() -> None:
    """Judge container images (CIS Docker Benchmark section 4); see docs/images.md."""


@click.command()
@click.argument("reference", shell_complete=complete_images)
@click.option("--format", "output_format", type=click.Choice(CHECK_FORMATS.choices()),
              default="table", show_default=True)
@click.option("--fail-on", type=click.Choice(Severity.labels()), default="medium",
              show_default=True,
              help="Exit 1 when an unsuppressed finding has this severity or higher.")
@click.option("--manifest", "manifest_path", type=click.Path(path_type=Path),
              shell_complete=complete_manifests,
              help="A saferun.toml whose [policy] applies (registries, absent tools, gates).")
@click.option("--policy", "policy_path", type=click.Path(path_type=Path),
              help="A team policy file ([policy] table); merged with the manifest's, the "
              "stricter value winning. Default: $SAFERUN_POLICY.")
def check(reference: str, output_format: str, fail_on: str, manifest_path: Path | None,
          policy_path: Path | None) -> None:
    """Check the image REFERENCE in the local engine against the image rules.

    Reads its config and history and streams its filesystem from the engine (never
    unpacked to disk): root user, HEALTHCHECK, setuid/setgid files, secrets in ENV,
    labels, history or files, tools the policy says the app needs none of, size, layers,
    registry, tag, and the scan and signature gates when the policy has them. Exit 0 when
    clean, 1 when a finding reaches --fail-on, 2 when the policy is invalid, 3 when the
    engine is unreachable or a required scanner/cosign is missing.
    """
    from saferun.app.image import check as check_image
    from saferun.policy.report import exit_code

    shown = f"reading the layers of {reference}" if output_format == "table" else None
    with exit_on_error(), progress(shown, total=0) as advance:
        report = check_image(reference, manifest_path=manifest_path, policy_path=policy_path,
                             on_layer=lambda done, total: advance(completed=done, total=total))
    echo_report(CHECK_FORMATS.formatter(output_format)([report]), output_format)
    exit_with(exit_code([report], Severity.parse(fail_on)))

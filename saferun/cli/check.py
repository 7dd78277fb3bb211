"""`saferun check`."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.argument("manifests", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--allow-exceptions", is_flag=True,
              help="Exit 0 even when a manifest weakens a protection through [exceptions].")
def check(manifests: tuple[Path, ...], output_format: str, allow_exceptions: bool) -> None:
    """Validate MANIFESTS for CI.

    Exit 0 when all are valid, 1 when a valid manifest weakens a protection through
    [exceptions] (reasons are printed), 2 when any manifest is invalid.
    """
    from saferun.checking import check_manifest, exit_code

    results = [check_manifest(path) for path in manifests]
    if output_format == "json":
        click.echo(json.dumps({
            "schema": "saferun.check/1",
            "results": [
                {"path": r.path, "valid": r.valid, "error": r.error,
                 "findings": [{"key": f.key, "message": f.message} for f in r.findings]}
                for r in results
            ],
        }, indent=2))
    else:
        for result in results:
            if result.error:
                click.echo(f"{result.path}: INVALID\n  {result.error}")
            elif result.findings:
                click.echo(f"{result.path}: valid, {len(result.findings)} finding(s)")
                for finding in result.findings:
                    click.echo(f"  {finding.key}: {finding.message}")
            else:
                click.echo(f"{result.path}: ok")
    raise SystemExit(exit_code(results, fail_on_exceptions=not allow_exceptions))

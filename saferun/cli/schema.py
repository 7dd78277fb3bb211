"""`saferun schema`."""

from __future__ import annotations

import json

import click


@click.command()
def schema() -> None:
    """Print the manifest's JSON Schema, e.g. for Taplo or VS Code's TOML support.

    Rule ids are listed for [allow] and [policy] ignore, so editors complete them.
    """
    from saferun.app.schema import manifest_schema

    click.echo(json.dumps(manifest_schema(), indent=2, sort_keys=True))

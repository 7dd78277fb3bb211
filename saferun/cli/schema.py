"""`saferun schema`."""

from __future__ import annotations

import json

import click


@click.command()
def schema() -> None:
    """Print the manifest's JSON Schema, e.g. for Taplo or VS Code's TOML support."""
    from saferun.model.manifest import Manifest

    click.echo(json.dumps(Manifest.model_json_schema(), indent=2, sort_keys=True))

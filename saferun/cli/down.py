"""`saferun down`."""

from __future__ import annotations

import click

from saferun.cli.common import exit_on_error


@click.command()
@click.argument("stack", required=False)
def down(stack: str | None) -> None:
    """Remove a stack's services, sandboxes and network (everything labelled with its name).

    STACK is the stack file, folder or manifest `up` was given, or the stack's name.
    """
    from saferun.app.stack import down as remove_stack

    with exit_on_error():
        result = remove_stack(stack)
    for name in (*result.containers, *result.networks):
        click.echo(f"removed {name}")

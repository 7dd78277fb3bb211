"""`saferun down`."""

from __future__ import annotations

import click

from saferun.cli.common import exit_on_error


@click.command()
@click.argument("stack", required=False)
@click.option("--volumes", "-v", is_flag=True,
              help="Also remove the services' anonymous volumes (an image's VOLUME or a "
                   "mount without a source), as `docker compose down -v` does. Named "
                   "volumes always stay.")
def down(stack: str | None, volumes: bool) -> None:
    """Remove a stack's services, sandboxes and network (everything labelled with its name).

    STACK is the stack file, folder or manifest `up` was given, or the stack's name.
    Named volumes stay; so do anonymous ones unless --volumes is given (each kept one is
    named, with the command that removes it).
    """
    from saferun.app.stack import down as remove_stack

    with exit_on_error():
        result = remove_stack(stack, volumes=volumes)
    for name in (*result.containers, *result.networks):
        click.echo(f"removed {name}")
    for name in result.volumes:
        if volumes:
            click.echo(f"removed volume {name}")
        else:
            click.echo(f"kept volume {name} (anonymous: `docker volume rm {name}`, or "
                       f"`saferun down --volumes` next time)")

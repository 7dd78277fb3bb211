"""`saferun ps`."""

from __future__ import annotations

import click

from saferun.cli.common import exit_on_error


@click.command()
@click.argument("stack", required=False)
def ps(stack: str | None) -> None:
    """List a stack's services: state, health, address, ingress, egress, and whether the
    rules are in the service's network namespace (enforced) or not (MISSING).

    STACK is the stack file, folder or manifest `up` was given, or the stack's name.
    """
    from saferun.app.stack import ps as stack_status

    with exit_on_error():
        result = stack_status(stack)
    click.echo("SERVICE\tCONTAINER\tSTATE\tHEALTH\tADDRESS\tINGRESS\tEGRESS\tRULES")
    for s in result.services:
        click.echo("\t".join((s.service, s.container, s.state, s.health,
                              ",".join(s.addresses) or "-", s.ingress, s.egress, s.rules)))

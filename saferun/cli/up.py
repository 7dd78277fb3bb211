"""`saferun up`."""

from __future__ import annotations

import click

from saferun.cli.common import exit_on_error, warn
from saferun.cli.style import progress


@click.command()
@click.argument("stack", required=False)
def up(stack: str | None) -> None:
    """Start a stack: each service hardened, on the stack's private network, with its
    [network] ingress and egress enforced by the kernel before it starts.

    STACK is a saferun.stack.toml (default: ./saferun.stack.toml), a folder of manifests or
    one manifest. Nothing is started unless everything can be: a rule that cannot be
    installed (no nft or nsenter, not root, rootless engine) refuses, and an interrupted
    `up` removes what it created. Exit 0 when every service started; 125, as `saferun run`,
    when nothing was left started (refused, invalid, or failed: the message says why).
    See docs/networks.md.
    """
    from saferun.app.stack import up as start_stack

    with exit_on_error(run=True), progress("stack: starting") as advance:
        result = start_stack(stack, warn=warn,
                             say=lambda line: advance(description=line[:70]))
    for service in result.services:
        rules = ("open" if service.rules_seconds is None
                 else f"rules in {service.rules_seconds * 1000:.0f} ms")
        click.echo(f"{service.container}\t{','.join(service.addresses)}\t{rules}")

"""`saferun explain RULE`."""

from __future__ import annotations

import click

from saferun.cli.common import exit_on_error
from saferun.cli.completion import complete_rules


@click.command()
@click.argument("rule", required=False, shell_complete=complete_rules)
def explain(rule: str | None) -> None:
    """Print a policy rule's rationale, fix and CIS references (no RULE: list every rule)."""
    from saferun.app.explain import explain as explain_rule
    from saferun.app.explain import rule_list

    if rule is None:
        for item in rule_list():
            click.echo(f"{item.id:<24} {item.severity.label:<8} {item.title}")
        return
    with exit_on_error():
        text = explain_rule(rule)
    click.echo(text)

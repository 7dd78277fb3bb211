"""`saferun explain RULE`."""

from __future__ import annotations

import click


@click.command()
@click.argument("rule", required=False)
def explain(rule: str | None) -> None:
    """Print a policy rule's rationale, fix and CIS references (no RULE: list every rule)."""
    from saferun.policy.rules import all_rules
    from saferun.policy.rules import explain as explain_rule

    rules = all_rules()
    if rule is None:
        for item in rules.values():
            click.echo(f"{item.id:<24} {item.severity.label:<8} {item.title}")
        return
    if rule not in rules:
        import difflib

        close = difflib.get_close_matches(rule, rules, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        click.echo(f"saferun: unknown rule '{rule}'{hint}; `saferun explain` lists them", err=True)
        raise SystemExit(2)
    click.echo(explain_rule(rule))

"""`saferun explain`: a rule's rationale, fix and references, or the list of every rule."""

from __future__ import annotations

import difflib

from saferun.errors import UsageError
from saferun.policy.catalogue import all_rules
from saferun.policy.catalogue import explain as explain_rule
from saferun.policy.rules import Rule


def rule_list() -> list[Rule]:
    """Every rule, container rules first, in the order they are documented."""
    return list(all_rules().values())


def explain(rule_id: str) -> str:
    """The text of one rule; UsageError (with a close match, if any) for an unknown id."""
    rules = all_rules()
    if rule_id not in rules:
        close = difflib.get_close_matches(rule_id, rules, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UsageError(f"unknown rule '{rule_id}'{hint}; `saferun explain` lists them")
    return explain_rule(rule_id)

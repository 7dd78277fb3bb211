"""The rule catalogue: container rules and image rules in one id space.

One id means one thing across the product: the suppression key (`[policy] ignore`), the
docs anchor, the SARIF ruleId. The manifest model checks `[policy] ignore` against
`rule_kinds()`, handed to it by the inputs layer as validation context, so the model
never imports the rules themselves.
"""

from __future__ import annotations

from saferun.model.refusals import RULE_IDS, WARNINGS
from saferun.model.refusals import RULES as REFUSALS
from saferun.policy.image_rules import IMAGE_RULES
from saferun.policy.rules import RULES, Rule


def all_rules() -> dict[str, Rule]:
    """Container rules and image rules by id: one id space, one output."""
    return {**RULES, **IMAGE_RULES}


def explain(rule_id: str) -> str:
    """A rule's title, severity, references, rationale and fix, as `saferun explain` prints."""
    rule = all_rules()[rule_id]
    refs = ", ".join(rule.references) or "none (saferun rule)"
    refused = "no"
    if rule.id in WARNINGS:
        refused = ("no, it warns; refused when a [policy] refuse list names it (an [allow] "
                   "reason lifts that)")
    if rule.refusal:
        refused = ("yes, unless [allow]ed with a reason" if rule.id in REFUSALS else
                   "yes, when the [policy] table asks for it (no [allow] or ignore lifts it)")
    lines = [f"{rule.id}: {rule.title}",
             f"severity: {rule.severity.label}    weight: {rule.weight}",
             f"references: {refs}",
             f"refused by saferun run: {refused}",
             "", f"why: {rule.rationale}", f"fix: {rule.fix}"]
    return "\n".join(lines)


def rule_kinds() -> dict[str, str]:
    """Each rule id with what `[policy] ignore` may do with it: "rule" (ignore with a
    reason), "refusal" (allow it with [allow] instead) or "gate" (an image policy gate:
    change the [policy] table instead)."""
    return {rule.id: ("gate" if rule.refusal and rule.id not in RULE_IDS else
                      "refusal" if rule.refusal else "rule")
            for rule in all_rules().values()}

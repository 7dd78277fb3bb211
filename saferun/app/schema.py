"""The manifest's JSON Schema for editors, with the rule ids the model cannot know.

The model sits below the policy rules, so `[allow]` and `[policy] ignore` are plain string
maps there; here their keys become the closed sets the validators accept, which editors
(Taplo, VS Code's TOML support) then offer as completions.
"""

from __future__ import annotations

from typing import Any


def manifest_schema() -> dict[str, Any]:
    from saferun.model.manifest import manifest_json_schema
    from saferun.model.refusals import ALLOWABLE_IDS
    from saferun.policy.catalogue import rule_kinds

    schema = manifest_json_schema()
    schema["properties"]["allow"]["propertyNames"] = {"enum": sorted(ALLOWABLE_IDS)}
    ignorable = sorted(rule for rule, kind in rule_kinds().items() if kind == "rule")
    policy = schema["$defs"]["PolicySection"]["properties"]
    policy["ignore"]["propertyNames"] = {"enum": ignorable}
    return schema

"""`saferun schema` lists the rule ids [allow] and [policy] ignore accept, for editors."""

from __future__ import annotations

from saferun.app.schema import manifest_schema
from saferun.model.refusals import ALLOWABLE_IDS
from saferun.policy.catalogue import rule_kinds


def test_allow_and_ignore_keys_are_the_accepted_rule_ids() -> None:
    schema = manifest_schema()
    assert schema["properties"]["allow"]["propertyNames"]["enum"] == sorted(ALLOWABLE_IDS)
    ignore = schema["$defs"]["PolicySection"]["properties"]["ignore"]["propertyNames"]["enum"]
    assert {"memory-limit", "pids-limit", "no-new-privileges"} <= set(ignore)
    assert all(rule_kinds()[rule] == "rule" for rule in ignore)
    assert "privileged" not in ignore  # a refusal: [allow], not [policy] ignore

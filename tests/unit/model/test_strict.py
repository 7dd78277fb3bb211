"""saferun.model.strict: msgspec's speed, and still every problem with its key path."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from saferun.model.manifest import Manifest, ResourcesSection, manifest_json_schema
from saferun.model.strict import ValidationError, to_document, updated, validate

APP = {"name": "web", "image": "busybox:1"}


def _problems(document: dict[str, Any]) -> dict[str, tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        Manifest.from_data(document)
    return {".".join(str(p) for p in e["loc"]): (e["type"], e["msg"])
            for e in info.value.errors()}


def test_every_problem_is_listed_not_only_the_first() -> None:
    found = _problems({
        "app": {**APP, "name": "bad name", "bogus": 1, "env": {"1A": "x"}},
        "resources": {"memory": "1k", "pids": 0, "cpus": True},
        "filesystem": {"tmpfs": [{"target": "/tmp"}, {"target": "relative"}]},
        "security": {"privileged": "yes"},
        "seccomp": {"mode": "whatever"},
        "exceptions": {"not_a_key": "a reason long enough"},
    })
    assert found == {
        "app.bogus": ("extra_forbidden", "unknown key"),
        "app.name": ("value_error",
                     "does not match the pattern '^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$'"),
        "app.env": ("value_error", "invalid environment variable name '1A'"),
        "resources.memory": ("value_error", "memory '1k' is below docker's minimum of 6m"),
        "resources.pids": ("value_error", "value must be >= 1"),
        "resources.cpus": ("type_error",
                           "wrong type (boolean), expected integer or number or string"),
        "filesystem.tmpfs.1.target": ("value_error", found["filesystem.tmpfs.1.target"][1]),
        "security.privileged": ("type_error", "wrong type (string), expected boolean"),
        "seccomp.mode": ("value_error", "must be one of 'allowlist', 'denylist', 'log'"),
        "exceptions.not_a_key": ("value_error", found["exceptions.not_a_key"][1]),
    }
    assert "must be one of 'run_as_root'" in found["exceptions.not_a_key"][1]


def test_missing_keys_and_tables_of_the_wrong_type() -> None:
    assert _problems({"app": {"name": "web"}, "network": []}) == {
        "app.image": ("missing", "required"),
        "network": ("type_error", "wrong type (list), expected a table"),
    }


def test_an_optional_key_of_the_wrong_type_names_the_type_it_takes() -> None:
    # TOML has no null: "expected list or nothing" would name what cannot be written.
    assert _problems({"app": {**APP, "command": "ls"}}) == {
        "app.command": ("type_error", "wrong type (string), expected list")}


def test_a_table_check_runs_only_when_its_fields_are_valid() -> None:
    # Ulimit's soft <= hard is judged once soft and hard are integers (as pydantic did).
    assert _problems({"app": APP, "resources": {"nofile": {"soft": "x", "hard": 1}}}) == {
        "resources.nofile.soft": ("type_error", "wrong type (string), expected integer")}
    assert _problems({"app": APP, "resources": {"nofile": {"soft": 5, "hard": 1}}}) == {
        "resources.nofile": ("value_error", "soft limit 5 is above hard limit 1")}


def test_a_closing_dollar_does_not_accept_a_final_newline() -> None:
    # Python's `$` matches before a final "\n"; the model's patterns end in \Z instead.
    assert "app.name" in _problems({"app": {**APP, "name": "web\n"}})
    assert "app.image" in _problems({"app": {**APP, "image": "busybox:1\n"}})


def test_the_fast_pass_and_the_walk_agree_on_context_checks() -> None:
    document = {"app": {**APP, "user": "0"}}
    kind, message = _problems(document)[""]  # the manifest's own check: loc ()
    assert kind == "value_error" and "[exceptions] run_as_root" in message
    deferred = validate(Manifest, document, {"refusals": "defer"})
    assert [v.rule for v in deferred.violations()] == ["run-as-root"]


def test_a_dependent_default_is_applied_in_nested_tables() -> None:
    grown = Manifest.from_data({"app": APP, "resources": {"memory_reservation": "1g"}})
    assert grown.resources.memory == "1g"
    assert ResourcesSection.from_data({"memory_reservation": "1g"}).memory == "1g"
    found = _problems({"app": APP, "resources": {"cpus": 2, "cpu_quota": 5000}})
    assert found["resources"][1].startswith("Conflicting options: CPU Quota/Period and cpus")


def test_models_are_frozen_and_updated_does_not_revalidate() -> None:
    manifest = Manifest.from_data({"app": APP})
    with pytest.raises(AttributeError):
        manifest.app.name = "other"  # type: ignore[misc]
    changed = updated(manifest, app=updated(manifest.app, user="0"))
    assert changed.app.user == "0" and manifest.app.user == "65534:65534"
    with pytest.raises(AttributeError, match="no field"):
        updated(manifest, nonsense=1)


def test_to_document_round_trips_and_omits_defaults_on_request() -> None:
    manifest = Manifest.from_data({"app": {**APP, "env": {"A": "1"}}, "network": {
        "ports": [{"container": 80}]}})
    assert Manifest.from_data(to_document(manifest)) == manifest
    sparse = to_document(manifest, exclude_defaults=True)
    assert sparse == {"app": {**APP, "env": {"A": "1"}},
                      "network": {"ports": [{"container": 80}]}}
    assert msgspec.json.encode(to_document(manifest))  # JSON-ready


def test_json_schema_has_the_manifest_at_the_top_and_patterns_as_written() -> None:
    schema = manifest_json_schema()
    assert schema["title"] == "saferun manifest" and "Manifest" not in schema["$defs"]
    assert schema["additionalProperties"] is False and schema["required"] == ["app"]
    name = schema["$defs"]["AppSection"]["properties"]["name"]
    assert name["pattern"] == "^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$"
    assert "\\Z" not in msgspec.json.encode(schema).decode()

"""Compose exports validate against the Compose Specification's own JSON Schema
(tests/data/compose-spec/), which has `cgroup`; --compose-v1 output is checked by
docker-compose 1.29 itself (tests/integration/test_export_compose_config.py)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from saferun.export import ExportInput, Target, export
from saferun.inputs.loader import load_manifest
from tests.unit.export.cases import CASES, VARIED

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "data" / "compose-spec" /
                     "compose-spec.json").read_text())
SPEC = jsonschema.Draft7Validator(SCHEMA)  # its $schema names draft-07


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_export_follows_the_compose_specification(case: str) -> None:
    result = export([ExportInput(load_manifest(CASES[case]))], Target.COMPOSE)
    document = yaml.safe_load(result.main.content)
    SPEC.validate(document)
    for service in document["services"].values():
        assert service["cgroup"] in ("private", "host")


def test_several_apps_and_the_v1_variant() -> None:
    inputs = [ExportInput(load_manifest(p)) for p in VARIED]
    SPEC.validate(yaml.safe_load(export(inputs, Target.COMPOSE).main.content))
    v1 = export(inputs, Target.COMPOSE, compose_v1=True)
    assert all("cgroup" not in s for s in yaml.safe_load(v1.main.content)["services"].values())
    assert any(n.key == "security.cgroupns" and "docker-compose 1.x" in n.message
               for n in v1.notes)


def test_the_schema_check_can_fail() -> None:
    with pytest.raises(jsonschema.ValidationError):
        SPEC.validate({"services": {"a": {"image": "x", "cgroup": "shared"}}})

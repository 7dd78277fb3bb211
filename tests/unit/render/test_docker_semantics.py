"""saferun sends what docker sends: the create body against the docker CLI's own tests.

tests/data/docker_cli_expectations.toml holds the Engine API values the docker CLI's
option-parsing tests (cli/command/container/opts_test.go) expect for a command line. Each
line runs through saferun's reader, model, planner and body renderer; the body must hold
the same values, or saferun must refuse what docker refuses. Where saferun deliberately
hardens (ports on loopback, a named network), the data file says so in `hardening`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from saferun.errors import SaferunError
from saferun.inputs.dockerargs import split_command_line
from saferun.inputs.dockerrun import (
    base_for_image,
    build_manifest,
    from_docker_run,
    merge_document,
    parse_run_args,
)
from saferun.model.facts import HostFacts
from saferun.plan.planner import build_plan
from saferun.render.argv import render_argv
from saferun.render.engine_api import render_create_body

DATA = tomllib.loads(
    (Path(__file__).resolve().parents[2] / "data" / "docker_cli_expectations.toml").read_text())
CASES: list[dict[str, Any]] = DATA["case"]
# A daemon new enough for every field (API 1.44+: several networks, MAC, start interval).
FACTS = HostFacts(server_version="27.3.1", security_options=frozenset({"seccomp"}),
                  runtimes=frozenset({"runc"}))
MISSING = object()


def body_for(args: str) -> dict[str, Any]:
    parsed = parse_run_args(split_command_line(f"docker run {args} img cmd"))
    dropin = from_docker_run(parsed, cwd="/srv/app")
    manifest = build_manifest(merge_document(base_for_image("img", dropin.options.name), dropin))
    plan = build_plan(manifest, FACTS, dropin.options)
    render_argv(plan, seccomp_path="/p.json")  # the argv renders too
    return render_create_body(plan)


def lookup(body: dict[str, Any], path: str) -> Any:
    node: Any = body
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def test_the_data_names_its_source() -> None:
    assert DATA["source"].startswith("https://github.com/docker/cli/blob/")
    assert "opts_test.go" in DATA["source"]
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[f"{c['test']}:{c['args']}" for c in CASES])
def test_saferun_sends_what_docker_sends(case: dict[str, Any]) -> None:
    if "error" in case:
        with pytest.raises(SaferunError) as info:
            body_for(case["args"])
        if case.get("same_text", True):
            assert case["error"] in info.value.render()
        return
    body = body_for(case["args"])
    for path, expected in case.get("equals", {}).items():
        got = lookup(body, path)
        if expected is False and not isinstance(got, bool):  # Go's nil / empty: absent
            assert got in (MISSING, None, "", [], {}), (path, got)
        else:
            assert got == expected, (path, got)
    for path, keys in case.get("keys", {}).items():
        assert sorted(lookup(body, path)) == sorted(keys), path


def test_bind_mounts_from_v_stay_read_write() -> None:
    """Regression: `-v host:ctr` is read-write in docker, and stays so in both renderings."""
    parsed = parse_run_args(split_command_line("docker run -v /srv/data:/data img:1"))
    dropin = from_docker_run(parsed, cwd="/srv/app")
    manifest = build_manifest(merge_document(base_for_image("img:1", None), dropin))
    assert manifest.filesystem.mounts[0].read_only is False
    plan = build_plan(manifest, FACTS, dropin.options)
    argv = render_argv(plan, seccomp_path="/p.json")
    assert argv[argv.index("--volume") + 1] == "/srv/data:/data:rw"
    assert render_create_body(plan)["HostConfig"]["Binds"] == ["/srv/data:/data:rw"]
    mounted = parse_run_args(split_command_line(
        "docker run --mount type=bind,src=/srv/data,dst=/data img:1"))
    manifest = build_manifest(merge_document(base_for_image("img:1", None),
                                             from_docker_run(mounted, cwd="/srv/app")))
    plan = build_plan(manifest, FACTS)
    assert render_create_body(plan)["HostConfig"]["Mounts"][0]["ReadOnly"] is False

"""The drop-in claim over real command lines (tests/data/docker_run_corpus.toml).

Every line parses; the dangerous ones are refused naming the expected rule; the ones that
use a flag saferun cannot express are refused by name; all others produce a hardened
dry-run: non-root user, every capability dropped, read-only root, no-new-privileges,
limits, and ports bound to loopback unless the line names an address.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from saferun.errors import ManifestError, Refused, UnsupportedFlag
from saferun.inputs.dockerargs import split_command_line
from saferun.inputs.dockerrun import (
    base_for_image,
    build_manifest,
    from_docker_run,
    merge_document,
    parse_run_args,
)
from saferun.model.facts import HostFacts
from saferun.model.refusals import RULE_IDS
from saferun.plan.planner import build_plan
from saferun.render.argv import render_argv

CORPUS = Path(__file__).resolve().parents[2] / "data" / "docker_run_corpus.toml"
CASES: list[dict[str, Any]] = tomllib.loads(CORPUS.read_text())["case"]
CWD = "/srv/app"
FACTS = HostFacts(security_options=frozenset({"seccomp"}), runtimes=frozenset({"runc"}))


def shell_expand(line: str) -> str:
    """What the user's shell would have done before docker saw the line; nothing more."""
    line = line.replace('"$(pwd)"', CWD).replace("$(pwd)", CWD)
    line = line.replace('"$PWD"', CWD).replace("${PWD}", CWD).replace("$PWD", CWD)
    return re.sub(r"(?<=[\s=])~/", "/home/user/", line)


def test_corpus_is_big_enough_and_sourced() -> None:
    assert len(CASES) >= 60
    for case in CASES:
        assert case["source"].startswith("https://"), case
        assert case["expect"] in ("hardened", "unsupported", *RULE_IDS), case
    kinds = {case["expect"] for case in CASES}
    assert {"hardened", "privileged", "docker-socket-mount", "sensitive-host-mount"} <= kinds


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c['expect']}" for i, c in enumerate(CASES)])
def test_corpus_line(case: dict[str, Any]) -> None:
    parsed = parse_run_args(split_command_line(shell_expand(case["line"])))  # parses, always
    assert parsed.image
    expect = case["expect"]
    try:
        dropin = from_docker_run(parsed, cwd=CWD)
        document = merge_document(base_for_image(parsed.image, dropin.options.name), dropin)
        manifest = build_manifest(document)
    except Refused as refused:
        assert expect in refused.rule_ids, (expect, refused.render())
        return
    except UnsupportedFlag as unsupported:
        assert expect == "unsupported", unsupported.render()
        return
    assert expect == "hardened", f"expected refusal '{expect}', got a manifest"
    try:
        plan = build_plan(manifest, FACTS, dropin.options)
    except ManifestError as floating:
        # Published lines often name an image without a version; the policy layer refuses a
        # floating tag. Say so, then check everything else with that one rule ignored.
        assert "image-tag-latest" in floating.message, floating.render()
        document["policy"] = {"ignore": {"image-tag-latest": "corpus line as published"}}
        plan = build_plan(build_manifest(document), FACTS, dropin.options)
    argv = render_argv(plan, seccomp_path="/p.json" if plan.seccomp_profile else None)
    assert argv[:2] == ["docker", "run"]
    assert argv[argv.index("--user") + 1] != "0"
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert "--read-only" in argv and "--privileged" not in argv
    assert "no-new-privileges" in argv
    for flag in ("--memory", "--pids-limit", "--cpus"):
        assert flag in argv
    published = [argv[i + 1] for i, word in enumerate(argv) if word == "--publish"]
    if "127.0.0.1" not in case["line"] and "0.0.0.0" not in case["line"]:
        assert all(p.startswith("127.0.0.1:") for p in published), published
    # The command line's own command survives the round through the model.
    if parsed.command:
        assert argv[-len(parsed.command) :] == list(parsed.command)

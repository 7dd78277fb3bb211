"""The drop-in claim over real command lines (tests/data/docker_run_corpus.toml).

Every line parses; the dangerous ones are refused naming the expected rule; all others
run: a hardened dry-run (non-root user, every capability dropped, read-only root,
no-new-privileges, limits, ports bound to loopback unless the line names an address), in
both renderings (the docker argv and the Engine API body), and no flag of the line is
dropped: each one reaches the argv (or, for `--allow`, the exceptions label).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from saferun.errors import Refused
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
from saferun.render.engine_api import render_create_body

CORPUS = Path(__file__).resolve().parents[2] / "data" / "docker_run_corpus.toml"
CASES: list[dict[str, Any]] = tomllib.loads(CORPUS.read_text())["case"]
CWD = "/srv/app"
FACTS = HostFacts(security_options=frozenset({"seccomp"}), runtimes=frozenset({"runc"}))

# Flags whose argv spelling differs from the command line's (all others keep their name).
ARGV_SPELLING: dict[str, tuple[str, ...]] = {
    "volume": ("--mount", "--volume"),  # -v becomes --mount (or -v when relabelled)
    "mount": ("--mount", "--tmpfs"),  # --mount type=tmpfs becomes --tmpfs
    "publish-all": ("--publish-all",),
    "network-alias": ("--network-alias",),
    "security-opt": ("--security-opt",),
    "health-cmd": ("--health-cmd",),
}
# Per-start flags that reach the argv under their own name, and saferun's own.
SESSION = {"detach", "rm", "interactive", "tty", "name"}


def shell_expand(line: str) -> str:
    """What the user's shell would have done before docker saw the line; nothing more."""
    line = line.replace('"$(pwd)"', CWD).replace("$(pwd)", CWD)
    line = line.replace('"$PWD"', CWD).replace("${PWD}", CWD).replace("$PWD", CWD)
    line = line.replace("$(id -u)", "1000").replace("$(id -g)", "1000")
    line = line.replace("${UID}", "1000").replace("$UID", "1000").replace("${GID}", "1000")
    return re.sub(r"(?<=[\s=])~/", "/home/user/", line)


def test_corpus_is_big_enough_and_sourced() -> None:
    assert len(CASES) >= 150
    lines = [case["line"] for case in CASES]
    assert len(lines) == len(set(lines)), "a line is listed twice"
    for case in CASES:
        assert case["source"].startswith("https://"), case
        assert case["expect"] in ("hardened", *RULE_IDS), case
    kinds = Counter(case["expect"] for case in CASES)
    assert {"hardened", "privileged", "docker-socket-mount", "sensitive-host-mount"} <= set(kinds)


def run_line(line: str) -> tuple[Any, Any, Any, list[str], dict[str, Any]]:
    """(parsed, manifest document, plan, argv, API body) of a line that is not refused."""
    parsed = parse_run_args(split_command_line(shell_expand(line)))
    dropin = from_docker_run(parsed, cwd=CWD)
    document = merge_document(base_for_image(parsed.image, dropin.options.name), dropin)
    plan = build_plan(build_manifest(document), FACTS, dropin.options)
    argv = render_argv(plan, seccomp_path="/p.json" if plan.seccomp_profile else None)
    body = render_create_body(plan)
    return parsed, document, plan, argv, body


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c['expect']}" for i, c in enumerate(CASES)])
def test_corpus_line(case: dict[str, Any]) -> None:
    expect = case["expect"]
    try:
        parsed, document, plan, argv, body = run_line(case["line"])
    except Refused as refused:
        assert expect in refused.rule_ids, (expect, refused.render())
        return
    assert expect == "hardened", f"expected refusal '{expect}', got a manifest"
    assert parsed.image
    # The docker argv: hardened.
    assert argv[:2] == ["docker", "run"]
    assert argv[argv.index("--user") + 1] not in ("0", "root")
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert "--read-only" in argv and "--privileged" not in argv
    assert "no-new-privileges" in argv
    for flag in ("--memory", "--pids-limit"):
        assert flag in argv
    assert "--cpus" in argv or "--cpu-quota" in argv
    published = [argv[i + 1] for i, word in enumerate(argv) if word == "--publish"]
    if "127.0.0.1" not in case["line"] and "0.0.0.0" not in case["line"]:
        assert all(p.startswith("127.0.0.1:") for p in published), published
    if parsed.command:  # the command line's own command survives the round through the model
        assert argv[-len(parsed.command) :] == list(parsed.command)
    # The Engine API body: the same container.
    host = body["HostConfig"]
    assert body["User"] == argv[argv.index("--user") + 1]
    assert host["CapDrop"] == ["ALL"] and host["ReadonlyRootfs"] is True
    assert "no-new-privileges" in host["SecurityOpt"] and not host.get("Privileged")
    assert host["Memory"] == plan.memory and host["PidsLimit"] == plan.pids_limit
    assert body["Image"] == argv[-len(parsed.command) - 1 if parsed.command else -1]
    for binding in (b for bs in (host["PortBindings"] or {}).values() for b in bs):
        if "127.0.0.1" not in case["line"] and "0.0.0.0" not in case["line"]:
            assert binding["HostIp"] == "127.0.0.1"
    # No flag is dropped: each reaches the argv under its name (or saferun's label).
    words = {w.split("=", 1)[0] for w in argv if w.startswith("--")}
    for name in parsed.given():
        if name == "allow":
            assert "io.saferun.exceptions" in json.dumps(body["Labels"])
            continue
        spellings = ARGV_SPELLING.get(name, (f"--{name}",))
        if name == "rm" and not parsed.flag("rm"):
            continue
        if name == "security-opt" and all(
                v.startswith("apparmor=docker-default") for v in parsed.values(name)):
            continue  # replaced by the stricter generated profile, said in a note
        assert any(s in words for s in spellings) or name in SESSION and f"--{name}" in words, (
            name, case["line"])


def test_corpus_counts_are_in_the_docs() -> None:
    """docs/drop-in.md reports the corpus: keep the numbers in step."""
    kinds = Counter("hardened" if c["expect"] == "hardened" else "refused" for c in CASES)
    text = (Path(__file__).resolve().parents[3] / "docs" / "drop-in.md").read_text()
    assert f"{len(CASES)} real `docker run` lines" in text
    assert f"{kinds['hardened']} run hardened" in text
    assert f"{kinds['refused']} are refused" in text

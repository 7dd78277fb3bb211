"""Issue 19, case 10: saferun's default profile against the engine's own default.

For each Docker version in tests/data/engine_seccomp/ (facts of moby's default.json at
that tag, written by scripts/engine_seccomp_data.py): what saferun's default allows on
x86_64, with no capability and with each one, is allowed by Docker's default too, or is
listed in docs/seccomp.md's table of differences with its condition and why. The table
lists exactly the differences, so a stale row fails as well. The e2e test checks that the
running engine's version has a facts file.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pyseccomp
import pytest

from saferun.model.capabilities import CAPABILITY_BITS
from saferun.model.manifest import SeccompSection
from saferun.profiles.seccomp import generate_seccomp
from saferun.profiles.seccomp_check import ARCHES

ROOT = Path(__file__).resolve().parents[3]
FACTS = ROOT / "tests" / "data" / "engine_seccomp"
DOCS = ROOT / "docs" / "seccomp.md"
X86_64 = [ARCHES[a] for a in ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")]


def engine_facts(version: str) -> dict[str, Any] | None:
    """The facts file of a `docker info` ServerVersion (`20.10.24+dfsg1` -> 20.10.24)."""
    plain = re.match(r"\d+\.\d+\.\d+", version)
    path = FACTS / f"docker-{plain.group(0) if plain else version}.toml"
    return tomllib.loads(path.read_text()) if path.is_file() else None


def documented(version: str) -> set[tuple[str, str]]:
    """(call, condition) rows of the docs table for this version; condition "none" or a cap."""
    text = DOCS.read_text()
    heading = f"### Allowed here, refused by Docker {version}'s default"
    assert heading in text, heading
    section = text.split(heading, 1)[1].split("\n\n", 2)[1]
    rows = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            condition = cells[1].strip("`")
            rows |= {(name, condition) for name in re.findall(r"`([a-z0-9_]+)`", cells[0])}
    return rows


def allowed(capabilities: frozenset[str]) -> set[str]:
    """Calls saferun's default allows on x86_64 (and its compat ABIs) with these caps."""
    profile = generate_seccomp(SeccompSection(), capabilities=capabilities,
                               native_arch="x86_64", runtime="runc")
    names = {n for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW"
             for n in rule["names"]}
    return {n for n in names if any(pyseccomp.resolve_syscall(a, n) >= 0 for a in X86_64)}


def differences(facts: dict[str, Any]) -> set[tuple[str, str]]:
    docker_any = set(facts["unconditional"]) | set(facts["by_argument"])
    found = {(name, "none") for name in allowed(frozenset()) - docker_any}
    plain = {name for name, _ in found}
    for cap in sorted(CAPABILITY_BITS):
        brought = set(facts["by_capability"].get(cap, []))
        found |= {(name, cap) for name in allowed(frozenset({cap})) - docker_any - brought
                  - plain}
    return found


@pytest.mark.parametrize("path", sorted(FACTS.glob("docker-*.toml")), ids=lambda p: p.stem)
def test_default_allows_nothing_the_engine_refuses_but_the_documented(path: Path) -> None:
    facts = tomllib.loads(path.read_text())
    assert differences(facts) == documented(facts["version"])


def test_the_comparison_can_fail() -> None:
    facts = engine_facts("20.10.24+dfsg1")
    assert facts is not None
    fewer = {**facts, "unconditional": [n for n in facts["unconditional"] if n != "read"]}
    assert ("read", "none") in differences(fewer)
    assert engine_facts("1.0.0") is None

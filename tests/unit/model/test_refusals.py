"""The refusal table: stable ids, complete entries, and the pure host-path check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from saferun.model.capabilities import CAPABILITY_BITS
from saferun.model.manifest import Manifest
from saferun.model.refusals import (
    ALLOWED_CAPABILITIES,
    LEGACY_KEYS,
    REFUSALS,
    RULES,
    host_path_rule,
    resolved_mount_violations,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "drop-in.md"


def test_table_invariants() -> None:
    assert len(RULES) == len(REFUSALS)
    for rule in REFUSALS:
        assert re.fullmatch(r"[a-z]+(?:-[a-z]+)*", rule.id), rule.id
        assert rule.title and rule.rationale.endswith(".") and rule.fix
        assert rule.cis is None or re.fullmatch(r"CIS Docker Benchmark v1\.6\.0 \d\.\d+", rule.cis)
    assert ALLOWED_CAPABILITIES <= set(CAPABILITY_BITS)
    assert set(LEGACY_KEYS) == {
        "run_as_root",
        "seccomp_unconfined",
        "apparmor_off",
        "writable_root",
        "restart_always",
        "userns_host",
    }


def test_every_rule_is_documented_with_how_to_allow_it() -> None:
    text = DOC.read_text()
    for rule in REFUSALS:
        assert f'<a id="{rule.id}"></a>' in text, rule.id
        assert f"--allow {rule.id}=" in text, rule.id


@pytest.mark.parametrize(
    ("path", "read_only", "rule"),
    [
        ("/", True, "sensitive-host-mount"),
        ("//", True, "sensitive-host-mount"),
        ("/etc", True, "sensitive-host-mount"),
        ("/etc/nginx/nginx.conf", True, "sensitive-host-mount"),
        ("/var/lib/docker/volumes/x", True, "sensitive-host-mount"),
        ("/run/containerd", True, "sensitive-host-mount"),
        ("/var", False, "sensitive-host-mount"),  # a parent of /var/lib/docker
        ("/run", False, "sensitive-host-mount"),
        ("/proc/../etc", True, "sensitive-host-mount"),
        ("/var/run/docker.sock", False, "docker-socket-mount"),
        ("/run/user/1000/docker.sock", False, "docker-socket-mount"),
        ("/run/podman/podman.sock", False, "docker-socket-mount"),
        ("/etc/localtime", True, None),
        ("/usr/share/zoneinfo/Europe/Paris", True, None),
        ("/etc/localtime", False, "sensitive-host-mount"),
        ("/srv/app/data", False, None),
        ("/home/user/code", False, None),
        ("/var/log/app", False, None),
        ("/etcetera", False, None),
    ],
)
def test_host_path_rule(path: str, read_only: bool, rule: str | None) -> None:
    assert host_path_rule(path, read_only) == rule


def test_resolved_paths_are_judged_not_the_written_ones() -> None:
    found = resolved_mount_violations(
        [("m.0", "./data", "/etc/shadow", True), ("m.1", "/srv/ok", "/srv/ok", False)]
    )
    assert [(v.rule, v.where) for v in found] == [("sensitive-host-mount", "m.0")]
    assert "resolves to '/etc/shadow'" in found[0].what


def test_manifest_allow_table_and_legacy_exceptions_are_one_permission() -> None:
    base = {"app": {"name": "a", "image": "busybox:1", "user": "0"}}
    reason = "the entrypoint chowns files, SEC-11"
    assert Manifest.from_data({**base, "allow": {"run-as-root": reason}}).allowed(
        "run-as-root"
    )
    assert Manifest.from_data({**base, "exceptions": {"run_as_root": reason}}).allowed(
        "run-as-root"
    )
    with pytest.raises(ValueError, match="unknown rule 'no-such-rule'"):
        Manifest.from_data({**base, "allow": {"no-such-rule": reason}})


@pytest.mark.parametrize(
    ("section", "values", "rule"),
    [
        ("security", {"privileged": True}, "privileged"),
        ("security", {"pid": "host"}, "host-pid"),
        ("security", {"sysctls": {"kernel.sem": "1 2 3 4"}}, "unsafe-sysctl"),
        ("capabilities", {"add": ["SYS_PTRACE"]}, "cap-not-allowed"),
        ("network", {"mode": "host"}, "host-network"),
        (
            "filesystem",
            {"mounts": [{"type": "bind", "source": "/etc", "target": "/e"}]},
            "sensitive-host-mount",
        ),
    ],
)
def test_a_manifest_is_refused_by_the_same_rules(
    section: str, values: dict[str, object], rule: str
) -> None:
    document = {"app": {"name": "a", "image": "busybox:1"}, section: values}
    with pytest.raises(ValueError, match=f"rule '{rule}'"):
        Manifest.from_data(document)
    allowed = Manifest.from_data(
        {**document, "allow": {rule: "reviewed and accepted, SEC-12"}}
    )
    assert allowed.violations() == []

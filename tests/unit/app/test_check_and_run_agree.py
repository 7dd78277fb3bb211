"""One reader of `docker run` lines: `check` and `run` read every corpus line the same way.

`saferun check LINE` judges what plain docker would start (saferun.inputs.plain_docker);
`saferun run LINE` starts it hardened (saferun.inputs.dockerrun -> plan). Both read the
line with one parser and one set of value readers, so the ContainerSpec `check` builds
equals the one built from the plan `run` makes in every fact the line states; they differ
only where the line is silent and saferun's hardened defaults apply.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from saferun.app.check import IDEAL_FACTS
from saferun.app.planning import checked_plan
from saferun.errors import ManifestError, Refused, UnsupportedFlag
from saferun.inputs.dockerargs import split_command_line
from saferun.inputs.dockerrun import (
    base_for_image,
    build_manifest,
    from_docker_run,
    merge_document,
    parse_run_args,
)
from saferun.inputs.plain_docker import plain_docker_spec
from saferun.policy.spec import ContainerSpec, PortSpec, from_plan
from tests.unit.inputs.test_docker_run_corpus import CASES, CWD, shell_expand

# Facts every line states the same way to both commands.
ALWAYS_READ_ALIKE = ("image", "privileged", "cap_add", "mounts", "pid", "ipc", "uts",
                     "userns", "devices", "device_cgroup_rules", "gpus", "sysctls", "ports",
                     "runtime", "cpu_shares", "publish_all", "cgroup_parent", "oom_score_adj",
                     "ingress", "egress")
# Facts saferun hardens where the line is silent, with the flags that state them.
STATED_BY = {
    "user": ("user",), "read_only": ("read-only",), "memory": ("memory",),
    "memory_swap": ("memory-swap",), "nano_cpus": ("cpus",), "pids_limit": ("pids-limit",),
    "cgroupns": ("cgroupns",), "restart_policy": ("restart",),
    "healthcheck": ("health-cmd", "no-healthcheck"),
    "network": ("network",),
    "cpu_quota": ("cpu-quota",),  # --cpu-period alone: saferun keeps `cpus` as the quota
}
# Always saferun's own, whatever the line says (a weaker value is refused, not honoured).
SAFERUN_DECIDES = {"restart_retries",  # saferun bounds on-failure without a count (CIS 5.14)
                   "origin", "cap_drop", "no_new_privileges", "seccomp", "seccomp_sha256",
                   "apparmor", "labels", "ulimits", "selinux_label", "systempaths_unconfined"}


def _both(line: str) -> tuple[ContainerSpec, ContainerSpec, Any] | None:
    parsed = parse_run_args(split_command_line(line))
    checked = plain_docker_spec(parsed, cwd=CWD)
    try:
        dropin = from_docker_run(parsed, cwd=CWD)
        document = merge_document(base_for_image(parsed.image, dropin.options.name), dropin)
        manifest = build_manifest(document)
    except (Refused, UnsupportedFlag):
        return None  # `run` refuses the line: nothing is started to compare with
    try:
        plan = checked_plan(manifest, IDEAL_FACTS, dropin.options)
    except ManifestError:  # a floating tag, refused by policy: judge the rest as published
        document["policy"] = {"ignore": {"image-tag-latest": "corpus line as published"}}
        plan = checked_plan(build_manifest(document), IDEAL_FACTS, dropin.options)
    return checked, from_plan(plan), parsed


def _as_run_binds(port: PortSpec) -> PortSpec:
    # The one documented difference in a port: no address means loopback under saferun.
    return dataclasses.replace(port, host_ip=port.host_ip or "127.0.0.1")


def test_every_field_is_classified() -> None:
    fields = {f.name for f in dataclasses.fields(ContainerSpec)}
    assert fields == set(ALWAYS_READ_ALIKE) | set(STATED_BY) | SAFERUN_DECIDES


@pytest.mark.parametrize("case", CASES, ids=[f"{i}" for i in range(len(CASES))])
def test_check_and_run_read_the_line_alike(case: dict[str, Any]) -> None:
    found = _both(shell_expand(case["line"]))
    if found is None:
        assert case["expect"] != "hardened"
        return
    checked, started, parsed = found
    for name in ALWAYS_READ_ALIKE:
        mine, theirs = getattr(checked, name), getattr(started, name)
        if name == "ports":
            mine = tuple(_as_run_binds(p) for p in mine)
        assert mine == theirs, (name, case["line"])
    for name, flags in STATED_BY.items():
        if any(parsed.values(flag) or parsed.flag(flag) for flag in flags):
            assert getattr(checked, name) == getattr(started, name), (name, case["line"])
    if ":" in (parsed.last("restart") or ""):
        assert checked.restart_retries == started.restart_retries
    assert set(checked.labels) <= set(started.labels)
    assert set(checked.ulimits) <= set(started.ulimits)


def test_the_comparison_can_fail() -> None:
    # A line that states a bind mount: if run read it read-only and check read-write, the
    # property above would catch it. Shown here on the real readers' output.
    found = _both("docker run -v /srv/data:/data nginx:1.27")
    assert found is not None
    checked, started, _ = found
    assert checked.mounts == started.mounts and not checked.mounts[0].read_only
    flipped = dataclasses.replace(started.mounts[0], read_only=True)
    assert checked.mounts != (flipped,)

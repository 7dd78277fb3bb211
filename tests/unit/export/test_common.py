"""What every target shares: notes for what it cannot carry, determinism, helpers."""

from __future__ import annotations

from typing import Any

import pytest

from saferun.export import ExportInput, Target, export
from saferun.export.common import DROPIN_FIELDS, dropin, go_duration, prepare
from saferun.model.manifest import Manifest
from saferun.model.units import format_size
from tests.unit.export.cases import VARIANTS, VARIED, run

REASON = "needed by this test manifest"
# Every drop-in `docker run` setting at once, in the two shapes a manifest allows.
DROPIN_MANIFESTS: list[dict[str, Any]] = [
    {"app": {"name": "weak", "image": "busybox:1", "env_from_host": ["HOME"],
             "platform": "linux/amd64", "stop_signal": "SIGINT", "stop_timeout": 5},
     "resources": {"shm_size": "128m", "storage_size": "2g"},
     "network": {"mode": "host"},
     "filesystem": {"mounts": [{"type": "bind", "source": "./data", "target": "/data",
                                "propagation": "rslave", "relabel": "z"}]},
     "security": {"privileged": True, "pid": "host", "ipc": "host", "uts": "host",
                  "userns_mode": "host", "cgroupns": "host", "devices": ["/dev/fuse"],
                  "device_cgroup_rules": ["c 10:229 rwm"], "gpus": "all",
                  "sysctls": {"kernel.msgmax": "65536"}, "systempaths": "unconfined",
                  "label": "disable"},
     "allow": {rule: REASON for rule in (
         "privileged", "host-pid", "host-ipc", "host-uts", "host-userns", "host-cgroupns",
         "device", "gpus", "unsafe-sysctl", "host-network", "systempaths-unconfined",
         "label-disable")}},
    {"app": {"name": "net", "image": "busybox:1"},
     "network": {"mode": "jobs", "aliases": ["net.jobs"], "extra_hosts": ["q:10.0.0.5"],
                 "dns": ["10.0.0.2"], "dns_search": ["jobs.example"], "dns_options": ["ndots:2"],
                 "expose": ["9000-9001/udp"]}},
]


def _shown(name: str, value: Any, text: str) -> bool:
    if value is True:
        return {"privileged": "privileged"}.get(name, name) in text
    if name == "storage_size":
        return f"size: '{value}'" in text or f"size={value}" in text
    if name == "shm_size":
        return any(s in text for s in (format_size(value), f"{value // 2**20}Mi"))
    items = value if isinstance(value, tuple) else (value,)
    parts = [str(p) for i in items for p in (i if isinstance(i, tuple) else (i,))]
    return all(p.split(":")[0] in text for p in parts)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("document", DROPIN_MANIFESTS, ids=["weakening", "network"])
def test_nothing_is_dropped_silently(document: dict[str, Any], variant: str) -> None:
    """Each set drop-in field is either in the output or named by a note."""
    manifest = Manifest.from_data(document)
    target, options = VARIANTS[variant]
    result = export([ExportInput(manifest)], target, **options)
    plan = prepare(ExportInput(manifest)).plan
    body = "\n".join(line for line in result.main.content.splitlines()
                     if not line.startswith("#"))
    noted = {n.key for n in result.notes}
    for name, key in DROPIN_FIELDS.items():
        value = dropin(plan, name)
        if value is not None:
            assert key in noted or _shown(name, value, body), f"{variant}: {key} vanished"
    for option in ("systempaths=unconfined", "label=disable"):
        if option in plan.security_opts:
            assert option in body or any(option in n.message for n in result.notes)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_output_is_deterministic(variant: str) -> None:
    first, second = run(VARIED, variant), run(list(VARIED), variant)
    assert first == second


def test_notes_are_sorted_and_named() -> None:
    result = run(VARIED, "kubernetes-pod-1.30")
    assert list(result.notes) == sorted(result.notes)
    assert all(n.app and n.key and n.message for n in result.notes)


def test_go_duration() -> None:
    assert go_duration(0) == "0s"
    assert go_duration(90 * 10**9) == "1m30s"
    assert go_duration(2_500_000_000) == "2s500ms"
    assert go_duration(3600 * 10**9 + 1) == "1h1ns"


def test_docker_default_and_unconfined_write_no_profile() -> None:
    for profile, exceptions in (("docker-default", {}),
                                ("unconfined", {"seccomp_unconfined": REASON})):
        manifest = Manifest.from_data({"app": {"name": "a", "image": "busybox:1"},
                                            "seccomp": {"profile": profile},
                                            "exceptions": exceptions})
        for target in Target:
            files = [f.path for f in export([ExportInput(manifest)], target).files]
            assert not any("seccomp" in f for f in files), (profile, target, files)

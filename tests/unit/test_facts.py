from __future__ import annotations

from saferun.facts import HostFacts

INFO = {
    "ServerVersion": "20.10.24", "Architecture": "x86_64", "KernelVersion": "6.1.0", "OSType": "linux",
    "SecurityOptions": ["name=seccomp,profile=default", "name=userns", "name=cgroupns"],
    "Runtimes": {"runc": {"path": "runc"}, "runsc": {"path": "/usr/bin/runsc"}},
    "DefaultRuntime": "runc", "CgroupVersion": "2", "MemoryLimit": True, "SwapLimit": False,
    "PidsLimit": True, "CpuCfsQuota": True,
}


def test_from_info() -> None:
    facts = HostFacts.from_info(INFO)
    assert facts.seccomp and facts.userns_remap and not facts.apparmor and not facts.rootless
    assert facts.runtimes == {"runc", "runsc"}
    assert facts.swap_limit is False
    assert facts.cgroup_version == "2"


def test_missing_fields_do_not_crash() -> None:
    facts = HostFacts.from_info({})
    assert facts.security_options == frozenset()
    assert facts.runtimes == frozenset()

from __future__ import annotations

from saferun.model.facts import HostFacts

INFO = {
    "ServerVersion": "20.10.24",
    "Architecture": "x86_64",
    "KernelVersion": "6.1.0",
    "OSType": "linux",
    "SecurityOptions": ["name=seccomp,profile=default", "name=userns", "name=cgroupns"],
    "Runtimes": {"runc": {"path": "runc"}, "runsc": {"path": "/usr/bin/runsc"}},
    "DefaultRuntime": "runc",
    "CgroupVersion": "2",
    "MemoryLimit": True,
    "SwapLimit": False,
    "PidsLimit": True,
    "CpuCfsQuota": True,
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


def test_runtime_args_and_userns_root_from_info() -> None:
    info = {
        **INFO,
        "Runtimes": {
            "runc": {"path": "runc"},
            "runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=host"]},
        },
        "DockerRootDir": "/var/lib/docker-userns/100000.100000",
    }
    facts = HostFacts.from_info(info)
    assert facts.args_of("runsc") == ("--network=host",) and facts.args_of("runc") == ()
    assert facts.userns_root == (100000, 100000)
    plain = HostFacts.from_info({**info, "SecurityOptions": ["name=seccomp"]})
    assert plain.userns_root is None
    assert HostFacts.from_info({**INFO, "DockerRootDir": "/var/lib/docker"}).userns_root is None
    assert facts.kvm_available is None and facts.subuid_range is None  # gathered at the edge

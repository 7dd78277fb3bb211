"""HostFacts: what the daemon can enforce, read once at the edge and passed into the core."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class HostFacts:
    """The subset of `docker info` that planning depends on."""

    server_version: str = "unknown"
    architecture: str = "x86_64"
    kernel_version: str = ""
    os_type: str = "linux"
    security_options: frozenset[str] = frozenset({"seccomp"})
    runtimes: frozenset[str] = frozenset({"runc"})
    default_runtime: str = "runc"
    cgroup_version: str = "2"
    memory_limit: bool = True
    swap_limit: bool = True
    pids_limit: bool = True
    cpu_cfs_quota: bool = True
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def seccomp(self) -> bool:
        return "seccomp" in self.security_options

    @property
    def apparmor(self) -> bool:
        return "apparmor" in self.security_options

    @property
    def userns_remap(self) -> bool:
        return "userns" in self.security_options

    @property
    def rootless(self) -> bool:
        return "rootless" in self.security_options

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> HostFacts:
        """Parse the JSON of `GET /info` (docker info)."""
        options = set()
        for entry in info.get("SecurityOptions") or []:
            for part in str(entry).split(","):
                key, _, value = part.partition("=")
                if key == "name":
                    options.add(value)
        return cls(
            server_version=str(info.get("ServerVersion", "unknown")),
            architecture=str(info.get("Architecture", "x86_64")),
            kernel_version=str(info.get("KernelVersion", "")),
            os_type=str(info.get("OSType", "linux")),
            security_options=frozenset(options),
            runtimes=frozenset((info.get("Runtimes") or {}).keys()),
            default_runtime=str(info.get("DefaultRuntime", "runc")),
            cgroup_version=str(info.get("CgroupVersion", "1")),
            memory_limit=bool(info.get("MemoryLimit", True)),
            swap_limit=bool(info.get("SwapLimit", True)),
            pids_limit=bool(info.get("PidsLimit", True)),
            cpu_cfs_quota=bool(info.get("CpuCfsQuota", True)),
            warnings=tuple(str(w) for w in info.get("Warnings") or ()),
        )


# Used by `saferun check` and `--dry-run --offline`: a typical Linux daemon, no AppArmor.
OFFLINE_FACTS = HostFacts(server_version="offline", runtimes=frozenset({"runc", "runsc"}))

# The fields of /info that planning reads; their values key the plan cache.
FACT_KEYS = ("ServerVersion", "Architecture", "KernelVersion", "OSType", "SecurityOptions",
             "Runtimes", "DefaultRuntime", "CgroupVersion", "MemoryLimit", "SwapLimit",
             "PidsLimit", "CpuCfsQuota")

"""HostFacts: what the daemon can enforce, read once at the edge and passed into the core."""

from __future__ import annotations

from typing import Any

import msgspec


class HostFacts(msgspec.Struct, frozen=True):
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
    warnings: tuple[str, ...] = ()
    # runtimeArgs of each registered runtime (e.g. runsc's --network mode), from /info.
    runtime_args: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # (uid, gid) that container root has on the host under userns-remap: dockerd keeps a
    # remapped daemon's data under <data-root>/<uid>.<gid>, which /info reports.
    userns_root: tuple[int, int] | None = None
    # Gathered on the local host at the edge (None: unknown, e.g. a remote daemon):
    kvm_available: bool | None = None  # /dev/kvm is a character device (Kata needs it)
    subuid_range: tuple[int, int] | None = None  # (start, count) of dockremap in /etc/subuid

    def args_of(self, runtime: str) -> tuple[str, ...]:
        return dict(self.runtime_args).get(runtime, ())

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
            runtime_args=_runtime_args(info.get("Runtimes") or {}),
            userns_root=_userns_root(str(info.get("DockerRootDir", ""))) if "userns" in options
            else None,
        )


def _runtime_args(runtimes: dict[str, Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    result = []
    for name, spec in sorted(runtimes.items()):
        args = (spec or {}).get("runtimeArgs") if isinstance(spec, dict) else None
        if args:
            result.append((str(name), tuple(str(a) for a in args)))
    return tuple(result)


def _userns_root(root_dir: str) -> tuple[int, int] | None:
    """`/var/lib/docker/100000.100000` -> (100000, 100000)."""
    uid, dot, gid = root_dir.rstrip("/").rsplit("/", 1)[-1].partition(".")
    if dot and uid.isdigit() and gid.isdigit():
        return int(uid), int(gid)
    return None


# Used by `saferun check` and `--dry-run --offline`: a typical Linux daemon, no AppArmor.
OFFLINE_FACTS = HostFacts(server_version="offline", runtimes=frozenset({"runc", "runsc"}))

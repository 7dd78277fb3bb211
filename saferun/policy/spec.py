"""ContainerSpec: the normalised facts of one container, whatever described it.

Policy rules judge facts, they do not fetch them. A manifest (through its RunPlan), a
`docker run` command line and the JSON of `docker inspect` all become the same frozen
`ContainerSpec`, so every rule exists once and `saferun check`, `score` and `verify` agree.

Pure: the builders read no file and call no engine. Host paths are judged as the caller
resolved them (`with_resolved_sources`, fed by the edge that can follow symlinks).

A `docker run` line becomes a spec in saferun.inputs.plain_docker, read by the same
parser as `saferun run` reads it, with docker's defaults instead of saferun's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from saferun.model.capabilities import CAPABILITY_BITS, DOCKER_DEFAULT_CAPS
from saferun.model.normalise import is_anonymous_volume

if TYPE_CHECKING:
    from saferun.plan.planner import RunPlan

ALL_CAPS = frozenset(CAPABILITY_BITS)
EXCEPTIONS_LABEL = "io.saferun.exceptions"


@dataclass(frozen=True)
class MountSpec:
    """A bind mount or volume. `source` is the host path (as resolved) or the volume name."""

    kind: str  # bind | volume | tmpfs
    source: str
    target: str
    read_only: bool
    propagation: str | None = None
    written_source: str | None = None  # the path as written, when symlinks led elsewhere


@dataclass(frozen=True)
class PortSpec:
    host_ip: str  # "" = every interface (docker's default)
    host_port: int | None  # None/0 = a random high port
    container_port: int
    protocol: str = "tcp"


@dataclass(frozen=True)
class UlimitSpec:
    name: str
    soft: int  # -1 = unlimited
    hard: int


@dataclass(frozen=True)
class ContainerSpec:
    """Every fact the policy rules judge. Namespace modes: None = private (docker's default)."""

    image: str
    origin: str = "manifest"  # manifest | docker-run | container
    user: str | None = None  # None: the image's default user (often root)
    privileged: bool = False
    cap_add: frozenset[str] = frozenset()
    cap_drop: frozenset[str] = frozenset()
    mounts: tuple[MountSpec, ...] = ()
    network: str = "bridge"
    pid: str | None = None
    ipc: str | None = None
    uts: str | None = None
    userns: str | None = None
    cgroupns: str | None = None
    devices: tuple[str, ...] = ()  # host device paths
    device_cgroup_rules: tuple[str, ...] = ()
    gpus: str | None = None
    memory: int = 0  # bytes; 0 = unlimited
    memory_swap: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpu_quota: int = 0
    pids_limit: int = 0  # 0 or -1 = unlimited
    read_only: bool = False
    ports: tuple[PortSpec, ...] = ()
    publish_all: bool = False
    restart_policy: str = "no"
    restart_retries: int = 0
    no_new_privileges: bool = False
    seccomp: str = "default"  # default | unconfined | custom
    seccomp_sha256: str | None = None  # of a custom profile, canonical JSON
    apparmor: str | None = None  # None: the engine's default; "unconfined"; a profile name
    selinux_label: str | None = None  # "disable" or a label option
    systempaths_unconfined: bool = False
    healthcheck: bool | None = None  # None: not said here (the image may define one)
    ulimits: tuple[UlimitSpec, ...] = ()
    cgroup_parent: str = ""
    oom_score_adj: int = 0  # below 0: the host's processes are OOM-killed first
    runtime: str = "runc"
    sysctls: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    # [network] entries; None: unrestricted (docker's default), (): nothing.
    ingress: tuple[str, ...] | None = None
    egress: tuple[str, ...] | None = None

    @property
    def effective_caps(self) -> frozenset[str]:
        """The capability bounding set the container gets."""
        if self.privileged or "ALL" in self.cap_add:
            return ALL_CAPS
        base = frozenset() if "ALL" in self.cap_drop else DOCKER_DEFAULT_CAPS - self.cap_drop
        return base | (self.cap_add - {"ALL"})

    @property
    def exceptions(self) -> dict[str, str]:
        """Reasons saferun recorded at launch (the io.saferun.exceptions label)."""
        raw = dict(self.labels).get(EXCEPTIONS_LABEL)
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


def canonical_cap(name: str) -> str:
    upper = name.strip().upper()
    if upper in ("ALL", "CAP_ALL"):
        return "ALL"
    return upper if upper.startswith("CAP_") else f"CAP_{upper}"


def profile_sha256(text: str) -> str:
    """Digest of a seccomp profile's canonical JSON, so a compacted copy compares equal."""
    try:
        canonical = json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = text
    return hashlib.sha256(canonical.encode()).hexdigest()


# Actions under which a call goes ahead: a profile made only of them filters nothing.
_PERMITTING = frozenset({"SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"})


def denies_nothing(text: str) -> bool:
    """True for a seccomp profile that lets every call through (e.g. defaultAction
    SCMP_ACT_LOG with only allow rules): as weak as seccomp=unconfined, judged so."""
    try:
        profile = json.loads(text)
    except ValueError:
        return False
    if not isinstance(profile, dict) or profile.get("defaultAction") not in _PERMITTING:
        return False
    rules = profile.get("syscalls") or []
    return all(isinstance(r, dict) and r.get("action") in _PERMITTING for r in rules)


def with_resolved_sources(spec: ContainerSpec, resolved: Mapping[str, str]) -> ContainerSpec:
    """Replace bind sources by the real paths the edge resolved (symlinks followed)."""
    mounts, changed = [], False
    for mount in spec.mounts:
        real = resolved.get(mount.source) if mount.kind == "bind" else None
        if real and real != mount.source:
            mount = replace(mount, source=real, written_source=mount.source)
            changed = True
        mounts.append(mount)
    return replace(spec, mounts=tuple(mounts)) if changed else spec


# --- from a RunPlan (a manifest) ---------------------------------------------------------

def from_plan(plan: RunPlan) -> ContainerSpec:
    """What `saferun run` would start for this plan."""
    security = set(plan.security_opts)
    if plan.seccomp_profile is not None:
        seccomp, seccomp_sha = "custom", profile_sha256(plan.seccomp_profile)
        if denies_nothing(plan.seccomp_profile):
            seccomp = "unconfined"
    else:
        seccomp = "unconfined" if "seccomp=unconfined" in security else "default"
        seccomp_sha = None
    apparmor = next((o.split("=", 1)[1] for o in security if o.startswith("apparmor=")), None)
    return ContainerSpec(
        image=plan.image,
        origin="manifest",
        user=plan.user,
        privileged=plan.privileged,
        cap_add=frozenset(canonical_cap(c) for c in plan.cap_add),
        cap_drop=frozenset(canonical_cap(c) for c in plan.cap_drop),
        mounts=tuple(MountSpec(m.kind, m.source, m.target, m.read_only, m.propagation)
                     for m in plan.mounts),
        network=plan.network,
        pid=plan.pid_mode,
        ipc=namespace_mode(plan.ipc_mode),
        uts=plan.uts_mode,
        userns=plan.userns_mode,
        cgroupns=namespace_mode(plan.cgroupns_mode),
        devices=tuple(d.split(":")[0] for d in plan.devices),
        device_cgroup_rules=plan.device_cgroup_rules,
        gpus=plan.gpus,
        memory=plan.memory,
        memory_swap=plan.memory_swap,
        nano_cpus=plan.nano_cpus,
        cpu_shares=plan.cpu_shares or 0,
        cpu_quota=plan.cpu_quota or 0,
        pids_limit=plan.pids_limit,
        read_only=plan.read_only,
        publish_all=plan.publish_all,
        cgroup_parent=plan.cgroup_parent or "",
        oom_score_adj=plan.oom_score_adj or 0,
        ports=tuple(PortSpec(p.host_ip, p.host_port or None, p.container_port, p.protocol)
                    for p in plan.ports),
        restart_policy=plan.restart_policy,
        restart_retries=plan.restart_retries,
        no_new_privileges="no-new-privileges" in security,
        seccomp=seccomp,
        seccomp_sha256=seccomp_sha,
        apparmor=apparmor,
        selinux_label="disable" if "label=disable" in security else None,
        systempaths_unconfined="systempaths=unconfined" in security,
        healthcheck=True if plan.healthcheck is not None else None,
        ulimits=tuple(UlimitSpec(u.name, u.soft, u.hard) for u in plan.ulimits),
        runtime=plan.runtime,
        sysctls=plan.sysctls,
        labels=plan.labels,
        ingress=plan.network_ingress,
        egress=plan.network_egress,
    )


def namespace_mode(mode: str | None) -> str | None:
    """'host' and 'container:X' matter; private/shareable/none are all private."""
    if not mode or mode in ("private", "shareable", "none", "default", ""):
        return None
    return mode


def security_opt_pair(option: str) -> tuple[str, str]:
    """`seccomp=x`, `seccomp:x` (old syntax), bare `no-new-privileges`."""
    for sep in ("=", ":"):
        if sep in option:
            key, _, value = option.partition(sep)
            return key.strip(), value.strip()
    return option.strip(), ""


# --- from `docker inspect` ---------------------------------------------------------------

def from_inspect(data: Mapping[str, Any]) -> ContainerSpec:
    """The JSON of `docker inspect CONTAINER` (one element), as docker recorded it."""
    host: Mapping[str, Any] = data.get("HostConfig") or {}
    config: Mapping[str, Any] = data.get("Config") or {}
    security = dict(security_opt_pair(o) for o in host.get("SecurityOpt") or [])
    seccomp_value = security.get("seccomp")
    if seccomp_value is None or seccomp_value in ("", "builtin"):
        seccomp, seccomp_sha = "default", None
    elif seccomp_value == "unconfined":
        seccomp, seccomp_sha = "unconfined", None
    else:
        seccomp, seccomp_sha = "custom", profile_sha256(seccomp_value)
        if denies_nothing(seccomp_value):
            seccomp = "unconfined"
    apparmor = data.get("AppArmorProfile") or security.get("apparmor") or None
    restart = host.get("RestartPolicy") or {}
    health = config.get("Healthcheck")
    return ContainerSpec(
        image=str(config.get("Image") or data.get("Image") or ""),
        origin="container",
        user=str(config.get("User") or "") or None,
        privileged=bool(host.get("Privileged")),
        cap_add=frozenset(canonical_cap(c) for c in host.get("CapAdd") or []),
        cap_drop=frozenset(canonical_cap(c) for c in host.get("CapDrop") or []),
        mounts=tuple(_inspect_mount(m) for m in data.get("Mounts") or []
                     if m.get("Type") in ("bind", "volume")),
        network=_inspect_network(data),
        pid=namespace_mode(host.get("PidMode")),
        ipc=namespace_mode(host.get("IpcMode")),
        uts=namespace_mode(host.get("UTSMode")),
        userns=namespace_mode(host.get("UsernsMode")),
        cgroupns=namespace_mode(host.get("CgroupnsMode")),
        devices=tuple(str(d.get("PathOnHost", "")) for d in host.get("Devices") or []),
        device_cgroup_rules=tuple(host.get("DeviceCgroupRules") or ()),
        gpus="requested" if host.get("DeviceRequests") else None,
        memory=int(host.get("Memory") or 0),
        memory_swap=int(host.get("MemorySwap") or 0),
        nano_cpus=int(host.get("NanoCpus") or 0),
        cpu_shares=int(host.get("CpuShares") or 0),
        cpu_quota=int(host.get("CpuQuota") or 0),
        pids_limit=int(host.get("PidsLimit") or 0),
        read_only=bool(host.get("ReadonlyRootfs")),
        ports=_inspect_ports(host.get("PortBindings") or {}),
        publish_all=bool(host.get("PublishAllPorts")),
        restart_policy=str(restart.get("Name") or "no"),
        restart_retries=int(restart.get("MaximumRetryCount") or 0),
        no_new_privileges=security.get("no-new-privileges", "false") in ("", "true", "1"),
        seccomp=seccomp,
        seccomp_sha256=seccomp_sha,
        apparmor=None if apparmor in ("", "docker-default") else apparmor,
        selinux_label=security.get("label"),
        systempaths_unconfined=host.get("MaskedPaths") == [] or
        security.get("systempaths") == "unconfined",
        healthcheck=None if health is None else health.get("Test", [""])[:1] != ["NONE"],
        ulimits=tuple(UlimitSpec(str(u.get("Name")), int(u.get("Soft", 0)), int(u.get("Hard", 0)))
                      for u in host.get("Ulimits") or []),
        cgroup_parent=str(host.get("CgroupParent") or ""),
        oom_score_adj=int(host.get("OomScoreAdj") or 0),
        runtime=str(host.get("Runtime") or "runc"),
        sysctls=tuple(sorted((str(k), str(v)) for k, v in (host.get("Sysctls") or {}).items())),
        labels=tuple(sorted((str(k), str(v)) for k, v in (config.get("Labels") or {}).items())),
        ingress=_policy_label(config, "io.saferun.network-ingress"),
        egress=_policy_label(config, "io.saferun.network-egress"),
    )


def _inspect_network(data: Mapping[str, Any]) -> str:
    """NetworkMode as written (a name or an ID); "host" when the container is attached to
    the engine's host network, whatever it was called (`--network <ID of host>`)."""
    mode = (data.get("HostConfig") or {}).get("NetworkMode")
    attached = ((data.get("NetworkSettings") or {}).get("Networks") or {})
    if "host" in attached:
        return "host"
    return "bridge" if mode in (None, "", "default") else str(mode)


def _inspect_mount(mount: Mapping[str, Any]) -> MountSpec:
    """A mount as the manifest states it: an anonymous volume (docker names it with a random
    64-hex id) has no source, as in `-v /data` or a mount without `source`."""
    kind = str(mount.get("Type"))
    source = str(mount.get("Name") if kind == "volume" else mount.get("Source", ""))
    if kind == "volume" and is_anonymous_volume(source):
        source = ""
    return MountSpec(kind, source, str(mount.get("Destination", "")), not mount.get("RW", True),
                     str(mount.get("Propagation") or "") or None)


def _inspect_ports(bindings: Mapping[str, Any]) -> tuple[PortSpec, ...]:
    ports = []
    for key, hosts in sorted(bindings.items()):
        number, _, protocol = key.partition("/")
        for binding in hosts or []:
            host_port = str(binding.get("HostPort") or "")
            ports.append(PortSpec(str(binding.get("HostIp") or ""),
                                  int(host_port) if host_port.isdigit() and host_port != "0"
                                  else None, int(number), protocol or "tcp"))
    return tuple(ports)


@dataclass(frozen=True)
class SpecSource:
    """A spec and where it came from, for messages and SARIF locations."""

    name: str  # a manifest path, "docker run ...", or a container name
    spec: ContainerSpec
    ignore: Mapping[str, str] = field(default_factory=dict)  # rule id -> written reason
    digest_policy: str = "recommend"  # recommend | require


def _policy_label(config: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    """A stack service's ingress/egress as `saferun up` labelled it; None: open."""
    value = str((config.get("Labels") or {}).get(key) or "open")
    if value == "open":
        return None
    return () if value == "none" else tuple(value.split(","))

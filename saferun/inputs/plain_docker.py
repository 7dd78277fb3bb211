"""What plain `docker run` would start for a command line: the spec `saferun check` judges.

The line is read by the same parser and value readers (saferun.inputs.docker_values) as
`saferun run` reads it; only the defaults differ. This is docker's own: root unless
`--user`, the 14 default capabilities, every interface for `-p 80:80`. The point of linting
a line is to see what it asks for before saferun hardens it.

Pure: no file is read and no engine is asked; bind sources are judged as written, resolved
by the caller (saferun.app.check) where they exist on this host.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from saferun.errors import UsageError
from saferun.inputs import docker_values
from saferun.inputs.dockerargs import ParsedRun
from saferun.model.units import parse_cpus, parse_size
from saferun.policy.spec import (
    ContainerSpec,
    MountSpec,
    PortSpec,
    UlimitSpec,
    canonical_cap,
    namespace_mode,
    security_opt_pair,
)


def plain_docker_spec(parsed: ParsedRun, *, cwd: str = "/") -> ContainerSpec:
    """What plain `docker run` would start for these flags (docker's defaults apply)."""
    if parsed.image is None:
        raise UsageError("the docker run line names no image")
    security = [security_opt_pair(o) for o in parsed.values("security-opt")]
    opts = dict(security)
    seccomp = opts.get("seccomp")
    mounts = [_mount_spec(docker_values.parse_volume(v), cwd) for v in parsed.values("volume")]
    mounts += [_mount_spec(docker_values.parse_mount(v), cwd) for v in parsed.values("mount")]
    network = [docker_values.parse_network(v)["name"] for v in parsed.values("network")]
    restart, _, retries = (parsed.last("restart") or "no").partition(":")
    return ContainerSpec(
        image=parsed.image,
        origin="docker-run",
        user=parsed.last("user"),
        privileged=bool(parsed.flag("privileged")),
        cap_add=frozenset(canonical_cap(c) for c in _split_list(parsed.values("cap-add"))),
        cap_drop=frozenset(canonical_cap(c) for c in _split_list(parsed.values("cap-drop"))),
        mounts=tuple(m for m in mounts if m is not None),
        network=network[0] if network else "bridge",
        pid=namespace_mode(parsed.last("pid")),
        ipc=namespace_mode(parsed.last("ipc")),
        uts=namespace_mode(parsed.last("uts")),
        userns=namespace_mode(parsed.last("userns")),
        cgroupns=namespace_mode(parsed.last("cgroupns")),
        devices=tuple(d.split(":")[0] for d in parsed.values("device")),
        device_cgroup_rules=tuple(parsed.values("device-cgroup-rule")),
        gpus=parsed.last("gpus"),
        memory=_size(parsed.last("memory"), "--memory"),
        memory_swap=_size(parsed.last("memory-swap"), "--memory-swap", allow_unlimited=True),
        nano_cpus=_cpus(parsed.last("cpus")),
        cpu_shares=_int(parsed.last("cpu-shares"), "--cpu-shares"),
        cpu_quota=_int(parsed.last("cpu-quota"), "--cpu-quota"),
        pids_limit=_int(parsed.last("pids-limit"), "--pids-limit"),
        read_only=bool(parsed.flag("read-only")),
        ports=tuple(p for v in parsed.values("publish") for p in parse_publish(v)),
        publish_all=bool(parsed.flag("publish-all")),
        restart_policy=restart,
        restart_retries=_int(retries or None, "--restart"),
        no_new_privileges=opts.get("no-new-privileges", "false") in ("", "true", "1"),
        seccomp="default" if seccomp is None else
        ("unconfined" if seccomp == "unconfined" else "custom"),
        apparmor=opts.get("apparmor"),
        selinux_label=opts.get("label"),
        systempaths_unconfined=opts.get("systempaths") == "unconfined",
        healthcheck=False if parsed.flag("no-healthcheck") else
        (True if parsed.last("health-cmd") else None),
        ulimits=tuple(_ulimit(u) for u in parsed.values("ulimit")),
        cgroup_parent=parsed.last("cgroup-parent") or "",
        oom_score_adj=_int(parsed.last("oom-score-adj"), "--oom-score-adj"),
        runtime=parsed.last("runtime") or "runc",
        sysctls=_pairs(parsed.values("sysctl")),
        labels=_pairs(parsed.values("label")),
    )


def _pairs(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """`KEY=VALUE` words -> sorted pairs (the last one of a key wins, as in docker)."""
    pairs: dict[str, str] = {}
    for value in values:
        key, _, setting = value.partition("=")
        pairs[key] = setting
    return tuple(sorted(pairs.items()))


def _split_list(values: Sequence[str]) -> list[str]:
    return [part for value in values for part in value.split(",") if part.strip()]


def _size(value: str | None, flag: str, *, allow_unlimited: bool = False) -> int:
    if value is None:
        return 0
    if allow_unlimited and value.strip() == "-1":
        return -1
    try:
        return parse_size(value)
    except ValueError as exc:
        raise UsageError(f"{flag} {value!r}: {exc}") from None


def _cpus(value: str | None) -> int:
    if value is None:
        return 0
    try:
        return parse_cpus(value)
    except ValueError as exc:
        raise UsageError(f"--cpus {value!r}: {exc}") from None


def _int(value: str | None, flag: str) -> int:
    if value is None:
        return 0
    try:
        return int(value)
    except ValueError:
        raise UsageError(f'invalid argument "{value}" for "{flag}": not an integer') from None


def _ulimit(value: str) -> UlimitSpec:
    name, _, limits = value.partition("=")
    soft, _, hard = limits.partition(":")
    try:
        return UlimitSpec(name, int(soft), int(hard or soft))
    except ValueError:
        raise UsageError(f"--ulimit {value!r}: use NAME=SOFT[:HARD]") from None


def parse_publish(value: str) -> list[PortSpec]:
    """`[ip:][hostPort:]containerPort[/proto]` with docker's meaning: no ip = every interface."""
    published = docker_values.parse_publish(value)
    hosts = published.host_ports
    return [PortSpec(published.host_ip, hosts[i] if i < len(hosts) else None, port,
                     published.protocol)
            for i, port in enumerate(published.container_ports)]


def _mount_spec(mount: docker_values.MountValue, cwd: str) -> MountSpec | None:
    """A bind or volume (an anonymous one has no source) as the rules see it; tmpfs holds
    no host data and is left out."""
    if mount.kind == "anonymous":
        return MountSpec("volume", "", mount.target, mount.read_only)
    if mount.kind not in ("bind", "volume") or not mount.source:
        return None
    source = mount.source
    if mount.kind == "bind":
        source = posixpath.normpath(posixpath.join(cwd, source))
    return MountSpec(mount.kind, source, mount.target, mount.read_only, mount.propagation)

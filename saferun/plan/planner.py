"""Planning: manifest + host facts -> one immutable RunPlan that holds every setting.

Pure: no file, subprocess or environment access. Every requirement the daemon cannot meet
raises RequirementUnmet here, before anything starts (fail closed). The seccomp profile is
generated here but compiled by libseccomp only in saferun.app.planning.checked_plan, the
one way a use case obtains a plan to start.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

from saferun import __version__
from saferun.errors import RequirementUnmet
from saferun.model.facts import HostFacts
from saferun.model.manifest import Manifest, Ulimit
from saferun.model.runtimes import RUNTIME_ALIASES, RUNTIME_FIX
from saferun.model.units import parse_duration, parse_size
from saferun.plan.runtime_controls import check_runtime_controls, host_pids_limit, userns_notes

LABEL_PREFIX = "io.saferun."
DEFAULT_LOG_OPTIONS = {"max-size": "10m", "max-file": "3"}
ROTATING_LOG_DRIVERS = frozenset({"json-file", "local"})


@dataclass(frozen=True)
class LaunchOptions:
    """How this one start differs from the manifest: docker run's session flags."""

    detach: bool = False
    remove: bool = False
    interactive: bool = False
    tty: bool = False
    name: str | None = None
    command: tuple[str, ...] | None = None
    manifest_dir: str = "."
    manifest_sha256: str = ""
    # docker CLI-only options that never reach the container's config (--cidfile,
    # --detach-keys, --sig-proxy, --attach, --quiet, --disable-content-trust), as validated
    # argv words; the API body has no place for them.
    client_flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class TmpfsPlan:
    target: str
    options: (
        str  # docker's --tmpfs option string, e.g. "rw,noexec,nosuid,nodev,size=67108864,mode=1777"
    )


@dataclass(frozen=True)
class MountPlan:
    kind: str  # bind | volume
    source: str
    target: str
    read_only: bool
    propagation: str | None = None  # bind propagation, e.g. rslave
    relabel: str | None = None  # SELinux z/Z: only the -v syntax and API Binds carry it


@dataclass(frozen=True)
class PortPlan:
    host_ip: str
    host_port: int | None
    container_port: int
    protocol: str


@dataclass(frozen=True)
class HealthcheckPlan:
    shell_command: str
    interval_ns: int
    timeout_ns: int
    retries: int
    start_period_ns: int


@dataclass(frozen=True)
class UlimitPlan:
    name: str
    soft: int
    hard: int


@dataclass(frozen=True)
class RunPlan:
    """Every setting of one container start. Renderers turn it into argv or an API body."""

    image: str
    container_name: str | None
    entrypoint: tuple[str, ...] | None
    command: tuple[str, ...] | None
    user: str
    workdir: str | None
    hostname: str | None
    env: tuple[tuple[str, str], ...]
    env_files: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    cap_add: tuple[str, ...]
    read_only: bool
    tmpfs: tuple[TmpfsPlan, ...]
    mounts: tuple[MountPlan, ...]
    memory: int
    memory_swap: int
    nano_cpus: int
    pids_limit: int
    ulimits: tuple[UlimitPlan, ...]
    network: str
    ports: tuple[PortPlan, ...]
    restart_policy: str
    restart_retries: int
    healthcheck: HealthcheckPlan | None
    log_driver: str
    log_options: tuple[tuple[str, str], ...]
    security_opts: tuple[str, ...]  # without seccomp=<file>, which is an artefact (see below)
    seccomp_profile: str | None  # generated profile JSON; None = the engine's built-in default
    apparmor_profile: tuple[str, str] | None  # (name, text) to load before start
    runtime: str
    init: bool
    pull: str
    detach: bool
    remove: bool
    interactive: bool
    tty: bool
    cap_drop: tuple[str, ...] = ("ALL",)
    warnings: tuple[str, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = ()  # facts for --dry-run, e.g. the host uid of container root
    # Drop-in `docker run` settings (saferun.inputs.dockerrun); each weakening one needs an [allow].
    client_flags: tuple[str, ...] = ()
    env_from_host: tuple[str, ...] = ()
    platform: str | None = None
    stop_signal: str | None = None
    stop_timeout: int | None = None
    shm_size: int | None = None
    network_aliases: tuple[str, ...] = ()
    expose: tuple[str, ...] = ()
    storage_size: int | None = None
    extra_hosts: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    privileged: bool = False
    pid_mode: str | None = None
    ipc_mode: str | None = None
    uts_mode: str | None = None
    userns_mode: str | None = None
    cgroupns_mode: str | None = None
    devices: tuple[str, ...] = ()
    device_cgroup_rules: tuple[str, ...] = ()
    gpus: str | None = None
    sysctls: tuple[tuple[str, str], ...] = ()


def build_plan(
    manifest: Manifest, facts: HostFacts, options: LaunchOptions | None = None
) -> RunPlan:
    """The one place where a manifest becomes container settings."""
    options = options or LaunchOptions()
    warnings: list[str] = []
    _check_limits_supported(facts, warnings)
    _check_userns(manifest, facts, warnings)
    runtime = _resolve_runtime(manifest, facts)
    seccomp_profile, seccomp_opts = _resolve_seccomp(manifest, facts)
    apparmor_profile, apparmor_opts = _resolve_apparmor(manifest, facts, warnings)
    warnings.extend(check_runtime_controls(manifest, facts, runtime))
    app = manifest.app
    resources = manifest.resources
    return RunPlan(
        image=app.image,
        container_name=options.name or None,
        entrypoint=tuple(app.entrypoint) if app.entrypoint is not None else None,
        command=options.command
        if options.command is not None
        else (tuple(app.command) if app.command is not None else None),
        user=app.user,
        workdir=app.workdir,
        hostname=app.hostname,
        env=tuple(sorted(app.env.items())),
        env_files=tuple(posixpath.join(options.manifest_dir, p) for p in app.env_files),
        labels=_labels(manifest, options),
        cap_add=tuple(manifest.capabilities.add),
        read_only=manifest.filesystem.read_only,
        tmpfs=tuple(
            TmpfsPlan(
                target=t.target,
                options=",".join(
                    [
                        "rw",
                        "exec" if t.exec else "noexec",
                        "suid" if t.suid else "nosuid",
                        "dev" if t.dev else "nodev",
                        f"size={t.size_bytes}",
                        f"mode={t.mode}",
                        *([f"uid={t.uid}"] if t.uid is not None else []),
                        *([f"gid={t.gid}"] if t.gid is not None else []),
                    ]
                ),
            )
            for t in manifest.filesystem.tmpfs
        ),
        mounts=tuple(
            MountPlan(
                kind=m.type,
                source=posixpath.normpath(posixpath.join(options.manifest_dir, m.source))
                if m.type == "bind"
                else m.source,
                target=m.target,
                read_only=m.read_only,
                propagation=m.propagation,
                relabel=m.relabel,
            )
            for m in manifest.filesystem.mounts
        ),
        memory=resources.memory_bytes,
        memory_swap=resources.memory_swap_bytes,
        nano_cpus=resources.nano_cpus,
        pids_limit=host_pids_limit(manifest),
        ulimits=_ulimits(manifest),
        network=manifest.network.mode,
        ports=tuple(
            PortPlan(p.host_ip, p.host, p.container, p.protocol) for p in manifest.network.ports
        ),
        restart_policy=manifest.restart.policy,
        restart_retries=manifest.restart.max_retries
        if manifest.restart.policy == "on-failure"
        else 0,
        healthcheck=_healthcheck(manifest),
        log_driver=manifest.logging.driver,
        log_options=_log_options(manifest),
        security_opts=(
            "no-new-privileges",
            *apparmor_opts,
            *seccomp_opts,
            *_weakened_security_opts(manifest),
        ),
        seccomp_profile=seccomp_profile,
        apparmor_profile=apparmor_profile,
        runtime=runtime,
        init=app.init,
        pull=app.pull,
        detach=options.detach,
        remove=options.remove,
        interactive=options.interactive,
        tty=options.tty,
        warnings=tuple(warnings),
        notes=userns_notes(manifest, facts),
        **_dropin_fields(manifest, options),
    )


def _weakened_security_opts(manifest: Manifest) -> tuple[str, ...]:
    """Security options the manifest allowed by rule (systempaths-unconfined, label-disable)."""
    opts = []
    if manifest.security.systempaths is not None:
        opts.append(f"systempaths={manifest.security.systempaths}")
    if manifest.security.label is not None:
        opts.append(f"label={manifest.security.label}")
    return tuple(opts)


def _dropin_fields(manifest: Manifest, options: LaunchOptions) -> dict[str, Any]:
    """Settings that came with drop-in `docker run` support; all optional, off by default."""
    app, sec, net = manifest.app, manifest.security, manifest.network
    shm = manifest.resources.shm_size
    return {
        "client_flags": options.client_flags,
        "env_from_host": tuple(app.env_from_host),
        "platform": app.platform,
        "stop_signal": app.stop_signal,
        "stop_timeout": app.stop_timeout,
        "shm_size": parse_size(shm) if shm is not None else None,
        "network_aliases": tuple(net.aliases),
        "expose": tuple(net.expose),
        "storage_size": (
            parse_size(manifest.resources.storage_size)
            if manifest.resources.storage_size is not None
            else None
        ),
        "extra_hosts": tuple(net.extra_hosts),
        "dns": tuple(net.dns),
        "dns_search": tuple(net.dns_search),
        "dns_options": tuple(net.dns_options),
        "privileged": sec.privileged,
        "pid_mode": sec.pid,
        "ipc_mode": sec.ipc,
        "uts_mode": sec.uts,
        "userns_mode": sec.userns_mode,
        "cgroupns_mode": sec.cgroupns,
        "devices": tuple(sec.devices),
        "device_cgroup_rules": tuple(sec.device_cgroup_rules),
        "gpus": sec.gpus,
        "sysctls": tuple(sorted(sec.sysctls.items())),
    }


def _check_limits_supported(facts: HostFacts, warnings: list[str]) -> None:
    if not facts.memory_limit:
        raise RequirementUnmet(
            "the daemon's kernel does not support memory limits, so the manifest's memory limit "
            "cannot be enforced",
            fix="enable the memory cgroup controller (boot with cgroup_enable=memory)",
        )
    if not facts.pids_limit:
        raise RequirementUnmet(
            "the daemon's kernel does not support the PIDs cgroup limit (resources.pids)",
            fix="enable the pids cgroup controller on the host",
        )
    if not facts.swap_limit:
        warnings.append(
            "swap accounting is off on this host: resources.memory_swap cannot stop the "
            "container from swapping (boot with swapaccount=1 to enforce it)"
        )


def _check_userns(manifest: Manifest, facts: HostFacts, warnings: list[str]) -> None:
    wanted = manifest.security.userns
    if wanted == "off" or facts.userns_remap or facts.rootless:
        return
    message = (
        "the daemon does not remap user namespaces (no 'userns' or 'rootless' in its security "
        "options), so uid 0 in a container would be uid 0 on the host"
    )
    fix = (
        'start dockerd with --userns-remap=default (daemon.json: "userns-remap": "default") '
        "or use rootless Docker"
    )
    if wanted == "required":
        raise RequirementUnmet(f'security.userns = "required": {message}', fix=fix)
    if int(manifest.app.user.split(":")[0]) == 0:
        warnings.append(f'security.userns = "preferred": {message}; {fix}')


def _resolve_runtime(manifest: Manifest, facts: HostFacts) -> str:
    wanted = manifest.security.runtime
    for alias in RUNTIME_ALIASES[wanted]:
        if alias in facts.runtimes:
            return alias
    registered = ", ".join(sorted(facts.runtimes)) or "none"
    raise RequirementUnmet(
        f'security.runtime = "{wanted}": the daemon has no such runtime registered '
        f"(it has: {registered})",
        fix=RUNTIME_FIX[wanted],
    )


def _resolve_seccomp(manifest: Manifest, facts: HostFacts) -> tuple[str | None, tuple[str, ...]]:
    """Return (profile JSON to hand to docker, extra security options)."""
    profile = manifest.seccomp.profile
    if profile == "unconfined":
        return None, ("seccomp=unconfined",)
    if not facts.seccomp:
        raise RequirementUnmet(
            f'seccomp.profile = "{profile}": the daemon reports no seccomp support',
            fix="use a kernel and dockerd built with seccomp (CONFIG_SECCOMP_FILTER, libseccomp)",
        )
    if profile == "docker-default":
        return None, ()
    # Generated for this manifest and this daemon's architecture; checked_plan then compiles
    # it with libseccomp, so a profile that does not compile never reaches docker.
    from saferun.profiles.seccomp import generate_seccomp, render_seccomp_json

    generated = generate_seccomp(
        manifest.seccomp,
        capabilities=frozenset(manifest.capabilities.add),
        native_arch=facts.architecture,
        runtime=manifest.security.runtime,
    )
    return render_seccomp_json(generated), ()


def _resolve_apparmor(
    manifest: Manifest, facts: HostFacts, warnings: list[str]
) -> tuple[tuple[str, str] | None, tuple[str, ...]]:
    """Return (profile to load before start, security options); see apparmor_profile."""
    from saferun.profiles.apparmor import decide_apparmor

    decision = decide_apparmor(manifest, host_has_apparmor=facts.apparmor)
    if decision.warning:
        warnings.append(decision.warning)
    return decision.to_load, (decision.security_opt,) if decision.security_opt else ()


def _labels(manifest: Manifest, options: LaunchOptions) -> tuple[tuple[str, str], ...]:
    labels = dict(manifest.app.labels)
    labels[LABEL_PREFIX + "version"] = __version__
    labels[LABEL_PREFIX + "app"] = manifest.app.name
    if options.manifest_sha256:
        labels[LABEL_PREFIX + "manifest-sha256"] = options.manifest_sha256
        # Where `saferun verify` finds the manifest again (the file whose sha256 matches).
        labels[LABEL_PREFIX + "manifest-dir"] = options.manifest_dir
    if manifest.exceptions or manifest.allow:
        labels[LABEL_PREFIX + "exceptions"] = json.dumps(
            {**manifest.exceptions, **manifest.allow}, sort_keys=True
        )
    return tuple(sorted(labels.items()))


def _ulimits(manifest: Manifest) -> tuple[UlimitPlan, ...]:
    result = []
    for name in ("nofile", "nproc"):
        value = getattr(manifest.resources, name)
        if value is None:
            continue
        limit = value if isinstance(value, Ulimit) else Ulimit(soft=value, hard=value)
        result.append(UlimitPlan(name, limit.soft, limit.hard))
    return tuple(result)


def _healthcheck(manifest: Manifest) -> HealthcheckPlan | None:
    check = manifest.healthcheck
    if check is None:
        return None
    import shlex

    return HealthcheckPlan(
        shell_command=shlex.join(check.command),
        interval_ns=parse_duration(check.interval),
        timeout_ns=parse_duration(check.timeout),
        retries=check.retries,
        start_period_ns=parse_duration(check.start_period),
    )


def _log_options(manifest: Manifest) -> tuple[tuple[str, str], ...]:
    options = dict(manifest.logging.options)
    if manifest.logging.driver in ROTATING_LOG_DRIVERS:
        for key, value in DEFAULT_LOG_OPTIONS.items():
            options.setdefault(key, value)
    return tuple(sorted(options.items()))

"""Planning: manifest + host facts -> one immutable RunPlan that holds every setting.

Pure: no file, subprocess or environment access. Every requirement the daemon cannot meet
raises RequirementUnmet here, before anything starts (fail closed). The seccomp profile is
generated here but compiled by libseccomp only in saferun.app.planning.checked_plan, the
one way a use case obtains a plan to start.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

import msgspec

from saferun import __version__
from saferun.errors import RequirementUnmet
from saferun.model.facts import HostFacts
from saferun.model.manifest import Manifest, Ulimit
from saferun.model.normalise import is_root_user
from saferun.model.runtimes import RUNTIME_ALIASES, RUNTIME_FIX
from saferun.model.units import parse_duration, parse_size
from saferun.plan.runtime_controls import check_runtime_controls, host_pids_limit, userns_notes

LABEL_PREFIX = "io.saferun."
DEFAULT_LOG_OPTIONS = {"max-size": "10m", "max-file": "3"}
ROTATING_LOG_DRIVERS = frozenset({"json-file", "local"})


class LaunchOptions(msgspec.Struct, frozen=True):
    """How this one start differs from the manifest: docker run's session flags."""

    detach: bool = False
    remove: bool = False
    interactive: bool = False
    tty: bool = False
    name: str | None = None
    # Without --name the container is named after app.name (a manifest's name); a bare
    # image on the command line keeps docker's random name (use_app_name False).
    use_app_name: bool = True
    command: tuple[str, ...] | None = None
    manifest_dir: str = "."
    manifest_sha256: str = ""
    # docker CLI-only options that never reach the container's config (--cidfile,
    # --detach-keys, --sig-proxy, --attach, --quiet, --disable-content-trust), as validated
    # argv words; the API body has no place for them.
    client_flags: tuple[str, ...] = ()


class TmpfsPlan(msgspec.Struct, frozen=True):
    target: str
    options: (
        str  # docker's --tmpfs option string, e.g. "rw,noexec,nosuid,nodev,size=67108864,mode=1777"
    )


class MountPlan(msgspec.Struct, frozen=True):
    kind: str  # bind | volume
    source: str
    target: str
    read_only: bool
    propagation: str | None = None  # bind propagation, e.g. rslave
    relabel: str | None = None  # SELinux z/Z: only the -v syntax and API Binds carry it
    nocopy: bool = False  # volumes: do not copy the image's files in (volume-nocopy)
    create_source: bool = False  # binds from -v: docker creates a missing host directory


class PortPlan(msgspec.Struct, frozen=True):
    host_ip: str
    host_port: int | None
    container_port: int
    protocol: str


class HealthcheckPlan(msgspec.Struct, frozen=True):
    """docker's health options as the CLI sends them: 0 = the daemon's default."""

    shell_command: str | None  # None: keep the image's test (only timings given)
    interval_ns: int = 0
    timeout_ns: int = 0
    retries: int = 0
    start_period_ns: int = 0
    start_interval_ns: int = 0
    disable: bool = False  # --no-healthcheck: Test ["NONE"]
    # which of the options were given, so the argv names exactly those
    given: tuple[str, ...] = ()


class EndpointPlan(msgspec.Struct, frozen=True):
    """One network to connect at create, with its endpoint settings."""

    network: str
    aliases: tuple[str, ...] = ()
    ip: str | None = None
    ip6: str | None = None
    mac_address: str | None = None
    link_local_ips: tuple[str, ...] = ()
    driver_opts: tuple[tuple[str, str], ...] = ()
    links: tuple[str, ...] = ()


class UlimitPlan(msgspec.Struct, frozen=True):
    name: str
    soft: int
    hard: int


class RunPlan(msgspec.Struct, frozen=True):
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
    warnings: tuple[str, ...] = ()
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
    # Issue 15: every other docker run setting, with docker's semantics.
    group_add: tuple[str, ...] = ()
    domainname: str | None = None
    label_files: tuple[str, ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    volumes_from: tuple[str, ...] = ()
    publish_all: bool = False
    # The primary network's endpoint (ip, aliases...) and any further networks.
    endpoint: EndpointPlan | None = None
    extra_networks: tuple[EndpointPlan, ...] = ()
    cpu_shares: int | None = None
    cpu_period: int | None = None
    cpu_quota: int | None = None
    cpu_rt_period: int | None = None
    cpu_rt_runtime: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    blkio_weight: int | None = None
    blkio_weight_device: tuple[str, ...] = ()
    device_read_bps: tuple[str, ...] = ()
    device_write_bps: tuple[str, ...] = ()
    device_read_iops: tuple[str, ...] = ()
    device_write_iops: tuple[str, ...] = ()
    memory_reservation: int | None = None
    memory_swappiness: int | None = None
    oom_kill_disable: bool = False
    oom_score_adj: int | None = None
    cgroup_parent: str | None = None
    # [network] ingress/egress as normalised entries; None: open (docker's default). Only
    # `saferun up` enforces them (saferun.plan.netrules); policy rules judge them.
    network_ingress: tuple[str, ...] | None = None
    network_egress: tuple[str, ...] | None = None


# API versions of Docker Engine releases (docs.docker.com/reference/api/engine/#api-version-matrix).
_ENGINE_API = ((25, "1.44"), (24, "1.43"), (23, "1.42"))


def api_version(facts: HostFacts) -> tuple[int, int] | None:
    """The daemon's API version from its engine version; None when unknown (offline)."""
    major_text = facts.server_version.split(".")[0]
    if not major_text.isdigit():
        return None
    major = int(major_text)
    if major > 25:
        return (1, 45)
    for engine, api in _ENGINE_API:
        if major >= engine:
            return (1, int(api.split(".")[1]))
    return (1, 41)


def _needs_api(facts: HostFacts, wanted: tuple[int, int], what: str, docker_says: str) -> None:
    have = api_version(facts)
    if have is not None and have < wanted:
        raise RequirementUnmet(
            f"{what} needs Docker API {wanted[0]}.{wanted[1]}, and this daemon "
            f"({facts.server_version}) speaks API {have[0]}.{have[1]}: docker run refuses it "
            f"the same way ({docker_says})",
            fix=f"remove it, or upgrade the engine to one with API {wanted[0]}.{wanted[1]}",
        )


def _check_api_features(manifest: Manifest, facts: HostFacts) -> None:
    """Settings the docker CLI 28 (or the daemon) refuses on an older API: refuse them here
    first, with docker's own words, before anything starts."""
    net, app = manifest.network, manifest.app
    if app.annotations:
        _needs_api(facts, (1, 43), "app.annotations (--annotation)",
                   '"--annotation" requires API version 1.43')
    check = manifest.healthcheck
    if check is not None and check.start_interval is not None:
        _needs_api(facts, (1, 44), "healthcheck.start_interval (--health-start-interval)",
                   '"--health-start-interval" requires API version 1.44')
    if net.mac_address or any(n.mac_address for n in net.extra_networks):
        _needs_api(facts, (1, 44), "network.mac_address (--mac-address)",
                   '"specify mac-address per network" requires API version 1.44')
    if net.extra_networks:
        names = ", ".join([net.mode, *(n.name for n in net.extra_networks)])
        _needs_api(facts, (1, 44), "network.extra_networks (several --network)",
                   f"the daemon answers 'Container cannot be connected to network endpoints: "
                   f"{names}'; connect the others after start with `docker network connect`")


def build_plan(
    manifest: Manifest, facts: HostFacts, options: LaunchOptions | None = None
) -> RunPlan:
    """The one place where a manifest becomes container settings."""
    options = options or LaunchOptions()
    warnings: list[str] = []
    _check_limits_supported(facts, warnings)
    _check_userns(manifest, facts, warnings)
    _check_api_features(manifest, facts)
    runtime = _resolve_runtime(manifest, facts)
    seccomp_profile, seccomp_opts = _resolve_seccomp(manifest, facts)
    apparmor_profile, apparmor_opts = _resolve_apparmor(manifest, facts, warnings)
    warnings.extend(check_runtime_controls(manifest, facts, runtime))
    app = manifest.app
    resources = manifest.resources
    return RunPlan(
        image=app.image,
        container_name=options.name or (app.name if options.use_app_name else None),
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
                nocopy=m.nocopy,
                create_source=m.create_source,
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


def _peer_texts(value: list[str] | str | None) -> tuple[str, ...] | None:
    from saferun.model.netpolicy import peers_of

    peers = peers_of(value)
    return None if peers is None else tuple(str(p) for p in peers)


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
        "network_ingress": _peer_texts(net.ingress),
        "network_egress": _peer_texts(net.egress),
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
        **_issue15_fields(manifest, options),
    }


def _endpoint(name: str, e: Any, links: tuple[str, ...] = ()) -> EndpointPlan:
    return EndpointPlan(name, tuple(e.aliases), e.ip, e.ip6, e.mac_address,
                        tuple(e.link_local_ips), tuple(sorted(e.driver_opts.items())), links)


def _issue15_fields(manifest: Manifest, options: LaunchOptions) -> dict[str, Any]:
    """The rest of docker run's settings (groups, labels files, networks, CPU/IO tuning)."""
    app, net, res = manifest.app, manifest.network, manifest.resources
    endpoint = None
    if net.ip or net.ip6 or net.mac_address or net.link_local_ips or net.driver_opts or net.links:
        endpoint = _endpoint(net.mode, net, tuple(net.links))
    reservation = res.memory_reservation
    return {
        "group_add": tuple(app.group_add),
        "domainname": app.domainname,
        "label_files": tuple(posixpath.join(options.manifest_dir, p) for p in app.label_files),
        "annotations": tuple(sorted(app.annotations.items())),
        "volumes_from": tuple(manifest.filesystem.volumes_from),
        "publish_all": net.publish_all,
        "endpoint": endpoint,
        "extra_networks": tuple(_endpoint(n.name, n) for n in net.extra_networks),
        "cpu_shares": res.cpu_shares,
        "cpu_period": res.cpu_period,
        "cpu_quota": res.effective_cpu_quota,
        "cpu_rt_period": res.cpu_rt_period,
        "cpu_rt_runtime": res.cpu_rt_runtime,
        "cpuset_cpus": res.cpuset_cpus,
        "cpuset_mems": res.cpuset_mems,
        "blkio_weight": res.blkio_weight,
        "blkio_weight_device": tuple(res.blkio_weight_device),
        "device_read_bps": tuple(res.device_read_bps),
        "device_write_bps": tuple(res.device_write_bps),
        "device_read_iops": tuple(res.device_read_iops),
        "device_write_iops": tuple(res.device_write_iops),
        "memory_reservation": parse_size(reservation) if reservation is not None else None,
        "memory_swappiness": res.memory_swappiness,
        "oom_kill_disable": res.oom_kill_disable,
        "oom_score_adj": res.oom_score_adj,
        "cgroup_parent": res.cgroup_parent,
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
    if is_root_user(manifest.app.user):
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
    for name, any_limit in sorted(manifest.resources.ulimits.items()):
        result.append(UlimitPlan(name, any_limit.soft, any_limit.hard))
    return tuple(result)


def _healthcheck(manifest: Manifest) -> HealthcheckPlan | None:
    check = manifest.healthcheck
    if check is None:
        return None
    import shlex

    def ns(value: str | None) -> int:
        return parse_duration(value) if value is not None else 0

    given = tuple(name for name in ("interval", "timeout", "retries", "start_period",
                                    "start_interval") if getattr(check, name) is not None)
    return HealthcheckPlan(
        shell_command=None if check.command is None else
        check.command if isinstance(check.command, str) else shlex.join(check.command),
        interval_ns=ns(check.interval),
        timeout_ns=ns(check.timeout),
        retries=check.retries or 0,
        start_period_ns=ns(check.start_period),
        start_interval_ns=ns(check.start_interval),
        disable=check.disable,
        given=given,
    )


def _log_options(manifest: Manifest) -> tuple[tuple[str, str], ...]:
    options = dict(manifest.logging.options)
    if manifest.logging.driver in ROTATING_LOG_DRIVERS:
        for key, value in DEFAULT_LOG_OPTIONS.items():
            options.setdefault(key, value)
    return tuple(sorted(options.items()))

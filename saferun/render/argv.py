"""RunPlan -> the exact `docker run` argv (a list: never a shell string)."""

from __future__ import annotations

import shlex

from saferun.model.units import format_size
from saferun.plan.planner import EndpointPlan, RunPlan


def render_argv(
    plan: RunPlan, *, seccomp_path: str | None = None, docker: str = "docker"
) -> list[str]:
    """`seccomp_path` is where the plan's generated profile can be read by the docker CLI."""
    if plan.seccomp_profile is not None and seccomp_path is None:
        raise ValueError("the plan has a seccomp profile: pass the path docker should read it from")
    argv = [docker, "run"]
    if plan.container_name:
        argv += ["--name", plan.container_name]
    argv += _session_flags(plan)
    argv += list(plan.client_flags)
    if plan.platform:
        argv += ["--platform", plan.platform]
    argv += ["--user", plan.user]
    if plan.workdir:
        argv += ["--workdir", plan.workdir]
    if plan.hostname:
        argv += ["--hostname", plan.hostname]
    if plan.domainname:
        argv += ["--domainname", plan.domainname]
    for group in plan.group_add:
        argv += ["--group-add", group]
    argv += ["--cap-drop", "ALL"]
    for cap in plan.cap_add:
        argv += ["--cap-add", cap]
    argv += _isolation_flags(plan)
    for opt in plan.security_opts:
        argv += ["--security-opt", opt]
    if plan.seccomp_profile is not None:
        argv += ["--security-opt", f"seccomp={seccomp_path}"]
    if plan.read_only:
        argv.append("--read-only")
    for tmpfs in plan.tmpfs:
        argv += ["--tmpfs", f"{tmpfs.target}:{tmpfs.options}"]
    for mount in plan.mounts:
        if mount.relabel or mount.create_source:
            # --mount has no SELinux relabel option, nor creates a missing host directory: -v
            options = ["ro" if mount.read_only else "rw"]
            options += [mount.relabel] if mount.relabel else []
            options += [mount.propagation] if mount.propagation else []
            argv += ["--volume", f"{mount.source}:{mount.target}:{','.join(options)}"]
            continue
        source = f"source={mount.source}," if mount.source else ""  # none: anonymous volume
        spec = f"type={mount.kind},{source}target={mount.target}"
        if mount.propagation:
            spec += f",bind-propagation={mount.propagation}"
        if mount.nocopy:
            spec += ",volume-nocopy"
        argv += ["--mount", spec + (",readonly" if mount.read_only else "")]
    for container in plan.volumes_from:
        argv += ["--volumes-from", container]
    if plan.shm_size is not None:
        argv += ["--shm-size", format_size(plan.shm_size)]
    if plan.storage_size is not None:
        argv += ["--storage-opt", f"size={plan.storage_size}"]
    argv += ["--memory", format_size(plan.memory), "--memory-swap", format_size(plan.memory_swap)]
    if plan.nano_cpus:
        argv += ["--cpus", _cpus(plan.nano_cpus)]
    argv += ["--pids-limit", str(plan.pids_limit)]
    argv += _tuning_flags(plan)
    for ulimit in plan.ulimits:
        argv += ["--ulimit", f"{ulimit.name}={ulimit.soft}:{ulimit.hard}"]
    argv += _network_flags(plan)
    for exposed in plan.expose:
        argv += ["--expose", exposed]
    for alias in plan.network_aliases:
        argv += ["--network-alias", alias]
    for host in plan.extra_hosts:
        argv += ["--add-host", host]
    for server in plan.dns:
        argv += ["--dns", server]
    for domain in plan.dns_search:
        argv += ["--dns-search", domain]
    for option in plan.dns_options:
        argv += ["--dns-option", option]
    for port in plan.ports:
        host = (
            f"{port.host_ip}:{port.host_port or ''}:"
            if ":" not in port.host_ip
            else f"[{port.host_ip}]:{port.host_port or ''}:"
        )
        argv += ["--publish", f"{host}{port.container_port}/{port.protocol}"]
    restart = plan.restart_policy
    if restart == "on-failure" and plan.restart_retries:
        restart = f"on-failure:{plan.restart_retries}"  # 0: docker's own no-limit spelling
    argv += ["--restart", restart]
    if plan.healthcheck:
        check = plan.healthcheck
        if check.disable:
            argv.append("--no-healthcheck")
        if check.shell_command is not None:
            argv += ["--health-cmd", check.shell_command]
        # Only the timings the manifest gives: an unset one stays 0, the daemon's default.
        for name, value in (("interval", f"{check.interval_ns}ns"),
                            ("timeout", f"{check.timeout_ns}ns"),
                            ("retries", str(check.retries)),
                            ("start_period", f"{check.start_period_ns}ns"),
                            ("start_interval", f"{check.start_interval_ns}ns")):
            if name in check.given:
                argv += [f"--health-{name.replace('_', '-')}", value]
    argv += ["--log-driver", plan.log_driver]
    for key, value in plan.log_options:
        argv += ["--log-opt", f"{key}={value}"]
    argv += ["--runtime", plan.runtime]
    if plan.stop_signal:
        argv += ["--stop-signal", plan.stop_signal]
    if plan.stop_timeout is not None:
        argv += ["--stop-timeout", str(plan.stop_timeout)]
    if plan.init:
        argv.append("--init")
    argv += ["--pull", plan.pull]
    for path in plan.env_files:
        argv += ["--env-file", path]
    for key, value in plan.env:
        argv += ["--env", f"{key}={value}"]
    for name in plan.env_from_host:  # docker copies the value from its own environment
        argv += ["--env", name]
    for path in plan.label_files:  # before --label: saferun's own labels win, as in docker
        argv += ["--label-file", path]
    for key, value in plan.labels:
        argv += ["--label", f"{key}={value}"]
    for key, value in plan.annotations:
        argv += ["--annotation", f"{key}={value}"]
    command = list(plan.command) if plan.command is not None else []
    if plan.entrypoint is not None:
        # docker's --entrypoint takes one word; the rest of the entrypoint leads the command.
        argv += ["--entrypoint", plan.entrypoint[0] if plan.entrypoint else ""]
        command = list(plan.entrypoint[1:]) + command
    # `--` is not needed: docker stops reading flags at the image.
    return argv + [plan.image, *command]


def _tuning_flags(plan: RunPlan) -> list[str]:
    """CPU, block IO and memory tuning, and the OOM settings: docker's flags as given."""
    flags: list[str] = []
    for flag, value in (
        ("--cpu-shares", plan.cpu_shares), ("--cpu-period", plan.cpu_period),
        ("--cpu-quota", plan.cpu_quota), ("--cpu-rt-period", plan.cpu_rt_period),
        ("--cpu-rt-runtime", plan.cpu_rt_runtime), ("--cpuset-cpus", plan.cpuset_cpus),
        ("--cpuset-mems", plan.cpuset_mems), ("--blkio-weight", plan.blkio_weight),
        ("--memory-swappiness", plan.memory_swappiness),
        ("--oom-score-adj", plan.oom_score_adj), ("--cgroup-parent", plan.cgroup_parent),
    ):
        if value is not None:
            flags += [flag, str(value)]
    if plan.memory_reservation is not None:
        flags += ["--memory-reservation", format_size(plan.memory_reservation)]
    for flag, values in (
        ("--blkio-weight-device", plan.blkio_weight_device),
        ("--device-read-bps", plan.device_read_bps),
        ("--device-write-bps", plan.device_write_bps),
        ("--device-read-iops", plan.device_read_iops),
        ("--device-write-iops", plan.device_write_iops),
    ):
        for value in values:
            flags += [flag, value]
    if plan.oom_kill_disable:
        flags.append("--oom-kill-disable")
    return flags


def _network_flags(plan: RunPlan) -> list[str]:
    """The first network in docker's plain syntax with its endpoint flags; a further
    network in the `name=NET,alias=...` syntax."""
    endpoint = plan.endpoint
    if endpoint is not None and endpoint.driver_opts:
        opts = ",".join(_csv_field(f"driver-opt={k}={v}") for k, v in endpoint.driver_opts)
        flags = ["--network", f"name={plan.network},{opts}"]
    else:
        flags = ["--network", plan.network]
    if endpoint is not None:
        for flag, value in (("--ip", endpoint.ip), ("--ip6", endpoint.ip6),
                            ("--mac-address", endpoint.mac_address)):
            if value:
                flags += [flag, value]
        for address in endpoint.link_local_ips:
            flags += ["--link-local-ip", address]
        for link in endpoint.links:
            flags += ["--link", link]
    for extra in plan.extra_networks:
        flags += ["--network", _advanced_network(extra)]
    if plan.publish_all:
        flags.append("--publish-all")
    return flags


def _csv_field(field: str) -> str:
    """One field of docker's CSV-style option values (--network name=...,driver-opt=...):
    quoted when it holds a comma or a quote, as docker's csv reader expects."""
    if "," not in field and '"' not in field:
        return field
    return '"' + field.replace('"', '""') + '"'


def _advanced_network(e: EndpointPlan) -> str:
    parts = [f"name={e.network}", *(f"alias={a}" for a in e.aliases)]
    for key, value in (("ip", e.ip), ("ip6", e.ip6), ("mac-address", e.mac_address)):
        if value:
            parts.append(f"{key}={value}")
    parts += [f"link-local-ip={a}" for a in e.link_local_ips]
    parts += [_csv_field(f"driver-opt={k}={v}") for k, v in e.driver_opts]
    return ",".join(parts)


def _isolation_flags(plan: RunPlan) -> list[str]:
    """Namespace, device and sysctl settings; the weakening ones exist only with an [allow]."""
    flags = ["--privileged"] if plan.privileged else []
    for flag, value in (
        ("--pid", plan.pid_mode),
        ("--ipc", plan.ipc_mode),
        ("--uts", plan.uts_mode),
        ("--userns", plan.userns_mode),
        ("--cgroupns", plan.cgroupns_mode),
    ):
        if value:
            flags += [flag, value]
    for device in plan.devices:
        flags += ["--device", device]
    for rule in plan.device_cgroup_rules:
        flags += ["--device-cgroup-rule", rule]
    if plan.gpus:
        flags += ["--gpus", plan.gpus]
    for key, value in plan.sysctls:
        flags += ["--sysctl", f"{key}={value}"]
    return flags


def _session_flags(plan: RunPlan) -> list[str]:
    flags = []
    if plan.detach:
        flags.append("--detach")
    if plan.remove:
        flags.append("--rm")
    if plan.interactive:
        flags.append("--interactive")
    if plan.tty:
        flags.append("--tty")
    return flags


def _cpus(nano: int) -> str:
    whole, frac = divmod(nano, 10**9)
    return str(whole) if not frac else f"{whole}.{frac:09d}".rstrip("0")


def shell_quote(argv: list[str]) -> str:
    """For display only (`--dry-run`): a command a person can paste into a shell."""
    return shlex.join(argv)

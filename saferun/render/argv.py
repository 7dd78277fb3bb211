"""RunPlan -> the exact `docker run` argv (a list: never a shell string)."""

from __future__ import annotations

import shlex

from saferun.model.units import format_size
from saferun.plan.planner import RunPlan


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
        if mount.relabel:  # --mount has no SELinux relabel option; -v does
            options = ["ro" if mount.read_only else "rw", mount.relabel]
            options += [mount.propagation] if mount.propagation else []
            argv += ["--volume", f"{mount.source}:{mount.target}:{','.join(options)}"]
            continue
        spec = f"type={mount.kind},source={mount.source},target={mount.target}"
        if mount.propagation:
            spec += f",bind-propagation={mount.propagation}"
        argv += ["--mount", spec + (",readonly" if mount.read_only else "")]
    if plan.shm_size is not None:
        argv += ["--shm-size", format_size(plan.shm_size)]
    if plan.storage_size is not None:
        argv += ["--storage-opt", f"size={plan.storage_size}"]
    argv += [
        "--memory",
        format_size(plan.memory),
        "--memory-swap",
        format_size(plan.memory_swap),
        "--cpus",
        _cpus(plan.nano_cpus),
        "--pids-limit",
        str(plan.pids_limit),
    ]
    for ulimit in plan.ulimits:
        argv += ["--ulimit", f"{ulimit.name}={ulimit.soft}:{ulimit.hard}"]
    argv += ["--network", plan.network]
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
    if restart == "on-failure":
        restart = f"on-failure:{plan.restart_retries}"
    argv += ["--restart", restart]
    if plan.healthcheck:
        check = plan.healthcheck
        argv += [
            "--health-cmd",
            check.shell_command,
            "--health-interval",
            f"{check.interval_ns}ns",
            "--health-timeout",
            f"{check.timeout_ns}ns",
            "--health-retries",
            str(check.retries),
            "--health-start-period",
            f"{check.start_period_ns}ns",
        ]
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
    for key, value in plan.labels:
        argv += ["--label", f"{key}={value}"]
    command = list(plan.command) if plan.command is not None else []
    if plan.entrypoint is not None:
        # docker's --entrypoint takes one word; the rest of the entrypoint leads the command.
        argv += ["--entrypoint", plan.entrypoint[0] if plan.entrypoint else ""]
        command = list(plan.entrypoint[1:]) + command
    # `--` is not needed: docker stops reading flags at the image.
    return argv + [plan.image, *command]


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

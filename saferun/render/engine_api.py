"""RunPlan -> the Engine API body of `POST /containers/create` (API 1.41 field names)."""

from __future__ import annotations

import json
from typing import Any

from saferun.plan import RunPlan

ULIMIT_NAMES = {"nofile": "nofile", "nproc": "nproc"}


def render_create_body(plan: RunPlan, *, env_from_files: tuple[str, ...] = ()) -> dict[str, Any]:
    """`env_from_files`: KEY=VALUE lines the caller read from the plan's env files (I/O is theirs)."""
    command = list(plan.command) if plan.command is not None else None
    entrypoint = None
    if plan.entrypoint is not None:
        entrypoint = [plan.entrypoint[0]] if plan.entrypoint else [""]
        command = list(plan.entrypoint[1:]) + (command or [])
    security_opt = list(plan.security_opts)
    if plan.seccomp_profile is not None:
        # The CLI inlines the file's JSON the same way (compacted) before calling the API.
        security_opt.append("seccomp=" + json.dumps(json.loads(plan.seccomp_profile), separators=(",", ":")))
    host_config: dict[str, Any] = {
        "CapDrop": list(plan.cap_drop),
        "CapAdd": list(plan.cap_add) or None,
        "SecurityOpt": security_opt,
        "ReadonlyRootfs": plan.read_only,
        "Tmpfs": {t.target: t.options for t in plan.tmpfs} or None,
        "Mounts": [
            {"Type": m.kind, "Source": m.source, "Target": m.target, "ReadOnly": m.read_only}
            for m in plan.mounts
        ] or None,
        "Memory": plan.memory,
        "MemorySwap": plan.memory_swap,
        "NanoCpus": plan.nano_cpus,
        "PidsLimit": plan.pids_limit,
        "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in plan.ulimits] or None,
        "NetworkMode": plan.network,
        "PortBindings": _port_bindings(plan) or None,
        "RestartPolicy": {"Name": plan.restart_policy, "MaximumRetryCount": plan.restart_retries},
        "LogConfig": {"Type": plan.log_driver, "Config": dict(plan.log_options)},
        "Runtime": plan.runtime,
        "AutoRemove": plan.remove,
        "Init": plan.init or None,
    }
    body: dict[str, Any] = {
        "Image": plan.image,
        "Cmd": command,
        "Entrypoint": entrypoint,
        "User": plan.user,
        "WorkingDir": plan.workdir or "",
        "Env": [*env_from_files, *(f"{k}={v}" for k, v in plan.env)],
        "Labels": dict(plan.labels),
        "ExposedPorts": {f"{p.container_port}/{p.protocol}": {} for p in plan.ports} or None,
        "Tty": plan.tty,
        "OpenStdin": plan.interactive,
        "StdinOnce": plan.interactive,
        "AttachStdin": plan.interactive and not plan.detach,
        "AttachStdout": not plan.detach,
        "AttachStderr": not plan.detach,
        "HostConfig": host_config,
    }
    if plan.hostname:
        body["Hostname"] = plan.hostname
    if plan.healthcheck:
        check = plan.healthcheck
        body["Healthcheck"] = {
            "Test": ["CMD-SHELL", check.shell_command],
            "Interval": check.interval_ns,
            "Timeout": check.timeout_ns,
            "Retries": check.retries,
            "StartPeriod": check.start_period_ns,
        }
    return body


def _port_bindings(plan: RunPlan) -> dict[str, list[dict[str, str]]]:
    bindings: dict[str, list[dict[str, str]]] = {}
    for port in plan.ports:
        key = f"{port.container_port}/{port.protocol}"
        bindings.setdefault(key, []).append(
            {"HostIp": port.host_ip, "HostPort": str(port.host_port) if port.host_port else ""}
        )
    return bindings

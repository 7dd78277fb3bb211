"""Manifests -> one Compose file whose services carry the same protections as `saferun run`.

Built from the RunPlan, so Compose gets exactly the settings the docker argv gets: every
capability dropped but the allowlist, read-only root with sized noexec tmpfs, the
generated seccomp profile (a file beside compose.yaml), AppArmor, the limits, ports bound
to the manifest's address. Every string value is escaped for Compose's `$` interpolation,
so `$HOME` in a command reaches the container as written, as it does with `saferun run`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from saferun.export.common import (
    AppArmorKind,
    ExportFile,
    ExportResult,
    HostLoadsProfiles,
    Prepared,
    SeccompKind,
    Unsupported,
    add_apparmor_profile,
    dropin,
    dump_yaml,
    extra_security_opts,
    go_duration,
    notes_header,
    plan_notes,
    relative_to_output,
    seccomp_file_name,
    unexpressed,
)
from saferun.export.compose_networks import add_networks
from saferun.model.units import format_size
from saferun.plan.planner import PortPlan

COMPOSE_FILE = "compose.yaml"
# Compose's pull_policy spelling of the manifest's app.pull; if_not_present is understood
# by docker-compose 1.x and by `docker compose` v2 alike ("missing" only by v2).
PULL_POLICY = {"missing": "if_not_present", "never": "never", "always": "always"}


def render_compose(apps: list[Prepared], *, v1: bool = False) -> ExportResult:
    """One compose.yaml for every app, plus each app's profile files beside it.

    `v1`: only keys docker-compose 1.x (Debian 12's package) accepts; what the Compose
    Specification added since (`cgroup`) becomes a note."""
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    networks: dict[str, Any] = {}
    files: list[ExportFile] = []
    notes: list[Unsupported] = []
    for app in apps:
        service = _service(app, files, notes)
        if v1:
            _v1_only(app, service, notes)
        services[app.name] = _escape(service)
        for mount in app.plan.mounts:
            if mount.kind == "volume" and mount.source:
                volumes[mount.source] = {"name": mount.source}
        if app.plan.network not in ("bridge", "none", "host"):
            networks[app.plan.network] = {"name": app.plan.network, "external": True}
    document: dict[str, Any] = {"services": services}
    if volumes:
        document["volumes"] = dict(sorted(volumes.items()))
    if networks:
        document["networks"] = dict(sorted(networks.items()))
    add_networks(apps, services, document, notes)  # [network] ingress/egress, if any
    main = ExportFile(COMPOSE_FILE, dump_yaml([document], notes_header(notes)), mode=0o600)
    return ExportResult((main, *files), tuple(sorted(notes)))


# Service keys of the Compose Specification that docker-compose 1.29 rejects.
_NOT_IN_V1: dict[str, str] = {"cgroup": "security.cgroupns"}


def _v1_only(app: Prepared, service: dict[str, Any], notes: list[Unsupported]) -> None:
    for key, manifest_key in _NOT_IN_V1.items():
        if key in service:
            notes.append(Unsupported(app.name, manifest_key, (
                f"{service.pop(key)}: docker-compose 1.x has no `{key}` key (the Compose "
                "Specification does; export without --compose-v1 for docker compose v2); the "
                "daemon's default cgroup namespace applies")))


def _service(app: Prepared, files: list[ExportFile], notes: list[Unsupported]) -> dict[str, Any]:
    plan = app.plan
    service: dict[str, Any] = {"image": plan.image}
    if plan.entrypoint is not None:
        service["entrypoint"] = list(plan.entrypoint)
    if plan.command is not None:
        service["command"] = list(plan.command)
    if plan.workdir:
        service["working_dir"] = plan.workdir
    if plan.hostname:
        service["hostname"] = plan.hostname
    service["user"] = plan.user
    service["cap_drop"] = list(plan.cap_drop)
    if plan.cap_add:
        service["cap_add"] = list(plan.cap_add)
    service["read_only"] = plan.read_only
    if plan.tmpfs:
        service["tmpfs"] = [f"{t.target}:{t.options}" for t in plan.tmpfs]
    if plan.mounts:
        service["volumes"] = [
            {"type": m.kind,
             **({"source": relative_to_output(m.source) if m.kind == "bind" else m.source}
                if m.source else {}),  # no source: an anonymous volume
             "target": m.target, "read_only": m.read_only,
             **({"volume": {"nocopy": True}} if m.nocopy else {})}
            for m in plan.mounts
        ]
    service["security_opt"] = _security_opts(app, files, notes)
    service["mem_limit"] = format_size(plan.memory)
    service["memswap_limit"] = format_size(plan.memory_swap)
    if plan.nano_cpus:
        service["cpus"] = plan.nano_cpus / 10**9
    service["pids_limit"] = plan.pids_limit
    service["ulimits"] = {u.name: {"soft": u.soft, "hard": u.hard} for u in plan.ulimits}
    if plan.network == "none":
        service["network_mode"] = "none"
    elif plan.network != "bridge":
        service["networks"] = [plan.network]
    if plan.ports:
        service["ports"] = [_port(p) for p in plan.ports]
    service["runtime"] = plan.runtime
    if plan.init:
        service["init"] = True
    service["pull_policy"] = PULL_POLICY[plan.pull]
    if plan.healthcheck and plan.healthcheck.disable:
        service["healthcheck"] = {"disable": True}
    elif plan.healthcheck:
        check = plan.healthcheck
        command = app.manifest.healthcheck.command if app.manifest.healthcheck else None
        health: dict[str, Any] = {}
        if command is not None:
            health["test"] = (["CMD-SHELL", command] if isinstance(command, str)
                              else ["CMD", *command])
        for key, value in (("interval", go_duration(check.interval_ns)),
                           ("timeout", go_duration(check.timeout_ns)),
                           ("retries", check.retries),
                           ("start_period", go_duration(check.start_period_ns)),
                           ("start_interval", go_duration(check.start_interval_ns))):
            if key in check.given:  # the others stay the engine's defaults
                health[key] = value
        service["healthcheck"] = health
    service["logging"] = {"driver": plan.log_driver, "options": dict(plan.log_options)}
    if not service["logging"]["options"]:
        del service["logging"]["options"]
    service["restart"] = (f"on-failure:{plan.restart_retries}"
                          if plan.restart_policy == "on-failure" and plan.restart_retries
                          else plan.restart_policy)
    if plan.env_files:
        service["env_file"] = [relative_to_output(p) for p in plan.env_files]
    environment: dict[str, str | None] = dict(plan.env)
    service["labels"] = dict(plan.labels)
    handled = _dropins(app, service, environment)
    if environment:
        service["environment"] = environment
    _userns_note(app, notes)
    notes += unexpressed(app, handled, "Compose") + plan_notes(app)
    return service


def _dropins(app: Prepared, service: dict[str, Any],
             environment: dict[str, str | None]) -> set[str]:
    """Drop-in `docker run` settings Compose has keys for; returns the fields it wrote."""
    plan = app.plan
    handled: set[str] = set()
    keys: dict[str, tuple[str, Callable[[Any], Any]]] = {
        "privileged": ("privileged", bool), "pid_mode": ("pid", str), "ipc_mode": ("ipc", str),
        "userns_mode": ("userns_mode", str), "devices": ("devices", list),
        "device_cgroup_rules": ("device_cgroup_rules", list), "sysctls": ("sysctls", dict),
        "shm_size": ("shm_size", format_size), "stop_signal": ("stop_signal", str),
        "stop_timeout": ("stop_grace_period", lambda v: f"{v}s"), "dns": ("dns", list),
        "dns_search": ("dns_search", list), "dns_options": ("dns_opt", list),
        "extra_hosts": ("extra_hosts", list), "platform": ("platform", str),
        "expose": ("expose", list), "storage_size": ("storage_opt", lambda n: {"size": str(n)}),
        "group_add": ("group_add", list), "domainname": ("domainname", str),
        "label_files": ("label_file", lambda v: [relative_to_output(p) for p in v]),
        "annotations": ("annotations", dict), "volumes_from": ("volumes_from", list),
        "cpu_shares": ("cpu_shares", int), "cpu_period": ("cpu_period", int),
        "cpu_quota": ("cpu_quota", int), "cpu_rt_period": ("cpu_rt_period", lambda v: f"{v}us"),
        "cpu_rt_runtime": ("cpu_rt_runtime", lambda v: f"{v}us"),
        "cpuset_cpus": ("cpuset", str), "memory_reservation": ("mem_reservation", format_size),
        "memory_swappiness": ("mem_swappiness", int),
        "oom_kill_disable": ("oom_kill_disable", bool),
        "oom_score_adj": ("oom_score_adj", int), "cgroup_parent": ("cgroup_parent", str),
        "cgroupns_mode": ("cgroup", str),  # Compose Specification: cgroup: host|private
    }
    for field, (key, convert) in keys.items():
        value = dropin(plan, field)
        if value is not None:
            service[key] = convert(value)
            handled.add(field)
    for name in dropin(plan, "env_from_host") or ():
        environment[name] = None  # Compose passes NAME through from its own environment
        handled.add("env_from_host")
    service["security_opt"] += extra_security_opts(plan)
    handled.add("security_opts")
    if plan.network == "host":
        service.pop("networks", None)
        service["network_mode"] = "host"
        handled.add("network.host")
    aliases = dropin(plan, "network_aliases")
    if aliases is not None and "networks" in service:
        service["networks"] = {plan.network: {"aliases": list(aliases)}}
        handled.add("network_aliases")
    for mount, volume in zip(plan.mounts, service.get("volumes", []), strict=True):
        if getattr(mount, "propagation", None) and mount.kind == "bind":
            volume["bind"] = {"propagation": mount.propagation}
    handled.update({"mount.propagation", "healthcheck.image", "mount.anonymous",
                    "mount.nocopy"})
    return handled


_COMPOSE_HOST = HostLoadsProfiles(
    load="Compose cannot load AppArmor profiles: run `apparmor_parser -r {path}` on the "
    "Docker host before `docker-compose up`",
    already_loaded="'{name}' must already be loaded on the Docker host",
    enforcement="Compose cannot refuse to start where AppArmor is absent (Docker then ignores "
    "the profile): check `docker info` lists apparmor on the target host",
)


def _security_opts(app: Prepared, files: list[ExportFile], notes: list[Unsupported]) -> list[str]:
    opts = ["no-new-privileges:true"]
    if app.apparmor.kind is AppArmorKind.UNCONFINED:
        opts.append("apparmor=unconfined")
    elif app.apparmor.name:
        opts.append(f"apparmor={app.apparmor.name}")
    add_apparmor_profile(app, files, notes, _COMPOSE_HOST)
    if app.seccomp.kind is SeccompKind.UNCONFINED:
        opts.append("seccomp=unconfined")
    elif app.seccomp.kind is SeccompKind.GENERATED and app.seccomp.profile_json is not None:
        path = seccomp_file_name(app.name)
        files.append(ExportFile(path, _json_text(app.seccomp.profile_json)))
        opts.append(f"seccomp=./{path}")
        notes.append(Unsupported(app.name, "seccomp", (
            f"docker-compose reads the profile ./{path} relative to the current directory: "
            "run it from the directory of compose.yaml")))
    return opts


def _userns_note(app: Prepared, notes: list[Unsupported]) -> None:
    if app.manifest.security.userns == "required":
        notes.append(Unsupported(app.name, "security.userns", (
            "\"required\": a Compose service cannot ask for a user namespace of its own; run "
            "the Docker daemon with userns-remap (daemon.json \"userns-remap\": \"default\") "
            "or rootless, and check `docker info` lists userns")))


def _port(port: PortPlan) -> str:
    host_ip = f"[{port.host_ip}]" if ":" in port.host_ip else port.host_ip
    host_port = str(port.host_port) if port.host_port else ""
    return f"{host_ip}:{host_port}:{port.container_port}/{port.protocol}"


def _json_text(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def _escape(value: Any) -> Any:
    """Double every `$` so Compose's variable interpolation leaves the value as written."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [_escape(v) for v in value]
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    return value


"""RunPlan -> the Engine API body of `POST /containers/create` (API 1.41 field names)."""

from __future__ import annotations

import json
from typing import Any

from saferun.plan.planner import EndpointPlan, MountPlan, RunPlan

ULIMIT_NAMES = {"nofile": "nofile", "nproc": "nproc"}


def render_create_body(
    plan: RunPlan,
    *,
    env_from_files: tuple[str, ...] = (),
    env_from_host: tuple[tuple[str, str], ...] = (),
    labels_from_files: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    """`env_from_files`: KEY=VALUE lines the caller read from the plan's env files;
    `env_from_host`: the values of `plan.env_from_host` the caller found in its environment
    (names it did not find are left out, as docker does); `labels_from_files`: the
    KEY=VALUE pairs the caller read from the plan's label files. The I/O is theirs.

    The platform (`--platform`) is a query parameter of the create call, not part of the
    body, and `plan.client_flags` only steer the docker CLI: neither appears here.
    """
    command = list(plan.command) if plan.command is not None else None
    entrypoint = None
    if plan.entrypoint is not None:
        entrypoint = [plan.entrypoint[0]] if plan.entrypoint else [""]
        command = list(plan.entrypoint[1:]) + (command or [])
    security_opt = list(plan.security_opts)
    if plan.seccomp_profile is not None:
        # The CLI inlines the file's JSON the same way (compacted) before calling the API.
        security_opt.append(
            "seccomp=" + json.dumps(json.loads(plan.seccomp_profile), separators=(",", ":"))
        )
    host_config: dict[str, Any] = {
        "CapDrop": list(plan.cap_drop),
        "CapAdd": list(plan.cap_add) or None,
        "SecurityOpt": security_opt,
        "ReadonlyRootfs": plan.read_only,
        "Tmpfs": {t.target: t.options for t in plan.tmpfs} or None,
        "Mounts": [_mount(m) for m in plan.mounts if not (m.relabel or m.create_source)] or None,
        "Binds": [_bind(m) for m in plan.mounts if m.relabel or m.create_source] or None,
        "Memory": plan.memory,
        "MemorySwap": plan.memory_swap,
        "NanoCpus": plan.nano_cpus or None,
        "PidsLimit": plan.pids_limit,
        "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in plan.ulimits] or None,
        "NetworkMode": plan.network,
        "PortBindings": _port_bindings(plan) or None,
        "RestartPolicy": {"Name": plan.restart_policy, "MaximumRetryCount": plan.restart_retries},
        "LogConfig": {"Type": plan.log_driver, "Config": dict(plan.log_options)},
        "Runtime": plan.runtime,
        "AutoRemove": plan.remove,
        "Init": plan.init or None,
        **_dropin_host_config(plan),
    }
    body: dict[str, Any] = {
        "Image": plan.image,
        "Cmd": command,
        "Entrypoint": entrypoint,
        "User": plan.user,
        "WorkingDir": plan.workdir or "",
        "Env": [*env_from_files, *(f"{k}={v}" for k, v in plan.env)],
        "Labels": dict(plan.labels),
        "ExposedPorts": _exposed_ports(plan) or None,
        "Tty": plan.tty,
        "OpenStdin": plan.interactive,
        **_attach(plan),
        "HostConfig": host_config,
    }
    if labels_from_files:  # docker: the files first, then --label (saferun's own) wins
        body["Labels"] = {**dict(labels_from_files), **body["Labels"]}
    if plan.domainname:
        body["Domainname"] = plan.domainname
    if plan.env_from_host:
        body["Env"] += [f"{k}={v}" for k, v in env_from_host]
    if plan.stop_signal:
        body["StopSignal"] = plan.stop_signal
    if plan.stop_timeout is not None:
        body["StopTimeout"] = plan.stop_timeout
    endpoints = _endpoints(plan)
    if endpoints:
        body["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    if plan.hostname:
        body["Hostname"] = plan.hostname
    if plan.healthcheck:
        check = plan.healthcheck
        if check.disable:
            body["Healthcheck"] = {"Test": ["NONE"]}
        else:
            body["Healthcheck"] = {
                "Test": ["CMD-SHELL", check.shell_command]
                if check.shell_command is not None else None,
                "Interval": check.interval_ns,
                "Timeout": check.timeout_ns,
                "Retries": check.retries,
                "StartPeriod": check.start_period_ns,
            }
            if check.start_interval_ns:
                body["Healthcheck"]["StartInterval"] = check.start_interval_ns
    return body


def _attach(plan: RunPlan) -> dict[str, bool]:
    """docker's run: -a names the streams (none given: stdout and stderr), -i adds stdin,
    -d attaches none; StdinOnce when stdin is open and attached."""
    words = plan.client_flags
    streams = {words[i + 1].lower() for i, word in enumerate(words[:-1]) if word == "--attach"}
    if plan.detach:
        return {"AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
                "StdinOnce": False}
    stdin = "stdin" in streams or plan.interactive
    return {
        "AttachStdin": stdin,
        "AttachStdout": "stdout" in streams or not streams,
        "AttachStderr": "stderr" in streams or not streams,
        "StdinOnce": plan.interactive and stdin,
    }


def _endpoint_body(e: EndpointPlan | None, aliases: tuple[str, ...] = ()) -> dict[str, Any]:
    body: dict[str, Any] = {}
    all_aliases = list(e.aliases if e else aliases)  # the first network's are network_aliases
    if all_aliases:
        body["Aliases"] = all_aliases
    if e is None:
        return body
    if e.links:
        body["Links"] = list(e.links)
    ipam: dict[str, Any] = {}
    if e.ip:
        ipam["IPv4Address"] = e.ip
    if e.ip6:
        ipam["IPv6Address"] = e.ip6
    if e.link_local_ips:
        ipam["LinkLocalIPs"] = list(e.link_local_ips)
    if ipam:
        body["IPAMConfig"] = ipam
    if e.mac_address:
        body["MacAddress"] = e.mac_address
    if e.driver_opts:
        body["DriverOpts"] = dict(e.driver_opts)
    return body


def _endpoints(plan: RunPlan) -> dict[str, Any]:
    """EndpointsConfig as the docker CLI builds it: the first network's endpoint only when it
    has settings (or there are several networks), then every further network."""
    first = _endpoint_body(plan.endpoint, plan.network_aliases)
    endpoints: dict[str, Any] = {}
    if first or plan.extra_networks:
        endpoints[plan.network] = first
    for extra in plan.extra_networks:
        endpoints[extra.network] = _endpoint_body(extra)
    return endpoints


def _mount(m: MountPlan) -> dict[str, Any]:
    mount: dict[str, Any] = {"Type": m.kind, "Target": m.target, "ReadOnly": m.read_only}
    if m.source:  # an anonymous volume has none
        mount = {"Type": m.kind, "Source": m.source, "Target": m.target, "ReadOnly": m.read_only}
    if m.propagation:
        mount["BindOptions"] = {"Propagation": m.propagation}
    if m.nocopy:
        mount["VolumeOptions"] = {"NoCopy": True}
    return mount


def _bind(m: MountPlan) -> str:
    options = ["ro" if m.read_only else "rw", m.relabel or "", m.propagation or ""]
    return f"{m.source}:{m.target}:{','.join(o for o in options if o)}"


def _dropin_host_config(plan: RunPlan) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if plan.privileged:
        config["Privileged"] = True
    for key, value in (
        ("PidMode", plan.pid_mode),
        ("IpcMode", plan.ipc_mode),
        ("UTSMode", plan.uts_mode),
        ("UsernsMode", plan.userns_mode),
        ("CgroupnsMode", plan.cgroupns_mode),
    ):
        if value:
            config[key] = value
    if plan.devices:
        config["Devices"] = [_device(d) for d in plan.devices]
    if plan.device_cgroup_rules:
        config["DeviceCgroupRules"] = list(plan.device_cgroup_rules)
    if plan.gpus:
        config["DeviceRequests"] = [_gpu_request(plan.gpus)]
    if plan.sysctls:
        config["Sysctls"] = dict(plan.sysctls)
    if plan.shm_size is not None:
        config["ShmSize"] = plan.shm_size
    if plan.storage_size is not None:
        config["StorageOpt"] = {"size": str(plan.storage_size)}
    if plan.extra_hosts:
        config["ExtraHosts"] = list(plan.extra_hosts)
    if plan.dns:
        config["Dns"] = list(plan.dns)
    if plan.dns_search:
        config["DnsSearch"] = list(plan.dns_search)
    if plan.dns_options:
        config["DnsOptions"] = list(plan.dns_options)
    return {**config, **_issue15_host_config(plan)}


def _throttle(values: tuple[str, ...], key: str) -> list[dict[str, Any]]:
    from saferun.model.units import parse_size

    out = []
    for value in values:
        path, _, rate = value.rpartition(":")
        number = int(rate) if rate.isdigit() else parse_size(rate)
        out.append({"Path": path, key: number})
    return out


def _issue15_host_config(plan: RunPlan) -> dict[str, Any]:
    """Groups, links, volumes-from, -P, annotations, CPU/IO/memory tuning, OOM settings."""
    config: dict[str, Any] = {}
    for key, value in (
        ("GroupAdd", list(plan.group_add)), ("VolumesFrom", list(plan.volumes_from)),
        ("Links", list(plan.endpoint.links) if plan.endpoint else []),
        ("Annotations", dict(plan.annotations)),
        ("BlkioWeightDevice", _throttle(plan.blkio_weight_device, "Weight")),
        ("BlkioDeviceReadBps", _throttle(plan.device_read_bps, "Rate")),
        ("BlkioDeviceWriteBps", _throttle(plan.device_write_bps, "Rate")),
        ("BlkioDeviceReadIOps", _throttle(plan.device_read_iops, "Rate")),
        ("BlkioDeviceWriteIOps", _throttle(plan.device_write_iops, "Rate")),
    ):
        if value:
            config[key] = value
    for key, scalar in (
        ("CpuShares", plan.cpu_shares), ("CpuPeriod", plan.cpu_period),
        ("CpuQuota", plan.cpu_quota), ("CpuRealtimePeriod", plan.cpu_rt_period),
        ("CpuRealtimeRuntime", plan.cpu_rt_runtime), ("CpusetCpus", plan.cpuset_cpus),
        ("CpusetMems", plan.cpuset_mems), ("BlkioWeight", plan.blkio_weight),
        ("MemoryReservation", plan.memory_reservation),
        ("MemorySwappiness", plan.memory_swappiness), ("OomScoreAdj", plan.oom_score_adj),
        ("CgroupParent", plan.cgroup_parent),
    ):
        if scalar is not None:
            config[key] = scalar
    if plan.publish_all:
        config["PublishAllPorts"] = True
    if plan.oom_kill_disable:
        config["OomKillDisable"] = True
    return config


def _device(spec: str) -> dict[str, str]:
    """docker's --device syntax: HOST[:CONTAINER][:PERMISSIONS]."""
    parts = spec.split(":")
    permissions = "rwm"
    if len(parts) > 1 and set(parts[-1]) <= set("rwm") and not parts[-1].startswith("/"):
        permissions = parts.pop()
    host = parts[0]
    return {
        "PathOnHost": host,
        "PathInContainer": parts[1] if len(parts) > 1 else host,
        "CgroupPermissions": permissions,
    }


def _gpu_request(spec: str) -> dict[str, Any]:
    request: dict[str, Any] = {
        "Driver": "",
        "Count": 0,
        "DeviceIDs": None,
        "Capabilities": [["gpu"]],
        "Options": {},
    }
    value = spec.removeprefix("count=")
    if value == "all":
        request["Count"] = -1
    elif value.isdigit():
        request["Count"] = int(value)
    else:
        request["DeviceIDs"] = spec.removeprefix("device=").split(",")
    return request


def _port_bindings(plan: RunPlan) -> dict[str, list[dict[str, str]]]:
    bindings: dict[str, list[dict[str, str]]] = {}
    for port in plan.ports:
        key = f"{port.container_port}/{port.protocol}"
        bindings.setdefault(key, []).append(
            {"HostIp": port.host_ip, "HostPort": str(port.host_port) if port.host_port else ""}
        )
    return bindings


def _exposed_ports(plan: RunPlan) -> dict[str, dict[str, str]]:
    """Published ports plus --expose ones; docker expands a range into single ports."""
    exposed: dict[str, dict[str, str]] = {
        f"{p.container_port}/{p.protocol}": {} for p in plan.ports
    }
    for spec in plan.expose:
        ports, _, protocol = spec.partition("/")
        first, _, last = ports.partition("-")
        for port in range(int(first), int(last or first) + 1):
            exposed[f"{port}/{protocol or 'tcp'}"] = {}
    return exposed

"""A Compose file's services as `docker run` lines: the one way saferun judges them.

Each service becomes the docker run words Compose itself would send (image, command,
environment, ports, volumes, healthcheck, user, capabilities, tmpfs, restart, resources...),
so `saferun init --from-compose` maps, hardens and refuses exactly as `saferun run` does
with that line: there is no second judgement of what is dangerous. What a line cannot
carry goes to the stack: depends_on, and the networks, which become ingress/egress rules
(services that share a network may talk; an `internal` network gives no way out).

A key this module does not know is refused by name, never ignored.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from saferun.errors import ManifestError

# Keys handled below. Anything else in a service is refused by name.
_SERVICE_KEYS = frozenset({
    "image", "command", "entrypoint", "environment", "env_file", "ports", "volumes",
    "networks", "depends_on", "healthcheck", "user", "cap_add", "cap_drop", "read_only",
    "tmpfs", "restart", "deploy", "container_name", "working_dir", "hostname", "labels",
    "extra_hosts", "dns", "dns_search", "expose", "stop_signal", "stop_grace_period", "init",
    "shm_size", "mem_limit", "memswap_limit", "mem_reservation", "cpus", "cpu_shares",
    "pids_limit", "ulimits", "sysctls", "security_opt", "privileged", "network_mode", "pid",
    "ipc", "devices", "userns_mode", "cgroup_parent", "stdin_open", "tty", "platform",
    "domainname", "group_add", "oom_score_adj", "runtime", "logging", "pull_policy",
})
_TOP_KEYS = frozenset({"version", "name", "services", "networks", "volumes"})
_DURATION = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|ms|s|m|h))+$")


@dataclass(frozen=True)
class ComposeService:
    name: str
    words: tuple[str, ...]  # the docker run line after `docker run`
    depends_on: tuple[str, ...]
    network: dict[str, Any]  # ingress/egress for the manifest's [network]
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class ComposeProject:
    name: str | None
    services: tuple[ComposeService, ...]
    volumes: tuple[str, ...]  # named volumes the file declares


def read_compose(document: Any, source: str) -> ComposeProject:
    """A parsed Compose document -> one docker run line per service (pure)."""
    from saferun.model.netpolicy import check_service_name

    if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
        raise ManifestError(f"{source}: not a Compose file (no `services` mapping)")
    _known(document, _TOP_KEYS, source)
    networks = _mapping(document.get("networks") or {}, f"{source}: networks")
    services = document["services"]
    membership: dict[str, tuple[str, ...]] = {}
    for name, service in services.items():
        try:
            check_service_name(str(name), "service")
        except ValueError as exc:
            raise ManifestError(f"{source}: services.{name}: {exc}") from None
        membership[name] = _networks_of(service, source, name)
    result = []
    for name, service in services.items():
        where = f"{source}: services.{name}"
        if not isinstance(service, dict):
            raise ManifestError(f"{where}: expected a mapping")
        _known(service, _SERVICE_KEYS, where, hint={
            "build": "build the image first (docker compose build) and give `image`",
            "links": "services of a stack reach each other by name; remove links",
            "volumes_from": "give the volumes to each service",
            "extends": "resolve it first (docker compose config)",
            "profiles": "import one profile's services (docker compose --profile P config)",
            "secrets": "mount the secret files as read-only volumes",
            "configs": "mount the config files as read-only volumes"})
        notes: list[str] = []
        words = _words(service, where, notes)
        depends = _depends_on(service.get("depends_on"), where, services)
        network = _network_rules(name, membership, networks, notes)
        result.append(ComposeService(name, tuple(words), depends, network, tuple(notes)))
    volumes = tuple(sorted(_mapping(document.get("volumes") or {}, f"{source}: volumes")))
    project = document.get("name")
    return ComposeProject(str(project) if project else None, tuple(result), volumes)


def _known(mapping: dict[str, Any], known: frozenset[str], where: str,
           hint: dict[str, str] | None = None) -> None:
    for key in mapping:
        if str(key).startswith("x-"):
            continue
        if key not in known:
            fix = (hint or {}).get(str(key), "remove it, or write that part of the manifest by "
                                   "hand after the import")
            raise ManifestError(f"{where}.{key}: saferun cannot import this Compose key",
                                fix=fix)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, list):
        return {str(v): {} for v in value}
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: expected a mapping")
    return {str(k): v or {} for k, v in value.items()}


def _text(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ManifestError(f"{where}: expected a string, not {value!r}")
    text = str(value)
    if "${" in text or re.search(r"\$[A-Za-z_]", text):
        raise ManifestError(f"{where}: {text!r} uses a variable",
                            fix="resolve variables first: docker compose config > resolved.yaml")
    return text


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _command(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(_text(value, where))
    return [_text(v, where) for v in _list(value, where)]


def _words(s: dict[str, Any], where: str, notes: list[str]) -> list[str]:
    words: list[str] = []

    def flag(name: str, value: Any, key: str) -> None:
        words.extend([name, _text(value, f"{where}.{key}")])

    entry = _command(s.get("entrypoint"), f"{where}.entrypoint")
    if entry:
        flag("--entrypoint", entry[0], "entrypoint")
    for key, env in _pairs(s.get("environment"), f"{where}.environment"):
        words.extend(["-e", env if key is None else f"{key}={env}"])
    for item in _list(s.get("env_file"), f"{where}.env_file"):
        flag("--env-file", item["path"] if isinstance(item, dict) else item, "env_file")
    for port in _list(s.get("ports"), f"{where}.ports"):
        flag("--publish", _port(port, f"{where}.ports"), "ports")
    for volume in _list(s.get("volumes"), f"{where}.volumes"):
        words.extend(_volume(volume, f"{where}.volumes"))
    _healthcheck(s.get("healthcheck"), f"{where}.healthcheck", words)
    simple = {"user": "--user", "working_dir": "--workdir", "hostname": "--hostname",
              "restart": "--restart", "stop_signal": "--stop-signal", "shm_size": "--shm-size",
              "mem_limit": "--memory", "memswap_limit": "--memory-swap",
              "mem_reservation": "--memory-reservation", "cpus": "--cpus",
              "cpu_shares": "--cpu-shares", "pids_limit": "--pids-limit",
              "network_mode": "--network", "pid": "--pid", "ipc": "--ipc",
              "userns_mode": "--userns", "cgroup_parent": "--cgroup-parent",
              "platform": "--platform", "domainname": "--domainname",
              "oom_score_adj": "--oom-score-adj", "runtime": "--runtime",
              "pull_policy": "--pull"}
    for key, name in simple.items():
        if s.get(key) is not None:
            flag(name, s[key], key)
    repeated = {"cap_add": "--cap-add", "cap_drop": "--cap-drop", "tmpfs": "--tmpfs",
                "extra_hosts": "--add-host", "dns": "--dns", "dns_search": "--dns-search",
                "expose": "--expose", "security_opt": "--security-opt", "devices": "--device",
                "group_add": "--group-add"}
    for key, name in repeated.items():
        for value in _list(s.get(key), f"{where}.{key}"):
            if key == "extra_hosts" and isinstance(s[key], dict):
                value = f"{value}:{s[key][value]}"
            flag(name, value, key)
    for key, value in _pairs(s.get("labels"), f"{where}.labels"):
        words.extend(["--label", value if key is None else f"{key}={value}"])
    for key, value in _pairs(s.get("sysctls"), f"{where}.sysctls"):
        words.extend(["--sysctl", value if key is None else f"{key}={value}"])
    for name, limit in (s.get("ulimits") or {}).items():
        value = (f"{limit['soft']}:{limit['hard']}" if isinstance(limit, dict)
                 else str(limit))
        flag("--ulimit", f"{name}={value}", "ulimits")
    if s.get("stop_grace_period") is not None:
        flag("--stop-timeout", str(_seconds(s["stop_grace_period"],
                                            f"{where}.stop_grace_period")), "stop_grace_period")
    for key, name in (("privileged", "--privileged"), ("init", "--init"),
                      ("read_only", "--read-only"), ("stdin_open", "--interactive"),
                      ("tty", "--tty")):
        if s.get(key) is True:
            words.append(name)
    if s.get("read_only") is False:
        notes.append("read_only: false in Compose; saferun keeps the root filesystem "
                     "read-only (writable paths are tmpfs or volumes; see filesystem)")
    _deploy(s.get("deploy"), f"{where}.deploy", words)
    _logging(s.get("logging"), f"{where}.logging", words)
    if s.get("container_name") is not None:
        notes.append(f"container_name {s['container_name']!r}: `saferun up` names the "
                     "container STACK-SERVICE")
    if s.get("image") is None:
        raise ManifestError(f"{where}: no image", fix="build it first and give `image`")
    words.append(_text(s["image"], f"{where}.image"))
    words.extend(entry[1:])
    words.extend(_command(s.get("command"), f"{where}.command"))
    return words


def _pairs(value: Any, where: str) -> list[tuple[str | None, str]]:
    """environment/labels/sysctls: a mapping, or a list of KEY=VALUE (or bare KEY)."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [(str(k), "" if v is None else _text(v, f"{where}.{k}")) for k, v in value.items()]
    return [(None, _text(v, where)) for v in _list(value, where)]


def _port(port: Any, where: str) -> str:
    if isinstance(port, dict):
        target = port.get("target")
        if target is None:
            raise ManifestError(f"{where}: a port needs `target`")
        host = f"{port['published']}:" if port.get("published") is not None else ""
        host_ip = f"{port['host_ip']}:" if port.get("host_ip") else ""
        if host_ip and not host:
            host = ":"
        protocol = port.get("protocol", "tcp")
        return _text(f"{host_ip}{host}{target}/{protocol}", where)
    return _text(port, where)


def _volume(volume: Any, where: str) -> list[str]:
    if isinstance(volume, dict):
        kind = volume.get("type", "volume")
        parts = [f"type={kind}"]
        if volume.get("source"):
            parts.append(f"source={_text(volume['source'], where)}")
        parts.append(f"target={_text(volume.get('target'), where)}")
        if volume.get("read_only"):
            parts.append("readonly")
        return ["--mount", ",".join(parts)]
    return ["--volume", _text(volume, where)]


def _healthcheck(value: Any, where: str, words: list[str]) -> None:
    if value is None:
        return
    if value.get("disable"):
        words.append("--no-healthcheck")
        return
    test = value.get("test")
    if isinstance(test, list):
        if test and test[0] == "NONE":
            words.append("--no-healthcheck")
            return
        if test and test[0] == "CMD-SHELL":
            command = _text(test[1], f"{where}.test")
        elif test and test[0] == "CMD":
            command = shlex.join(_text(t, f"{where}.test") for t in test[1:])
        else:
            raise ManifestError(f"{where}.test: start it with CMD, CMD-SHELL or NONE")
    elif test is not None:
        command = _text(test, f"{where}.test")
    else:
        raise ManifestError(f"{where}: a health check needs `test` (or disable: true)")
    words.extend(["--health-cmd", command])
    for key, name in (("interval", "--health-interval"), ("timeout", "--health-timeout"),
                      ("start_period", "--health-start-period")):
        if value.get(key) is not None:
            words.extend([name, _duration(value[key], f"{where}.{key}")])
    if value.get("retries") is not None:
        words.extend(["--health-retries", _text(value["retries"], f"{where}.retries")])


def _duration(value: Any, where: str) -> str:
    text = _text(value, where)
    if not _DURATION.match(text):
        raise ManifestError(f"{where}: {text!r} is not a duration such as 30s or 1m30s")
    return text


def _seconds(value: Any, where: str) -> int:
    text = _duration(value, where)
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    total = sum(float(n) * scale[u] for n, u in re.findall(r"([0-9.]+)(ns|us|ms|s|m|h)", text))
    return int(round(total))


def _deploy(value: Any, where: str, words: list[str]) -> None:
    if not value:
        return
    _known(value, frozenset({"resources", "restart_policy", "replicas"}), where)
    if value.get("replicas") not in (None, 1):
        raise ManifestError(f"{where}.replicas: a stack runs one container per service")
    resources = value.get("resources") or {}
    _known(resources, frozenset({"limits", "reservations"}), f"{where}.resources")
    limits = resources.get("limits") or {}
    _known(limits, frozenset({"cpus", "memory", "pids"}), f"{where}.resources.limits")
    for key, name in (("cpus", "--cpus"), ("memory", "--memory"), ("pids", "--pids-limit")):
        if limits.get(key) is not None:
            words.extend([name, _text(limits[key], f"{where}.resources.limits.{key}")])
    reservations = resources.get("reservations") or {}
    _known(reservations, frozenset({"memory"}), f"{where}.resources.reservations")
    if reservations.get("memory") is not None:
        words.extend(["--memory-reservation",
                      _text(reservations["memory"], f"{where}.resources.reservations.memory")])
    policy = value.get("restart_policy") or {}
    if policy:
        _known(policy, frozenset({"condition", "max_attempts"}), f"{where}.restart_policy")
        condition = {"none": "no", "on-failure": "on-failure", "any": "always"}.get(
            str(policy.get("condition", "any")))
        if condition is None:
            raise ManifestError(f"{where}.restart_policy.condition: use none, on-failure or any")
        if condition == "on-failure" and policy.get("max_attempts"):
            condition += f":{int(policy['max_attempts'])}"
        words.extend(["--restart", condition])


def _logging(value: Any, where: str, words: list[str]) -> None:
    if not value:
        return
    if value.get("driver"):
        words.extend(["--log-driver", _text(value["driver"], f"{where}.driver")])
    for key, option in (value.get("options") or {}).items():
        words.extend(["--log-opt", f"{key}={_text(option, f'{where}.options.{key}')}"])


def _depends_on(value: Any, where: str, services: dict[str, Any]) -> tuple[str, ...]:
    names = [str(v) for v in (value if isinstance(value, list) else (value or {}))]
    for name in names:
        if name not in services:
            raise ManifestError(f"{where}.depends_on: '{name}' is not a service of the file")
    return tuple(names)


def _networks_of(service: Any, source: str, name: str) -> tuple[str, ...]:
    value = service.get("networks") if isinstance(service, dict) else None
    if value is None:
        return ("default",)
    return tuple(sorted(_mapping(value, f"{source}: services.{name}.networks")))


def _network_rules(name: str, membership: dict[str, tuple[str, ...]],
                   networks: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """Compose lets services that share a network talk: that becomes the ingress (and, on
    internal networks only, the egress) of the service. One default network: open, as
    Compose is."""
    mine = membership[name]
    if set(membership.values()) == {("default",)}:
        return {}
    peers = sorted(other for other, nets in membership.items()
                   if other != name and set(nets) & set(mine))
    rules: dict[str, Any] = {"ingress": peers}
    internal = all((networks.get(net) or {}).get("internal") for net in mine)
    if internal:
        rules["egress"] = peers or "none"
    notes.append(f"networks {', '.join(mine)}: on the stack's one network, only "
                 f"{', '.join(peers) or 'no service'} may connect (ingress)"
                 + ("; its networks are internal, so it reaches only those (egress)"
                    if internal else ""))
    return rules

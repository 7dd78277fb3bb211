"""A parsed `docker run` line -> the manifest model plus this start's session options.

One model for every input: the flags become a manifest document (a dict shaped like the
TOML), merged over a base (a manifest file, or just the image), and validated by the same
`Manifest` the TOML path uses. So hardened defaults, refusal rules and planning exist once:
`saferun run -p 8080:80 nginx` gets the user, capability, filesystem and limit defaults a
manifest gets, and `--privileged` is refused by the same rule as `privileged = true`.

Every docker flag is either mapped to a manifest field, mapped to a session option
(`LaunchOptions`), or refused with a clear "not supported" error. None is dropped.

Pure: the working directory (for relative bind sources) is passed in; the environment is
never read (`-e NAME` becomes `env_from_host`, resolved by docker at start).
"""

from __future__ import annotations

import copy
import posixpath
import re
from collections.abc import Sequence
from typing import Any

import msgspec

from saferun.errors import DockerArgsError, ManifestError, UnsupportedFlag, UsageError
from saferun.inputs import docker_values
from saferun.inputs.dockerargs import ParsedRun
from saferun.inputs.run_flags import SAFERUN_RUN_FLAGS, parse_run_args  # noqa: F401 (re-exported)
from saferun.model.manifest import ULIMIT_NAMES
from saferun.model.refusals import ALLOWABLE_IDS, Violation, refused
from saferun.plan.planner import LaunchOptions

SAFERUN_FLAG_HELP: tuple[tuple[str, str], ...] = (
    ("-f, --file MANIFEST", "Start from this manifest; docker flags then refine it."),
    ("--allow RULE=REASON", "Allow one refusal rule for this start, with a written reason "
                            "(kept in the io.saferun.exceptions label). Repeatable."),
    ("--dry-run", "Print what would run instead of running it."),
    ("--format argv|json", "--dry-run output: the docker run command, or the Engine API body."),
    ("--offline", "With --dry-run: plan for a typical daemon without asking one."),
    ("--no-preset", "Do not use the preset found by the image's name (e.g. official-nginx "
                    "for nginx); the image's own user and directories are used instead."),
    ("--help", "Show this message (docker's -h is --hostname)."),
)

# Flags saferun cannot honour on Linux. Refused by name rather than dropped.
UNSUPPORTED: dict[str, str] = {
    **{name: "Windows only (process isolation)" for name in (
        "cpu-count", "cpu-percent", "io-maxbandwidth", "io-maxiops", "isolation")},
    "kernel-memory": "deprecated by docker and ignored by the kernel on cgroup v2 "
                     "(kernel memory counts towards --memory)",
    "volume-driver": "volume drivers have no manifest field yet; create the volume with "
                     "`docker volume create --driver` and mount it by name",
    "help": "use `saferun run --help`",
}

# How each rule is usually asked for on a docker command line, for error messages.
RULE_FLAGS: dict[str, str] = {
    "privileged": "--privileged", "cap-add-all": "--cap-add ALL", "cap-not-allowed": "--cap-add",
    "host-pid": "--pid host", "host-ipc": "--ipc host", "host-uts": "--uts host",
    "host-network": "--network host", "host-userns": "--userns host",
    "host-cgroupns": "--cgroupns host", "seccomp-unconfined": "--security-opt seccomp=unconfined",
    "apparmor-unconfined": "--security-opt apparmor=unconfined",
    "systempaths-unconfined": "--security-opt systempaths=unconfined",
    "label-disable": "--security-opt label=disable", "docker-socket-mount": "-v/--mount",
    "sensitive-host-mount": "-v/--mount", "device": "--device", "gpus": "--gpus",
    "unsafe-sysctl": "--sysctl", "shared-propagation": "-v/--mount propagation",
    "run-as-root": "--user", "writable-root": "--read-only=false", "restart-always": "--restart",
    "restart-retries": "--restart on-failure[:N]", "image-tag-latest": "the image reference",
    "port-host-ip": "-P/-p 0.0.0.0:...", "cgroup-parent": "--cgroup-parent",
    "ulimit-override": "--ulimit NAME=-1", "oom-protected": "--oom-score-adj",
}

_SESSION_VALUE_PATTERNS = {
    "attach": r"^(?i:stdin|stdout|stderr)$",
    "detach-keys": r"^[a-z0-9@\[\\\]^_,-]+$",
    "cidfile": r"^[^\x00-\x1f\x7f\x85\u2028\u2029]+$",
}
_RUNTIMES = {"runc": "runc", "io.containerd.runc.v2": "runc", "runsc": "gvisor", "gvisor": "gvisor",
             "kata": "kata", "kata-runtime": "kata", "io.containerd.kata.v2": "kata"}
_OWN_ULIMITS = ("nofile", "nproc")  # resources.nofile / resources.nproc; others: ulimits


class DropIn(msgspec.Struct, frozen=True):
    """What a command line asks for: a manifest fragment plus this start's options."""

    overrides: dict[str, Any]
    options: LaunchOptions
    image: str | None
    cap_drop: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def from_docker_run(parsed: ParsedRun, *, cwd: str) -> DropIn:
    """Map every flag of a parsed line; raise UnsupportedFlag for flags without a home."""
    for name in parsed.given():
        if name in UNSUPPORTED:
            raise UnsupportedFlag(
                f"docker run flag --{name} is not supported by saferun: {UNSUPPORTED[name]}",
                fix=f"remove --{name}; saferun refuses flags it cannot honour rather than "
                "ignoring them",
            )
    doc: dict[str, Any] = {}
    notes: list[str] = []
    _map_app(parsed, doc, cwd)
    _map_security(parsed, doc, notes)
    _map_resources(parsed, doc)
    _map_network(parsed, doc)
    _map_filesystem(parsed, doc, cwd, notes)
    _map_misc(parsed, doc)
    allow = _parse_allow(parsed.values("allow"))
    if allow:
        doc["allow"] = allow
    options = LaunchOptions(
        detach=bool(parsed.flag("detach")),
        remove=bool(parsed.flag("rm")),
        interactive=bool(parsed.flag("interactive")),
        tty=bool(parsed.flag("tty")),
        name=_name(parsed.last("name")),
        command=parsed.command or None,
        client_flags=_client_flags(parsed),
    )
    cap_drop = tuple(_cap(v) for v in parsed.values("cap-drop"))
    return DropIn(doc, options, parsed.image, cap_drop, tuple(notes))


def base_for_image(image: str, name: str | None) -> dict[str, Any]:
    """The base document of a bare image: the same hardened defaults as any manifest."""
    if name is None:
        base = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
        name = re.sub(r"[^a-zA-Z0-9_.-]", "-", base).strip("-._") or "app"
    return {"app": {"name": name, "image": image}}


def merge_document(base: dict[str, Any], dropin: DropIn) -> dict[str, Any]:
    """Flags over a manifest document: scalars replace, tables merge, lists extend.

    Mounts and tmpfs entries replace a base entry with the same target; --cap-drop removes
    from the allowlist. Anything that loosens a protection still has to pass the model's
    refusal rules, so a flag can tighten freely but loosen only with an [allow] reason.
    """
    merged = copy.deepcopy(base)
    overrides = copy.deepcopy(dropin.overrides)
    fs_over = overrides.pop("filesystem", {})
    caps_over = overrides.pop("capabilities", {})
    _deep_merge(merged, overrides)
    if dropin.image is not None:
        merged.setdefault("app", {})["image"] = dropin.image
    fs = merged.setdefault("filesystem", {})
    if "read_only" in fs_over:
        fs["read_only"] = fs_over["read_only"]
    if fs_over.get("volumes_from"):
        fs["volumes_from"] = list(dict.fromkeys([*fs.get("volumes_from", []),
                                                 *fs_over["volumes_from"]]))
    # A flag wins over the base for its target, whatever the kind (e.g. -v data:/tmp
    # replaces the default /tmp tmpfs).
    flag_mounts, flag_tmpfs = fs_over.get("mounts", []), fs_over.get("tmpfs", [])
    taken = {_target(m) for m in [*flag_mounts, *flag_tmpfs]}
    base_mounts = [m for m in fs.get("mounts", []) if _target(m) not in taken]
    base_tmpfs = [t for t in fs.get("tmpfs", [{"target": "/tmp"}]) if _target(t) not in taken]
    fs["mounts"] = _last_per_target([*base_mounts, *flag_mounts])
    fs["tmpfs"] = _last_per_target([*base_tmpfs, *flag_tmpfs])
    caps = merged.setdefault("capabilities", {})
    if not isinstance(caps.get("add", []), list) or not all(
            isinstance(c, str) for c in caps.get("add", [])):
        return merged  # `add = [0]` or `add = "X"`: the model names the key and the value
    added = [*caps.get("add", []), *caps_over.get("add", [])]
    dropped = set(dropin.cap_drop)
    if "ALL" in added and dropped - {"ALL"}:  # --cap-add ALL --cap-drop MKNOD: all but MKNOD
        from saferun.model.capabilities import CAPABILITY_BITS

        added = [c for c in added if c != "ALL"] + sorted(CAPABILITY_BITS)
    if "ALL" not in dropped or caps_over.get("add"):
        added = [c for c in added if _cap(c) not in dropped or c in caps_over.get("add", [])]
    else:
        added = list(caps_over.get("add", []))
    caps["add"] = list(dict.fromkeys(added))
    return merged


def build_manifest(document: dict[str, Any], *, source: str = "command line", text: str = "",
                   hints: dict[str, str] | None = None) -> Any:
    """Validate the merged document as the one Manifest model; refusals name their rule.

    `text` is the manifest file's TOML, when there is one, so errors can name its lines.
    """
    from saferun.inputs.loader import format_validation_error, validation_context
    from saferun.model.manifest import Manifest
    from saferun.model.strict import ValidationError

    try:
        manifest = Manifest.from_data(
            document, context=validation_context(document, refusals="defer"))
    except ValidationError as exc:
        raise ManifestError(format_validation_error(exc, text, source)) from None
    found = manifest.violations()
    if found:
        raise refused(found, hints={**RULE_FLAGS, **(hints or {})})
    return manifest


def check_resolved_mounts(manifest: Any, resolved: Sequence[tuple[str, str] | None]) -> None:
    """Refuse bind mounts whose real (symlink-resolved) source is sensitive; pure.

    `resolved` is aligned with manifest.filesystem.mounts (the plan keeps their order):
    (absolute source as planned, its real path) for a bind mount, None for a volume. The
    caller resolved the paths at the edge.
    """
    from saferun.model.refusals import resolved_mount_violations

    items = []
    for index, (mount, pair) in enumerate(zip(manifest.filesystem.mounts, resolved, strict=True)):
        if mount.type == "bind" and pair is not None:
            items.append((f"filesystem.mounts.{index}.source", pair[0], pair[1], mount.read_only))
    found = [v for v in resolved_mount_violations(items) if not manifest.allowed(v.rule)]
    if found:
        raise refused(found, hints=RULE_FLAGS)


def check_shared_sources(manifest: Any, containers: dict[str, Any]) -> None:
    """Refuse what --volumes-from or a container:NAME namespace would share, by the same
    rules as this manifest's own mounts and namespaces; pure.

    `containers` holds `docker inspect` data of every container named, read at the edge.
    A source container with a sensitive bind mount (or the Docker socket) hands it on; one
    in the host's network, PID or IPC namespace hands that on.
    """
    from saferun.model.refusals import host_path_rule

    found: list[Violation] = []
    for ref in manifest.filesystem.volumes_from:
        name, _, mode = ref.partition(":")
        for mount in containers[name].get("Mounts") or []:
            if mount.get("Type") != "bind":
                continue
            source = str(mount.get("Source", ""))
            rule = host_path_rule(source, mode == "ro" or not mount.get("RW", True))
            if rule is not None:
                found.append(Violation(rule, f"filesystem.volumes_from ({name})",
                                       f"{source!r} -> {mount.get('Destination')}"))
    for where, mode, key, rule in (
        ("network.mode", manifest.network.mode, "NetworkMode", "host-network"),
        ("security.pid", manifest.security.pid, "PidMode", "host-pid"),
        ("security.ipc", manifest.security.ipc, "IpcMode", "host-ipc"),
    ):
        if not mode or not mode.startswith("container:"):
            continue
        name = mode.split(":", 1)[1]
        host = containers[name].get("HostConfig") or {}
        if host.get(key) == "host":
            found.append(Violation(rule, where, f"{mode!r} (that container uses the host's "
                                   "namespace)"))
    found = [v for v in found if not manifest.allowed(v.rule)]
    if found:
        raise refused(found, hints=RULE_FLAGS)


def is_host_network(name: str, data: dict[str, Any] | None) -> bool:
    """`host`, or a name the engine resolved (`docker network inspect` data) to a network
    with the host driver: the host network by its ID or an ID prefix."""
    return name == "host" or (data is not None and data.get("Driver") == "host")


def check_networks(manifest: Any, networks: dict[str, dict[str, Any]]) -> None:
    """Refuse a network that is the host's under another name or its ID; pure.

    `networks` holds `docker network inspect` data of each network the manifest names, read
    at the edge: `--network 1a352c…` (the host network's ID) is judged as `--network host`.
    """
    wanted = [("network.mode", manifest.network.mode)]
    wanted += [(f"network.extra_networks.{i}.name", n.name)
               for i, n in enumerate(manifest.network.extra_networks)]
    found = []
    for where, name in wanted:
        data = networks.get(name)
        if name != "host" and data is not None and data.get("Driver") == "host":
            found.append(Violation("host-network", where,
                                   f"{name!r} (the engine's host network {data.get('Name')!r})"))
    found = [v for v in found if not manifest.allowed(v.rule)]
    if found:
        raise refused(found, hints=RULE_FLAGS)


# --- mapping, one section at a time ----------------------------------------------------

def _map_app(p: ParsedRun, doc: dict[str, Any], cwd: str) -> None:
    app: dict[str, Any] = {}
    env: dict[str, str] = {}
    from_host: list[str] = []
    for item in p.values("env"):
        key, has_value, value = item.partition("=")
        if not key:
            raise DockerArgsError(
                f'invalid argument "{item}" for "-e, --env" flag: variable name is empty')
        if has_value:
            env[key] = value
            if key in from_host:
                from_host.remove(key)
        elif key not in from_host:
            from_host.append(key)
            env.pop(key, None)
    if env:
        app["env"] = env
    if from_host:
        app["env_from_host"] = from_host
    if p.values("env-file"):
        app["env_files"] = [_abs(path, cwd) if path else path for path in p.values("env-file")]
    labels: dict[str, str] = {}
    for item in p.values("label"):
        key, _, value = item.partition("=")
        labels[key] = value
    if labels:
        app["labels"] = labels
    user = p.last("user")
    if user is not None:
        app["user"] = _user(user)
    if p.values("group-add"):
        app["group_add"] = p.values("group-add")
    if p.values("label-file"):
        app["label_files"] = [_abs(path, cwd) if path else path
                              for path in p.values("label-file")]
    annotations: dict[str, str] = {}
    for item in p.values("annotation"):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DockerArgsError(f'invalid argument "{item}" for "--annotation" flag: '
                                  "must be KEY=VALUE")
        annotations[key] = value
    if annotations:
        app["annotations"] = annotations
    entrypoint = p.last("entrypoint")
    if entrypoint is not None:
        app["entrypoint"] = [entrypoint] if entrypoint else []
    simple = {"workdir": "workdir", "hostname": "hostname", "platform": "platform",
              "stop-signal": "stop_signal", "pull": "pull", "domainname": "domainname"}
    for flag, key in simple.items():
        given = p.last(flag)
        if given is not None:
            app[key] = given
    if p.last("stop-timeout") is not None:
        app["stop_timeout"] = _int(p.last("stop-timeout"), "--stop-timeout")
    if p.flag("init") is not None:
        app["init"] = bool(p.flag("init"))
    if app:
        doc["app"] = app


def _map_security(p: ParsedRun, doc: dict[str, Any], notes: list[str]) -> None:
    sec: dict[str, Any] = {}
    if p.flag("privileged"):
        sec["privileged"] = True
    if p.flag("use-api-socket"):
        if "docker-socket-mount" not in _parse_allow(p.values("allow")):
            raise refused([Violation("docker-socket-mount", "--use-api-socket", "true")],
                          hints=RULE_FLAGS)
        raise UnsupportedFlag("--use-api-socket is not supported even when allowed",
                              fix="mount the socket explicitly: -v /var/run/docker.sock:"
                              "/var/run/docker.sock with --allow docker-socket-mount=...")
    for flag, key, allowed in (("pid", "pid", {"host", "container:NAME"}),
                               ("uts", "uts", {"host"}),
                               ("userns", "userns_mode", {"host"}),
                               ("ipc", "ipc", {"private", "shareable", "none", "host",
                                               "container:NAME"}),
                               ("cgroupns", "cgroupns", {"private", "host"})):
        value = p.last(flag)
        if value is None or value == "":
            continue
        shared = value.startswith("container:") and "container:NAME" in allowed
        if value not in allowed and not shared:
            raise DockerArgsError(f"--{flag}: invalid {flag.upper()} mode {value!r} (docker "
                                  f"accepts {', '.join(sorted(allowed))})")
        sec[key] = value
    if p.values("device"):
        sec["devices"] = p.values("device")
    if p.values("device-cgroup-rule"):
        sec["device_cgroup_rules"] = p.values("device-cgroup-rule")
    if p.last("gpus") is not None:
        sec["gpus"] = p.last("gpus")
    sysctls: dict[str, str] = {}
    for item in p.values("sysctl"):
        key, sep, value = item.partition("=")
        if not sep:
            raise DockerArgsError(f'invalid argument "{item}" for "--sysctl" flag: '
                                  "sysctl must be KEY=VALUE")
        sysctls[key] = value
    if sysctls:
        sec["sysctls"] = sysctls
    runtime = p.last("runtime")
    if runtime is not None:
        if runtime not in _RUNTIMES:
            raise UnsupportedFlag(
                f"--runtime {runtime}: saferun knows runc, runsc (gVisor) and kata",
                fix="use one of: " + ", ".join(sorted(_RUNTIMES)))
        sec["runtime"] = _RUNTIMES[runtime]
    for option in p.values("security-opt"):
        _security_opt(option, sec, doc, notes)
    if sec:
        doc["security"] = {**doc.get("security", {}), **sec}


def _security_opt(
    option: str, sec: dict[str, Any], doc: dict[str, Any], notes: list[str]
) -> None:
    key, sep, value = option.partition("=")
    if not sep:
        key, sep, value = option.partition(":")
    if key == "no-new-privileges":
        if sep and value.lower() not in ("true", "1"):
            raise UsageError("--security-opt no-new-privileges=false: no-new-privileges is always "
                             "on in saferun and cannot be turned off")
        return
    if key == "seccomp" and value == "unconfined":
        doc.setdefault("seccomp", {})["profile"] = "unconfined"
    elif key == "seccomp":
        raise UnsupportedFlag(
            f"--security-opt seccomp={value}: saferun generates the seccomp profile itself",
            fix="describe the needed syscalls in a manifest's [seccomp] allow list")
    elif key == "apparmor" and value == "docker-default":
        # Not a weakening to refuse, nor a profile saferun may name (the runtime owns it):
        # the generated per-app profile denies everything docker-default denies, and more.
        notes.append("--security-opt apparmor=docker-default: saferun applies its generated "
                     "per-app profile instead, which denies all that docker-default denies")
    elif key == "apparmor" and value == "unconfined":
        doc.setdefault("apparmor", {})["mode"] = "off"
    elif key == "apparmor" and re.fullmatch(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$", value):
        doc.setdefault("apparmor", {}).update({"mode": "profile", "profile": value})
    elif key == "label" and value == "disable":
        sec["label"] = "disable"
    elif key == "systempaths" and value == "unconfined":
        sec["systempaths"] = "unconfined"
    elif key == "label":
        raise UnsupportedFlag(f"--security-opt {option}: custom SELinux labels are not supported")
    else:
        raise DockerArgsError(f"invalid --security-opt: {option!r}")


def _map_resources(p: ParsedRun, doc: dict[str, Any]) -> None:
    res: dict[str, Any] = {}
    for flag, key in (("memory", "memory"), ("memory-swap", "memory_swap"), ("cpus", "cpus"),
                      ("shm-size", "shm_size")):
        value = p.last(flag)
        if value is not None:
            res[key] = value
    for item in p.values("storage-opt"):
        key, sep, size = item.partition("=")
        if key != "size" or not sep:
            raise UnsupportedFlag(f"--storage-opt {item}: saferun supports only size=<quota>")
        res["storage_size"] = size
    if p.last("pids-limit") is not None:
        res["pids"] = _int(p.last("pids-limit"), "--pids-limit")
    for item in p.values("ulimit"):
        name, sep, limits = item.partition("=")
        if name not in ULIMIT_NAMES:
            raise DockerArgsError(f'invalid argument "{item}" for "--ulimit" flag: invalid '
                                  f"ulimit type: {name}")
        soft, _, hard = limits.partition(":")
        if not sep or not soft:
            raise DockerArgsError(f'invalid argument "{item}" for "--ulimit" flag')
        limit = {"soft": _int(soft, "--ulimit"), "hard": _int(hard or soft, "--ulimit")}
        if name in _OWN_ULIMITS:
            res[name] = limit
        else:
            res.setdefault("ulimits", {})[name] = limit
    for flag in ("cpu-shares", "cpu-period", "cpu-quota", "cpu-rt-period", "cpu-rt-runtime",
                 "blkio-weight", "memory-swappiness", "oom-score-adj"):
        if p.last(flag) is not None:
            res[flag.replace("-", "_")] = _int(p.last(flag), f"--{flag}")
    for flag in ("cpuset-cpus", "cpuset-mems", "memory-reservation", "cgroup-parent"):
        if p.last(flag) is not None:
            res[flag.replace("-", "_")] = p.last(flag)
    for flag in ("blkio-weight-device", "device-read-bps", "device-write-bps",
                 "device-read-iops", "device-write-iops"):
        if p.values(flag):
            res[flag.replace("-", "_")] = p.values(flag)
    if p.flag("oom-kill-disable"):
        res["oom_kill_disable"] = True
    if res:
        doc["resources"] = res


def _map_network(p: ParsedRun, doc: dict[str, Any]) -> None:
    net: dict[str, Any] = {}
    networks = [docker_values.parse_network(value) for value in p.values("network")]
    if networks:
        first = networks[0]
        net["mode"] = "bridge" if first["name"] == "default" else first["name"]
        _first_endpoint(p, first, net)
        extras = []
        for extra in networks[1:]:
            extra = {k: v for k, v in extra.items() if v}
            extras.append(extra)
        if extras:
            net["extra_networks"] = extras
    else:
        _first_endpoint(p, {}, net)
    if p.flag("publish-all"):
        net["publish_all"] = True
    ports = [port for value in p.values("publish") for port in parse_publish(value)]
    if ports:
        net["ports"] = ports
    for flag, key in (("dns", "dns"), ("dns-search", "dns_search"),
                      ("dns-option", "dns_options"), ("expose", "expose")):
        if p.values(flag):
            net[key] = p.values(flag)
    hosts = []
    for item in p.values("add-host"):
        name, sep, address = item.partition("=") if "=" in item else item.partition(":")
        hosts.append(f"{name}:{address.strip('[]')}" if sep else item)
    if hosts:
        net["extra_hosts"] = hosts
    if net:
        doc["network"] = net


def _map_filesystem(p: ParsedRun, doc: dict[str, Any], cwd: str, notes: list[str]) -> None:
    fs: dict[str, Any] = {}
    read_only = p.flag("read-only")
    if read_only is not None:
        fs["read_only"] = read_only
    mounts: list[dict[str, Any]] = []
    tmpfs: list[dict[str, Any]] = []
    for value in p.values("volume"):
        mounts.append(parse_volume(value, cwd, notes))
    for value in p.values("mount"):
        kind, spec = parse_mount(value, cwd, notes)
        (tmpfs if kind == "tmpfs" else mounts).append(spec)
    for value in p.values("tmpfs"):
        tmpfs.append(parse_tmpfs(value))
    if mounts:
        fs["mounts"] = mounts
    if tmpfs:
        fs["tmpfs"] = tmpfs
    if p.values("volumes-from"):
        fs["volumes_from"] = p.values("volumes-from")
    if fs:
        doc["filesystem"] = fs


def _first_endpoint(p: ParsedRun, first: dict[str, Any], net: dict[str, Any]) -> None:
    """The first network takes --network-alias, --ip, --ip6, --mac-address, --link-local-ip
    and --link, as in docker; given both ways, docker refuses (and so does saferun)."""
    for flag, key, what in (("network-alias", "aliases", "per-network alias"),
                            ("ip", "ip", "per-network IPv4 address"),
                            ("ip6", "ip6", "per-network IPv6 address"),
                            ("link-local-ip", "link_local_ips",
                             "per-network link-local IP addresses"),
                            ("mac-address", "mac_address", "per-network MAC address")):
        given = p.values(flag)
        if given and first.get(key):
            raise DockerArgsError(f"conflicting options: cannot specify both --{flag} and {what}")
        if given:
            first[key] = given if key in ("aliases", "link_local_ips") else given[-1]
    for key in ("aliases", "ip", "ip6", "mac_address", "link_local_ips", "driver_opts"):
        if first.get(key):
            net[key] = first[key]
    if p.values("link"):
        net["links"] = p.values("link")


def _map_misc(p: ParsedRun, doc: dict[str, Any]) -> None:
    caps = [_cap(v) for v in p.values("cap-add")]
    if caps:
        doc["capabilities"] = {"add": caps}
    restart = p.last("restart")
    if restart is not None:
        policy, _, retries = restart.partition(":")
        section: dict[str, Any] = {"policy": policy}
        if retries:
            section["max_retries"] = _int(retries, "--restart")
        elif policy == "on-failure":
            section["max_retries"] = 0  # docker's reading: no count, no limit (warned)
        doc["restart"] = section
    logging: dict[str, Any] = {}
    if p.last("log-driver") is not None:
        logging["driver"] = p.last("log-driver")
    options = {}
    for item in p.values("log-opt"):
        key, sep, value = item.partition("=")
        if not sep:
            raise DockerArgsError(
                f'invalid argument "{item}" for "--log-opt" flag: must be KEY=VALUE')
        options[key] = value
    if options:
        logging["options"] = options
    if logging:
        doc["logging"] = logging
    health = _healthcheck(p)
    if health:
        doc["healthcheck"] = health


def _healthcheck(p: ParsedRun) -> dict[str, Any]:
    """docker's --health-*: the command as a shell string (CMD-SHELL), only the given
    timings (the daemon's defaults for the rest), --no-healthcheck alone."""
    health: dict[str, Any] = {}
    command = p.last("health-cmd")
    if command:  # docker ignores an empty --health-cmd
        health["command"] = command
    for flag, key in (("health-interval", "interval"), ("health-timeout", "timeout"),
                      ("health-start-period", "start_period"),
                      ("health-start-interval", "start_interval")):
        if p.last(flag) is not None:
            health[key] = p.last(flag)
    if p.last("health-retries") is not None:
        health["retries"] = _int(p.last("health-retries"), "--health-retries")
    if p.flag("no-healthcheck"):
        if health:
            raise DockerArgsError("--no-healthcheck conflicts with --health-* options")
        health["disable"] = True
    return health


# --- value grammars ---------------------------------------------------------------------

def parse_publish(value: str) -> list[dict[str, Any]]:
    """`[ip:][host:]container[/proto]` with ranges -> PortMapping documents.

    Without an address saferun binds 127.0.0.1 (docker binds every interface): publishing
    to the network is an explicit `-p 0.0.0.0:80:80`.
    """
    published = docker_values.parse_publish(value)
    hosts, containers = published.host_ports, published.container_ports
    if hosts and len(hosts) != len(containers):
        raise UnsupportedFlag(f"-p {value}: a host port range must match the container range "
                              "one to one in saferun")
    result = []
    for index, container in enumerate(containers):
        entry: dict[str, Any] = {"container": container, "protocol": published.protocol}
        if hosts:
            entry["host"] = hosts[index]
        entry["host_ip"] = published.host_ip or "127.0.0.1"
        result.append(entry)
    return result


def parse_volume(value: str, cwd: str, notes: list[str]) -> dict[str, Any]:
    """`-v SOURCE:TARGET[:OPTIONS]`; docker's default is read-write, so say it."""
    mount = docker_values.parse_volume(value)
    spec: dict[str, Any] = {"read_only": mount.read_only}
    for key, option in mount.options:
        if key == "relabel":
            spec["relabel"] = option
        elif key == "bind-propagation":
            spec["propagation"] = option
        elif key == "consistency":
            notes.append(f"-v {value}: '{option}' only matters on Docker Desktop for Mac; "
                         "it has no effect on Linux")
        else:  # volume-nocopy
            spec["nocopy"] = True
    if mount.kind == "anonymous":  # `-v /data`: a new volume docker names itself
        return {"type": "volume", "target": mount.target, **spec}
    if mount.kind == "bind":  # docker sends -v binds as Binds: a missing directory is created
        spec["create_source"] = True
    source = _abs(mount.source, cwd) if mount.kind == "bind" else mount.source
    return {"type": mount.kind, "source": source, "target": mount.target, **spec}


def parse_mount(value: str, cwd: str, notes: list[str]) -> tuple[str, dict[str, Any]]:
    """`--mount type=...,source=...,target=...,...` (docker reads it as one CSV record)."""
    mount = docker_values.parse_mount(value)
    opts = dict(mount.options)
    if "consistency" in opts:
        notes.append(f"--mount {value}: consistency only matters on Docker Desktop for Mac")
        opts.pop("consistency")
    if mount.kind == "tmpfs":
        spec: dict[str, Any] = {"target": mount.target}
        if "tmpfs-size" in opts:
            size = opts.pop("tmpfs-size")
            spec["size"] = int(size) if size.isdigit() else size
        if "tmpfs-mode" in opts:
            spec["mode"] = opts.pop("tmpfs-mode").lstrip("0").rjust(3, "0")
        if mount.read_only or mount.source:
            raise UnsupportedFlag(f"--mount {value}: read-only or sourced tmpfs is not supported")
        _no_more(opts, value)
        return "tmpfs", spec
    if mount.kind not in ("bind", "volume", "anonymous"):
        raise UnsupportedFlag(f"--mount {value}: mount type '{mount.kind}' is not supported")
    source = _abs(mount.source, cwd) if mount.kind == "bind" else mount.source
    kind = "volume" if mount.kind == "anonymous" else mount.kind
    spec = {"type": kind, "target": mount.target, "read_only": mount.read_only}
    if source:
        spec["source"] = source
    if mount.kind == "bind" and "bind-propagation" in opts:
        spec["propagation"] = opts.pop("bind-propagation")
    if kind == "volume" and "volume-nocopy" in opts:
        if docker_values.parse_bool(opts.pop("volume-nocopy"), value):
            spec["nocopy"] = True
    _no_more(opts, value)
    return kind, spec


def _no_more(opts: dict[str, str], value: str) -> None:
    if opts:
        raise UnsupportedFlag(f"--mount {value}: option '{sorted(opts)[0]}' is not supported")


def parse_tmpfs(value: str) -> dict[str, Any]:
    """`--tmpfs /path[:options]` with docker's mount options."""
    target, _, options = value.partition(":")
    spec: dict[str, Any] = {"target": target}
    for option in filter(None, options.split(",")):
        key, _, val = option.partition("=")
        if key == "size":
            spec["size"] = int(val) if val.isdigit() else val
        elif key == "mode":
            spec["mode"] = val
        elif key in ("uid", "gid"):
            if not val.isdigit():
                raise DockerArgsError(f"--tmpfs {value}: {key} must be a number")
            spec[key] = int(val)
        elif key in ("exec", "suid", "dev"):
            spec[key] = True
        elif key in ("noexec", "nosuid", "nodev"):
            spec[key[2:]] = False
        elif key == "rw":
            continue
        else:
            raise UnsupportedFlag(f"--tmpfs {value}: option '{option}' is not supported")
    return spec


# --- small helpers ----------------------------------------------------------------------

def _parse_allow(items: list[str]) -> dict[str, str]:
    allow = {}
    for item in items:
        rule, sep, reason = item.partition("=")
        if rule not in ALLOWABLE_IDS:
            raise UsageError(f"--allow {item}: unknown rule '{rule}'",
                             fix="known rules: " + ", ".join(ALLOWABLE_IDS))
        if not sep or not reason.strip():
            raise UsageError(f"--allow {rule}: a written reason is required "
                             f'(--allow {rule}="why this app needs it")')
        allow[rule] = reason
    return allow


def _client_flags(p: ParsedRun) -> tuple[str, ...]:
    flags: list[str] = []
    if p.values("attach") and p.flag("detach"):
        raise DockerArgsError("Conflicting options: -a and -d")
    if p.flag("rm") and (p.last("restart") or "no") not in ("no", ""):
        raise DockerArgsError("conflicting options: cannot specify both --restart and --rm")
    for name in ("attach", "detach-keys", "cidfile"):
        given = p.values(name)
        for value in given if name == "attach" else given[-1:]:
            if not re.fullmatch(_SESSION_VALUE_PATTERNS[name], value):
                raise DockerArgsError(f"invalid argument {value!r} for --{name}")
            flags += [f"--{name}", value]
    for name in ("sig-proxy", "disable-content-trust"):
        switch = p.flag(name)
        if switch is not None:
            flags.append(f"--{name}={'true' if switch else 'false'}")
    if p.flag("quiet"):
        flags.append("--quiet")
    return tuple(flags)


def _user(value: str) -> str:
    """uid or name, with an optional gid or group: passed through, resolved by docker in the
    image as `docker run --user` does. root and uid 0 are refused by the model's
    run-as-root rule."""
    from saferun.model.manifest import USER_PATTERN

    if not re.fullmatch(USER_PATTERN, value):
        raise DockerArgsError(f"--user {value!r}: expected USER[:GROUP], a name or a number")
    return value


def _cap(value: str) -> str:
    upper = value.strip().upper()
    if upper in ("ALL", "CAP_ALL"):
        return "ALL"
    return upper if upper.startswith("CAP_") else f"CAP_{upper}"


def _int(value: str | None, flag: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise DockerArgsError(
            f'invalid argument "{value}" for "{flag}" flag: not an integer') from None


def _name(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", value):
        raise DockerArgsError(f"Invalid container name ({value!r}), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                              "are allowed")
    return value


def _abs(path: str, cwd: str) -> str:
    return posixpath.normpath(posixpath.join(cwd, path))


def _target(entry: dict[str, Any]) -> str:
    return str(entry.get("target", "")).rstrip("/") or "/"


def _last_per_target(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_target: dict[str, dict[str, Any]] = {}
    for entry in entries:
        by_target.pop(_target(entry), None)
        by_target[_target(entry)] = entry
    return list(by_target.values())


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> None:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        elif isinstance(value, list) and isinstance(base.get(key), list):
            base[key] = [*base[key], *(v for v in value if v not in base[key])]
        else:
            base[key] = value

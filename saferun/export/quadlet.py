"""Manifests -> Podman Quadlet `.container` units (podman-systemd.unit(5)), same protections.

Every key used is one podman-systemd.unit(5) documents for [Container]; what Quadlet has
no key for goes through its documented escape hatches (`PodmanArgs=` for --cpus,
--memory-swap and AppArmor, `GlobalArgs=` for --runtime). User namespaces come from
Podman itself: `UserNS=auto` gives each container its own mapping when the manifest
requires one, without a daemon-wide setting.

Values pass through one gate: control characters are refused (a newline would start a new
key), `%` and `$` are doubled because systemd expands specifiers and variables in the
ExecStart= that Quadlet generates, and list values are quoted the way Quadlet's
systemd-compatible splitter unquotes them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from saferun.errors import ExportError
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
    extra_security_opts,
    go_duration,
    notes_header,
    plan_notes,
    seccomp_file_name,
    unexpressed,
)
from saferun.model.units import format_size
from saferun.plan.planner import PortPlan

# %E is systemd's configuration directory: /etc for system units, ~/.config for user units,
# i.e. the directory that holds the .container file itself (…/containers/systemd).
PROFILE_DIR = "%E/containers/systemd"
# Log drivers Podman knows (json-file is its alias for k8s-file) and the options it reads.
PODMAN_LOG_DRIVERS = {"json-file": "k8s-file", "k8s-file": "k8s-file", "journald": "journald",
                      "none": "none", "passthrough": "passthrough"}
PODMAN_LOG_OPTIONS = frozenset({"max-size", "path", "tag"})
RESTART = {"no": "no", "on-failure": "on-failure", "always": "always", "unless-stopped": "always"}

Section = tuple[str, list[tuple[str, str]]]
_SAFE_WORD = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def unit_file_name(app: str) -> str:
    return f"{app}.container"


def render_quadlet(apps: list[Prepared]) -> ExportResult:
    """One `.container` unit per app (the first is the main file), profiles beside them."""
    units: list[ExportFile] = []
    profiles: list[ExportFile] = []
    notes: list[Unsupported] = []
    for app in apps:
        app_notes: list[Unsupported] = []
        sections = _sections(app, profiles, app_notes)
        text = "\n".join(notes_header(app_notes)) + "\n" + _render(sections)
        units.append(ExportFile(unit_file_name(app.name), text, mode=0o600))
        notes += app_notes
    return ExportResult((*units, *profiles), tuple(sorted(notes)))


def _render(sections: list[Section]) -> str:
    blocks = []
    for name, entries in sections:
        blocks.append("\n".join([f"[{name}]", *(f"{key}={value}" for key, value in entries)]))
    return "\n\n".join(blocks) + "\n"


def _sections(app: Prepared, profiles: list[ExportFile], notes: list[Unsupported]) -> list[Section]:
    plan, manifest = app.plan, app.manifest
    unit: list[tuple[str, str]] = [
        ("Description", _escape(f"saferun app {app.name} (hardened container)")),
    ]
    c: list[tuple[str, str]] = []
    add = c.append
    add(("Image", _value(plan.image, "app.image")))
    add(("ContainerName", _value(app.name, "app.name")))
    add(("Pull", plan.pull))
    if plan.entrypoint is not None:
        add(("Entrypoint", _value(json.dumps(list(plan.entrypoint)), "app.entrypoint", raw=True)))
    if plan.command:
        add(("Exec", _words(plan.command, "app.command")))
    if plan.workdir:
        add(("WorkingDir", _value(plan.workdir, "app.workdir")))
    if plan.hostname:
        add(("HostName", _value(plan.hostname, "app.hostname")))
    uid, _, gid = plan.user.partition(":")
    add(("User", uid))
    if gid:
        add(("Group", gid))
    if manifest.security.userns == "required":
        add(("UserNS", "auto"))
    add(("DropCapability", "all"))
    if plan.cap_add:
        add(("AddCapability", " ".join(plan.cap_add)))
    add(("NoNewPrivileges", "true"))
    c += _seccomp(app, profiles, notes)
    podman_args = _apparmor(app, profiles, notes)
    add(("ReadOnly", "true" if plan.read_only else "false"))
    if plan.read_only:
        add(("ReadOnlyTmpfs", "false"))
        notes.append(Unsupported(app.name, "filesystem.read_only", (
            "ReadOnlyTmpfs=false keeps Podman from adding writable tmpfs on /run, /var/tmp and "
            "/dev/shm that the manifest did not ask for; /dev/shm is read-only under Podman "
            "(writable under Docker): add a filesystem.tmpfs at /dev/shm if the app needs it")))
    for tmpfs in plan.tmpfs:
        add(("Tmpfs", _value(f"{tmpfs.target}:{tmpfs.options}", "filesystem.tmpfs")))
    for mount in plan.mounts:
        if not mount.source:  # an anonymous volume: Podman makes one, as docker does
            add(("Volume", _value(f"{mount.target}{':ro' if mount.read_only else ''}",
                                  "filesystem.mounts")))
            continue
        spec = f"type={mount.kind},source={mount.source},destination={mount.target}"
        if mount.read_only:
            spec += ",ro=true"
        if getattr(mount, "propagation", None):
            spec += f",bind-propagation={mount.propagation}"
        if getattr(mount, "relabel", None):
            spec += ",relabel=" + ("shared" if mount.relabel == "z" else "private")
        if mount.kind == "bind" and not mount.source.startswith("/"):
            notes.append(Unsupported(app.name, f"filesystem.mounts {mount.target}", (
                f"bind source '{mount.source}' is relative; Podman would resolve it against its "
                "own working directory: export with an absolute manifest directory")))
        add(("Mount", _value(spec, "filesystem.mounts")))
    add(("Memory", format_size(plan.memory)))
    podman_args += [f"--memory-swap={format_size(plan.memory_swap)}",
                    f"--cpus={_cpus(plan.nano_cpus)}"]
    add(("PidsLimit", str(plan.pids_limit)))
    for ulimit in plan.ulimits:
        add(("Ulimit", f"{ulimit.name}={ulimit.soft}:{ulimit.hard}"))
    if plan.network != "bridge":
        add(("Network", _value(plan.network, "network.mode")))
    handled = _dropins(app, c, podman_args)
    for port in plan.ports:
        add(("PublishPort", _port(port)))
    c += _health(app, notes)
    c += _logging(app, notes)
    if plan.init:
        add(("RunInit", "true"))
    for path in plan.env_files:
        add(("EnvironmentFile", _value(path, "app.env_files")))
    for key, value in plan.env:
        add(("Environment", _words([f"{key}={value}"], f"app.env.{key}")))
    for key, value in plan.labels:
        add(("Label", _words([f"{key}={value}"], f"app.labels.{key}")))
    add(("PodmanArgs", _words(podman_args, "PodmanArgs")))
    if plan.runtime != "runc":
        add(("GlobalArgs", f"--runtime={_value(plan.runtime, 'security.runtime')}"))
    notes += unexpressed(app, handled, "Quadlet") + plan_notes(app)
    service = [("Restart", RESTART[plan.restart_policy])]
    if plan.restart_policy == "on-failure" and plan.restart_retries:  # 0: no limit
        # Docker stops after max_retries restarts; systemd counts starts (the first + retries).
        unit += [("StartLimitIntervalSec", "infinity"),
                 ("StartLimitBurst", str(plan.restart_retries + 1))]
    return [("Unit", unit), ("Container", c), ("Service", service),
            ("Install", [("WantedBy", "default.target")])]


# Drop-in settings with a [Container] key: plan field -> (key, one value per entry?).
DROPIN_KEYS: dict[str, str] = {
    "stop_signal": "StopSignal", "stop_timeout": "StopTimeout", "dns": "DNS",
    "dns_search": "DNSSearch", "dns_options": "DNSOption", "extra_hosts": "AddHost",
    "devices": "AddDevice", "network_aliases": "NetworkAlias",
}
# ...and those only `podman run` flags can carry (through PodmanArgs=).
DROPIN_FLAGS: dict[str, str] = {
    "privileged": "--privileged", "pid_mode": "--pid", "ipc_mode": "--ipc", "uts_mode": "--uts",
    "cgroupns_mode": "--cgroupns", "platform": "--platform",
    "device_cgroup_rules": "--device-cgroup-rule",
}


def _dropins(app: Prepared, c: list[tuple[str, str]], podman_args: list[str]) -> set[str]:
    """Drop-in `docker run` settings: Quadlet keys first, PodmanArgs flags otherwise."""
    plan = app.plan
    handled = {"mount.propagation", "mount.relabel", "mount.anonymous", "security_opts",
               "network.host"}
    for field, key in DROPIN_KEYS.items():
        value = dropin(plan, field)
        if value is not None:
            for item in value if isinstance(value, tuple) else (value,):
                c.append((key, _value(str(item), field)))
            handled.add(field)
    shm = dropin(plan, "shm_size")
    if isinstance(shm, int):
        c.append(("ShmSize", format_size(shm)))
        handled.add("shm_size")
    for key, value in dropin(plan, "sysctls") or ():
        c.append(("Sysctl", _value(f"{key}={value}", "security.sysctls")))
        handled.add("sysctls")
    if dropin(plan, "userns_mode") == "host":
        c.append(("UserNS", "host"))
        handled.add("userns_mode")
    for field, flag in DROPIN_FLAGS.items():
        value = dropin(plan, field)
        if value is True:
            podman_args.append(flag)
        elif value is not None:
            for item in value if isinstance(value, tuple) else (value,):
                podman_args.append(f"{flag}={item}")
        if value is not None:
            handled.add(field)
    podman_args += [f"--security-opt={o}" for o in extra_security_opts(plan)]
    return handled


def _seccomp(app: Prepared, profiles: list[ExportFile],
             notes: list[Unsupported]) -> list[tuple[str, str]]:
    if app.seccomp.kind is SeccompKind.UNCONFINED:
        return [("SeccompProfile", "unconfined")]
    if app.seccomp.kind is SeccompKind.RUNTIME_DEFAULT or app.seccomp.profile_json is None:
        notes.append(Unsupported(app.name, "seccomp.profile", (
            "'docker-default': Podman applies its own default profile (containers-common "
            "seccomp.json), close to but not the same as Docker's")))
        return []
    name = seccomp_file_name(app.name)
    text = app.seccomp.profile_json
    profiles.append(ExportFile(name, text if text.endswith("\n") else text + "\n"))
    notes.append(Unsupported(app.name, "seccomp", (
        f"install {name} beside the unit ({PROFILE_DIR}: /etc/containers/systemd, or "
        "~/.config/containers/systemd for a user unit)")))
    return [("SeccompProfile", f"{PROFILE_DIR}/{name}")]


_QUADLET_HOST = HostLoadsProfiles(
    load="Quadlet cannot load AppArmor profiles: run `apparmor_parser -r {path}` on the host "
    "first (add it as ExecStartPre= in [Service] to do it at every start)",
    already_loaded="'{name}' must already be loaded on the host",
    enforcement="Podman ignores the profile where AppArmor is absent and cannot refuse to "
    "start: check the host has AppArmor",
)


def _apparmor(app: Prepared, profiles: list[ExportFile], notes: list[Unsupported]) -> list[str]:
    """AppArmor has no Quadlet key: --security-opt through PodmanArgs=."""
    choice = app.apparmor
    if choice.kind is AppArmorKind.UNCONFINED:
        return ["--security-opt=apparmor=unconfined"]
    assert choice.name is not None
    add_apparmor_profile(app, profiles, notes, _QUADLET_HOST)
    return [f"--security-opt=apparmor={_value(choice.name, 'apparmor')}"]


def _health(app: Prepared, notes: list[Unsupported]) -> list[tuple[str, str]]:
    check, plan_check = app.manifest.healthcheck, app.plan.healthcheck
    if check is None or plan_check is None or check.command is None:
        return []  # --no-healthcheck / image timings only: reported by unexpressed()
    if isinstance(check.command, str):
        return [("HealthCmd", _value(check.command, "healthcheck.command")),
                *_health_timings(plan_check)]
    if len(check.command) == 1:
        notes.append(Unsupported(app.name, "healthcheck.command", (
            "Podman runs a one-word health command through /bin/sh -c (the image needs a "
            "shell); list its arguments to run it directly")))
    return [
        ("HealthCmd", _value(json.dumps(check.command), "healthcheck.command", raw=True)),
        *_health_timings(plan_check),
    ]


def _health_timings(plan_check: Any) -> list[tuple[str, str]]:
    """Only the timings the manifest gives; the others stay Podman's defaults."""
    given = plan_check.given
    return [pair for name, pair in (
        ("interval", ("HealthInterval", go_duration(plan_check.interval_ns))),
        ("timeout", ("HealthTimeout", go_duration(plan_check.timeout_ns))),
        ("retries", ("HealthRetries", str(plan_check.retries))),
        ("start_period", ("HealthStartPeriod", go_duration(plan_check.start_period_ns))),
        ("start_interval", ("HealthStartupInterval", go_duration(plan_check.start_interval_ns))),
    ) if name in given]


def _logging(app: Prepared, notes: list[Unsupported]) -> list[tuple[str, str]]:
    plan = app.plan
    driver = PODMAN_LOG_DRIVERS.get(plan.log_driver)
    if driver is None:
        notes.append(Unsupported(app.name, "logging.driver", (
            f"'{plan.log_driver}' is not a Podman log driver (k8s-file, journald, none, "
            "passthrough): Podman's default is used")))
        return []
    entries = [("LogDriver", driver)]
    for key, value in plan.log_options:
        if key in PODMAN_LOG_OPTIONS:
            entries.append(("LogOpt", _value(f"{key}={value}", f"logging.options.{key}")))
        else:
            notes.append(Unsupported(app.name, f"logging.options.{key}", (
                f"'{value}': Podman's {driver} driver has no such option (it knows "
                f"{', '.join(sorted(PODMAN_LOG_OPTIONS))})")))
    return entries


def _port(port: PortPlan) -> str:
    host_ip = f"[{port.host_ip}]" if ":" in port.host_ip else port.host_ip
    host_port = str(port.host_port) if port.host_port else ""
    return f"{host_ip}:{host_port}:{port.container_port}/{port.protocol}"


def _cpus(nano: int) -> str:
    whole, frac = divmod(nano, 10**9)
    return str(whole) if not frac else f"{whole}.{frac:09d}".rstrip("0")


def _check(value: str, key: str) -> None:
    if _CONTROL.search(value):
        raise ExportError(f"{key} = {value!r}: a control character (newline, tab...) cannot be "
                          "written into a systemd unit",
                          fix="remove it from the manifest, or export to compose or kubernetes")


def _escape(value: str) -> str:
    """systemd expands %specifiers and $VARIABLES in the ExecStart= Quadlet writes."""
    return value.replace("%", "%%").replace("$", "$$")


def _value(value: str, key: str, *, raw: bool = False) -> str:
    """A single-valued key (Quadlet reads it whole). `raw` values may hold quotes (JSON)."""
    _check(value, key)
    if not raw and re.search(r"[\s\"'\\]", value):
        raise ExportError(f"{key} = {value!r}: whitespace, quotes and backslashes cannot be "
                          "written into this Quadlet key",
                          fix="remove them from the manifest, or export to compose or kubernetes")
    return _escape(value)


def _words(values: list[str] | tuple[str, ...], key: str) -> str:
    """A list key (Exec=, Environment=, Label=): each word quoted as Quadlet unquotes it.

    Quadlet reads these keys with C-style unescaping (podman's splitString with
    SplitCUnescape), so a control character or line separator is written as its escape
    (\\x1b, \\u2028) inside the quotes and reaches the container unchanged."""
    words = []
    for value in values:
        escaped = _escape(value)
        if _SAFE_WORD.fullmatch(escaped):
            words.append(escaped)
        else:
            quoted = escaped.replace("\\", "\\\\").replace('"', '\\"')
            words.append('"' + "".join(map(_c_escape, quoted)) + '"')
    return " ".join(words) if words else '""'


def _c_escape(char: str) -> str:
    """One character as Quadlet's C-style unescaping reads it back (\\xNN only for ASCII:
    a \\x escape is a byte, and U+0085 is two bytes in UTF-8)."""
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"

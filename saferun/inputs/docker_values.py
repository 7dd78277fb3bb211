"""The value syntaxes of `docker run` flags, read once, the way the docker CLI reads them.

`-p`, `-v` and `--mount` values become plain typed values here. saferun.inputs.dockerrun
maps them onto the manifest (what `saferun run` starts), saferun.inputs.plain_docker onto
the ContainerSpec of what plain docker would start (what `saferun check` judges). One
reader, so the two commands can never read the same line differently.

Sources: the docker CLI's opts/mount.go (`--mount`), volume/mounts/linux_parser.go (`-v`)
and go-connections nat.ParsePortSpec (`-p`).
"""

from __future__ import annotations

import csv
from typing import Any

import msgspec

from saferun.errors import DockerArgsError

PROPAGATION = frozenset({"rprivate", "private", "rslave", "slave", "rshared", "shared"})
CONSISTENCY = frozenset({"consistent", "cached", "delegated"})
_VOLUME_MODES = frozenset({"ro", "rw", "readonly", "z", "Z", "nocopy"}) | PROPAGATION | CONSISTENCY


class Publish(msgspec.Struct, frozen=True):
    """One `-p` value. Ranges are expanded; no host ports means a random high port."""

    host_ip: str  # "" = not given (docker binds every interface)
    host_ports: tuple[int, ...]
    container_ports: tuple[int, ...]
    protocol: str


class MountValue(msgspec.Struct, frozen=True):
    """One `-v` or `--mount` value. `kind` is bind, volume, tmpfs or anonymous (a volume
    without a name); `options` keeps every other key, in docker's spelling, in order."""

    kind: str
    source: str  # the host path as written, or the volume name; "" when there is none
    target: str
    read_only: bool
    options: tuple[tuple[str, str], ...] = ()

    def option(self, key: str) -> str | None:
        return next((v for k, v in reversed(self.options) if k == key), None)

    @property
    def propagation(self) -> str | None:
        return self.option("bind-propagation")


def parse_publish(value: str) -> Publish:
    """`[ip:][hostPort:]containerPort[/protocol]` (IPv6 addresses in brackets)."""
    spec, _, protocol = value.partition("/")
    parts = spec.split(":")
    container_part = parts[-1]
    host_part = parts[-2] if len(parts) > 1 else ""
    # docker joins everything before the last two parts: an IPv6 address has colons too.
    address = ":".join(parts[:-2]) if len(parts) > 2 else ""
    if address.startswith("["):
        if not address.endswith("]"):
            raise DockerArgsError(f"invalid publish spec: {value!r}")
        address = address[1:-1]
    if not container_part:
        raise DockerArgsError(
            f"invalid publish spec: {value!r} (use [ip:][hostPort:]containerPort)")
    containers = _port_range(container_part, value)
    hosts = _port_range(host_part, value) if host_part else []
    if hosts and len(hosts) != len(containers) and len(containers) != 1:
        raise DockerArgsError(f"invalid publish spec: {value!r} (invalid ranges specified "
                              "for container and host ports)")
    return Publish(address, tuple(hosts), tuple(containers), protocol or "tcp")


def _port_range(text: str, whole: str) -> list[int]:
    start, sep, end = text.partition("-")
    try:
        first, last = int(start), int(end) if sep else int(start)
    except ValueError:
        raise DockerArgsError(f"invalid publish spec: {whole!r} (invalid port {text!r})") from None
    if not 0 <= first <= last <= 65535:
        raise DockerArgsError(f"invalid publish spec: {whole!r} (invalid range {text!r})")
    return list(range(first, last + 1))


def parse_volume(value: str) -> MountValue:
    """`-v [SOURCE:]TARGET[:MODES]`: a bind (source starts with / or .), a named volume, or
    an anonymous volume (no source). Read-write unless `ro` (docker's default)."""
    parts = value.split(":")
    if len(parts) == 2 and not parts[1].startswith("/") and _are_modes(parts[1]):
        parts = ["", *parts]  # `-v /data:ro`: an anonymous volume with modes
    if len(parts) == 1:
        parts = ["", parts[0]]
    if len(parts) > 3 or not parts[1]:
        raise DockerArgsError(f"invalid volume specification: {value!r}")
    source, target = parts[0], parts[1]
    modes = [m for m in parts[2].split(",") if m] if len(parts) == 3 else []
    read_only = False
    options: list[tuple[str, str]] = []
    for mode in modes:
        if mode not in _VOLUME_MODES:
            raise DockerArgsError(f"invalid mode: {mode}")
        if mode in ("ro", "readonly"):
            read_only = True
        elif mode == "rw":
            read_only = False
        elif mode in PROPAGATION:
            options.append(("bind-propagation", mode))
        elif mode in CONSISTENCY:
            options.append(("consistency", mode))
        elif mode in ("z", "Z"):
            options.append(("relabel", mode))
        else:
            options.append(("volume-nocopy", "true"))
    kind = "anonymous" if not source else "bind" if source.startswith(("/", ".")) else "volume"
    return MountValue(kind, source, target, read_only, tuple(options))


def _are_modes(text: str) -> bool:
    return all(mode in _VOLUME_MODES for mode in text.split(",") if mode)


_MOUNT_ALIASES = {"src": "source", "dst": "target", "destination": "target", "ro": "readonly"}
_BARE_TRUE = frozenset({"readonly", "volume-nocopy", "bind-nonrecursive"})
_BOOLS = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}


def parse_mount(value: str) -> MountValue:
    """`--mount type=...,source=...,target=...,...`: one CSV record; keys and the type are
    read case-insensitively, an alias is the same key, and the last of a key wins."""
    fields = _csv_record(value, "--mount")
    seen: dict[str, str] = {}
    for item in fields:
        key, sep, val = item.partition("=")
        key = _MOUNT_ALIASES.get(key.strip().lower(), key.strip().lower())
        if not sep:
            if key not in _BARE_TRUE:
                raise DockerArgsError(f"invalid field '{item}' must be a key=value pair")
            val = "true"
        seen.pop(key, None)  # keep the order of the last occurrence
        seen[key] = val
    kind = seen.pop("type", "volume").lower()
    source = seen.pop("source", "")
    target = seen.pop("target", "")
    if not target:
        raise DockerArgsError("invalid argument for --mount: target is required")
    read_only = _bool(seen.pop("readonly", "false"), value)
    if kind == "volume" and not source:
        kind = "anonymous"
    if kind == "bind" and not source:
        raise DockerArgsError(f'invalid mount config for type "bind": field Source must not '
                              f"be empty ({value!r})")
    return MountValue(kind, source, target, read_only, tuple(seen.items()))


def _csv_record(value: str, flag: str) -> list[str]:
    """One CSV record, as docker's encoding/csv reads a `--mount` or `--network` value; a
    newline or a stray quote is a usage error naming the flag, never a csv.Error."""
    try:
        return next(csv.reader([value]))
    except (csv.Error, StopIteration):
        raise DockerArgsError(f"invalid {flag} value: {value!r} (not one comma-separated "
                              f"record: a newline or an unmatched quote)") from None


def _bool(text: str, whole: str) -> bool:
    try:
        return _BOOLS[text.strip().lower()]
    except KeyError:
        raise DockerArgsError(f"invalid --mount value: {whole!r} ({text!r} is not a boolean)"
                              ) from None


def parse_bool(text: str, whole: str) -> bool:
    """A `--mount` boolean (`true`, `1`, `false`...), read as docker's strconv.ParseBool."""
    return _bool(text, whole)


_NETWORK_KEYS = {"name": "name", "alias": "aliases", "ip": "ip", "ip6": "ip6",
                 "mac-address": "mac_address", "link-local-ip": "link_local_ips",
                 "driver-opt": "driver_opts"}


def parse_network(value: str) -> dict[str, Any]:
    """`--network NAME` or docker's `name=NET,alias=A,ip=...,driver-opt=K=V` (one CSV)."""
    if "=" not in value:
        return {"name": value}
    entry: dict[str, Any] = {"aliases": [], "link_local_ips": [], "driver_opts": {}}
    for field_ in _csv_record(value, "--network"):
        key, sep, setting = field_.partition("=")
        key = key.strip().lower()
        if not sep or key not in _NETWORK_KEYS:
            raise DockerArgsError(f"invalid field key {key!r} in --network {value!r} (docker "
                                  f"knows {', '.join(_NETWORK_KEYS)})")
        target = _NETWORK_KEYS[key]
        if target == "driver_opts":
            opt, eq, opt_value = setting.partition("=")
            if not eq:
                raise DockerArgsError(f"invalid driver-opt {setting!r}: must be KEY=VALUE")
            entry["driver_opts"][opt] = opt_value
        elif target in ("aliases", "link_local_ips"):
            entry[target].append(setting)
        else:
            entry[target] = setting
    if not entry.get("name"):
        raise DockerArgsError(f"--network {value!r}: name is required")
    return entry

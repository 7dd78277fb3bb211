"""The manifest: one validated model for a TOML file and for a `docker run` command line.

Every field has a hardened default, so an empty `[app]` with an image already gives a
locked-down container. Values are validated here, before they reach a profile or an argv:
names and paths match strict patterns, capabilities come from the kernel's list, sizes
parse as docker parses them. Weakening a protection needs an entry in `[exceptions]`
with a written reason.
"""

import re
from typing import Annotated, Any, Literal

import msgspec

from saferun.model.capabilities import CAPABILITY_BITS, normalize_capability
from saferun.model.normalise import is_all_addresses, is_root_user
from saferun.model.refusals import (
    ALLOWABLE_IDS,
    ALLOWED_CAPABILITIES,
    LEGACY_KEYS,
    SAFE_SYSCTLS,
    WARNING_IDS,
    Violation,
    host_path_rule,
    image_tag_problem,
)
from saferun.model.strict import StrictModel, context, meta
from saferun.model.units import parse_cpus, parse_duration, parse_size

SCHEMA_VERSION: Literal[1] = 1

# Container/app names: what docker accepts for --name, kept short and shell-safe.
NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$"
# Image references: [registry[:port]/]path[:tag][@digest], no whitespace or shell metacharacters.
IMAGE_PATTERN = (
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]{1,2}[a-z0-9]+|/[a-z0-9]+)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
# Absolute container paths without `..`, commas, colons or control characters: they end up
# in `--tmpfs`/`--mount` values and in AppArmor rules, where those characters are syntax.
# No segment is "." or "..". One way to match each string: Python's re backtracks, and the
# earlier form (segments with an optional "/" between them) took exponential time on a long
# segment that ended in a refused character (70 s for 23 characters).
_SEGMENT = r"(?!\.\.?(?:/|$))[A-Za-z0-9_.@+-]+"
CONTAINER_PATH_PATTERN = rf"^/(?:{_SEGMENT}(?:/{_SEGMENT})*/?)?$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*$"  # docker allows dots, e.g. discovery.type
LABEL_KEY_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_./-]{0,127}$"
# uid or user name, optionally :gid or :group. A name is resolved by docker inside the
# image (as `docker run --user NAME` does); "root" and uid 0 are refused by run-as-root.
_ID_OR_NAME = r"(?:[0-9]{1,10}|[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?)"
USER_PATTERN = rf"^{_ID_OR_NAME}(?::{_ID_OR_NAME})?$"
CONTAINER_REF_PATTERN = r"[a-zA-Z0-9][a-zA-Z0-9_.-]*"
# docker's ulimit names (RLIMIT_*), as the CLI's ParseUlimit knows them.
ULIMIT_NAMES = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
                "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")
# DEVICE:VALUE of --blkio-weight-device and --device-{read,write}-{bps,iops}.
CPUSET_PATTERN = r"^[0-9]+(?:-[0-9]+)?(?:,[0-9]+(?:-[0-9]+)?)*$"
THROTTLE_PATTERN = r"^/dev/[A-Za-z0-9_.+/-]+:[0-9]+[kmgKMG]?[bB]?$"
REASON_MIN_LENGTH = 10

ExceptionKey = Literal[
    "run_as_root",
    "seccomp_unconfined",
    "apparmor_off",
    "userns_host",
    "writable_root",
    "restart_always",
]


class AppSection(StrictModel, frozen=True, kw_only=True):
    """What runs: image, command and its environment."""

    name: Annotated[str, meta(
        pattern=NAME_PATTERN,
        description="App name; default container name.")]
    image: Annotated[str, meta(
        pattern=IMAGE_PATTERN,
        description="Image reference (tag or digest).")]
    command: Annotated[list[str] | None, meta(
        description="Command (arguments after the image).")] = None
    entrypoint: Annotated[list[str] | None, meta(
        description="Replaces the image's ENTRYPOINT.")] = None
    workdir: Annotated[str, meta(pattern=CONTAINER_PATH_PATTERN)] | None = None
    env: Annotated[dict[str, str], meta(description="Environment variables.")] = {}
    env_files: Annotated[list[str], meta(
        description="Env files (docker's KEY=VALUE format), relative to the manifest.")] = []
    labels: dict[str, str] = {}
    user: Annotated[Annotated[str, meta(pattern=USER_PATTERN)], meta(
        description="uid[:gid] or a user name (resolved in the image, as docker does). Root (0 or "
        "root) needs [allow] run-as-root.")] = "65534:65534"
    group_add: Annotated[list[Annotated[str, meta(pattern=rf"^{_ID_OR_NAME}$")]], meta(
        description="Supplementary groups, numeric or named (docker --group-add).")] = []
    domainname: Annotated[
        Annotated[str, meta(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9.-]{0,253}$")] | None, meta(
        description="NIS domain name (docker --domainname).")] = None
    label_files: Annotated[list[str], meta(
        description="Label files (docker --label-file: KEY=VALUE lines), relative to the "
        "manifest.")] = []
    annotations: Annotated[dict[str, str], meta(
        description="OCI annotations passed to the runtime (docker --annotation; API 1.43+).")] = {}
    hostname: Annotated[str, meta(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9.-]{0,62}$")] | None = None
    init: Annotated[bool, meta(
        description="Run docker's init (tini) as PID 1 to reap zombies.")] = False
    pull: Literal["missing", "never", "always"] = "missing"
    env_from_host: Annotated[list[Annotated[str, meta(pattern=ENV_NAME_PATTERN)]], meta(
        description="Variables passed from saferun's own environment at start (docker's -e "
        "NAME).")] = []
    platform: Annotated[
        Annotated[str, meta(pattern=r"^[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?$")] | None, meta(
        description="Image platform, e.g. linux/amd64.")] = None
    stop_signal: (
        Annotated[str, meta(pattern=r"^(?:SIG[A-Z0-9+-]+|[A-Z0-9+-]+|[0-9]{1,2})$")] | None
    ) = None
    stop_timeout: Annotated[Annotated[int, meta(ge=0, le=86400)] | None, meta(
        description="Seconds to wait after the stop signal before SIGKILL.")] = None

    @staticmethod
    def _env_names(value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.fullmatch(ENV_NAME_PATTERN, key):
                raise ValueError(f"invalid environment variable name {key!r}")
        return value

    @staticmethod
    def _label_keys(value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.fullmatch(LABEL_KEY_PATTERN, key):
                raise ValueError(f"invalid label key {key!r}")
            if key.startswith("io.saferun."):
                raise ValueError(f"label key '{key}' is reserved for saferun")
        return value

    @staticmethod
    def _annotation_keys(value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.fullmatch(LABEL_KEY_PATTERN, key):
                raise ValueError(f"invalid annotation key {key!r}")
        return value

    @staticmethod
    def _env_file_paths(value: list[str]) -> list[str]:
        for path in value:
            if not path or not path.isprintable():
                raise ValueError(f"invalid env file path {path!r}")
        return value

    __field_checks__ = (("env", _env_names), ("labels", _label_keys),
                        ("annotations", _annotation_keys), ("env_files", _env_file_paths),
                        ("label_files", _env_file_paths))


class CapabilitiesSection(StrictModel, frozen=True, kw_only=True):
    """Capabilities: every capability is dropped; `add` is the allowlist."""

    add: Annotated[list[str], meta(
        description="Capabilities to keep, e.g. NET_BIND_SERVICE.")] = []

    @staticmethod
    def _known(value: list[str]) -> list[str]:
        # "ALL" expands to every capability, so the profiles and the argv see real names;
        # the manifest then refuses it by rule (cap-add-all) unless allowed.
        names: set[str] = set()
        for name in value:
            if name.strip().upper() in ("ALL", "CAP_ALL"):
                names.update(CAPABILITY_BITS)
            else:
                names.add(normalize_capability(name))
        return sorted(names)

    __field_checks__ = (("add", _known),)


class TmpfsMount(StrictModel, frozen=True, kw_only=True):
    """A tmpfs: writable scratch space under a read-only root."""

    target: Annotated[str, meta(pattern=CONTAINER_PATH_PATTERN)]
    size: Annotated[str | int, meta(description="Size limit, e.g. 64m.")] = "64m"
    mode: Annotated[str, meta(pattern=r"^[0-7]{3,4}$")] = "1777"
    exec: Annotated[bool, meta(description="Allow executing files (noexec by default).")] = False
    suid: Annotated[bool, meta(description="Honour setuid bits (nosuid by default).")] = False
    dev: Annotated[bool, meta(description="Allow device files (nodev by default).")] = False
    uid: Annotated[Annotated[int, meta(ge=0, le=2**31 - 1)] | None, meta(
        description="Owner of the tmpfs root (default root): the app's uid lets a non-root app "
        "write it with a mode such as 0755.")] = None
    gid: Annotated[Annotated[int, meta(ge=0, le=2**31 - 1)] | None, meta(
        description="Group of the tmpfs root (default root).")] = None

    @staticmethod
    def _size(value: str | int) -> str | int:
        if parse_size(value) <= 0:
            raise ValueError("tmpfs size must be greater than 0")
        return value

    @property
    def size_bytes(self) -> int:
        return parse_size(self.size)

    __field_checks__ = (("size", _size),)


class BindOrVolumeMount(StrictModel, frozen=True, kw_only=True):
    """A bind mount of a host path, or a volume (named, or anonymous without a source).
    Read-only unless `read_only = false`."""

    type: Literal["bind", "volume"]
    source: Annotated[Annotated[str, meta(max_length=4096)], meta(
        description="Host path (bind) or volume name; empty: an anonymous volume.")] = ""
    target: Annotated[str, meta(pattern=CONTAINER_PATH_PATTERN)]
    read_only: bool = True
    propagation: Annotated[
        Literal["rprivate", "private", "rslave", "slave", "rshared", "shared"] | None, meta(
        description="Bind propagation; shared/rshared need [allow] shared-propagation.")] = None
    relabel: Annotated[Literal["z", "Z"] | None, meta(
        description="SELinux relabelling: z shared between containers, Z private.")] = None
    nocopy: Annotated[bool, meta(
        description="Volumes: do not copy the image's files into a new volume.")] = False
    create_source: Annotated[bool, meta(
        description="Binds: create a missing host directory, as `docker run -v` does (docker "
        "sends -v binds as Binds; --mount refuses a missing source).")] = False

    def _relabel_source(self) -> None:
        # A relabelled mount is rendered in docker's -v syntax, where ':' separates fields.
        if self.relabel and ":" in self.source:
            raise ValueError(f"source {self.source!r} contains ':', which cannot be relabelled")

    def _source_shape(self) -> None:
        if self.type == "bind" and not self.source:
            raise ValueError("a bind mount needs a source")
        if self.nocopy and self.type != "volume":
            raise ValueError("nocopy applies to volumes only")
        if self.create_source and self.type != "bind":
            raise ValueError("create_source applies to bind mounts only")
        if (self.type == "volume" and self.source
                and not re.fullmatch(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$", self.source)):
            raise ValueError(f"volume name {self.source!r} is invalid (letters, digits, _ . -)")
        if self.type == "bind" and ("," in self.source or not self.source.isprintable()):
            raise ValueError(f"bind source {self.source!r} contains a comma, a control character "
                             "or a line separator")


    def _check(self) -> None:
        self._relabel_source()
        self._source_shape()


class FilesystemSection(StrictModel, frozen=True, kw_only=True):
    read_only: Annotated[bool, meta(
        description="Read-only root filesystem. false needs exceptions.writable_root.")] = True
    tmpfs: Annotated[list[TmpfsMount], meta(
        description="tmpfs mounts; default: /tmp, 64m, noexec,nosuid,nodev.")] = msgspec.field(
            default_factory=lambda: [TmpfsMount(target="/tmp")])
    mounts: list[BindOrVolumeMount] = []
    volumes_from: Annotated[
        list[
        Annotated[str, meta(pattern=rf"^{CONTAINER_REF_PATTERN}(?::(?:ro|rw))?$")]
    ], meta(
        description="Containers whose mounts are shared (docker --volumes-from NAME[:ro|rw]); "
        "saferun run judges their sources by the mount rules before starting.")] = []

    def _unique_targets(self) -> None:
        all_targets = [m.target for m in self.tmpfs] + [m.target for m in self.mounts]
        targets = [t.rstrip("/") or "/" for t in all_targets]
        for target in targets:
            if target == "/":
                raise ValueError("a mount target cannot be '/'")
        dupes = sorted({t for t in targets if targets.count(t) > 1})
        if dupes:
            raise ValueError(f"mount target '{dupes[0]}' is used twice")


    def _check(self) -> None:
        self._unique_targets()


class Ulimit(StrictModel, frozen=True, kw_only=True):
    soft: Annotated[int, meta(ge=0)]
    hard: Annotated[int, meta(ge=0)]

    def _order(self) -> None:
        if self.soft > self.hard:
            raise ValueError(f"soft limit {self.soft} is above hard limit {self.hard}")


    def _check(self) -> None:
        self._order()


class AnyUlimit(StrictModel, frozen=True, kw_only=True):
    """A ulimit as docker takes it: -1 means unlimited."""

    soft: Annotated[int, meta(ge=-1)]
    hard: Annotated[int, meta(ge=-1)]

    def _order(self) -> None:
        if self.hard != -1 and (self.soft == -1 or self.soft > self.hard):
            raise ValueError(f"soft limit {self.soft} is above hard limit {self.hard}")


    def _check(self) -> None:
        self._order()


class ResourcesSection(StrictModel, frozen=True, kw_only=True):
    """Limits. Memory without swap, a PID cap and a descriptor cap by default."""

    shm_size: Annotated[str | int | None, meta(
        description="Size of /dev/shm, e.g. 256m (docker's default 64m).")] = None
    storage_size: Annotated[str | int | None, meta(
        description="Writable-layer quota (docker --storage-opt size=...); needs a storage driver "
        "that supports it, otherwise docker refuses to start.")] = None

    @staticmethod
    def _storage(value: str | int | None) -> str | int | None:
        if value is not None and parse_size(value) <= 0:
            raise ValueError("storage_size must be greater than 0")
        return value

    @staticmethod
    def _shm(value: str | int | None) -> str | int | None:
        if value is not None and parse_size(value) <= 0:
            raise ValueError("shm_size must be greater than 0")
        return value

    memory: Annotated[str | int, meta(
        description="Memory limit, e.g. 512m (at least 6m); when unset and memory_reservation is "
        "larger, the reservation.")] = "512m"
    memory_swap: Annotated[str | int | None, meta(
        description="Memory+swap limit; default equals memory, i.e. no swap. -1: unlimited swap "
        "(docker's meaning).")] = None
    cpus: Annotated[float | int | str, meta(description="CPU quota, e.g. 0.5.")] = 1.0
    pids: Annotated[Annotated[int, meta(ge=1, le=4_194_304)], meta(
        description="Max processes/threads.")] = 256
    nofile: Annotated[Ulimit | Annotated[int, meta(ge=1)], meta(
        description="Open files (int or {soft, hard}).")] = msgspec.field(
            default_factory=lambda: Ulimit(soft=1024, hard=4096))
    nproc: Annotated[Ulimit | Annotated[int, meta(ge=1)] | None, meta(
        description="RLIMIT_NPROC; counts every process of the uid on the host unless userns is "
        "on.")] = None

    ulimits: Annotated[
        dict[
        Literal["core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
                "rss", "rtprio", "rttime", "sigpending", "stack"],
        AnyUlimit,
    ], meta(
        description="Other ulimits by name (docker --ulimit NAME=SOFT[:HARD]; -1 = unlimited, "
        "which warns by rule ulimit-override).")] = {}
    cpu_shares: Annotated[Annotated[int, meta(ge=0, le=262144)] | None, meta(
        description="Relative CPU weight (docker --cpu-shares; 1024 = normal).")] = None
    cpu_period: Annotated[Annotated[int, meta(ge=1000, le=1_000_000)] | None, meta(
        description="CFS period in microseconds (docker --cpu-period).")] = None
    cpu_quota: Annotated[Annotated[int, meta(ge=-1)] | None, meta(
        description="CFS quota in microseconds per period (docker --cpu-quota).")] = None
    cpu_rt_period: Annotated[Annotated[int, meta(ge=1)] | None, meta(
        description="Realtime period in microseconds (docker --cpu-rt-period).")] = None
    cpu_rt_runtime: Annotated[Annotated[int, meta(ge=-1)] | None, meta(
        description="Realtime runtime in microseconds (docker --cpu-rt-runtime).")] = None
    cpuset_cpus: Annotated[Annotated[str, meta(pattern=CPUSET_PATTERN)] | None, meta(
        description="CPUs the container may use, e.g. 0-2,4 (docker --cpuset-cpus).")] = None
    cpuset_mems: Annotated[Annotated[str, meta(pattern=CPUSET_PATTERN)] | None, meta(
        description="Memory nodes the container may use (docker --cpuset-mems).")] = None
    blkio_weight: Annotated[Annotated[int, meta(ge=0, le=1000)] | None, meta(
        description="Block IO weight, 10 to 1000 (docker --blkio-weight).")] = None
    blkio_weight_device: Annotated[
        list[Annotated[str, meta(pattern=r"^/dev/[A-Za-z0-9_.+/-]+:[0-9]+$")]], meta(
        description="DEVICE:WEIGHT (docker --blkio-weight-device).")] = []
    device_read_bps: Annotated[list[Annotated[str, meta(pattern=THROTTLE_PATTERN)]], meta(
        description="DEVICE:RATE, e.g. /dev/sda:1mb (--device-read-bps).")] = []
    device_write_bps: Annotated[list[Annotated[str, meta(pattern=THROTTLE_PATTERN)]], meta(
        description="DEVICE:RATE (docker --device-write-bps).")] = []
    device_read_iops: Annotated[
        list[Annotated[str, meta(pattern=r"^/dev/[A-Za-z0-9_.+/-]+:[0-9]+$")]], meta(
        description="DEVICE:IOPS (docker --device-read-iops).")] = []
    device_write_iops: Annotated[
        list[Annotated[str, meta(pattern=r"^/dev/[A-Za-z0-9_.+/-]+:[0-9]+$")]], meta(
        description="DEVICE:IOPS (docker --device-write-iops).")] = []
    memory_reservation: Annotated[str | int | None, meta(
        description="Soft memory limit, at most memory (docker --memory-reservation).")] = None
    memory_swappiness: Annotated[Annotated[int, meta(ge=-1, le=100)] | None, meta(
        description="0 to 100 (docker --memory-swappiness).")] = None
    oom_kill_disable: Annotated[bool, meta(
        description="Keep the OOM killer away (docker --oom-kill-disable); only with a memory "
        "limit, which saferun always sets.")] = False
    oom_score_adj: Annotated[Annotated[int, meta(ge=-1000, le=1000)] | None, meta(
        description="OOM score adjustment (docker --oom-score-adj); below 0 needs [allow] "
        "oom-protected.")] = None
    cgroup_parent: Annotated[
        Annotated[str, meta(pattern=r"^[A-Za-z0-9_./:@-]{1,255}$")] | None, meta(
        description="Parent cgroup (docker --cgroup-parent); warns by rule cgroup-parent.")] = None

    @staticmethod
    def _reservation(value: str | int | None) -> str | int | None:
        if value is not None and parse_size(value) <= 0:
            raise ValueError("memory_reservation must be greater than 0")
        return value

    @staticmethod
    def _memory(value: str | int) -> str | int:
        if parse_size(value) < 6 * 1024 * 1024:
            raise ValueError(f"memory '{value}' is below docker's minimum of 6m")
        return value

    @staticmethod
    def _swap(value: str | int | None) -> str | int | None:
        if value is not None and str(value).strip() != "-1":
            parse_size(value)
        return value

    @classmethod
    def _before(cls, data: dict[str, Any]) -> dict[str, Any]:
        # A given cpus conflicts with a CFS period or quota; the default 1.0 does not.
        if "cpus" in data and (data.get("cpu_quota") is not None
                               or data.get("cpu_period") is not None):
            raise ValueError("Conflicting options: CPU Quota/Period and cpus cannot both be "
                             "set (docker's daemon refuses NanoCPUs with a CFS period or quota)")
        # `docker run --memory-reservation 1G` alone is valid; saferun's default limit must
        # not make it invalid, so an unset memory grows to the reservation.
        if "memory" not in data and data.get("memory_reservation"):
            try:
                wanted = parse_size(data["memory_reservation"])
            except (ValueError, TypeError):
                return data
            if wanted > parse_size("512m"):
                return {**data, "memory": data["memory_reservation"]}
        return data

    @staticmethod
    def _cpus(value: float | int | str) -> float | int | str:
        parse_cpus(value)
        return value

    def _swap_not_below_memory(self) -> None:
        if (self.memory_swap is not None and str(self.memory_swap).strip() != "-1"
                and parse_size(self.memory_swap) < parse_size(self.memory)):
            raise ValueError("memory_swap must be at least memory (it counts memory plus swap)")
        if (self.memory_reservation is not None
                and parse_size(self.memory_reservation) > parse_size(self.memory)):
            raise ValueError("memory_reservation must not be above memory (docker: 'Minimum "
                             "memory limit can not be less than memory reservation limit')")

    @property
    def memory_bytes(self) -> int:
        return parse_size(self.memory)

    @property
    def memory_swap_bytes(self) -> int:
        if self.memory_swap is None:
            return self.memory_bytes
        return -1 if str(self.memory_swap).strip() == "-1" else parse_size(self.memory_swap)

    @property
    def nano_cpus(self) -> int:
        """--cpus; 0 when the CFS period/quota are given instead (docker takes one or the
        other)."""
        if self.cpu_quota is not None or self.cpu_period is not None:
            return 0
        return parse_cpus(self.cpus)

    @property
    def effective_cpu_quota(self) -> int | None:
        """--cpu-quota; with only --cpu-period, the quota that keeps `cpus` (default 1.0)."""
        if self.cpu_quota is None and self.cpu_period is not None:
            return self.cpu_period * parse_cpus(self.cpus) // 10**9
        return self.cpu_quota

    __field_checks__ = (("storage_size", _storage), ("shm_size", _shm),
                        ("memory_reservation", _reservation), ("memory", _memory),
                        ("memory_swap", _swap), ("cpus", _cpus))

    def _check(self) -> None:
        self._swap_not_below_memory()


class PortMapping(StrictModel, frozen=True, kw_only=True):
    container: Annotated[int, meta(ge=1, le=65535)]
    host: Annotated[Annotated[int, meta(ge=0, le=65535)] | None, meta(
        description="Host port; 0/omitted = random.")] = None
    host_ip: Annotated[str, meta(
        description="Host address to bind; loopback by default.")] = "127.0.0.1"
    protocol: Literal["tcp", "udp", "sctp"] = "tcp"

    @staticmethod
    def _ip(value: str) -> str:
        import ipaddress

        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"host_ip '{value}' is not an IP address") from None
        return value

    __field_checks__ = (("host_ip", _ip),)


_HOSTNAME = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?$"


def _endpoint_address(value: str | None) -> str | None:
    """A network endpoint's ip/ip6 (NetworkSection and each NetworkAttachment)."""
    return None if value is None else _check_ip(value, "address")


def _link_local_addresses(value: list[str]) -> list[str]:
    return [_check_ip(v, "link-local address") for v in value]


def _check_ip(value: str, key: str) -> str:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{key} '{value}' is not an IP address") from None
    return value


MAC_PATTERN = r"^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$"
LINK_PATTERN = rf"^{CONTAINER_REF_PATTERN}(?::[a-zA-Z0-9][a-zA-Z0-9_.-]*)?$"


class NetworkEndpoint(StrictModel, frozen=True, kw_only=True):
    """One more network to connect at create (docker's `--network name=NET,alias=...`)."""

    name: Annotated[str, meta(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")]
    aliases: list[Annotated[str, meta(pattern=_HOSTNAME)]] = []
    ip: str | None = None
    ip6: str | None = None
    mac_address: Annotated[str, meta(pattern=MAC_PATTERN)] | None = None
    link_local_ips: list[str] = []
    driver_opts: dict[str, str] = {}

    __field_checks__ = (("ip", _endpoint_address), ("ip6", _endpoint_address),
                        ("link_local_ips", _link_local_addresses))


class NetworkSection(StrictModel, frozen=True, kw_only=True):
    mode: Annotated[
        Annotated[str, meta(pattern=rf"^(?:container:)?{CONTAINER_REF_PATTERN}$")], meta(
        description="bridge, none, a user-defined network name, or container:NAME (share that "
        "container's network, judged before start). host needs [allow] host-network.")] = "bridge"
    publish_all: Annotated[bool, meta(
        description="Publish every exposed port on every interface (docker -P); warns by rule "
        "port-host-ip.")] = False
    ip: Annotated[str | None, meta(
        description="Static IPv4 address on mode's network (--ip).")] = None
    ip6: Annotated[str | None, meta(
        description="Static IPv6 address on mode's network (--ip6).")] = None
    mac_address: Annotated[Annotated[str, meta(pattern=MAC_PATTERN)] | None, meta(
        description="MAC address on mode's network (--mac-address; API 1.44+ with docker "
        "28).")] = None
    link_local_ips: Annotated[list[str], meta(
        description="Link-local addresses (docker --link-local-ip).")] = []
    links: Annotated[list[Annotated[str, meta(pattern=LINK_PATTERN)]], meta(
        description="Legacy links NAME[:ALIAS] (docker --link).")] = []
    driver_opts: Annotated[dict[str, str], meta(
        description="Driver options of mode's network endpoint.")] = {}
    extra_networks: Annotated[list[NetworkEndpoint], meta(
        description="More networks to connect at create (several --network); needs a daemon with "
        "API 1.44+ (Engine 25), as docker run does.")] = []
    ports: list[PortMapping] = []
    expose: Annotated[
        list[
        Annotated[str, meta(pattern=r"^[0-9]{1,5}(?:-[0-9]{1,5})?(?:/(?:tcp|udp|sctp))?$")]
    ], meta(
        description="Ports to expose without publishing (docker --expose).")] = []
    aliases: Annotated[list[Annotated[str, meta(pattern=_HOSTNAME)]], meta(
        description="Network-scoped aliases (user-defined networks).")] = []
    extra_hosts: Annotated[list[str], meta(description="'name:ip' lines for /etc/hosts.")] = []
    dns: Annotated[list[str], meta(description="DNS server addresses.")] = []
    dns_search: list[Annotated[str, meta(pattern=_HOSTNAME)]] = []
    dns_options: list[Annotated[str, meta(pattern=r"^[a-z0-9_-]+(?::[0-9]+)?$")]] = []
    ingress: Annotated[list[str] | None, meta(
        description="Who may connect to this app: service names of the same stack or CIDRs, each "
        "optionally with :PORT[/udp] (e.g. [\"web\", \"10.0.0.0/8:443\"]). Enforced by "
        "the kernel under `saferun up` (docs/networks.md); [] lets only published "
        "ports in. Unset: docker's open default (rule ingress-unrestricted).")] = None
    egress: Annotated[list[str] | Literal["none"] | None, meta(
        description="What this app may connect to: service names or CIDRs with optional "
        ":PORT[/udp] (e.g. [\"db:5432\", \"10.20.0.0/16:443\"]), or \"none\". DNS to the "
        "stack's resolver stays open. Enforced under `saferun up`. Unset: docker's "
        "open default (rule egress-unrestricted).")] = None

    @staticmethod
    def _dns(value: list[str]) -> list[str]:
        return [_check_ip(v, "dns server") for v in value]

    @staticmethod
    def _peers(value: list[str] | str | None) -> list[str] | str | None:
        from saferun.model.netpolicy import parse_peers

        if isinstance(value, list):
            parse_peers(value)
        return value

    @property
    def restricted(self) -> bool:
        """Whether this app declares ingress or egress rules (they need `saferun up`)."""
        return self.ingress is not None or self.egress is not None

    @staticmethod
    def _hosts(value: list[str]) -> list[str]:
        for entry in value:
            name, sep, address = entry.partition(":")
            if not sep or not re.fullmatch(_HOSTNAME, name):
                raise ValueError(f"extra host {entry!r} must be 'name:ip'")
            if address != "host-gateway":
                _check_ip(address, f"extra host '{name}' address")
        return value

    def _ports_need_network(self) -> None:
        if self.mode == "none" and self.ports:
            raise ValueError("ports cannot be published with network mode 'none'")
        if self.mode.startswith("container:") and (self.ports or self.publish_all):
            raise ValueError("conflicting options: port publishing and the container type "
                             "network mode (docker refuses it too)")
        names = [self.mode, *(n.name for n in self.extra_networks)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f'network "{dupes[0]}" is specified multiple times')
        builtin = self.mode in ("host", "none", "bridge", "default")
        if self.extra_networks and (builtin or self.mode.startswith("container:")):
            raise ValueError("conflicting options: cannot attach both user-defined and "
                             "non-user-defined network-modes")

    __field_checks__ = (("ip", _endpoint_address), ("ip6", _endpoint_address),
                        ("link_local_ips", _link_local_addresses), ("dns", _dns),
                        ("ingress", _peers), ("egress", _peers), ("extra_hosts", _hosts))

    def _check(self) -> None:
        self._ports_need_network()


class RestartSection(StrictModel, frozen=True, kw_only=True):
    policy: Literal["no", "on-failure", "unless-stopped", "always"] = "no"
    max_retries: Annotated[Annotated[int, meta(ge=0, le=1000)], meta(
        description="Retries for on-failure (default 5; 0 is docker's no limit; 0 and above "
        "5 warn by rule restart-retries).")] = 5


class HealthcheckSection(StrictModel, frozen=True, kw_only=True):
    """docker's --health-* options. Unset timings are the daemon's defaults (30s interval,
    30s timeout, 3 retries, as `docker run --health-cmd` sends 0 for them)."""

    command: Annotated[list[str] | str | None, meta(
        description="Rendered as docker's CMD-SHELL (`--health-cmd`), which docker runs with "
        "/bin/sh -c inside the container (the image needs /bin/sh): a list's words "
        "are shell-quoted, e.g. [\"wget\", \"-q\", \"-O-\", \"http://127.0.0.1/\"]; a string "
        "is given to the shell as written; unset: the image's HEALTHCHECK, with the "
        "timings given here.")] = None
    disable: Annotated[bool, meta(
        description="Turn off the image's health check (docker --no-healthcheck).")] = False
    interval: Annotated[str | None, meta(description="Default: the daemon's (30s).")] = None
    timeout: Annotated[str | None, meta(description="Default: the daemon's (30s).")] = None
    retries: Annotated[Annotated[int, meta(ge=0, le=100)] | None, meta(
        description="Default: the daemon's (3).")] = None
    start_period: Annotated[str | None, meta(description="Default: the daemon's (0s).")] = None
    start_interval: Annotated[str | None, meta(
        description="Checks during start_period (docker --health-start-interval; API "
        "1.44+).")] = None

    @staticmethod
    def _duration(value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @staticmethod
    def _non_empty(value: list[str] | str | None) -> list[str] | str | None:
        if value is not None and not value:
            raise ValueError("health check command cannot be empty")
        return value

    def _disable_alone(self) -> None:
        given = [self.command, self.interval, self.timeout, self.retries, self.start_period,
                 self.start_interval]
        if self.disable and any(v is not None for v in given):
            raise ValueError("--no-healthcheck conflicts with --health-* options")

    __field_checks__ = (("interval", _duration), ("timeout", _duration),
                        ("start_period", _duration), ("start_interval", _duration),
                        ("command", _non_empty))

    def _check(self) -> None:
        self._disable_alone()


class LoggingSection(StrictModel, frozen=True, kw_only=True):
    driver: Annotated[str, meta(pattern=r"^[a-z0-9][a-z0-9_-]*$")] = "json-file"
    options: Annotated[dict[str, str], meta(
        description="Driver options; json-file/local get max-size 10m, max-file 3 unless "
        "set.")] = {}

    @staticmethod
    def _keys(value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.fullmatch(r"^[a-z0-9][a-z0-9_.-]*$", key):
                raise ValueError(f"invalid logging option name {key!r}")
        return value

    __field_checks__ = (("options", _keys),)


class SecuritySection(StrictModel, frozen=True, kw_only=True):
    no_new_privileges: Annotated[bool, meta(
        extra_json_schema={"const": True},
        description="Always on; false is not accepted.")] = True
    userns: Annotated[Literal["required", "preferred", "off"], meta(
        description="User-namespace remapping: required refuses to start without "
        "it.")] = "preferred"
    runtime: Literal["runc", "gvisor", "kata"] = "runc"
    # Each of these weakens isolation and needs an [allow] entry named by its rule id.
    privileged: Annotated[bool, meta(
        description="docker's --privileged. Needs [allow] privileged.")] = False
    pid: Annotated[
        Annotated[str, meta(pattern=rf"^(?:host|container:{CONTAINER_REF_PATTERN})$")] | None,
        meta(
        description="'host' needs [allow] host-pid; container:NAME shares that "
        "container's PID namespace (judged before start).")] = None
    ipc: Annotated[
        Annotated[
        str, meta(pattern=rf"^(?:private|shareable|none|host|container:{CONTAINER_REF_PATTERN})$")
    ] | None, meta(
        description="IPC namespace; 'host' needs [allow] host-ipc; container:NAME shares that "
        "container's (judged before start).")] = None
    uts: Annotated[Literal["host"] | None, meta(
        description="'host' needs [allow] host-uts.")] = None
    userns_mode: Annotated[Literal["host"] | None, meta(
        description="'host' needs [allow] host-userns.")] = None
    cgroupns: Annotated[Literal["private", "host"], meta(
        description="Cgroup namespace; 'host' needs [allow] host-cgroupns.")] = "private"
    systempaths: Annotated[Literal["unconfined"] | None, meta(
        description="'unconfined' needs [allow] systempaths-unconfined.")] = None
    label: Annotated[Literal["disable"] | None, meta(
        description="SELinux; 'disable' needs [allow] label-disable.")] = None
    devices: Annotated[
        list[
        Annotated[
            str, meta(pattern=r"^/dev/[A-Za-z0-9_.+/-]+(?::/[A-Za-z0-9_.+/-]+)?(?::[rwm]{1,3})?$")
        ]
    ], meta(
        description="Host devices (docker --device syntax). Need [allow] device.")] = []
    device_cgroup_rules: Annotated[
        list[
        Annotated[str, meta(pattern=r"^[abc] (?:\*|[0-9]+):(?:\*|[0-9]+) [rwm]{1,3}$")]
    ], meta(
        description="Device cgroup rules, e.g. 'c 189:* rmw'. Need [allow] device.")] = []
    gpus: Annotated[
        Annotated[
            str, meta(pattern=r"^(?:all|[0-9]+|count=(?:all|[0-9]+)|device=[A-Za-z0-9:,-]+)$")
        ]
        | None, meta(
        description="GPUs (docker --gpus syntax). Needs [allow] gpus.")] = None
    sysctls: Annotated[dict[str, str], meta(
        description="Namespaced sysctls; outside Kubernetes' safe set they need [allow] "
        "unsafe-sysctl.")] = {}

    @staticmethod
    def _sysctl_names(value: dict[str, str]) -> dict[str, str]:
        for key, setting in value.items():
            if not re.fullmatch(r"^[a-z0-9_]+(?:[./][A-Za-z0-9_-]+)+$", key):
                raise ValueError(f"invalid sysctl name {key!r}")
            if not re.fullmatch(r"^[A-Za-z0-9 _.:,/-]*$", setting):
                raise ValueError(f"sysctl {key} value {setting!r} contains unexpected characters")
        return value

    @staticmethod
    def _always_on(value: bool) -> bool:
        if value is not True:
            raise ValueError("no_new_privileges is always on; false is not accepted")
        return value

    __field_checks__ = (("no_new_privileges", _always_on), ("sysctls", _sysctl_names))


class SeccompSection(StrictModel, frozen=True, kw_only=True):
    """Seccomp profile generated for the app."""

    profile: Annotated[Literal["default", "strict", "docker-default", "unconfined"], meta(
        description="saferun's default or strict base, Docker's built-in default, or unconfined "
        "(needs an exception).")] = "default"
    mode: Annotated[Literal["allowlist", "denylist", "log"], meta(
        description="allowlist: deny all but listed; denylist: allow all but dangerous groups; "
        "log: deny nothing, log (needs [allow] seccomp-unconfined).")] = "allowlist"
    allow: Annotated[list[Annotated[str, meta(pattern=r"^@?[a-z0-9_-]+$")]], meta(
        description="Syscalls or @groups to allow.")] = []
    deny: Annotated[list[Annotated[str, meta(pattern=r"^@?[a-z0-9_-]+$")]], meta(
        description="Syscalls or @groups to deny.")] = []
    errno: Literal["EPERM", "ENOSYS"] = "EPERM"
    architectures: Annotated[list[Literal["x86_64", "x86", "x32", "aarch64", "arm"]], meta(
        description="Target architectures; default: the daemon's native arch and its "
        "neighbours.")] = []
    learned: Annotated[list[Annotated[str, meta(pattern=r"^[a-z0-9_]+$")]] | None, meta(
        description="Syscalls measured by `saferun learn`; when set, they replace the base "
        "profile's allow list.")] = None
    report: Annotated[Literal["none", "kill"], meta(
        description="kill: the dangerous calls the profile denies by name (its deny groups and "
        "[seccomp] deny) kill the caller, which the kernel logs for `saferun watch`; "
        "none: they return errno, which Docker 20.10 cannot make the kernel log.")] = "none"

    def _learned_needs_allowlist(self) -> None:
        # A measured list only means something where the profile allows by list.
        if self.learned is not None and (
            self.mode == "denylist" or self.profile in ("docker-default", "unconfined")
        ):
            raise ValueError(
                "seccomp.learned needs mode 'allowlist' or 'log' and profile 'default' or 'strict'"
            )


    def _check(self) -> None:
        self._learned_needs_allowlist()


class AppArmorSection(StrictModel, frozen=True, kw_only=True):
    mode: Literal["generate", "profile", "off"] = "generate"
    profile: Annotated[
        Annotated[str, meta(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")] | None, meta(
        description="Existing profile name when mode = 'profile'.")] = None
    enforcement: Annotated[Literal["required", "preferred"], meta(
        description="required refuses to start on a host without AppArmor.")] = "preferred"
    network: list[Literal["tcp", "udp", "icmp"]] = msgspec.field(
        default_factory=lambda: ["tcp", "udp"])
    executables: Annotated[
        list[Annotated[str, meta(pattern=CONTAINER_PATH_PATTERN)]] | None, meta(
        description="If set, only these binaries may be executed.")] = None

    def _profile_name(self) -> None:
        if self.mode == "profile" and not self.profile:
            raise ValueError("apparmor.mode = 'profile' needs apparmor.profile")
        if self.mode != "profile" and self.profile:
            raise ValueError("apparmor.profile is only used with apparmor.mode = 'profile'")
        if self.profile == "unconfined":
            raise ValueError(
                "apparmor.profile = 'unconfined' disables AppArmor; use "
                "apparmor.mode = 'off' with an [exceptions] apparmor_off reason"
            )
        if self.executables is not None and not self.executables:
            raise ValueError(
                "apparmor.executables is empty, so not even the entrypoint could "
                "run; list the binaries or remove the key"
            )


    def _check(self) -> None:
        self._profile_name()


SeverityName = Literal["low", "medium", "high", "critical"]
# A registry host[:port] with an optional path prefix (`ghcr.io/acme`), lower case.
REGISTRY_PATTERN = (
    r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?"
    r"(/[a-z0-9]+([._-]{1,2}[a-z0-9]+)*)*$"
)
TOOL_CATEGORY = Literal["shell", "package-manager", "compiler"]


class ScanPolicy(StrictModel, frozen=True, kw_only=True):
    """Vulnerability scan before saferun run (docs/images.md#scanner-gate)."""

    required: Annotated[bool, meta(
        description="Refuse to run when no scanner can run (not installed, or its database cannot "
        "be updated); false: warn.")] = True
    tool: Annotated[Literal["trivy", "grype", "any"], meta(
        description="Scanner to run; any: Trivy if installed, else Grype.")] = "any"
    fail_on: Annotated[SeverityName, meta(
        description="Refuse on vulnerabilities of this severity or higher.")] = "high"


class SignaturePolicy(StrictModel, frozen=True, kw_only=True):
    """Image signature verification before saferun run (docs/images.md#signature-gate)."""

    required: Annotated[bool, meta(
        description="Refuse when the signature cannot be verified or the tool is missing; false: "
        "verify when possible, warn otherwise.")] = True
    method: Annotated[Literal["content-trust", "cosign"], meta(
        description="content-trust: docker run with DOCKER_CONTENT_TRUST=1; cosign: `cosign "
        "verify` with key, or identity and issuer.")] = "cosign"
    key: Annotated[Annotated[str, meta(pattern=r"^[^\x00-\x1f\x7f]{1,4096}$")] | None, meta(
        description="cosign public key: a file (relative to the manifest) or a KMS URI.")] = None
    identity: Annotated[
        Annotated[str, meta(pattern=r"^[^\x00-\x1f\x7f\s]{1,1024}$")] | None, meta(
        description="cosign keyless: the certificate identity (e.g. a workflow URL).")] = None
    issuer: Annotated[
        Annotated[str, meta(pattern=r"^https://[^\x00-\x1f\x7f\s]{1,1024}$")] | None, meta(
        description="cosign keyless: the OIDC issuer of the identity.")] = None

    def _method_settings(self) -> None:
        if self.method == "cosign":
            if self.key is None and not (self.identity and self.issuer):
                raise ValueError(
                    '[policy] signature with method = "cosign" needs key, or identity and issuer'
                )
            if self.key is not None and (self.identity or self.issuer):
                raise ValueError("[policy] signature: give key, or identity and issuer, not both")
        elif self.key or self.identity or self.issuer:
            raise ValueError(
                "[policy] signature: key, identity and issuer are for method = "
                '"cosign"; content-trust uses docker\'s trust settings'
            )


    def _check(self) -> None:
        self._method_settings()


class ImageCheckPolicy(StrictModel, frozen=True, kw_only=True):
    """What saferun run and saferun image check judge of the image itself (docs/images.md)."""

    check: Annotated[Literal["reference", "config", "full"], meta(
        description="What saferun run judges before launch: reference (registry, tag, digest: no "
        "engine call), config (+ the image's USER, ENV, labels, history), full (+ "
        "streams its filesystem: slow on large images).")] = "reference"
    fail_on: Annotated[SeverityName, meta(
        description="saferun run refuses image findings of this severity or higher (check = "
        "config or full).")] = "high"
    absent: Annotated[list[TOOL_CATEGORY], meta(
        description="What the app needs none of, so the image must not contain it: shell, "
        "package-manager, compiler.")] = []
    max_size_mb: Annotated[int, meta(
        ge=1, le=1 << 20,
        description="Image size above which rule image-size reports.")] = 1024
    max_layers: Annotated[int, meta(
        ge=1, le=127,
        description="Layer count above which rule image-layers reports.")] = 50


class PolicySection(StrictModel, frozen=True, kw_only=True):
    """Policy checks (saferun check/score/verify): suppressions and image pinning."""

    ignore: Annotated[dict[str, str], meta(
        description="Policy rules ignored for this app (rule id -> written reason, kept in the "
        "output). Refusal rules are allowed in [allow] instead. Ids: docs/policy.md.")] = {}
    refuse: Annotated[list[str], meta(
        description="Warnings saferun run turns into refusals (e.g. restart-always, "
        "image-tag-latest); usually set in the team policy file. Ids: "
        "docs/drop-in.md.")] = []

    @staticmethod
    def _refusable(value: list[str]) -> list[str]:
        for rule in value:
            if rule not in WARNING_IDS:
                raise ValueError(f"[policy] refuse: '{rule}' is not a warning saferun run "
                                 f"makes (known: {', '.join(WARNING_IDS)})")
        return value

    digest: Annotated[Literal["recommend", "require"], meta(
        description="Image digest pinning: require makes saferun run refuse a tag.")] = "recommend"
    registries: Annotated[list[Annotated[str, meta(pattern=REGISTRY_PATTERN)]], meta(
        description="Registries (host[:port], optionally with a path prefix) images may come "
        "from; an image from elsewhere is refused. Empty: any. Images without a "
        "registry part are on docker.io.")] = []
    scan: Annotated[ScanPolicy | None, meta(
        description="Vulnerability scan gate (Trivy/Grype).")] = None
    signature: Annotated[SignaturePolicy | None, meta(
        description="Signature gate (Docker Content Trust or cosign).")] = None
    image: Annotated[ImageCheckPolicy, meta(
        description="Checks of the image itself.")] = msgspec.field(
            default_factory=ImageCheckPolicy)

    @staticmethod
    def _known_rules(value: dict[str, str]) -> dict[str, str]:
        # The rule ids come from the policy layer as validation context ({"rule_kinds":
        # saferun.policy.catalogue.rule_kinds()}, passed by saferun.inputs): the model sits
        # below the rules and never imports them. Without it only the reasons are checked.
        kinds: dict[str, str] | None = context().get("rule_kinds")
        for key, reason in value.items():
            kind = kinds.get(key) if kinds is not None else "rule"
            if kind is None:
                raise ValueError(f"unknown rule '{key}' in [policy] ignore (see docs/policy.md)")
            if kind == "gate":
                raise ValueError(
                    f"rule '{key}' is an image policy gate: change [policy] "
                    "registries, scan or signature instead of ignoring it"
                )
            if kind == "refusal":
                raise ValueError(
                    f"rule '{key}' is a refusal: allow it with [allow] {key} = "
                    '"<reason>" instead of ignoring it'
                )
            if len(reason.strip()) < REASON_MIN_LENGTH:
                raise ValueError(
                    f"[policy] ignore {key} needs a written reason of at least "
                    f"{REASON_MIN_LENGTH} characters"
                )
        return value

    __field_checks__ = (("refuse", _refusable), ("ignore", _known_rules))


class Manifest(StrictModel, frozen=True, kw_only=True):
    """A saferun manifest (schema v1)."""

    version: Literal[1] = SCHEMA_VERSION
    extends: Annotated[Annotated[str, meta(pattern=r"^[^\x00-\x1f\x7f]{1,4096}$")] | None, meta(
        description="A preset in profiles/ (e.g. \"nginx\") or a path to a manifest, relative to "
        "this one, to start from: tables merge key by key, other values here replace "
        "the base's. See docs/presets.md.")] = None
    app: AppSection
    capabilities: CapabilitiesSection = msgspec.field(default_factory=CapabilitiesSection)
    filesystem: FilesystemSection = msgspec.field(default_factory=FilesystemSection)
    resources: ResourcesSection = msgspec.field(default_factory=ResourcesSection)
    network: NetworkSection = msgspec.field(default_factory=NetworkSection)
    restart: RestartSection = msgspec.field(default_factory=RestartSection)
    healthcheck: HealthcheckSection | None = None
    logging: LoggingSection = msgspec.field(default_factory=LoggingSection)
    security: SecuritySection = msgspec.field(default_factory=SecuritySection)
    seccomp: SeccompSection = msgspec.field(default_factory=SeccompSection)
    apparmor: AppArmorSection = msgspec.field(default_factory=AppArmorSection)
    exceptions: Annotated[dict[ExceptionKey, str], meta(
        description="Deliberate weakenings, each with a written reason (kept as a container "
        "label).")] = {}
    policy: PolicySection = msgspec.field(default_factory=PolicySection)
    allow: Annotated[dict[str, str], meta(
        description="Refusal rules allowed for this app (rule id -> written reason, kept as a "
        "container label). Ids are listed in docs/drop-in.md.")] = {}

    @staticmethod
    def _reasons(value: dict[str, str]) -> dict[str, str]:
        for key, reason in value.items():
            if len(reason.strip()) < REASON_MIN_LENGTH:
                raise ValueError(
                    f"exception '{key}' needs a written reason of at least "
                    f"{REASON_MIN_LENGTH} characters"
                )
        return value

    @staticmethod
    def _allow_rules(value: dict[str, str]) -> dict[str, str]:
        for key, reason in value.items():
            if key not in ALLOWABLE_IDS:
                raise ValueError(
                    f"unknown rule '{key}' in [allow] (known: {', '.join(ALLOWABLE_IDS)})"
                )
            if len(reason.strip()) < REASON_MIN_LENGTH:
                raise ValueError(
                    f"[allow] {key} needs a written reason of at least "
                    f"{REASON_MIN_LENGTH} characters"
                )
        return value

    def allowed(self, rule: str) -> bool:
        """Whether a refusal rule is allowed, by [allow] or by its legacy [exceptions] key."""
        return rule in self.allow or any(LEGACY_KEYS.get(key) == rule for key in self.exceptions)

    def violations(self) -> list[Violation]:
        """Every refusal rule this manifest breaks without an allow entry (pure)."""
        return [v for v in _violations(self) if not self.allowed(v.rule)]

    def warnings(self) -> list[Violation]:
        """Every policy warning (saferun.model.refusals.WARNING_RULES) this manifest earns,
        without an [allow] entry or a [policy] ignore reason (pure). A team policy's
        `[policy] refuse` turns them into refusals (saferun.app.run)."""
        return [v for v in _warnings(self)
                if not self.allowed(v.rule) and v.rule not in self.policy.ignore]

    def _weakenings_need_reasons(self) -> None:
        if context().get("refusals") == "defer":
            return  # the caller (saferun.inputs.dockerrun) reports violations(), by flag
        checks = [
            (_is_root(self.app.user), "run_as_root", "app.user",
             f"'{self.app.user}' runs the app as root"),
            (
                self.seccomp.profile == "unconfined",
                "seccomp_unconfined",
                "seccomp.profile",
                "'unconfined' disables seccomp",
            ),
            (
                self.apparmor.mode == "off",
                "apparmor_off",
                "apparmor.mode",
                "'off' disables AppArmor",
            ),
            (
                not self.filesystem.read_only,
                "writable_root",
                "filesystem.read_only",
                "false makes the root filesystem writable",
            ),
        ]
        for weak, key, where, what in checks:
            if weak and key not in self.exceptions and LEGACY_KEYS[key] not in self.allow:
                raise ValueError(
                    f'{where} = {what}; refused unless [exceptions] {key} = "<reason>" explains why'
                )
        found = self.violations()
        if found:
            # One readable paragraph naming every rule, how to stop asking, how to allow it.
            first = found[0].rule
            raise ValueError(
                "; ".join(v.message() for v in found)
                + f'. Allow deliberately with [allow] {first} = "<reason>" '
                f'(or `saferun run --allow {first}="<reason>"`); see docs/drop-in.md#{first}'
            )

    __field_checks__ = (("exceptions", _reasons), ("allow", _allow_rules))
    __prepared_fields__ = (("resources", ResourcesSection),)

    def _check(self) -> None:
        self._weakenings_need_reasons()


SCHEMA_ID = "https://saferun.invalid/schema/v1.json"


def manifest_json_schema() -> dict[str, Any]:
    """The manifest's JSON Schema (`saferun schema`, docs/manifest.md)."""
    from saferun.model.strict import json_schema

    return json_schema(Manifest, title="saferun manifest", **{"$id": SCHEMA_ID})


def _violations(m: Manifest) -> list[Violation]:
    """The refusal rules as checks over the validated model; reasons are applied by the caller."""
    sec = m.security
    out: list[Violation] = []

    def add(cond: bool, rule: str, where: str, what: str) -> None:
        if cond:
            out.append(Violation(rule, where, what))

    add(_is_root(m.app.user), "run-as-root", "app.user", repr(m.app.user))
    add(m.seccomp.profile == "unconfined", "seccomp-unconfined", "seccomp.profile", "'unconfined'")
    add(m.seccomp.mode == "log" and m.seccomp.profile != "unconfined", "seccomp-unconfined",
        "seccomp.mode", "'log' (denies nothing: every call is allowed and logged)")
    add(m.apparmor.mode == "off", "apparmor-unconfined", "apparmor.mode", "'off'")
    add(not m.filesystem.read_only, "writable-root", "filesystem.read_only", "false")
    adj = m.resources.oom_score_adj
    add(adj is not None and adj < 0, "oom-protected", "resources.oom_score_adj", repr(adj))

    add(sec.privileged, "privileged", "security.privileged", "true")
    every = set(m.capabilities.add) >= set(CAPABILITY_BITS)
    add(every, "cap-add-all", "capabilities.add", "'ALL' (every capability)")
    extra = [c for c in m.capabilities.add if c not in ALLOWED_CAPABILITIES]
    add(
        bool(extra) and not every,
        "cap-not-allowed",
        "capabilities.add",
        ", ".join(c[4:] for c in extra),
    )
    add(sec.pid == "host", "host-pid", "security.pid", "'host'")
    add(sec.ipc == "host", "host-ipc", "security.ipc", "'host'")
    add(sec.uts == "host", "host-uts", "security.uts", "'host'")
    add(sec.userns_mode == "host", "host-userns", "security.userns_mode", "'host'")
    add(sec.cgroupns == "host", "host-cgroupns", "security.cgroupns", "'host'")
    add(m.network.mode == "host", "host-network", "network.mode", "'host'")
    add(
        sec.systempaths == "unconfined",
        "systempaths-unconfined",
        "security.systempaths",
        "'unconfined'",
    )
    add(sec.label == "disable", "label-disable", "security.label", "'disable'")
    add(
        bool(sec.devices or sec.device_cgroup_rules),
        "device",
        "security.devices",
        ", ".join([*sec.devices, *sec.device_cgroup_rules]),
    )
    add(sec.gpus is not None, "gpus", "security.gpus", repr(sec.gpus))
    unsafe = sorted(k for k in sec.sysctls if k not in SAFE_SYSCTLS)
    add(bool(unsafe), "unsafe-sysctl", "security.sysctls", ", ".join(unsafe))
    for index, mount in enumerate(m.filesystem.mounts):
        where = f"filesystem.mounts.{index}"
        add(
            mount.propagation in ("shared", "rshared"),
            "shared-propagation",
            f"{where}.propagation",
            repr(mount.propagation),
        )
        if mount.type == "bind" and mount.source.startswith("/"):
            rule = host_path_rule(mount.source, mount.read_only)
            add(rule is not None, rule or "", f"{where}.source", repr(mount.source))
    return out


def _is_root(user: str) -> bool:
    return is_root_user(user)


def _warnings(m: Manifest) -> list[Violation]:
    """The policy warnings as checks over the validated model (docker honours these)."""
    out: list[Violation] = []

    def add(cond: bool, rule: str, where: str, what: str) -> None:
        if cond:
            out.append(Violation(rule, where, what))

    add(m.restart.policy in ("always", "unless-stopped"), "restart-always", "restart.policy",
        repr(m.restart.policy))
    retries = m.restart.max_retries
    add(m.restart.policy == "on-failure" and (retries > 5 or retries == 0), "restart-retries",
        "restart.max_retries", "0 (no limit)" if retries == 0 else str(retries))
    problem = image_tag_problem(m.app.image)
    add(problem is not None, "image-tag-latest", "app.image", repr(m.app.image))
    add(m.network.publish_all, "port-host-ip", "network.publish_all",
        "true (-P publishes every exposed port on every interface)")
    for index, port in enumerate(m.network.ports):
        add(is_all_addresses(port.host_ip), "port-host-ip", f"network.ports.{index}.host_ip",
            repr(port.host_ip))
    add(m.resources.cgroup_parent is not None, "cgroup-parent", "resources.cgroup_parent",
        repr(m.resources.cgroup_parent))
    for name, limit in m.resources.ulimits.items():
        add(-1 in (limit.soft, limit.hard), "ulimit-override", f"resources.ulimits.{name}",
            "unlimited")
    return out

"""The edge that gathers host facts: stat, /proc, /sys and `GET /info`, nothing else.

Two users: `saferun doctor` (gather_audit -> a HostAudit judged by saferun.policy.host_checks) and
the commands that plan (probe_host_facts: the daemon's /info as HostFacts, with /dev/kvm and
/etc/subuid from local_facts, for the planner).
Only files of the local host are read, and only when the engine is on this host (a unix
socket): for a remote daemon they would describe the wrong machine.
"""

from __future__ import annotations

import os
import stat

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: the plan cache's fast path imports this module
if TYPE_CHECKING:
    from typing import Any

    from saferun.engine.api import EngineSession
    from saferun.model.facts import HostFacts
    from saferun.policy.host_checks import FileStat, HostAudit

DAEMON_JSON = "/etc/docker/daemon.json"
SUBUID = "/etc/subuid"
REMAP_USER = "dockremap"  # the user `--userns-remap=default` creates and uses
LSM_FILE = "/sys/kernel/security/lsm"
APPARMOR_ENABLED = "/sys/module/apparmor/parameters/enabled"
SELINUX_ENFORCE = "/sys/fs/selinux/enforce"
KVM = "/dev/kvm"


def engine_info(session: EngineSession | None = None) -> dict[str, Any]:
    """The daemon's /info, through `session` or a session opened (and closed) for it."""
    from saferun.engine.api import EngineSession

    own = session is None
    active = EngineSession() if session is None else session
    try:
        return active.info()
    finally:
        if own:
            active.close()


def probe_host_facts(session: EngineSession | None = None, *,
                     info: dict[str, Any] | None = None) -> tuple[HostFacts, dict[str, Any]]:
    """What the planner knows of the host: (HostFacts, the /info they were read from).

    The one place that builds HostFacts from the engine: HostFacts.from_info of the
    daemon's /info (`info` when the caller already has it), plus local_facts when the
    engine is on this host.
    """
    from saferun.engine.api import local_socket_path
    from saferun.model.facts import HostFacts

    if info is None:
        info = engine_info(session)
    facts = local_facts(HostFacts.from_info(info), local=local_socket_path() is not None)
    return facts, info


def local_facts(facts: HostFacts, *, local: bool) -> HostFacts:
    """Add what only the local host can tell: /dev/kvm and the dockremap subuid range."""
    from msgspec.structs import replace

    if not local:
        return facts
    subuid = read_subuid(SUBUID, REMAP_USER) if facts.userns_remap else None
    return replace(facts, kvm_available=_kvm_available(), subuid_range=subuid)


def _kvm_available() -> bool:
    try:
        return stat.S_ISCHR(os.stat(KVM).st_mode)
    except OSError:
        return False


def local_fingerprint() -> str:
    """What local_facts reads, as one string: the plan cache compares it on every hit, so a
    plan made before /dev/kvm or the dockremap range changed is never reused."""
    return f"kvm={_kvm_available()}|subuid={read_subuid(SUBUID, REMAP_USER)}"


def read_subuid(path: str, user: str) -> tuple[int, int] | None:
    """The first `user:start:count` line of /etc/subuid (dockerd uses the first range)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return None
    return parse_subuid(text, user)


def parse_subuid(text: str, user: str) -> tuple[int, int] | None:
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] == user and parts[1].isdigit() and parts[2].isdigit():
            return int(parts[1]), int(parts[2])
    return None


def file_stat(path: str) -> FileStat | None:
    """lstat of `path` with owner/group names; None when it does not exist."""
    import grp
    import pwd

    from saferun.policy.host_checks import FileStat

    try:
        info = os.lstat(path)
    except OSError:
        return None
    try:
        user: str | None = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        user = None
    try:
        group: str | None = grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        group = None
    return FileStat(path, info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode), user, group)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def processes() -> list[tuple[int, tuple[str, ...]]]:
    """(pid, argv) of every process on this host that can be read, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                raw = handle.read()
        except OSError:
            continue
        found.append((int(entry), tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)))
    return sorted(found)


def dockerd_processes() -> list[tuple[int, tuple[str, ...]]]:
    """(pid, argv) of every dockerd on this host, from /proc."""
    return [(pid, argv) for pid, argv in processes()
            if argv and os.path.basename(argv[0]) == "dockerd"]


def daemon_for_socket(processes: list[tuple[int, tuple[str, ...]]],
                      socket_path: str) -> tuple[str, ...] | None:
    """The dockerd whose -H/--host serves `socket_path` (no -H means the default socket)."""
    from saferun.policy.host_checks import daemon_flag_values

    wanted = os.path.realpath(socket_path)
    for _, argv in processes:
        hosts = daemon_flag_values(argv, "host")
        paths = [h[len("unix://"):] for h in hosts if h.startswith("unix://")]
        if not hosts:
            paths = ["/var/run/docker.sock"]
        if any(os.path.realpath(p) == wanted for p in paths):
            return argv
    return None


def gather_audit() -> HostAudit:
    """Everything `saferun doctor` judges. Raises EngineUnavailable when /info fails."""
    import json

    from saferun.engine.api import local_socket_path
    from saferun.policy.host_checks import HostAudit, daemon_flag_values

    info = engine_info()
    socket_path = local_socket_path()
    if socket_path is None:
        endpoint = os.environ.get("DOCKER_HOST") or "the current docker context"
        return HostAudit(info=info, local=False, endpoint=endpoint)

    args = daemon_for_socket(dockerd_processes(), socket_path)
    config_values = daemon_flag_values(args or (), "config-file")
    config_path = config_values[-1] if config_values else DAEMON_JSON
    config: dict[str, Any] = {}
    error = None
    text = _read(config_path)
    if text is not None and text.strip():
        try:
            loaded = json.loads(text)
            if isinstance(loaded, dict):
                config = loaded
            else:
                error = "not a JSON object"
        except ValueError as exc:
            error = f"invalid JSON: {exc}"
    tls_files = {}
    for role, flag in (("ca", "tlscacert"), ("cert", "tlscert"), ("key", "tlskey")):
        values = daemon_flag_values(args or (), flag)
        path = values[-1] if values else config.get(flag)
        if path:
            tls_files[role] = file_stat(str(path))
    lsm_text = _read(LSM_FILE)
    apparmor = _read(APPARMOR_ENABLED)
    status = _read("/proc/self/status") or ""
    return HostAudit(
        info=info,
        local=True,
        endpoint=f"unix://{socket_path}",
        socket=file_stat(socket_path),
        daemon_args=args,
        daemon_json_path=config_path,
        daemon_json=file_stat(config_path),
        daemon_config=config,
        daemon_config_error=error,
        tls_files=tls_files,
        kernel_lsms=tuple(lsm_text.strip().split(",")) if lsm_text is not None else None,
        apparmor_enabled=apparmor.strip().upper().startswith("Y") if apparmor is not None
        else False,
        selinux_enabled=os.path.exists(SELINUX_ENFORCE),
        kernel_seccomp="\nSeccomp:" in "\n" + status,
    )

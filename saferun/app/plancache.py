"""The plan cache: the fast path of `saferun run`.

Validating a manifest needs pydantic and click (about 90 ms of imports), a third of a
container start. A repeated `saferun run` with the same command line, the same input
files, the same saferun code and the same daemon facts produces the same argv, so the
rendered result is kept and reused. This module imports only the standard library.

What keys an entry, so that a stale plan is never used:
- the command line, working directory, DOCKER_HOST/DOCKER_CONTEXT, and a fingerprint of
  saferun's own code and data files (size and mtime of each);
- every input the planning read, re-checked on each hit: file contents (sha256), whether
  a path exists, and where a path resolves to (symlinks);
- the daemon facts planning depends on, re-read from the daemon on each hit.
Set SAFERUN_NO_CACHE=1 to bypass it.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import stat
import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs 2 ms here
if TYPE_CHECKING:
    from typing import Any

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # saferun/
_DATA_DIRS = ("seccomp", "apparmor", "profiles")
# The fields of /info that planning reads; their values key the cache.
FACT_KEYS = (
    "ServerVersion",
    "Architecture",
    "KernelVersion",
    "OSType",
    "SecurityOptions",
    "Runtimes",
    "DefaultRuntime",
    "CgroupVersion",
    "MemoryLimit",
    "SwapLimit",
    "PidsLimit",
    "CpuCfsQuota",
)
_FORMAT = 2
# The command line of this process as typed (set by saferun.__main__); None: do not cache.
invocation: list[str] | None = None


def enabled() -> bool:
    return os.environ.get("SAFERUN_NO_CACHE", "") in ("", "0")


def _cache_root() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "saferun", "plans")


def _code_fingerprint() -> str:
    """Size and mtime of saferun's code and data: an edited checkout never reuses old plans."""
    digest = hashlib.sha256()
    parent = os.path.dirname(_PACKAGE)
    roots = [_PACKAGE, *(os.path.join(parent, d) for d in _DATA_DIRS)]
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith((".pyc", ".tmp")):
                    continue
                info = os.stat(os.path.join(dirpath, name))
                digest.update(f"{dirpath}/{name}:{info.st_size}:{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def entry_key(argv: list[str]) -> str:
    env = [os.environ.get(k, "") for k in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG",
                                           "SAFERUN_POLICY")]
    material = (_FORMAT, argv, os.getcwd(), sys.executable, env, _code_fingerprint())
    return hashlib.sha256(repr(material).encode()).hexdigest()


def facts_digest(info: dict[str, Any]) -> str:
    import json

    subset = {key: info.get(key) for key in FACT_KEYS}
    return hashlib.sha256(json.dumps(subset, sort_keys=True).encode()).hexdigest()


def describe_input(path: str) -> dict[str, Any]:
    """What planning saw of a path: its content hash, or that it is missing, and its real path."""
    record: dict[str, Any] = {"path": path, "realpath": os.path.realpath(path)}
    try:
        with open(path, "rb") as handle:
            record["sha256"] = hashlib.sha256(handle.read()).hexdigest()
    except IsADirectoryError:
        record["sha256"] = "directory"
    except OSError:
        record["sha256"] = None
    return record


def _facts_unchanged(digest: str) -> bool:
    from saferun.engine.api import EngineSession
    from saferun.errors import SaferunError

    try:
        return facts_digest(EngineSession().info()) == digest
    except SaferunError:
        return False  # the full path reports an unreachable engine


def _same_image(reference: str, image_id: str) -> bool:
    from saferun.engine.api import EngineSession
    from saferun.errors import SaferunError

    try:
        found = EngineSession().image_inspect(reference)
    except SaferunError:
        return False
    return found is not None and found.get("Id") == image_id


def _apparmor_loaded(name: str) -> bool:
    """Whether the kernel has a profile of this name (the full path loads it otherwise)."""
    try:
        with open("/sys/kernel/security/apparmor/profiles", encoding="utf-8") as handle:
            return any(line.rsplit(" (", 1)[0] == name for line in handle)
    except OSError:
        return False


def _inputs_unchanged(inputs: list[dict[str, Any]]) -> bool:
    return all(describe_input(record["path"]) == record for record in inputs)


def _private_read(path: str) -> bytes | None:
    """Read an entry only if this user alone could have written it."""
    try:
        directory = os.lstat(os.path.dirname(path))
        if (
            not stat.S_ISDIR(directory.st_mode)
            or directory.st_uid != os.getuid()
            or directory.st_mode & 0o077
        ):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            return None
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            return handle.read()
    finally:
        if fd >= 0:
            os.close(fd)


def store(
    *,
    inputs: list[dict[str, Any]],
    info: dict[str, Any],
    docker_argv: list[str],
    seccomp_profile: str | None,
    warnings: list[str],
    apparmor_profile: str | None = None,
    image: tuple[str, str] | None = None,
) -> None:
    """Remember a launch decided by the full pipeline. Failure to cache is never fatal.

    `image` is (reference, image id) when the plan was derived from the image itself (its
    user, its writable directories): a hit then needs the reference to name the same image.
    """
    if invocation is None or not enabled():
        return
    argv = invocation
    from pathlib import Path

    from saferun.engine.api import daemon_identity
    from saferun.engine.files import private_dir, write_atomic

    entry = {
        "format": _FORMAT,
        "inputs": inputs,
        "daemon": daemon_identity(),
        "facts": facts_digest(info),
        "docker_argv": docker_argv,
        "seccomp_profile": seccomp_profile,
        "warnings": warnings,
        "apparmor": apparmor_profile,
        "image": list(image) if image else None,
    }
    try:
        root = Path(_cache_root())
        private_dir(root.parent)
        directory = private_dir(root)
        write_atomic(directory / f"{entry_key(argv)}.plan", marshal.dumps(entry))
    except Exception:  # noqa: BLE001 - a cache that cannot be written is skipped
        return


def _debug(message: str) -> None:
    if os.environ.get("SAFERUN_DEBUG"):
        print(f"saferun: debug: plan cache {message}", file=sys.stderr)


def try_fast_run(argv: list[str]) -> None:
    """Exec docker straight away if a valid entry exists; return to take the full path."""
    if not enabled():
        return
    raw = _private_read(os.path.join(_cache_root(), f"{entry_key(argv)}.plan"))
    if raw is None:
        return _debug("miss: no entry for this command line, directory and saferun code")
    try:
        # marshal, not json: 3 ms less to import; the file is private to this user (checked).
        entry = marshal.loads(raw)
    except (ValueError, EOFError, TypeError):
        return _debug("miss: unreadable entry")
    if not isinstance(entry, dict) or entry.get("format") != _FORMAT:
        return _debug("miss: old entry format")
    if not _inputs_unchanged(entry["inputs"]):
        return _debug("miss: an input file changed")
    from saferun.engine.api import daemon_identity
    from saferun.engine.docker_cli import SECCOMP_FD_PATH, exec_docker_run

    identity = daemon_identity()
    if identity is None or identity != entry["daemon"]:
        if not _facts_unchanged(entry["facts"]):
            return _debug("miss: the daemon's facts changed")
    if entry.get("image") and not _same_image(*entry["image"]):
        return _debug("miss: the image reference names another image now")
    if entry["apparmor"] and not _apparmor_loaded(entry["apparmor"]):
        return _debug("miss: the AppArmor profile is not loaded (e.g. after a reboot)")
    # No image check: the entry was made with the image present, and if it is gone now,
    # docker run itself pulls (pull=missing) or refuses with 125 (pull=never).
    _debug("hit")
    for message in entry["warnings"]:
        print(f"saferun: warning: {message}", file=sys.stderr)
    docker_argv = list(entry["docker_argv"])
    if (entry["seccomp_profile"] is None) != any(SECCOMP_FD_PATH in a for a in docker_argv):
        exec_docker_run(docker_argv, entry["seccomp_profile"])

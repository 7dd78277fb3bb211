"""The plan cache: the fast path of `saferun run` (and of `saferun run --dry-run`).

The full path imports the manifest model, the planner, the policy rules and the seccomp
generator and compiler, then validates and plans: several times the cost of a hit. A
`saferun run` whose request, input files, saferun code and daemon facts are those of an
earlier start produces the same argv, so the rendered result is kept and reused. This
module imports only the standard library (and, to read a command line exactly as the full
path does, saferun.inputs.run_flags, which is standard library too).

The key is the *normalised request*: the command line as parsed (`-e A=1` and
`--env=A=1` are the same), with the container's command words and the values of
`-e NAME=VALUE` taken out. Planning never looks at those values (they are copied into
the argv as they are: see tests/unit/app/test_plancache.py, which checks that), so a new
command or a new env value reuses the plan and only those argv words are replaced. The
names of the variables, every other flag, the manifest or image, the working directory,
DOCKER_HOST/DOCKER_CONTEXT/DOCKER_CONFIG/SAFERUN_POLICY and a fingerprint of saferun's
own code and data files (size and mtime of each) stay in the key.

Re-checked on every hit, so a hit never skips a check whose input changed:
- every input the planning read: file contents (sha256), whether a path exists, where it
  resolves (symlinks) — the manifest, what it extends, bind sources, label files, the
  team policy file;
- the daemon: the identity of its socket, pidfile and daemon.json, else its facts;
- the local host facts planning read (/dev/kvm, the dockremap subuid range);
- the image, when the plan was derived from the image's own user and files;
- that a generated AppArmor profile is loaded.

The cache is bounded: at most `max_entries()` plans, the least recently used evicted
first (a hit refreshes an entry's mtime). Entries are written atomically (a private
temporary file renamed over the entry), so concurrent starts never read a torn entry;
eviction tolerates entries that another process removed first.
Set SAFERUN_NO_CACHE=1 to bypass it (and the compiled-profile cache).
"""

from __future__ import annotations

import marshal
import os
import stat
import sys

try:  # CPython's own SHA-256: the same digest, without loading OpenSSL (hashlib: ~5 ms)
    from _sha256 import sha256
except ImportError:  # other interpreters, and CPython >= 3.12 (_sha2)
    from hashlib import sha256

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
_FORMAT = 3
DEFAULT_MAX_ENTRIES = 512  # files: each request keeps two (its own key and its exact line)
# A temporary file older than this was left by a writer that died; eviction removes it.
_STALE_TMP_S = 600
# The command line of this process as typed (set by saferun.__main__); None: do not cache.
invocation: list[str] | None = None
_KEY_ENV = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "SAFERUN_POLICY")
# The environment of _KEY_ENV as saferun was started (see begin); None: read it live.
_started_env: list[str] | None = None


def begin(argv: list[str]) -> None:
    """Record this process's command line and the environment it was started with.

    The key uses that environment even after the full path has changed it (a user
    config's default team policy is put into SAFERUN_POLICY), so the entry it stores is
    the one the next start looks up; what the change read is an input of the plan.
    """
    global invocation, _started_env
    invocation = argv
    _started_env = [os.environ.get(k, "") for k in _KEY_ENV]


def enabled() -> bool:
    return os.environ.get("SAFERUN_NO_CACHE", "") in ("", "0")


def max_entries() -> int:
    """SAFERUN_CACHE_ENTRIES (at least 1), else DEFAULT_MAX_ENTRIES."""
    text = os.environ.get("SAFERUN_CACHE_ENTRIES", "")
    return max(1, int(text)) if text.isdigit() else DEFAULT_MAX_ENTRIES


def cache_root() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "saferun", "plans")


_fingerprint: str | None = None


def code_fingerprint() -> str:
    """Size and mtime of saferun's code and data: an edited checkout never reuses old plans."""
    global _fingerprint
    if _fingerprint is None:
        _fingerprint = walk_code()
    return _fingerprint


def walk_code() -> str:
    digest = sha256()
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


class Request:
    """A `saferun run` command line split into its shape (the key) and its free values."""

    __slots__ = ("command", "dashdash", "dry_run", "env", "fast", "shape")

    def __init__(self, words: list[str]) -> None:
        from saferun.inputs.run_flags import parse_run_args

        parsed = parse_run_args(words)  # DockerArgsError: the full path reports it
        flags: list[tuple[str, str]] = []
        env: dict[str, str] = {}
        for name, value in parsed.flags:
            if name in ("dry-run", "format"):
                continue  # a dry run and a run of the same request share a plan
            if name == "env":
                key, has_value, text = value.partition("=")
                if has_value:  # as saferun.inputs.dockerrun._map_app: the last one wins
                    env[key] = text
                    flags.append(("env", f"{key}="))
                else:
                    env.pop(key, None)
                    flags.append(("env", key))
                continue
            flags.append((name, value))
        self.dry_run = bool(parsed.flag("dry-run"))
        # What the cache may serve: a run, or a dry run printing the argv; not --help,
        # --offline (no daemon to check against) or --format json (the API body).
        self.fast = not (parsed.flag("help") or parsed.flag("offline")
                         or (parsed.last("format") or "argv") != "argv")
        self.env = env
        self.command = parsed.command
        self.dashdash = parsed.command[:1] == ("--",)
        given = len(parsed.command) > (1 if self.dashdash else 0)
        self.shape = (tuple(flags), parsed.image, self.dashdash, given)


def parse_request(argv: list[str] | None) -> Request | None:
    """The request of a `saferun run ...` invocation; None for anything else."""
    if not argv or argv[0] != "run":
        return None
    from saferun.errors import SaferunError

    try:
        return Request(argv[1:])
    except SaferunError:
        return None


def entry_key(argv: list[str], request: Request | None = None) -> str:
    """The cache key of an invocation (`run ...`): its normalised request and context."""
    request = request or parse_request(argv)
    return _key(request.shape if request is not None else ("unparsed", tuple(argv)))


def exact_key(argv: list[str]) -> str:
    """The key of this very command line: a repeat finds its entry without parsing it."""
    return _key(("exact", tuple(argv)))


def _key(shape: object) -> str:
    env = _started_env if _started_env is not None else [os.environ.get(k, "")
                                                         for k in _KEY_ENV]
    material = (_FORMAT, shape, os.getcwd(), sys.executable, env, code_fingerprint())
    return sha256(repr(material).encode()).hexdigest()


def facts_digest(info: dict[str, Any]) -> str:
    import json

    subset = {key: info.get(key) for key in FACT_KEYS}
    return sha256(json.dumps(subset, sort_keys=True).encode()).hexdigest()


# What planning reads of /info (HostFacts.from_info): the facts kept per daemon identity.
INFO_KEYS = (*FACT_KEYS, "DockerRootDir", "Warnings")
_INFO_FILES = 8  # daemon identities kept (one per daemon restart or daemon.json edit)


def daemon_info(session: Any) -> dict[str, Any]:
    """The daemon's /info as planning reads it (INFO_KEYS).

    While daemon_identity() (the socket, pidfile and daemon.json) stays the same, these
    facts cannot change: the rule a plan-cache hit already relies on. So the first start
    of a new command line reads them from the file kept under that identity instead of
    waiting for /info (5-15 ms here); an unknown identity, SAFERUN_NO_CACHE, or a file
    that is missing, foreign or unreadable means asking the daemon (and keeping the answer).
    """
    from saferun.engine.api import daemon_identity

    identity = daemon_identity() if enabled() else None
    if identity is None:
        return dict(session.info())
    path = os.path.join(cache_root(), f"{sha256(identity.encode()).hexdigest()}.info")
    raw = _private_read(path)
    if raw is not None:
        try:
            kept = marshal.loads(raw)
        except (EOFError, ValueError, TypeError):
            kept = None
        if isinstance(kept, dict) and kept.get("format") == _FORMAT \
                and kept.get("daemon") == identity and isinstance(kept.get("info"), dict):
            return dict(kept["info"])
    info = session.info()
    subset = {key: info[key] for key in INFO_KEYS if key in info}
    try:
        from pathlib import Path

        from saferun.engine.files import private_dir, write_atomic

        root = Path(cache_root())
        private_dir(root.parent)
        directory = private_dir(root)
        write_atomic(directory / os.path.basename(path),
                     marshal.dumps({"format": _FORMAT, "daemon": identity, "info": subset}))
        evict(str(directory), ".info", _INFO_FILES)
    except Exception:  # noqa: BLE001 - facts that cannot be kept are asked for next time
        pass
    return dict(info)


def describe_input(path: str) -> dict[str, Any]:
    """What planning saw of a path: its content hash, or that it is missing, and its real path."""
    record: dict[str, Any] = {"path": path, "realpath": os.path.realpath(path)}
    try:
        with open(path, "rb") as handle:
            record["sha256"] = sha256(handle.read()).hexdigest()
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


def private_directory(path: str) -> bool:
    """Whether `path` is a directory (not a symlink) that only this user can use."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def _private_read(path: str) -> bytes | None:
    """Read an entry only if this user alone could have written it."""
    if not private_directory(os.path.dirname(path)):
        return None
    try:
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


def _slots(request: Request, docker_argv: list[str]) -> dict[str, Any] | None:
    """Where the request's free values sit in the rendered argv, or None when they cannot
    be told apart from the rest (the entry then serves only these exact values)."""
    env_at: dict[str, int] = {}
    for name, value in request.env.items():
        found = [i for i in range(1, len(docker_argv))
                 if docker_argv[i - 1] == "--env" and docker_argv[i] == f"{name}={value}"]
        if len(found) != 1:
            return None
        env_at[name] = found[0]
    command = list(request.command)
    if request.dashdash and docker_argv[-len(command):] != command:
        command = command[1:]  # `saferun run MANIFEST -- CMD`: the `--` is not the command's
    if command and docker_argv[-len(command):] != command:
        return None
    if command and min(env_at.values(), default=0) >= len(docker_argv) - len(command):
        return None
    return {"env": env_at, "tail": len(command), "strip": len(command) < len(request.command)}


def _argv_for(entry: dict[str, Any], request: Request) -> list[str] | None:
    """The entry's argv with this request's command and env values in their places."""
    values = (request.env, request.command)
    slots = entry["slots"]
    if slots == "exact":
        return None  # found by another command line's key: cannot be (see exact_key)
    if slots is None:
        return list(entry["docker_argv"]) if values == tuple(entry["values"]) else None
    argv = list(entry["docker_argv"])
    for name, index in slots["env"].items():
        if name not in request.env:
            return None
        argv[index] = f"{name}={request.env[name]}"
    command = list(request.command[1:] if slots["strip"] else request.command)
    if "\0" in "".join(command) or "\0" in "".join(request.env.values()):
        return None  # the full path reports it
    return argv[:len(argv) - slots["tail"]] + command


def store(
    *,
    inputs: list[dict[str, Any]],
    info: dict[str, Any],
    docker_argv: list[str],
    seccomp_profile: str | None,
    warnings: list[str],
    apparmor_profile: str | None = None,
    image: tuple[str, str] | None = None,
    said: list[str] | None = None,
    notes: list[str] | None = None,
    host: str | None = None,
) -> None:
    """Remember a launch decided by the full pipeline. Failure to cache is never fatal.

    `image` is (reference, image id) when the plan was derived from the image itself (its
    user, its writable directories): a hit then needs the reference to name the same image.
    `said` are the warnings printed before planning (the command line's notes), `notes`
    what --dry-run prints after the warnings (None: a dry run may not use this entry);
    `host` the fingerprint of the local host facts planning read.
    """
    request = parse_request(invocation)
    if request is None or not enabled():
        return
    from pathlib import Path

    from saferun.engine.api import daemon_identity
    from saferun.engine.files import private_dir, write_atomic

    entry = {
        "format": _FORMAT,
        "inputs": inputs,
        "daemon": daemon_identity(),
        "facts": facts_digest(info),
        "host": host,
        "docker_argv": docker_argv,
        "slots": _slots(request, docker_argv),
        "values": [request.env, request.command],
        "seccomp_profile": seccomp_profile,
        "said": list(said or ()),
        "warnings": warnings,
        "notes": notes,
        "apparmor": apparmor_profile,
        "image": list(image) if image else None,
        "dry_run": request.dry_run,
    }
    try:
        root = Path(cache_root())
        private_dir(root.parent)
        directory = private_dir(root)
        assert invocation is not None
        write_atomic(directory / f"{entry_key(invocation, request)}.plan", marshal.dumps(entry))
        # The same entry under the exact command line, marked as such: its argv needs no
        # values replaced, so a repeat is served without even parsing its command line.
        exact = {**entry, "slots": "exact"}
        write_atomic(directory / f"{exact_key(invocation)}.plan", marshal.dumps(exact))
        evict(str(directory), ".plan", max_entries())
    except Exception:  # noqa: BLE001 - a cache that cannot be written is skipped
        return


def evict(directory: str, suffix: str, bound: int) -> None:
    """Keep at most `bound` files ending in `suffix`: remove the least recently used
    (oldest mtime) first, and temporary files that a dead writer left behind.

    Safe with concurrent writers: another process may remove a file first (ignored), and
    each writer re-lists until it sees the bound kept, so once every writer is done the
    directory holds at most `bound` entries.

    Cheap when nothing is due: names are counted without a stat (a full cache of 512
    files costs ~4 ms to stat), and a pass over the bound removes a sixteenth more than
    it must, so a full cache is stat'ed once in every bound/32 stores, not on each.
    """
    import time

    with os.scandir(directory) as listing:
        names = [item.name for item in listing]
    if (sum(name.endswith(suffix) for name in names) <= bound
            and not any(n.startswith(".") and n.endswith(".tmp") for n in names)):
        return
    keep = bound - bound // 16
    for _ in range(8):  # each pass removes what it saw beyond the bound
        entries: list[tuple[int, str]] = []
        now = time.time()
        with os.scandir(directory) as listing:
            for item in listing:
                try:
                    info = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if item.name.startswith(".") and item.name.endswith(".tmp"):
                    if now - info.st_mtime > _STALE_TMP_S:
                        _unlink(item.path)
                    continue
                if item.name.endswith(suffix):
                    entries.append((info.st_mtime_ns, item.path))
        if len(entries) <= bound:
            return
        entries.sort()
        for _, path in entries[: len(entries) - keep]:
            _unlink(path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass  # another process evicted it first


def _touch(path: str) -> None:
    """Mark an entry as just used (least-recently-used order is mtime order)."""
    try:
        os.utime(path)
    except OSError:
        pass


def _debug(message: str) -> None:
    debug(f"plan cache {message}")


def debug(message: str) -> None:
    """SAFERUN_DEBUG=1: say how a start was served (tests and users read it)."""
    if os.environ.get("SAFERUN_DEBUG"):
        print(f"saferun: debug: {message}", file=sys.stderr)


def host_fingerprint() -> str:
    """The local host facts planning reads besides the daemon's (saferun.engine.host)."""
    from saferun.engine.host import local_fingerprint

    return local_fingerprint()


def _read_entry(path: str) -> dict[str, Any] | None:
    raw = _private_read(path)
    if raw is None:
        return None
    try:
        # marshal, not json: 3 ms less to import; the file is private to this user (checked).
        entry = marshal.loads(raw)
    except (ValueError, EOFError, TypeError):
        return None
    if not isinstance(entry, dict) or entry.get("format") != _FORMAT:
        return None
    return entry


def try_fast_run(argv: list[str]) -> None:
    """Exec docker (or, for --dry-run, print its argv and exit) if a valid entry exists;
    return to take the full path."""
    if not enabled():
        return
    path = os.path.join(cache_root(), f"{exact_key(argv)}.plan")
    entry = _read_entry(path)
    if entry is not None and entry["slots"] == "exact":
        return _serve(entry, list(entry["docker_argv"]), path, dry_run=entry["dry_run"])
    request = parse_request(argv)
    if request is None or not request.fast:
        return
    path = os.path.join(cache_root(), f"{entry_key(argv, request)}.plan")
    entry = _read_entry(path)
    if entry is None:
        return _debug("miss: no entry for this request, directory and saferun code")
    docker_argv = _argv_for(entry, request)
    if docker_argv is None:
        return _debug("miss: the entry serves other command or env values")
    return _serve(entry, docker_argv, path, dry_run=request.dry_run)


def _serve(entry: dict[str, Any], docker_argv: list[str], path: str, *, dry_run: bool) -> None:
    """Re-check everything the entry's plan depended on; then exec docker or print."""
    if dry_run and entry["notes"] is None:
        return _debug("miss: the entry would have changed the host (a dry run must not)")
    if not _inputs_unchanged(entry["inputs"]):
        return _debug("miss: an input file changed")
    if entry["host"] != host_fingerprint():
        return _debug("miss: the host's facts changed (/dev/kvm, /etc/subuid)")
    from saferun.engine.api import daemon_identity

    identity = daemon_identity()
    if identity is None or identity != entry["daemon"]:
        if not _facts_unchanged(entry["facts"]):
            return _debug("miss: the daemon's facts changed")
    if entry.get("image") and not _same_image(*entry["image"]):
        return _debug("miss: the image reference names another image now")
    if entry["apparmor"] and not dry_run and not _apparmor_loaded(entry["apparmor"]):
        return _debug("miss: the AppArmor profile is not loaded (e.g. after a reboot)")
    # No image check: the entry was made with the image present, and if it is gone now,
    # docker run itself pulls (pull=missing) or refuses with 125 (pull=never).
    from saferun.engine.docker_cli import SECCOMP_FD_PATH, exec_docker_run

    profile = entry["seccomp_profile"]
    if (profile is None) == any(SECCOMP_FD_PATH in a for a in docker_argv):
        return _debug("miss: inconsistent entry")
    _debug("hit")
    _touch(path)
    for message in (*entry["said"], *entry["warnings"]):
        print(f"saferun: warning: {message}", file=sys.stderr)
    if not dry_run:
        exec_docker_run(docker_argv, profile)
    for message in entry["notes"]:
        print(f"saferun: note: {message}", file=sys.stderr)
    if profile is not None:
        where = _profile_file(profile)
        docker_argv = [a.replace(SECCOMP_FD_PATH, where) for a in docker_argv]
    import shlex

    print(shlex.join(docker_argv))
    raise SystemExit(0)


def _profile_file(profile: str) -> str:
    """saferun.engine.files.store_profile's path for this profile (the file --dry-run
    names), checked without importing pathlib; written by store_profile when missing."""
    digest = sha256(profile.encode()).hexdigest()[:24]
    path = os.path.join(os.path.dirname(cache_root()), "profiles", f"{digest}.json")
    try:
        info, directory = os.lstat(path), os.lstat(os.path.dirname(path))
        if (stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid()
                and info.st_size == len(profile.encode()) and stat.S_ISDIR(directory.st_mode)
                and directory.st_uid == os.getuid() and not directory.st_mode & 0o022):
            return path
    except OSError:
        pass
    return store_profile_file(profile)


def store_profile_file(profile: str) -> str:
    """The profile's content-addressed file (saferun.engine.files.store_profile), the
    directory bounded like the plans (least recently written first)."""
    from saferun.engine.files import store_profile

    path = store_profile(profile, ".json")
    try:
        evict(str(path.parent), ".json", max_entries())
    except OSError:
        pass  # a bound that cannot be kept now is kept by the next store
    return str(path)


def _compiled_root() -> str:
    return os.path.join(os.path.dirname(cache_root()), "compiled")


def _libseccomp_identity() -> str:
    """What decides a compile's outcome besides the profile: pyseccomp's file and the
    dynamic linker's cache (rewritten whenever a library such as libseccomp changes)."""
    import importlib.util

    spec = importlib.util.find_spec("pyseccomp")
    parts = []
    for path in (spec.origin if spec else None, "/etc/ld.so.cache"):
        try:
            info = os.stat(path) if path else None
        except OSError:
            info = None
        parts.append(f"{path}:{info.st_size}:{info.st_mtime_ns}" if info else f"{path}:-")
    return "|".join(parts)


def compiled_key(profile_json: str, written: tuple[str, ...]) -> str:
    material = repr((_FORMAT, profile_json, written, _libseccomp_identity()))
    return sha256(material.encode()).hexdigest()


def profile_compiled(key: str) -> bool:
    """Whether libseccomp already compiled this profile text (see compiled_key) here."""
    if not enabled():
        return False
    path = os.path.join(_compiled_root(), f"{key}.ok")
    if _private_read(path) != key.encode():
        return False
    _touch(path)
    return True


def remember_compiled(key: str) -> None:
    """Record that the profile of `key` compiled; bounded like the plans."""
    if not enabled():
        return
    from pathlib import Path

    from saferun.engine.files import private_dir, write_atomic

    try:
        private_dir(Path(_compiled_root()).parent)
        directory = private_dir(Path(_compiled_root()))
        write_atomic(directory / f"{key}.ok", key.encode())
        evict(str(directory), ".ok", max_entries())
    except Exception:  # noqa: BLE001 - a cache that cannot be written is skipped
        return

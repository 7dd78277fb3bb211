"""Explain why a hardened container failed, and name the manifest change that would fix it.

Pure: the evidence comes in as plain values (the calls a log-mode replay recorded, the
container's output, `docker diff`'s lines, the paths already writable) and each finding
comes out as a cause and a change. Strict defaults only stick when breakage is explained:
"syscall mount denied -> [seccomp] allow += ["mount"]", "write to /var/cache/nginx refused
-> add a tmpfs at /var/cache/nginx".
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from saferun.learn.learning import ENGINE_MANAGED, propose_writable

EROFS_TEXT = "Read-only file system"
# A path in a message: quoted ("..." '...' `...'), or bare up to a separator.
_QUOTED_PATH = re.compile(r"""["'`](/[^"'`\s]*)["']""")
_BARE_PATH = re.compile(r"(?<![\w.])(/[A-Za-z0-9_.@+/-]+)")


@dataclass(frozen=True)
class Finding:
    """One denial and the manifest change that would allow it."""

    kind: str  # seccomp | read-only | permission | pid-file | port | capability | diff
    subject: str  # the syscall or the path
    cause: str
    change: str
    note: str = ""

    def line(self) -> str:
        text = f"{self.cause} -> {self.change}"
        return f"{text} ({self.note})" if self.note else text


def explain_syscalls(
    denied: Iterable[str],
    *,
    capability_calls: Mapping[str, Iterable[str]] | None = None,
    learned: bool = False,
    allowed: Iterable[str] = (),
    fallbacks: Mapping[str, Iterable[str]] | None = None,
    guards: Mapping[str, Iterable[str]] | None = None,
) -> list[Finding]:
    """A finding per refused call; calls the kernel also gates on a capability say which.

    `allowed` are the names the profile already allows (some only for some arguments).
    A refused call among them was refused by an argument guard (clone3's always answers
    ENOSYS), not for a missing name: adding it again would change nothing. What the app
    needs then is the call libc makes instead (`fallbacks`, seccomp/fallbacks.toml), if that
    one is missing, or else lifting the guard (`guards`: guard name -> what lifts it).
    """
    key = "learned" if learned else "allow"
    needs: dict[str, list[str]] = {}
    for cap, calls in (capability_calls or {}).items():
        for call in calls:
            needs.setdefault(call, []).append(cap)
    present = set(allowed)
    findings = []
    for name in sorted(set(denied)):
        if name in present:
            findings.append(_guarded(name, present, key, fallbacks or {}, guards or {}))
            continue
        caps = sorted(needs.get(name, ()))
        note = f"the kernel also requires {' or '.join(caps)}" if caps else ""
        findings.append(Finding("seccomp", name, f"syscall {name} denied",
                                f"[seccomp] {key} += [{json.dumps(name)}]", note))
    return findings


def _guarded(name: str, allowed: set[str], key: str, fallbacks: Mapping[str, Iterable[str]],
             guards: Mapping[str, Iterable[str]]) -> Finding:
    """A call the profile allows by name was refused anyway: name what really is missing."""
    from saferun.profiles.seccomp import with_fallbacks

    instead = list(fallbacks.get(name, ()))
    ordered = [*instead, *sorted(with_fallbacks(instead, fallbacks) - set(instead))]
    missing = [n for n in ordered if n not in allowed and n != name]
    if missing:
        names = ", ".join(json.dumps(n) for n in missing)
        return Finding(
            "seccomp", missing[0],
            f"syscall {name} refused by its argument guard (it is allowed by name), so libc "
            f"falls back to {' or '.join(missing)}, which {'is' if len(missing) == 1 else 'are'}"
            " denied",
            f"[seccomp] {key} += [{names}]",
            f"{name} is already in the list: adding it again changes nothing")
    lifters = sorted(guards.get(name, ()))
    caps = [c.removeprefix("CAP_") for c in lifters if c.startswith("CAP_")]
    entries = [json.dumps(e) for e in lifters if not e.startswith("CAP_")]
    ways = ([f"[seccomp] allow += [{', '.join(entries)}]"] if entries else []) + (
        [f"[capabilities] add += [{', '.join(json.dumps(c) for c in caps)}]"] if caps else [])
    fallback_note = (f"its fallback {', '.join(instead)} is allowed; " if instead else "")
    return Finding(
        "seccomp", name, f"syscall {name} refused by its argument guard (it is allowed by name)",
        " or ".join(ways) if ways else "no manifest change lifts this guard",
        f"{fallback_note}lift the guard only if the app needs these arguments")


def erofs_paths(output: str) -> list[str]:
    """Paths named on lines that report EROFS, in order of appearance, without repeats."""
    found: list[str] = []
    for line in output.splitlines():
        if EROFS_TEXT not in line:
            continue
        path = _path_in(line)
        if path and path not in found:
            found.append(path)
    return found


def _path_in(line: str) -> str | None:
    quoted = _QUOTED_PATH.search(line)
    if quoted:
        return quoted.group(1).rstrip("/") or "/"
    bare = _BARE_PATH.search(line)
    return bare.group(1).rstrip(":").rstrip("/") or "/" if bare else None


def _covered(path: str, mounts: Iterable[str]) -> bool:
    return any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts)


EACCES_TEXT = "permission denied"
EPERM_TEXT = "operation not permitted"
PORT_TEXTS = ("address already in use", "port is already allocated")
_PID_FILE = re.compile(r"pid[ _-]?file|\.pid\b", re.IGNORECASE)
_PORT = re.compile(r"(?:(?:\d{1,3}\.){3}\d{1,3}|\[[0-9a-f:]*\]|\*|localhost)?:(\d{1,5})\b")
# Words of an EPERM message -> the capability the kernel checks for that operation
# (capabilities(7)); the first match wins.
EPERM_CAPABILITIES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("chown", "lchown"), "CHOWN"),
    (("setgroups", "initgroups", "setgid", "setresgid", "setegid"), "SETGID"),
    (("setuid", "setresuid", "seteuid", "change user", "drop privileges"), "SETUID"),
    (("chmod", "utime", "set times"), "FOWNER"),
    (("kill",), "KILL"),
    (("chroot",), "SYS_CHROOT"),
    (("mknod",), "MKNOD"),
    (("raw socket", "icmp", "ping", "packet socket"), "NET_RAW"),
    (("setpriority", "nice", "sched_setscheduler", "ioprio"), "SYS_NICE"),
    (("mlock", "memlock"), "IPC_LOCK"),
    (("settimeofday", "clock_settime", "adjtime"), "SYS_TIME"),
    (("capset", "setcap", "capabilities"), "SETPCAP"),
    (("bind",), "NET_BIND_SERVICE"),
)


@dataclass(frozen=True)
class Context:
    """What the container is: whom it runs as and what is writable or published."""

    writable: Sequence[str] = ()  # tmpfs targets and mount destinations
    tmpfs: Sequence[str] = ()  # the tmpfs targets among them
    user: str = ""  # the container's user (uid[:gid] or a name); "" = the image's
    ports: Mapping[int, int] | None = None  # host port -> container port


def _user(context: Context) -> str:
    return f"the app's user ({context.user})" if context.user else "the app's user"


def _tmpfs_change(target: str, context: Context) -> str:
    return (f"add a tmpfs at {target} (mode 1777: writable by {_user(context)}): "
            f"[filesystem] tmpfs += [{{ target = \"{target}\" }}]")


def _owner_change(path: str, context: Context) -> tuple[str, str] | None:
    """(change, note) for a path inside something already writable that refused the user."""
    mounts = sorted((m for m in context.writable if _covered(path, [m])), key=len, reverse=True)
    if not mounts:
        return None
    mount = mounts[0]
    if mount in context.tmpfs:
        return (f"make the tmpfs at {mount} writable by {_user(context)}: set its mode = \"1777\""
                " in [filesystem] tmpfs", "")
    return (f"make the mount at {mount} writable by {_user(context)}: chown its source on the "
            "host to that uid (or set [app] user to its owner)", "")


def _eacces(path: str, context: Context) -> Finding:
    target = posixpath.dirname(path) or "/"
    inside = _owner_change(path, context)
    if inside is not None:
        return Finding("permission", path, f"access to {path} denied (EACCES)", *inside)
    if target == "/" or _covered(target, ENGINE_MANAGED):
        return Finding("permission", path, f"access to {path} denied (EACCES)",
                       f"mount a volume at {path} owned by {_user(context)} "
                       "([[filesystem.mounts]] type = \"volume\")",
                       "its directory cannot take a tmpfs")
    return Finding("permission", target, f"access to {path} denied (EACCES)",
                   _tmpfs_change(target, context),
                   "the image's files belong to another user; if the app must keep the data, "
                   f"mount a volume owned by that user instead; if it only reads {path}, set "
                   "[app] user to the file's owner")


def _pid_file(line: str, context: Context) -> Finding:
    path = _path_in(line)
    if path is None or not path.startswith("/"):
        return Finding("pid-file", "", f"the pid file cannot be written ({line.strip()[:120]})",
                       "add a tmpfs at the pid file's directory (e.g. /run): "
                       "[filesystem] tmpfs += [{ target = \"/run\" }], or point the app's pid file "
                       "into /tmp")
    target = posixpath.dirname(path) or "/"
    inside = _owner_change(path, context) if target != "/" else None
    if inside is not None:
        return Finding("pid-file", path, f"the pid file {path} cannot be written", *inside)
    if target == "/":
        return Finding("pid-file", path, f"the pid file {path} cannot be written",
                       "point the app's pid file into /tmp (the root's top level cannot "
                       "take a tmpfs)")
    return Finding("pid-file", target, f"the pid file {path} cannot be written",
                   _tmpfs_change(target, context))


def _port_conflict(line: str, context: Context) -> Finding:
    lowered = line.lower()
    numbers = [int(m.group(1)) for m in _PORT.finditer(line) if 0 < int(m.group(1)) < 65536]
    port = numbers[0] if numbers else None
    ports = context.ports or {}
    if "port is already allocated" in lowered or (port is not None and port in ports):
        if port is not None and port in ports:
            return Finding(
                "port", str(port), f"host port {port} is already in use on the host",
                f"publish on a different host port: [network] ports = [{{ container = "
                f"{ports[port]}, host = <a free port> }}] (or omit host for a random one)",
                f"see what holds it: ss -ltnp 'sport = :{port}'")
        return Finding("port", str(port or ""), "a published host port is already in use",
                       "publish on a different host port in [network] ports (or omit host for "
                       "a random one)")
    where = f"port {port}" if port is not None else "its port"
    return Finding(
        "port", str(port or ""), f"the app cannot bind {where}: address already in use",
        "another process in the container's network namespace holds it: run one listener per "
        "port, or give the app another port (with [network] mode = \"host\" the host's own "
        "services count too: use the default bridge)")


def _eperm_capability(line: str) -> str | None:
    lowered = line.lower()
    for words, capability in EPERM_CAPABILITIES:
        if any(re.search(rf"\b{re.escape(word)}", lowered) for word in words):
            return capability
    return None


def _eperm(line: str) -> Finding:
    capability = _eperm_capability(line)
    quoted = line.strip()[:160]
    hint = ('or a seccomp refusal: set [seccomp] errno = "ENOSYS" to tell them apart, and '
            "replay with `saferun why --manifest` to name the call")
    if capability is None:
        return Finding("capability", "", f"operation not permitted (EPERM): {quoted}",
                       "add the capability the operation needs: [capabilities] add += [...]",
                       hint)
    return Finding("capability", capability, f"operation not permitted (EPERM): {quoted}",
                   f"[capabilities] add += [{json.dumps(capability)}]",
                   f"the kernel checks CAP_{capability} for this; {hint}")


def explain_output(output: str, writable: Sequence[str],
                   context: Context | None = None) -> list[Finding]:
    """Errors in the container's output (or docker's start error) -> the manifest change.

    Each line is read once, the most specific kind first: a port conflict, a pid file that
    cannot be written, a read-only filesystem (EROFS: a tmpfs for the directory), a
    permission refused to the app's user (EACCES: a tmpfs writable by it, or the owner of
    a mount), an operation not permitted (EPERM: the capability the operation needs).
    For EROFS the failing path is what the app tried to create or write; the directory
    holding it is what must be writable.
    """
    context = context or Context(writable=writable)
    if not context.writable and writable:
        context = Context(writable, context.tmpfs, context.user, context.ports)
    findings: list[Finding] = []
    seen: set[tuple[str, str, str]] = set()

    def add(finding: Finding) -> None:
        key = (finding.kind, finding.subject, finding.change)
        if key not in seen:
            seen.add(key)
            findings.append(finding)

    for line in output.splitlines():
        lowered = line.lower()
        if any(text in lowered for text in PORT_TEXTS):
            add(_port_conflict(line, context))
        elif _PID_FILE.search(line) and any(
                word in lowered for word in ("unable", "could not", "can't", "cannot", "failed",
                                             "error", EACCES_TEXT, EROFS_TEXT.lower())):
            add(_pid_file(line, context))
        elif EROFS_TEXT.lower() in lowered:
            path = _path_in(line)
            if path:
                add(_erofs(path, context))
        elif EACCES_TEXT in lowered:
            path = _path_in(line)
            if path:
                add(_eacces(path, context))
        elif EPERM_TEXT in lowered:
            add(_eperm(line))
    return findings


def _erofs(path: str, context: Context) -> Finding:
    target = posixpath.dirname(path) or "/"
    if target == "/" or _covered(target, [*context.writable, *ENGINE_MANAGED]):
        return Finding(
            "read-only", path, f"write to {path} refused",
            f"mount a volume at {path} ([[filesystem.mounts]] type = \"volume\")",
            "its directory cannot take a tmpfs")
    return Finding(
        "read-only", target, f"write to {path} refused",
        f"add a tmpfs at {target}: [filesystem] tmpfs += [{{ target = \"{target}\" }}]")


def explain_diff(diff: Sequence[tuple[str, str]], writable: Sequence[str]) -> list[Finding]:
    """What a container with a writable root wrote, as tmpfs entries for a read-only root."""
    proposal = propose_writable(diff, writable)
    findings = [
        Finding("diff", path, f"writes to {path} (docker diff)",
                f"with a read-only root, add a tmpfs at {path}: "
                f"[filesystem] tmpfs += [{{ target = \"{path}\" }}]")
        for path in proposal.tmpfs
    ]
    findings += [Finding("diff", "", note, "use a volume", "") for note in proposal.notes]
    return findings


def explain(
    *,
    denied_syscalls: Iterable[str] = (),
    output: str = "",
    diff: Sequence[tuple[str, str]] = (),
    writable: Sequence[str] = (),
    capability_calls: Mapping[str, Iterable[str]] | None = None,
    learned: bool = False,
    allowed: Iterable[str] = (),
    fallbacks: Mapping[str, Iterable[str]] | None = None,
    guards: Mapping[str, Iterable[str]] | None = None,
    context: Context | None = None,
) -> list[Finding]:
    """Every finding, seccomp first, then errors in the output, then what a diff shows."""
    return [
        *explain_syscalls(denied_syscalls, capability_calls=capability_calls, learned=learned,
                          allowed=allowed, fallbacks=fallbacks, guards=guards),
        *explain_output(output, writable, context),
        *explain_diff(diff, writable),
    ]

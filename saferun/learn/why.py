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

    kind: str  # seccomp | read-only | diff
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
) -> list[Finding]:
    """A finding per refused call; calls the kernel also gates on a capability say which."""
    key = "learned" if learned else "allow"
    needs: dict[str, list[str]] = {}
    for cap, calls in (capability_calls or {}).items():
        for call in calls:
            needs.setdefault(call, []).append(cap)
    findings = []
    for name in sorted(set(denied)):
        caps = sorted(needs.get(name, ()))
        note = f"the kernel also requires {' or '.join(caps)}" if caps else ""
        findings.append(Finding("seccomp", name, f"syscall {name} denied",
                                f"[seccomp] {key} += [{json.dumps(name)}]", note))
    return findings


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


def explain_output(output: str, writable: Sequence[str]) -> list[Finding]:
    """Read-only-filesystem errors in the container's output -> a tmpfs for each directory.

    The failing path is what the app tried to create or write; the directory holding it is
    what must be writable (a directory the app writes into whole is proposed as itself
    when the error names it with a trailing file operation on it, e.g. mkdir of the path).
    """
    findings: list[Finding] = []
    proposed: list[str] = []
    for path in erofs_paths(output):
        target = posixpath.dirname(path) or "/"
        if target == "/" or _covered(target, [*writable, *ENGINE_MANAGED]):
            findings.append(Finding(
                "read-only", path, f"write to {path} refused",
                f"mount a volume at {path} ([[filesystem.mounts]] type = \"volume\")",
                "its directory cannot take a tmpfs"))
            continue
        if target in proposed:
            continue
        proposed.append(target)
        findings.append(Finding(
            "read-only", target, f"write to {path} refused",
            f"add a tmpfs at {target}: [filesystem] tmpfs += [{{ target = \"{target}\" }}]"))
    return findings


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
) -> list[Finding]:
    """Every finding, seccomp first, then read-only errors, then what a diff shows."""
    return [
        *explain_syscalls(denied_syscalls, capability_calls=capability_calls, learned=learned),
        *explain_output(output, writable),
        *explain_diff(diff, writable),
    ]

"""Learning mode, the pure part: from recorded runs to a manifest edit or a profile.

Everything here is computation over plain values: the manifests a learning, verifying or
diagnosing run starts with (the planner then does the rest, as for `saferun run`), the
merge of several runs, the judgement whether a recording lost records, the writable paths
`docker diff` shows, and the rewrite of the manifest text (tomlkit, so comments survive)
with a readable diff. Recording and starting containers live in saferun.engine.audit and
saferun.app.learn.
"""

from __future__ import annotations

import difflib
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from saferun.inputs.loader import validation_context
from saferun.model.manifest import Manifest
from saferun.model.strict import to_document
from saferun.model.units import parse_duration

LEARN_REASON = "saferun learn: a learning run observes writes to propose tmpfs entries"
GENERATED_PROFILES = ("default", "strict")
# Paths docker manages itself: they change in every container and never need a tmpfs.
ENGINE_MANAGED = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/mtab", "/dev",
                  "/proc", "/sys", "/.dockerenv")


# --- the manifests a run starts with ---------------------------------------------------------


def _rebuild(manifest: Manifest, changes: Mapping[str, Mapping[str, Any]]) -> Manifest:
    """A copy with whole sections updated, validated again like a manifest from a file."""
    document = to_document(manifest, exclude_none=True)
    for section, values in changes.items():
        document.setdefault(section, {}).update(values)
    return Manifest.from_data(document, context=validation_context(document))


def _base_profile(manifest: Manifest) -> str:
    profile = manifest.seccomp.profile
    return profile if profile in GENERATED_PROFILES else "default"


def learning_manifest(manifest: Manifest, *, writable_root: bool = True) -> Manifest:
    """The manifest of a recording run: every call is logged, nothing is denied.

    The base profile's list, the manifest's allow list and any earlier learned list are all
    cleared, so that they are recorded too (only the runtime's own calls and the kept
    capabilities' calls stay allowed, and the enforcing profile adds those back). The root
    is writable so that `docker diff` shows what the app writes.
    """
    changes: dict[str, dict[str, Any]] = {
        "seccomp": {"profile": _base_profile(manifest), "mode": "log", "allow": [], "deny": [],
                    "learned": []},
        "allow": {**manifest.allow, "seccomp-unconfined": LEARN_REASON},
    }
    if writable_root:
        changes["filesystem"] = {"read_only": False}
        exceptions = {str(key): reason for key, reason in manifest.exceptions.items()}
        exceptions["writable_root"] = LEARN_REASON
        changes["exceptions"] = exceptions
    return _rebuild(manifest, changes)


def enforcing_manifest(
    manifest: Manifest,
    learned: Iterable[str],
    *,
    tmpfs: Iterable[str] = (),
    capabilities: Iterable[str] | None = None,
) -> Manifest:
    """The manifest with the learned list enforced (what `--write-manifest` will say)."""
    changes: dict[str, dict[str, Any]] = {
        "seccomp": {"profile": _base_profile(manifest), "mode": "allowlist",
                    "learned": sorted(set(learned))},
    }
    added = [{"target": path} for path in tmpfs]
    if added:
        existing = [to_document(t) for t in manifest.filesystem.tmpfs]
        changes["filesystem"] = {"tmpfs": [*existing, *added]}
    if capabilities is not None:
        changes["capabilities"] = {"add": sorted(set(capabilities))}
    return _rebuild(manifest, changes)


def diagnosing_manifest(manifest: Manifest) -> Manifest:
    """The manifest's own profile with denials turned into log records (`why`, `--verify`).

    In log mode the generator keeps the allow rules and logs everything else, so each
    record names a call the enforcing profile would have refused.
    """
    if manifest.seccomp.profile not in GENERATED_PROFILES:
        return learning_manifest(manifest, writable_root=False)
    return _rebuild(manifest, {"seccomp": {"mode": "log"},
                               "allow": {**manifest.allow, "seccomp-unconfined": LEARN_REASON}})


def replay_manifest(manifest: Manifest) -> Manifest:
    """`saferun why --manifest`: the diagnosing manifest, publishing each port on a random
    host port, so the replay starts beside the original that holds the fixed ones."""
    diagnosing = diagnosing_manifest(manifest)
    if not any(p.host for p in diagnosing.network.ports):
        return diagnosing
    ports = [to_document(p, exclude=frozenset({"host"})) for p in diagnosing.network.ports]
    return _rebuild(diagnosing, {"network": {"ports": ports}})


HEALTH_PROBE_INTERVAL = "1s"
# The daemon's defaults for a health check's unset timings (docker run --health-cmd sends 0).
DAEMON_HEALTH_INTERVAL, DAEMON_HEALTH_TIMEOUT, DAEMON_HEALTH_RETRIES = "30s", "30s", 3


def probing_manifest(manifest: Manifest) -> Manifest:
    """A learning or verifying run's manifest: the health check, if any, runs every second.

    docker runs it the way it always does (CMD-SHELL: `/bin/sh -c` inside the container,
    under the container's seccomp filter), so its calls are recorded, and the run can wait
    for the first verdict instead of the manifest's interval.
    """
    check = manifest.healthcheck
    if check is None or check.disable or parse_duration(
            check.interval or DAEMON_HEALTH_INTERVAL) <= parse_duration(HEALTH_PROBE_INTERVAL):
        return manifest
    return _rebuild(manifest, {"healthcheck": {"interval": HEALTH_PROBE_INTERVAL}})


def health_wait_s(manifest: Manifest) -> float:
    """How long a run waits for the health check's first passing verdict (start period, then
    every retry at the probing interval, each up to its timeout)."""
    check = manifest.healthcheck
    if check is None or check.disable or check.command is None:
        return 0.0  # none, or the image's own: not awaited (the image may have none)
    step = parse_duration(HEALTH_PROBE_INTERVAL) + parse_duration(
        check.timeout or DAEMON_HEALTH_TIMEOUT)
    retries = check.retries or DAEMON_HEALTH_RETRIES
    return (parse_duration(check.start_period or "0s") + step * (retries + 1)) / 1e9 + 5.0


# --- merging and judging runs ----------------------------------------------------------------


def merge_runs(runs: Iterable[Iterable[str]]) -> tuple[str, ...]:
    """The union of the calls of several runs, sorted: every run's calls must stay allowed."""
    merged: set[str] = set()
    for run in runs:
        merged.update(run)
    return tuple(sorted(merged))


def pair_fallbacks(
    recorded: Iterable[str], fallbacks: Mapping[str, Iterable[str]]
) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """(the learned list, {call added: the recorded calls it stands in for}).

    A recording allows everything, so it sees only the call libc tries first; under
    enforcement that call can still be refused (the clone3 guard answers ENOSYS) and libc
    then makes its fallback (clone), which must be in the list as well.
    """
    from saferun.profiles.seccomp import with_fallbacks

    names = set(recorded)
    added: dict[str, list[str]] = {}
    for name in sorted(names):
        for extra in sorted(with_fallbacks([name], fallbacks) - names):
            added.setdefault(extra, []).append(name)
    return (tuple(sorted(names | set(added))),
            {extra: tuple(sources) for extra, sources in sorted(added.items())})


def missing_serials(serials: Iterable[int]) -> int:
    """How many audit serial numbers are missing between the first and the last one seen.

    Records of one event share a serial, and kauditd may deliver serials out of order, so
    the numbers are deduplicated and sorted before counting holes.
    """
    ordered = sorted(set(serials))
    return sum(b - a - 1 for a, b in zip(ordered, ordered[1:], strict=False) if b > a + 1)


@dataclass(frozen=True)
class LossSigns:
    """What a recording reports about records that never arrived."""

    overflows: int
    missing: int
    kernel_lost: int | None  # growth of the kernel's lost counter; None: unreadable
    proc_overflows: int = 0

    def reasons(self) -> list[str]:
        found = []
        if self.overflows:
            found.append(f"the audit socket overflowed {self.overflows} time(s)")
        if self.missing:
            found.append(f"{self.missing} audit serial number(s) never arrived")
        if self.kernel_lost:
            found.append(f"the kernel dropped {self.kernel_lost} audit record(s)")
        if self.proc_overflows:
            found.append(f"{self.proc_overflows} burst(s) of fork events were dropped")
        return found


def loss_signs(
    *,
    serials: Iterable[int],
    overflows: int,
    lost_before: int | None,
    lost_after: int | None,
    proc_overflows: int = 0,
) -> LossSigns:
    lost = None if lost_before is None or lost_after is None else max(0, lost_after - lost_before)
    return LossSigns(overflows, missing_serials(serials), lost, proc_overflows)


def next_buffer(current: int, default: int) -> int:
    """The socket buffer of the next attempt after a loss: 16 times larger, at most default."""
    return min(max(current * 16, 65536), default) if current < default else default


# --- writable paths --------------------------------------------------------------------------


@dataclass(frozen=True)
class WritableProposal:
    tmpfs: tuple[str, ...]
    notes: tuple[str, ...]


def parse_docker_diff(text: str) -> list[tuple[str, str]]:
    """`docker diff` lines ("A /path", "C /path", "D /path") -> [(kind, path)]."""
    entries = []
    for line in text.splitlines():
        kind, _, path = line.strip().partition(" ")
        if kind in ("A", "C", "D") and path.startswith("/"):
            entries.append((kind, path))
    return entries


def _covered(path: str, mounts: Iterable[str]) -> bool:
    return any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts)


def propose_writable(diff: Sequence[tuple[str, str]], covered: Iterable[str]) -> WritableProposal:
    """The directories that must be writable under a read-only root, from `docker diff`.

    A created or deleted entry needs its directory writable: the directory is proposed
    (a tmpfs starts empty, so it suits caches, pid files and scratch space). A changed entry
    with nothing changed beneath it is a file modified in place: a tmpfs over its directory
    would hide the file's original content, so it is reported as a note instead.
    """
    covered = [*covered, *ENGINE_MANAGED]
    paths = {path for _, path in diff}
    proposals: set[str] = set()
    notes: list[str] = []
    for kind, path in diff:
        if _covered(path, covered):
            continue
        parent = posixpath.dirname(path.rstrip("/")) or "/"
        if kind in ("A", "D"):
            if kind == "A" and any(p == parent for k, p in diff if k == "A"):
                continue  # inside a directory the app created: its top is proposed
            if parent == "/":
                notes.append(f"{path} is written at the top level; use a volume or change the app")
                continue
            proposals.add(parent)
        elif not any(p.startswith(path.rstrip("/") + "/") for p in paths):
            notes.append(f"{path} is modified in place; a tmpfs over {parent} would hide its "
                         "original content: use a volume for it or make the app write elsewhere")
    tops = sorted(p for p in proposals if not any(_covered(p, [q]) and p != q for q in proposals))
    return WritableProposal(tuple(tops), tuple(sorted(set(notes))))


# --- capability minimisation -----------------------------------------------------------------


def capability_candidates(kept: Sequence[str]) -> list[tuple[str, tuple[str, ...]]]:
    """(capability to try without, the set to run with), one per kept capability, in order."""
    return [(cap, tuple(c for c in kept if c != cap)) for cap in kept]


# --- writing the result ----------------------------------------------------------------------


def rewrite_manifest(
    text: str,
    *,
    learned: Iterable[str],
    tmpfs: Iterable[str] = (),
    capabilities: Iterable[str] | None = None,
    profile: str | None = None,
) -> str:
    """The manifest text with `[seccomp] learned`, new tmpfs entries and capabilities set.

    tomlkit keeps every comment, the key order and the formatting of untouched lines. A
    mode other than allowlist is switched to allowlist (a learned list is meant to be
    enforced); a profile saferun does not generate becomes `default`.
    """
    import tomlkit

    document = tomlkit.parse(text)
    seccomp = document.get("seccomp")
    if seccomp is None:
        seccomp = tomlkit.table()
        document["seccomp"] = seccomp
    names = tomlkit.array()
    names.multiline(True)
    names.extend(sorted(set(learned)))
    if "learned" not in seccomp:
        seccomp.add(tomlkit.comment(
            "Measured by `saferun learn`: replaces the base profile's allow list."))
    seccomp["learned"] = names
    if seccomp.get("mode", "allowlist") != "allowlist":
        seccomp["mode"] = "allowlist"
    wanted_profile = profile or seccomp.get("profile", "default")
    if wanted_profile not in GENERATED_PROFILES:
        wanted_profile = "default"
    if "profile" in seccomp or wanted_profile != "default":
        seccomp["profile"] = wanted_profile
    _add_tmpfs(document, list(tmpfs))
    if capabilities is not None:
        caps = document.get("capabilities")
        if caps is None:
            caps = tomlkit.table()
            document["capabilities"] = caps
        caps["add"] = sorted(c.removeprefix("CAP_") for c in capabilities)
    return tomlkit.dumps(document)


def _add_tmpfs(document: Any, paths: list[str]) -> None:
    import tomlkit

    if not paths:
        return
    filesystem = document.get("filesystem")
    if filesystem is None:
        filesystem = tomlkit.table()
        document["filesystem"] = filesystem
    if "tmpfs" not in filesystem:
        # The default /tmp would be lost by writing the key: keep it explicitly.
        default = tomlkit.inline_table()
        default.update({"target": "/tmp"})
        fresh = tomlkit.array()
        fresh.append(default)
        filesystem["tmpfs"] = fresh
    entries = filesystem["tmpfs"]
    present = {str(entry.get("target")) for entry in entries}
    for path in paths:
        if path in present:
            continue
        entry = tomlkit.inline_table()
        entry.update({"target": path})
        entries.append(entry)
    if len(entries) > 1:
        entries.multiline(True)


def text_diff(old: str, new: str, name: str) -> str:
    """A unified diff of the manifest before and after, for the user to read."""
    return "".join(difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True),
        fromfile=f"{name} (before)", tofile=f"{name} (learned)"))


def syscall_list_diff(old: Iterable[str] | None, new: Iterable[str]) -> list[str]:
    """`+ name` / `- name` lines between an earlier learned list and the new one."""
    before, after = set(old or ()), set(new)
    return [f"+ {n}" for n in sorted(after - before)] + [f"- {n}" for n in sorted(before - after)]

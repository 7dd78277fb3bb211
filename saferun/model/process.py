"""A process as the kernel sees it: the facts that prove a container's controls are in force.

A container's configuration says what docker was asked for; the kernel's view of the
process says what it got. `/proc/PID/status` gives the effective and bounding capability
sets, NoNewPrivs and the seccomp mode; `/proc/PID/uid_map` whether a user namespace remaps
root; `/proc/PID/mountinfo` how `/` and the bind mounts are mounted (read-only, shared).

Pure: the parsers take the text of those files (read by saferun.engine.proc, the edge)
and are tested on text.
"""

from __future__ import annotations

from dataclasses import dataclass

from saferun.model.capabilities import CAPABILITY_BITS

SECCOMP_MODES = {0: "disabled", 1: "strict", 2: "filter"}


@dataclass(frozen=True)
class MountInfo:
    mount_point: str
    root: str  # the path inside the source filesystem that is mounted here
    options: frozenset[str]  # per-mount options (ro/rw, nosuid...)
    optional: tuple[str, ...]  # shared:N, master:N, propagate_from:N, unbindable
    fstype: str
    source: str

    @property
    def read_only(self) -> bool:
        return "ro" in self.options

    @property
    def shared(self) -> bool:
        return any(field.startswith("shared:") for field in self.optional)


@dataclass(frozen=True)
class ProcFacts:
    pid: int
    cap_eff: int
    cap_bnd: int
    no_new_privs: bool
    seccomp: int  # 0 disabled, 1 strict, 2 filter
    uids: tuple[int, ...]  # real, effective, saved, filesystem
    uid_map: tuple[tuple[int, int, int], ...]  # (inside, outside, count)
    mounts: tuple[MountInfo, ...]

    @property
    def host_uid(self) -> int:
        """The host uid of the process's real uid, through uid_map."""
        uid = self.uids[0] if self.uids else 0
        for inside, outside, count in self.uid_map:
            if inside <= uid < inside + count:
                return outside + uid - inside
        return uid

    @property
    def remapped(self) -> bool:
        return self.uid_map != ((0, 0, 4294967295),)

    def mount(self, point: str) -> MountInfo | None:
        found = [m for m in self.mounts if m.mount_point == point]
        return found[-1] if found else None  # the last one mounted there is the visible one


def cap_names(mask: int) -> frozenset[str]:
    return frozenset(name for name, bit in CAPABILITY_BITS.items() if mask >> bit & 1)


def parse_status(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def parse_uid_map(text: str) -> tuple[tuple[int, int, int], ...]:
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            rows.append((int(parts[0]), int(parts[1]), int(parts[2])))
    return tuple(rows)


def _unescape(path: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040...)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        path = path.replace(code, char)
    return path


def parse_mountinfo(text: str) -> tuple[MountInfo, ...]:
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields or len(fields) < 7:
            continue
        dash = fields.index("-")
        mounts.append(MountInfo(
            mount_point=_unescape(fields[4]), root=_unescape(fields[3]),
            options=frozenset(fields[5].split(",")), optional=tuple(fields[6:dash]),
            fstype=fields[dash + 1] if len(fields) > dash + 1 else "",
            source=fields[dash + 2] if len(fields) > dash + 2 else ""))
    return tuple(mounts)


def facts_from_text(pid: int, status: str, uid_map: str, mountinfo: str) -> ProcFacts:
    fields = parse_status(status)
    return ProcFacts(
        pid=pid,
        cap_eff=int(fields.get("CapEff", "0"), 16),
        cap_bnd=int(fields.get("CapBnd", "0"), 16),
        no_new_privs=fields.get("NoNewPrivs", "0") == "1",
        seccomp=int(fields.get("Seccomp", "0")),
        uids=tuple(int(u) for u in fields.get("Uid", "").split()),
        uid_map=parse_uid_map(uid_map),
        mounts=parse_mountinfo(mountinfo),
    )

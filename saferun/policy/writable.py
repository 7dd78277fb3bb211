"""No silent data loss: every writable mount must be writable by the container's user.

A container that starts and then cannot write its data fails in its log, long after the
start looked fine (a broker whose volume belongs to uid 100 running as 65534; a new named
volume over a path the image lacks, which docker creates root-owned). `saferun run` judges
each writable bind mount, named volume and declared VOLUME before the start and refuses
with the exact fix instead. Pure: the owners are gathered at the edge (saferun.app.run).
"""

from __future__ import annotations

import msgspec


class MountOwner(msgspec.Struct, frozen=True):
    """Who owns the root of what a mount puts at `target`, as far as the edge could tell."""

    target: str
    what: str  # "bind /srv/data", "volume data (new: docker creates it root-owned)", ...
    uid: int
    gid: int
    mode: int
    anonymous: bool = False  # a new volume docker names itself: no SOURCE to chown first


def can_write(uid: int, gids: frozenset[int], owner: MountOwner) -> bool:
    """Unix permission bits for creating a file in the directory (root always can)."""
    if uid == 0:
        return True
    if owner.uid == uid:
        return bool(owner.mode & 0o200) and bool(owner.mode & 0o100)
    if owner.gid in gids:
        return bool(owner.mode & 0o020) and bool(owner.mode & 0o010)
    return bool(owner.mode & 0o002) and bool(owner.mode & 0o001)


def unwritable(user: str, owners: list[MountOwner],
               extra_gids: frozenset[int] = frozenset()) -> list[str]:
    """One sentence per mount the user cannot write, naming the fix."""
    uid_text, _, gid_text = user.partition(":")
    if not uid_text.isdigit():
        return []  # a named user: docker resolves it in the image; judged by the image probe
    uid = int(uid_text)
    gid = int(gid_text) if gid_text.isdigit() else uid
    problems = []
    for owner in owners:
        if can_write(uid, frozenset({gid}) | extra_gids, owner):
            continue
        as_owner = (f", run as its owner with --user {owner.uid}:{owner.gid}"
                    if owner.uid != 0 else "")
        give = (f"mount a named volume there instead, given to the app's user first "
                f"(`docker run --rm -v NAME:/v --user 0 IMAGE chown {uid}:{gid} /v`, then "
                f"-v NAME:{owner.target})" if owner.anonymous else
                f"give it to the app's user (`chown {uid}:{gid}` the host directory, or for a "
                f"volume `docker run --rm -v SOURCE:/v --user 0 IMAGE chown {uid}:{gid} /v`)")
        problems.append(
            f"{owner.target}: the container user {uid}:{gid} cannot write {owner.what} "
            f"(owned by {owner.uid}:{owner.gid}, mode {owner.mode & 0o7777:04o}); fix: "
            f"{give}{as_owner}, or mount it read-only")
    return problems


def hidden_volumes(volumes: tuple[str, ...], tmpfs: tuple[str, ...]) -> list[str]:
    """One warning per VOLUME of the image that a tmpfs replaces (same target: docker then
    mounts no anonymous volume there; a tmpfs above it does not stop the volume). What the
    app writes there is in memory, lost when the container stops: said, never silent."""
    covered = {t.rstrip("/") or "/" for t in tmpfs}
    return [f"tmpfs {path} replaces the image's VOLUME {path}: docker mounts no volume there, "
            "so what the app writes there is in memory and lost when the container stops; "
            f"to keep it, mount a volume at {path} instead (-v NAME:{path}, or a "
            "filesystem.mounts entry)"
            for path in (v.rstrip("/") or "/" for v in volumes) if path in covered]

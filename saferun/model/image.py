"""What an image decides about running it: its config and the few files that matter.

Filled at the edge (saferun.engine.image_probe) and judged in the core
(saferun.inputs.image_defaults): the user the image runs as, the users it knows, the
directories it declares as VOLUMEs and who owns them, the directories its server writes
(pid files, caches, sockets), and the entrypoint script that may drop privileges itself.
"""

from __future__ import annotations

import msgspec


class PathFact(msgspec.Struct, frozen=True):
    """One path inside the image, as `docker cp` reports it."""

    path: str
    uid: int
    gid: int
    mode: int  # permission bits, e.g. 0o755
    is_dir: bool
    entries: int = 0  # for a directory: how many entries are below it (0 = empty)


class ImageProbe(msgspec.Struct, frozen=True):
    image_id: str
    user: str = ""  # the image's USER ("" = root)
    volumes: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    workdir: str = ""
    exposed_ports: tuple[str, ...] = ()  # "6379/tcp"
    passwd: str = ""  # /etc/passwd
    group: str = ""  # /etc/group
    paths: tuple[PathFact, ...] = ()  # the volumes and the directories under /var and /run
    entrypoint_text: str = ""  # the entrypoint script (first 64 KiB), "" when not a script

    def path(self, path: str) -> PathFact | None:
        wanted = path.rstrip("/") or "/"
        return next((p for p in self.paths if p.path == wanted), None)


class Account(msgspec.Struct, frozen=True):
    name: str
    uid: int
    gid: int


def parse_passwd(text: str) -> tuple[Account, ...]:
    """name:x:uid:gid:... lines; malformed lines are skipped (the image's own file)."""
    found = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 4 and parts[2].isdigit() and parts[3].isdigit():
            found.append(Account(parts[0], int(parts[2]), int(parts[3])))
    return tuple(found)


def parse_group(text: str) -> dict[str, int]:
    groups = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            groups[parts[0]] = int(parts[2])
    return groups

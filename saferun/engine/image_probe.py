"""Probe an image for what it decides about running it (the edge; judged by inputs.image_defaults).

The config comes from `GET /images/{ref}/json`. The files come from a container that is
created and never started (`docker create`), read with `docker cp CONTAINER:PATH -` (a tar
on standard output, with each entry's owner and mode) and removed again: /etc/passwd,
/etc/group, the entrypoint script, every declared VOLUME and the directories under /var
and /run. Files are read once per image id and kept in the user's cache directory, so a
repeated start of the same image pays only the config lookup.
"""

from __future__ import annotations

import io
import json
import os
from typing import TYPE_CHECKING, Any

from saferun.engine.api import EngineSession
from saferun.errors import SaferunError
from saferun.model.image import ImageProbe, PathFact

if TYPE_CHECKING:  # tarfile is read only when the files are not cached yet
    import tarfile

_FORMAT = 1
_MAX_TEXT = 64 << 10
_TREES = ("/var", "/run")
_MAX_TREE_BYTES = 256 << 20


def probe_image(reference: str, session: EngineSession | None = None) -> ImageProbe | None:
    """The image's facts, or None when the engine does not have the image."""
    session = session or EngineSession()
    inspected = session.image_inspect(reference)
    if inspected is None:
        return None
    image_id = str(inspected.get("Id") or "")
    config = inspected.get("Config") or {}
    cached = _read_cache(image_id)
    files = cached if cached is not None else _read_files(reference, config)
    if cached is None and image_id:
        _write_cache(image_id, files)
    return ImageProbe(
        image_id=image_id,
        user=str(config.get("User") or ""),
        volumes=tuple(sorted(config.get("Volumes") or {})),
        entrypoint=tuple(config.get("Entrypoint") or ()),
        cmd=tuple(config.get("Cmd") or ()),
        workdir=str(config.get("WorkingDir") or ""),
        exposed_ports=tuple(sorted(config.get("ExposedPorts") or {})),
        passwd=files["passwd"],
        group=files["group"],
        paths=tuple(PathFact(**p) for p in files["paths"]),
        entrypoint_text=files["entrypoint_text"],
    )


def _read_files(reference: str, config: dict[str, Any]) -> dict[str, Any]:
    from saferun.engine.docker_cli import docker

    created = docker("create", "--network", "none", "--entrypoint", "/saferun-probe",
                     "--label", "io.saferun.probe=1", reference, timeout=60)
    container = created.stdout.strip()
    try:
        passwd = _text(_copy_out(container, "/etc/passwd"))
        group = _text(_copy_out(container, "/etc/group"))
        script = ""
        entrypoint = list(config.get("Entrypoint") or config.get("Cmd") or [])
        if entrypoint and entrypoint[0].startswith("/"):
            script = _script(_copy_out(container, entrypoint[0]))
        elif entrypoint:
            for directory in ("/usr/local/bin", "/usr/bin", "/bin"):
                found = _script(_copy_out(container, f"{directory}/{entrypoint[0]}"))
                if found:
                    script = found
                    break
        paths: dict[str, dict[str, Any]] = {}
        for root in (*sorted(config.get("Volumes") or {}), *_TREES):
            for fact in _tree(_copy_out(container, root), root):
                paths.setdefault(fact["path"], fact)
    finally:
        docker("rm", "-f", "-v", container, timeout=60, check=False)
    return {"passwd": passwd, "group": group, "entrypoint_text": script,
            "paths": sorted(paths.values(), key=lambda p: p["path"])}


def _copy_out(container: str, path: str) -> bytes:
    """`docker cp CONTAINER:PATH -`: a tar, or b"" when the path does not exist."""
    from saferun.engine.docker_cli import docker

    result = docker("cp", f"{container}:{path}", "-", timeout=120, check=False, text=False)
    if result.returncode != 0:
        return b""
    data = result.stdout
    if len(data) > _MAX_TREE_BYTES:
        raise SaferunError(f"image probe: {path} is larger than {_MAX_TREE_BYTES >> 20} MiB")
    return bytes(data)


def _members(data: bytes) -> list[tarfile.TarInfo]:
    import tarfile

    if not data:
        return []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            return tar.getmembers()
    except tarfile.TarError:
        return []


def _text(data: bytes) -> str:
    import tarfile

    if not data:
        return ""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar.getmembers():
            if member.isfile():
                handle = tar.extractfile(member)
                if handle is not None:
                    return handle.read(_MAX_TEXT).decode("utf-8", "replace")
    return ""


def _script(data: bytes) -> str:
    text = _text(data)
    return text if text.startswith("#!") else ""


def _tree(data: bytes, root: str) -> list[dict[str, Any]]:
    """Directories of the copied tree (and the root itself), with owner, mode and entries.

    `docker cp` names the entries after the last part of PATH (`var/lib/...` for /var)."""
    members = _members(data)
    if not members:
        return []
    top = members[0].name.split("/")[0]
    parent = os.path.dirname(root.rstrip("/")) or "/"
    counts: dict[str, int] = {}
    facts = []
    for member in members:
        inside = os.path.join(parent, member.name)
        folder = os.path.dirname(inside)
        counts[folder] = counts.get(folder, 0) + 1
        if member.isdir() or member.name == top:
            facts.append({"path": inside.rstrip("/") or "/", "uid": member.uid,
                          "gid": member.gid, "mode": member.mode & 0o7777,
                          "is_dir": member.isdir()})
    for fact in facts:
        fact["entries"] = counts.get(str(fact["path"]), 0)
    return facts


def _cache_file(image_id: str) -> str | None:
    if not image_id.startswith("sha256:") or not image_id[7:].isalnum():
        return None
    from saferun.engine.files import cache_dir

    return str(cache_dir() / "images" / f"{image_id[7:]}.json")


def _read_cache(image_id: str) -> dict[str, Any] | None:
    path = _cache_file(image_id)
    if path is None:
        return None
    try:
        info = os.stat(path)
        if info.st_uid != os.getuid():  # never trust an entry another user could have written
            return None
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return None
    return dict(data["files"])


def _write_cache(image_id: str, files: dict[str, Any]) -> None:
    path = _cache_file(image_id)
    if path is None:
        return
    from pathlib import Path

    from saferun.engine.files import private_dir, write_atomic

    try:
        private_dir(Path(path).parent)
        write_atomic(Path(path), json.dumps({"format": _FORMAT, "files": files}).encode(),
                     mode=0o600)
    except (OSError, SaferunError):
        pass  # a cache that cannot be written costs time, not correctness

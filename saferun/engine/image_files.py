"""Gather an image's facts: config and history from the engine, a filesystem summary streamed.

`docker save` (the engine's `GET /images/{name}/get`) yields a tar of layer tars. Both
levels are read with tarfile in stream mode (`r|`): each byte is read once, in order,
nothing is unpacked to disk, and no file content is kept (a small .pem/.key file is read to
look for a private key block, then dropped).

The layers do not arrive in layer order: docker writes the export from a directory, so
they come sorted by name, and `manifest.json`, which gives the order, comes last. So each
layer is summarised on its own as it streams by: its noteworthy entries (setuid/setgid
files, credential files, shells, package managers, compilers), its deletions (`.wh.NAME`
whiteouts and `.wh..wh..opq` opaque directories), and a 64-bit hash of every path it
contains (8 bytes per path, sorted for binary search). At the end the summaries are
merged in manifest order: a layer's deletions and its own entries at the same path hide
what lower layers had there, so a file a later layer deleted, or replaced with an ordinary
one (`chmod u-s`), is not reported. Memory is the noteworthy entries plus 8 bytes per
path (about 60 bytes per path of the largest layer while its hashes are sorted), whatever
the size of the files.

The streaming logic (`summarise_save_stream`) takes any byte stream and is tested with
tars built in memory; `gather_facts` is the edge that asks the engine (saferun.engine.api).
"""

from __future__ import annotations

import json
import posixpath
import re
import tarfile
from array import array
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from saferun.errors import InspectError, SaferunError
from saferun.policy.image_rules import (
    KEY_SNIFF_BYTES,
    KEY_SUFFIXES,
    FileFact,
    FilesystemSummary,
    ImageFacts,
    facts_from_config,
    secret_file,
    tool_category,
)

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY(?: BLOCK)?-----")


@dataclass
class _Layer:
    """What one layer tar holds, for the merge: never the list of its paths as text."""

    entries: list[tuple[str, FileFact]] = field(default_factory=list)  # (category, fact)
    deleted: list[str] = field(default_factory=list)  # whiteouts: the path and what is below
    opaque: list[str] = field(default_factory=list)  # directories whose lower content is gone
    hashes: array[int] = field(default_factory=lambda: array("q"))
    files: int = 0

    def contains(self, path: str) -> bool:
        index = bisect_left(self.hashes, hash(path))
        return index < len(self.hashes) and self.hashes[index] == hash(path)


def _path(name: str) -> str:
    """`./etc/passwd`, `etc/passwd` -> `/etc/passwd`."""
    return posixpath.normpath("/" + name)


def _summarise_layer(stream: IO[bytes]) -> _Layer:
    """One layer tar, read in stream mode."""
    layer = _Layer()
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        while (member := tar.next()) is not None:
            # tarfile keeps every TarInfo it has read in `members`, even in stream mode:
            # forget them, or memory grows with the number of files in the layer.
            tar.members.clear()  # type: ignore[attr-defined]
            layer.files += 1
            path = _path(member.name)
            directory, base = posixpath.split(path)
            if base == OPAQUE:
                layer.opaque.append(directory)
                continue
            if base.startswith(WHITEOUT):
                layer.deleted.append(posixpath.join(directory, base[len(WHITEOUT):]))
                continue
            layer.hashes.append(hash(path))
            if member.isdir():
                continue
            kind = "symlink" if member.issym() else "hardlink" if member.islnk() else "file"
            if kind == "file" and not member.isreg():
                continue  # devices, fifos
            mode = member.mode if kind != "symlink" else 0
            if mode & 0o6000 and kind != "symlink":
                layer.entries.append(("setuid", FileFact(path, mode, kind)))
            what = secret_file(path)
            if what is None and kind == "file" and path.endswith(KEY_SUFFIXES) \
                    and member.size <= KEY_SNIFF_BYTES:
                handle = tar.extractfile(member)
                if handle is not None and _PRIVATE_KEY.search(handle.read(KEY_SNIFF_BYTES)):
                    what = "private key"
            if what is not None and kind != "symlink":
                layer.entries.append(("secret", FileFact(path, mode, kind, secret=what)))
            category = tool_category(path)
            if category is not None:
                layer.entries.append((f"tool:{category}", FileFact(path, mode, kind)))
    layer.hashes = array("q", sorted(layer.hashes))
    return layer


def _under(path: str, directory: str) -> bool:
    return path.startswith(directory.rstrip("/") + "/")


def merge_layers(layers: list[_Layer]) -> FilesystemSummary:
    """Apply the layers bottom to top: each hides what lower layers had where it writes."""
    state: dict[tuple[str, str], FileFact] = {}  # (category, path) -> fact
    whiteouts = 0
    for layer in layers:
        whiteouts += len(layer.deleted) + len(layer.opaque)
        for key in list(state):
            path = key[1]
            if (layer.contains(path)
                    or any(path == d or _under(path, d) for d in layer.deleted)
                    or any(_under(path, d) for d in layer.opaque)):
                del state[key]
        for category, fact in layer.entries:
            state[(category, fact.path)] = fact
    ordered = sorted(state.items(), key=lambda item: (item[0][1], item[0][0]))
    return FilesystemSummary(
        setuid=tuple(f for (c, _), f in ordered if c == "setuid"),
        secrets=tuple(f for (c, _), f in ordered if c == "secret"),
        tools=tuple((c[5:], f.path) for (c, _), f in ordered if c.startswith("tool:")),
        files=sum(layer.files for layer in layers), whiteouts=whiteouts)


def _layer_order(manifest: Any) -> list[str]:
    if isinstance(manifest, list) and manifest and isinstance(manifest[0], dict):
        layers = manifest[0].get("Layers")
        if isinstance(layers, list):
            return [str(x) for x in layers]
    raise InspectError("the image export's manifest.json does not list its layers")


def summarise_save_stream(stream: IO[bytes], total: int = 0,
                          on_layer: Callable[[int, int], None] | None = None
                          ) -> FilesystemSummary:
    """Walk `docker save` output (legacy or OCI layout) in one pass; keep only the summary.

    `on_layer(done, total)` after each layer (`total`: the layer count, from the config)."""
    layers: dict[str, _Layer] = {}
    order: list[str] | None = None
    if on_layer is not None and total:
        on_layer(0, total)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as outer:
            while (member := outer.next()) is not None:
                if not member.isreg():
                    continue
                name = member.name
                if name == "manifest.json":
                    handle = outer.extractfile(member)
                    order = _layer_order(json.loads(handle.read()) if handle else None)
                    continue
                is_blob = name.startswith("blobs/")
                if not (is_blob or name.endswith("/layer.tar") or name.endswith(".tar")):
                    continue
                handle = outer.extractfile(member)
                if handle is None:
                    continue
                try:
                    layers[name] = _summarise_layer(handle)
                    if on_layer is not None:
                        on_layer(len(layers), max(total, len(layers)))
                except tarfile.ReadError as exc:
                    if is_blob:
                        continue  # an OCI config, manifest or index blob: not a layer
                    raise InspectError(f"layer {name} of the image is not a readable tar: "
                                       f"{exc}") from None
    except tarfile.ReadError as exc:
        raise InspectError(f"the engine's image export is not a readable tar: {exc}") from None
    if order is None:
        raise InspectError("the image export has no manifest.json, so its layer order is unknown")
    missing = [name for name in order if name not in layers]
    if missing:
        raise InspectError(f"the image export lacks layer(s) its manifest lists: {missing}")
    return merge_layers([layers[name] for name in order])


def gather_facts(reference: str, *, filesystem: bool,
                 on_layer: Callable[[int, int], None] | None = None) -> ImageFacts:
    """The image's facts from the local engine; the filesystem walk only when asked."""
    from saferun.engine.api import EngineSession, image_save_stream

    session = EngineSession()
    inspect = session.image_inspect(reference)
    if inspect is None:
        raise SaferunError(f"image {reference!r} is not in the local engine",
                           fix=f"build or pull {reference!r} first")
    history = session.image_history(reference)
    summary = None
    if filesystem:
        total = len((inspect.get("RootFS") or {}).get("Layers") or ())
        with image_save_stream(reference) as stream:
            summary = summarise_save_stream(stream, total, on_layer)
    return facts_from_config(reference, inspect, history, summary)

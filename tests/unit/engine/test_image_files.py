"""Streaming `docker save` output: whiteouts, setuid bits, credential files, bounded memory.

The tars are built in memory in docker's two layouts (legacy `<id>/layer.tar` +
manifest.json, and OCI `blobs/sha256/...`) and handed over through a reader that cannot
seek, so a walk that needed random access would fail here.
"""

from __future__ import annotations

import io
import json
import tarfile
import tracemalloc
from collections.abc import Iterable

import pytest

from saferun.engine.image_files import summarise_save_stream
from saferun.errors import InspectError

Entry = tuple[str, str, int, bytes]  # (name, kind: file|dir|sym|link, mode, content/target)


def layer(entries: Iterable[Entry]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, kind, mode, data in entries:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind in ("sym", "link"):
                info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
                info.linkname = data.decode()
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def save(layers: list[bytes], *, oci: bool = False, order: list[int] | None = None) -> bytes:
    """A `docker save` tar: layers in stream order, manifest.json last (as docker writes it)."""
    out = io.BytesIO()
    names = [f"blobs/sha256/{i:064x}" if oci else f"{i:064x}/layer.tar"
             for i in range(1, len(layers) + 1)]
    with tarfile.open(fileobj=out, mode="w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        if oci:
            add(f"blobs/sha256/{0:064x}", json.dumps({"architecture": "amd64"}).encode())
        for name, data in zip(names, layers, strict=True):
            add(name, data)
        listed = [names[i] for i in order] if order is not None else names
        add("manifest.json", json.dumps([{"Config": "c.json", "Layers": listed}]).encode())
    return out.getvalue()


class OneWay(io.RawIOBase):
    """A readable stream that refuses to seek, like a socket or a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)


def walk(data: bytes):  # type: ignore[no-untyped-def]
    return summarise_save_stream(io.BufferedReader(OneWay(data)))


BASE = layer([
    ("bin", "dir", 0o755, b""), ("bin/busybox", "file", 0o755, b"\x7fELF"),
    ("bin/sh", "sym", 0o777, b"busybox"), ("bin/su", "file", 0o4755, b"\x7fELF"),
    ("usr/bin/passwd", "file", 0o2755, b"\x7fELF"), ("usr/bin/apt-get", "file", 0o755, b"x"),
    ("root/.ssh/id_rsa", "file", 0o600, b"key"),
    ("etc/ssl/private/server.key", "file", 0o600,
     b"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"),
    ("etc/ssl/certs/ca.pem", "file", 0o644,
     b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
    ("app/.docker/config.json", "file", 0o600, b'{"auths": {}}'),
])


@pytest.mark.parametrize("oci", [False, True])
def test_one_layer_summary(oci: bool) -> None:
    summary = walk(save([BASE], oci=oci))
    assert [(f.path, f.mode) for f in summary.setuid] == [("/bin/su", 0o4755),
                                                          ("/usr/bin/passwd", 0o2755)]
    assert {f.path: f.secret for f in summary.secrets} == {
        "/root/.ssh/id_rsa": "SSH private key",
        "/etc/ssl/private/server.key": "private key",
        "/app/.docker/config.json": "Docker registry credentials",
    }  # the certificate is not a secret
    assert set(summary.tools) == {("shell", "/bin/busybox"), ("shell", "/bin/sh"),
                                  ("package-manager", "/usr/bin/apt-get")}
    assert summary.files == 10 and summary.whiteouts == 0


def test_whiteouts_hide_deleted_files() -> None:
    upper = layer([
        ("root/.ssh/.wh.id_rsa", "file", 0o600, b""),  # rm /root/.ssh/id_rsa
        ("bin/.wh.su", "file", 0o600, b""),
        ("usr/bin/.wh.apt-get", "file", 0o600, b""),
    ])
    summary = walk(save([BASE, upper]))
    assert "/bin/su" not in {f.path for f in summary.setuid}
    assert "/root/.ssh/id_rsa" not in {f.path for f in summary.secrets}
    assert ("package-manager", "/usr/bin/apt-get") not in summary.tools
    assert summary.whiteouts == 3


def test_deleted_directory_takes_its_contents() -> None:
    upper = layer([("root/.wh..ssh", "file", 0o600, b""), ("etc/ssl/.wh.private", "file", 0, b"")])
    summary = walk(save([BASE, upper]))
    assert {f.path for f in summary.secrets} == {"/app/.docker/config.json"}


def test_opaque_directory_hides_earlier_layers_but_not_its_own() -> None:
    upper = layer([
        ("usr/bin/.wh..wh..opq", "file", 0o600, b""),
        ("usr/bin/gcc", "file", 0o755, b"x"),
    ])
    summary = walk(save([BASE, upper]))
    assert "/usr/bin/passwd" not in {f.path for f in summary.setuid}
    tools = dict((p, c) for c, p in summary.tools)
    assert tools.get("/usr/bin/gcc") == "compiler" and "/usr/bin/apt-get" not in tools


def test_opaque_marker_after_its_siblings_keeps_them() -> None:
    upper = layer([("usr/bin/gcc", "file", 0o755, b"x"), ("usr/bin/.wh..wh..opq", "file", 0, b"")])
    tools = {p for _, p in walk(save([BASE, upper])).tools}
    assert "/usr/bin/gcc" in tools and "/usr/bin/apt-get" not in tools


def test_replaced_file_loses_its_setuid_bit() -> None:
    upper = layer([("bin/su", "file", 0o755, b"\x7fELF")])  # chmod u-s /bin/su
    assert "/bin/su" not in {f.path for f in walk(save([BASE, upper])).setuid}


def test_later_layer_can_add_back_a_deleted_file() -> None:
    middle = layer([("bin/.wh.su", "file", 0, b"")])
    top = layer([("bin/su", "file", 0o4711, b"x")])
    assert [f.mode for f in walk(save([BASE, middle, top])).setuid if f.path == "/bin/su"] \
        == [0o4711]


def test_layers_merge_in_manifest_order_not_stream_order() -> None:
    """docker writes layers sorted by name; manifest.json (last) says which is on top."""
    upper = layer([("bin/.wh.su", "file", 0, b"")])
    assert "/bin/su" not in {f.path for f in walk(save([BASE, upper])).setuid}
    # Same stream, but the manifest puts the whiteout layer at the bottom: su survives.
    assert "/bin/su" in {f.path for f in walk(save([BASE, upper], order=[1, 0])).setuid}


def test_export_without_manifest_or_with_a_missing_layer_is_refused() -> None:
    def export(manifest: list[str] | None) -> bytes:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            members = [(f"{1:064x}/layer.tar", BASE)]
            if manifest is not None:
                members.append(("manifest.json", json.dumps([{"Layers": manifest}]).encode()))
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return raw.getvalue()

    assert walk(export([f"{1:064x}/layer.tar"])).setuid
    with pytest.raises(InspectError, match="lacks layer"):
        walk(export([f"{1:064x}/layer.tar", f"{2:064x}/layer.tar"]))
    with pytest.raises(InspectError, match="no manifest.json"):
        walk(export(None))


def test_not_a_tar_is_a_clear_error() -> None:
    with pytest.raises(InspectError, match="not a readable tar"):
        walk(b"this is not a tar" * 100)


def test_memory_stays_bounded_by_what_is_noteworthy() -> None:
    """20 000 ordinary files (4 MB of content) add nothing to what the walk keeps."""
    many = layer((f"srv/data/{i:05d}.txt", "file", 0o644, b"x" * 200) for i in range(20_000))
    data = save([BASE, many])
    tracemalloc.start()
    summary = walk(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert summary.files == 20_010
    assert len(summary.setuid) + len(summary.secrets) + len(summary.tools) == 8
    assert peak < 2 << 20, f"peak {peak} bytes while walking {len(data)} bytes"

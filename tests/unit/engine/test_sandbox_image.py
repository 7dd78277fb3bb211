"""The default sandbox image: made from a static busybox, refused for a dynamic one."""

from __future__ import annotations

import io
import struct
import tarfile

import pytest

from saferun.engine import sandbox_image
from saferun.errors import RequirementUnmet
from saferun.model.stack import DEFAULT_SANDBOX_IMAGE


def _elf(*program_headers: int) -> bytes:
    """A 64-bit little-endian ELF header with program headers of the given types."""
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x20, 64)
    struct.pack_into("<HH", header, 0x36, 56, len(program_headers))
    table = b"".join(struct.pack("<I", kind) + bytes(52) for kind in program_headers)
    return bytes(header) + table


def test_static_and_dynamic_executables_are_told_apart() -> None:
    assert sandbox_image.is_static_elf(_elf(1, 1, 4))  # PT_LOAD, PT_LOAD, PT_NOTE
    assert not sandbox_image.is_static_elf(_elf(6, 3, 1))  # PT_PHDR, PT_INTERP: dynamic
    assert not sandbox_image.is_static_elf(b"#!/bin/sh\n")
    assert not sandbox_image.is_static_elf(_elf()[:40])


def test_the_image_holds_busybox_and_sleep_only() -> None:
    with tarfile.open(fileobj=io.BytesIO(sandbox_image.image_tar(b"BUSYBOX"))) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"bin", "bin/busybox", "bin/sleep"}
        assert members["bin/busybox"].mode == 0o755 and members["bin/busybox"].uid == 0
        assert members["bin/sleep"].issym() and members["bin/sleep"].linkname == "busybox"
        assert tar.extractfile("bin/busybox").read() == b"BUSYBOX"  # type: ignore[union-attr]


class _Session:
    def __init__(self, present: bool) -> None:
        self.present = present

    def image_present(self, reference: str) -> bool:
        return self.present


def test_another_image_or_a_present_one_is_left_to_the_engine(monkeypatch) -> None:
    monkeypatch.setattr(sandbox_image, "HOST_BUSYBOX", "/nonexistent/busybox")
    sandbox_image.ensure_sandbox_image("busybox:1.36", _Session(present=False))
    sandbox_image.ensure_sandbox_image(DEFAULT_SANDBOX_IMAGE, _Session(present=True))


def test_a_missing_or_dynamic_busybox_refuses_with_the_fix(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    monkeypatch.setattr(sandbox_image, "HOST_BUSYBOX", str(tmp_path / "busybox"))
    with pytest.raises(RequirementUnmet, match="No such file") as missing:
        sandbox_image.ensure_sandbox_image(DEFAULT_SANDBOX_IMAGE, _Session(present=False))
    assert "busybox-static" in missing.value.render() and "sandbox_image" in missing.value.render()
    (tmp_path / "busybox").write_bytes(_elf(3, 1))
    with pytest.raises(RequirementUnmet, match="not a static executable"):
        sandbox_image.ensure_sandbox_image(DEFAULT_SANDBOX_IMAGE, _Session(present=False))


def test_a_remote_engine_cannot_use_this_hosts_busybox(monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://192.0.2.1:2376")
    with pytest.raises(RequirementUnmet, match="not on this host"):
        sandbox_image.ensure_sandbox_image(DEFAULT_SANDBOX_IMAGE, _Session(present=False))

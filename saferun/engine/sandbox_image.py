"""The default sandbox image, made on the engine from its host's static busybox.

A sandbox only runs `sleep` (saferun.render.sandbox), so its image need hold nothing but
that. Pulling one (busybox, docker's pause) needs a registry, which many hosts cannot reach;
the engine's host usually has a static busybox (Debian: busybox-static), which `saferun
learn` already relies on. When the stack uses the default image and the engine lacks it,
`up` imports a one-file image: /bin/busybox and /bin/sleep linked to it. Once per engine;
it stays, like Kubernetes' pause image, and `docker rmi saferun-sandbox:1` removes it.
"""

from __future__ import annotations

import io
import struct
import subprocess
import tarfile
from typing import Any

from saferun.engine.reaper import HOST_BUSYBOX
from saferun.errors import RequirementUnmet
from saferun.model.stack import DEFAULT_SANDBOX_IMAGE

IMAGE_LABEL = "io.saferun.sandbox-image=host-busybox"
_FIX = ("install a static busybox on the engine's host (Debian: apt-get install "
        "busybox-static), or set [stack] sandbox_image to an image with `sleep` that the "
        "engine has")


def ensure_sandbox_image(image: str, session: Any) -> None:
    """Make the default sandbox image on a local engine that lacks it; any other image is
    the engine's to have or pull. RequirementUnmet, before anything of the stack exists,
    when it cannot be made."""
    from saferun.engine.api import local_socket_path
    from saferun.engine.docker_cli import docker_cli, error_text

    if image != DEFAULT_SANDBOX_IMAGE or session.image_present(image):
        return
    if local_socket_path() is None:
        raise RequirementUnmet(f"the default sandbox image {image} is made from this host's "
                               "busybox, and the engine is not on this host", fix=_FIX)
    try:
        with open(HOST_BUSYBOX, "rb") as handle:
            busybox = handle.read()
    except OSError as exc:
        raise RequirementUnmet(f"the default sandbox image {image} is made from "
                               f"{HOST_BUSYBOX}: {exc.strerror}", fix=_FIX) from None
    if not is_static_elf(busybox):
        raise RequirementUnmet(f"{HOST_BUSYBOX} is not a static executable, so it cannot run "
                               f"alone in the sandbox image {image}", fix=_FIX)
    result = subprocess.run([docker_cli(), "import", "--change", f"LABEL {IMAGE_LABEL}", "-",
                             image], input=image_tar(busybox), capture_output=True,
                            timeout=120, check=False)
    if result.returncode != 0:
        raise RequirementUnmet(f"cannot make the sandbox image {image}: "
                               f"{error_text(result.stderr.decode('utf-8', 'replace'))}",
                               fix=_FIX)


def image_tar(busybox: bytes) -> bytes:
    """The image's root filesystem: /bin/busybox (root's, 0755) and /bin/sleep -> busybox."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folder = tarfile.TarInfo("bin")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        binary = tarfile.TarInfo("bin/busybox")
        binary.size, binary.mode = len(busybox), 0o755
        tar.addfile(binary, io.BytesIO(busybox))
        link = tarfile.TarInfo("bin/sleep")
        link.type, link.linkname = tarfile.SYMTYPE, "busybox"
        tar.addfile(link)
    return buffer.getvalue()


_PT_INTERP = 3


def is_static_elf(data: bytes) -> bool:
    """A 64-bit little-endian ELF executable without a program interpreter (the dynamic
    loader): it runs in an image holding nothing else. Anything else: False."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return False
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    if phnum == 0 or phentsize < 4 or phoff + phnum * phentsize > len(data):
        return False
    return all(struct.unpack_from("<I", data, phoff + i * phentsize)[0] != _PT_INTERP
               for i in range(phnum))

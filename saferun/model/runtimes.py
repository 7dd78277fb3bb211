"""Container runtimes saferun knows, as data: the names a daemon may register them under."""

from __future__ import annotations

# Manifest name -> names dockerd may have in its `Runtimes` map, most common first.
RUNTIME_ALIASES: dict[str, tuple[str, ...]] = {
    "runc": ("runc", "io.containerd.runc.v2"),
    "gvisor": ("runsc", "gvisor", "runsc-kvm", "runsc-ptrace"),
    "kata": ("kata", "kata-runtime", "io.containerd.kata.v2", "kata-qemu", "kata-clh", "kata-fc"),
}

# daemon.json snippet that registers each runtime; shown when it is missing.
RUNTIME_FIX: dict[str, str] = {
    "runc": "runc ships with Docker; reinstall the engine",
    "gvisor": (
        'install gVisor (Debian: apt-get install runsc), add {"runtimes": {"runsc": {"path": '
        '"/usr/bin/runsc", "runtimeArgs": ["--network=host", "--oci-seccomp"]}}} to '
        "/etc/docker/daemon.json and reload dockerd (kill -HUP); --network=host is for hosts "
        "where runsc's sandbox network fails in the root network namespace, --oci-seccomp "
        "applies the container's seccomp profile inside the sandbox (docs/runtimes.md)"
    ),
    "kata": (
        'install Kata Containers, add {"runtimes": {"kata": {"runtimeType": '
        '"io.containerd.kata.v2"}}} to /etc/docker/daemon.json and reload dockerd; '
        "Kata needs /dev/kvm"
    ),
}

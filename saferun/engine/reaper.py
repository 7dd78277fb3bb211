"""Containers that must not outlive the process that started them (learning runs).

`saferun learn` and `saferun why --manifest` start containers detached and remove them when
they are done, but a `finally` does not run when the process is killed (SIGKILL, the OOM
killer, a lost terminal). So before the first such container is started, a small watchdog
process is spawned in its own session (a signal to our process group does not reach it).
It holds the read end of a pipe whose only write end is ours: when this process ends, on
any path, the kernel closes that end, the watchdog reads end-of-file and removes every
container whose name carries this process's token, then exits. While we run it only waits.

Names are `saferun-learn-<token>-<n>`: the token is random per process, so the watchdog of
one learner never touches another's containers.

Should the watchdog die too (both killed at once: a cgroup or session killed whole), the
next learner removes the orphans before it starts its own: a learning container whose token
no live watchdog on this host carries (`sweep_orphans`). Only on a local engine, where every
learner's watchdog runs on this host.

And so that no container depends on either, each learning container also has a lifetime of
its own, kept by the engine: it joins the pid namespace of a small lifetime container
(`lifetime_argv`: the engine host's static busybox sleeping under docker's init, named
`<name>-life`, removed by the engine when it ends). When that sleep ends, its init exits,
and the kernel kills every process of the namespace: the learning container's app with it.
The lifetime container has a cgroup of its own, so none of its calls reach the recording.
"""

from __future__ import annotations

import itertools
import math
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass

NAME_PREFIX = "saferun-learn-"
LIFETIME_SUFFIX = "-life"
# On the engine's host (Debian: busybox-static); bound read-only into the lifetime container.
HOST_BUSYBOX = "/bin/busybox"
_BUSYBOX_TARGET = "/saferun-lifetime/busybox"

# Run by `python -c`: only the standard library, nothing of saferun (which may be edited or
# uninstalled while a learner runs).
_WATCHDOG = """\
import os, subprocess, sys
docker, pattern = sys.argv[1], sys.argv[2]
while os.read(0, 4096):
    pass
found = subprocess.run([docker, "ps", "-aq", "--filter", "name=" + pattern],
                       capture_output=True, text=True, timeout=60)
ids = found.stdout.split()
if ids:
    subprocess.run([docker, "rm", "-f", "-v", *ids], capture_output=True, timeout=120)
"""


@dataclass
class _Watchdog:
    token: str
    process: subprocess.Popen[bytes]
    counter: itertools.count[int]


_current: _Watchdog | None = None


def _live_tokens(proc: str = "/proc") -> set[str]:
    """Tokens of the watchdogs running on this host (read from their command lines)."""
    tokens = set()
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc, entry, "cmdline"), "rb") as handle:
                words = handle.read().split(b"\0")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        for word in words:
            if word.startswith(NAME_PREFIX.encode()) and word.endswith(b"-"):
                tokens.add(word[len(NAME_PREFIX):-1].decode(errors="replace"))
    return tokens


def orphans(names: list[str], live: set[str]) -> list[str]:
    """Learning containers whose learner and watchdog are both gone (pure)."""
    found = []
    for name in names:
        token, _, number = name.removeprefix(NAME_PREFIX).removesuffix(
            LIFETIME_SUFFIX).rpartition("-")
        if name.startswith(NAME_PREFIX) and token and number.isdigit() and token not in live:
            found.append(name)
    return found


def sweep_orphans(docker: str) -> list[str]:
    """Remove the learning containers no live watchdog guards; -> their names."""
    from saferun.engine.api import local_socket_path

    if local_socket_path() is None:
        return []  # a remote engine: other hosts' learners may be running
    listed = subprocess.run([docker, "ps", "-a", "--filter", f"name={NAME_PREFIX}", "--format",
                             "{{.Names}}"], capture_output=True, text=True, timeout=60,
                            check=False)
    found = orphans(listed.stdout.split(), _live_tokens())
    if found:
        subprocess.run([docker, "rm", "-f", "-v", *found], capture_output=True, timeout=120,
                       check=False)
    return found


def _spawn(docker: str) -> _Watchdog:
    sweep_orphans(docker)
    token = secrets.token_hex(6)
    process = subprocess.Popen(
        [sys.executable, "-I", "-c", _WATCHDOG, docker, f"{NAME_PREFIX}{token}-"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True)
    return _Watchdog(token, process, itertools.count(1))


def guarded_name() -> str:
    """A fresh container name that this process's watchdog removes when the process ends.

    The watchdog is started on the first call (and again if it died); the name must be
    given to `docker run --name` before the container exists.
    """
    global _current
    from saferun.engine.docker_cli import docker_cli

    if _current is None or _current.process.poll() is not None:
        _current = _spawn(docker_cli())
    return f"{NAME_PREFIX}{_current.token}-{next(_current.counter)}"


def lifetime_name(name: str) -> str:
    """The name of the lifetime container that bounds the learning container `name`."""
    return name + LIFETIME_SUFFIX


def lifetime_argv(name: str, image: str, seconds: float, *, platform: str | None = None
                  ) -> list[str]:
    """`docker run` arguments of the lifetime container of learning container `name` (pure).

    It lives `seconds`, then its init exits and the kernel kills the namespace (the learning
    container joins it with `--pid container:<this>`). The image is the app's own (it is
    there already; only the bound busybox runs); it runs as nobody with nothing to reach:
    no network, no capability, a read-only root, no health check. `--rm`: the engine removes
    it, with any volume the image declares, when the sleep ends.
    """
    argv = ["run", "-d", "--rm", "--init", "--name", lifetime_name(name),
            "--label", f"saferun.learn.lifetime={name}",
            "--network", "none", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--read-only", "--user", "65534:65534", "--workdir", "/", "--no-healthcheck",
            "--pids-limit", "8", "--memory", "32m", "--log-driver", "none",
            "--mount", f"type=bind,source={HOST_BUSYBOX},target={_BUSYBOX_TARGET},readonly",
            "--entrypoint", _BUSYBOX_TARGET]
    if platform:
        argv += ["--platform", platform]
    return [*argv, image, "sleep", str(math.ceil(seconds))]


def watchdog_pid() -> int | None:
    """The watchdog's pid (tests), or None before the first guarded name."""
    return _current.process.pid if _current is not None else None


def release() -> None:
    """End the watchdog now (it still removes whatever of ours is left): for tests, and for
    callers that want it gone before they exit."""
    global _current
    if _current is None:
        return
    watchdog, _current = _current, None
    if watchdog.process.stdin is not None:
        watchdog.process.stdin.close()
    try:
        watchdog.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.kill(watchdog.process.pid, 9)

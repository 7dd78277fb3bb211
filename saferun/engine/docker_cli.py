"""The one module that runs docker CLI subprocesses.

Everything saferun asks the engine outside the launch path's two local GETs goes through
the docker command-line client: it resolves DOCKER_HOST, docker contexts and TLS exactly
as the `docker run` that follows will. This module also hands a generated seccomp profile
to docker in an anonymous memory file (see `seccomp_argv`), the one way it ever does.

It sits on the launch path (`exec_docker_run`), so like saferun.engine.api it imports only
the standard library, and that lazily.
"""

from __future__ import annotations

import os

from saferun.errors import EngineUnavailable, RequirementUnmet

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs 2 ms here

if TYPE_CHECKING:
    import subprocess
    from typing import Any, NoReturn

# Where the path of the memfd holding the seccomp profile goes in a rendered argv.
SECCOMP_FD_PATH = "@saferun-seccomp-fd@"


def docker_cli() -> str:
    """Find docker on PATH (shutil.which, without importing shutil on the launch path)."""
    path = None
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(directory or ".", "docker")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            path = candidate
            break
    if path is None:
        raise EngineUnavailable(
            "the docker command-line client is not installed or not on PATH",
            fix="install the Docker CLI (Debian: apt-get install docker.io)",
        )
    return path


def _endpoint() -> str:
    return os.environ.get("DOCKER_HOST") or "the current docker context"


def error_text(stderr: str, fallback: str = "") -> str:
    """What docker said when a command failed: every line of the daemon's error, without
    the CLI's own "docker: " prefix and its "See 'docker run --help'." footer."""
    lines = []
    for line in stderr.strip().splitlines():
        line = line.strip()
        if not line or (line.startswith(("See 'docker", "Run 'docker")) and "--help" in line):
            continue
        lines.append(line.removeprefix("docker: "))
    return " ".join(lines) or fallback


def cli_output(args: list[str]) -> str:
    """stdout of `docker ARGS`; EngineUnavailable (with docker's last line) when it fails."""
    import subprocess

    result = subprocess.run([docker_cli(), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        from saferun.engine.remote import unreachable

        detail = (result.stderr or result.stdout).strip().splitlines()
        raise unreachable(_endpoint(), detail[-1] if detail else f"exit {result.returncode}")
    return result.stdout


def cli_json(args: list[str]) -> dict[str, Any] | None:
    """A docker CLI `inspect --format '{{json .}}'` result, or None when it fails (absent)."""
    import json

    from saferun.errors import SaferunError

    try:
        return dict(json.loads(cli_output(args)))
    except SaferunError:
        return None


def docker(*args: str, timeout: float = 60, check: bool = True,
           text: bool = True) -> subprocess.CompletedProcess[Any]:
    """`docker ARGS` with its output captured (learn, why, the image probe); RequirementUnmet
    when it fails (with `check`) or does not answer within `timeout` seconds. `text=False`
    keeps standard output as bytes (`docker cp ... -` writes a tar)."""
    import subprocess

    try:
        result = subprocess.run([docker_cli(), *args], capture_output=True, text=text,
                                timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RequirementUnmet(f"`docker {args[0]}` did not answer within {timeout:g} s") from None
    if check and result.returncode != 0:
        output = result.stderr or result.stdout
        if isinstance(output, bytes):
            output = output.decode("utf-8", "replace")
        detail = error_text(output, str(result.returncode))
        raise RequirementUnmet(f"`docker {' '.join(args[:2])}` failed: {detail}")
    return result


def seccomp_argv(argv: list[str], seccomp_profile: str | None) -> tuple[list[str], int | None]:
    """The argv for docker, with a generated seccomp profile in an anonymous memory file.

    docker inherits the file and reads it as /proc/self/fd/N: no path on disk, so no window
    in which another user could swap it. `argv` must contain the placeholder
    SECCOMP_FD_PATH where the path goes. Returns (argv, the memfd or None); argv[0] is the
    docker client found on PATH. The caller makes the fd reach docker and closes it.
    """
    fd = None
    if seccomp_profile is not None:
        fd = os.memfd_create("saferun-seccomp", 0)
        os.write(fd, seccomp_profile.encode())
        argv = [a.replace(SECCOMP_FD_PATH, f"/proc/self/fd/{fd}") for a in argv]
    else:
        argv = list(argv)
    try:
        argv[0] = docker_cli()
    except BaseException:
        if fd is not None:
            os.close(fd)
        raise
    return argv, fd


def exec_docker_run(argv: list[str], seccomp_profile: str | None) -> NoReturn:
    """Replace this process with `docker run`: its TTY, signals and exit code become ours.

    The seccomp profile is handed over as seccomp_argv describes.
    """
    argv, fd = seccomp_argv(argv, seccomp_profile)
    if fd is not None:
        os.set_inheritable(fd, True)
    os.execv(argv[0], argv)


def run_docker(argv: list[str], seccomp_profile: str | None, *,
               timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a rendered `docker run -d` line to its end (learn), output captured; the seccomp
    profile is handed over as seccomp_argv describes."""
    import subprocess

    argv, fd = seccomp_argv(argv, seccomp_profile)
    try:
        return subprocess.run(argv, capture_output=True, text=True,
                              pass_fds=() if fd is None else (fd,), timeout=timeout, check=False)
    finally:
        if fd is not None:
            os.close(fd)


def save_stream(reference: str) -> Any:
    """A context manager yielding `docker save REFERENCE`'s stdout (not held in memory)."""
    import contextlib

    @contextlib.contextmanager
    def streamed() -> Any:
        import subprocess

        process = subprocess.Popen([docker_cli(), "save", reference], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        try:
            yield process.stdout
        except BaseException:
            process.kill()
            process.communicate()
            raise
        _, err = process.communicate()
        if process.returncode != 0:
            from saferun.engine.remote import unreachable

            raise unreachable(_endpoint(), err.decode("utf-8", "replace").strip()[-300:])

    return streamed()

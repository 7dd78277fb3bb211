"""The AppArmor edge: the only module that runs `apparmor_parser` or writes profile files.

Profiles are handed to the parser as files in a fresh private directory (mode 0700, made
by mkdtemp), written under a temporary name with O_EXCL|O_NOFOLLOW and renamed into
place, so nobody else can swap, read-race or redirect them through a symlink. The parser
is called with argv lists, never through a shell.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from saferun.errors import ProfileError, RequirementUnmet, UsageError

PARSER = "apparmor_parser"
PARSER_TIMEOUT_S = 120
# Printed by the parser on every call on kernels without AppArmor; not part of any error.
_NOISE_PREFIX = "Cache read/write disabled"
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

Runner = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


def compile_argv(path: Path) -> list[str]:
    """Compile only: -Q no kernel load, -K no cache, -T no cache read. Works without AppArmor."""
    return [PARSER, "-Q", "-K", "-T", "--", str(path)]


def load_argv(path: Path) -> list[str]:
    """Load, or replace a profile of the same name (-r); -K: never trust a stale cache."""
    return [PARSER, "-r", "-K", "--", str(path)]


def parser_available() -> bool:
    return shutil.which(PARSER) is not None


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(  # argv list, never a shell
            argv, capture_output=True, text=True, check=False, timeout=PARSER_TIMEOUT_S
        )
    except FileNotFoundError:
        raise RequirementUnmet(
            f"{argv[0]} is not installed, so AppArmor profiles cannot be compiled or loaded",
            fix="install it (Debian/Ubuntu: apt-get install apparmor)",
        ) from None
    except subprocess.TimeoutExpired:
        raise ProfileError(f"{argv[0]} did not finish within {PARSER_TIMEOUT_S} s") from None


def _parser_message(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stderr + result.stdout).splitlines()
    kept = [line for line in lines if line.strip() and not line.startswith(_NOISE_PREFIX)]
    return "\n".join(kept) or f"exit status {result.returncode}"


@contextmanager
def _private_profile_file(text: str, name: str = "profile") -> Iterator[Path]:
    """Yield a file holding `text` inside a new 0700 directory; remove both afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="saferun-apparmor-"))
    try:
        final = directory / name
        _write_new(directory / f".{name}.tmp", text, mode=0o600)
        os.replace(directory / f".{name}.tmp", final)
        yield final
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _write_new(path: Path, text: str, *, mode: int) -> None:
    """Create `path` (never an existing file or symlink), write, flush to disk."""
    fd = os.open(path, _CREATE_FLAGS, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def compile_check(text: str, *, runner: Runner = _run) -> None:
    """Raise ProfileError carrying the parser's message unless `text` compiles."""
    with _private_profile_file(text) as path:
        result = runner(compile_argv(path))
    if result.returncode != 0:
        raise ProfileError(f"apparmor_parser rejected the profile:\n{_parser_message(result)}")


def load_profile(text: str, *, runner: Runner = _run) -> None:
    """Load or replace the profile in the kernel (needs root and an AppArmor kernel)."""
    with _private_profile_file(text) as path:
        result = runner(load_argv(path))
    if result.returncode != 0:
        raise RequirementUnmet(
            f"apparmor_parser could not load the profile:\n{_parser_message(result)}",
            fix="run as root on a host with AppArmor enabled, or set apparmor.enforcement = "
            '"preferred" to run without it',
        )


def write_profile_file(text: str, dest: Path) -> None:
    """Write `dest` atomically: a temporary file beside it, then rename over it.

    rename(2) replaces a symlink at `dest` instead of writing through it, so the profile
    never lands at a path an attacker pointed the link to.
    """
    if dest.is_dir() and not dest.is_symlink():
        raise UsageError(f"{dest} is a directory; give a file name for the profile")
    tmp: Path | None = None
    try:
        # mkstemp creates with O_EXCL and mode 0600 in dest's own directory (same filesystem,
        # so the rename is atomic); the profile is not secret, so it becomes 0644.
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        tmp = Path(tmp_name)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), 0o644)
        os.replace(tmp, dest)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {dest}: {exc.strerror}") from None

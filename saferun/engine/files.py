"""Write generated profiles to disk safely: a private directory, atomic, no symlinks followed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from saferun.errors import SaferunError

try:  # CPython's own SHA-256: the same digest, without loading OpenSSL (hashlib: ~3 ms)
    from _sha256 import sha256
except ImportError:  # other interpreters, and CPython >= 3.12 (_sha2)
    from hashlib import sha256


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "saferun"


def private_dir(path: Path) -> Path:
    """Create (0700) or check a directory that only this user can write."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise SaferunError(
            f"{path} is not a private directory of this user (symlink, foreign owner or "
            "group/world-writable); saferun will not keep profiles there",
            fix=f"remove {path} or set XDG_CACHE_HOME to a private directory",
        )
    return path


def write_atomic(path: Path, content: bytes, mode: int = 0o600) -> None:
    """Write via a fresh temporary file in the same directory, then rename over `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def store_profile(content: str, suffix: str) -> Path:
    """Content-addressed profile file in the private cache, for `--dry-run` argv to point at."""
    digest = sha256(content.encode()).hexdigest()[:24]
    directory = private_dir(cache_dir() / "profiles")
    path = directory / f"{digest}{suffix}"
    if not path.is_file() or path.is_symlink():
        write_atomic(path, content.encode())
    return path

"""Read a manifest file (the I/O edge) and turn pydantic's errors into one readable paragraph.

Each problem names the file, the line where it can be found, the key path and the value.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from saferun.errors import ManifestError

DEFAULT_MANIFEST = "saferun.toml"


def find_manifest(path: str | None) -> Path:
    """`saferun run` with no argument uses ./saferun.toml, like `docker compose` finds its file."""
    candidate = Path(path) if path else Path(DEFAULT_MANIFEST)
    if candidate.is_dir():
        candidate = candidate / DEFAULT_MANIFEST
    if not candidate.is_file():
        raise ManifestError(
            f"manifest not found: {candidate}",
            fix="pass the path of a saferun.toml, or run `saferun init` to write one",
        )
    return candidate


def read_manifest_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read manifest: {exc.strerror}") from None


def parse_manifest(data: bytes, source: str) -> Any:
    """TOML bytes -> validated Manifest. `source` names the file in messages."""
    from pydantic import ValidationError

    from saferun.manifest import Manifest

    try:
        text = data.decode("utf-8")
        document = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ManifestError(f"{source}: the manifest is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{source}: invalid TOML: {exc}") from None
    try:
        return Manifest.model_validate(document)
    except ValidationError as exc:
        raise ManifestError(format_validation_error(exc, text, source)) from None


def load_manifest(path: str | Path) -> Any:
    """Read and validate a manifest file."""
    manifest_path = Path(path)
    return parse_manifest(read_manifest_bytes(manifest_path), str(manifest_path))


def format_validation_error(exc: Any, text: str, source: str) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"]]
        key = ".".join(loc) if loc else "(manifest)"
        line = locate_key(text, loc)
        where = f"{source}:{line}" if line else source
        message = _describe(error)
        if error["type"] == "missing":
            problems.append(f"{where}: {key} is required")
        elif error["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown key {key}")
        elif loc:
            problems.append(f"{where}: {key} = {_show(error.get('input'))}: {message}")
        else:
            problems.append(f"{where}: {message}")
    count = len(problems)
    head = f"invalid manifest ({count} problem{'s' if count != 1 else ''}):"
    return head + "\n  " + "\n  ".join(problems)


def _describe(error: dict[str, Any]) -> str:
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix):]
    if error["type"].endswith("_type"):
        expected = error["type"].removesuffix("_type").replace("_", " ")
        message = f"wrong type ({type(error.get('input')).__name__}), expected {expected}"
    return message


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def locate_key(text: str, loc: list[str]) -> int | None:
    """Best-effort line number of a key path in TOML text (tomllib keeps no positions)."""
    keys = [part for part in loc if not part.isdigit()]
    if not keys:
        return None
    lines = text.splitlines()
    # Find the deepest table header that is a prefix of the path, then the key after it.
    for depth in range(len(keys) - 1, -1, -1):
        table = ".".join(keys[:depth])
        start = 0
        if table:
            header = re.compile(r"^\s*\[\[?\s*" + re.escape(table) + r"\s*\]\]?\s*(#.*)?$")
            found = [i for i, line in enumerate(lines) if header.match(line)]
            if not found:
                continue
            start = found[0]
            if depth == len(keys):
                return start + 1
        key = keys[depth]
        pattern = re.compile(r"^\s*(\"?)" + re.escape(key) + r"\1\s*=")
        for index in range(start, len(lines)):
            if index > start and table and re.match(r"^\s*\[", lines[index]):
                break
            if not table and re.match(r"^\s*\[", lines[index]):
                break
            if pattern.match(lines[index]):
                return index + 1
        if table:
            return start + 1
    return None

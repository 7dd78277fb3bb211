"""Read a manifest file (the I/O edge) and turn validation errors into one readable paragraph.

Each problem names the file, the line where it can be found, the key path and the value.

A manifest may start from a preset or another manifest with `extends = "nginx"` (a preset
in profiles/) or `extends = "../base.toml"` (a path relative to the manifest). The TOML
documents are merged before validation, so the one model judges the result: tables merge
key by key, anything else in the child (scalars, arrays, arrays of tables) replaces the
parent's. A preset file read on its own gets a placeholder app, so it can be checked,
exported and compiled like any manifest.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import msgspec

from saferun.errors import ManifestError

DEFAULT_MANIFEST = "saferun.toml"
# `extends` names a preset when it is a bare word; anything with a slash or a .toml suffix
# is a path. Preset names are also the files' stems in profiles/.
PRESET_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
MAX_EXTENDS_DEPTH = 8
# Hostile-input limits: no manifest is near them; a crafted one stops with one paragraph.
MAX_MANIFEST_BYTES = 1 << 20
MAX_NESTING = 32
MAX_VALUES = 1 << 20  # more than a MAX_MANIFEST_BYTES TOML file can hold
# What a preset read on its own validates with: its name, and an image that cannot be
# pulled by mistake (the .invalid domain never resolves).
PRESET_PLACEHOLDER_IMAGE = "preset.invalid/{name}:placeholder"


class ResolvedDocument(msgspec.Struct, frozen=True):
    """A manifest's TOML document with every `extends` merged in, before validation.

    `extended` lists the files merged in (nearest first), so callers can record them as
    inputs: editing a preset changes what the manifest means.
    """

    document: dict[str, Any]
    text: str
    extended: tuple[Path, ...] = ()
    sources: tuple[tuple[str, str], ...] = ()  # (file, text) of each extended file


def preset_dir() -> Path:
    from saferun.data import data_dir

    return data_dir("profiles")


def preset_names() -> list[str]:
    """The presets shipped in profiles/, by name."""
    try:
        return sorted(p.stem for p in preset_dir().glob("*.toml"))
    except FileNotFoundError:
        return []


def preset_path(name: str) -> Path:
    """The file of a preset, or a ManifestError that lists the presets there are."""
    available = preset_names()
    if re.fullmatch(PRESET_NAME_PATTERN, name) and name in available:
        return preset_dir() / f"{name}.toml"
    raise ManifestError(
        f"extends = {name!r}: there is no such preset (available: "
        f"{', '.join(available) or 'none'})",
        fix="name one of the presets in profiles/, or give a path to a manifest such as "
        "\"./base.toml\" (see docs/presets.md)",
    )


PRESET_TABLE = "preset"  # a preset's own table: the images it is found by; not a manifest key


def image_repository(reference: str) -> str:
    """`docker.io/library/nginx:1.27@sha256:...` -> `nginx`: the repository as Docker Hub
    names it, without registry, `library/`, tag or digest."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if parts[0] in ("docker.io", "index.docker.io", "registry-1.docker.io"):
            parts = parts[1:]
        else:
            return "/".join(parts)
    if parts[0] == "library" and len(parts) > 1:
        parts = parts[1:]
    return "/".join(parts)


def preset_for_image(reference: str) -> str | None:
    """The preset whose `[preset] images` names this image's repository, if one does."""
    repository = image_repository(reference)
    for name in preset_names():
        try:
            document, _ = _parse_toml((preset_dir() / f"{name}.toml").read_bytes(), name)
        except (OSError, ManifestError):
            continue
        table = document.get(PRESET_TABLE)
        images = table.get("images") if isinstance(table, dict) else None
        if isinstance(images, list) and repository in images:
            return name
    return None


def preset_document(name: str) -> dict[str, Any]:
    """A preset's partial manifest (what `extends = NAME` merges in), its own table removed."""
    path = preset_path(name)
    document, _ = _parse_toml(read_manifest_bytes(path), str(path))
    document.pop(PRESET_TABLE, None)
    return document


def is_preset_file(path: Path) -> bool:
    """Whether `path` is one of the shipped presets (a partial manifest without an app)."""
    if path.suffix != ".toml" or path.stem not in _preset_stems():
        return False  # no resolve (a stat per path component) for the usual manifest
    try:
        return path.resolve().parent == _resolved_preset_dir()
    except FileNotFoundError:
        return False


@cache
def _preset_stems() -> frozenset[str]:
    return frozenset(preset_names())


@cache  # saferun's own folder, asked once per manifest by `saferun check`
def _resolved_preset_dir() -> Path:
    return preset_dir().resolve()


def merge_documents(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """`child` over `parent`: tables merge key by key, every other value replaces (pure).

    Arrays replace rather than extend so that a child can also remove entries, e.g. swap
    a preset's tmpfs data directory for a volume by restating `filesystem.tmpfs`.
    """
    merged = copy.deepcopy(parent)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_documents(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _parse_toml(data: bytes, source: str) -> tuple[dict[str, Any], str]:
    return parse_toml_input(data, source, "manifest")


def read_bounded(path: Path, what: str, limit: int = MAX_MANIFEST_BYTES) -> bytes:
    """An input file's bytes, never more than `limit` read (at most limit+1, to know it is
    too big): `/dev/zero` or a sparse file of gigabytes stops with one paragraph."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:  # ENOENT, EACCES, EISDIR, ENAMETOOLONG...
        raise ManifestError(f"{str(path)[:200]}: cannot read {what}: "
                            f"{exc.strerror or exc}") from None
    if len(data) > limit:
        raise ManifestError(f"{path}: the {what} is more than the {limit} bytes it may have")
    return data


def decode_input(data: bytes, source: str, what: str) -> str:
    """UTF-8 text of an input file, or one paragraph naming the file and the byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{source}: the {what} is not UTF-8 text (byte "
                            f"{data[exc.start]:#04x} at offset {exc.start})") from None


def check_nesting(document: Any, source: str) -> None:
    """Arrays and tables (TOML) or sequences and mappings (YAML) at most MAX_NESTING deep."""
    depth = _depth(document)
    if depth is None:
        raise ManifestError(f"{source}: more than {MAX_VALUES} values (YAML aliases that "
                            "repeat a node many times?)")
    if depth > MAX_NESTING:
        raise too_deep(source)


def too_deep(source: str) -> ManifestError:
    """The error for a document nested past MAX_NESTING (or past the parser's stack)."""
    return ManifestError(f"{source}: arrays or tables are nested more than {MAX_NESTING} deep")


def parse_toml_input(data: bytes, source: str, what: str) -> tuple[dict[str, Any], str]:
    """A TOML input file (manifest, stack, team policy, user config) with the size, UTF-8
    and depth limits: every problem is a ManifestError naming the file."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{source}: the {what} is {len(data)} bytes, more than the "
                            f"{MAX_MANIFEST_BYTES} it may have")
    text = decode_input(data, source, what)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{source}: invalid TOML: {exc}") from None
    except RecursionError:
        raise too_deep(source) from None
    check_nesting(document, source)
    return document, text


def _depth(value: Any) -> int | None:
    """How deeply arrays and tables nest, walked without recursion. A YAML alias can make
    one node the child of many (a "billion laughs"): past MAX_VALUES visits the document
    is None, so the walk itself stays bounded."""
    deepest, stack, visits = 0, [(value, 0)], 0
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        visits += 1
        if visits > MAX_VALUES:
            return None
        if level <= MAX_NESTING:
            children = item.values() if isinstance(item, dict) else item \
                if isinstance(item, list) else ()
            stack.extend((child, level + 1) for child in children)
    return deepest


def _extends_target(value: Any, source: str, base_dir: Path) -> Path:
    """Where an `extends` value points: a preset by name, or a file relative to base_dir."""
    if not isinstance(value, str) or not value or any(ord(c) < 32 for c in value):
        raise ManifestError(f"{source}: extends = {value!r}: expected a preset name such as "
                            "\"nginx\" or a path to a manifest")
    if "/" not in value and not value.endswith(".toml"):
        return preset_path(value)
    target = Path(value)
    target = target if target.is_absolute() else base_dir / target
    if not target.is_file():
        raise ManifestError(f"{source}: extends = {value!r}: no such file ({target})",
                            fix="paths are relative to the manifest that names them")
    return target


def resolve_document(data: bytes, source: str, *, base_dir: Path,
                     own_path: Path | None = None) -> ResolvedDocument:
    """Parse TOML bytes and merge in everything it `extends`, detecting cycles."""
    document, text = _parse_toml(data, source)
    chain: list[Path] = []  # the files of the chain, resolved (a cycle), once there is one
    extended: list[Path] = []
    sources: list[tuple[str, str]] = []
    layers = [document]
    current, current_source, current_dir = document, source, base_dir
    while "extends" in current:
        if not chain and own_path is not None:
            chain.append(own_path.resolve())
        target = _extends_target(current["extends"], current_source, current_dir)
        real = target.resolve()
        if real in chain:
            names = " -> ".join(str(p) for p in [*chain, real])
            raise ManifestError(f"{source}: extends forms a cycle: {names}",
                                fix="remove `extends` from one of these files")
        if len(chain) > MAX_EXTENDS_DEPTH:
            raise ManifestError(f"{source}: extends is nested more than {MAX_EXTENDS_DEPTH} deep")
        chain.append(real)
        extended.append(target)
        parent, parent_text = _parse_toml(read_manifest_bytes(target), str(target))
        if is_preset_file(target):
            parent.pop(PRESET_TABLE, None)
        sources.append((str(target), parent_text))
        layers.append(parent)
        current, current_source, current_dir = parent, str(target), target.parent
    merged: dict[str, Any] = document if len(layers) == 1 else {}  # freshly parsed: ours
    for layer in reversed(layers if len(layers) > 1 else ()):
        merged = merge_documents(merged, layer)
    if len(layers) > 1:
        merged["extends"] = document["extends"]  # what this manifest said, not its parents
    return ResolvedDocument(merged, text, tuple(extended), tuple(sources))


def read_document(path: Path, data: bytes | None = None) -> ResolvedDocument:
    """A manifest file's document with its `extends` merged in; a preset gets its placeholder.
    `data`: the file's bytes when the caller has read them already."""
    resolved = resolve_document(read_manifest_bytes(path) if data is None else data,
                                str(path), base_dir=path.parent, own_path=path)
    if is_preset_file(path):
        resolved.document.pop(PRESET_TABLE, None)
        app = resolved.document.setdefault("app", {})
        if isinstance(app, dict):
            app.setdefault("name", path.stem)
            app.setdefault("image", PRESET_PLACEHOLDER_IMAGE.format(name=path.stem))
    return resolved


def find_manifest(path: str | None) -> Path:
    """`saferun run` with no argument uses ./saferun.toml, like `docker compose` finds its file."""
    candidate = Path(path) if path else Path(DEFAULT_MANIFEST)
    try:
        if candidate.is_dir():
            candidate = candidate / DEFAULT_MANIFEST
        found = candidate.is_file()
    except OSError as exc:  # ENAMETOOLONG, EACCES on a parent...
        raise ManifestError(f"{str(candidate)[:200]}: cannot read manifest: "
                            f"{exc.strerror or exc}") from None
    if not found:
        raise ManifestError(
            f"manifest not found: {candidate}",
            fix="pass the path of a saferun.toml, or run `saferun init` to write one",
        )
    return candidate


def read_toml_file(path: Path) -> dict[str, Any]:
    """A TOML input file (manifest or stack file) read with the manifest's size and depth
    limits: every problem a ManifestError naming the file."""
    return _parse_toml(read_manifest_bytes(path), str(path))[0]


def read_manifest_bytes(path: Path) -> bytes:
    return read_bounded(path, "manifest")


def parse_manifest(data: bytes, source: str, *, base_dir: Path | None = None) -> Any:
    """TOML bytes -> validated Manifest. `source` names the file in messages; `extends`
    paths are relative to `base_dir` (default: the current directory)."""
    resolved = resolve_document(data, source, base_dir=base_dir or Path.cwd())
    return validate_document(resolved, source)


def validation_context(document: Any, **extra: Any) -> dict[str, Any]:
    """The context the manifest model validates with: the rule catalogue, when the document
    ignores rules (only those manifests pay for importing the rule table)."""
    context = dict(extra)
    policy = document.get("policy") if isinstance(document, dict) else None
    if isinstance(policy, dict) and policy.get("ignore"):
        from saferun.policy.catalogue import rule_kinds

        context["rule_kinds"] = rule_kinds()
    return context


def validate_document(resolved: ResolvedDocument, source: str) -> Any:
    """The one model over a resolved document; errors name the file that holds the key."""
    from saferun.model.manifest import Manifest
    from saferun.model.strict import ValidationError

    try:
        return Manifest.from_data(resolved.document,
                                  context=validation_context(resolved.document))
    except ValidationError as exc:
        raise ManifestError(format_validation_error(exc, resolved.text, source,
                                                    also=resolved.sources)) from None


def load_manifest(path: str | Path, data: bytes | None = None) -> Any:
    """Read and validate a manifest file (with what it extends); `data`: its bytes, when
    already read."""
    manifest_path = Path(path)
    return validate_document(read_document(manifest_path, data), str(manifest_path))


def format_validation_error(exc: Any, text: str, source: str,
                            also: Sequence[tuple[str, str]] = ()) -> str:
    """One paragraph; `also` are the (file, text) of extended files, searched for a key's
    line when the manifest itself does not set it."""
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        key = ".".join(loc) if loc else "(manifest)"
        where = source
        for file, file_text in ((source, text), *also):
            line = _locate_set_key(file_text, loc)
            if line:
                where = f"{file}:{line}"
                break
        else:
            line = locate_key(text, loc)
            where = f"{source}:{line}" if line else source
        message = str(error["msg"])
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


def _locate_set_key(text: str, loc: list[str]) -> int | None:
    """The line of a key path, only if this text itself sets it (for merged documents)."""
    try:
        node: Any = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return locate_key(text, loc) if loc else None


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

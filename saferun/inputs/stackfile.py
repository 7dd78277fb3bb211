"""Read a stack: a saferun.stack.toml, a folder of manifests, or one manifest (a stack of one).

Every service's manifest is validated by the one model; then what only the stack can judge:
each ingress/egress entry names a service of the stack, and each service leaves its
network to the stack (mode bridge: `saferun up` puts it on the stack's own network).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saferun.errors import ManifestError

STACK_FILE = "saferun.stack.toml"


@dataclass(frozen=True)
class StackMember:
    name: str
    manifest: Any  # a validated Manifest
    manifest_path: Path
    manifest_sha256: str
    depends_on: tuple[str, ...]


@dataclass(frozen=True)
class LoadedStack:
    name: str
    sandbox_image: str
    health_timeout: int
    services: tuple[StackMember, ...]  # in start order
    source: Path

    def service(self, name: str) -> StackMember:
        return next(s for s in self.services if s.name == name)


def load_stack(target: str | None) -> LoadedStack:
    """The stack at `target` (default: ./saferun.stack.toml), validated; ManifestError naming
    the file and key otherwise."""
    path = Path(target or STACK_FILE)
    if path.is_dir():
        if (path / STACK_FILE).is_file():
            path = path / STACK_FILE
        else:
            return _folder_stack(path)
    if not path.is_file():
        raise ManifestError(f"stack not found: {path}",
                            fix=f"pass a {STACK_FILE}, a folder of manifests or a manifest")
    document = _read_toml(path)
    if "services" not in document and "app" in document:
        return _single_stack(path)
    return _stack_from_document(document, path)


def _read_toml(path: Path) -> dict[str, Any]:
    from saferun.inputs.loader import read_toml_file

    return read_toml_file(path)


def _stack_from_document(document: dict[str, Any], path: Path) -> LoadedStack:
    from saferun.inputs.loader import format_validation_error, read_manifest_bytes
    from saferun.model.stack import StackFile, start_order
    from saferun.model.strict import ValidationError

    try:
        stack = StackFile.from_data(document)
    except ValidationError as exc:
        text = read_manifest_bytes(path).decode("utf-8", "replace")  # read_toml_file decoded it
        raise ManifestError(format_validation_error(exc, text, str(path))) from None
    members = {name: _member(name, path.parent / entry.manifest, tuple(entry.depends_on))
               for name, entry in stack.services.items()}
    order = start_order({name: m.depends_on for name, m in members.items()})
    return _checked(LoadedStack(stack.stack.name, stack.stack.sandbox_image,
                                stack.stack.health_timeout,
                                tuple(members[n] for n in order), path))


def _folder_stack(folder: Path) -> LoadedStack:
    """A folder of manifests: each *.toml is a service named after its file; no ordering."""
    from saferun.model.stack import DEFAULT_SANDBOX_IMAGE

    files = sorted(folder.glob("*.toml"))
    if not files:
        raise ManifestError(f"{folder}: no {STACK_FILE} and no manifest (*.toml) in it")
    members = tuple(_member(_service_name(f.stem, f), f, ()) for f in files)
    return _checked(LoadedStack(stack_name_for(folder.resolve().name, folder),
                                DEFAULT_SANDBOX_IMAGE, 120, members, folder))


def _single_stack(path: Path) -> LoadedStack:
    from saferun.model.stack import DEFAULT_SANDBOX_IMAGE

    member = _member("app", path, ())
    name = stack_name_for(member.manifest.app.name or path.stem, path)
    return _checked(LoadedStack(name, DEFAULT_SANDBOX_IMAGE, 120,
                                (StackMember(_service_name(name, path), member.manifest,
                                             member.manifest_path, member.manifest_sha256,
                                             ()),), path))


def stack_name_for(raw: str, source: Path) -> str:
    """A valid stack name made from a folder or app name."""
    from saferun.model.stack import STACK_NAME_PATTERN

    name = re.sub(r"[^a-z0-9_-]", "-", raw.lower()).strip("-_")[:31]
    if not re.match(STACK_NAME_PATTERN, name):
        raise ManifestError(f"{source}: cannot make a stack name from '{raw}'",
                            fix=f"write a {STACK_FILE} with [stack] name")
    return name


def _service_name(raw: str, source: Path) -> str:
    from saferun.model.netpolicy import check_service_name

    try:
        return check_service_name(raw, "service")
    except ValueError as exc:
        raise ManifestError(f"{source}: {exc}",
                            fix=f"rename the file or write a {STACK_FILE}") from None


def _member(name: str, manifest_path: Path, depends_on: tuple[str, ...]) -> StackMember:
    from saferun.inputs.loader import read_document, read_manifest_bytes, validate_document

    if not manifest_path.is_file():
        raise ManifestError(f"services.{name}.manifest: {manifest_path} does not exist")
    data = read_manifest_bytes(manifest_path)
    manifest = validate_document(read_document(manifest_path), str(manifest_path))
    return StackMember(name, manifest, manifest_path, hashlib.sha256(data).hexdigest(),
                       depends_on)


def _checked(stack: LoadedStack) -> LoadedStack:
    from saferun.model.netpolicy import parse_peers

    names = {s.name for s in stack.services}
    for member in stack.services:
        network = member.manifest.network
        where = f"{member.manifest_path}: network"
        if network.mode not in ("bridge", "default"):
            raise ManifestError(f"{where}.mode = {network.mode!r}: in a stack each service is "
                                "on the stack's own network", fix="remove network.mode")
        if network.extra_networks:
            raise ManifestError(f"{where}.extra_networks: a stack service is on the stack's "
                                "network only", fix="remove network.extra_networks")
        for key in ("ingress", "egress"):
            value = getattr(network, key)
            for peer in parse_peers(value) if isinstance(value, list) else ():
                if peer.service is not None and peer.service not in names:
                    raise ManifestError(f"{where}.{key}: '{peer}' names service "
                                        f"'{peer.service}', which is not in stack "
                                        f"'{stack.name}' (services: {', '.join(sorted(names))})")
    return stack


def compose_document(path: Path) -> Any:
    """A Compose file's YAML (safe loader: plain data, no tags)."""
    import yaml

    from saferun.inputs.loader import check_nesting, decode_input, read_bounded, too_deep

    text = decode_input(read_bounded(path, "Compose file"), str(path), "Compose file")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise too_deep(str(path)) from None
    check_nesting(document, str(path))
    return document


def is_stack_file(path: Path, data: bytes | None = None) -> bool:
    """A TOML file with a [stack] table (not a manifest). `data`: the file's bytes, when
    the caller has read them already."""
    if path.name == STACK_FILE:
        return True
    if path.suffix != ".toml" or (data is None and not path.is_file()):
        return False
    from saferun.inputs.loader import read_manifest_bytes, read_toml_file

    try:
        data = read_manifest_bytes(path) if data is None else data
        # No "stack" in the text (nor an escape that could spell it): not a stack file, and
        # `saferun check` does not parse every manifest twice.
        if b"stack" not in data and b"\\u" not in data and b"\\U" not in data:
            return False
        return "stack" in read_toml_file(path)
    except ManifestError:
        return False

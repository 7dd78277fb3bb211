"""Write a validated Manifest as a commented saferun.toml (for `saferun init`).

Only values that differ from saferun's defaults are written, so the file shows what is
special about this app; the hardened defaults it inherits are named in comments. Reading
the file back gives the same Manifest (tested as a round trip), so a dry-run of the new
manifest equals the hardened command line it came from.

Pure: takes values, returns text. Reading the image and writing the file are the CLI's.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import tomlkit
from tomlkit.items import Table

from saferun.model.encoding import comment_text
from saferun.model.manifest import USER_PATTERN, Manifest
from saferun.model.normalise import is_root_user
from saferun.model.strict import to_document

HEADER = (
    "saferun manifest: `saferun run` (or `saferun run -f saferun.toml`) starts this app with "
    "every protection in force. Schema: `saferun schema`; refusal rules: docs/drop-in.md."
)

# What each section inherits when it is left out; printed above the section (or alone).
SECTION_NOTES: dict[str, str] = {
    "app": "user defaults to 65534:65534 (nobody); root needs [allow] run-as-root.",
    "capabilities": "Every capability is dropped; `add` lists the ones to keep "
                    "(Docker's default set; others need [allow] cap-not-allowed).",
    "filesystem": "Root filesystem is read-only; /tmp is a 64m noexec,nosuid,nodev tmpfs. "
                  "Mounts are read-only unless read_only = false.",
    "resources": "Defaults: memory 512m without swap, 1 CPU, 256 processes, nofile 1024:4096.",
    "network": "Ports publish on 127.0.0.1 unless host_ip says otherwise; host networking "
               "needs [allow] host-network.",
    "restart": "Default: no restart; on-failure retries at most 5 times.",
    "logging": "json-file/local logs rotate at 10m x 3 unless options say otherwise.",
    "security": "no-new-privileges is always on; host namespaces, devices and unsafe "
                "sysctls each need an [allow] entry.",
    "seccomp": "A generated allowlist profile is applied by default.",
    "apparmor": "A generated AppArmor profile is applied where the host supports it.",
    "allow": "Refusal rules allowed for this app, each with the reason (kept as the "
             "io.saferun.exceptions label on the container).",
}
SECTION_ORDER = ("app", "capabilities", "filesystem", "resources", "network", "restart",
                 "healthcheck", "logging", "security", "seccomp", "apparmor", "exceptions", "allow")


@dataclass(frozen=True)
class ImageFacts:
    """What `saferun init --image` reads from `docker image inspect` (Config)."""

    image: str
    user: str = ""
    exposed_ports: tuple[str, ...] = ()  # "80/tcp"
    volumes: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    workdir: str = ""

    @classmethod
    def from_inspect(cls, image: str, data: dict[str, Any]) -> ImageFacts:
        config = data.get("Config") or {}
        entrypoint = config.get("Entrypoint")
        command = config.get("Cmd")
        return cls(
            image=image,
            user=str(config.get("User") or ""),
            exposed_ports=tuple(sorted(config.get("ExposedPorts") or {})),
            volumes=tuple(sorted(config.get("Volumes") or {})),
            entrypoint=tuple(entrypoint) if entrypoint else None,
            command=tuple(command) if command else None,
            workdir=str(config.get("WorkingDir") or ""),
        )


@dataclass(frozen=True)
class ImageProposal:
    """A manifest document for an image, the notes behind it, and the equivalent flags."""

    document: dict[str, Any]
    notes: tuple[str, ...]
    # The same app as a command line: `saferun run *docker_args IMAGE`.
    docker_args: tuple[str, ...] = field(default_factory=tuple)


def propose_from_image(facts: ImageFacts, name: str) -> ImageProposal:
    """Translate the image's own metadata into hardened settings (pure)."""
    app: dict[str, Any] = {"name": name, "image": facts.image}
    notes: list[str] = []
    args: list[str] = []
    user = facts.user
    uid = user.split(":")[0]
    if not user or is_root_user(uid):
        notes.append(f"The image runs as {'root' if user else 'root (no USER)'}; saferun runs it "
                     "as 65534:65534. Set app.user to a numeric uid the image's files allow.")
    elif re.fullmatch(r"^[0-9]+(:[0-9]+)?$", user):
        app["user"] = user
        args += ["--user", user]
    elif re.fullmatch(USER_PATTERN, user):
        app["user"] = user
        args += ["--user", user]
        notes.append(f"The image's USER is '{user}', a name: docker resolves it in the image, as "
                     "`docker run --user` does (check it is not uid 0: "
                     f"`docker run --rm --entrypoint id {facts.image}`).")
    else:
        notes.append(f"The image's USER is '{user}', which saferun cannot pass on; set app.user "
                     "to a numeric uid.")
    document: dict[str, Any] = {"app": app}
    ports = []
    for spec in facts.exposed_ports:
        number, _, protocol = spec.partition("/")
        if number.isdigit():
            ports.append({"container": int(number), "protocol": protocol or "tcp"})
            args += ["--publish", f"127.0.0.1::{number}/{protocol or 'tcp'}"]
    if ports:
        document["network"] = {"ports": ports}
        notes.append("Exposed ports are published on 127.0.0.1 with a random host port; set "
                     "host (and host_ip) to choose.")
    mounts = []
    for path in facts.volumes:
        if not re.fullmatch(r"^/(?:[A-Za-z0-9_.@+-]+/?)*$", path):
            notes.append(f"VOLUME {path!r} has characters saferun does not accept in a target; "
                         "mount it by hand.")
            continue
        slug = re.sub(r"[^a-zA-Z0-9_.-]+", "-", path.strip("/")) or "root"
        volume = f"{name}-{slug}"[:63]
        mounts.append({"type": "volume", "source": volume, "target": path, "read_only": False})
        args += ["--mount", f"type=volume,source={volume},target={path}"]
    if mounts:
        document["filesystem"] = {"mounts": mounts}
        notes.append("Each VOLUME becomes a writable named volume: the root filesystem is "
                     "read-only.")
    if facts.entrypoint or facts.command:
        shown = " ".join([*(facts.entrypoint or ()), *(facts.command or ())])
        notes.append(f"The image's own entrypoint/command is used: {shown}")
    if facts.workdir:
        notes.append(f"Working directory (from the image): {facts.workdir}")
    return ImageProposal(document, tuple(notes), tuple(args))


def relative_sources(document: dict[str, Any], manifest_dir: str) -> dict[str, Any]:
    """Bind sources and env files below the manifest's directory, written relative (./data),
    so the committed manifest works from any checkout. The plan joins them back."""
    base = posixpath.normpath(manifest_dir)

    def rel(path: str) -> str:
        if path.startswith("/") and (path == base or path.startswith(base.rstrip("/") + "/")):
            return "./" + posixpath.relpath(path, base) if path != base else "."
        return path

    result = dict(document)
    fs = result.get("filesystem")
    if fs and fs.get("mounts"):
        result["filesystem"] = {**fs, "mounts": [
            {**m, "source": rel(m["source"])} if m.get("type") == "bind" else m
            for m in fs["mounts"]]}
    app = result.get("app")
    if app and app.get("env_files"):
        result["app"] = {**app, "env_files": [rel(p) for p in app["env_files"]]}
    return result


def render_manifest(manifest: Manifest, *, origin: str, session: Sequence[str] = (),
                    notes: Sequence[str] = (), manifest_dir: str | None = None) -> str:
    """The manifest as commented TOML: non-default values, with the defaults explained.

    `origin` says where it came from (a docker run line or an image); `session` lists the
    per-start flags that do not belong in a manifest (-d, --rm, -it, --name).
    """
    data = to_document(manifest, exclude_defaults=True)
    data.pop("version", None)
    if manifest_dir is not None:
        data = relative_sources(data, manifest_dir)
    doc = tomlkit.document()
    origin = comment_text(origin)
    notes = [comment_text(note) for note in notes]
    for line in _wrap(HEADER):
        doc.add(tomlkit.comment(line))
    for line in _wrap(f"Written by `saferun init` from: {origin}"):
        doc.add(tomlkit.comment(line))
    if session:
        for line in _wrap(comment_text("Per-start options, not part of the manifest: saferun "
                                       "run " + shlex.join(session) + " saferun.toml")):
            doc.add(tomlkit.comment(line))
    for note in notes:
        for index, line in enumerate(_wrap(note)):
            doc.add(tomlkit.comment(("NOTE: " if index == 0 else "      ") + line))
    doc.add(tomlkit.nl())
    doc.add("version", manifest.version)
    for section in SECTION_ORDER:
        if section in data:
            doc.add(tomlkit.nl())
            doc.add(section, _table(section, data[section]))
        elif section in SECTION_NOTES and section not in ("allow",):
            doc.add(tomlkit.nl())
            for line in _wrap(f"[{section}] (defaults) {SECTION_NOTES[section]}"):
                doc.add(tomlkit.comment(line))
    return tomlkit.dumps(doc)


def _table(section: str, values: Any) -> Table:
    table = tomlkit.table()
    if section in SECTION_NOTES:
        for line in _wrap(SECTION_NOTES[section]):
            table.add(tomlkit.comment(line))
    for key, value in values.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            array = tomlkit.aot()
            for item in value:
                array.append(tomlkit.item(item))
            table.add(key, array)
        else:
            table.add(key, value)
    return table


def _wrap(text: str, width: int = 88) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [""]

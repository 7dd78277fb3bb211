"""`saferun init`: write a manifest from a `docker run` line or from an image's metadata.

The line is parsed, mapped and validated exactly as `saferun run` reads it; an image's
USER, ports, volumes and entrypoint come from the local engine's inspect.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from saferun.errors import SaferunError, UsageError


@dataclass(frozen=True)
class InitResult:
    text: str
    notes: tuple[str, ...]


def init(line: str | None, image: str | None, allows: tuple[str, ...], *, out: Path | None,
         force: bool, cwd: str, warn: Callable[[str], None]) -> InitResult:
    """Render the manifest of `line` or `image`, warn its notes, and write it to `out`
    (unless None: then the caller prints the returned text)."""
    if (line is None) == (image is None):
        raise UsageError("give exactly one of --from-docker-run or --image")
    manifest_dir = str((out or Path("x")).resolve().parent)
    if line is not None:
        result = from_docker_run_line(line, allows, cwd=cwd, manifest_dir=manifest_dir)
    else:
        result = from_image(str(image), manifest_dir=manifest_dir)
    for note in result.notes:
        warn(note)
    if out is not None:
        write_manifest(out, result.text, force=force)
    return result


def from_docker_run_line(line: str, allows: tuple[str, ...], *, cwd: str,
                         manifest_dir: str, lookup: Any = None) -> InitResult:
    """Parse, map and validate the line exactly as `saferun run` would, then render it."""
    from saferun.inputs.dockerargs import split_command_line

    return from_docker_run_words(split_command_line(line), allows, cwd=cwd,
                                 manifest_dir=manifest_dir, lookup=lookup)


def from_docker_run_words(words: list[str], allows: tuple[str, ...], *, cwd: str,
                          manifest_dir: str, name: str | None = None,
                          network: dict[str, Any] | None = None,
                          notes_before: tuple[str, ...] = (),
                          lookup: Any = None) -> InitResult:
    """The words after `docker run`, read as `saferun run` reads them; `name` and `network`
    (a stack service's name and ingress/egress) are set on the result before it is judged.
    `lookup` (a saferun.app.networks.NetworkLookup; a new one if None) resolves the
    networks the line names through the engine, as `run` does."""
    from saferun.app.networks import NetworkLookup, judge_networks
    from saferun.inputs.dockerargs import DOCKER_RUN
    from saferun.inputs.dockerrun import (
        SAFERUN_RUN_FLAGS,
        build_manifest,
        from_docker_run,
        merge_document,
        parse_run_args,
    )
    from saferun.inputs.manifest_writer import render_manifest

    extra = [f"--allow={item}" for item in allows]
    parsed = parse_run_args([*extra, *words])
    own = {f.name for f in SAFERUN_RUN_FLAGS} - {"allow"}
    if any(name in own for name in parsed.given()) or not DOCKER_RUN:
        raise UsageError("the command line holds saferun flags; give only the docker run line")
    dropin = from_docker_run(parsed, cwd=cwd)
    if dropin.image is None:
        raise UsageError("the docker run line names no image")
    base, image_notes = _image_base(dropin)
    document = merge_document(base, dropin)
    if dropin.options.command:
        document["app"]["command"] = list(dropin.options.command)
    if name is not None:
        document["app"]["name"] = name
    if network:
        document.setdefault("network", {}).update(network)
    manifest = build_manifest(document, source=f"service {name}" if name else "command line")
    _judge_as_run(manifest, cwd)
    unresolved = judge_networks(manifest, lookup if lookup is not None else NetworkLookup())
    session = _session_words(dropin.options)
    notes = (*notes_before, *image_notes, *dropin.notes, *unresolved)
    text = render_manifest(manifest, origin=shlex.join(["docker", "run", *words]),
                           session=session, notes=notes, manifest_dir=manifest_dir)
    return InitResult(text, notes)


def _judge_as_run(manifest: Any, cwd: str) -> None:
    """Refuse what `saferun run` would refuse for this line, bind sources resolved against
    the directory the line was typed in (symlinks followed): init never writes a manifest
    that `run` then refuses."""
    from saferun.app.planning import judged_plan
    from saferun.model.facts import OFFLINE_FACTS
    from saferun.plan.planner import LaunchOptions

    judged_plan(manifest, OFFLINE_FACTS, LaunchOptions(manifest_dir=cwd))


def _image_base(dropin: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The same start as `saferun run IMAGE`: its preset, or what the image itself gives
    (read from the engine when one answers; without one, saferun's defaults, said so)."""
    from saferun.app.run import image_base
    from saferun.engine.api import EngineSession
    from saferun.errors import EngineUnavailable

    try:
        session = EngineSession()
    except EngineUnavailable:
        session = None
    base, notes, _ = image_base(str(dropin.image), dropin, session)
    if session is None and not notes:
        notes = ("no engine answered: the image's own user and directories were not read",)
    return base, notes


def from_image(image: str, *, manifest_dir: str) -> InitResult:
    from saferun.engine.api import EngineSession
    from saferun.engine.image_probe import probe_image
    from saferun.inputs.dockerrun import base_for_image, build_manifest
    from saferun.inputs.image_defaults import derive, with_image_defaults
    from saferun.inputs.manifest_writer import ImageFacts, propose_from_image, render_manifest

    session = EngineSession()
    try:
        data = session.image_inspect(image)
        probe = probe_image(image, session) if data is not None else None
    finally:
        session.close()
    if data is None or probe is None:
        raise SaferunError(f"image '{image}' is not in the local engine",
                           fix=f"pull or build '{image}' first")
    from saferun.inputs.loader import merge_documents, preset_document, preset_for_image

    name = base_for_image(image, None)["app"]["name"]
    proposal = propose_from_image(ImageFacts.from_inspect(image, data), name)
    preset = preset_for_image(image)
    if preset is not None:  # as `saferun run IMAGE` does: the preset found by the name
        document = merge_documents(preset_document(preset), proposal.document)
        notes = [n for n in proposal.notes if not n.startswith(("The image runs as",
                                                                "The image's USER is"))]
        proposal = replace(proposal, document=document, notes=(
            f"Starts from the preset '{preset}' (profiles/{preset}.toml), found by the "
            "image's name, as `saferun run` does", *notes))
    else:
        proposal = with_image_defaults(proposal, derive(probe))
    manifest = build_manifest(proposal.document, source=f"image {image}")
    text = render_manifest(manifest, origin=f"image {image}", notes=proposal.notes,
                           manifest_dir=manifest_dir)
    return InitResult(text, ())


def write_manifest(path: Path, text: str, *, force: bool) -> None:
    """Create the file; an existing one is kept unless --force (then replaced atomically)."""
    if force:
        from saferun.engine.files import write_atomic

        write_atomic(path, text.encode(), mode=0o644)
        return
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise UsageError(f"{path} already exists; saferun init does not overwrite it",
                         fix="pass --force to replace it, or -o to write elsewhere") from None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def _session_words(options: object) -> list[str]:
    from saferun.plan.planner import LaunchOptions

    assert isinstance(options, LaunchOptions)
    words = [flag for flag, on in (("-d", options.detach), ("--rm", options.remove),
                                   ("-i", options.interactive), ("-t", options.tty)) if on]
    if options.name:
        words += ["--name", options.name]
    return words + list(options.client_flags)


@dataclass(frozen=True)
class ComposeImport:
    stack_file: Path
    manifests: tuple[Path, ...]
    notes: tuple[tuple[str, str], ...]  # (service, what was changed and why)


def from_compose(compose: Path, allows: tuple[str, ...], *, out_dir: Path, force: bool,
                 warn: Callable[[str], None]) -> ComposeImport:
    """One manifest per Compose service plus the stack file; every service is read as its
    docker run line, so it is hardened and refused by the drop-in's rules. All files are
    rendered (and judged) before the first is written."""
    import tomli_w

    from saferun.inputs.compose import read_compose
    from saferun.inputs.stackfile import STACK_FILE, compose_document, stack_name_for

    project = read_compose(compose_document(compose), str(compose))
    cwd = str(compose.resolve().parent)
    manifest_dir = str(out_dir.resolve())
    rendered, notes = [], []
    from saferun.app.networks import NetworkLookup

    lookup = NetworkLookup()  # the engine is asked once, if a network needs it
    for service in project.services:
        audit = (f"AUDIT: imported from service '{service.name}' of {compose.name}; saferun's "
                 "hardening applies where Compose was silent (non-root user, every capability "
                 "dropped but an allowlist, read-only root, no-new-privileges, limits, "
                 "seccomp), as `saferun run` would with its docker run line", *service.notes)
        result = from_docker_run_words(list(service.words), allows, cwd=cwd,
                                       manifest_dir=manifest_dir, name=service.name,
                                       network=service.network, notes_before=audit,
                                       lookup=lookup)
        rendered.append((out_dir / f"{service.name}.toml", result.text))
        notes += [(service.name, n) for n in result.notes]
    stack_name = stack_name_for(project.name or compose.resolve().parent.name, compose)
    stack = {"stack": {"name": stack_name}, "services": {
        s.name: {"manifest": f"{s.name}.toml", **({"depends_on": list(s.depends_on)}
                                                  if s.depends_on else {})}
        for s in project.services}}
    header = (f"# Written by `saferun init --from-compose {compose.name}`; start it with "
              "`saferun up`, remove it with `saferun down`.\n")
    stack_path = out_dir / STACK_FILE
    rendered.append((stack_path, header + tomli_w.dumps(stack)))
    for name, note in notes:
        warn(f"{name}: {note}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, text in rendered:
        write_manifest(path, text, force=force)
    return ComposeImport(stack_path, tuple(p for p, _ in rendered[:-1]), tuple(notes))


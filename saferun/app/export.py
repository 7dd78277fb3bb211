"""`saferun export`: the edge around saferun.export.

Read the manifests, work out where the files go (-o), call the pure renderer, and write
the files atomically. Two steps (`render_export`, then `write_export`) so the CLI prints
the notes (what the target cannot express) before anything is written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from saferun.app.networks import NetworkLookup, judge_networks
from saferun.errors import ExportError, ImageRefused, ManifestError, Refused, UsageError
from saferun.export import ExportInput, ExportResult, KubeKind, Target
from saferun.export import export as run_export
from saferun.model.manifest import Manifest


@dataclass(frozen=True)
class ExportRequest:
    manifests: tuple[Path, ...]
    target: Target
    output: str | None = None  # -o as given: a str, since Path drops a trailing '/'
    kind: KubeKind = KubeKind.POD
    kube_version: str | None = None
    arch: str = "x86_64"
    namespace: str | None = None  # Kubernetes: metadata.namespace of namespaced objects
    pin: bool = False  # Kubernetes: images by the digest the local engine has for their tag
    profiles: str = "files"  # Kubernetes: "files" for the nodes, or "operator" objects
    compose_v1: bool = False  # Compose: only keys docker-compose 1.x accepts


@dataclass(frozen=True)
class RenderedExport:
    result: ExportResult
    out_dir: Path | None  # None: the main file goes to standard output
    main_name: str | None  # -o FILE's name; None: the renderer's default name
    warnings: tuple[str, ...] = ()  # e.g. networks no engine resolved


    @property
    def not_written(self) -> list[str]:
        """Files beside the main one, which standard output cannot carry."""
        return [f.path for f in self.result.files[1:]] if self.out_dir is None else []


def render_export(request: ExportRequest) -> RenderedExport:
    """Load and render the manifests; nothing is written."""
    from saferun.inputs.loader import load_manifest

    paths = stack_manifests(request.manifests)
    out_dir, main_name = output_location(request.output, request.target, len(paths))
    base = out_dir if out_dir is not None else Path.cwd()
    inputs = []
    lookup = NetworkLookup()  # the engine is asked once, if a network needs it
    warnings = []
    for path in paths:
        manifest = load_manifest(path)
        _judge_as_run(manifest, str(path.resolve().parent), request.arch)
        warnings += [f"{path}: {w}" for w in judge_networks(manifest, lookup)]
        inputs.append(ExportInput(manifest, manifest_dir(path, base, request.target)))
    kube_options = None
    if request.target is Target.KUBERNETES:
        from saferun.export.kubernetes import KubeOptions, ProfileDelivery

        pinned = _pinned_images([i.manifest.app.image for i in inputs]) if request.pin else {}
        kube_options = KubeOptions(request.namespace, pinned, ProfileDelivery(request.profiles))
    result = run_export(inputs, request.target, kind=request.kind,
                        kube_version=request.kube_version, arch=request.arch,
                        kube_options=kube_options, compose_v1=request.compose_v1)
    return RenderedExport(result, out_dir, main_name, tuple(warnings))


def _pinned_images(images: list[str]) -> dict[str, str]:
    """Each image with the registry digest the local engine has for it (as `saferun pin`);
    an image without one stops the export (ManifestError, exit 2) rather than stay a tag."""
    from saferun.app.pin import pinned_reference
    from saferun.engine.api import EngineSession
    from saferun.policy.rules import image_parts

    session = EngineSession()
    pinned = {}
    for image in sorted(set(images)):
        if image_parts(image)[2]:
            continue  # pinned in the manifest already
        data = session.image_inspect(image)
        if data is None:
            raise ManifestError(f"--pin: app.image '{image}' is not in the local engine",
                                fix=f"pull or build '{image}' first, or export without --pin")
        pinned[image] = pinned_reference(image, data.get("RepoDigests") or [])
    return pinned


def _judge_as_run(manifest: Manifest, directory: str, arch: str) -> None:
    """Judged as `saferun run` judges it, before anything is rendered: the seccomp profile
    compiled by libseccomp (ProfileError) and every bind source resolved against the
    manifest's own directory, symlinks followed (refused by the rule `run` names); an
    image from a registry the manifest's [policy] does not allow (image-registry)."""
    from msgspec.structs import replace

    from saferun.app.image_policy import refuse_registry

    try:
        refuse_registry(manifest.app.image, manifest.policy)
    except ImageRefused as exc:  # a refusal of the manifest here: exit 2, as the others
        raise Refused(exc.message, fix=exc.fix, rule_ids=("image-registry",)) from None

    from saferun.app.planning import judged_plan
    from saferun.export.common import EXPORT_FACTS
    from saferun.plan.planner import LaunchOptions

    judged_plan(manifest, replace(EXPORT_FACTS, architecture=arch),
                LaunchOptions(manifest_dir=directory))


def output_location(output: str | None, target: Target,
                    count: int) -> tuple[Path | None, str | None]:
    """(directory, main file name or None for the default) from -o (a str: Path drops '/')."""
    if output is None:
        if target is Target.QUADLET and count > 1:
            raise UsageError("several Quadlet units cannot share standard output",
                             fix="pass -o DIR to write one .container file per manifest")
        return None, None
    if Path(output).is_dir() or output.endswith(os.sep):
        return Path(output), None
    if target is Target.QUADLET and count > 1:
        raise UsageError(f"-o {output}: several manifests give several Quadlet units",
                         fix="pass a directory (ending in /) to -o")
    return Path(output).parent, Path(output).name


def manifest_dir(path: Path, out_dir: Path, target: Target) -> str:
    """Where the manifest's relative paths lead, as the exported file must spell it.

    Compose resolves paths against the compose file's directory: relative to the output.
    Quadlet units are installed elsewhere (/etc/containers/systemd): absolute.
    """
    directory = path.resolve().parent
    if target is Target.QUADLET:
        return str(directory)
    return os.path.relpath(directory, out_dir.resolve())


def write_export(rendered: RenderedExport) -> list[Path]:
    """Each file atomically (a temporary file renamed over it), parents created."""
    from saferun.engine.files import write_atomic

    if rendered.out_dir is None:
        return []
    written = []
    for index, item in enumerate(rendered.result.files):
        name = rendered.main_name if index == 0 and rendered.main_name else item.path
        path = rendered.out_dir / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, item.content.encode(), mode=item.mode)
        except OSError as exc:
            raise ExportError(f"-o: cannot write {path}: {exc.strerror or exc}") from None
        written.append(path)
    return written


def stack_manifests(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    """The manifests to export: a saferun.stack.toml stands for its services' manifests
    (each app.name must be its service name, which the rules and exports refer to)."""
    from saferun.inputs.stackfile import is_stack_file, load_stack

    result: list[Path] = []
    for path in paths:
        if not is_stack_file(path):
            result.append(path)
            continue
        for member in load_stack(str(path)).services:
            if member.manifest.app.name != member.name:
                raise ExportError(
                    f"{member.manifest_path}: app.name '{member.manifest.app.name}' is not its "
                    f"service name '{member.name}' in {path}; exports name services by app.name",
                    fix=f"set app.name = \"{member.name}\"")
            result.append(member.manifest_path)
    return tuple(result)

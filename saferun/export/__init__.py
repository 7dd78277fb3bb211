"""Export manifests to other platforms: Compose, Kubernetes, Podman Quadlet.

`export()` is the one core entry point: validated manifests in, an ExportResult (file
contents plus `Unsupported` notes) out. It reads and writes nothing; the CLI does that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from saferun.errors import ExportError
from saferun.export.common import (
    ExportFile,
    ExportInput,
    ExportResult,
    KubeKind,
    Target,
    Unsupported,
    prepare_all,
)

if TYPE_CHECKING:
    from saferun.export.kubernetes import KubeOptions

__all__ = ["ExportError", "ExportFile", "ExportInput", "ExportResult", "KubeKind", "Target",
           "Unsupported", "export"]


def export(inputs: list[ExportInput], target: Target, *, kind: KubeKind = KubeKind.POD,
           kube_version: str | None = None, arch: str = "x86_64",
           kube_options: KubeOptions | None = None, compose_v1: bool = False) -> ExportResult:
    """Render `inputs` for `target` hosts of `arch`; the same inputs give the same bytes."""
    if not inputs:
        raise ExportError("nothing to export: give at least one manifest")
    apps = prepare_all(inputs, arch=arch)
    if target is Target.COMPOSE:
        from saferun.export.compose import render_compose

        return render_compose(apps, v1=compose_v1)
    if target is Target.KUBERNETES:
        from saferun.export.kubernetes import DEFAULT_KUBE_VERSION, render_kubernetes

        return render_kubernetes(apps, kind=kind, kube_version=kube_version or DEFAULT_KUBE_VERSION,
                                 options=kube_options)
    from saferun.export.quadlet import render_quadlet

    return render_quadlet(apps)

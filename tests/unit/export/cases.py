"""The manifests every export test runs over: each preset in profiles/, plus varied ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from saferun.data import data_dir
from saferun.export import ExportInput, ExportResult, KubeKind, Target, export
from saferun.inputs.loader import load_manifest

DATA = Path(__file__).resolve().parents[2] / "data"
VARIED = sorted((DATA / "export").glob("*.toml"))
PRESETS = sorted(data_dir("profiles").glob("*.toml"))
CASES: dict[str, Path] = {
    **{f"preset-{p.stem}": p for p in PRESETS},
    **{p.stem: p for p in VARIED},
}
# Varied manifests that weaken a Pod Security "restricted" control on purpose, and which.
PSS_EXPECTED_FAILURES: dict[str, set[str]] = {
    "weakened": {"running-as-non-root", "running-as-non-root-user", "seccomp-baseline", "seccomp",
                 "apparmor"},
    # nginx's master starts as root with CHOWN/SETUID/SETGID/NET_BIND_SERVICE to switch its
    # workers to www-data (profiles/nginx.toml says why): "restricted" forbids both.
    "preset-nginx": {"running-as-non-root", "running-as-non-root-user",
                     "capabilities-restricted"},
}
# Export variants: name -> (target, options).
VARIANTS: dict[str, tuple[Target, dict[str, Any]]] = {
    "compose": (Target.COMPOSE, {}),
    "kubernetes-pod-1.30": (Target.KUBERNETES, {"kind": KubeKind.POD, "kube_version": "1.30"}),
    "kubernetes-deployment-1.29": (Target.KUBERNETES,
                                   {"kind": KubeKind.DEPLOYMENT, "kube_version": "1.29"}),
    "quadlet": (Target.QUADLET, {}),
}


def run(paths: list[Path], variant: str) -> ExportResult:
    target, options = VARIANTS[variant]
    return export([ExportInput(load_manifest(p)) for p in paths], target, **options)

"""`saferun export MANIFEST... --to compose|kubernetes|quadlet [-o DIR_OR_FILE]`.

The edge around saferun.export: read the manifests, call the pure renderer, print the
notes (what the target cannot express) to stderr, write the files atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from saferun.cli.common import exit_on_error

if TYPE_CHECKING:
    from saferun.export import ExportResult


@click.command()
@click.argument("manifests", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "target", required=True,
              type=click.Choice(["compose", "kubernetes", "quadlet"]),
              help="compose: one compose.yaml for all manifests; kubernetes: Pods or "
              "Deployments; quadlet: one Podman .container unit per manifest.")
@click.option("-o", "--output", type=click.Path(),
              help="Directory (existing, or ending in /) or main file to write, profiles beside "
              "it. Default: the main file on standard output, nothing else written.")
@click.option("--kind", type=click.Choice(["pod", "deployment"]), default=None,
              help="Kubernetes object for each app.  [default: pod]")
@click.option("--kube-version", default=None,
              help="Kubernetes version to target (AppArmor field from 1.30, annotation "
              "before).  [default: 1.30]")
@click.option("--arch", type=click.Choice(["x86_64", "aarch64"]), default="x86_64",
              show_default=True, help="Architecture of the target hosts (seccomp profile).")
def export(manifests: tuple[Path, ...], target: str, output: str | None, kind: str | None,
           kube_version: str | None, arch: str) -> None:
    """Export MANIFESTS with the same protections to Compose, Kubernetes or a Podman Quadlet.

    What the target cannot express is printed as a note on stderr (and repeated at the top
    of the main file); nothing is dropped silently. The same manifests give the same bytes.
    Exit 0 when written, 2 for an invalid manifest or usage.
    """
    from saferun.export import ExportInput, KubeKind, Target
    from saferun.export import export as run_export
    from saferun.inputs.loader import load_manifest

    if target != "kubernetes" and (kind or kube_version):
        raise click.UsageError("--kind and --kube-version only apply to --to kubernetes")
    with exit_on_error():
        out_dir, main_name = _output_location(output, target, len(manifests))
        base = out_dir if out_dir is not None else Path.cwd()
        inputs = [ExportInput(load_manifest(path), _manifest_dir(path, base, target))
                  for path in manifests]
        result = run_export(inputs, Target(target), kind=KubeKind(kind or "pod"),
                            kube_version=kube_version, arch=arch)
        for note in result.notes:
            click.echo(f"saferun: note: {note.render()}", err=True)
        if out_dir is None:
            click.echo(result.main.content, nl=False)
            if len(result.files) > 1:
                skipped = ", ".join(f.path for f in result.files[1:])
                click.echo(f"saferun: note: not written (standard output): {skipped}; pass "
                           "-o DIR to write them beside the main file", err=True)
            return
        for path in _write(result, out_dir, main_name):
            click.echo(f"wrote {path}", err=True)


def _output_location(output: str | None, target: str,
                     count: int) -> tuple[Path | None, str | None]:
    """(directory, main file name or None for the default) from -o (a str: Path drops '/')."""
    from saferun.errors import UsageError

    if output is None:
        if target == "quadlet" and count > 1:
            raise UsageError("several Quadlet units cannot share standard output",
                             fix="pass -o DIR to write one .container file per manifest")
        return None, None
    if Path(output).is_dir() or output.endswith(os.sep):
        return Path(output), None
    if target == "quadlet" and count > 1:
        raise UsageError(f"-o {output}: several manifests give several Quadlet units",
                         fix="pass a directory (ending in /) to -o")
    return Path(output).parent, Path(output).name


def _manifest_dir(path: Path, out_dir: Path, target: str) -> str:
    """Where the manifest's relative paths lead, as the exported file must spell it.

    Compose resolves paths against the compose file's directory: relative to the output.
    Quadlet units are installed elsewhere (/etc/containers/systemd): absolute.
    """
    manifest_dir = path.resolve().parent
    if target == "quadlet":
        return str(manifest_dir)
    return os.path.relpath(manifest_dir, out_dir.resolve())


def _write(result: ExportResult, out_dir: Path, main_name: str | None) -> list[Path]:
    """Each file atomically (a temporary file renamed over it), parents created."""
    from saferun.engine.files import write_atomic
    from saferun.errors import ExportError

    written = []
    for index, item in enumerate(result.files):
        path = out_dir / (main_name if index == 0 and main_name else item.path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, item.content.encode(), mode=item.mode)
        except OSError as exc:
            raise ExportError(f"-o: cannot write {path}: {exc.strerror or exc}") from None
        written.append(path)
    return written

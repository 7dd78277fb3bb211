"""`saferun export MANIFEST... --to compose|kubernetes|quadlet [-o DIR_OR_FILE]`.

Prints the notes (what the target cannot express) to stderr and the main file to stdout
when there is no -o; reading, rendering and writing are saferun.app.export.
"""

from __future__ import annotations

from pathlib import Path

import click

from saferun.cli.common import exit_on_error
from saferun.cli.completion import complete_manifests


@click.command()
@click.argument("manifests", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path),
                shell_complete=complete_manifests)
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
@click.option("--namespace", metavar="NAME",
              help="Kubernetes namespace of the Pods or Deployments.  [default: none written]")
@click.option("--pin", is_flag=True,
              help="Kubernetes: name each image by the registry digest the local engine has "
              "for its tag (as `saferun pin`); an image without one stops the export.")
@click.option("--profiles", type=click.Choice(["files", "operator"]), default=None,
              help="Kubernetes: seccomp profiles as files to copy to each node, or as "
              "Security Profiles Operator objects in the YAML.  [default: files]")
@click.option("--compose-v1", is_flag=True,
              help="Compose: only keys docker-compose 1.x (Debian 12) accepts; `cgroup` "
              "becomes a note.")
def export(manifests: tuple[Path, ...], target: str, output: str | None, kind: str | None,
           kube_version: str | None, arch: str, namespace: str | None, pin: bool,
           profiles: str | None, compose_v1: bool) -> None:
    """Export MANIFESTS with the same protections to Compose, Kubernetes or a Podman Quadlet.

    What the target cannot express is printed as a note on stderr (and repeated at the top
    of the main file); nothing is dropped silently. The same manifests give the same bytes.
    Exit 0 when written, 2 for an invalid manifest or usage.
    """
    from saferun.app.export import ExportRequest, render_export, write_export
    from saferun.export import KubeKind, Target

    if target != "kubernetes" and (kind or kube_version or namespace or pin or profiles):
        raise click.UsageError("--kind, --kube-version, --namespace, --pin and --profiles only "
                               "apply to --to kubernetes")
    if compose_v1 and target != "compose":
        raise click.UsageError("--compose-v1 only applies to --to compose")
    request = ExportRequest(manifests, Target(target), output, KubeKind(kind or "pod"),
                            kube_version, arch, namespace, pin, profiles or "files", compose_v1)
    with exit_on_error():
        rendered = render_export(request)
        for warning in rendered.warnings:
            click.echo(f"saferun: warning: {warning}", err=True)
        for note in rendered.result.notes:
            click.echo(f"saferun: note: {note.render()}", err=True)
        if rendered.out_dir is None:
            click.echo(rendered.result.main.content, nl=False)
            if rendered.not_written:
                click.echo(f"saferun: note: not written (standard output): "
                           f"{', '.join(rendered.not_written)}; pass -o DIR to write them "
                           "beside the main file", err=True)
            return
        for path in write_export(rendered):
            click.echo(f"wrote {path}", err=True)

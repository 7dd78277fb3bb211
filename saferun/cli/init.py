"""`saferun init`: write a manifest from a `docker run` line or from an image's metadata."""

from __future__ import annotations

import os
from pathlib import Path

import click

from saferun.cli.common import exit_on_error, warn
from saferun.cli.completion import complete_allow, complete_images


@click.command()
@click.option("--from-docker-run", "line", metavar='"docker run ..."',
              help="An existing docker run command line (quoted, as one argument).")
@click.option("--from-compose", "compose", metavar="COMPOSE.yaml",
              type=click.Path(dir_okay=False, path_type=Path),
              help="A Compose file: one manifest per service and a saferun.stack.toml, "
              "written to the folder -o names (default: the current folder).")
@click.option("--image", metavar="IMAGE", shell_complete=complete_images,
              help="Read USER, exposed ports, volumes and entrypoint from this local image.")
@click.option("-o", "--output", default="saferun.toml", show_default=True,
              help="File to write; '-' prints it instead.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--allow", "allows", multiple=True, metavar="RULE=REASON",
              shell_complete=complete_allow,
              help="Allow a refusal rule the command line needs, with a written reason.")
def init(line: str | None, compose: Path | None, image: str | None, output: str, force: bool,
         allows: tuple[str, ...]) -> None:
    """Write a commented saferun.toml: hardened defaults plus what the app needs.

    With --from-docker-run the line's flags become manifest settings exactly as
    `saferun run` reads them (dangerous ones are refused unless --allow gives a reason), so
    `saferun run --dry-run` of the new manifest prints the same hardened command. Network
    names are resolved through the engine as `run` resolves them (the host network by its
    ID is refused); with no engine the notes say they were not resolved. Exit 0 written, 2
    usage or refused, 3 engine unavailable (--image).

    With --from-compose each service is read as the docker run line Compose would send, so
    it is hardened and refused by the same rules; its networks become [network] ingress and
    egress, its depends_on the stack's order (docs/networks.md).
    """
    if compose is not None:
        from saferun.app.init import from_compose

        if line is not None or image is not None:
            raise click.UsageError("--from-compose goes alone (not with --from-docker-run "
                                   "or --image)")
        with exit_on_error():
            imported = from_compose(compose, allows, force=force, warn=warn,
                                  out_dir=Path("." if output == "saferun.toml" else output))
        for path in (*imported.manifests, imported.stack_file):
            click.echo(f"wrote {path}", err=True)
        return
    with exit_on_error():
        from saferun.app.init import init as write_init

        out = None if output == "-" else Path(output)
        result = write_init(line, image, allows, out=out, force=force, cwd=os.getcwd(),
                            warn=warn)
        if out is None:
            click.echo(result.text, nl=False)
            return
        click.echo(f"wrote {out}", err=True)

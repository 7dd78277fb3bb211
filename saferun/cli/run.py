"""`saferun run`."""

from __future__ import annotations

import json

import click

from saferun.cli.common import exit_on_error, warn
from saferun.errors import SaferunError


@click.command(context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run in the background and print the container id.")
@click.option("--rm", "remove", is_flag=True, help="Remove the container when it exits.")
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY.")
@click.option("--name", help="Container name (default: docker picks one).")
@click.option("--dry-run", is_flag=True, help="Print what would run instead of running it.")
@click.option("--format", "output_format", type=click.Choice(["argv", "json"]), default="argv",
              show_default=True, help="--dry-run output: the docker run command, or the Engine API body.")
@click.option("--offline", is_flag=True, help="With --dry-run: plan for a typical daemon without asking one.")
@click.argument("target", required=False, metavar="[MANIFEST|IMAGE]")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[-- COMMAND [ARG...]]")
def run(detach: bool, remove: bool, interactive: bool, tty: bool, name: str | None, dry_run: bool,
        output_format: str, offline: bool, target: str | None, command: tuple[str, ...]) -> None:
    """Start a container with every protection in force, or refuse (exit 125) and say why.

    MANIFEST is a saferun.toml (default: ./saferun.toml). An image reference instead of a
    manifest runs that image with saferun's hardened defaults. Words after the manifest or
    image replace its command. Exit codes are docker's: the container's own, 125 when
    saferun or the daemon refuses, 126/127 when the command cannot be run.
    """
    from saferun.launch import RunRequest, dry_run_argv, dry_run_body, launch, prepare
    from saferun.plan import LaunchOptions
    from saferun.render.argv import shell_quote

    if offline and not dry_run:
        raise click.UsageError("--offline only works with --dry-run")
    if command[:1] == ("--",):  # `saferun run MANIFEST -- CMD`: click keeps the `--` here
        command = command[1:]
    options = LaunchOptions(detach=detach, remove=remove, interactive=interactive, tty=tty,
                            name=name, command=command or None)
    with exit_on_error(run=True):
        prepared = prepare(RunRequest(target=target, options=options, offline=offline))
        for message in prepared.plan.warnings:
            warn(message)
        if dry_run:
            if output_format == "json":
                click.echo(json.dumps(dry_run_body(prepared.plan), indent=2, sort_keys=True))
            else:
                click.echo(shell_quote(dry_run_argv(prepared.plan)))
            return
        _check_image(prepared.plan.image, prepared.plan.pull, prepared.image_present)
        launch(prepared)


def _check_image(image: str, pull: str, present: bool | None) -> None:
    if present is False:
        if pull == "never":
            raise SaferunError(
                f"image '{image}' is not in the local engine and app.pull = \"never\"",
                fix=f"build or pull '{image}' first, or set app.pull = \"missing\"",
            )
        warn(f"image '{image}' is not in the local engine; docker will try to pull it")

"""`saferun run`."""

from __future__ import annotations

import json

import click

from saferun.cli.common import exit_on_error, warn
from saferun.errors import SaferunError


class _RunCommand(click.Command):
    """`saferun run` reads its whole command line itself, the way `docker run` does.

    click would read docker's flags wrongly (`-h` is --hostname, `-dit` bundles, everything
    after the image is the container's), so one parser (saferun.inputs.dockerargs) reads both
    saferun's own flags and every docker run flag.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.params["args"] = tuple(args)
        return []

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[SAFERUN FLAGS] [DOCKER RUN FLAGS] "
                              "[MANIFEST|IMAGE] [COMMAND [ARG...]]")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from saferun.inputs.dockerrun import SAFERUN_FLAG_HELP

        with formatter.section("saferun flags"):
            formatter.write_dl(list(SAFERUN_FLAG_HELP))
        with formatter.section("docker run flags"):
            formatter.write_text(
                "Every `docker run` flag is accepted with docker's syntax (see `docker run "
                "--help`). Each becomes part of the same manifest a saferun.toml gives, with "
                "saferun's hardened defaults for anything not given. Flags that would weaken "
                "the hardening (--privileged, --cap-add SYS_ADMIN, --network host, a mount of "
                "/etc or the Docker socket, ...) are refused with the rule they break unless "
                "--allow RULE=REASON is given; flags saferun cannot honour are refused by "
                "name, never ignored. Rules: docs/drop-in.md.")


@click.command(cls=_RunCommand)
def run(args: tuple[str, ...]) -> None:
    """Start a container with every protection in force, or refuse (exit 125) and say why.

    MANIFEST is a saferun.toml (default: ./saferun.toml). An image reference instead of a
    manifest runs that image with saferun's hardened defaults. Words after the manifest or
    image replace its command (`saferun run MANIFEST -- CMD` also works). Exit codes are
    docker's: the container's own, 125 when saferun or the daemon refuses, 126/127 when the
    command cannot be run.
    """
    import os

    from saferun.app.run import dry_run_argv, dry_run_body, launch, prepare, request_from_args
    from saferun.inputs.dockerrun import parse_run_args
    from saferun.render.argv import shell_quote

    with exit_on_error(run=True):
        parsed = parse_run_args(args)
    if parsed.flag("help"):
        ctx = click.get_current_context()
        click.echo(ctx.get_help())
        return
    dry_run, offline = bool(parsed.flag("dry-run")), bool(parsed.flag("offline"))
    output_format = parsed.last("format") or "argv"
    if output_format not in ("argv", "json"):
        raise click.UsageError(f"--format {output_format}: use argv or json")
    if offline and not dry_run:
        raise click.UsageError("--offline only works with --dry-run")
    with exit_on_error(run=True):
        request = request_from_args(parsed, cwd=os.getcwd(), offline=offline)
        for note in request.dropin.notes:
            warn(note)
        prepared = prepare(request)
        for message in prepared.plan.warnings:
            warn(message)
        if dry_run:
            for note in prepared.plan.notes:
                click.echo(f"saferun: note: {note}", err=True)
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

"""`saferun run`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from saferun.cli.common import exit_on_error, note, warn

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem


class _RunCommand(click.Command):
    """`saferun run` reads its whole command line itself, the way `docker run` does.

    click would read docker's flags wrongly (`-h` is --hostname, `-dit` bundles, everything
    after the image is the container's), so one parser (saferun.inputs.dockerargs) reads both
    saferun's own flags and every docker run flag.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.params["args"] = tuple(args)
        return []

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        from saferun.cli.completion import complete_run

        return complete_run(ctx.params.get("args", ()), incomplete)

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

    from saferun.app.run import start
    from saferun.errors import UsageError
    from saferun.inputs.run_flags import parse_run_args, usage_problem

    with exit_on_error(run=True):
        parsed = parse_run_args(args)
    if parsed.flag("help"):
        click.echo(click.get_current_context().get_help())
        return
    with exit_on_error(run=True):  # a usage error exits 125, as docker run's do
        problem = usage_problem(parsed)
        if problem:
            raise UsageError(problem)
        printed = start(parsed, cwd=os.getcwd(), warn=warn, note=note)  # execs docker, or
    # A dry run: the command or the API body, byte for byte. click would strip ANSI escape
    # sequences from a pipe, and the printed command would no longer be the one launched.
    if any(not c.isprintable() and c != "\n" for c in printed):
        warn("the command holds control characters; they are printed as they are")
    click.echo(printed, color=True)

"""Entry point of the `saferun` command.

`saferun run` does not go through click: click costs about 20 ms of imports (saferun.cli
imports it), a tenth of what saferun adds to a container start, and `saferun run` reads
its command line with its own parser anyway (saferun.cli.run says why). So a start goes
from here to the plan cache (which execs docker on a hit), then to the planning server
(saferun.app.planner: a warm process that plans a miss into the plan cache, served
then as a hit), and then to `_run`, which does
what the click command saferun.cli.run.run does; --help and usage errors are left to that
command, so their wording and exit code stay click's. Shell completion
(_SAFERUN_COMPLETE) always goes through click.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs 2 ms here
if TYPE_CHECKING:
    from collections.abc import Callable

    from saferun.errors import SaferunError


def main() -> None:
    import os
    import sys

    from saferun.app import plancache

    plancache.begin(sys.argv[1:])
    if sys.argv[1:2] == ["run"] and not os.environ.get("_SAFERUN_COMPLETE"):
        plancache.try_fast_run(sys.argv[1:])  # execs docker or prints on a hit
        from saferun.app import planner

        if planner.fill(sys.argv[1:]):  # a warm server planned it into the plan cache
            plancache.try_fast_run(sys.argv[1:])
        code = _run(sys.argv[2:])
        if code is not None:
            raise SystemExit(code)
    from saferun.cli import cli

    cli(prog_name="saferun")


def _run(args: list[str]) -> int | None:
    """`saferun run ARGS` as saferun.cli.run.run does it -> the exit code (a start execs
    docker and does not return); None for --help and usage errors, for click to take over."""
    import os
    import sys

    from saferun.errors import SaferunError
    from saferun.inputs.run_flags import parse_run_args, usage_problem

    try:
        parsed = parse_run_args(args)
    except SaferunError as exc:
        return _failed(exc)
    if parsed.flag("help") or usage_problem(parsed):
        return None
    from saferun.app.run import start

    try:
        printed = start(parsed, cwd=os.getcwd(), warn=_say("warning"), note=_say("note"))
    except SaferunError as exc:
        return _failed(exc)
    # A dry run: the command or the API body, byte for byte (see saferun.cli.run).
    if any(not c.isprintable() and c != "\n" for c in printed):
        _say("warning")("the command holds control characters; they are printed as they are")
    sys.stdout.write(f"{printed}\n")
    return 0


def _say(kind: str) -> Callable[[str], None]:
    """saferun.cli.common's warn and note, without click."""
    import sys

    def say(message: str) -> None:
        print(f"saferun: {kind}: {message}", file=sys.stderr)

    return say


def _failed(exc: SaferunError) -> int:
    """saferun.cli.common.exit_on_error(run=True), without click: the message, the code."""
    import sys

    print(f"saferun: {exc.render()}", file=sys.stderr)
    return exc.run_exit_code


if __name__ == "__main__":
    main()

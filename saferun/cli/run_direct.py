"""`saferun run` without click: the start path (saferun.__main__ dispatches here).

click costs about 20 ms of imports, a tenth of what saferun adds to a container start, and
`saferun run` reads its command line with its own parser anyway (saferun.cli.run explains
why). So a start goes straight from saferun.__main__ to `run_direct`, which does what the
click command saferun.cli.run.run does; --help and usage errors are left to that command,
so their wording and exit code stay click's. Standard library only at import.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs 2 ms here
if TYPE_CHECKING:
    from collections.abc import Callable

    from saferun.errors import SaferunError
    from saferun.inputs.dockerargs import ParsedRun


def usage_problem(parsed: ParsedRun) -> str | None:
    """What is wrong with how `saferun run` was called (not with what it asks for)."""
    output_format = parsed.last("format") or "argv"
    if output_format not in ("argv", "json"):
        return f"--format {output_format}: use argv or json"
    if parsed.flag("offline") and not parsed.flag("dry-run"):
        return "--offline only works with --dry-run"
    return None


def run_direct(args: list[str]) -> int | None:
    """`saferun run ARGS` as saferun.cli.run.run does it -> the exit code (a start execs
    docker and does not return); None for --help and usage errors, for click to take over."""
    import os
    import sys

    from saferun.errors import SaferunError
    from saferun.inputs.run_flags import parse_run_args

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
    sys.stdout.write(f"{printed}\n")  # a dry run: the command or the API body
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

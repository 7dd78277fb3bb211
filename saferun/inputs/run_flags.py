"""`saferun run`'s own flags, and the one table that reads them with docker's.

Its own module (standard library and saferun.inputs.dockerargs only) so that the plan
cache can parse a command line exactly as the full path does without importing the
manifest model.
"""

from __future__ import annotations

from saferun.inputs.dockerargs import DOCKER_RUN, Flag, ParsedRun, parse_docker_run

TYPE_CHECKING = False  # not typing.TYPE_CHECKING (saferun.inputs.dockerargs says why)
if TYPE_CHECKING:
    from collections.abc import Sequence

# saferun's own options of `saferun run`, read by the same parser as docker's.
SAFERUN_RUN_FLAGS: tuple[Flag, ...] = (
    Flag("dry-run", None, "bool", False, "bool"),
    Flag("format", None, "value", False, "string"),
    Flag("offline", None, "bool", False, "bool"),
    Flag("allow", None, "value", True, "list"),
    Flag("file", "f", "value", False, "string"),
    Flag("no-preset", None, "bool", False, "bool"),
)
RUN_TABLE = DOCKER_RUN.extended(SAFERUN_RUN_FLAGS)


def parse_run_args(argv: Sequence[str]) -> ParsedRun:
    """`saferun run` words -> parsed flags (saferun's and docker's), target, command."""
    return parse_docker_run(argv, RUN_TABLE)


def usage_problem(parsed: ParsedRun) -> str | None:
    """What is wrong with how `saferun run` was called (not with what it asks for)."""
    output_format = parsed.last("format") or "argv"
    if output_format not in ("argv", "json"):
        return f"--format {output_format}: use argv or json"
    if parsed.flag("offline") and not parsed.flag("dry-run"):
        return "--offline only works with --dry-run"
    return None

"""Human output on a terminal: severity colours and progress, drawn with rich.

Only what people read goes through here, and rich is imported only when something is
drawn on a terminal, so `saferun run` and every machine format (json, sarif) never load
it. Colour is off when the stream is not a terminal, when NO_COLOR is set (no-color.org),
with `saferun --no-color`, `color = false` in the user config, or for TERM=dumb; the
text is then exactly the plain table.
Progress is drawn on standard error and only on a terminal: never in a pipe or a file.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

import click

NO_COLOR_META = "saferun.no_color"  # set on the root context by `saferun --no-color`

# Words of the check, score, verify, image and doctor tables and their styles.
SEVERITY_STYLES: tuple[tuple[str, str], ...] = (
    (r"\b(CRITICAL|critical)\b", "bold magenta"),
    (r"\b(HIGH|high)\b", "bold red"),
    (r"\b(MEDIUM|medium)\b", "yellow"),
    (r"\b(LOW|low)\b", "cyan"),
    (r"\b(INFO|info)\b", "dim"),
    (r"^(FAIL|INVALID)\b|: INVALID$", "bold red"),
    (r"^(PASS)\b|: ok$|^✓", "green"),
    (r"^(SKIP)\b", "dim"),
    (r"^✗", "red"),
    (r"suppressed by .*$", "dim"),
)


def colour_allowed(stream: IO[str]) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().meta.get(NO_COLOR_META):
        return False
    return _is_terminal(stream) and _config_allows_colour()


def _config_allows_colour() -> bool:
    """`color = false` in the user config; an invalid config is reported by the commands
    that depend on it, not by a table's colour."""
    from saferun.errors import SaferunError
    from saferun.inputs.user_config import config_path, read_user_config

    path = config_path()
    try:
        return read_user_config(path).color if path.exists() else True
    except SaferunError:
        return True


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def echo_table(text: str) -> None:
    """A human table on standard output: coloured on a terminal, else exactly `text`."""
    if not colour_allowed(sys.stdout):
        click.echo(text, nl=False)
        return
    from rich.console import Console
    from rich.text import Text

    styled = Text(text)
    for pattern, style in SEVERITY_STYLES:
        styled.highlight_regex(_multiline(pattern), style)
    Console(file=sys.stdout, highlight=False, soft_wrap=True, force_terminal=True).print(
        styled, end="")


def _multiline(pattern: str) -> str:
    return f"(?m){pattern}"


@contextlib.contextmanager
def progress(description: str | None, total: int | None = None
             ) -> Iterator[Callable[..., None]]:
    """A progress bar (or a spinner without `total`) on a terminal's standard error.

    Yields `advance(completed=None, description=None, total=None, say=None, show=None)`
    (a total of 0 is a bar whose total arrives later); `say` is a line for standard error
    and `show` text for standard output, printed above the bar when they go to the
    terminal. Outside a terminal, or without a description (a machine format was asked
    for), nothing is drawn and `say` and `show` are printed as they are.

    While the bar is drawn, output must go through `say` and `show`: click writes to the
    terminal past rich, so its line would land after the bar's and the bar be redrawn
    over the line before it.
    """
    if description is None or not _is_terminal(sys.stderr):
        yield _plain
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(file=sys.stderr, no_color=not colour_allowed(sys.stderr))
    columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total)

        def advance(completed: int | None = None, description: str | None = None,
                    total: int | None = None, say: str | None = None,
                    show: str | None = None) -> None:
            from rich.text import Text

            if say is not None:
                bar.console.print(Text(say), highlight=False, soft_wrap=True)
            if show is not None and _is_terminal(sys.stdout):  # the same screen as the bar
                bar.console.print(Text(show.removesuffix("\n")), highlight=False,
                                  soft_wrap=True)
            elif show is not None:
                click.echo(show, nl=False)
            bar.update(task, completed=completed, description=description, total=total)

        yield advance
        if total is not None:  # done: the bar ends full (its total may have come later)
            bar.update(task, completed=bar.tasks[0].total)


def _plain(*_args: Any, say: str | None = None, show: str | None = None,
           **_kwargs: Any) -> None:
    """Progress outside a terminal: nothing drawn; the output is printed as it is."""
    if say is not None:
        click.echo(say, err=True)
    if show is not None:
        click.echo(show, nl=False)

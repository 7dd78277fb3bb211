"""Shared CLI helpers: the one way a command exits with a code, and SaferunError's message."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NoReturn

import click

from saferun.errors import SaferunError


def exit_with(code: int) -> NoReturn:
    """End the current click command with exit status `code` (click turns it into sys.exit).

    Only inside a click command: every caller is one (a RuntimeError says so otherwise).
    """
    click.get_current_context().exit(code)


@contextlib.contextmanager
def exit_on_error(*, run: bool = False) -> Iterator[None]:
    """Print `saferun: <message>` and exit with the error's code (125 for `run`)."""
    try:
        yield
    except SaferunError as exc:
        click.echo(f"saferun: {exc.render()}", err=True)
        exit_with(exc.run_exit_code if run else exc.exit_code)


def warn(message: str) -> None:
    click.echo(f"saferun: warning: {message}", err=True)


def note(message: str) -> None:
    click.echo(f"saferun: note: {message}", err=True)


def echo_report(text: str, output_format: str) -> None:
    """A report on standard output: tables coloured on a terminal (saferun.cli.style),
    machine formats exactly as rendered."""
    if output_format != "table":
        click.echo(text, nl=False)
        return
    from saferun.cli.style import echo_table

    echo_table(text)

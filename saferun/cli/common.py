"""Shared CLI helpers: one place that turns SaferunError into a message and an exit code."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click

from saferun.errors import SaferunError


@contextlib.contextmanager
def exit_on_error(*, run: bool = False) -> Iterator[None]:
    """Print `saferun: <message>` and exit with the error's code (125 for `run`)."""
    try:
        yield
    except SaferunError as exc:
        click.echo(f"saferun: {exc.render()}", err=True)
        sys.exit(exc.run_exit_code if run else exc.exit_code)


def warn(message: str) -> None:
    click.echo(f"saferun: warning: {message}", err=True)

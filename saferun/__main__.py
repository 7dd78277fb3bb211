"""Entry point of the `saferun` command."""

from __future__ import annotations


def main() -> None:
    from saferun.cli import cli

    cli(prog_name="saferun")


if __name__ == "__main__":
    main()

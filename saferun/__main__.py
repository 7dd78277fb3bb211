"""Entry point of the `saferun` command."""

from __future__ import annotations


def main() -> None:
    import sys

    from saferun.app import plancache

    plancache.invocation = sys.argv[1:]
    if sys.argv[1:2] == ["run"] and not {"--dry-run", "-h", "--help"} & set(sys.argv[2:]):
        plancache.try_fast_run(plancache.invocation)  # execs docker on a hit; returns on a miss
    from saferun.cli import cli

    cli(prog_name="saferun")


if __name__ == "__main__":
    main()

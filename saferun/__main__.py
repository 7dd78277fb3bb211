"""Entry point of the `saferun` command."""

from __future__ import annotations


def main() -> None:
    import os
    import sys

    from saferun.app import plancache

    plancache.invocation = sys.argv[1:]
    if sys.argv[1:2] == ["run"] and not os.environ.get("_SAFERUN_COMPLETE"):
        # The start path skips click (about 20 ms of imports): the plan cache execs docker
        # (or prints a dry run) on a hit; on a miss saferun.cli.run plans it directly and
        # hands only --help and usage errors to click. Shell completion always uses click.
        plancache.try_fast_run(plancache.invocation)
        from saferun.cli.run_direct import run_direct

        code = run_direct(plancache.invocation[1:])
        if code is not None:
            raise SystemExit(code)
    from saferun.cli import cli

    cli(prog_name="saferun")


if __name__ == "__main__":
    main()

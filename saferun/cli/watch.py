"""`saferun watch [CONTAINER...|--app NAME|--all]`: report denials as they happen."""

from __future__ import annotations

import sys

import click

from saferun.cli.common import exit_on_error
from saferun.cli.completion import complete_running


@click.command()
@click.argument("containers", nargs=-1, shell_complete=complete_running)
@click.option("--app", "app", metavar="NAME", help="Watch the containers of this app "
              "(label io.saferun.app), including ones started later.")
@click.option("--all", "every", is_flag=True, help="Watch every container saferun started.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Readable lines, or JSON lines (schema: --print-schema).")
@click.option("--metrics", metavar="HOST:PORT",
              help="Serve Prometheus counters at http://HOST:PORT/metrics.")
@click.option("--on-denial", "on_denial", multiple=True, metavar="[KIND=]ACTION",
              help="stop, kill or pause the container at its first event of KIND (without "
                   "KIND: any denial). Repeatable; off by default.")
@click.option("--window", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="Seconds over which repeats of one denial are folded into one counted line.")
@click.option("--drift-interval", type=click.FloatRange(min=0), default=30.0,
              show_default=True, help="Seconds between drift checks (0: off).")
@click.option("--duration", type=click.FloatRange(min=0.1), default=None,
              help="Stop after this many seconds (default: until interrupted).")
@click.option("--syslog", "to_syslog", is_flag=True,
              help="Send the lines to the local syslog (facility daemon, identifier "
                   "saferun-watch, severity by kind) instead of standard output.")
@click.option("--syslog-socket", metavar="PATH", default="/dev/log", show_default=True,
              help="The syslog socket --syslog sends to.")
@click.option("--print-systemd-unit", "print_unit", is_flag=True,
              help="Print a systemd unit that runs watch with these options, and exit.")
@click.option("--print-schema", "print_schema", is_flag=True,
              help="Print the JSON Schema of --format json lines, and exit.")
def watch(containers: tuple[str, ...], app: str | None, every: bool, output_format: str,
          metrics: str | None, on_denial: tuple[str, ...], window: float,
          drift_interval: float, duration: float | None, to_syslog: bool, syslog_socket: str,
          print_unit: bool, print_schema: bool) -> None:
    """Report, per saferun container, what it tries and is denied, with the manifest change
    that would allow it: refused system calls, read-only writes, unlisted programs, OOM
    kills, restarts, docker exec and drift. Says at start what this host cannot show.
    Needs root on the Docker host. Exit 2 usage, 3 engine or host unavailable.
    """
    from saferun.app import watch as app_watch

    with exit_on_error():
        if print_schema:
            import json

            from saferun.learn.watch import EVENT_SCHEMA

            click.echo(json.dumps(EVENT_SCHEMA, indent=2, sort_keys=True))
            return
        if not containers and not every and app is None:
            raise click.UsageError("name CONTAINERS, or pass --app NAME or --all")
        if print_unit:
            argv = [*containers, *(["--app", app] if app else []), *(["--all"] if every else []),
                    "--format", output_format, *(["--metrics", metrics] if metrics else []),
                    *[f"--on-denial={value}" for value in on_denial],
                    f"--window={window}", f"--drift-interval={drift_interval}",
                    *(["--syslog", f"--syslog-socket={syslog_socket}"] if to_syslog else [])]
            click.echo(app_watch.systemd_unit((sys.executable, "-m", "saferun"), tuple(argv)),
                       nl=False)
            return
        options = app_watch.WatchOptions(
            containers=containers, app=app, every=every, output_format=output_format,
            metrics=app_watch.parse_metrics_address(metrics) if metrics else None,
            on_denial=app_watch.parse_on_denial(on_denial), window=window,
            drift_interval=drift_interval, duration=duration,
            syslog=syslog_socket if to_syslog else None)
        app_watch.watch(options)

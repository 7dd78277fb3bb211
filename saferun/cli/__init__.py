"""The command line: parse options, call one core function, print, map to an exit code.

Commands live in their own modules and are imported only when called, so `saferun run`
does not pay for the imports of `saferun check` or `saferun profile`.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import click

from saferun import __version__


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(
        self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module_name, short_help = self.lazy[cmd_name]
            module = importlib.import_module(module_name)
            command: click.Command = getattr(module, cmd_name.replace("-", "_"))
            command.short_help = command.short_help or short_help
            return command
        return super().get_command(ctx, cmd_name)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if os.environ.get("_SAFERUN_COMPLETE"):  # a shell asks: our bash script answers
            from saferun.cli.completion import use_saferun_bash

            use_saferun_bash()
        return super().main(*args, **kwargs)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help lists the short descriptions without importing every command module.
        rows = [(name, self.lazy[name][1]) for name in sorted(self.lazy)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("saferun.cli.run", "Start a container hardened (drop-in for docker run)."),
    "check": ("saferun.cli.check", "Lint manifests, run lines, containers (CIS rules)."),
    "schema": ("saferun.cli.schema", "Print the manifest's JSON Schema (for editors)."),
    "profile": ("saferun.cli.profile", "Generate security profiles (seccomp, AppArmor)."),
    "init": ("saferun.cli.init", "Write a manifest from a docker run command line or an image."),
    "doctor": ("saferun.cli.doctor", "Audit the host and daemon (CIS Docker sections 1-3)."),
    "daemon-config": ("saferun.cli.daemon_config", "Print a hardened daemon.json."),
    "export": (
        "saferun.cli.export",
        "Export a manifest to Compose, Kubernetes or a Podman Quadlet.",
    ),
    "score": ("saferun.cli.score", "Exposure score: 0 locked down to 10 unconfined."),
    "verify": ("saferun.cli.verify", "Check running containers for drift; prove controls."),
    "explain": ("saferun.cli.explain", "Print a policy rule's rationale, fix and CIS references."),
    "pin": ("saferun.cli.pin", "Pin a manifest's image tag to its digest from the local engine."),
    "learn": ("saferun.cli.learn", "Record an app's syscalls; write its minimal seccomp list."),
    "why": ("saferun.cli.why", "Explain why a hardened container failed and what would fix it."),
    "image": ("saferun.cli.image", "Check images: root, secrets, setuid, registry, scan, signing."),
    "watch": ("saferun.cli.watch", "Report what hardened containers try and are denied, live."),
    "up": ("saferun.cli.up", "Start a stack: services on a private network, rules enforced."),
    "down": ("saferun.cli.down", "Remove everything a stack's `up` created."),
    "ps": ("saferun.cli.ps", "List a stack's services: state, health, ingress/egress rules."),
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="saferun")
@click.option("--no-color", is_flag=True, expose_value=False, is_eager=True,
              callback=lambda ctx, _param, value: ctx.meta.update({"saferun.no_color": value}),
              help="No colour in tables (also when NO_COLOR is set or output is not a terminal).")
def cli() -> None:
    """saferun: start containers hardened by default.

    Reads a per-app TOML manifest (saferun.toml) or a `docker run` command line and starts
    the container with a non-root user, every capability dropped but an allowlist, a
    read-only root filesystem, no-new-privileges, memory/CPU/PID/file limits and a seccomp
    profile, or refuses to start and says why.
    """

"""Error hierarchy: raised in the core, turned into one message and an exit code in the CLI.

`saferun run` keeps docker's codes (125 for anything that stops it before the container
starts); the other commands use 2 for usage/manifest errors and 3 when the engine or host
is unavailable.
"""

from __future__ import annotations


class SaferunError(Exception):
    """Base class. `exit_code` applies to every command except `run`, which uses 125."""

    exit_code = 2
    run_exit_code = 125

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def render(self) -> str:
        text = self.message
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class ManifestError(SaferunError):
    """The manifest (or command line) is invalid: a key, type or value is wrong."""

    exit_code = 2


class UsageError(SaferunError):
    """The command was called wrongly."""

    exit_code = 2


class EngineUnavailable(SaferunError):
    """The Docker engine could not be reached."""

    exit_code = 3


class RequirementUnmet(SaferunError):
    """A protection the manifest requires cannot be applied on this host or daemon."""

    exit_code = 3


class ProfileError(SaferunError):
    """A generated profile failed validation or compilation; it is never handed to docker."""

    exit_code = 2


class DockerArgsError(UsageError):
    """The command line is not a valid `docker run` line (docker exits 125 for these too)."""


class UnsupportedFlag(UsageError):
    """A docker flag saferun cannot express yet: refused by name, never dropped."""


class Refused(SaferunError):
    """A request broke a refusal rule and no written reason allows it (`run` exits 125).

    Built by saferun.model.refusals.refused, which words the rules and how to allow them.
    """

    exit_code = 2

    def __init__(self, message: str, *, fix: str | None = None,
                 rule_ids: tuple[str, ...] = ()) -> None:
        super().__init__(message, fix=fix)
        self.rule_ids = list(rule_ids)


class ImageRefused(SaferunError):
    """The image policy refuses the image (saferun run exits 125)."""

    exit_code = 1


class InspectError(SaferunError):
    """The image could not be read as `docker save` output."""


class ReportError(SaferunError, ValueError):
    """The scanner's output is not the JSON report it should be."""


class ExportError(SaferunError):
    """The manifests cannot be exported as asked (a name clash, an unrepresentable value)."""

    exit_code = 2


class WorkloadFailed(SaferunError):
    """The learned profile did not let the workload pass (`--verify`)."""

    exit_code = 1


class RecordingIncomplete(SaferunError):
    """Records were lost in every attempt: no profile with holes is written."""

    exit_code = 3


class ReplayFailed(SaferunError):
    """`saferun why --manifest` could not replay the app (the daemon refused the replay's
    container): no conclusion about seccomp denials can be drawn, so none is claimed."""

    exit_code = 4

"""The user config's effects: the default team policy, and acknowledged host warnings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from msgspec.structs import replace

from saferun.errors import ManifestError
from saferun.inputs.user_config import config_path, read_user_config

if TYPE_CHECKING:
    from saferun.model.user_config import UserConfig

POLICY_ENV = "SAFERUN_POLICY"


def user_config() -> tuple[UserConfig | None, Path]:
    """The config and its path; None when there is no file (the run path then loads
    neither the model nor the file: most hosts have none)."""
    path = config_path()
    return (read_user_config(path) if path.exists() else None), path


def default_policy(config: UserConfig | None, path: Path) -> str | None:
    """The config's default team policy file (its `policy` key), or None without one.

    A file that cannot be read stops the command here, named with the config file and its
    key: `saferun run` passes the file on as $SAFERUN_POLICY, which the user never set.
    """
    if config is None or not config.policy:
        return None
    try:
        Path(config.policy).open("rb").close()
    except OSError as exc:
        raise ManifestError(
            f"policy file {config.policy}: cannot read it: {exc.strerror} (the default team "
            f"policy named by the `policy` key of the user config {path})",
            fix=f"fix the path in {path}, or remove its `policy` key") from None
    return config.policy


def acknowledge(prepared: Any, config: UserConfig | None, path: Path) -> tuple[Any, list[str]]:
    """The prepared run without the host warnings the config acknowledges, and a note for
    each one hidden. The config file becomes an input of the plan, so the plan cache
    decides again (and shows the warning again) once it changes."""
    shown, hidden = [], []
    reasons: dict[str, str] = {str(k): v for k, v in (config.acknowledge if config else {}).items()}
    for message in prepared.plan.warnings:
        warning_id = config.hides(message) if config is not None else None
        if warning_id is None:
            shown.append(message)
        else:
            hidden.append(f"warning {warning_id} acknowledged in {path}: {reasons[warning_id]}")
    plan = replace(prepared.plan, warnings=tuple(shown))
    return replace(prepared, plan=plan, inputs=(*prepared.inputs, str(path))), hidden

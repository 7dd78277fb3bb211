"""The user config's effects: the default team policy, and acknowledged host warnings."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from saferun.inputs.user_config import config_path, read_user_config
from saferun.model.user_config import UserConfig

POLICY_ENV = "SAFERUN_POLICY"


def user_config() -> tuple[UserConfig, Path]:
    path = config_path()
    return read_user_config(path), path


def default_policy(config: UserConfig) -> str | None:
    """The team policy file: $SAFERUN_POLICY, else the config's `policy`."""
    return os.environ.get(POLICY_ENV) or config.policy


def acknowledge(prepared: Any, config: UserConfig, path: Path) -> tuple[Any, list[str]]:
    """The prepared run without the host warnings the config acknowledges, and a note for
    each one hidden. The config file becomes an input of the plan, so the plan cache
    decides again (and shows the warning again) once it changes."""
    shown, hidden = [], []
    for message in prepared.plan.warnings:
        warning_id = config.hides(message)
        if warning_id is None:
            shown.append(message)
        else:
            hidden.append(f"warning {warning_id} acknowledged in {path}: "
                          f"{config.acknowledge[warning_id]}")  # type: ignore[index]
    plan = replace(prepared.plan, warnings=tuple(shown))
    return replace(prepared, plan=plan, inputs=(*prepared.inputs, str(path))), hidden

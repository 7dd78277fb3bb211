"""Finding and reading the user's config file; errors name the key, as a manifest's do."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from saferun.errors import ManifestError

if TYPE_CHECKING:
    from saferun.model.user_config import UserConfig

CONFIG_NAME = ("saferun", "config.toml")


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """$XDG_CONFIG_HOME/saferun/config.toml, else ~/.config/saferun/config.toml (XDG)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path(env.get("HOME") or "~").expanduser() / (
        ".config")
    return root.joinpath(*CONFIG_NAME)


def read_user_config(path: Path) -> UserConfig:
    """The validated config; the defaults when the file does not exist."""
    from saferun.inputs.loader import format_validation_error, parse_toml_input, read_bounded
    from saferun.model.strict import ValidationError, updated
    from saferun.model.user_config import UserConfig

    try:
        path.stat()
    except FileNotFoundError:
        return UserConfig()
    except OSError:
        pass  # read_bounded names the error
    document, text = parse_toml_input(read_bounded(path, "user config"), str(path),
                                      "user config")
    try:
        config = UserConfig.from_data(document)
    except ValidationError as exc:
        message = format_validation_error(exc, text, str(path))
        raise ManifestError(message.replace("invalid manifest", "invalid user config", 1),
                            fix="see README \"User config\" for the keys") from None
    if config.policy is not None:
        policy = Path(config.policy).expanduser()
        if not policy.is_absolute():
            policy = path.parent / policy
        config = updated(config, policy=str(policy))
    return config

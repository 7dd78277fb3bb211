"""Finding (XDG) and reading the user config; an invalid one names the key and its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from saferun.errors import ManifestError
from saferun.inputs.user_config import config_path, read_user_config


def test_xdg_location() -> None:
    assert config_path({"XDG_CONFIG_HOME": "/x/conf", "HOME": "/home/u"}) == Path(
        "/x/conf/saferun/config.toml")
    assert config_path({"HOME": "/home/u"}) == Path("/home/u/.config/saferun/config.toml")
    # XDG: a relative XDG_CONFIG_HOME is invalid and ignored
    assert config_path({"XDG_CONFIG_HOME": "rel", "HOME": "/home/u"}) == Path(
        "/home/u/.config/saferun/config.toml")


def test_missing_file_gives_the_defaults(tmp_path: Path) -> None:
    config = read_user_config(tmp_path / "none.toml")
    assert config.policy is None and config.acknowledge == {} and config.color is True


def test_policy_is_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('policy = "team/policy.toml"\ncolor = false\n')
    config = read_user_config(path)
    assert config.policy == str(tmp_path / "team" / "policy.toml") and config.color is False


@pytest.mark.parametrize(("text", "named"), [
    ('[acknowledge]\napparmor-absent = "ok"\n', "acknowledge apparmor-absent needs a written"),
    ('colour = false\n', "config.toml:1: unknown key colour"),
    ('color = "no"\n', "config.toml:1: color = 'no'"),
    ('[acknowledge]\nprivileged = "because I said so"\n', "acknowledge.privileged"),
])
def test_invalid_config_names_the_key(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ManifestError) as caught:
        read_user_config(path)
    message = caught.value.render()
    assert message.startswith("invalid user config") and named in message, message
    assert caught.value.exit_code == 2

"""The user config on the real engine: this host has no AppArmor, so `saferun run` warns on
every start until the warning is acknowledged in ~/.config/saferun/config.toml; the plan
cache (second start) keeps to it, and removing the config brings the warning back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E_LABEL, SESSION_ID, docker, saferun

WARNING = "AppArmor is absent on this host"


@pytest.fixture
def host_without_apparmor(docker_engine: None) -> None:
    if "apparmor" in docker("info", "--format", "{{json .SecurityOptions}}").stdout:
        pytest.skip("this engine has AppArmor: no absent-AppArmor warning to acknowledge")


def test_acknowledged_host_warning_is_not_repeated(host_without_apparmor: None,
                                                   busybox_image: str, tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("SAFERUN_NO_CACHE", None)
    line = ["run", "--rm", "--label", f"{E2E_LABEL[0]}={E2E_LABEL[1]}", "--name",
            f"ux-config-{SESSION_ID}", busybox_image, "true"]
    first = saferun(*line, env=env)
    assert first.returncode == 0 and WARNING in first.stderr, first.stderr
    config = tmp_path / "config" / "saferun" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[acknowledge]\napparmor-absent = "the dev VM kernel has no AppArmor"\n')
    for attempt in ("planned", "from the plan cache"):
        started = saferun(*line, env=env)
        assert started.returncode == 0, started.stderr
        assert WARNING not in started.stderr, (attempt, started.stderr)
    dry = saferun("run", "--dry-run", busybox_image, "true", env=env)
    assert "note: warning apparmor-absent acknowledged in" in dry.stderr
    config.unlink()
    again = saferun(*line, env=env)
    assert again.returncode == 0 and WARNING in again.stderr


def test_invalid_config_stops_run_naming_the_key(docker_engine: None, busybox_image: str,
                                                 tmp_path: Path) -> None:
    config = tmp_path / "saferun" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[acknowledge]\napparmor-absnt = "typo in the id here"\n')
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    result = saferun("run", "--dry-run", busybox_image, "true", env=env)
    assert result.returncode == 125  # docker's code for saferun refusing
    assert f"{config}:2: acknowledge.apparmor-absnt" in result.stderr
    assert "Traceback" not in result.stderr
